"""The fleet on a map: each key with metadata `latitude` and `longitude` (`DataPlug.metadata`), coloured
by a field the reader picks on the page.

Offline: a plain longitude/latitude scatter, no map tiles (they would be fetched from the
network). The colours of every field are computed here; the page's only script swaps them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, CustomJS, HoverTool
from bokeh.models.layouts import LayoutDOM
from bokeh.models.widgets import Select
from bokeh.palettes import Viridis256

from sdt_core.output.report.frames import OWN_FIELDS, SDT_FIELDS, RunTables
from sdt_core.output.report.widgets import COLORS, OTHER_COLOR, Table, chart, heading, link_keys, named, note
from sdt_core.output.results import META_PREFIX

LATITUDE, LONGITUDE = f"{META_PREFIX}latitude", f"{META_PREFIX}longitude"
MISSING_COLOR = "#bbbbbb"

_PICK = """
const name = select.value;
source.data.color = colors[name];
source.data.shown = shown[name];
source.change.emit();
"""


def map_section(tables: RunTables, keys: Table) -> list[LayoutDOM]:
    """A heading, a field picker and the map; nothing when no key has a place."""
    placed = _placed(tables.keys)
    if placed.empty:
        return []
    fields = color_fields(placed)
    colors = {field: field_colors(placed[field]) for field in fields}
    shown = {field: [_text(v) for v in placed[field]] for field in fields}
    first = fields[0]
    source = ColumnDataSource(
        {
            "key": placed["key"].tolist(),
            "name": [_text(v) for v in placed.get(f"{META_PREFIX}name", pd.Series([""] * len(placed)))],
            "lon": placed[LONGITUDE].tolist(),
            "lat": placed[LATITUDE].tolist(),
            "color": colors[first],
            "shown": shown[first],
        }
    )
    link_keys(source, keys)
    plot = chart(
        "fleet-map",
        title="the fleet by latitude and longitude",
        width=760,
        height=440,
        match_aspect=True,
        tools="pan,wheel_zoom,box_zoom,tap,reset",
        toolbar_location="right",
    )
    plot.scatter("lon", "lat", size=11, color="color", line_color="#333333", alpha=0.9, source=source)
    plot.add_tools(HoverTool(tooltips=[("key", "@key"), ("name", "@name"), ("value", "@shown")]))
    plot.xaxis.axis_label, plot.yaxis.axis_label = "longitude [°]", "latitude [°]"
    options: list[str | tuple[Any, str]] = list(fields)
    pick = Select(title="colour by", value=first, options=options, width=300, **named("fleet-map-field"))
    pick.js_on_change(
        "value", CustomJS(args={"select": pick, "source": source, "colors": colors, "shown": shown}, code=_PICK)
    )
    return [
        heading("The fleet on a map", "map"),
        note(
            f"{len(placed)} keys with a latitude and longitude in their metadata; pick the field that colours them "
            "(low values dark, high yellow; grey: no value); click a key for its row."
        ),
        column(pick, plot),
    ]


def _placed(keys: pd.DataFrame) -> pd.DataFrame:
    if LATITUDE not in keys or LONGITUDE not in keys:
        return pd.DataFrame()
    placed = keys.assign(
        **{LATITUDE: pd.to_numeric(keys[LATITUDE], "coerce"), LONGITUDE: pd.to_numeric(keys[LONGITUDE], "coerce")}
    )
    return placed[placed[LATITUDE].notna() & placed[LONGITUDE].notna()].reset_index(drop=True)


def color_fields(placed: pd.DataFrame) -> list[str]:
    """The fields a reader may colour by: SDT's report fields, then the status, the analysis's other
    numbers, the metadata's numbers, then sdt-core's own numbers."""
    numeric = [c for c in placed.columns if _numbers(placed[c]).notna().any() and c not in (LATITUDE, LONGITUDE)]
    numeric = [c for c in numeric if c not in ("earlier", "start_time")]
    sdt = [c for c in SDT_FIELDS if c in numeric]
    own = [c for c in numeric if c in OWN_FIELDS]
    meta = [c for c in numeric if c.startswith(META_PREFIX)]
    rest = [c for c in numeric if c not in {*sdt, *own, *meta}]
    return [*sdt, "status", *rest, *meta, *own]


def field_colors(values: pd.Series) -> list[str]:
    """A colour per key: by status for `status`, else along Viridis from the lowest value to the highest."""
    if values.name == "status":
        return [COLORS.get(str(v), OTHER_COLOR) for v in values]
    numbers = _numbers(values).to_numpy(dtype=float)
    low, high = np.nanmin(numbers), np.nanmax(numbers)
    scale = (numbers - low) / (high - low) if high > low else np.full(len(numbers), 0.5)
    return [MISSING_COLOR if np.isnan(s) else Viridis256[round(s * 255)] for s in scale]


def _numbers(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if values.dtype == object and not values.map(lambda v: isinstance(v, (int, float)) or v is None).all():
        return pd.Series(np.nan, index=values.index)
    return pd.to_numeric(values, errors="coerce")


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{value:,.4g}" if isinstance(value, float) else str(value)
