"""SLURM jobs of Dask workers: walltime and lifetime, dask-jobqueue's keywords, the job script.

One worker per batch job: `cores` is the worker's threads, `processes` 1, `memory` its GiB.
Each worker retires a little before its job's walltime (`--lifetime`, spread by
`--lifetime-stagger`, dask-jobqueue's documented way), and the cluster keeps `workers` jobs
(`adapt(minimum=workers, maximum=workers)`), so a retired worker's job is replaced.
"""

from __future__ import annotations

import inspect
import os
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dask_jobqueue.slurm import SLURMJob

    from sdt_slurm import SlurmSettings

#: SLURM's time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
#: days-hours:minutes, days-hours:minutes:seconds.
_WALLTIME = re.compile(
    r"""^(?: (?P<days>\d+)-(?P<dh>\d+) (?::(?P<dm>\d+) (?::(?P<ds>\d+))?)?
          |  (?P<a>\d+) (?::(?P<b>\d+) (?::(?P<c>\d+))?)? )$""",
    re.VERBOSE,
)
WALLTIME_FORMATS = "MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
#: Stagger of the default lifetime: 5% of the walltime, at most this.
MAX_STAGGER_S = 120
#: A worker retiring by default before its job ends: at least 15% of the walltime, at most this.
MAX_MARGIN_S = 600


def walltime_seconds(text: str) -> int:
    """Seconds of a SLURM time limit such as "01:00:00" or "2-12"; ValueError if it is none."""
    match = _WALLTIME.match(text.strip())
    if match is None:
        raise ValueError(text)
    g = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    if "days" in g:
        seconds = g["days"] * 86400 + g["dh"] * 3600 + g.get("dm", 0) * 60 + g.get("ds", 0)
    elif "c" in g:
        seconds = g["a"] * 3600 + g["b"] * 60 + g["c"]
    else:
        seconds = g["a"] * 60 + g.get("b", 0)
    if seconds <= 0:
        raise ValueError(text)
    return seconds


def default_lifetime(walltime_s: int) -> tuple[int, int]:
    """Lifetime and stagger (seconds) of a worker whose job has `walltime_s`: it retires between
    lifetime - stagger and lifetime + stagger, and at the latest 10% (at most 8 min) before the end."""
    stagger = min(round(walltime_s * 0.05), MAX_STAGGER_S)
    lifetime = max(round(walltime_s * 0.85), walltime_s - MAX_MARGIN_S)
    return lifetime, stagger


def lifetime_args(settings: SlurmSettings) -> list[str]:
    """The worker's `--lifetime` arguments, or none when workers are not replaced."""
    if not settings.replace_workers:
        return []
    lifetime, stagger = settings.lifetime_seconds()
    return ["--lifetime", f"{lifetime}s", "--lifetime-stagger", f"{stagger}s"]


def job_parameters() -> set[str]:
    """The keywords of one SLURM job (dask-jobqueue's SLURMJob and its base Job)."""
    from dask_jobqueue.core import Job
    from dask_jobqueue.slurm import SLURMJob

    return {name for cls in (SLURMJob, Job) for name in inspect.signature(cls.__init__).parameters} - {"self"}


def job_kwargs(settings: SlurmSettings) -> dict[str, Any]:
    """dask-jobqueue's keywords of one worker job from the settings and the pass-through ones."""
    extra = {k: v for k, v in settings.extra.items() if k in job_parameters()}
    return extra | {
        "queue": settings.queue,
        "account": settings.account,
        "walltime": settings.walltime,
        "cores": settings.threads,
        "processes": 1,
        "memory": f"{settings.memory:g}GiB",
        "job_extra_directives": list(settings.job_extra),
        "job_script_prologue": list(settings.job_script_prologue),
        "interface": settings.interface,
        "worker_extra_args": [*extra.get("worker_extra_args", []), *lifetime_args(settings)],
    }


def scheduler_options(settings: SlurmSettings) -> dict[str, Any]:
    """Where the scheduler (in this process) listens: `host`, or the `interface` of the workers."""
    where = {"interface": settings.interface} if settings.interface else {"host": settings.host}
    return where | {"dashboard_address": settings.dashboard_address} | settings.extra.get("scheduler_options", {})


def job(settings: SlurmSettings, scheduler: str) -> SLURMJob:
    """One worker job as dask-jobqueue would submit it to `scheduler`; submits nothing."""
    from dask_jobqueue.slurm import SLURMJob
    from distributed.security import Security

    kwargs = job_kwargs(settings)
    kwargs.pop("log_directory", None)  # dask-jobqueue would create it: a plan creates nothing
    if settings.tls:  # the certificate's files a start writes, named as they will be
        folder = settings.extra.get("shared_temp_directory") or os.getcwd()
        ca, cert, key = (f"{folder}/.dask-jobqueue.worker.{part}.XXXXXXXX" for part in ("ca_file", "cert", "key"))
        security = Security(tls_ca_file=ca, tls_worker_cert=cert, tls_worker_key=key, require_encryption=True)
        kwargs |= {"protocol": "tls://", "security": security}
    return SLURMJob(scheduler, name="worker-name", **kwargs)
