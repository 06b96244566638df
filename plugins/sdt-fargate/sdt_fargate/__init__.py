"""Dask on AWS ECS Fargate, through dask-cloudprovider's FargateCluster."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from sdt_core import RegisteredPlug, Settings, SettingsError, hookimpl, setting

if TYPE_CHECKING:
    from dask_cloudprovider.aws import FargateCluster

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
    reserved = {"n_workers": "workers", "worker_nthreads": "threads", "worker_mem": "memory"}

    workers: int = Settings.override("workers", 2)
    memory: float = Settings.override("memory", 16.0)
    worker_cpu: int = setting(4096, "CPU units of each worker task (1024 = 1 vCPU).", choices=tuple(FARGATE_TASK_SIZES))
    scheduler_cpu: int = setting(
        1024, "CPU units of the scheduler task (1024 = 1 vCPU).", choices=tuple(FARGATE_TASK_SIZES)
    )
    scheduler_mem: int = setting(4096, "Memory of the scheduler task in MiB.", ge=512)
    image: str | None = setting(None, "Docker image of scheduler and workers.")
    region_name: str | None = setting(None, "AWS region (default: AWS_REGION or the profile's).")
    vpc: str | None = setting(None, "VPC id (default: the account's default VPC).")
    tags: dict[str, str] = setting({}, "Tags for every AWS resource the cluster creates.")
    environment: dict[str, str] = setting(
        {}, "Environment variables of the scheduler and worker containers.", secret=True
    )

    def check(self) -> None:
        _check_task_size("worker", self.worker_cpu, self.memory * 1024)
        _check_task_size("scheduler", self.scheduler_cpu, float(self.scheduler_mem))


@hookimpl
def plug_settings() -> type[FargateSettings]:
    return FargateSettings


@hookimpl
def make_cluster(settings: FargateSettings) -> FargateCluster:
    from dask_cloudprovider.aws import FargateCluster

    return FargateCluster(
        n_workers=settings.workers,
        worker_nthreads=settings.threads,
        worker_mem=int(settings.memory * 1024),
        **settings.backend_kwargs(),
    )


class FargateClient(RegisteredPlug):
    """The README's FargateClient: `FargateClient(workers=2, threads=2, memory=16, image=...)`.

    Other keyword arguments are settings of this plug or pass to `FargateCluster`.
    """

    plug_name = "fargate"
