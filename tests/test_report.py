"""The fleet report, OUT/report.html, built from real run folders (tests/browser/ opens one in chromium)."""

from __future__ import annotations

import logging
import re
import shutil

import pytest
from bokeh.resources import INLINE

from sdt_core import run
from sdt_core.dataplugs.sample import write_sample_data
from sdt_core.output.report import REPORT, write_report, written_at_exit
from sdt_core.output.report.frames import SDT_FIELDS, masked, read_run
from sdt_core.output.report.page import layout
from sdt_core.testing import SECRET

SMALL = {"workers": 2, "threads": 1, "memory": 1, "dashboard_address": "127.0.0.1:0"}
INVENTORY = "sdt_core.analysis:data_inventory"
BROKEN = {
    "corrupt": b"\xff\xfe not a csv at all",
    "short": b"timestamp,power\n2024-01-01 00:00,1\n2024-01-01 00:05,2\n",
}


def write_broken(folder) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in BROKEN.items():
        (folder / f"{name}.csv").write_bytes(content)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A real run: SDT's pipeline over two 30-day systems and two broken files, a secret in the settings."""
    folder = tmp_path_factory.mktemp("fleet")
    write_sample_data(folder / "data", systems=2, days=30)
    write_broken(folder / "data")
    settings = SMALL | {"env": {"SDT_REPORT_TOKEN": SECRET}}
    return run(str(folder / "data"), settings=settings, out=folder / "out")


def named(model, name):
    found = list(model.select({"name": name}))
    assert len(found) == 1, f"{name}: {len(found)} models"
    return found[0]


def test_every_run_writes_its_fleet_report_with_every_section(fleet):
    assert fleet.fleet_report == fleet.out / REPORT and fleet.fleet_report.stat().st_size > 100_000
    assert (fleet.ok, fleet.failed) == (2, 2)
    page = layout(read_run(fleet.out))

    facts = named(page, "run-facts").text
    assert "mode fast" in facts and "solar-data-tools 2.1.5" in facts and "sdt_core.dataplugs.local:LocalFiles" in facts
    assert "4: 2 ok, 2 error, 0 skipped" in facts
    wall = float(re.search(r"wall time</th><td[^>]*>([\d.]+) s", facts)[1])
    assert 0 < wall <= fleet.seconds

    titles = {named(page, f"hist-{i}").title.text for i in range(len(SDT_FIELDS))}
    assert titles == set(SDT_FIELDS.values())
    flags = named(page, "flags-chart").renderers[0].data_source.data
    assert set(flags["label"]) == {
        "clipping",
        "inverter clipping",
        "time shift fixed",
        "capacity change",
        "tz correction",
    }
    flagged = named(page, "flags-table").source.data
    assert set(flagged["key"]) <= {"synthetic-000", "synthetic-001"} and len(flagged["key"]) == sum(flags["value"])

    failed = named(page, "failures-table").source.data
    assert sorted(failed["key"]) == ["corrupt", "short"] and set(failed["stage"]) == {"load"}
    assert any(e.startswith("ValueError: under a day of data") for e in failed["error"])
    groups = named(page, "failure-groups-table").source.data
    assert (groups["stage"], groups["kind"], groups["count"]) == (["load"], ["ValueError"], [2.0])

    workers = named(page, "workers-chart").renderers[0].data_source.data
    assert sorted(workers["key"]) == ["corrupt", "short", "synthetic-000", "synthetic-001"]
    assert all(end >= start >= 0 for start, end in zip(workers["start"], workers["end"], strict=True))
    assert len(set(workers["worker"])) <= 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers["worker"])
    slowest = named(page, "slowest-table").source.data
    assert slowest["total_s"] == sorted(slowest["total_s"], reverse=True) and slowest["key"][0].startswith("synthetic")
    assert all(memory > 0 for memory in named(page, "cost-chart").renderers[0].data_source.data["peak_memory_mb"])
    assert sorted(named(page, "keys-table").source.data["key"]) == sorted(workers["key"])


def test_the_report_is_self_contained_and_shows_no_secret(fleet):
    html = fleet.fleet_report.read_text()
    assert SECRET not in html
    assert "SDT_REPORT_TOKEN" in html  # the setting is shown, its value masked
    page = html
    for library in INLINE.js_raw:  # bokeh's own code, inlined: it names a CDN only to fetch MathJax, never
        page = page.replace(library, "")  # used here (every Div has disable_math)
    assert len(page) < len(html) / 5, "bokeh's library is not inlined"
    scripts = {re.sub(r'id="[^"]*"', "id", tag) for tag in re.findall(r"<script[^>]*>", page)}
    assert scripts == {"<script>", '<script type="application/json" id>'}  # no src: all inline
    assert "<link" not in page and re.findall(r"https?://", page) == []
    assert re.findall(r"""(?:src|href)=\\?["']?(?:https?:)?//""", html) == ['src="https://']  # that one, alone


def test_names_that_say_secret_are_masked_even_if_run_json_did_not():
    cluster = "Plug(settings=S(workers=2, api_token='abc', password=\"p w\", private_keys={'a': 'b'}, host='h'))"
    assert (
        masked(cluster) == "Plug(settings=S(workers=2, api_token='***', password='***', private_keys='***', host='h'))"
    )
    assert masked({"options": {"secret_key": "x", "path": "/d"}}) == {"options": {"secret_key": "***", "path": "/d"}}


def test_sdt_report_writes_the_report_of_a_folder_again(fleet, sdt, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(fleet.out, out)
    (out / REPORT).unlink()
    result = sdt("report", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Fleet report: {out / REPORT}\n" and (out / REPORT).stat().st_size > 100_000

    missing = sdt("report", str(tmp_path / "nowhere"))
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == f"sdt: error: no run folder {tmp_path / 'nowhere'}: give the --out folder of an sdt run\n"
    empty = sdt("report", str(tmp_path))
    assert empty.returncode == 2 and empty.stderr.startswith(f"sdt: error: {tmp_path} holds no run (no run.json")


def test_a_resume_rewrites_the_report_and_counts_the_keys_it_skipped(fleet, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(fleet.out, out)
    (out / REPORT).unlink()
    unasked = run(str(fleet.out.parent / "data"), settings=SMALL, out=out, resume=True, report=False)
    assert unasked.fleet_report is None and not (out / REPORT).exists()  # sdt run --no-report
    again = run(str(fleet.out.parent / "data"), settings=SMALL, out=out, resume=True)
    assert again.earlier == 4 and again.fleet_report == out / REPORT
    facts = named(layout(read_run(out)), "run-facts").text
    assert "4: 2 ok, 2 error, 4 skipped" in facts and "no key ran" in facts


def test_a_run_of_only_failures_says_the_fleet_has_nothing_to_show(tmp_path):
    write_broken(tmp_path / "data")
    summary = run(str(tmp_path / "data"), settings=SMALL, out=tmp_path / "out")
    assert (summary.ok, summary.failed) == (0, 2) and summary.fleet_report
    page = layout(read_run(summary.out))
    assert named(page, "fleet-empty").text.endswith("Nothing to show: no key finished ok.</p>")
    assert sorted(named(page, "failures-table").source.data["key"]) == ["corrupt", "short"]
    assert "2: 0 ok, 2 error" in named(page, "run-facts").text


def test_an_analysis_without_sdt_fields_gets_a_report_saying_so(tmp_path):
    summary = run("sample://?systems=2&days=2&real=false", settings=SMALL, out=tmp_path / "out", analysis=INVENTORY)
    assert summary.ok == 2 and summary.fleet_report
    page = layout(read_run(summary.out))
    text = named(page, "fleet-empty").text
    assert "none of SDT&#x27;s report fields (analysis sdt_core.analysis:data_inventory)" in text
    assert named(page, "failures-empty").text.endswith("No key failed.</p>")
    assert "max_power" in named(page, "keys-table").source.data  # the analysis's own fields, per key


def test_a_folder_whose_run_stopped_before_any_key_gets_a_report(fleet, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(fleet.out / "run.json", out)
    (out / "results.jsonl").write_text('{"key": ["cut-sh')  # a first row cut short by a kill
    page = layout(read_run(out))
    assert "0: 0 ok, 0 error" in named(page, "run-facts").text
    assert named(page, "cost-empty") and named(page, "failures-empty") and named(page, "fleet-empty")
    assert named(page, "run-empty") and not list(page.select({"name": "status-chart"}))
    assert write_report(out).stat().st_size > 100_000


def test_the_report_is_written_when_a_run_stops_and_never_breaks_one(fleet, tmp_path, caplog):
    out = tmp_path / "out"
    shutil.copytree(fleet.out, out)
    (out / REPORT).unlink()
    with pytest.raises(KeyboardInterrupt), written_at_exit(out):
        raise KeyboardInterrupt  # Ctrl-C: the keys done so far get their report
    assert (out / REPORT).exists()

    (tmp_path / "empty").mkdir()
    with caplog.at_level(logging.WARNING), written_at_exit(tmp_path / "empty") as written:
        pass
    assert written.path is None
    empty = tmp_path / "empty"
    assert caplog.messages == [
        f"sdt run: could not write the fleet report {empty / REPORT}: "
        f"SdtError: {empty} holds no run (no run.json or results.jsonl): give the --out folder of an sdt run"
    ]


def test_the_cost_section_shows_the_workers_over_time(fleet, tmp_path):
    import json

    counts = named(layout(read_run(fleet.out)), "cluster-size-chart").renderers[0].data_source.data["workers"]
    assert list(counts) == [2, 2]  # a fixed cluster: its 2 workers from the start to the end
    out = tmp_path / "out"
    shutil.copytree(fleet.out, out)
    record = json.loads((out / "run.json").read_text())
    points = [[0.0, 1], [3.2, 2], [9.5, 1], [12.0, 1]]  # as an --adapt 1:2 run records them
    (out / "run.json").write_text(json.dumps(record | {"workers": points, "adapt": [1, 2]}))
    page = layout(read_run(out))
    data = named(page, "cluster-size-chart").renderers[0].data_source.data
    assert (list(data["seconds"]), list(data["workers"])) == ([p[0] for p in points], [p[1] for p in points])
    assert "adapting between 1 and 2" in named(page, "cluster-size-note").text
    (out / "run.json").write_text(json.dumps(record | {"workers": "not points"}))
    assert not list(layout(read_run(out)).select({"name": "cluster-size-chart"}))  # no chart, no error
