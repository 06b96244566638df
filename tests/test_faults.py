"""Fault injection: `sdt run` killed, stopped or starved at start, mid-run and at shutdown.

Each case ends with nothing lost (every finished key on disk exactly once; `--resume`
completes the rest), nothing left behind (the `leak_check` fixture: processes and ports)
and at most 3 lines on stderr. Figures (seconds from the fault to the end) go to the file
named by $SDT_FAULT_FIGURES when it is set: the README's reliability table comes from there.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from sdt_core.output.results import LOG, RUN
from sdt_core.testing import free_port

from .conftest import SDT

KEYS = 30
DATA = f"sample://?systems={KEYS}&days=2&real=false"
SMALL_ARGS = ["--workers", "2", "--threads", "1", "--memory", "1", "--set", "dashboard_address=127.0.0.1:0"]
#: The periodic lines of the progress display (sdt_core.output.progress): not counted, they come with time.
PROGRESS = "sdt run: "
#: The first line of the closing summary of a run that completed.
SUMMARY = re.compile(r"^\d+ keys: \d+ ok, \d+ failed")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with a slow analysis: 0.3 s per key, so a fault lands mid-run."""
    (tmp_path / "slow_analysis.py").write_text(
        "import time\n\ndef slow(frame):\n    time.sleep(0.3)\n    return {'points': len(frame)}\n"
    )
    (tmp_path / "stuck_analysis.py").write_text(STUCK_ONCE)
    return tmp_path


#: The first key to run never returns; the others take 0.3 s.
STUCK_ONCE = """
import os
import time

FLAG = os.path.join(os.path.dirname(__file__), "stuck")

def stuck_once(frame):
    try:
        os.close(os.open(FLAG, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        time.sleep(0.3)
        return {"points": len(frame)}
    time.sleep(3600)
"""


def rows(out: Path) -> list[dict]:
    if not (out / LOG).exists():
        return []
    found = []
    for line in (out / LOG).read_text().splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # cut short by the fault: not counted, a resume runs the key again
    return found


class Run:
    """`sdt run` in its own session (a terminal's Ctrl-C reaches its whole process group)."""

    def __init__(
        self, cwd: Path, out: str = "out", extra: tuple[str, ...] = (), env: dict | None = None, data: str = DATA
    ) -> None:
        self.cwd, self.out = cwd, cwd / out
        args = [data, "--analysis", "slow_analysis:slow", "--out", out, "--no-report", *SMALL_ARGS, *extra]
        self.proc = subprocess.Popen(
            [str(SDT), "run", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=os.environ | (env or {}),
        )
        self.args = args
        self.stderr = ""
        self.seconds = 0.0  # from the fault to the end

    def wait_for(self, condition: Callable[[], bool], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc.poll() is None, f"ended before the fault: {self.proc.communicate()}"
            assert time.monotonic() < deadline, "the fault's moment never came"
            time.sleep(0.02)

    def done(self) -> int:
        return len(rows(self.out))

    def inject(self, fault: Callable[[], None], timeout: float = 180) -> int:
        start = time.monotonic()
        fault()
        _, self.stderr = self.proc.communicate(timeout=timeout)
        self.seconds = time.monotonic() - start
        return self.proc.returncode

    def lines(self) -> list[str]:
        """What stderr said besides the periodic progress lines: at most 3, no traceback."""
        said = [line for line in self.stderr.splitlines() if not line.startswith(PROGRESS)]
        ends = [i for i, line in enumerate(said) if SUMMARY.match(line)]
        said = said[: ends[0]] if ends else said  # a run that completed: all before its closing summary
        assert len(said) <= 3 and "Traceback" not in self.stderr, self.stderr
        return said

    def said(self) -> list[str]:
        """sdt's own lines of error (one, at most)."""
        return [line for line in self.lines() if line.startswith("sdt: ")]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.communicate()


@pytest.fixture
def start(folder: Path) -> Iterator[Callable[..., Run]]:
    started: list[Run] = []

    def run(**kwargs) -> Run:
        started.append(Run(folder, **kwargs))
        return started[-1]

    yield run
    for one in started:
        one.kill()


def record(fault: str, moment: str, outcome: str, run: Run) -> None:
    path = os.environ.get("SDT_FAULT_FIGURES")
    if path:
        figure = {"fault": fault, "moment": moment, "outcome": outcome, "exit": run.proc.returncode}
        figure |= {"stderr_lines": len(run.lines()), "seconds": round(run.seconds, 1), "said": run.lines()}
        with open(path, "a") as f:
            f.write(json.dumps(figure) + "\n")


def assert_nothing_lost(run: Run, extra: tuple[str, ...] = (), env: dict | None = None) -> None:
    """Every row on disk is one key once; a resume completes the rest, each key once."""
    keys = [tuple(r["key"]) for r in rows(run.out)]
    assert len(keys) == len(set(keys))
    assert all(r["status"] == "ok" for r in rows(run.out))
    resumed = subprocess.run(
        [str(SDT), "run", *run.args, "--resume", *extra],
        cwd=run.cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | (env or {}),
    )
    assert resumed.returncode == 0, resumed.stderr
    final = [tuple(r["key"]) for r in rows(run.out) if r["status"] == "ok"]
    assert len(final) == len(set(final)) == KEYS, f"{len(final)} rows, {len(set(final))} keys"
    earlier = f" ({len(keys)} done by an earlier run)" if keys else ""
    assert f"{KEYS} keys: {KEYS} ok, 0 failed{earlier} in " in resumed.stderr


# Signals: SIGINT (Ctrl-C: to the whole process group, as a terminal sends it) and SIGTERM.

MOMENTS = {
    "start": lambda run: (run.out / RUN).exists(),  # the folder is taken, the cluster starting
    "mid-run": lambda run: run.done() >= 5,
    "shutdown": lambda run: run.done() >= KEYS,  # every key written; the cluster closing
}


@pytest.mark.parametrize("moment", list(MOMENTS))
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_in_one_line(start, moment, signum):
    run = start()
    run.wait_for(lambda: MOMENTS[moment](run))
    to_group = signum == signal.SIGINT  # Ctrl-C reaches the workers too, unless they ignore it
    code = run.inject(lambda: os.killpg(run.proc.pid, signum) if to_group else run.proc.send_signal(signum))
    name = signal.Signals(signum).name
    assert code == 128 + signum, run.stderr
    done = run.done()
    assert run.said() == [
        f"sdt: stopped by {name}; {done} of {KEYS} keys done in out; the same command with --resume goes on"
    ], run.stderr
    record(name, moment, f"exit {code}, {done} keys kept", run)
    assert_nothing_lost(run)


def test_a_hangup_stops_the_run_like_sigterm(start):
    """SIGHUP to the process group, as a closed terminal or SSH session sends it (before: the run
    died at once, with no line, no fleet report and no cluster logs)."""
    run = start()
    run.wait_for(lambda: run.done() >= 5)
    code = run.inject(lambda: os.killpg(run.proc.pid, signal.SIGHUP))
    assert code == 128 + signal.SIGHUP, run.stderr
    done = run.done()
    assert run.said() == [
        f"sdt: stopped by SIGHUP; {done} of {KEYS} keys done in out; the same command with --resume goes on"
    ], run.stderr
    assert {"scheduler.log", "worker-0.log", "worker-1.log"} <= {p.name for p in (run.out / "logs").iterdir()}
    record("SIGHUP", "mid-run", f"exit {code}, {done} keys kept", run)
    assert_nothing_lost(run)


def test_a_stuck_key_is_failed_for_time_and_the_run_completes(start, folder):
    """A key that never returns (before: the run waited forever at 29/30)."""
    # CSV files: a replacement worker's first key reads one with pandas alone, well inside the
    # limit even on a loaded machine (the sample set's first load imports pvlib).
    data = folder / "csv"
    data.mkdir()
    index = pd.date_range("2024-01-01", periods=2 * 288, freq="5min")
    power = np.clip(np.sin(np.linspace(0, 4 * np.pi, len(index))), 0, None)
    for i in range(KEYS):
        pd.DataFrame({"timestamp": index, "ac_power": power}).to_csv(data / f"system-{i:02d}.csv", index=False)
    run = start(extra=("--analysis", "stuck_analysis:stuck_once", "--key-timeout", "20s"), data=str(data))
    run.wait_for(lambda: (folder / "stuck").exists())
    code = run.inject(lambda: None, timeout=300)
    assert code == 0, run.stderr
    found = rows(run.out)
    assert len(found) == len({tuple(r["key"]) for r in found}) == KEYS
    stages = [r["stage"] or "ok" for r in found]
    assert stages.count("timeout") == 1 and stages.count("ok") == KEYS - 1, stages
    assert run.said() == [], run.stderr
    record(
        "a key that never returns (--key-timeout 20s)", "mid-run", "its key failed (timeout), the run completes", run
    )


# Closed output: `--json | head -1`, and stdout and stderr closed (`>&- 2>&-`).


def test_a_closed_stdout_pipe_lets_the_run_finish(start):
    """`sdt run --json | head -1` (before: exit 1 after 2 of 30 keys, no message)."""
    run = start(extra=("--json",))
    assert json.loads(run.proc.stdout.readline())["status"] == "ok"  # what head -1 takes
    code = run.inject(run.proc.stdout.close)
    assert code == 0, run.stderr
    assert run.said() == [] and "Exception ignored" not in run.stderr, run.stderr
    found = [tuple(r["key"]) for r in rows(run.out)]
    assert len(found) == len(set(found)) == KEYS and all(r["status"] == "ok" for r in rows(run.out))
    assert "stdout was closed" in (run.out / "run.log").read_text()
    record("stdout a closed pipe (--json | head -1)", "mid-run", "run completes, every key ok once", run)


def test_closed_stdout_and_stderr_let_the_run_finish(folder):
    """`sdt run --json >&- 2>&-` (before: `AttributeError ... (unexpected)`, 0 keys; with only
    stderr closed, exit 1 and no message anywhere)."""
    args = [DATA, "--analysis", "slow_analysis:slow", "--out", "out", "--no-report", "--json", *SMALL_ARGS]
    closed = ["bash", "-c", 'exec "$0" "$@" >&- 2>&-', str(SDT), "run", *args]
    result = subprocess.run(closed, cwd=folder, capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    found = [tuple(r["key"]) for r in rows(folder / "out")]
    assert len(found) == len(set(found)) == KEYS and all(r["status"] == "ok" for r in rows(folder / "out"))


def test_kill_9_of_sdt_up_leaves_no_temporary_folder(tmp_path):
    """`sdt up local` killed with -9 left its forkserver's `pymp-*` folder and the workers'
    `dask-scratch-space` folders. The forkserver, which ends with its parent, removes its own;
    Dask removes its workers' at the next start there, as for any Dask cluster."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = os.environ | {"TMPDIR": str(temporary), "DASK_TEMPORARY_DIRECTORY": str(temporary)}
    up = [str(SDT), "up", "local", "--workers", "1", "--threads", "1", "--dashboard-address", "127.0.0.1:0"]
    proc = subprocess.Popen(up, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        while "Running" not in (line := proc.stdout.readline()):
            assert line, "sdt up ended before it was up"
        proc.kill()
        proc.wait()
        _no_orphans(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert list(temporary.glob("pymp-*")) == []
    again = subprocess.run([*up, "--check"], capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    left = [p.name for p in temporary.rglob("*") if p.is_dir()]
    assert left in ([], ["dask-scratch-space"]), left  # its lock files are Dask's to keep


# kill -9.


def test_kill_9_of_the_runner_loses_nothing(start):
    run = start()
    run.wait_for(lambda: run.done() >= 5)
    code = run.inject(lambda: run.proc.send_signal(signal.SIGKILL))
    assert code == -signal.SIGKILL
    assert run.said() == [], run.stderr  # at most the resource tracker's word on the runner's semaphores
    _no_orphans(run.proc.pid)
    record("kill -9 of the runner", "mid-run", f"{run.done()} keys kept", run)
    assert_nothing_lost(run)


def _no_orphans(pid: int, timeout: float = 30) -> None:
    """The workers of a killed runner end by themselves (they watch their parent)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in psutil.process_iter(["environ"]) if _started_by(p, pid)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left, left


def _started_by(proc: psutil.Process, pid: int) -> bool:
    try:
        return proc.pid != pid and proc.ppid() in (pid, 1) and "multiprocessing" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def _workers(pid: int) -> list[psutil.Process]:
    """The worker processes of runner `pid` (forked from its forkserver)."""
    server = [p for p in psutil.Process(pid).children() if "forkserver" in " ".join(p.cmdline())]
    return [w for s in server for w in s.children()]


def test_kill_9_of_a_worker_is_survived(start):
    run = start()
    run.wait_for(lambda: run.done() >= 5 and len(_workers(run.proc.pid)) == 2)
    code = run.inject(_workers(run.proc.pid)[0].kill, timeout=300)
    assert code == 0, run.stderr
    found = [tuple(r["key"]) for r in rows(run.out)]
    assert len(found) == len(set(found)) == KEYS and all(r["status"] == "ok" for r in rows(run.out))
    assert run.said() == [], run.stderr
    record("kill -9 of a worker", "mid-run", "run completes, every key ok once", run)


# The scheduler: the local plug's runs inside the runner's process (kill -9 of it is the
# runner's, above); here a scheduler of its own, with `dask worker`s, as on a real cluster.

REMOTE = """
import os
from distributed import Client
from sdt_core import ClientPlug

class Remote(ClientPlug):
    def init_client(self):
        self.client = Client(os.environ["SCHEDULER"], timeout=10)
        return self.client
"""


@pytest.fixture
def own_scheduler(folder: Path) -> Iterator[Callable[[], str]]:
    (folder / "remote_plug.py").write_text(REMOTE)
    processes: list[subprocess.Popen] = []

    def start_cluster() -> str:
        port = free_port()
        address = f"tcp://127.0.0.1:{port}"
        dask = Path(sys.executable).with_name("dask")
        common = {"cwd": folder, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        common |= {"env": os.environ | {"PYTHONPATH": str(folder)}}  # the workers import the analysis
        scheduler = [str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
        processes.append(subprocess.Popen(scheduler, **common, start_new_session=True))
        worker = [str(dask), "worker", address, "--nworkers", "2", "--nthreads", "1", "--memory-limit", "1GiB"]
        worker += ["--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "20"]
        processes.append(subprocess.Popen(worker, **common, start_new_session=True))
        return address

    yield start_cluster
    for proc in processes:
        with_children = [proc.pid] + [c.pid for c in _children(proc.pid)]
        for pid in with_children:
            with_suppress(lambda pid=pid: os.kill(pid, signal.SIGKILL))
        proc.wait()


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def with_suppress(action: Callable[[], None]) -> None:
    try:
        action()
    except (ProcessLookupError, psutil.Error):
        pass


def test_kill_9_of_the_scheduler_ends_the_run_in_one_line(start, own_scheduler):
    address = own_scheduler()
    env = {"SCHEDULER": address}
    run = start(extra=("--plug", "remote_plug:Remote"), env=env)
    run.wait_for(lambda: run.done() >= 5)
    scheduler = next(p for p in psutil.process_iter() if _is_scheduler(p, address))
    code = run.inject(scheduler.kill, timeout=300)
    assert code == 1, run.stderr
    assert run.said() == [
        "sdt: error: lost the connection to the scheduler (client connecting): the keys done are kept; "
        "once the cluster is back, the same command with --resume goes on"
    ], run.stderr
    record("kill -9 of the scheduler (its own process)", "mid-run", f"exit 1, {run.done()} keys kept", run)
    env["SCHEDULER"] = own_scheduler()
    assert_nothing_lost(run, ("--plug", "remote_plug:Remote"), env)


def _is_scheduler(proc: psutil.Process, address: str) -> bool:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    return "scheduler" in cmd and address.rsplit(":", 1)[1] in cmd


# Disk full on --out: a small tmpfs (root) that the results outgrow.


@pytest.fixture
def small_disk(folder: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root")
    mount = folder / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_ends_the_run_in_one_line_and_loses_nothing(start, small_disk):
    run = start(out="small/out")
    code = run.inject(lambda: None, timeout=300)
    assert code == 1, run.stderr
    assert run.said() == [
        "sdt: error: cannot write small/out/results.jsonl: No space left on device; the keys written are kept: "
        "make room, then the same command with --resume goes on"
    ], run.stderr
    assert 0 < run.done() < KEYS
    record("disk full on --out (20 KiB tmpfs)", "mid-run", f"exit 1, {run.done()} keys kept", run)
    subprocess.run(["mount", "-o", "remount,size=1m", str(small_disk)], check=True)
    assert_nothing_lost(run)
