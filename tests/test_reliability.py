"""The reliability contract of `sdt run`: it never hangs, never lies, never leaks.

Each test here is a case that did not hold before: a hang, two runs in one folder, a secret
shown, a traceback instead of one line, a key counted wrong.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from sdt_core import SdtError, get_plug, run
from sdt_core.output.results import LOG
from sdt_core.testing import SECRET, live_processes

from .conftest import SDT

SMALL = {"workers": 2, "threads": 1, "memory": 1, "dashboard_address": "127.0.0.1:0"}
SMALL_ARGS = ["--workers", "2", "--threads", "1", "--memory", "1", "--set", "dashboard_address=127.0.0.1:0"]
INVENTORY = "sdt_core.analysis:data_inventory"
TINY = "sample://?systems={n}&days=2&real=false"


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LOG).read_text().splitlines() if line.strip()]


def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    """A user's module in the current directory (the workers import it too)."""
    name = f"user_module_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


# Two runs, one folder.


def test_a_second_run_on_the_same_folder_is_refused_naming_the_first(sdt, tmp_path, monkeypatch):
    # The first run's keys wait at a gate the test opens once the second runs were refused, so
    # the first is still running however fast this machine is.
    started, gate = tmp_path / "started", tmp_path / "gate"
    slow = module(
        tmp_path,
        monkeypatch,
        f"""
        import pathlib, time
        def slow(frame):
            pathlib.Path({str(started)!r}).touch()
            deadline = time.monotonic() + 300
            while not pathlib.Path({str(gate)!r}).exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            return {{}}
        """,
    )
    args = [TINY.format(n=40), "--analysis", f"{slow}:slow", "--out", "out", "--no-report", *SMALL_ARGS]
    first = subprocess.Popen(
        [SDT, "run", *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.2)
        for extra in ([], ["--resume"]):
            second = sdt("run", *args, *extra, cwd=tmp_path)
            assert second.returncode == 2, second.stderr
            assert second.stderr.startswith(f"sdt: error: out is in use by another run (pid {first.pid} on ")
            assert second.stderr.endswith("wait for it to end, or choose another --out\n")
            assert second.stderr.count("\n") == 1
        gate.touch()
        assert first.wait(timeout=300) == 0, first.stderr.read()
    finally:
        first.kill()
        first.wait()
        first.stdout.close()
        first.stderr.close()
    keys = [tuple(r["key"]) for r in rows(tmp_path / "out")]
    assert len(keys) == len(set(keys)) == 40  # each key once
    again = sdt("run", *args, "--resume", cwd=tmp_path)  # the folder is free again
    assert again.returncode == 0, again.stderr


# Secrets.


def test_the_environment_of_the_workers_is_a_secret(tmp_path, monkeypatch, capsys):
    name = module(
        tmp_path,
        monkeypatch,
        "import os\ndef seen(frame):\n    return {'token_set': os.environ.get('TOKEN') is not None}\n",
    )
    settings = SMALL | {"workers": 1, "env": {"TOKEN": SECRET}}
    assert SECRET not in repr(get_plug("local", **settings))
    run(TINY.format(n=2), settings=settings, out=tmp_path / "out", analysis=f"{name}:seen", report=False)
    assert all(row["token_set"] for row in rows(tmp_path / "out"))  # it reached the workers
    files = [path for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert {"run.log", "scheduler.log", "worker-0.log"} <= {path.name for path in files}
    for path in files:
        assert SECRET not in path.read_text(errors="replace"), path
    assert SECRET not in "".join(capsys.readouterr())


# One line instead of a traceback, and nothing started.


@pytest.fixture
def user_files(tmp_path):
    (tmp_path / "syntax_error_mod.py").write_text("def f(:\n")
    (tmp_path / "raising_mod.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "binary.dat").write_bytes(b"\x00\xff\xfe\x01binary")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--memory", "inf"], "plug 'local': memory must be a finite number or None, got the string 'inf'"),
        (["run", "--memory", "0.01"], "plug 'local': memory must be >= 0.5, got 0.01"),
        (["run", "--memory", "1e9"], "plug 'local': memory 1e+09 GiB per worker is more than this machine's"),
        (
            ["run", "--set", "host=999.1.1.1"],
            "plug 'local': host must be a host name or an IP address, got the string '999.1.1.1'",
        ),
        (
            ["run", "--set", "dashboard_address=notanaddress"],
            "plug 'local': dashboard_address must be an address host:port, :port or port",
        ),
        (["run", "--set", "host=0.0.0.0"], "plug 'local': host 0.0.0.0 can be reached from other machines"),
        (
            ["run", "--limit", "99999999999999999999"],
            "--limit must be an integer from 1 to 1,000,000,000, got 99999999999999999999",
        ),
        (["run", "--workers", "99999999999999999999"], "plug 'local': workers must be at most 2,147,483,647, got "),
        (["run", ""], "DATA is empty: give a directory or a data plug URL, or leave it out for the sample set"),
        (
            ["run", "--analysis", "syntax_error_mod:f"],
            "cannot import the analysis module 'syntax_error_mod': SyntaxError: invalid syntax (",
        ),
        (
            ["run", "--analysis", "raising_mod:f"],
            "cannot import the analysis module 'raising_mod': RuntimeError: boom at import",
        ),
        (
            ["run", "--pipeline", "fix_shift=false"],
            "--pipeline fix_shift: SDT's run_pipeline takes no such keyword; did you mean 'fix_shifts'?",
        ),
        (
            ["run", "--loss-analysis", "--loss-option", "max_sample=50"],
            "--loss-option max_sample: SDT's run_loss_factor_analysis and estimate_degradation_rate take no such "
            "keyword; did you mean 'max_samples'?",
        ),
        (["sample-data", "x", "--days", "1000000000"], "Invalid value for '--days': 1000000000 is not in the range"),
        (
            ["doctor", "--image-packages", "binary.dat"],
            "binary.dat is not a text file; give the output of `pip list` or `pip freeze`",
        ),
    ],
    ids=[
        "memory-inf",
        "memory-tiny",
        "memory-huge",
        "bad-host",
        "bad-dashboard",
        "exposed-host",
        "huge-limit",
        "huge-workers",
        "empty-data",
        "analysis-syntax-error",
        "analysis-raises-on-import",
        "unknown-pipeline-keyword",
        "unknown-loss-option",
        "sample-data-days",
        "doctor-binary",
    ],
)
def test_bad_input_is_one_line_exit_2_and_starts_nothing(sdt, user_files, args, message):
    before = live_processes()
    result = sdt(*args, cwd=user_files)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"sdt: error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert live_processes() == before
    assert not (user_files / "sdt-results").exists()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write into, root included (root ignores permission bits: chattr +i)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
    yield folder
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("command", ["sample-data", "image"])
def test_writing_into_a_read_only_folder_is_one_line(sdt, read_only_folder, command):
    result = sdt(command, str(read_only_folder / "into"))
    assert result.returncode == 2, result.stderr
    assert result.stderr in {
        f"sdt: error: cannot write {read_only_folder / 'into'}: {reason}; choose another folder\n"
        for reason in ("Permission denied", "Operation not permitted")
    }


def test_a_backend_whose_start_fails_is_one_line_exit_1(sdt, tmp_path):
    with socket.socket() as taken:  # the scheduler's port is in use: only the start can tell
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = sdt("up", "local", "--workers", "1", "--threads", "1", "--set", f"scheduler_port={port}", "--check")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("sdt: error:")]
    assert lines == [
        "sdt: error: plug 'local': the cluster did not start: RuntimeError: Cluster failed to start: "
        "Scheduler failed to start."
    ]
    assert "Traceback" not in result.stderr


def test_a_dashboard_port_in_use_is_one_line(sdt):
    """Dask's warning took four lines of stderr (its source line and `warnings.warn(`)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["--workers", "1", "--threads", "1", "--dashboard-address", f"127.0.0.1:{port}", "--check"]
        result = sdt("up", "local", *args, timeout=300)
    assert result.returncode == 0, result.stderr
    warning, dashboard, closed = result.stderr.splitlines()
    assert warning.startswith(f"sdt up: Port {port} is already in use. Perhaps you already have a cluster running?")
    assert dashboard.startswith("Dask dashboard: http://127.0.0.1:") and closed == "Cluster closed."


def test_max_in_flight_and_retries_are_bounded(tmp_path):
    for bad in ({"max_in_flight": 0}, {"retries": -1}, {"limit": 0}):
        with pytest.raises(SdtError, match=f"--{next(iter(bad)).replace('_', '-')} must be an integer from"):
            run(TINY.format(n=1), settings=SMALL, out=tmp_path / "out", analysis=INVENTORY, **bad)
    assert not (tmp_path / "out").exists()


def test_an_exposed_scheduler_needs_insecure_and_then_warns(caplog):
    plug = get_plug("local", workers=1, threads=1, host="0.0.0.0", insecure=True, dashboard_address="127.0.0.1:0")
    assert plug.settings.host == "0.0.0.0"
    assert "host 0.0.0.0 can be reached from other machines (insecure=True)" in caplog.text


# Accounting: each key once, with the right status, permanent failures not run again.


def test_an_analysis_returning_a_non_mapping_or_a_reserved_field_fails_its_key_once(tmp_path, monkeypatch):
    name = module(
        tmp_path,
        monkeypatch,
        """
        def odd(frame):
            size = len(frame)
            if size % 3 == 0:
                return [size]
            if size % 3 == 1:
                return {"status": "ok", "key": "mine"}
            return {"size": size}
        """,
    )
    kwargs = {"settings": SMALL, "out": tmp_path / "out", "analysis": f"{name}:odd", "report": False}
    summary = run("sample://?systems=6&days=3&real=false", **kwargs)
    found = rows(tmp_path / "out")
    assert len(found) == 6 and summary.ok + summary.failed == 6
    for row in found:
        if row["status"] == "error":
            assert row["stage"] == "analysis"
            assert row["error"].startswith(
                (
                    "TypeError: the analysis returned list, not a mapping",
                    "ValueError: the analysis returned the field 'status'",
                )
            )
        else:
            assert set(row) >= {"size", "key", "status"} and row["key"][0].startswith("synthetic-")
    again = run("sample://?systems=6&days=3&real=false", resume=True, **kwargs)
    assert again.earlier == 6 and len(rows(tmp_path / "out")) == 6  # permanent: not run again


def test_a_key_that_kills_its_worker_is_recorded_once_and_not_run_again(tmp_path, monkeypatch):
    name = module(
        tmp_path,
        monkeypatch,
        """
        import os
        def fatal(frame):
            if frame.iloc[:, 0].max() == 7.0:
                os._exit(1)
            return {"ok": True}
        """,
    )
    folder = tmp_path / "data"
    folder.mkdir()
    times = pd.date_range("2024-01-01", periods=3 * 288, freq="5min")
    for power in (1.0, 7.0, 2.0):
        pd.DataFrame({"timestamp": times, "p": power}).to_csv(folder / f"p{power:g}.csv", index=False)
    kwargs = {"settings": SMALL, "out": tmp_path / "out", "analysis": f"{name}:fatal", "report": False}
    summary = run(str(folder), **kwargs)
    by_key = {row["key"][0]: row for row in rows(tmp_path / "out")}
    assert (summary.ok, summary.failed, len(rows(tmp_path / "out"))) == (2, 1, 3)
    assert by_key["p7"]["stage"] == "worker"
    assert by_key["p7"]["error"].startswith("KilledWorker: its worker process died each time it ran the key")
    again = run(str(folder), resume=True, **kwargs)
    assert again.earlier == 3 and len(rows(tmp_path / "out")) == 3


def test_an_analysis_raising_a_base_exception_fails_its_key_not_its_worker(tmp_path, monkeypatch):
    """sys.exit(), KeyboardInterrupt and a BaseException subclass of the analysis's own: each an
    `analysis` failure of its key, recorded once (before: stage `cluster`, rerun by every
    resume; SystemExit and KeyboardInterrupt became KilledWorker after ~30 s)."""
    name = module(
        tmp_path,
        monkeypatch,
        """
        import sys

        class Abort(BaseException):
            pass

        def odd(frame):
            size = len(set(frame.index.date))  # days (outages never take a whole one)
            if size == 3:
                sys.exit(3)
            if size == 4:
                raise KeyboardInterrupt
            if size == 5:
                raise Abort("the analysis's own")
            return {"days": size}
        """,
    )
    kwargs = {"settings": SMALL, "out": tmp_path / "out", "analysis": f"{name}:odd", "report": False}
    summary = run("sample://?systems=4&lengths=2,3,4,5&real=false", **kwargs)
    by_key = {row["key"][0]: row for row in rows(tmp_path / "out")}
    assert (summary.ok, summary.failed, len(by_key)) == (1, 3, 4), by_key
    errors = {by_key[f"synthetic-00{i}"]["error"] for i in (1, 2, 3)}
    assert errors == {"SystemExit: 3", "KeyboardInterrupt", "Abort: the analysis's own"}
    assert {by_key[f"synthetic-00{i}"]["stage"] for i in (1, 2, 3)} == {"analysis"}
    again = run("sample://?systems=4&lengths=2,3,4,5&real=false", resume=True, **kwargs)
    assert again.earlier == 4 and len(rows(tmp_path / "out")) == 4


def test_a_stop_while_the_fleet_report_is_written_waits_for_it(tmp_path, monkeypatch):
    """SIGTERM while report.html is being written: the report is finished, then the run stops
    (before: no report.html; a resume repaired it)."""
    from sdt_core.job import signals
    from sdt_core.output.report import page

    render = page.render

    def render_then_signalled(tables):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the page is being made
        return render(tables)

    monkeypatch.setattr(page, "render", render_then_signalled)
    with signals.stop_on_signals(), pytest.raises(signals.Stopped) as stopped:
        run(TINY.format(n=2), settings=SMALL | {"workers": 1}, out=tmp_path / "out", analysis=INVENTORY)
    assert stopped.value.exit_code == 143
    assert stopped.value.detail == f"2 of 2 keys done in {tmp_path / 'out'}; the same command with --resume goes on"
    assert "synthetic-001" in (tmp_path / "out" / "report.html").read_text()
    assert [p.name for p in (tmp_path / "out").glob(".*partial")] == []


def test_a_stop_just_after_the_folder_is_taken_says_what_was_done(tmp_path, monkeypatch):
    """SIGTERM the moment run.json is written (test_faults' moment "start"), before the run's
    keys are counted: the line still says how many keys are done and how to go on (before:
    "sdt: stopped by SIGTERM" alone, the stop outran the part of the run that told it)."""
    from sdt_core.job import signals
    from sdt_core.output import results

    write_whole = results.write_whole

    def written_then_signalled(path, data):
        write_whole(path, data)
        if path.name == results.RUN:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(results, "write_whole", written_then_signalled)
    with signals.stop_on_signals(), pytest.raises(signals.Stopped) as stopped:
        run(TINY.format(n=2), settings=SMALL | {"workers": 1}, out=tmp_path / "out", analysis=INVENTORY, report=False)
    assert stopped.value.exit_code == 143
    assert stopped.value.detail == f"0 of 2 keys done in {tmp_path / 'out'}; the same command with --resume goes on"


def test_a_task_the_cluster_cannot_run_gets_a_readable_row_that_a_resume_retries(tmp_path, monkeypatch):
    installed = tmp_path / "site"  # on the path, not the current directory's: pickled by reference
    installed.mkdir()
    name = module(
        installed,
        monkeypatch,
        """
        import multiprocessing
        if multiprocessing.parent_process() is not None:  # a worker process cannot import it
            raise ImportError("this module is not installed on the workers")
        def here(frame):
            return {"ok": True}
        """,
    )
    monkeypatch.chdir(tmp_path)
    kwargs = {"settings": SMALL, "out": tmp_path / "out", "analysis": f"{name}:here", "report": False}
    summary = run(TINY.format(n=2), **kwargs)  # before: Dask's worker lost its scheduler, and waited forever
    assert summary.failed == 2
    for row in rows(tmp_path / "out"):
        assert row["stage"] == "setup"
        assert row["error"] == "ImportError: this module is not installed on the workers"
    again = run(TINY.format(n=2), resume=True, **kwargs)
    assert again.earlier == 0 and len(rows(tmp_path / "out")) == 4  # run again: the environment failed


def test_a_resume_may_name_the_data_folder_relatively_or_absolutely(sdt, tmp_path):
    assert sdt("sample-data", "data", "--systems", "2", "--days", "2", cwd=tmp_path).returncode == 0
    args = ["--analysis", INVENTORY, "--out", "out", "--no-report", *SMALL_ARGS]
    first = sdt("run", "data", *args, "--limit", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = sdt("run", str(tmp_path / "data"), *args, "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "2 keys: 2 ok, 0 failed (1 done by an earlier run)" in again.stderr


def test_a_limited_resume_counts_only_its_keys(sdt, tmp_path):
    args = [TINY.format(n=20), "--analysis", INVENTORY, "--out", "out", "--no-report", *SMALL_ARGS]
    assert sdt("run", *args, cwd=tmp_path).returncode == 0
    again = sdt("run", *args, "--resume", "--limit", "5", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "5 keys: 5 ok, 0 failed (5 done by an earlier run)" in again.stderr


# Hangs: a bounded wait for a worker paused for memory.


def test_a_key_holding_more_memory_than_its_worker_has_fails_and_the_run_finishes(tmp_path, monkeypatch):
    name = module(
        tmp_path,
        monkeypatch,
        """
        import time
        import numpy as np
        def hog(frame):
            if frame.iloc[:, 0].max() == 9.0:
                block = np.ones(int(1.2 * 2**30) // 8)  # more than the worker's 1 GiB, held
                time.sleep(600)
            return {"fine": True}
        """,
    )
    folder = tmp_path / "data"
    folder.mkdir()
    times = pd.date_range("2024-01-01", periods=3 * 288, freq="5min")
    for power in (1.0, 9.0, 2.0, 3.0):
        pd.DataFrame({"timestamp": times, "p": power}).to_csv(folder / f"p{power:g}.csv", index=False)
    monkeypatch.setenv("DASK_SDT__PAUSE_TIMEOUT", "3")
    import dask.config

    dask.config.refresh()
    try:
        start = time.monotonic()
        summary = run(str(folder), settings=SMALL, out=tmp_path / "out", analysis=f"{name}:hog", report=False)
    finally:
        monkeypatch.delenv("DASK_SDT__PAUSE_TIMEOUT")
        dask.config.refresh()
    assert time.monotonic() - start < 120
    by_key = {row["key"][0]: row for row in rows(tmp_path / "out")}
    assert (summary.ok, summary.failed, len(by_key)) == (3, 1, 4)
    assert by_key["p9"]["stage"] == "memory"
    assert by_key["p9"]["error"].startswith("MemoryError: its worker stayed paused for memory (")


def test_workers_paused_for_memory_before_running_anything_end_the_run_in_one_line(tmp_path, monkeypatch):
    """Every worker process holds more than its pause threshold from its start: the run ends
    by itself in one line, nothing run. The warm-up pauses such a worker before it takes a key
    (`sdt_core.plugs.warmup.pause_if_over`; before it, Dask's memory monitor looked only an
    interval after the worker's start, and a worker ran keys or not as that race went), so the
    check before the first key finds every worker paused."""
    from sdt_core.job import access

    preload = module(
        tmp_path,
        monkeypatch,
        """
        import numpy as np
        held = []
        def dask_setup(worker):
            held.append(np.ones(int(0.6 * 2**30) // 8))  # more than the pause threshold of 0.5 GiB
        """,
    )
    monkeypatch.setattr(access, "PAUSED_GRACE", 3.0)  # the check's wait for a paused worker (30 s)
    monkeypatch.setenv("DASK_SDT__PAUSE_TIMEOUT", "2")  # were a key taken: the watchdog's wait
    import dask.config

    dask.config.refresh()
    start = time.monotonic()
    try:
        with pytest.raises(SdtError) as refused:
            run(
                TINY.format(n=3),
                settings=SMALL | {"workers": 1, "memory": 0.5, "preload": [preload]},
                out=tmp_path / "out",
                analysis=INVENTORY,
                report=False,
            )
    finally:
        monkeypatch.delenv("DASK_SDT__PAUSE_TIMEOUT")
        dask.config.refresh()
    assert re.fullmatch(
        r"every worker is paused for memory before the first key \(using \d+\.\d\d GiB of a 0\.50 GiB limit\): "
        r"give each worker more memory \(--memory\); nothing was run",
        str(refused.value),
    ), refused.value
    assert rows(tmp_path / "out") == []
    assert time.monotonic() - start < 120


STUCK = """
    import time
    import pandas as pd
    from sdt_core import DataPlug, setting

    DAYS = pd.date_range("2024-06-01", periods=2 * 288, freq="5min")

    class Stuck(DataPlug):
        fifo: str = setting("", "A FIFO nobody ever writes to.")

        def keys(self):
            return [("fine-1",), ("stuck-read",), ("stuck-analysis",), ("fine-2",)]

        def get_data(self, key):
            if key[0] == "stuck-read":
                open(self.fifo).read()  # blocks in the kernel: no writer ever comes
            power = 2.0 if key[0] == "stuck-analysis" else 1.0
            return pd.DataFrame({"timestamp": DAYS, "power": power})

    def stall(frame):
        if frame.iloc[:, 0].max() == 2.0:
            time.sleep(3600)
        return {"points": len(frame)}
"""


def test_a_key_that_never_returns_is_failed_for_time_and_the_run_goes_on(tmp_path, monkeypatch):
    """One key's read blocks on a FIFO, another's analysis sleeps: each is failed with stage
    `timeout` after the key timeout, its worker replaced; the others finish; a resume leaves
    them, unless asked (--rerun timeout)."""
    os.mkfifo(tmp_path / "fifo")
    name = module(tmp_path, monkeypatch, STUCK)
    from sdt_core import open_data

    data = open_data(plug=f"{name}:Stuck", fifo=str(tmp_path / "fifo"))
    kwargs = {"settings": SMALL, "out": tmp_path / "out", "analysis": f"{name}:stall", "report": False}
    start = time.monotonic()
    summary = run(data, key_timeout="10s", **kwargs)
    assert time.monotonic() - start < 300  # a bounded wait (most of it the cluster, on a loaded machine)
    by_key = {row["key"][0]: row for row in rows(tmp_path / "out")}
    assert (summary.ok, summary.failed, len(rows(tmp_path / "out"))) == (2, 2, 4)
    for stuck in ("stuck-read", "stuck-analysis"):
        assert by_key[stuck]["stage"] == "timeout"
        assert by_key[stuck]["error"].startswith("TimeoutError: the key ran longer than the key timeout of 10 s")
    again = run(data, resume=True, **kwargs)  # nothing to do: no cluster starts
    assert (again.earlier, len(rows(tmp_path / "out"))) == (4, 4)
    with pytest.raises(SdtError, match="--rerun goes with --resume"):
        run(data, rerun=["timeout"], **kwargs)


# One error path: any failure is one line and its exit code.


def test_an_unexpected_error_is_one_line_exit_1(sdt, tmp_path):
    """A user's ClientPlug whose start raises something sdt-core does not know (before: a traceback)."""
    (tmp_path / "user_plug.py").write_text(
        "from sdt_core import ClientPlug\n\n"
        "class Broken(ClientPlug):\n"
        "    def init_client(self):\n"
        "        raise LookupError('no such region\\n  (second line)')\n"
    )
    args = ["run", TINY.format(n=2), "--plug", "user_plug:Broken", "--analysis", INVENTORY, "--no-report"]
    result = sdt(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "sdt: error: LookupError: no such region (second line) (unexpected; -v shows where)\n"
    assert rows(tmp_path / "sdt-results") == []


def test_a_worker_replaced_for_memory_always_comes_back(tmp_path):
    """The watchdog replaces one worker five times in a row; each time its nanny starts a new one."""
    from distributed import Client, LocalCluster

    from sdt_core.job.watchdog import _replace_worker

    options = {"n_workers": 1, "threads_per_worker": 1, "memory_limit": "1GiB", "dashboard_address": "127.0.0.1:0"}
    with LocalCluster(host="127.0.0.1", **options) as cluster, Client(cluster, set_as_default=False) as client:
        pids = []
        for _ in range(5):
            (address, pid), *_ = client.run(os.getpid).items()
            pids.append(pid)
            assert client.run_on_scheduler(_replace_worker, address=address) == "OK"
            deadline = time.monotonic() + 120  # a new process's start: seconds, more on a loaded machine
            while len(workers := client.scheduler_info(n_workers=-1)["workers"]) != 1 or address in workers:
                assert time.monotonic() < deadline, "no new worker within 120 s"
                time.sleep(0.1)
        assert len(set(pids)) == 5


@pytest.mark.timeout(240)
def test_a_worker_that_comes_back_slowly_after_dying_is_not_given_up(tmp_path, monkeypatch):
    """The first key kills the only worker; its replacement takes 20 s to register. Before,
    Dask closed the worker's nanny 15 s after the loss (`lost-worker-timeout`), no worker ever
    came back and the run waited forever: how a run with keys that keep killing their workers hung."""
    name = module(
        tmp_path,
        monkeypatch,
        """
        import os
        import time

        def dask_setup(worker):
            if os.path.exists("died") and not os.path.exists("slept"):
                open("slept", "w").close()
                time.sleep(20)  # the new worker registers 20 s after the old one was lost

        def die_once(frame):
            if not os.path.exists("died"):
                open("died", "w").close()
                os._exit(1)
            return {"values": len(frame)}
        """,
    )
    summary = run(
        TINY.format(n=2),
        settings=SMALL | {"workers": 1, "preload": [name]},
        out=tmp_path / "out",
        analysis=f"{name}:die_once",
        report=False,
    )
    assert (tmp_path / "slept").exists()
    assert (summary.ok, summary.failed) == (2, 0)
    assert sorted(row["status"] for row in rows(tmp_path / "out")) == ["ok", "ok"]
