"""What `sdt plan slurm` shows: the worker jobs and the job script each of them would run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdt_core import ClusterPlan, Host, Machines

if TYPE_CHECKING:
    from sdt_slurm import SlurmSettings


def plan(settings: SlurmSettings) -> ClusterPlan:
    """The plan of a start with `settings`: it submits nothing and asks SLURM nothing."""
    from sdt_slurm.jobs import job

    where = f"the address of {settings.interface}" if settings.interface else settings.host
    script = job(settings, f"{'tls' if settings.tls else 'tcp'}://{where}:PORT").job_script()
    partition = f"partition {settings.queue}" if settings.queue else "the default partition"
    notes = ["the scheduler runs in this process; PORT in the script is chosen when it starts"]
    if settings.replace_workers:
        lifetime, stagger = settings.lifetime_seconds()
        notes.append(
            f"each worker retires after {lifetime} s (+/- {stagger} s), before its job's walltime "
            f"{settings.walltime}, and a new job replaces it: {_jobs(settings.workers)} at any time"
        )
    else:
        notes.append(f"workers end with their jobs at the walltime {settings.walltime} and are not replaced")
    if settings.tls:
        notes.append("a certificate is made at the start; XXXXXXXX in the script's file names is chosen then")
    if "log_directory" in settings.extra:
        notes.append(f"the jobs write their output to {settings.extra['log_directory']} (created at the start)")
    if settings.interface or not Host(settings.host).is_loopback:
        reach = (
            "holders of the cluster's certificate" if settings.tls else "any machine that reaches it (insecure=True)"
        )
    else:
        reach = "jobs on this machine only"
    return ClusterPlan(
        plug="slurm",
        machines=(
            Machines(
                "workers", settings.workers, f"SLURM job in {partition}", settings.threads, settings.memory or 0, None
            ),
        ),
        image=None,
        where=None,
        network=f"scheduler on {where}, reachable by {reach}",
        tls=settings.tls,
        prices=None,
        also=(f"{_jobs(settings.workers)} (sbatch), cancelled when the cluster closes",),
        notes=tuple(notes),
        texts=(("Job script (one per worker)", script),),
    )


def _jobs(count: int) -> str:
    return f"{count} batch job{'s' if count != 1 else ''}"
