"""What a data folder holds, told from its first level alone: files per system, or one dataset.

- one file per system (`site-a.csv`, `12.parquet`): the key is the file name less its ending;
- a dataset partitioned by system (`system_id=12/...`): the key is each folder's value;
- a dataset with a system column (`system_column=NAME`, no such folders): the key is each
  value of that column (read alone).

CSV or Parquet is chosen by the files found (`format=auto`), never by reading them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import NamedTuple

FORMATS = ("auto", "csv", "parquet")
#: The endings of each format's files, compressed CSV included.
ENDINGS = {
    "csv": (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".csv.zst"),
    "parquet": (".parquet", ".pq"),
}
KINDS = ("files", "partitions", "column")


class Entry(NamedTuple):
    """One name in a folder's first level (a tuple: 100,000 of them are made in a listing)."""

    name: str
    folder: bool
    size: int | None = None


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a folder's data are laid out: `kind` (one of KINDS), `format`, the files' ending, the system field."""

    kind: str
    format: str
    ext: str = ""
    system: str | None = None

    def key_of(self, name: str) -> tuple[str] | None:
        """The key of a file name (files laid out one per system), or None when it is not a data file."""
        if name.endswith(self.ext) and len(name) > len(self.ext) and not name.startswith((".", "_")):
            return (name[: len(name) - len(self.ext)],)
        return None


class LayoutError(ValueError):
    """The folder's contents do not say how to read them; the message says which option does."""


def detect(
    entries: Iterable[Entry], where: str, fmt: str = "auto", ext: str | None = None, system: str | None = None
) -> Layout:
    """The layout of a folder from its first-level `entries`; LayoutError says why none fits."""
    entries = list(entries)
    fields = {e.name.partition("=")[0] for e in entries if e.folder and "=" in e.name}
    fields -= {f for f in fields if not f or f.startswith((".", "_"))}
    if (system and system in fields) or (not system and len(fields) == 1):
        return Layout("partitions", _dataset_format(fmt, where), system=system or fields.pop())
    if len(fields) > 1 and not system:
        names = ", ".join(f"{f}=..." for f in sorted(fields))
        raise LayoutError(f"{where} has folders of several partitions ({names}); name the system's with system_column")
    if system:
        return Layout("column", _dataset_format(fmt, where), system=system)
    files = [e.name for e in entries if not e.folder]
    if ext is not None:  # "" too: every file, its whole name the key
        return Layout("files", fmt if fmt != "auto" else _format_of(ext), ext)
    found = {f: [n for n in files if n.lower().endswith(ENDINGS[f])] for f in ("csv", "parquet")}
    chosen = fmt if fmt != "auto" else next((f for f in ("parquet", "csv") if found[f] and not found[_other(f)]), None)
    if chosen is None and found["csv"] and found["parquet"]:
        raise LayoutError(
            f"{where} holds both CSV and Parquet files; choose with format=csv or format=parquet "
            "(--data-option format=...)"
        )
    if chosen is None:
        return Layout("files", "csv", ".csv")  # nothing to read: "no keys" says so
    endings = sorted({e for n in found[chosen] for e in ENDINGS[chosen] if n.lower().endswith(e)}, key=len)
    return Layout("files", chosen, endings[-1] if len(endings) == 1 else ENDINGS[chosen][0])


def _other(fmt: str) -> str:
    return "csv" if fmt == "parquet" else "parquet"


def _format_of(ext: str) -> str:
    return "parquet" if ext.lower().endswith(ENDINGS["parquet"]) else "csv"


def _dataset_format(fmt: str, where: str) -> str:
    if fmt == "csv":
        raise LayoutError(f"{where} is a partitioned dataset, which is read as Parquet; leave format out")
    return "parquet"
