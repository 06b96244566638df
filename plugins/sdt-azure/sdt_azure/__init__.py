"""Dask on Azure virtual machines, through dask-cloudprovider's AzureVMCluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdt_core import RegisteredPlug, Settings, hookimpl, setting

if TYPE_CHECKING:
    from dask_cloudprovider.azure import AzureVMCluster


class AzureSettings(Settings):
    passthrough = (
        "dask_cloudprovider.azure:AzureVMCluster",
        "dask_cloudprovider.generic.vmcluster:VMCluster",
    )
    reserved = {"n_workers": "workers"}

    workers: int = Settings.override("workers", 5)
    memory: float = Settings.override("memory", 15.63)
    resource_group: str | None = setting(None, "Resource group to create the VMs in.")
    location: str | None = setting(None, "Azure location, e.g. 'westus2'.")
    vnet: str | None = setting(None, "Virtual network to put the VMs in.")
    security_group: str | None = setting(None, "Network security group of the VMs.")
    vm_size: str | None = setting(None, "VM size of scheduler and workers, e.g. 'Standard_D4s_v3'.")
    docker_image: str | None = setting(None, "Docker image of scheduler and workers.")
    public_ingress: bool = setting(False, "Give the scheduler a public IP open to the internet.")
    disk_size: int | None = setting(None, "OS disk size of each VM in GB.", ge=1, le=1023)
    env_vars: dict[str, str] = setting({}, "Environment variables of scheduler and workers.", secret=True)


@hookimpl
def plug_settings() -> type[AzureSettings]:
    return AzureSettings


@hookimpl
def make_cluster(settings: AzureSettings) -> AzureVMCluster:
    from dask_cloudprovider.azure import AzureVMCluster

    kwargs = settings.backend_kwargs()
    worker_options = {
        **kwargs.pop("worker_options", {}),
        "nthreads": settings.threads,
        "memory_limit": f"{settings.memory:.2f}GiB",
    }
    return AzureVMCluster(n_workers=settings.workers, worker_options=worker_options, **kwargs)


class AzureClient(RegisteredPlug):
    """The README's AzureClient: `AzureClient(workers=5, threads=2, memory=15.63, ...)`.

    Other keyword arguments are settings of this plug or pass to `AzureVMCluster`.
    """

    plug_name = "azure"
