"""Data in a folder of any filesystem fsspec reaches: this machine's, S3, Azure Blob Storage.

`Folder` is the base of the built-in data plugs of files: one CSV or Parquet file per
system, or one Parquet dataset of many systems (partitioned by system, or with a system
column; wide or long). It tells which from the folder's first level (`sdt_core.dataplugs.
layout`), once, on the client; the layout travels to the workers with the plug. A store
subclass says where the folder is (`filesystem`, `root`), how to list it and what its
errors mean.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote

from sdt_core.dataplugs import DataPlug
from sdt_core.dataplugs.datasets import partition_folder, system_dataset
from sdt_core.dataplugs.frames import FrameError, read_power_csv
from sdt_core.dataplugs.layout import FORMATS, Entry, Layout, LayoutError, detect
from sdt_core.dataplugs.tables import ColumnOptions, read_frame
from sdt_core.errors import SdtError
from sdt_core.plugs.settings import mask_credentials, setting

if TYPE_CHECKING:
    import pandas as pd

#: Rows read for a key's head (the check of the options before the start).
HEAD_ROWS = 500
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}


class StoreError(OSError):
    """The store could not be reached or read (endpoint, credentials, a missing bucket): one line."""


class Folder(DataPlug):
    """Options and reading shared by the data plugs of files; subclasses say where the folder is."""

    format: str = setting("auto", "csv, parquet, or auto: by the files found.", choices=FORMATS)
    ext: str | None = setting(None, "Ending of the data files, e.g. .csv.gz (default: .csv or .parquet, by format).")
    system_column: str | None = setting(
        None,
        "One dataset of many systems: the partition (folders NAME=VALUE) or column naming the system "
        "(default: NAME, when the folder holds NAME=VALUE folders).",
    )
    timestamp_column: str | None = setting(None, "Timestamp column (default: found by name or type).")
    power_column: str | None = setting(
        None, "Power column, or in long data the power channel (default: the one named as power)."
    )
    channel_column: str | None = setting(
        None, "Long data: the column naming each value's channel or metric (default: channel, metric, metric_id)."
    )
    value_column: str | None = setting(None, "Long data: the column of the values (default: value).")
    time_zone: str | None = setting(None, "Time zone of the sites: timestamps that carry a zone are converted to it.")

    # --- what a store subclass provides ---------------------------------------------------

    def filesystem(self) -> Any:
        """The fsspec filesystem of the folder (made once per process)."""
        raise NotImplementedError

    @property
    def root(self) -> str:
        """The folder (or file), as a path of `filesystem()`."""
        raise NotImplementedError

    def url(self, path: str = "") -> str:
        """`path` (default: the folder) as the user writes it, for messages."""
        return path or self.root

    def listing(self) -> list[Entry]:
        """The names in the folder's first level (never deeper)."""
        entries = []
        for info in self.filesystem().ls(self.root, detail=True):
            name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
            entries.append(Entry(name, info.get("type") == "directory", info.get("size")))
        return entries

    def explain(self, exc: BaseException) -> str:
        """One line for a store's exception: what went wrong and what to check."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        return f"{type(exc).__name__}: {text}"

    # --- the DataPlug --------------------------------------------------------------------

    @property
    def location(self) -> str:
        return self.url()

    def layout(self) -> Layout:
        """How the folder's data are laid out: found from its first level once, then kept (and sent to workers)."""
        found: Layout | None = self.__dict__.get("_layout")
        if found is None:
            found = self._detect(self._listing())
            self.__dict__["_layout"] = found
        return found

    def _detect(self, entries: list[Entry]) -> Layout:
        try:
            return detect(entries, self.url(), self.format, self.ext, self.system_column)
        except LayoutError as exc:
            raise SdtError(str(exc)) from None

    def _listing(self) -> list[Entry]:
        cached: list[Entry] | None = self.__dict__.get("_entries")
        if cached is None:
            with self.reaching(listing=True):
                cached = self.listing()
            self.__dict__["_entries"] = cached
        return cached

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the listing, which can be large: workers need the layout only."""
        return {k: v for k, v in self.__dict__.items() if k != "_entries"}

    def keys(self) -> Iterable[tuple[Any, ...]]:
        layout = self.layout()
        if layout.kind == "files":
            found = [key for key in map(layout.key_of, sorted(e.name for e in self._listing() if not e.folder)) if key]
            if not found and self.ext is None and self.format == "auto":
                raise SdtError(
                    f"no data: {self.url()} has no CSV or Parquet files; give a folder of them, "
                    "or name the files' ending with ext=... (--data-option ext=...)"
                )
            return found
        if layout.kind == "partitions":
            start = f"{layout.system}="
            values = {e.name[len(start) :] for e in self._listing() if e.folder and e.name.startswith(start)}
            return [(unquote(value),) for value in _natural(values - {""})]
        return [(value,) for value in self._column_values(str(layout.system))]

    def _column_values(self, column: str) -> list[Any]:
        import pyarrow.compute as pc

        from sdt_core.dataplugs.datasets import _cached_dataset

        with self.reaching(listing=True):
            dataset = _cached_dataset(self.root, self.filesystem())
            if column not in dataset.schema.names:
                raise SdtError(
                    f"{self.url()} has no column or partition {column!r}; columns: {', '.join(dataset.schema.names)}"
                )
            values = pc.unique(dataset.to_table(columns=[column]).column(column)).to_pylist()
        return _natural(v for v in values if v is not None)

    def weight(self, key: tuple[Any, ...]) -> float | None:
        layout = self.layout()
        if layout.kind != "files":
            return None
        sizes = {e.name: e.size for e in self._listing()}
        size = sizes.get(f"{key[0]}{layout.ext}")
        return float(size) if size is not None else None

    def get_data(self, key: tuple[Any, ...]) -> pd.DataFrame:
        return self._read(key, None)

    def head(self, key: tuple[Any, ...]) -> pd.DataFrame:
        return self._read(key, HEAD_ROWS)

    def _read(self, key: tuple[Any, ...], limit: int | None) -> pd.DataFrame:
        layout = self.layout()
        with self.reaching():
            if layout.format == "csv":
                with self._open(self.path_of(key)) as source:
                    return self._csv(source, layout, limit)
            if layout.kind == "files":
                import pyarrow.dataset as ds

                dataset, where = ds.dataset(self.path_of(key), format="parquet", filesystem=self._arrow()), None
            else:
                dataset, where = system_dataset(
                    self.root,
                    key[0],
                    filesystem=self.filesystem(),
                    system_field=str(layout.system),
                    partitioned=layout.kind == "partitions",
                )
                if not getattr(dataset, "files", True):
                    raise ValueError(f"no data: {self.url(self.path_of(key))} holds no files")
            return read_frame(dataset, where, self._column_options(), frozenset({str(layout.system)}), limit)

    def path_of(self, key: tuple[Any, ...]) -> str:
        """The file (or partition folder) of `key`."""
        layout = self.layout()
        if layout.kind == "files":
            return f"{self.root.rstrip('/')}/{key[0]}{layout.ext}"
        if layout.kind == "partitions":
            return partition_folder(self.root, str(layout.system), key[0])
        return self.root

    def _csv(self, source: str | IO[bytes], layout: Layout, limit: int | None) -> pd.DataFrame:
        compression = next((c for end, c in _COMPRESSION.items() if layout.ext.endswith(end)), None)
        return read_power_csv(source, self.power_column, self.timestamp_column, compression, nrows=limit)

    @contextlib.contextmanager
    def _open(self, path: str) -> Iterator[IO[bytes]]:
        with self.filesystem().open(path, "rb") as handle:
            yield handle

    def _arrow(self) -> Any:
        from sdt_core.dataplugs.datasets import arrow_filesystem

        return arrow_filesystem(self.filesystem())

    def _column_options(self) -> ColumnOptions:
        return ColumnOptions(self.timestamp_column, self.power_column, self.channel_column, self.value_column)

    @contextlib.contextmanager
    def reaching(self, listing: bool = False) -> Iterator[None]:
        """The store's errors in one line: SdtError when `listing` (before the start), else StoreError."""
        try:
            yield
        except (SdtError, FrameError, StoreError):
            raise
        except ValueError as exc:
            if listing:
                raise SdtError(f"cannot read {self.url()}: {mask_credentials(str(exc))}") from None
            raise
        except Exception as exc:
            text = mask_credentials(self.explain(exc))
            if listing:
                raise SdtError(f"cannot list {self.url()}: {text}") from None
            raise StoreError(text) from None


def _natural(values: Iterable[Any]) -> list[Any]:
    """Sorted, numbers by value: 2 before 10, also when they are folder names."""
    values = list(values)
    if all(isinstance(v, int) or (isinstance(v, str) and v.isdigit()) for v in values):
        return sorted(values, key=int)
    return sorted(values, key=str)
