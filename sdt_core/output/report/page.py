"""The fleet report's page: the run, the fleet, failures, cost, then every key, top to bottom.

One bokeh layout written by `file_html` with its scripts and styles inlined: the page makes
no request, so it reads the same offline and as a CI artifact.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import pandas as pd
from bokeh.embed import file_html
from bokeh.layouts import column, gridplot, row
from bokeh.models import ColumnDataSource, DataRange1d, FactorRange, HoverTool, TapTool
from bokeh.models.layouts import LayoutDOM
from bokeh.plotting import figure
from bokeh.resources import INLINE

from sdt_core.output.report import frames
from sdt_core.output.report.fleet_map import map_section
from sdt_core.output.report.frames import RunTables
from sdt_core.output.report.widgets import (
    COLORS,
    OTHER_COLOR,
    WIDTH,
    Table,
    bars,
    chart,
    facts,
    heading,
    histogram,
    link_keys,
    note,
    table,
)

SLOWEST = 20


def render(tables: RunTables) -> str:
    """The whole report of `tables` as one self-contained HTML page."""
    return file_html(layout(tables), resources=INLINE, title=title(tables))


def title(tables: RunTables) -> str:
    return f"SDT fleet report: {tables.folder.resolve().name}"


def layout(tables: RunTables) -> LayoutDOM:
    """The report's bokeh layout: each section's plots and tables are named (`name=`) for tests."""
    keys = table(frames.per_key(tables), "keys", links=False, height=420, widths={"key": 200, "error": 320})
    sections: list[Callable[[RunTables, Table], list[LayoutDOM]]] = [
        run_section,
        fleet_section,
        map_section,
        failure_section,
        cost_section,
    ]
    body = [item for section in sections for item in section(tables, keys)]
    body += [
        heading("Every key", "keys"),
        note("Its last row in results.jsonl; click a key anywhere to come here."),
        keys.layout,
    ]
    return column(heading(title(tables), "top"), *body, width=WIDTH)


def run_section(tables: RunTables, keys: Table) -> list[LayoutDOM]:
    run, count = tables.run, frames.counts(tables)
    sdt = run.get("sdt")
    if not isinstance(sdt, dict):
        sdt = {}
    wall = frames.wall_seconds(tables)
    substitutions = ", ".join(s.get("name", "?") for s in sdt.get("substitutions", []) if isinstance(s, dict))
    pairs = [
        ("folder", str(tables.folder.resolve())),
        ("data", _call(frames.masked(run.get("data")), "plug")),
        ("analysis", _call(frames.masked(run.get("analysis")), "function")),
        ("plug and settings", str(frames.masked(run.get("cluster", "?")))),
        ("SDT", f"solar-data-tools {sdt.get('solar-data-tools', '?')}, mode {run.get('sdt_mode', '?')}"),
        ("fast path", substitutions or "none"),
        ("sdt-core", str(run.get("sdt_core", "?"))),
        ("started", str(run.get("started", "?"))),
        ("wall time", f"{wall} s, from the start to the last key's end" if wall is not None else "no key ran"),
        (
            "keys",
            f"{count['keys']}: {count['ok']} ok, {count['error']} error, "
            f"{count['skipped']} skipped (done by an earlier run, --resume)",
        ),
        ("written", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")),
    ]
    if not count["keys"]:
        return [heading("The run", "run"), facts(pairs, "run-facts"), note("No key has a row yet.", "run-empty")]
    status = bars(
        ["ok", "error", "skipped"], [count["ok"], count["error"], count["skipped"]], "keys by status", "status-chart"
    )
    return [heading("The run", "run"), row(facts(pairs, "run-facts"), status)]


def fleet_section(tables: RunTables, keys: Table) -> list[LayoutDOM]:
    items: list[LayoutDOM] = [heading("The fleet", "fleet")]
    ok = frames.counts(tables)["ok"]
    fields = frames.distributions(tables, frames.SDT_FIELDS)
    if not ok or not fields:
        why = "no key finished ok" if not ok else f"the rows hold none of SDT's report fields ({_analysis(tables)})"
        return [*items, note(f"Nothing to show: {why}.", "fleet-empty")]
    losses = frames.distributions(tables, frames.LOSS_FIELDS)
    ran = frames.loss_analysis_counts(tables)
    items += [note(f"Distributions over the {ok} keys that finished ok; hover a bar for its keys."), _grid(fields)]
    if losses:
        items += [
            note(f"Degradation and loss factors: the loss factor analysis ran on {ran['ran']} keys."),
            _grid(losses),
        ]
    elif ran["skipped"]:
        items.append(note(f"The loss factor analysis skipped all {ran['skipped']} keys (it needs over 365 days)."))
    counts = frames.flag_counts(tables)
    if counts.empty:
        return [*items, note("No flag to show: the rows hold none of SDT's flags.", "flags-empty")]
    flag_chart = bars(counts["flag"], counts["count"], "keys flagged", "flags-chart", counts["keys"])
    flagged = table(frames.flagged(tables), "flags", height=260, width=600, widths={"flag": 130, "key": 300})
    link_keys(flagged.source, keys)
    return [*items, note("Flags, and the keys behind each (click a key for its row)."), row(flag_chart, flagged.layout)]


def failure_section(tables: RunTables, keys: Table) -> list[LayoutDOM]:
    items: list[LayoutDOM] = [heading("Failures", "failures")]
    found = frames.failures(tables)
    if found.empty:
        return [*items, note("No key failed.", "failures-empty")]
    groups = frames.failure_groups(found)
    chart = bars(
        (groups["stage"] + ": " + groups["kind"]).tolist(),
        groups["count"],
        "failed keys by stage and kind",
        "failures-chart",
        groups["keys"],
    )
    by_group = table(groups, "failure-groups", links=False, height=160, widths={"count": 50, "keys": 360, "error": 520})
    by_key = table(found, "failures", height=220, widths={"key": 240, "stage": 70, "kind": 120, "error": 750})
    link_keys(by_key.source, keys)
    return [
        *items,
        note(f"{len(found)} keys failed, in {len(groups)} groups of stage and error kind."),
        chart,
        by_group.layout,
        note("Each failed key and the first line of its error (click a key for its row)."),
        by_key.layout,
    ]


def cost_section(tables: RunTables, keys: Table) -> list[LayoutDOM]:
    items: list[LayoutDOM] = [heading("Cost", "cost")]
    runs = frames.timeline(tables)
    if runs.empty:
        return [*items, note("Nothing to show: no row records when and where its key ran.", "cost-empty")]
    workers = runs["worker"].nunique()
    busy = runs["total_s"].sum()
    span = runs["end"].max() - runs["start"].min()
    summary = f"{len(runs)} keys on {workers} workers: {busy:,.1f} s of key time over {span:,.1f} s"
    if span > 0:
        summary += f", {busy / (span * workers):.0%} of the workers' time"
    if runs["peak_memory_mb"].notna().any():
        summary += f"; the highest peak memory of a key: {runs['peak_memory_mb'].max():,.0f} MB"
    source = ColumnDataSource(_timeline_data(runs))
    link_keys(source, keys)
    slowest = runs.sort_values("total_s", ascending=False).head(SLOWEST)
    slow = table(slowest[["key", "total_s", "peak_memory_mb", "worker", "status"]], "slowest", height=220)
    link_keys(slow.source, keys)
    money = frames.spend(tables)
    if money:
        summary += (
            f"; the keys cost {money.get('keys_usd', 0):,.4f} USD, the cluster {money.get('cluster_usd', 0):,.4f} USD "
            "for the time it was up (scheduler and idle workers included)"
        )
        if "max_cost_usd" in money:
            summary += f", of a --max-cost of {money['max_cost_usd']:g} USD"
    return [
        *items,
        note(summary + ".", "cost-summary"),
        row(_time_and_memory(source), _workers(source, runs)),
        *_cluster_size(tables),
        note(f"The {len(slowest)} slowest keys (click a key for its row)."),
        slow.layout,
    ]


def _cluster_size(tables: RunTables) -> list[LayoutDOM]:
    """The cluster's workers over the run (run.json's `workers`), a step chart; nothing without them."""
    size = frames.cluster_size(tables)
    if size.empty:
        return []
    adapt = tables.run.get("adapt")
    bounds = f", adapting between {adapt[0]} and {adapt[1]} (--adapt)" if isinstance(adapt, list) else ""
    plot = chart("cluster-size-chart", title="workers over time", width=660, height=200, y_range=DataRange1d(start=0))
    plot.step("seconds", "workers", mode="after", line_width=2, source=ColumnDataSource(size))
    plot.scatter("seconds", "workers", size=6, source=ColumnDataSource(size))
    plot.add_tools(HoverTool(tooltips=[("from", "@seconds{0,0.0} s"), ("workers", "@workers")]))
    plot.xaxis.axis_label, plot.yaxis.axis_label = "seconds since the run connected", "workers"
    return [note(f"The cluster's workers over the run{bounds}.", "cluster-size-note"), plot]


def _timeline_data(runs: pd.DataFrame) -> dict[str, Any]:
    origin = runs["start"].min()
    return {
        "key": runs["key"].tolist(),
        "worker": runs["worker"].tolist(),
        "status": runs["status"].tolist(),
        "start": (runs["start"] - origin).tolist(),
        "end": (runs["end"] - origin).tolist(),
        "total_s": runs["total_s"].tolist(),
        "peak_memory_mb": runs["peak_memory_mb"].tolist(),
        "color": [COLORS.get(s, OTHER_COLOR) for s in runs["status"]],
    }


def _time_and_memory(source: ColumnDataSource) -> figure:
    plot = chart(
        "cost-chart",
        title="time and peak memory per key",
        width=500,
        height=320,
        tools="tap,box_zoom,reset",
        toolbar_location="right",
    )
    plot.scatter("total_s", "peak_memory_mb", size=9, color="color", alpha=0.8, source=source)
    plot.add_tools(
        HoverTool(tooltips=[("key", "@key"), ("time", "@total_s{0,0.0} s"), ("peak", "@peak_memory_mb{0,0} MB")])
    )
    plot.xaxis.axis_label, plot.yaxis.axis_label = "seconds", "peak memory [MB]"
    return plot


def _workers(source: ColumnDataSource, runs: pd.DataFrame) -> figure:
    workers = sorted(runs["worker"].unique())
    plot = chart(
        "workers-chart",
        title="keys per worker over time",
        y_range=FactorRange(factors=workers),
        width=660,
        height=max(200, 80 + 40 * len(workers)),
        tools="xpan,xwheel_zoom,reset",
        toolbar_location="right",
    )
    plot.hbar(y="worker", left="start", right="end", height=0.6, color="color", line_color="white", source=source)
    plot.add_tools(
        HoverTool(tooltips=[("key", "@key"), ("ran", "@start{0,0.0} s to @end{0,0.0} s"), ("status", "@status")])
    )
    plot.add_tools(TapTool(behavior="select"))
    plot.xaxis.axis_label = "seconds since the first key started"
    return plot


def _grid(fields: dict[str, pd.Series]) -> LayoutDOM:
    plots: list[Any] = [histogram(values, label, f"hist-{i}") for i, (label, values) in enumerate(fields.items())]
    return gridplot(plots, ncols=3, toolbar_location=None)


def _analysis(tables: RunTables) -> str:
    analysis = tables.run.get("analysis")
    return f"analysis {analysis.get('function', '?')}" if isinstance(analysis, dict) else "an unknown analysis"


def _call(value: Any, name: str) -> str:
    """run.json's {NAME: ..., "options": {...}} as `NAME(option=value, ...)`, unset options left out."""
    if not isinstance(value, dict) or name not in value:
        return json.dumps(value, default=str)
    options = value.get("options")
    if not isinstance(options, dict):
        options = {}
    given = ", ".join(f"{k}={v!r}" for k, v in options.items() if v not in (None, [], {}))
    return f"{value[name]}({given})"
