"""The bokeh pieces of the fleet report: filterable tables, histograms, links from a key to its row.

The only JavaScript is in small `CustomJS` callbacks: a filter box's search, and the jump
from a key selected anywhere to its row in the per-key table.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import column
from bokeh.models import (
    BasicTicker,
    CDSView,
    ColumnDataSource,
    CustomJS,
    DataRange1d,
    FactorRange,
    HoverTool,
    IndexFilter,
)
from bokeh.models.layouts import LayoutDOM
from bokeh.models.widgets import DataTable, Div, NumberFormatter, StringFormatter, TableColumn, TextInput
from bokeh.plotting import figure

from sdt_core.output.report.frames import few

WIDTH = 1180
#: The color of a key that links to its row.
LINK_COLOR = "#1a5fb4"
COLORS = {"ok": "#3a7d44", "error": "#c0392b"}
OTHER_COLOR = "#7f8c8d"

_FILTER = """
const q = String(input[attr] ?? "").trim().toLowerCase();
const names = Object.keys(source.data);
const n = source.get_length() ?? 0;
const shown = [];
for (let i = 0; i < n; i++) {
  if (!q || names.some((name) => String(source.data[name][i] ?? "").toLowerCase().includes(q))) shown.push(i);
}
filter.indices = shown;
source.change.emit();
count.text = `${shown.length} of ${n} rows`;
"""

_LINK = """
const i = cb_obj.indices[0];
if (i === undefined) return;
const key = source.data.key[i];
target.input.value_input = key;  // as if typed: clearing the box shows every row again
target.input.value = key;
const row = target.source.data.key.indexOf(key);
target.source.selected.indices = row < 0 ? [] : [row];
const view = Bokeh.index.find_one(target.table);
if (view) view.el.scrollIntoView({block: "center"});
"""


@dataclass(frozen=True)
class Table:
    """A sortable DataTable with a filter box above it."""

    source: ColumnDataSource
    table: DataTable
    input: TextInput
    layout: LayoutDOM


def table(
    frame: pd.DataFrame,
    name: str,
    *,
    links: bool = True,
    height: int = 300,
    width: int = WIDTH,
    widths: Mapping[str, int] | None = None,
) -> Table:
    """`frame` as a sortable table filtered by a text box (any column containing the text).

    With `links`, its `key` column is drawn as a link (see `link_keys`)."""
    data = {str(c): _cells(frame[c]) for c in frame.columns}
    source = ColumnDataSource(data)
    row_filter = IndexFilter(indices=list(range(len(frame))))
    columns = [
        TableColumn(
            field=str(c),
            title=str(c),
            formatter=_formatter(frame[c], links and c == "key"),
            width=(widths or {}).get(str(c), 120),
        )
        for c in frame.columns
    ]
    data_table = DataTable(
        source=source,
        view=CDSView(filter=row_filter),
        columns=columns,
        width=width,
        height=min(height, 32 + 26 * max(1, len(frame))),
        index_position=None,
        autosize_mode="none" if len(columns) > 8 else "force_fit",  # not fit_columns: it raises in bokeh 3.9
        reorderable=False,
        **named(f"{name}-table"),
    )
    count = text_div(f"{len(frame)} of {len(frame)} rows", name=f"{name}-count")
    search = TextInput(placeholder="filter: any cell containing…", width=360, **named(f"{name}-filter"))
    for attr in ("value_input", "value"):  # as the user types; when a link sets it
        args = {"source": source, "input": search, "filter": row_filter, "count": count, "attr": attr}
        search.js_on_change(attr, CustomJS(args=args, code=_FILTER))
    return Table(source, data_table, search, column(column(search, count), data_table))


def link_keys(source: ColumnDataSource, target: Table) -> None:
    """Selecting a row (or a glyph) of `source` shows its key's row in `target`, the per-key table."""
    args = {"source": source, "target": {"input": target.input, "source": target.source, "table": target.table}}
    source.selected.js_on_change("indices", CustomJS(args=args, code=_LINK))


def _cells(values: pd.Series) -> list[object]:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float).tolist()  # NaN stays a number, shown blank
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]


def _formatter(values: pd.Series, link: bool) -> StringFormatter | NumberFormatter:
    if link:
        return StringFormatter(text_color=LINK_COLOR, font_style="bold")
    if pd.api.types.is_float_dtype(values):
        return NumberFormatter(format="0,0.[000]", nan_format="")
    if pd.api.types.is_integer_dtype(values):
        return NumberFormatter(format="0,0", nan_format="")
    return StringFormatter()


def histogram(values: pd.Series, title: str, name: str) -> figure:
    """The distribution of `values` (one per key) as bars; each bar's tooltip names its keys."""
    bins = min(30, max(1, int(np.ceil(np.sqrt(len(values))))))
    counts, edges = np.histogram(values.to_numpy(), bins=bins)
    which = np.clip(np.searchsorted(edges, values.to_numpy(), side="right") - 1, 0, len(counts) - 1)
    by_bin = pd.Series(values.index).groupby(which).agg(few)
    keys = [by_bin.get(i, "") for i in range(len(counts))]
    source = ColumnDataSource({"left": edges[:-1], "right": edges[1:], "count": counts, "keys": keys})
    plot = chart(name, title=title, y_range=DataRange1d(start=0), width=380, height=230, tools="xpan,xwheel_zoom,reset")
    plot.quad(
        left="left", right="right", top="count", bottom=0, source=source, fill_color="#4c72b0", line_color="white"
    )
    plot.add_tools(HoverTool(tooltips=[("range", "@left{0,0.[000]} to @right{0,0.[000]}"), ("keys", "@count: @keys")]))
    plot.yaxis.axis_label = "keys"
    for axis in plot.yaxis:
        axis.ticker = BasicTicker(min_interval=1)  # counts: no half keys
    return plot


def named(name: str | None, *classes: str) -> dict[str, Any]:
    """A model's `name` (for `select`) and CSS class `sdt-NAME` (for the page's DOM)."""
    return {"name": name, "css_classes": [*classes, f"sdt-{name}"] if name else list(classes)}


def chart(name: str, **options: Any) -> figure:
    """A figure of the report (CSS class `sdt-chart`), without bokeh's toolbar logo."""
    plot = figure(**named(name, "sdt-chart"), toolbar_location=options.pop("toolbar_location", None), **options)
    plot.toolbar.logo = None
    return plot


def text_div(markup: str, width: int | None = None, name: str | None = None) -> Div:
    """A Div of `markup`, never read as TeX: bokeh would fetch MathJax from a CDN for a "$$" in it."""
    return Div(text=markup, width=width, disable_math=True, **named(name))


def heading(text: str, anchor: str) -> Div:
    return text_div(f'<h2 id="{anchor}" style="margin:18px 0 2px 0">{html.escape(text)}</h2>', WIDTH)


def note(text: str, name: str | None = None) -> Div:
    """A paragraph of plain text (escaped)."""
    return text_div(f'<p style="margin:2px 0;color:#444">{html.escape(text)}</p>', WIDTH, name)


def facts(pairs: Sequence[tuple[str, str]], name: str, width: int = 600) -> Div:
    """Label-value pairs as a two-column HTML table (every value escaped)."""
    rows = "".join(
        f'<tr><th style="text-align:left;padding:2px 14px 2px 0;vertical-align:top">{html.escape(k)}</th>'
        f'<td style="font-family:monospace;word-break:break-all">{html.escape(v)}</td></tr>'
        for k, v in pairs
    )
    return text_div(f'<table style="border-collapse:collapse;font-size:13px">{rows}</table>', width, name)


def bars(labels: Sequence[str], values: Sequence[float], title: str, name: str, notes: Sequence[str] = ()) -> figure:
    """Horizontal bars, one per label (first on top); a bar's tooltip shows its `notes`."""
    labels = list(labels)
    colors = [COLORS.get(label, "#4c72b0") for label in labels]
    source = ColumnDataSource(
        {"label": labels, "value": list(values), "color": colors, "notes": list(notes) or [""] * len(labels)}
    )
    plot = chart(
        name,
        title=title,
        y_range=FactorRange(factors=list(reversed(labels))),
        x_range=DataRange1d(start=0),
        width=560,
        height=max(140, 60 + 28 * len(labels)),
        tools="",
    )
    plot.hbar(y="label", right="value", height=0.7, color="color", source=source)
    plot.add_tools(HoverTool(tooltips=[("", "@label: @value"), ("keys", "@notes")]))
    for axis in plot.xaxis:
        axis.ticker = BasicTicker(min_interval=1)
    return plot
