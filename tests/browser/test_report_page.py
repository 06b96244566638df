"""The fleet report of a real run, opened in Debian's chromium with the network off (`nox -s report`).

bokeh draws every plot and table inside shadow roots, and the page inlines its data, so the
HTML holds every key and "<canvas" whether or not anything was drawn: this test reads what
was drawn, the canvases' pixels and the table cells, through the shadow roots.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sdt_core.dataplugs.sample import REAL_SYSTEMS, real_sample_file, write_sample_data
from sdt_core.output.report import REPORT, write_report
from sdt_core.output.results import LOG, RUN

from ..conftest import run_sdt

pytestmark = pytest.mark.browser

BROKEN = {"broken-bytes": b"\xff\xfe not a csv at all", "broken-short": b"timestamp,power\n2024-01-01 00:00,1\n"}
#: What every chart draws, per canvas of its shadow DOM: pixels and colored (glyph) pixels.
DRAWN = """
(host) => {
  const canvases = [];
  const walk = (node) => {
    if (node instanceof HTMLCanvasElement) canvases.push(node);
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.children ?? []) walk(child);
  };
  walk(host);
  let painted = 0, colored = 0;
  for (const canvas of canvases) {
    if (!canvas.width || !canvas.height) continue;
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < pixels.length; i += 4) {
      const [r, g, b, a] = [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]];
      if (a === 0 || (r > 250 && g > 250 && b > 250)) continue;
      painted++;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 60) colored++;  // a bar or a dot, not an axis or text
    }
  }
  return {canvases: canvases.length, painted, colored};
}
"""


def rows_shown(page, table: str) -> str:
    """The "N of M rows" line above a table (a Div's text lives in its shadow root)."""
    return page.locator(f".sdt-{table}-count").get_by_text(re.compile(r"^\d+ of \d+ rows$")).inner_text()


@pytest.fixture
def artifacts(tmp_path) -> Path:
    """Where the screenshot goes: $SDT_ARTIFACTS (the nox session's output folder), else tmp_path."""
    folder = Path(os.environ.get("SDT_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A real run: SDT's two sample files, two synthetic systems and two broken files."""
    folder = tmp_path_factory.mktemp("browser")
    data = folder / "data"
    write_sample_data(data, systems=2, days=120)
    for name in REAL_SYSTEMS:
        shutil.copy(real_sample_file(name), data)
    for name, content in BROKEN.items():
        (data / f"{name}.csv").write_bytes(content)
    out = folder / "out"
    settings = ["--workers", "2", "--threads", "1", "--memory", "1.5", "--set", "dashboard_address=127.0.0.1:0"]
    result = run_sdt("run", str(data), "--out", str(out), *settings, timeout=600)
    assert result.returncode == 0, result.stderr
    statuses = pd.read_csv(out / "summary.csv").set_index("key_field_0")["status"]
    assert statuses.to_dict() == dict.fromkeys([*REAL_SYSTEMS, "synthetic-000", "synthetic-001"], "ok") | dict.fromkeys(
        BROKEN, "error"
    )
    return out / REPORT


@contextmanager
def offline(report: Path) -> Iterator[Any]:
    """`report` open in Debian's chromium, offline, every request but the page's own aborted; on
    leaving, no request but the page's own and no console or script error."""
    from playwright.sync_api import sync_playwright

    url = report.as_uri()
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=True, viewport={"width": 1240, "height": 1000})
            context.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            page.wait_for_function("() => window.Bokeh?.documents?.[0]?.is_idle", timeout=60_000)
            yield page
        finally:
            browser.close()
    assert errors == []
    assert requests == [url]  # the page itself, nothing else


def assert_drawn(page: Any, charts: int) -> None:
    """`charts` charts on the page, each with its bars or dots drawn on its canvas."""
    found = page.locator(".sdt-chart")
    assert found.count() == charts
    for i in range(charts):
        drawn = found.nth(i).evaluate(DRAWN)
        assert drawn["canvases"] and drawn["painted"] > 1000 and drawn["colored"] > 50, (i, drawn)


def test_the_report_draws_every_chart_and_lists_the_failures_offline(report, artifacts):
    with offline(report) as page:
        assert_drawn(page, 11)  # status, 5 distributions, flags, failures, time and memory, workers, workers over time

        failures = page.locator(".sdt-failures-table .slick-cell")
        assert sorted(cell for cell in failures.all_inner_texts() if cell.startswith("broken")) == sorted(BROKEN)
        groups = page.locator(".sdt-failure-groups-table .slick-cell").all_inner_texts()
        assert groups[:3] == ["load", "ValueError", "2"]  # one group: stage, kind, count

        page.locator(".sdt-failures-filter input").fill("under a day")  # filter: one failure left
        assert rows_shown(page, "failures") == "1 of 2 rows"
        page.locator(".sdt-failures-table .slick-cell", has_text="broken-short").click()  # its row in every key
        assert page.locator(".sdt-keys-filter input").input_value() == "broken-short"
        assert rows_shown(page, "keys") == "1 of 6 rows"
        assert page.locator(".sdt-keys-table .slick-cell.selected").all_inner_texts()[0] == "broken-short"
        page.locator(".sdt-failures-filter input").fill("")
        page.locator(".sdt-keys-filter input").fill("")  # cleared: every row again
        assert (rows_shown(page, "failures"), rows_shown(page, "keys")) == ("2 of 2 rows", "6 of 6 rows")

        page.evaluate("window.scrollTo(0, 0)")
        screenshot = artifacts / "report.png"
        page.screenshot(path=screenshot, full_page=True)
        top = {"x": 0, "y": 0, "width": 1240, "height": 1400}  # the run and the fleet: the README's picture
        page.screenshot(path=artifacts / "report-top.png", clip=top, full_page=True)
        shutil.copy(report, artifacts / REPORT)
        print(f"screenshot: {screenshot}")


def test_the_reports_of_degenerate_folders_open_without_errors(report, tmp_path):
    """The same run's folder with only its error rows, and with none: empty sections, no script error."""
    rows = (report.parent / LOG).read_text().splitlines()
    for name, kept, charts in [("errors", [r for r in rows if '"status": "error"' in r], 5), ("nothing", [], 0)]:
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(report.parent / RUN, folder)
        (folder / LOG).write_text("".join(f"{row}\n" for row in kept))
        with offline(write_report(folder)) as page:
            assert_drawn(page, charts)  # errors: status, failures, time and memory, workers, their count; nothing: none
            texts = page.locator(".sdt-fleet-empty").get_by_text("Nothing to show: no key finished ok.")
            assert texts.count() == 1


def test_the_fleet_map_draws_the_keys_by_place_and_recolours_them_by_the_field_picked(report, tmp_path):
    """The same run's rows with metadata places (as `DataPlug.metadata` gives them): the map is drawn
    offline, and picking another field recolours its dots."""
    import json

    rows = [json.loads(line) for line in (report.parent / LOG).read_text().splitlines()]
    for i, row in enumerate(rows):
        row |= {"meta_latitude": 30.0 + 3 * i, "meta_longitude": -120.0 + 8 * i, "meta_dc_capacity_kw": 1.0 + i}
    shutil.copy(report.parent / RUN, tmp_path)
    (tmp_path / LOG).write_text("".join(json.dumps(row) + "\n" for row in rows))
    with offline(write_report(tmp_path)) as page:
        assert_drawn(page, 12)  # the eleven charts of the run, and the map
        before = page.locator(".sdt-fleet-map").screenshot()
        page.locator(".sdt-fleet-map-field select").select_option("meta_dc_capacity_kw")
        page.wait_for_timeout(300)  # one animation frame or so for the canvas to repaint
        assert page.locator(".sdt-fleet-map").screenshot() != before
