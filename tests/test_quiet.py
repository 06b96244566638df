"""A quiet terminal and every log kept: what `sdt run` shows, OUT/run.log and OUT/logs/.

Real runs of the local plug in subprocesses, with stderr a terminal (a pty) or a pipe (CI).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from sdt_core.output.run_log import RunLog
from sdt_core.output.terminal import Terminal

from .conftest import SDT

SMALL_ARGS = ["--workers", "2", "--threads", "1", "--memory", "1", "--set", "dashboard_address=127.0.0.1:0"]
TINY = "sample://?systems={n}&days=2&real=false"
#: A run.log entry's first line: time, level, logger, [source].
ENTRY = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Z]+ \S+ \[(client pid \d+|worker \S+ \S+|scheduler \S+)\] "
)
PLAIN_PROGRESS = re.compile(r"^sdt run: \d+/\d+ done, \d+ failed, [\d.]+ keys/s, ETA (\d+ s|\?)$")
BAR = re.compile(r"^\s*\d+%\|.*\| \d+/\d+ \[[^\]]*(key/s|s/key)(, failed=\d+)?\]$")


def summary_pattern(out: str, keys: int, ok: int, failed: int, workers: int = 2) -> list[re.Pattern[str]]:
    """The closing summary's lines, in order (an Errors line when keys failed)."""
    lines = [rf"{keys} keys: {ok} ok, {failed} failed in [\d.]+ s"]
    if failed:
        lines.append(r"Errors: .+")
    lines += [
        r"Cluster: started by plug 'local'; closed at the end",
        rf"Summary: {out}/summary.csv and {out}/summary.parquet",
        rf"Fleet report: {out}/report.html",
        rf"Dask report: {out}/dask-report.html",
        rf"Logs: {out}/logs/ \(scheduler and {workers} workers?\)",
        rf"(\d+) warnings and log records in {out}/run.log",
    ]
    return [re.compile(f"^{line}$") for line in lines]


def entries(run_log: Path) -> list[str]:
    """run.log's entries (an entry's traceback lines belong to it)."""
    found: list[str] = []
    for line in run_log.read_text().splitlines():
        if ENTRY.match(line):
            found.append(line)
        else:
            assert found, f"run.log starts with a line that is no entry: {line!r}"
            found[-1] += "\n" + line
    return found


def check_summary(lines: list[str], out: str, keys: int, ok: int, failed: int) -> int:
    """Assert the last lines are the summary; return the run.log count it gives."""
    patterns = summary_pattern(out, keys, ok, failed)
    tail = lines[-len(patterns) :]
    for pattern, line in zip(patterns, tail, strict=True):
        assert pattern.match(line), (pattern.pattern, line, lines)
    count = patterns[-1].match(tail[-1])
    assert count is not None
    return int(count[1])


def check_logs(out: Path, workers: int = 2) -> None:
    logs = out / "logs"
    assert "distributed.scheduler - INFO - Register worker" in (logs / "scheduler.log").read_text()
    for name in range(workers):
        assert "distributed.worker - INFO -       Start worker at:" in (logs / f"worker-{name}.log").read_text()
        assert (logs / f"nanny-{name}.log").exists()


def run_on_a_pty(args: list[str], cwd: Path, timeout: float) -> tuple[int, str, str]:
    """`sdt run ARGS` with stderr on a terminal (a pty) and stdout on a pipe: (code, stdout, stderr)."""
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal of 120 columns
    env = dict(os.environ)
    with subprocess.Popen(
        [str(SDT), "run", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=child, env=env
    ) as proc:
        os.close(child)
        chunks = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([parent], [], [], 1)
                if ready:
                    try:
                        chunk = os.read(parent, 65536)
                    except OSError:  # the child closed the terminal
                        break
                    if not chunk:
                        break
                    chunks.append(chunk)
                elif proc.poll() is not None:
                    break
            assert proc.stdout is not None
            stdout = proc.stdout.read().decode()
            code = proc.wait(timeout=max(1, deadline - time.monotonic()))
        finally:
            proc.kill()
            os.close(parent)
    return code, stdout, b"".join(chunks).decode(errors="replace")


def test_the_default_run_shows_a_bar_and_the_summary_and_keeps_the_warnings_in_run_log(tmp_path):
    """The README's main job (--limit 4 of the sample set): before, 18 Dask and SciPy warnings
    among the 30 lines of stderr."""
    code, stdout, stderr = run_on_a_pty(["--limit", "4", "--out", "out"], tmp_path, timeout=540)
    assert code == 0, stderr
    assert stdout == ""
    lines = stderr.replace("\r\n", "\n").split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    count = check_summary(lines, "out", 4, 4, 0)
    bar = lines[: -len(summary_pattern("out", 4, 4, 0))]
    assert len(bar) == 1, bar  # the bar: one line, redrawn in place
    redraws = [part for part in re.split(r"\r|\x1b\[A", bar[0]) if part.strip()]
    assert redraws and all(BAR.match(part) for part in redraws), redraws
    assert re.match(r"^100%\|.*\| 4/4 \[.*, failed=0\]$", redraws[-1]), redraws[-1]
    hidden = entries(tmp_path / "out" / "run.log")
    assert len(hidden) == count
    sdt_warnings = [e for e in hidden if "SmallSampleWarning" in e]
    assert sdt_warnings and all(re.search(r"\[worker \d+ tcp://127\.0\.0\.1:\d+\]", e) for e in sdt_warnings)
    check_logs(tmp_path / "out")


@pytest.fixture
def user_module(tmp_path):
    """Write a module of analyses to the run's folder (the workers import it from there)."""

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return write


def test_a_failed_run_keeps_the_logs_and_each_error_row_points_to_its_workers_log(tmp_path, user_module):
    name = user_module(
        "always_fails",
        """
        def analyse(frame):
            raise ValueError(f"no good: {len(frame)} values")
        """,
    )
    args = [TINY.format(n=3), "--analysis", f"{name}:analyse", "--out", "out", "--json", *SMALL_ARGS]
    result = subprocess.run([SDT, "run", *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 3 and {e["status"] for e in events} == {"error"}
    lines = result.stderr.splitlines()
    count = check_summary(lines, "out", 3, 0, 3)
    assert "Errors: 3 x ValueError in analysis" in lines
    assert all(PLAIN_PROGRESS.match(line) for line in lines[: -len(summary_pattern("out", 3, 0, 3))]), lines
    out = tmp_path / "out"
    for event in events:
        assert re.fullmatch(r"logs/worker-[01]\.log", event["worker_log"]), event
        detail = (out / event["worker_log"]).read_text()
        assert f"sdt_core.job.task - ERROR - key {event['key']} failed in analysis" in detail
        assert "Traceback (most recent call last)" in detail and event["error"] in detail
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["worker_log"] for r in rows) == sorted(e["worker_log"] for e in events)
    assert len(entries(out / "run.log")) == count >= 3
    check_logs(out)


def test_quiet_shows_only_the_summary_and_verbose_shows_the_records_as_they_happen(tmp_path, user_module):
    name = user_module(
        "noisy",
        """
        import warnings

        def analyse(frame):
            warnings.warn(f"odd data: {len(frame)} values", UserWarning)
            return {"values": len(frame)}
        """,
    )
    common = [TINY.format(n=2), "--analysis", f"{name}:analyse", "--no-report", *SMALL_ARGS]
    quiet = subprocess.run(
        [SDT, "run", *common, "-q", "--out", "q"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stderr.splitlines()
    assert len(lines) == 5, lines  # keys, cluster, summary files, logs, run.log
    assert lines[0].startswith("2 keys: 2 ok, 0 failed in ")
    assert re.fullmatch(r"\d+ warnings and log records in q/run.log", lines[-1])
    assert any("UserWarning: odd data" in e for e in entries(tmp_path / "q" / "run.log"))
    verbose = subprocess.run(
        [SDT, "run", *common, "-v", "--out", "v"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert verbose.returncode == 0, verbose.stderr
    shown = [line for line in verbose.stderr.splitlines() if ENTRY.match(line)]
    assert any("UserWarning: odd data" in line and "[worker " in line for line in shown), verbose.stderr
    assert len(shown) == len(entries(tmp_path / "v" / "run.log"))


@pytest.mark.parametrize("stop", ["SIGTERM", "Ctrl-C"])
def test_a_run_stopped_by_sigterm_or_ctrl_c_keeps_the_scheduler_and_worker_logs(tmp_path, user_module, stop):
    """SIGTERM reaches `sdt` alone; a terminal's Ctrl-C sends SIGINT to its whole process
    group, the local workers included (before, they died before their logs were read)."""
    name = user_module(
        "stuck",
        """
        import os, time
        from pathlib import Path

        def analyse(frame):
            Path(f"running-{os.getpid()}").touch()
            time.sleep(600)
        """,
    )
    args = [TINY.format(n=4), "--analysis", f"{name}:analyse", "--out", "out", "--no-report", *SMALL_ARGS]
    with subprocess.Popen(
        [SDT, "run", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a shell gives a command
    ) as proc:
        try:
            deadline = time.monotonic() + 240
            while len(list(tmp_path.glob("running-*"))) < 2:  # both workers in a key
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.2)
            if stop == "SIGTERM":
                proc.send_signal(signal.SIGTERM)
            else:
                os.killpg(proc.pid, signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=180)
        finally:
            proc.kill()
    assert proc.returncode in (130, 143), stderr  # 143: SIGTERM, once told apart from Ctrl-C
    assert "Traceback" not in stderr and stdout == ""
    check_logs(tmp_path / "out")


def test_holding_sends_this_process_and_its_children_output_to_a_file_and_restores_the_terminal(tmp_path, capfd):
    terminal = Terminal()
    with terminal.holding(tmp_path / "logs" / "stderr.log"):
        subprocess.run([sys.executable, "-c", "import sys; print('child out'); print('child err', file=sys.stderr)"])
        os.write(2, b"raw fd 2\n")
        terminal.err.write("to the terminal\n")
        terminal.err.flush()
    os.write(2, b"after\n")
    held = (tmp_path / "logs" / "stderr.log").read_text()
    assert held.splitlines() == ["child out", "child err", "raw fd 2"]
    shown = capfd.readouterr()
    assert "child" not in shown.out + shown.err and "raw fd 2" not in shown.err
    assert shown.err.endswith("after\n")


def test_the_run_log_takes_the_terminals_handlers_and_warnings_and_gives_them_back(tmp_path, capsys):
    logger = logging.getLogger("distributed.example")
    terminal_handler = logging.StreamHandler(sys.stderr)
    parent = logging.getLogger("distributed")
    parent.addHandler(terminal_handler)
    step = logging.getLogger("sdt_core.example")
    step.setLevel(logging.INFO)  # as `sdt` sets it
    try:
        echoed: list[str] = []
        with RunLog(tmp_path / "run.log", echo=echoed.append) as run_log:
            logger.warning("unmanaged memory is high")
            step.info("an sdt-core step")
            logging.getLogger("other.library").info("chatter that is not kept")
            warnings.warn("a warning of the client", UserWarning, stacklevel=1)
        assert run_log.count == 3 == len(echoed)
        assert terminal_handler in parent.handlers
        assert capsys.readouterr().err == ""
        written = entries(tmp_path / "run.log")
        assert [e.split(" ", 4)[2:4] for e in written] == [
            ["WARNING", "distributed.example"],
            ["INFO", "sdt_core.example"],
            ["WARNING", "py.warnings"],
        ]
        assert f"[client pid {os.getpid()}]" in written[0]
        logger.warning("after the run")
        assert "after the run" in capsys.readouterr().err
    finally:
        parent.removeHandler(terminal_handler)
        step.setLevel(logging.NOTSET)


def test_logs_of_a_run_whose_worker_died_are_read_from_the_live_workers_at_once(tmp_path, user_module):
    """The first key fails on worker 0, the second kills worker 0's process, the nanny starts a
    new one. Before, the end of the run asked the dead worker's address for its log: 30 s of
    connection timeout, a log "could not be read", and asyncio's traceback after the summary."""
    name = user_module(
        "fail_then_die",
        """
        import os

        def first(marker):
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                return True
            except FileExistsError:
                return False

        def analyse(frame):
            if first("failed"):
                raise ValueError("the first key fails")
            if first("died"):
                os._exit(1)  # the worker process dies; its key runs again on the new one
            return {"values": len(frame)}
        """,
    )
    args = [TINY.format(n=3), "--analysis", f"{name}:analyse", "--out", "out", *SMALL_ARGS]
    args[args.index("--workers") + 1] = "1"
    start = time.monotonic()
    result = subprocess.run([SDT, "run", *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "died").exists()
    lines = result.stderr.splitlines()
    patterns = summary_pattern("out", 3, 2, 1, workers=1)
    for pattern, line in zip(patterns, lines[-len(patterns) :], strict=True):
        assert pattern.match(line), (pattern.pattern, line, lines)
    assert "Traceback" not in result.stderr
    run_log = (tmp_path / "out" / "run.log").read_text()
    assert "could not be read" not in run_log
    check_logs(tmp_path / "out", workers=1)
    assert seconds < 30 + 60, seconds  # no connection timeout (30 s) on top of a run of seconds


def test_main_in_one_process_keeps_one_handler_and_writes_to_the_stderr_of_the_moment(capsys):
    from sdt_core.cli import main

    root = logging.getLogger()
    before = list(root.handlers)
    for _ in range(3):
        with pytest.raises(SystemExit):
            main(["plugs", "--help"])
    added = [h for h in root.handlers if h not in before]
    assert len(added) == 1
    capsys.readouterr()
    logging.getLogger("sdt_core.test").warning("after the captures changed")
    assert capsys.readouterr().err == "WARNING: after the captures changed\n"


@pytest.mark.parametrize("processes", [False, True])
def test_a_failed_runs_quiet_close_gives_distributeds_loggers_their_levels_back(processes):
    """A failed run closes its cluster with distributed's records below ERROR dropped; afterwards
    the loggers are as before the run, not at the level a LocalCluster's `silence_logs` held while
    it lived, nor where `_drop_records` put the workers' (a worker of threads shares this process's)."""
    from sdt_core import get_plug
    from sdt_core.job import signals

    loggers = [logging.getLogger(name) for name in signals.SHUTDOWN_LOGGERS]
    before = [lg.level for lg in loggers]
    plug = get_plug("local", workers=1, threads=1, memory=0.5, processes=processes, silence_logs=logging.ERROR)
    with pytest.raises(RuntimeError, match="the run failed"):
        with signals.running(plug):
            raise RuntimeError("the run failed")
    assert [lg.level for lg in loggers] == before


def test_the_run_log_takes_sdts_own_handler_made_while_another_stderr_was_current(tmp_path, monkeypatch):
    """`sdt`'s root handler writes to the stderr of the moment: a run log started after the stream
    was swapped (a test's capture, a notebook's redirect) still takes it off the root logger."""
    import io

    from sdt_core.cli import main

    root = logging.getLogger()
    with pytest.raises(SystemExit):
        main(["plugs", "--help"])  # gives the root logger sdt's handler, bound to this stderr
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    with RunLog(tmp_path / "run.log") as run_log:
        logging.getLogger("sdt_core.example").warning("into run.log only")
    assert run_log.count == 1 and terminal.getvalue() == ""
    assert any(type(h).__name__ == "_Stderr" for h in root.handlers)  # given back
