"""`sdt plan --results OUT`: what a finished run measured, turned into the time and cost of a plan."""

from __future__ import annotations

import json

import pytest

from sdt_core import run
from sdt_core.cloud.measured import Measured

SMALL = {"workers": 1, "threads": 1, "dashboard_address": "127.0.0.1:0"}
FARGATE = (
    "--workers",
    "10",
    "--threads",
    "4",
    "--memory",
    "16",
    "--set",
    "image=REPO:TAG",
    "--region-name",
    "us-east-1",
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("measured") / "out"
    run(
        "sample://?systems=3&days=2&real=false",
        settings=SMALL,
        out=out,
        report=False,
        analysis="sdt_core.analysis:data_inventory",
    )
    return out


def test_a_runs_rows_give_time_per_system_year_and_peak_memory(finished):
    rows = [json.loads(line) for line in (finished / "results.jsonl").read_text().splitlines()]
    measured = Measured.from_results(finished)
    assert (measured.keys, measured.mode) == (3, "fast")
    assert measured.system_years == pytest.approx(sum(r["days"] for r in rows) / 365)
    assert measured.seconds_per_system_year == pytest.approx(sum(r["total_s"] for r in rows) / measured.system_years)
    assert measured.peak_memory_gb == pytest.approx(max(r["peak_memory_mb"] for r in rows) / 1024)


def test_sdt_plan_estimates_hours_and_cost_from_a_finished_run(sdt, finished):
    measured = Measured.from_results(finished)
    result = sdt("plan", "fargate", *FARGATE, "--results", str(finished), "--system-years", "1000")
    assert result.returncode == 0, result.stderr
    hours = 1000 * measured.seconds_per_system_year / 3600 / 40
    cost_per_hour = 10 * 0.2330 + 0.0583  # the plan's own prices for these tasks
    assert f"Measured in {finished} (3 keys, SDT fast): " in result.stdout
    assert f"1,000 system-years on 10 workers x 4 threads: ~{hours:,.2f} h, ~{hours * cost_per_hour:,.2f} USD" in (
        result.stdout
    )
    as_json = json.loads(sdt("plan", "fargate", *FARGATE, "--results", str(finished), "--json").stdout)
    assert as_json["measured"]["keys"] == 3 and as_json["measured"]["mode"] == "fast"


def test_a_plan_with_too_little_memory_for_what_was_measured_says_so(sdt, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"sdt_mode": "exact"}))
    row = {"key": ["a"], "status": "ok", "days": 365, "total_s": 5.0, "peak_memory_mb": 6000}
    (out / "results.jsonl").write_text(json.dumps(row) + "\n")
    result = sdt("plan", "fargate", *FARGATE, "--results", str(out))
    assert "Warning: 4 keys at once need ~23.4 GB per worker, over 70% of its 16 GiB" in result.stdout


def test_no_results_is_one_line(sdt, tmp_path):
    result = sdt("plan", "fargate", *FARGATE, "--results", str(tmp_path / "nowhere"))
    assert (result.returncode, result.stderr) == (
        2,
        f"sdt: error: no run results in {tmp_path / 'nowhere'} (No such file or directory); "
        "give the --out folder of a finished `sdt run`\n",
    )


def test_sdt_plan_local_answers_how_long_a_fleet_takes_on_this_machine(sdt, finished):
    from dask.system import CPU_COUNT

    measured = Measured.from_results(finished)
    result = sdt("plan", "local", "--workers", "1", "--threads", "1", "--results", str(finished))
    assert result.returncode == 0, result.stderr
    assert "  workers: 1 x process on this machine, 1 vCPU, 1.5 GiB\n" in result.stdout
    assert f"Note: 1 x 1 threads on {CPU_COUNT} cores; 1 x 1.5 GiB of " in result.stdout
    hours = 5000 * measured.seconds_per_system_year / 3600  # one thread
    result = sdt(
        "plan", "local", "--workers", "1", "--threads", "1", "--results", str(finished), "--system-years", "5000"
    )
    assert f"5,000 system-years on 1 workers x 1 threads: ~{hours:,.2f} h (if its cores" in result.stdout
    assert "USD" not in result.stdout  # nothing is rented
