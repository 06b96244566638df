"""Dask on Azure virtual machines, through dask-cloudprovider's AzureVMCluster."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sdt_core import RegisteredPlug, Settings, hookimpl, setting

if TYPE_CHECKING:
    from dask_cloudprovider.azure import AzureVMCluster

    from sdt_core import ClusterPlan, Leftover

log = logging.getLogger("sdt_azure")


class AzureSettings(Settings):
    passthrough = (
        "dask_cloudprovider.azure:AzureVMCluster",
        "dask_cloudprovider.generic.vmcluster:VMCluster",
    )
    reserved = {"n_workers": "workers", "security": "tls"}

    workers: int = Settings.override("workers", 5)
    memory: float = Settings.override("memory", 15.63)
    subscription_id: str | None = setting(None, "Azure subscription (default: AZURE_SUBSCRIPTION_ID).")
    resource_group: str | None = setting(None, "Resource group to create the VMs in.")
    location: str | None = setting(None, "Azure location, e.g. 'westus2'.")
    vnet: str | None = setting(None, "Virtual network to put the VMs in.")
    subnet: str | None = setting(None, "Subnet of the virtual network (default: its first).")
    security_group: str | None = setting(None, "Network security group of the VMs.")
    vm_size: str = setting("Standard_D4s_v3", "VM size of the workers (and of the scheduler unless scheduler_vm_size).")
    docker_image: str | None = setting(None, "Docker image of scheduler and workers (see `sdt image`).")
    tls: bool = setting(True, "Encrypt client, scheduler and worker traffic with a certificate made per cluster.")
    public_ingress: bool = setting(False, "Give the scheduler a public IP open to the internet (warns).")
    disk_size: int | None = setting(None, "OS disk size of each VM in GB.", ge=1, le=1023)
    env_vars: dict[str, str] = setting({}, "Environment variables of scheduler and workers.", secret=True)
    tags: dict[str, str] = setting({}, "Tags for every VM, network interface and public IP the cluster creates.")
    spot: bool = setting(
        False,
        "Run the workers on Spot VMs, deleted when evicted (the scheduler stays pay-as-you-go); a worker "
        "Spot has no capacity for starts pay-as-you-go, with a warning.",
    )


def exposure_warnings(settings: AzureSettings) -> list[str]:
    warnings = []
    if settings.public_ingress:
        warnings.append("the scheduler gets a public IP address open to the internet (public_ingress=True)")
    if not settings.tls:
        warnings.append("TLS is off (tls=False): traffic between client, scheduler and workers is unencrypted")
    return warnings


@hookimpl
def plug_settings() -> type[AzureSettings]:
    return AzureSettings


@hookimpl
def preflight(settings: AzureSettings) -> None:
    from sdt_azure.preflight import preflight as check

    check(settings)
    for warning in exposure_warnings(settings):
        log.warning("azure: %s", warning)


@hookimpl
def workers_share_files(settings: AzureSettings) -> bool:
    """Azure VMs have disks of their own: data must be in Blob Storage (or another store)."""
    return False


@hookimpl
def adapt_cluster(settings: AzureSettings, cluster: AzureVMCluster, minimum: int, maximum: int) -> bool:
    """dask-cloudprovider's adaptive scaling, counting the keys the run holds back: worker VMs are created
    while keys wait, idle workers retire and go."""
    from sdt_core import adapt_to_run

    adapt_to_run(cluster, minimum, maximum)
    return True


@hookimpl
def worker_plugins(settings: AzureSettings) -> list[object]:
    """A worker told to stop (SIGTERM) retires gracefully; on Spot VMs, also when Azure schedules
    the VM's eviction (dask-cloudprovider's plugin polls the VM's scheduled events, Preempt)."""
    from sdt_core import GracefulStop, NannyGracefulStop

    plugins: list[object] = [GracefulStop(restart=False), NannyGracefulStop()]  # the container's SIGTERM: its nanny
    if settings.spot:
        from dask_cloudprovider.azure import AzurePreemptibleWorkerPlugin

        plugins.append(AzurePreemptibleWorkerPlugin())
    return plugins


@hookimpl
def make_cluster(settings: AzureSettings) -> AzureVMCluster:
    from sdt_azure import cluster

    return cluster.start(settings)


@hookimpl
def clean_up(settings: AzureSettings, older_than: float | None, dry_run: bool) -> list[Leftover]:
    """What killed starts left in the resource group: VMs, their disks, network interfaces and
    public IPs tagged `sdt-core-start`."""
    from sdt_azure.clean import clean_up as clean

    return clean(settings, older_than, dry_run)


@hookimpl
def plan_cluster(settings: AzureSettings) -> ClusterPlan:
    from sdt_azure.prices import PRICES, SPOT_PRICES, VM_SIZES
    from sdt_core import ClusterPlan, Machines

    def vms(role: str, count: int, size: str, spot: bool = False) -> Machines:
        vcpu, memory, price = VM_SIZES.get(size, (0, 0.0, None))
        here = (settings.location or "").lower() == PRICES.where
        spot_price = SPOT_PRICES.get(size) if here else None
        return Machines(role, count, size, vcpu, memory, price if here and size in VM_SIZES else None, spot_price, spot)

    scheduler_size = settings.extra.get("scheduler_vm_size") or settings.vm_size
    exposure = "a public IP on the scheduler, open to the internet" if settings.public_ingress else "private IPs only"
    notes = exposure_warnings(settings)
    if settings.vm_size not in VM_SIZES:
        notes.append(f"{settings.vm_size} is not in the plug's table of VM sizes: its vCPUs and memory show as 0")
    if settings.spot:
        notes.append(
            "spot=True: Azure may evict a Spot VM with 30 seconds' notice (it is then deleted); any Spot "
            "has no capacity for starts pay-as-you-go"
        )
    if settings.env_vars:
        n = len(settings.env_vars)
        notes.append(f"{n} environment variable{'s' if n != 1 else ''} passed to the VMs (values hidden)")
    return ClusterPlan(
        plug="azure",
        machines=(
            vms("scheduler", 1, scheduler_size),
            vms("workers", settings.workers, settings.vm_size, settings.spot),
        ),
        image=settings.docker_image,
        where=settings.location,
        network=f"{exposure}, in virtual network {settings.vnet} with security group {settings.security_group}",
        tls=settings.tls,
        prices=PRICES,
        also=(f"{settings.workers + 1} OS disks and network interfaces",)
        + (("1 public IP address",) if settings.public_ingress else ()),
        notes=tuple(notes),
    )


class AzureClient(RegisteredPlug):
    """The README's AzureClient: `AzureClient(workers=5, threads=2, memory=15.63, ...)`.

    Other keyword arguments are settings of this plug or pass to `AzureVMCluster`.
    """

    plug_name = "azure"
