"""The cost ledger and the budget (`--max-cost`), with a priced plug over a LocalCluster (tests/priced.py)."""

from __future__ import annotations

import json

import pytest

from sdt_core import SdtError, run
from sdt_core.cli import main
from sdt_core.output.report.frames import read_run
from sdt_core.output.report.page import layout
from sdt_core.output.results import LOG, RUN

from .priced import Numbered

PLUG = "tests.priced"
SMALL = {"workers": 1, "threads": 1, "memory": 1}
NAP = "tests.priced:nap"


def rows_of(out):
    return [json.loads(line) for line in (out / LOG).read_text().splitlines()]


def test_each_row_records_its_cost_and_run_json_the_total(tmp_path):
    summary = run(Numbered(systems=3), plug=PLUG, settings=SMALL, out=tmp_path / "out", analysis=NAP, report=False)
    rows = rows_of(tmp_path / "out")
    assert [row["status"] for row in rows] == ["ok"] * 3
    for row in rows:  # 3600 USD a worker-hour: a dollar a second of the key's worker time
        assert row["cost_usd"] == pytest.approx(row["total_s"], rel=1e-6)
        assert row["cost_usd"] >= 0.2
    cost = json.loads((tmp_path / "out" / RUN).read_text())["cost"]
    assert cost["keys_usd"] == pytest.approx(sum(row["cost_usd"] for row in rows), abs=1e-5)
    assert cost["keys_usd"] == pytest.approx(summary.cost_usd, abs=1e-5)
    assert cost["cluster_usd"] > 0  # the scheduler and the worker for the time the cluster was up
    assert (cost["worker_usd_per_hour"], cost["cluster_usd_per_hour"], cost["max_cost_usd"]) == (3600.0, 3636.0, None)
    page = layout(read_run(tmp_path / "out"))  # the report shows the total and the workers over time
    summary = page.select_one({"name": "cost-summary"}).text
    assert f"the keys cost {cost['keys_usd']:,.4f} USD, the cluster {cost['cluster_usd']:,.4f} USD" in summary
    steps = page.select_one({"name": "cluster-size-chart"}).renderers[0].data_source.data
    assert list(steps["workers"]) == [count for _, count in json.loads((tmp_path / "out" / RUN).read_text())["workers"]]
    assert steps["workers"][0] == 1  # the one worker of SMALL


def test_the_budget_stops_new_keys_and_the_rest_get_a_row_saying_so_then_resume_goes_on(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["run", "--plug", PLUG, "--data", "tests.priced:Numbered", "--data-option", "systems=8"]
    args += ["--analysis", NAP, "--workers", "1", "--threads", "1", "--memory", "1", "--max-in-flight", "1"]
    args += ["--no-report", "--out", str(out), "-q"]
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--max-cost", "0.5"])
    assert stopped.value.code == 3
    rows = rows_of(out)
    ok = [row for row in rows if row["status"] == "ok"]
    budget = [row for row in rows if row["stage"] == "budget"]
    assert len(rows) == len({row["key"][0] for row in rows}) == 8  # every key once
    assert ok and budget and len(ok) + len(budget) == 8
    spent = sum(row["cost_usd"] for row in ok)
    mean = spent / len(ok)
    assert spent <= 0.5 < spent + mean  # stopped before the next key would pass the budget
    assert budget[0]["error"].startswith("not started: the run spent ")
    err = capsys.readouterr().err.strip().splitlines()
    reached = f"sdt: budget reached: the keys cost {spent:.4f} USD of --max-cost 0.5, and the next would pass it; "
    assert err[-1].startswith(reached)
    assert err[-1].endswith(f"{len(budget)} keys not started; --resume with a higher --max-cost goes on")
    with pytest.raises(SystemExit) as resumed:
        main([*args, "--resume", "--max-cost", "100"])
    assert resumed.value.code == 0
    last = {row["key"][0]: row for row in rows_of(out)}
    assert [row["status"] for row in last.values()] == ["ok"] * 8


def test_max_cost_without_prices_is_one_line_before_anything_starts(tmp_path, capsys):
    with pytest.raises(SdtError, match=r"^--max-cost needs a plug whose plan has prices \(see `sdt plan local`\)"):
        run(Numbered(systems=2), plug="local", out=tmp_path / "out", max_cost=1.0)
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as bad:
        main(["run", "--plug", PLUG, "--max-cost", "-1", "--out", str(tmp_path / "out")])
    assert bad.value.code == 2
    assert capsys.readouterr().err == "sdt: error: --max-cost must be more than 0 USD, got -1\n"
    assert not (tmp_path / "out").exists()


def test_the_budget_counts_the_keys_in_flight_at_the_mean_cost_of_a_key_done():
    from sdt_core.job.cost import Ledger

    spend = Ledger(worker_per_hour=3600.0, threads=1, cluster_per_hour=3636.0, max_cost=1.0)
    assert spend.room(in_flight=0, threads=2) == 2  # nothing known yet: one key per thread
    assert spend.room(in_flight=2, threads=2) == 0
    spend.charge({"total_s": 0.25})  # 0.25 USD done; each key expected at 0.25
    assert spend.room(in_flight=1, threads=2) == 2  # 0.25 done + 0.25 in flight + 2 x 0.25 = 1.0
    assert spend.room(in_flight=3, threads=2) == 0
    spend.charge({"total_s": 0.5})  # 0.75 done, 0.375 a key: a next key would pass 1.0
    assert spend.room(in_flight=0, threads=2) == 0
    assert Ledger(3600.0, 1, 3636.0).room(in_flight=5, threads=2) is None  # no budget: no limit
