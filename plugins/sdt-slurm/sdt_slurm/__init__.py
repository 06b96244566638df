"""Dask on a SLURM cluster: one worker per batch job, through dask-jobqueue's SLURMCluster."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from sdt_core import (
    Address,
    Host,
    RegisteredPlug,
    Settings,
    SettingsError,
    check_exposure,
    hookimpl,
    setting,
    worker_memory_gib,
)

if TYPE_CHECKING:
    from dask_jobqueue import SLURMCluster

    from sdt_core import ClusterPlan

log = logging.getLogger(__name__)


class SlurmSettings(Settings):
    passthrough = ("dask_jobqueue:SLURMCluster", "dask_jobqueue.slurm:SLURMJob", "dask_jobqueue.core:Job")
    reserved = {
        "n_workers": "workers",
        "cores": "threads",
        "processes": "threads",
        "job_cpu": "threads",
        "job_mem": "memory",
        "job_extra_directives": "job_extra",
        "env_extra": "job_script_prologue",
    }

    workers: int = setting(2, "Number of workers: one SLURM job each, kept running for the whole run.", ge=1)
    memory: float | None = setting(  # type: ignore[assignment]
        None,
        "Memory per worker (and its job's --mem) in GiB; default: what SDT was measured to need "
        "(sdt_core.worker_memory_gib).",
        gt=0,
    )
    queue: str | None = setting(None, "Partition of the worker jobs (#SBATCH -p); default: SLURM's default partition.")
    account: str | None = setting(None, "Account the jobs are charged to (#SBATCH -A).")
    walltime: str = setting("01:00:00", "Time limit of each worker job (#SBATCH -t), e.g. 30, 04:00:00 or 1-12.")
    job_extra: list[str] = setting([], "More #SBATCH directives, e.g. --qos=debug,--constraint=cpu.")
    job_script_prologue: list[str] = setting(
        [], "Shell lines the job runs before its worker, e.g. 'module load python'."
    )
    replace_workers: bool = setting(
        True,
        "Retire each worker before its job's walltime and submit a replacement job, so runs may "
        "outlast the walltime (false: workers end with their jobs).",
    )
    lifetime: str | None = setting(
        None, "How long a worker lives before it retires, e.g. 50m; default: 85% of the walltime (at most 10 min less)."
    )
    lifetime_stagger: str | None = setting(
        None, "Random spread of the lifetime (+/-), so workers do not retire together; default: 5% (at most 2 min)."
    )
    host: Host = setting("127.0.0.1", "Address the scheduler (in this process) listens on; jobs must reach it.")
    interface: str | None = setting(None, "Network interface of scheduler and workers, e.g. ib0 (instead of host).")
    dashboard_address: Address = setting("127.0.0.1:8787", "Address of the dashboard; port 0: any free one.")
    tls: bool = setting(
        False,
        "Encrypt and authenticate client, scheduler and workers with a certificate made for this cluster, "
        "its files (readable only by you) in shared_temp_directory (default: the current folder), which the "
        "compute nodes must see.",
    )
    insecure: bool = setting(
        False, "Allow a scheduler that other machines can reach without TLS (no authentication, no encryption)."
    )

    def check(self) -> None:
        """Memory from SDT's measured need unless given; walltime and lifetime that fit; no exposed scheduler."""
        from sdt_slurm.jobs import WALLTIME_FORMATS, walltime_seconds

        if self.memory is None:
            self.memory = worker_memory_gib(self.threads)
        try:
            walltime = walltime_seconds(self.walltime)
        except ValueError:
            raise SettingsError(
                f"plug 'slurm': walltime {self.walltime!r} is not a SLURM time limit; give {WALLTIME_FORMATS}"
            ) from None
        lifetime, stagger = self.lifetime_seconds()
        if self.replace_workers and lifetime + stagger >= walltime:
            raise SettingsError(
                f"plug 'slurm': lifetime {lifetime} s + lifetime_stagger {stagger} s reaches the walltime "
                f"{self.walltime} ({walltime} s): workers would be killed, not retired; give a shorter lifetime"
            )
        self._check_exposure()

    def lifetime_seconds(self) -> tuple[int, int]:
        """The worker lifetime and its stagger in seconds (given, or derived from the walltime)."""
        from dask.utils import parse_timedelta

        from sdt_slurm.jobs import default_lifetime, walltime_seconds

        lifetime, stagger = default_lifetime(walltime_seconds(self.walltime))
        for name in ("lifetime", "lifetime_stagger"):
            text = getattr(self, name)
            if text is None:
                continue
            try:
                seconds = round(parse_timedelta(text, default="s"))
            except (ValueError, KeyError, TypeError):
                raise SettingsError(
                    f"plug 'slurm': {name} {text!r} is not a duration; give e.g. 50m, 90s or 1h"
                ) from None
            if seconds < (1 if name == "lifetime" else 0):
                raise SettingsError(f"plug 'slurm': {name} must be a positive duration, got {text!r}")
            lifetime, stagger = (seconds, stagger) if name == "lifetime" else (lifetime, seconds)
        return lifetime, stagger

    def _check_exposure(self) -> None:
        dashboard = Address(self.dashboard_address).host
        scheduler = [f"interface {self.interface}"] if self.interface else []
        scheduler += [f"host {self.host}"] if not self.interface and not Host(self.host).is_loopback else []
        exposed = [
            *([] if self.tls else scheduler),  # with TLS only holders of the cluster's certificate get in
            *(
                [f"dashboard_address {self.dashboard_address}"]
                if dashboard is None or not dashboard.is_loopback
                else []
            ),
        ]
        fix = (
            "keep host=127.0.0.1 (workers on this machine), give --set tls=true (the dashboard stays "
            "plain HTTP), or --set insecure=true"
        )
        check_exposure("slurm", exposed, insecure=self.insecure, fix=fix)


@hookimpl
def plug_settings() -> type[SlurmSettings]:
    return SlurmSettings


@hookimpl
def configure_dask(plug: str, settings: Settings) -> dict[str, Any] | None:
    """A retired worker's replacement job is submitted 2 s after it left (Dask's default: 15 s)."""
    if not isinstance(settings, SlurmSettings) or not settings.replace_workers:
        return None
    return {"distributed.deploy.lost-worker-timeout": "2s"}


@hookimpl
def preflight(settings: SlurmSettings) -> None:
    """SLURM's commands are here, and the partition exists (`sinfo`, which changes nothing)."""
    from sdt_slurm.queue import check_partition

    check_partition(settings.queue)


@hookimpl
def workers_share_files(settings: SlurmSettings) -> None:
    """Unknown: compute nodes share some file systems with the login node (home, scratch), not all (/tmp);
    `sdt run` asks a worker before the first key."""
    return None


@hookimpl
def make_cluster(settings: SlurmSettings) -> SLURMCluster:
    from dask_jobqueue import SLURMCluster

    from sdt_slurm.jobs import job_kwargs, job_parameters, scheduler_options

    own = {"scheduler_options"}
    cluster_kwargs = {k: v for k, v in settings.extra.items() if k not in job_parameters() | own}
    if settings.tls:  # dask-jobqueue makes the certificate and writes the workers' copy for the jobs
        cluster_kwargs = {"security": True, "shared_temp_directory": os.getcwd()} | cluster_kwargs
    cluster = SLURMCluster(**job_kwargs(settings), scheduler_options=scheduler_options(settings), **cluster_kwargs)
    try:
        if settings.replace_workers:
            cluster.adapt(minimum=settings.workers, maximum=settings.workers)
        else:
            cluster.scale(jobs=settings.workers)
    except BaseException:
        cluster.close()
        raise
    return cluster


@hookimpl
def worker_plugins(settings: SlurmSettings) -> list[object]:
    """A worker whose job is told to stop (scancel, preemption, the walltime's signal: SIGTERM to
    every process of the job) retires gracefully; its nanny has the scheduler retire it too, instead
    of killing it at once. No restart: the job is ending; `adapt` submits a replacement job."""
    from sdt_core import GracefulStop, NannyGracefulStop

    return [GracefulStop(restart=False), NannyGracefulStop()]


@hookimpl
def adapt_cluster(settings: SlurmSettings, cluster: SLURMCluster, minimum: int, maximum: int) -> bool:
    """dask-jobqueue's adaptive scaling (one job per worker), counting the keys the run holds back:
    jobs are submitted while keys wait, idle workers retire and their jobs end."""
    from sdt_core import adapt_to_run

    adapt_to_run(cluster, minimum, maximum)
    return True


@hookimpl
def plan_cluster(settings: SlurmSettings) -> ClusterPlan:
    from sdt_slurm.plan import plan

    return plan(settings)


class SlurmClient(RegisteredPlug):
    """A ClientPlug for SLURM: `SlurmClient(workers=4, threads=4, memory=8, queue="normal", walltime="04:00:00")`."""

    plug_name = "slurm"
