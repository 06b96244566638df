"""DataPlugs: where the systems' data come from.

A data plug lists keys (`keys()`) and returns one DataFrame per key (`get_data(key)`), as
in SDT's Dask tool. Data plugs are discovered like cluster plugs: every entry point of the
group `sdt_core.dataplugs` is loaded on its own; its name is the URL scheme it serves
(`s3` serves `s3://bucket/prefix`; a plain directory is `file`). One that is importable but
not installed is named by its import path, `package.module:DataPlugClass`.
"""

from __future__ import annotations

import typing
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdt_core.errors import SdtError, SettingsError
from sdt_core.plugs.discovery import EntryPointRegistry, PlugInfo
from sdt_core.plugs.settings import Options, mask_credentials, parse_text, validate

if TYPE_CHECKING:
    import pandas as pd

#: The entry-point group of data plugs: each entry point's name is the URL scheme it serves, its value a DataPlug class.
DATA_GROUP = "sdt_core.dataplugs"


class DataPlug(Options):
    """Base of data plugs: declare options with `setting()`, implement `keys` and `get_data`.

    Core applies the options named `power_column`, `timestamp_column` and `time_zone` to
    every frame when a plug declares them (`sdt_core.testing.load_key` shows the result).
    A subclass written as in SDT's Dask tool (its own `__init__` and `get_data`) also works
    wherever a data plug is accepted, given its keys.
    """

    noun = "data plug"
    option_noun = "option"

    @classmethod
    def from_location(cls, location: str) -> dict[str, Any]:
        """Options from the location of a URL, the part between `scheme://` and `?`.

        `sdt run parquet://data/systems` calls it with "data/systems" (a plain directory
        is the location of the `file` plug); the URL's query and `--data-option` come on
        top. Returns a mapping of option names to values, which are then validated.
        """
        return {}

    @property
    def location(self) -> str:
        """Where the data are, for messages."""
        return type(self).__name__

    def keys(self) -> Iterable[tuple[Any, ...]]:
        """Every key this plug has data for; each key is a tuple."""
        raise NotImplementedError(f"{type(self).__name__} does not list its keys; pass keys=")

    def get_data(self, key: tuple[Any, ...]) -> pd.DataFrame:
        """The data of one key: timestamps (index or column) and a power column."""
        raise NotImplementedError

    def weight(self, key: tuple[Any, ...]) -> float | None:
        """How big the key's data is, if known cheaply (e.g. file size): biggest go first."""
        return None

    def head(self, key: tuple[Any, ...]) -> pd.DataFrame | None:
        """The first rows of `get_data(key)`, read cheaply (a file's first rows, a schema), or None.

        Optional. `sdt run` checks the first key's head before the start: when the options
        are wrong for it (a named column or channel missing, several columns that could be
        power), it refuses in one line instead of failing every key.
        """
        return None

    def metadata(self, key: tuple[Any, ...]) -> Mapping[str, Any]:
        """What is known of the key's system besides its data: name, latitude, longitude,
        time_zone, dc_capacity_kw, ... (plain values), or nothing.

        Optional. Each key's row carries it as fields `meta_NAME` (so do summary.csv and
        summary.parquet), error rows too; the fleet report draws the keys with `latitude`
        and `longitude` on a map. Called on the worker before the key's data are read; an
        exception here is logged and the row goes without metadata.
        """
        return {}

    def probe(self, key: tuple[Any, ...]) -> None:
        """Check that this machine can reach the data, without reading it all; raise if not.

        Optional. `sdt run` calls it on one worker once the workers are up, before any key
        runs (with `key`, the first to run): a path the workers cannot see, or credentials
        they lack, then end the run in one line with nothing run. The default reads `head`.
        """
        self.head(key)

    @property
    def local_path(self) -> str | None:
        """The folder or file of this machine the data are in, or None (an object store, a service).

        A cluster plug whose workers do not share this machine's files
        (`ClientPlug.workers_share_files` False) refuses such data before it starts.
        """
        return None

    def reads_folder(self, folder: Path) -> bool:
        """Whether files written into `folder` could become keys of this plug (a run's --out must
        not be such a folder: a resume would take the run's own files for systems)."""
        return False

    def public_dict(self) -> dict[str, Any]:
        """The options, secrets masked: declared ones, and the password of any URL in a value."""
        return {k: mask_credentials(v) if isinstance(v, str) else v for k, v in super().public_dict().items()}


class DataPlugRegistry(EntryPointRegistry):
    group = DATA_GROUP
    noun = "data plug"

    def _accept(self, name: str, loaded: Any) -> type[DataPlug]:
        if not (isinstance(loaded, type) and issubclass(loaded, DataPlug)):
            raise TypeError(f"entry point {name} is {loaded!r}, not a DataPlug subclass")
        return loaded

    def open(
        self,
        url: str | None,
        options: Mapping[str, Any] | None = None,
        text_options: Mapping[str, str] | None = None,
        plug: str | None = None,
    ) -> DataPlug:
        """The data plug for `url` (a directory, or `scheme://location?option=value`).

        `plug` (a name or import path) chooses the data plug instead of the URL's scheme;
        `url` is then its location, or None for none. `text_options` are parsed by
        declared type, as the URL's query is (command line).
        """
        try:
            return self._open(url, options, text_options, plug)
        except SdtError as exc:
            shown = mask_credentials(str(exc))
            if shown == str(exc):
                raise
            raise type(exc)(shown) from None

    def _open(
        self,
        url: str | None,
        options: Mapping[str, Any] | None,
        text_options: Mapping[str, str] | None,
        plug: str | None,
    ) -> DataPlug:
        if plug is None and url is None:
            raise SdtError("no data: give a directory, a data plug URL or a data plug")
        if url is not None and not url.strip():
            raise SdtError("DATA is empty: give a directory or a data plug URL, or leave it out for the sample set")
        scheme, sep, rest = (url or "").partition("://")
        if plug is not None:
            rest = rest if sep and scheme == plug else url or ""
            scheme = plug
        elif not sep:
            scheme, rest = "file", url or ""
        location, _, query = rest.partition("?")
        cls = typing.cast("type[DataPlug]", self.options_class(scheme))
        hints = typing.get_type_hints(cls)
        values = cls.from_location(location) if url is not None else {}
        texts = dict(urllib.parse.parse_qsl(query)) | dict(text_options or {})
        twice = [k for k, v in values.items() if v not in ("", None) and k in {*texts, *(options or {})}]
        if twice:
            raise SdtError(
                f"data plug '{scheme}': {twice[0]} is given by DATA ({location}) and again as an option; give it once"
            )
        values |= {k: parse_text(hints.get(k), v) for k, v in texts.items()}
        opened = validate(scheme, cls, values | dict(options or {}))
        _check_time_zone(scheme, getattr(opened, "time_zone", None))
        return opened


def split_credentials(location: str) -> tuple[tuple[str, str] | None, str]:
    """`USER:PASSWORD@rest` -> ((USER, PASSWORD), rest) (unquoted); else (None, location)."""
    head, sep, rest = location.partition("@")
    user, colon, password = head.partition(":")
    if not sep or not colon or "/" in user:  # a secret key may hold a "/" unquoted
        return None, location
    return (urllib.parse.unquote(user), urllib.parse.unquote(password)), rest


def _check_time_zone(name: str, zone: Any) -> None:
    """The `time_zone` core applies must be one that pandas knows."""
    if not zone:
        return
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"data plug '{name}': time_zone {zone!r} is not a time zone; "
            "give an IANA name such as America/Denver or Etc/GMT+7"
        ) from None


def data_registry(refresh: bool = False) -> DataPlugRegistry:
    """The process's data plug registry, loaded from the entry points on first use."""
    return DataPlugRegistry.shared(refresh)


def list_data_plugs(refresh: bool = False) -> list[PlugInfo]:
    """One record per installed data plug, broken ones included."""
    return list(data_registry(refresh).records)


def open_data(url: str | None = None, /, *, plug: str | None = None, **options: Any) -> DataPlug:
    """The data plug serving `url`, with validated options; nothing is read yet.

    `plug` (a data plug's name or import path) serves `url` instead of the one of its scheme.
    """
    return data_registry().open(url, options, plug=plug)
