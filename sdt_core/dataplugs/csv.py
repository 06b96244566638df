"""CSV files in a directory, one system per file: wide tables or the long VADER format."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import pandas as pd

from sdt_core.dataplugs import DataPlug
from sdt_core.dataplugs.frames import read_power_csv
from sdt_core.errors import SettingsError
from sdt_core.plugs.settings import setting


class CsvFiles(DataPlug):
    """Options shared by data plugs of CSV files, one system per file."""

    ext: str = setting(".csv", "File name ending of the data files (e.g. .csv.gz).")
    power_column: str | None = setting(None, "Power column (default: the first numeric one).")
    timestamp_column: str | None = setting(None, "Timestamp column (default: found by name or content).")
    time_zone: str | None = setting(None, "Time zone of the sites: timestamps that carry a zone are converted to it.")

    def key_of(self, name: str) -> tuple[str] | None:
        """The key of a file name, or None when it is not a data file."""
        return (name[: len(name) - len(self.ext)],) if name.endswith(self.ext) and len(name) > len(self.ext) else None

    def read(self, source: str | IO[bytes]) -> pd.DataFrame:
        compression = next((c for end, c in _COMPRESSION.items() if self.ext.endswith(end)), None)
        return read_power_csv(source, self.power_column, self.timestamp_column, compression)


_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}


class CsvDirectory(CsvFiles):
    """CSV files in a directory, one system per file; the key is the file name without `ext`."""

    path: str = setting(".", "The directory.")

    @classmethod
    def from_location(cls, location: str) -> dict[str, Any]:
        """The directory: `sdt run DIR`, or `file://DIR`."""
        return {"path": location}

    @property
    def location(self) -> str:
        return f"{self.path}/*{self.ext}"

    def check(self) -> None:
        folder = Path(self.path)
        if not folder.is_dir():
            raise SettingsError(f"data directory {self.path} does not exist; give a directory of {self.ext} files")
        self.path = str(folder.resolve())  # one folder, one identity: a resume may name it either way

    def reads_folder(self, folder: Path) -> bool:
        return Path(self.path).resolve() == folder.resolve()

    def keys(self) -> Iterable[tuple[str]]:
        keys = (self.key_of(p.name) for p in sorted(Path(self.path).iterdir()) if p.is_file())
        return [key for key in keys if key]

    def get_data(self, key: tuple[Any, ...]) -> pd.DataFrame:
        return self.read(str(Path(self.path) / f"{key[0]}{self.ext}"))

    def weight(self, key: tuple[Any, ...]) -> float | None:
        return float((Path(self.path) / f"{key[0]}{self.ext}").stat().st_size)
