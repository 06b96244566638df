"""Read-only questions to SLURM before a start: are its commands here, does the partition exist."""

from __future__ import annotations

import shutil
import subprocess

from sdt_core import SettingsError


def partitions() -> list[str]:
    """The partitions SLURM knows (`sinfo`), the default one first; SettingsError if it does not answer."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        raise SettingsError(
            "plug 'slurm': SLURM's commands (sbatch, sinfo) are not on PATH; run on a machine that "
            "submits to SLURM (a login node), or install slurm-client"
        )
    try:
        done = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise SettingsError("plug 'slurm': sinfo did not answer within 60 s; is slurmctld running?") from None
    if done.returncode != 0:
        why = " ".join(done.stderr.split())[:200] or f"exit status {done.returncode}"
        raise SettingsError(f"plug 'slurm': sinfo failed ({why}); is slurmctld running and SLURM_CONF right?")
    names = list(dict.fromkeys(line.strip() for line in done.stdout.splitlines() if line.strip()))
    return sorted(names, key=lambda name: not name.endswith("*"))


def check_partition(queue: str | None) -> None:
    """SettingsError unless `queue` (None: the default partition) is a partition of this SLURM."""
    names = partitions()
    known = [name.rstrip("*") for name in names]
    if queue is None and not any(name.endswith("*") for name in names):
        raise SettingsError(
            f"plug 'slurm': this SLURM has no default partition; give queue=NAME, one of {', '.join(known) or 'none'}"
        )
    if queue is not None and queue not in known:
        raise SettingsError(
            f"plug 'slurm': partition {queue!r} does not exist; give queue=NAME, one of {', '.join(known) or 'none'}"
        )
