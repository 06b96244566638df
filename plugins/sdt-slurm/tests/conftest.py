"""A real single-node SLURM for the tests: munge, slurmctld and slurmd from Debian's packages.

The session's own SLURM runs as root from a folder of its own (its configuration, munge key
and socket, state, logs, free ports on 127.0.0.1), so nothing in /etc is changed. The daemons
run in the foreground as children of this process and are stopped at the end. A SLURM that
already answers (`scontrol ping` with the machine's own configuration) is used as it is and
left running. A daemon that does not start fails the session with its log; nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sdt_core.testing import free_port

DEBIAN_PACKAGES = "slurm-wlm munge"
PARTITION = "sdt"
#: A SLURM job's walltime can be at most this far past its limit before slurmctld notices.
SLURM_CHECK_INTERVAL = 30


@dataclass(frozen=True)
class Slurm:
    """The SLURM the tests submit to."""

    partition: str
    env: dict[str, str]  # the environment of its client commands (SLURM_CONF)
    log: Path | None  # slurmctld's log, when this session started it

    def run(self, *args: str) -> str:
        """A SLURM client command's output; fails the test if it fails."""
        result = subprocess.run(args, capture_output=True, text=True, env=os.environ | self.env, timeout=60)
        assert result.returncode == 0, f"{' '.join(args)} failed: {result.stderr.strip()}"
        return result.stdout

    def queue(self) -> list[str]:
        """The ids of the jobs in the queue (any state)."""
        return self.run("squeue", "--noheader", "--format=%i").split()

    def wait_empty(self, timeout: float = 60) -> list[str]:
        """Wait until the queue is empty; the jobs still in it after `timeout`."""
        deadline = time.monotonic() + timeout
        while (jobs := self.queue()) and time.monotonic() < deadline:
            time.sleep(0.5)
        return jobs


def _answers(env: dict[str, str]) -> bool:
    try:
        result = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, env=env, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and "UP" in result.stdout


def _existing() -> Slurm | None:
    """The machine's own SLURM, if it is running with a partition whose node is up."""
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    if shutil.which("scontrol") is None or not _answers(env):
        return None
    out = subprocess.run(
        ["sinfo", "--noheader", "--format=%R %t"], capture_output=True, text=True, env=env, timeout=20
    ).stdout
    up = [line.split()[0] for line in out.splitlines() if line.split()[1:] and line.split()[1] in ("idle", "mix")]
    return Slurm(partition=up[0].rstrip("*"), env={}, log=None) if up else None


def _config(folder: Path, host: str, ctld_port: int, slurmd_port: int, key: Path) -> str:
    cpus = os.cpu_count() or 1
    return f"""\
ClusterName=sdt-tests
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={folder}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
KillWait=5
MinJobAge=2
InactiveLimit=0
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=8000 State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


# SLURM 22.05 cannot turn cgroups off; with these slurmd starts without systemd or a mounted hierarchy.
CGROUP_CONF = "CgroupPlugin=cgroup/v1\nIgnoreSystemd=yes\nCgroupAutomount=no\n"


def _fail(what: str, log: Path | None = None) -> None:
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log and log.exists() else ""
    pytest.fail(f"SLURM for the tests: {what}" + (f"\n{log}:\n{tail}" if tail else ""), pytrace=False)


def _wait(check, timeout: float, what: str, log: Path | None, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        dead = [p for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            why = f"{dead[0].args[0]} exited with {dead[0].returncode}" if dead else f"not within {timeout:g} s"
            _fail(f"{what} ({why})", log)
        time.sleep(0.3)


def _start(folder: Path, procs: list[subprocess.Popen[bytes]]) -> Slurm:
    """Start munged, slurmctld and slurmd (added to `procs` as they start) and wait for an idle node."""
    missing = [name for name in ("munged", "mungekey", "slurmctld", "slurmd", "sbatch") if shutil.which(name) is None]
    if missing:
        _fail(
            f"{', '.join(missing)} not found: install Debian's {DEBIAN_PACKAGES} (`nox -s \"plug(plug='slurm')\"` does)"
        )
    if os.geteuid() != 0:
        _fail("slurmctld, slurmd and munged must be started as root: run the tests as root")
    folder.chmod(0o755)  # munged wants every folder above its socket open to all (not writable)
    for sub in ("munge", "state", "spool"):
        (folder / sub).mkdir(mode=0o755)
    key, munge = folder / "munge" / "munge.key", folder / "munge"
    subprocess.run(["mungekey", "-c", "-k", str(key)], check=True, capture_output=True)
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(_config(folder, host, free_port(), free_port(), key))
    (folder / "cgroup.conf").write_text(CGROUP_CONF)
    env = {"SLURM_CONF": str(conf)}
    daemon_env = {k: v for k, v in os.environ.items() if k.startswith(("PATH", "LANG", "LC_"))} | env

    def daemon(*args: str, log: Path) -> None:
        with log.open("ab") as out:
            procs.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=daemon_env))

    socket_path = munge / "munge.socket"
    daemon(
        "munged", "-F", f"--socket={socket_path}", f"--key-file={key}", f"--pid-file={munge}/munged.pid",
        f"--log-file={munge}/munged.log", f"--seed-file={munge}/munged.seed", log=munge / "munged.out",
    )  # fmt: skip
    _wait(socket_path.exists, 30, "munged did not start", munge / "munged.log", procs)
    daemon("slurmctld", "-D", "-f", str(conf), log=folder / "slurmctld.out")
    _wait(lambda: _answers(os.environ | env), 60, "slurmctld did not start", folder / "slurmctld.log", procs)
    daemon("slurmd", "-D", "-f", str(conf), log=folder / "slurmd.out")
    slurm = Slurm(partition=PARTITION, env=env, log=folder / "slurmctld.log")

    def idle() -> bool:
        return slurm.run("sinfo", "--noheader", "--format=%t", f"--partition={PARTITION}").strip() == "idle"

    _wait(idle, 90, "slurmd did not bring its node up (sinfo never showed it idle)", folder / "slurmd.log", procs)
    return slurm


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):  # slurmd, slurmctld, then munged
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def slurm() -> Iterator[Slurm]:
    """A running SLURM with one idle node; this process and those it starts submit to it."""
    existing = _existing()
    if existing is not None:
        yield existing
        return
    folder = Path(tempfile.mkdtemp(prefix="sdt-slurm-"))  # not under pytest's 0700 folder: see _start
    procs: list[subprocess.Popen[bytes]] = []
    try:
        service = _start(folder, procs)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in service.env.items():
                patch.setenv(name, value)
            yield service
            leftover = service.queue()
            if leftover:
                service.run("scancel", *leftover)
    finally:
        _stop(procs)
        shutil.rmtree(folder, ignore_errors=True)
