"""Parquet datasets of many systems, read with pyarrow.dataset, one system at a time.

A dataset is hive-partitioned by system (`ROOT/system_id=12/year=2021/...`) or holds the
system in a column. Reading one system touches only its own files (its partition folder,
or the row groups whose statistics admit it) and only the columns asked for. Long data
(timestamp, channel, value) comes back pivoted: one column per channel.

`read_long_system` is the building block of every long, partitioned fleet (PVDAQ's too).
Filesystems are fsspec's (local, s3fs, adlfs): pyarrow reads through them.
"""

from __future__ import annotations

import contextlib
import functools
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as ds


@contextlib.contextmanager
def parquet_errors() -> Iterator[None]:
    """A file pyarrow cannot read becomes one ValueError line: `not a readable Parquet file: ...`."""
    import pyarrow as pa

    try:
        yield
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"not a readable Parquet file: {first}") from None


def arrow_filesystem(filesystem: Any) -> Any:
    """What pyarrow takes for an fsspec filesystem: its own local one for local files (faster), else the same."""
    if filesystem is None or "file" in _protocols(filesystem):
        import pyarrow.fs

        return pyarrow.fs.LocalFileSystem()
    return filesystem


def _protocols(filesystem: Any) -> tuple[str, ...]:
    protocol = getattr(filesystem, "protocol", ())
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def partition_of(name: str) -> tuple[str, str] | None:
    """(NAME, VALUE) of a hive partition folder's name `NAME=VALUE` (VALUE unquoted), else None."""
    field, sep, value = name.partition("=")
    if not sep or not field or not value or field.startswith((".", "_")):
        return None
    return field, urllib.parse.unquote(value)


def partition_folder(root: str, field: str, value: Any) -> str:
    """The folder of partition `field=value` under `root`, as pyarrow writes it (VALUE quoted)."""
    return f"{root.rstrip('/')}/{field}={urllib.parse.quote(str(value), safe='')}"


def system_dataset(
    root: str,
    system: Any,
    *,
    filesystem: Any = None,
    system_field: str = "system_id",
    partitioned: bool = True,
    years: Iterable[int] | None = None,
) -> tuple[ds.Dataset, ds.Expression | None]:
    """One system's part of the dataset at `root`, and the filter that still selects it (or None).

    `partitioned`: the system is the first partition level (`ROOT/SYSTEM_FIELD=VALUE/`), so
    only that folder is listed; else it is a column (or a deeper partition) of the whole
    dataset, filtered by value. `years` keeps only `year=YYYY` partitions.
    """
    import pyarrow.dataset as ds

    fs = arrow_filesystem(filesystem)
    chosen = sorted(set(years)) if years is not None else None
    if partitioned:
        base = partition_folder(root, system_field, system)
        if chosen is None:
            return _parquet(base, fs), None
        folders = [partition_folder(base, "year", year) for year in chosen]
        parts = [_parquet(folder, fs) for folder in folders if _is_folder(filesystem, folder)]
        if not parts:
            raise ValueError(f"no data: system {system} has no partition of the years {', '.join(map(str, chosen))}")
        return ds.dataset(parts), None
    whole = _cached_dataset(root, filesystem)
    condition = ds.field(system_field) == typed_values(whole.schema, system_field, [system])[0]
    if chosen is not None:
        if "year" not in whole.schema.names:
            raise ValueError(f"no year partition or column in {root}; leave years out")
        condition &= ds.field("year").isin(typed_values(whole.schema, "year", chosen))
    return whole, condition


def read_system(
    root: str,
    system: Any,
    columns: Sequence[str] | None = None,
    *,
    filesystem: Any = None,
    system_field: str = "system_id",
    partitioned: bool = True,
    years: Iterable[int] | None = None,
    where: ds.Expression | None = None,
) -> pa.Table:
    """The rows of one system (and `where`), only `columns` (default: all): an Arrow table."""
    dataset, condition = system_dataset(
        root, system, filesystem=filesystem, system_field=system_field, partitioned=partitioned, years=years
    )
    if where is not None:
        condition = where if condition is None else condition & where
    missing = [c for c in columns or () if c not in dataset.schema.names]
    if missing:
        raise ValueError(f"no column {missing[0]!r} in the data of system {system}; columns: {_names(dataset)}")
    with parquet_errors():
        return dataset.to_table(columns=list(columns) if columns else None, filter=condition)


def read_long_system(
    root: str,
    system: Any,
    *,
    filesystem: Any = None,
    system_field: str = "system_id",
    timestamp: str = "measured_on",
    channel: str = "metric_id",
    value: str = "value",
    channels: Iterable[Any] | None = None,
    years: Iterable[int] | None = None,
    partitioned: bool = True,
) -> pd.DataFrame:
    """One system of a long dataset (rows of timestamp, channel, value) as a wide frame.

    Reads only the system's partition folder (`partitioned`) or its rows (a system column),
    the `year=YYYY` partitions of `years` (default: all), the rows of `channels` (default:
    all; given as text or numbers, matched by the channel column's type) and the three
    columns. Returns the values indexed by sorted timestamps (the first of repeated ones),
    one column per channel, named `str(channel)`; ValueError when the system has no rows.
    """
    import pyarrow.dataset as ds

    dataset, _ = system_dataset(
        root, system, filesystem=filesystem, system_field=system_field, partitioned=partitioned, years=years
    )
    where = None
    if channels is not None:
        if channel not in dataset.schema.names:
            names = _names(dataset)
            raise ValueError(f"no channel column {channel!r} in the data of system {system}; columns: {names}")
        where = ds.field(channel).isin(typed_values(dataset.schema, channel, list(channels)))
    table = read_system(
        root,
        system,
        [timestamp, channel, value],
        filesystem=filesystem,
        system_field=system_field,
        partitioned=partitioned,
        years=years,
        where=where,
    )
    if table.num_rows == 0:
        asked = f" of channels {', '.join(map(str, channels))}" if channels is not None else ""
        raise ValueError(f"no data: system {system} has no rows{asked}")
    return pivot_long(table, timestamp, channel, value)


def pivot_long(table: pa.Table, timestamp: str, channel: str, value: str) -> pd.DataFrame:
    """Long rows (timestamp, channel, value) as one column per channel, indexed by sorted timestamps."""
    import pandas as pd

    frame = table.select([timestamp, channel, value]).to_pandas()
    stamps = frame[timestamp]
    if not pd.api.types.is_datetime64_any_dtype(stamps):
        stamps = pd.to_datetime(stamps, errors="coerce")
    frame = pd.DataFrame({"t": stamps, "c": frame[channel].astype(str), "v": pd.to_numeric(frame[value], "coerce")})
    frame = frame[frame["t"].notna()].drop_duplicates(["t", "c"], keep="first")
    wide = frame.pivot(index="t", columns="c", values="v").sort_index()
    wide.index.name, wide.columns.name = timestamp, None
    return wide


def _parquet(path: str, fs: Any) -> ds.Dataset:
    import pyarrow.dataset as ds

    with parquet_errors():
        return ds.dataset(path, format="parquet", partitioning="hive", filesystem=fs)


@functools.lru_cache(maxsize=8)
def _cached_dataset(root: str, filesystem: Any) -> ds.Dataset:
    """The whole dataset at `root`, discovered once per process (each key filters it)."""
    return _parquet(root, arrow_filesystem(filesystem))


def _is_folder(filesystem: Any, path: str) -> bool:
    if filesystem is None:
        import os

        return os.path.isdir(path)
    return bool(filesystem.isdir(path))


def typed_values(schema: pa.Schema, field: str, values: list[Any]) -> list[Any]:
    """`values` as the field's type (text matches a numeric column); ValueError if they are not of it."""
    import pyarrow as pa

    kind = schema.field(field).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    try:
        return pa.array([str(v) if pa.types.is_string(kind) else v for v in values]).cast(kind).to_pylist()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise ValueError(f"{values!r} are not values of {field} ({kind})") from None


def _names(dataset: ds.Dataset) -> str:
    return ", ".join(dataset.schema.names)
