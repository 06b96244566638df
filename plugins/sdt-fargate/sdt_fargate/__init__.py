"""Dask on AWS ECS Fargate, through dask-cloudprovider's FargateCluster."""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import logging
from typing import TYPE_CHECKING

from sdt_core import RegisteredPlug, Settings, SettingsError, hookimpl, setting

if TYPE_CHECKING:
    from dask_cloudprovider.aws import FargateCluster

    from sdt_core import ClusterPlan, Leftover

log = logging.getLogger("sdt_fargate")

#: The task sizes Fargate offers: CPU units (1024 = 1 vCPU) -> memory choices in MiB.
FARGATE_TASK_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}


def _check_task_size(what: str, cpu: int, memory_mib: float) -> None:
    offered = FARGATE_TASK_SIZES[cpu]
    if memory_mib in offered:
        return
    steps = {b - a for a, b in itertools.pairwise(offered)}
    choices = ", ".join(f"{m / 1024:g}" for m in offered)
    if len(steps) == 1 and len(offered) > 4:
        choices = f"{offered[0] / 1024:g} to {offered[-1] / 1024:g} in steps of {steps.pop() / 1024:g}"
    raise SettingsError(
        f"plug 'fargate': Fargate offers no {what} task of {cpu / 1024:g} vCPU with "
        f"{memory_mib / 1024:g} GiB; at {cpu / 1024:g} vCPU memory is {choices} GiB"
    )


class FargateSettings(Settings):
    passthrough = ("dask_cloudprovider.aws:ECSCluster",)
    reserved = {
        "n_workers": "workers",
        "worker_nthreads": "threads",
        "worker_mem": "memory",
        "fargate_use_private_ip": "public_ip",
        "security": "tls",
        "fargate_spot": "spot",
    }

    workers: int = Settings.override("workers", 2)
    memory: float = Settings.override("memory", 16.0)
    worker_cpu: int = setting(4096, "CPU units of each worker task (1024 = 1 vCPU).", choices=tuple(FARGATE_TASK_SIZES))
    scheduler_cpu: int = setting(
        1024, "CPU units of the scheduler task (1024 = 1 vCPU).", choices=tuple(FARGATE_TASK_SIZES)
    )
    scheduler_mem: int = setting(4096, "Memory of the scheduler task in MiB.", ge=512)
    image: str | None = setting(None, "Docker image of scheduler and workers (see `sdt image`).")
    region_name: str | None = setting(None, "AWS region (default: AWS_DEFAULT_REGION or the profile's).")
    vpc: str | None = setting(None, "VPC id (default: the account's default VPC).")
    subnets: list[str] | None = setting(None, "Subnet ids of the tasks (default: every subnet of the VPC).")
    security_groups: list[str] | None = setting(
        None, "Security group ids of the tasks (default: one created, open only to the cluster and `ingress`)."
    )
    tls: bool = setting(True, "Encrypt client, scheduler and worker traffic with a certificate made per cluster.")
    public_ip: bool = setting(False, "Give every task a public IP address (warns).")
    ingress: list[str] = setting([], "Address ranges (CIDR) that may reach the scheduler's ports 8786-8787.")
    start_timeout: float = setting(600.0, "Seconds a start may take; then all it created is deleted.", gt=0)
    cleanup_timeout: float = setting(300.0, "Seconds to wait for tasks to stop and resources to go.", gt=0)
    keep_logs: bool = setting(False, "Keep the cluster's CloudWatch log group when it closes.")
    spot: bool = setting(
        False,
        "Run the workers on Fargate Spot (the scheduler stays on-demand); a worker Spot has no "
        "capacity for starts on-demand, with a warning.",
    )
    tags: dict[str, str] = setting({}, "Tags for every AWS resource the cluster creates.")
    environment: dict[str, str] = setting(
        {}, "Environment variables of the scheduler and worker containers.", secret=True
    )

    def check(self) -> None:
        _check_task_size("worker", self.worker_cpu, self.memory * 1024)
        _check_task_size("scheduler", self.scheduler_cpu, float(self.scheduler_mem))
        for cidr in self.ingress:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise SettingsError(
                    f"plug 'fargate': ingress entry {cidr!r} is not an address range; give CIDRs like 203.0.113.7/32"
                ) from None


def exposure_warnings(settings: FargateSettings) -> list[str]:
    """What makes this cluster reachable or readable beyond its own tasks."""
    warnings = []
    if settings.public_ip:
        warnings.append("every task gets a public IP address (public_ip=True)")
    open_to_all = [c for c in settings.ingress if ipaddress.ip_network(c, strict=False).prefixlen == 0]
    if open_to_all:
        warnings.append(f"the scheduler's ports 8786-8787 are open to the whole internet (ingress {open_to_all[0]})")
    if not settings.tls:
        warnings.append("TLS is off (tls=False): traffic between client, scheduler and workers is unencrypted")
    return warnings


@hookimpl
def plug_settings() -> type[FargateSettings]:
    return FargateSettings


@hookimpl
def preflight(settings: FargateSettings) -> None:
    from sdt_fargate.aws import preflight as check

    check(settings)
    for warning in exposure_warnings(settings):
        log.warning("fargate: %s", warning)


@hookimpl
def workers_share_files(settings: FargateSettings) -> bool:
    """Fargate tasks have file systems of their own: data must be in S3 (or another store)."""
    return False


@hookimpl
def make_cluster(settings: FargateSettings) -> FargateCluster:
    from sdt_fargate.cluster import start

    return start(settings)


@hookimpl
def adapt_cluster(settings: FargateSettings, cluster: FargateCluster, minimum: int, maximum: int) -> bool:
    """dask-cloudprovider's adaptive scaling, counting the keys the run holds back: worker tasks are started
    while keys wait, idle workers retire and go."""
    from sdt_core import adapt_to_run

    adapt_to_run(cluster, minimum, maximum)
    return True


@hookimpl
def worker_plugins(settings: FargateSettings) -> list[object]:
    """A worker told to stop retires gracefully. Fargate (Spot's 2-minute notice, a task
    stopped) sends SIGTERM to the container's first process, `dask worker`'s nanny: its
    plugin has the scheduler retire the worker before the nanny closes."""
    from sdt_core import GracefulStop, NannyGracefulStop

    return [GracefulStop(restart=False), NannyGracefulStop()]


@hookimpl
def clean_up(settings: FargateSettings, older_than: float | None, dry_run: bool) -> list[Leftover]:
    """What killed starts left in the region: tasks, ECS clusters, task definitions, IAM roles,
    security groups and log groups tagged `sdt-core-start`."""
    from sdt_fargate.aws import clean_up as clean

    return clean(settings, older_than, dry_run)


@hookimpl
def cluster_logs(cluster: FargateCluster) -> dict[str, str]:
    """What the scheduler and worker tasks wrote to CloudWatch, read through the cluster's log API."""
    from sdt_fargate.cluster import cloudwatch_logs

    return cloudwatch_logs(cluster)


@hookimpl
def plan_cluster(settings: FargateSettings) -> ClusterPlan:
    from sdt_core import ClusterPlan, Machines
    from sdt_fargate.aws import NO_REGION, region_and_source
    from sdt_fargate.prices import PRICES, UNSET_REGION_PRICED_AS, task_price

    region, source = region_and_source(settings)
    where = f"{region} (from {source})" if region else None
    if region is None:  # a plan still prices it; a start says what to set
        region = UNSET_REGION_PRICED_AS
        where = f"not set: priced as {region}; a start needs it ({NO_REGION})"

    def tasks(role: str, count: int, cpu: int, memory_gib: float) -> Machines:
        vcpu = cpu / 1024
        price = task_price(region, vcpu, memory_gib, settings.public_ip)
        return Machines(role, count, "Fargate task", vcpu, memory_gib, price)

    scheduler = tasks("scheduler", 1, settings.scheduler_cpu, settings.scheduler_mem / 1024)
    workers = tasks("workers", settings.workers, settings.worker_cpu, settings.memory)
    spot_price = task_price(region, workers.vcpu, workers.memory_gib, settings.public_ip, spot=True)
    workers = dataclasses.replace(workers, spot_price_per_hour=spot_price, spot=settings.spot)  # never the scheduler
    if settings.security_groups:
        network = f"the security groups you gave ({', '.join(settings.security_groups)})"
    else:
        network = "a new security group open only to the cluster's own tasks"
        if settings.ingress:
            network += f" and to {', '.join(settings.ingress)} on ports 8786-8787"
    network = ("public IPs, " if settings.public_ip else "private IPs only, ") + network
    extra = settings.extra
    also = [
        *(["1 ECS cluster"] if not extra.get("cluster_arn") else []),
        "2 task definitions",
        *(["1 IAM execution role"] if not extra.get("execution_role_arn") else []),
        *(["1 IAM task role"] if not extra.get("task_role_arn") else []),
        *(["1 security group"] if not settings.security_groups else []),
        "1 CloudWatch log group" + (" (kept after close)" if settings.keep_logs else ""),
    ]
    notes = exposure_warnings(settings)
    if settings.environment:
        n = len(settings.environment)
        notes.append(f"{n} environment variable{'s' if n != 1 else ''} passed to the containers (values hidden)")
    if settings.spot:
        notes.append(
            "spot=True: workers on Fargate Spot may be stopped with 2 minutes' notice; any Spot cannot "
            "place start on-demand, at the on-demand price"
        )
    return ClusterPlan(
        plug="fargate",
        machines=(scheduler, workers),
        image=settings.image,
        where=where,
        network=network,
        tls=settings.tls,
        prices=PRICES,
        also=tuple(also),
        notes=tuple(notes),
    )


class FargateClient(RegisteredPlug):
    """The README's FargateClient: `FargateClient(workers=2, threads=2, memory=16, image=...)`.

    Other keyword arguments are settings of this plug or pass to `FargateCluster`.
    """

    plug_name = "fargate"
