"""The main job: `sdt run` and `sdt_core.run`, on real LocalClusters."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import textwrap
import time
import uuid

import numpy as np
import pandas as pd
import psutil
import pytest

from sdt_core import run
from sdt_core.dataplugs.sample import REAL_SYSTEMS
from sdt_core.output.progress import Progress
from sdt_core.output.results import LOG
from sdt_core.testing import live_processes

from .conftest import SDT

#: The built-in plugs, all installed in the suite's environment, as an unknown plug's error lists them.
PLUGS = "address, azure, fargate, gateway, local, slurm, ssh"

SMALL = {"workers": 2, "threads": 1, "memory": 1, "dashboard_address": "127.0.0.1:0"}
SMALL_ARGS = ["--workers", "2", "--threads", "1", "--memory", "1", "--set", "dashboard_address=127.0.0.1:0"]
INVENTORY = "sdt_core.analysis:data_inventory"
DAYS = pd.date_range("2024-06-01", periods=3 * 288, freq="5min")


def analysis_module(tmp_path, monkeypatch, source: str) -> str:
    """A user's analysis module in the current directory, as `sdt run --analysis` finds it."""
    name = f"user_analysis_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.chdir(tmp_path)
    return name


def log_rows(out) -> list[dict]:
    rows = []
    for line in (out / LOG).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
    return rows


def wait_for_rows(out, count: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not ((out / LOG).exists() and len(log_rows(out)) >= count):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        assert time.monotonic() < deadline, f"fewer than {count} rows after {timeout} s"
        time.sleep(0.2)


def test_the_default_run_analyses_the_embedded_sample_set(sdt, tmp_path):
    """The README's main-job command: no DATA, the local plug, SDT's pipeline."""
    result = sdt("run", cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "sdt-results"
    assert "Summary: sdt-results/summary.csv and sdt-results/summary.parquet" in result.stderr
    assert "Dask report: sdt-results/dask-report.html" in result.stderr
    assert (out / "dask-report.html").stat().st_size > 10_000
    table = pd.read_csv(out / "summary.csv").set_index("key_field_0")
    assert len(table) == 6 and table.index.is_unique
    for system in REAL_SYSTEMS:
        row = table.loc[system]
        assert row["status"] == "ok", row["error"]
        assert row["capacity"] > 0 and 0 <= row["quality score"] <= 1
    assert (table["status"] == "ok").all(), table[["status", "stage", "error"]]
    assert pd.read_parquet(out / "summary.parquet").shape == table.reset_index().shape
    assert "6/6 done, 0 failed" in result.stderr  # plain progress lines when not on a terminal


def test_a_killed_run_resumes_with_every_key_exactly_once(tmp_path):
    out = tmp_path / "out"
    command = [
        SDT,
        "run",
        "sample://?systems=2000&days=2&real=false",
        "--analysis",
        INVENTORY,
        "--out",
        str(out),
        "--no-report",
        *SMALL_ARGS,
    ]
    before = set(live_processes())
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_rows(out, 200, proc)
        started = set(live_processes()) - before
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    done_before = {tuple(r["key"]) for r in log_rows(out)}
    assert 200 <= len(done_before) < 2000
    deadline = time.monotonic() + 30
    while started & set(live_processes()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not started & set(live_processes()), "workers outlived their killed client"

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"2000 keys: 2000 ok, 0 failed ({len(done_before)} done by an earlier run)" in resumed.stderr
    rows = log_rows(out)
    assert len(rows) == len({tuple(r["key"]) for r in rows}) == 2000  # no key twice, none missing
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == summary["key_field_0"].nunique() == 2000


def test_a_worker_killed_during_the_run_costs_no_key_and_repeats_none(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            SDT,
            "run",
            "sample://?systems=400&days=2&real=false",
            "--analysis",
            INVENTORY,
            "--out",
            str(out),
            "--no-report",
            *SMALL_ARGS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_rows(out, 50, proc)
        servers = [p for p in psutil.Process(proc.pid).children() if "forkserver" in " ".join(p.cmdline())]
        workers = [worker for server in servers for worker in server.children()]  # forked from the local plug's
        assert len(workers) == 2
        workers[0].send_signal(signal.SIGKILL)
        deadline, started = time.monotonic() + 120, set()
        while not started:  # the nanny forks a new worker while the survivor goes on
            assert proc.poll() is None and time.monotonic() < deadline, "no new worker before the run ended"
            started = {w.pid for s in servers for w in s.children()} - {w.pid for w in workers}
            time.sleep(0.2)
        _, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, stderr
    assert "400 keys: 400 ok, 0 failed" in stderr
    rows = log_rows(out)
    assert len(rows) == len({tuple(r["key"]) for r in rows}) == 400


def write_systems(folder):
    folder.mkdir()
    pd.DataFrame({"timestamp": DAYS, "ac_power": np.linspace(0, 5, len(DAYS))}).to_csv(folder / "good.csv", index=False)
    (folder / "corrupt.csv").write_bytes(b"\x00\x01\x02\xff\xfe garbage")
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(folder / "no-timestamp.csv", index=False)
    pd.DataFrame({"timestamp": DAYS[:2], "site": ["x", "y"]}).to_csv(folder / "no-power.csv", index=False)
    pd.DataFrame({"timestamp": DAYS[:200], "p": np.ones(200)}).to_csv(folder / "short.csv", index=False)
    pd.DataFrame({"timestamp": DAYS, "p": np.ones(len(DAYS))}).to_csv(folder / "fails-analysis.csv", index=False)


def test_bad_data_and_a_failing_analysis_give_error_rows_and_the_run_goes_on(tmp_path, monkeypatch):
    write_systems(tmp_path / "data")
    module = analysis_module(
        tmp_path,
        monkeypatch,
        """
        def peak(frame):
            if frame.iloc[:, 0].max() == 1.0:
                raise ArithmeticError("no variation\\nin this system")
            return {"peak": float(frame.iloc[:, 0].max())}
    """,
    )
    summary = run(str(tmp_path / "data"), settings=SMALL, out=tmp_path / "out", analysis=f"{module}:peak", report=False)
    assert (summary.keys, summary.ok, summary.failed) == (6, 1, 5)
    table = pd.read_csv(summary.summary_csv).set_index("key_field_0")
    assert table.loc["good", "peak"] == 5.0 and table.loc["good", "status"] == "ok"
    expected = {
        "corrupt": ("load", "ValueError: not a readable CSV file"),
        "no-timestamp": ("load", "ValueError: no timestamp column: none of a, b holds dates"),
        "no-power": ("load", "ValueError: no power column: none of site is numeric"),
        "short": ("load", "ValueError: under a day of data: 200 values over 0 days 16:35:00"),
        "fails-analysis": ("analysis", "ArithmeticError: no variation in this system"),
    }
    for key, (stage, error) in expected.items():
        assert table.loc[key, "status"] == "error"
        assert (table.loc[key, "stage"], table.loc[key, "error"][: len(error)]) == (stage, error)


def test_keys_in_flight_stay_bounded(tmp_path, monkeypatch):
    module = analysis_module(
        tmp_path,
        monkeypatch,
        """
        from distributed import get_client

        def tasks_on_scheduler(frame):
            count = get_client().run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            return {"tasks": count}
    """,
    )
    summary = run(
        "sample://?systems=60&days=2&real=false",
        settings=SMALL,
        out=tmp_path / "out",
        analysis=f"{module}:tasks_on_scheduler",
        max_in_flight=6,
        report=False,
    )
    tasks = pd.read_csv(summary.summary_csv)["tasks"]
    # At most 6 in flight, plus finished ones the scheduler has not yet seen released.
    assert summary.ok == 60 and tasks.max() <= 2 * 6


def test_the_pipeline_and_loss_analysis_options_reach_sdt(tmp_path):
    summary = run(
        "sample://?systems=1&days=30&real=false",
        settings=SMALL,
        out=tmp_path / "out",
        loss_analysis=True,
        pipeline={"fix_shifts": False},
        loss_options={"max_samples": 50, "num_harmonics": 3},
        report=False,
    )
    row = pd.read_csv(summary.summary_csv).iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["loss_analysis"] == "skipped: 30 days, needs more than 365"
    assert json.loads((tmp_path / "out" / "run.json").read_text())["analysis"]["options"] == {
        "loss_analysis": True,
        "fix_shifts": False,
        "loss_options": {"max_samples": 50, "num_harmonics": 3},
    }


def test_a_finished_run_resumed_starts_no_cluster(tmp_path):
    kwargs = {"settings": SMALL, "out": tmp_path / "out", "analysis": INVENTORY, "report": False}
    first = run("sample://?systems=3&days=2&real=false", **kwargs)
    before = live_processes()
    again = run("sample://?systems=3&days=2&real=false", resume=True, **kwargs)
    assert (again.keys, again.ok, again.earlier) == (3, 3, 3) and live_processes() == before
    assert pd.read_csv(again.summary_csv).equals(pd.read_csv(first.summary_csv))


def test_an_interrupted_log_line_is_never_glued_to_the_next(tmp_path):
    kwargs = {"settings": SMALL, "out": tmp_path / "out", "analysis": INVENTORY, "report": False}
    run("sample://?systems=2&days=2&real=false", limit=1, **kwargs)
    with (tmp_path / "out" / LOG).open("a") as log:
        log.write('{"key": ["synthetic-001"], "status": "o')  # a kill in the middle of a write
    summary = run("sample://?systems=2&days=2&real=false", resume=True, **kwargs)
    assert (summary.keys, summary.ok, summary.earlier) == (2, 2, 1)


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    bar, lines = Terminal(), io.StringIO()
    for stream in (bar, lines):
        progress = Progress(total=10, done=2, interval=0.0, stream=stream)
        progress.update(ok=5, failed=1)
        progress.close()
    assert "8/10" in bar.getvalue() and "failed=1" in bar.getvalue() and "key/s" in bar.getvalue()
    assert lines.getvalue().startswith("sdt run: 8/10 done, 1 failed, ") and "keys/s, ETA" in lines.getvalue()


@pytest.fixture
def data_dir(tmp_path):
    write_systems(tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["{tmp}/missing"],
            "sdt: error: data directory {tmp}/missing does not exist; give a folder of CSV or Parquet files",
        ),
        (
            ["{tmp}/empty"],
            "sdt: error: no data: {tmp}/empty has no CSV or Parquet files; give a folder of them, "
            "or name the files' ending with ext=... (--data-option ext=...)",
        ),
        (
            ["gs://bucket/x"],
            "sdt: error: unknown data plug 'gs'; installed data plugs: abfs, az, csv, file, parquet, pvdaq, s3, sample",
        ),
        (
            ["{data}", "--out", "{data}/good.csv/out"],
            "sdt: error: cannot write to the output folder {data}/good.csv/out: Not a directory; choose another --out",
        ),
        (
            ["{data}", "--analysis", "no_such_module_xyz:f"],
            "sdt: error: cannot import the analysis module 'no_such_module_xyz': No module named 'no_such_module_xyz'",
        ),
        (
            ["{data}", "--analysis", "sdt_core.analysis:nope"],
            "sdt: error: module 'sdt_core.analysis' has no function 'nope' (--analysis sdt_core.analysis:nope)",
        ),
        (["{data}", "--analysis", "justaname"], "sdt: error: --analysis takes MODULE:FUNCTION, got 'justaname'"),
        (
            ["{data}", "--analysis", INVENTORY, "--loss-analysis"],
            "sdt: error: --loss-analysis, --loss-option and --pipeline options apply to SDT's pipeline, "
            "not to --analysis",
        ),
        (
            ["{data}", "--plug", "nosuch"],
            "sdt: error: unknown plug 'nosuch'; installed plugs: " + PLUGS,
        ),
        (["{data}", "--workers", "0"], "sdt: error: plug 'local': workers must be >= 1, got 0"),
        (
            ["{data}", "--limit", "0"],
            "sdt: error: Invalid value for '--limit': 0 is not in the range x>=1. (see `sdt run --help`)",
        ),
    ],
    ids=[
        "missing-dir",
        "empty-dir",
        "unknown-scheme",
        "unwritable-out",
        "unknown-module",
        "unknown-function",
        "not-module-function",
        "loss-with-analysis",
        "unknown-plug",
        "bad-setting",
        "bad-limit",
    ],
)
def test_bad_input_is_one_line_exit_2_and_starts_nothing(sdt, tmp_path, data_dir, args, message):
    (tmp_path / "empty").mkdir()
    fill = {"tmp": tmp_path, "data": data_dir}
    before = live_processes()
    result = sdt("run", *(a.format(**fill) for a in args), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, message.format(**fill) + "\n")
    assert live_processes() == before
    assert not (tmp_path / "sdt-results").exists()


def test_an_earlier_run_in_the_output_folder_needs_resume_and_the_same_analysis(sdt, tmp_path, data_dir):
    first = sdt("run", str(data_dir), "--analysis", INVENTORY, "--out", "out", "--no-report", *SMALL_ARGS, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = sdt("run", str(data_dir), "--analysis", INVENTORY, "--out", "out", cwd=tmp_path)
    assert (again.returncode, again.stderr) == (
        2,
        "sdt: error: out holds results of an earlier run; add --resume to go on with it, or choose another --out\n",
    )
    other = sdt("run", str(data_dir), "--out", "out", "--resume", cwd=tmp_path)
    assert other.returncode == 2 and other.stderr.startswith("sdt: error: --resume: out was a run with analysis ")
