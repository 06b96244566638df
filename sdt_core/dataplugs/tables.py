"""Parquet tables as power frames: the columns chosen from the schema, then only those read.

A wide table has a timestamp and power columns; a long one has rows of timestamp, channel
(or metric) and value, pivoted to one column per channel. The power column (or channel)
is chosen by the rule of `sdt_core.dataplugs.frames.choose_power_column`, from names alone.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from sdt_core.dataplugs.datasets import parquet_errors, pivot_long, typed_values
from sdt_core.dataplugs.frames import TIMESTAMP_NAMES, FrameError, choose_power_column

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as ds

#: Column names of long tables: the channel (metric) and its value.
CHANNEL_NAMES = ("channel", "metric", "metric_id", "meas_name", "variable")
VALUE_NAMES = ("value", "meas_val_f", "val")
#: Partition fields that are never power.
PARTITION_NAMES = frozenset({"year", "month", "day", "hour", "date"})
#: Rows read to name the channels a system has, when the one asked for is missing.
HEAD_ROWS = 5000


@dataclasses.dataclass(frozen=True)
class ColumnOptions:
    """The data options that name columns; None: found by name (and type)."""

    timestamp_column: str | None = None
    power_column: str | None = None  # in a long table: the power channel
    channel_column: str | None = None
    value_column: str | None = None


@dataclasses.dataclass(frozen=True)
class Columns:
    """What to read of a table: its timestamp and power column, or for a long one its channel and value columns
    (`power` is then the power channel, None for every channel)."""

    timestamp: str
    power: str | None
    channel: str | None = None
    value: str | None = None

    @property
    def names(self) -> list[str]:
        if self.channel and self.value:
            return [self.timestamp, self.channel, self.value]
        return [self.timestamp, str(self.power)]


def choose(schema: pa.Schema, options: ColumnOptions, ignore: frozenset[str] = frozenset()) -> Columns:
    """The columns to read from a table of `schema`; FrameError names what is missing or ambiguous."""
    names = [n for n in schema.names if n not in ignore]
    timestamp = _timestamp(schema, names, options.timestamp_column)
    channel = options.channel_column or next((n for n in CHANNEL_NAMES if n in names), None)
    value = options.value_column or next((n for n in VALUE_NAMES if n in names), None)
    if options.channel_column or (channel and value):
        for option, column in (("channel_column", channel), ("value_column", value)):
            if column not in names:
                what = option.replace("_", " ")
                raise FrameError(f"no {what} {column!r}; columns: {', '.join(names)}", option, usage=True)
        return Columns(timestamp, options.power_column, channel, value)
    if options.power_column:
        if options.power_column not in names:
            raise FrameError(f"no power column {options.power_column!r}; columns: {', '.join(names)}", usage=True)
        return Columns(timestamp, options.power_column)
    numeric = [n for n in names if n != timestamp and n not in PARTITION_NAMES and _numeric(schema.field(n).type)]
    if not numeric:
        raise FrameError(f"no power column: none of {', '.join(names)} is numeric", "power_column")
    return Columns(timestamp, choose_power_column(numeric))


def read_frame(
    dataset: ds.Dataset,
    where: ds.Expression | None,
    options: ColumnOptions,
    ignore: frozenset[str] = frozenset(),
    limit: int | None = None,
) -> pd.DataFrame:
    """The power frame of `dataset`'s rows `where`: only the chosen columns (and channel) read.

    Indexed by timestamps; one column (wide), or one per channel (long). `limit`: the first rows only.
    """
    import pyarrow.dataset as pads

    columns = choose(dataset.schema, options, ignore)
    where_system = where
    if columns.channel and columns.power is not None:
        try:
            wanted = pads.field(columns.channel) == typed_values(dataset.schema, columns.channel, [columns.power])[0]
        except ValueError as exc:
            raise FrameError(f"no channel {columns.power!r}: {exc}", "power_column", usage=True) from None
        where = wanted if where is None else where & wanted
    with parquet_errors():
        if limit is None:
            table = dataset.to_table(columns=columns.names, filter=where)
        else:
            table = dataset.head(limit, columns=columns.names, filter=where)
    if table.num_rows == 0 and columns.channel and columns.power is not None:
        seen = dataset.head(HEAD_ROWS, columns=[columns.channel], filter=where_system)
        found = ", ".join(sorted({str(v) for v in seen.column(0).to_pylist()})) or "none"
        raise FrameError(f"no channel {columns.power!r}; channels: {found}", "power_column", usage=True)
    if table.num_rows == 0:
        raise ValueError("no data: no rows for this system")
    if columns.channel and columns.value:
        return pivot_long(table, columns.timestamp, columns.channel, columns.value)
    return _wide(table, columns)


def _wide(table: pa.Table, columns: Columns) -> pd.DataFrame:
    import pandas as pd

    frame = table.select(columns.names).to_pandas(ignore_metadata=True)
    stamps = frame.pop(columns.timestamp)
    if not pd.api.types.is_datetime64_any_dtype(stamps):
        stamps = pd.to_datetime(stamps, errors="coerce")
    frame.index = pd.DatetimeIndex(stamps, name=columns.timestamp)
    return frame[frame.index.notna()]


def _timestamp(schema: pa.Schema, names: list[str], given: str | None) -> str:
    import pyarrow as pa

    if given:
        if given not in names:
            raise FrameError(f"no timestamp column {given!r}; columns: {', '.join(names)}", usage=True)
        return given
    by_name = [n for n in names if n.strip().lower() in TIMESTAMP_NAMES]
    typed = [n for n in names if pa.types.is_timestamp(schema.field(n).type) or pa.types.is_date(schema.field(n).type)]
    index = [n for n in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(n, str) and n in names]
    found = by_name or typed or index
    if not found:
        raise FrameError(f"no timestamp column: none of {', '.join(names)} holds dates", "timestamp_column")
    return found[0]


def _numeric(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind))
