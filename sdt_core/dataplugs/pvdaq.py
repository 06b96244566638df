"""The public PVDAQ fleet (`pvdaq://`): NREL's PV systems in the Open Energy Data Initiative's data lake.

The layout, as NREL's `pvdaq_access` code reads it (OEDI's `pvdaq.md` documentation omits
the `parquet/` level), under `s3://oedi-data-lake/pvdaq/` (us-west-2, readable unsigned):

- `csv/systems_YYYYMMDD.csv`: the systems index (the newest is read); one system may have
  several rows; `timezone_or_utc_offset` is an IANA name or a bare UTC offset;
- `parquet/metrics/metrics__system_<id>__part000.parquet`: each system's metrics, which
  `metric_id` is which sensor (`sensor_name`, `common_name`, `standard_name`, `units`);
- `parquet/pvdata/system_id=<id>/year=<y>/month=<m>/day=<d>/*.parquet`: the time series,
  long rows of `measured_on` (local time), `utc_measured_on`, `metric_id`, `value`.

Keys are the systems with time series, listed from the index and the partition folders'
names (no data read). A key reads its metrics table, then only its own partitions, its AC
power metric and three columns; sentinel values (-999, -7999, ...) are dropped. Each key's
metadata (name, place, time zone, DC capacity) comes from the index (`metadata`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sdt_core.dataplugs import DataPlug
from sdt_core.dataplugs.datasets import partition_of, read_long_system
from sdt_core.dataplugs.folders import StoreError, _natural
from sdt_core.dataplugs.frames import named_as_power
from sdt_core.dataplugs.s3 import _first, endpoint_url, s3_filesystem
from sdt_core.errors import SdtError
from sdt_core.plugs.settings import setting

if TYPE_CHECKING:
    import pandas as pd

#: Values PVDAQ writes for "no measurement"; rows holding them are dropped.
SENTINELS = (-999.0, -7999.0, -9999.0)
#: Index columns kept as each system's metadata, and the names they get.
METADATA = {
    "system_public_name": "name",
    "latitude": "latitude",
    "longitude": "longitude",
    "elevation_m": "elevation_m",
    "dc_capacity_kW": "dc_capacity_kw",
    "timezone_or_utc_offset": "time_zone",
    "first_timestamp": "first_timestamp",
    "last_timestamp": "last_timestamp",
}
_INDEX = re.compile(r"systems_(\d{8})\.csv$")
_NAME_COLUMNS = ("standard_name", "common_name", "sensor_name")


class PvdaqFleet(DataPlug):
    """The public PVDAQ fleet: `pvdaq://` (every system with time series) or `pvdaq://?systems=2,4,10`."""

    systems: list[int] = setting([], "System ids to analyse, e.g. 2,4,10 (default: every system with time series).")
    years: list[int] = setting([], "Years to read, e.g. 2019,2020 (default: every year).")
    power_channel: str | None = setting(
        None,
        "The power metric: a metric_id, or a sensor_name, common_name or standard_name "
        "(default: the system's one AC power metric).",
    )
    bucket: str = setting("oedi-data-lake", "The data lake's bucket.")
    prefix: str = setting("pvdaq", "PVDAQ's folder in the bucket.")
    anonymous: bool = setting(True, "Unsigned requests (the data lake is public); false: the AWS credentials.")

    @classmethod
    def from_location(cls, location: str) -> dict[str, Any]:
        """Nothing: `pvdaq://` takes its options from the query (`pvdaq://?systems=2,4`)."""
        if location.strip("/"):
            raise SdtError(f"pvdaq:// takes no location ({location!r}): give systems as pvdaq://?systems=2,4,10")
        return {}

    @property
    def location(self) -> str:
        return f"s3://{self.root}"

    @property
    def root(self) -> str:
        return f"{self.bucket}/{self.prefix.strip('/')}".rstrip("/")

    def filesystem(self) -> Any:
        return s3_filesystem(True if self.anonymous else None)

    # --- listing: the index and partition names, never data --------------------------------

    def index(self) -> pd.DataFrame:
        """The newest systems index, one row per system (its rows merged: first value of each column)."""
        found: pd.DataFrame | None = self.__dict__.get("_index")
        if found is None:
            found = self._reach(self._read_index, listing=True)
            self.__dict__["_index"] = found
        return found

    def _read_index(self) -> pd.DataFrame:
        import pandas as pd

        fs = self.filesystem()
        names = [str(p) for p in fs.ls(f"{self.root}/csv", detail=False)]
        dated = sorted((m.group(1), n) for n in names if (m := _INDEX.search(n)))
        if not dated:
            raise SdtError(f"no systems index (csv/systems_YYYYMMDD.csv) in {self.location}; check bucket and prefix")
        with fs.open(dated[-1][1], "rb") as handle:
            rows = pd.read_csv(handle)
        if "system_id" not in rows.columns:
            raise SdtError(f"{dated[-1][1]} has no system_id column: not a PVDAQ systems index")
        rows = rows[pd.to_numeric(rows["system_id"], errors="coerce").notna()]
        rows["system_id"] = rows["system_id"].astype(int)
        return rows.groupby("system_id", sort=True).first()

    def with_data(self) -> list[int]:
        """The systems with a time series folder (`parquet/pvdata/system_id=N`)."""
        found: list[int] | None = self.__dict__.get("_with_data")
        if found is None:
            names = self._reach(lambda: self.filesystem().ls(f"{self.root}/parquet/pvdata", detail=False), listing=True)
            parts = [partition_of(str(name).rstrip("/").rsplit("/", 1)[-1]) for name in names]
            found = _natural(int(p[1]) for p in parts if p and p[0] == "system_id" and p[1].isdigit())
            self.__dict__["_with_data"] = found
        return found

    def keys(self) -> Iterable[tuple[Any, ...]]:
        known, with_data = set(self.index().index), set(self.with_data())
        if not self.systems:
            return [(system,) for system in sorted(with_data)]
        unknown = [s for s in self.systems if s not in known and s not in with_data]
        if unknown:
            raise SdtError(
                f"no PVDAQ system {', '.join(map(str, unknown))} in the systems index of {self.location}; "
                "leave systems out for every system, or see the index (csv/systems_*.csv) for the ids"
            )
        empty = [s for s in self.systems if s not in with_data]
        if empty:
            raise SdtError(
                f"PVDAQ system {', '.join(map(str, empty))} has no time series in {self.location}/parquet/pvdata; "
                "leave it out of systems"
            )
        return [(system,) for system in dict.fromkeys(self.systems)]

    def __getstate__(self) -> dict[str, Any]:
        """The index travels to the workers (a few hundred rows); the partition listing does not."""
        return {k: v for k, v in self.__dict__.items() if k != "_with_data"}

    # --- one system ------------------------------------------------------------------------

    def metadata(self, key: tuple[Any, ...]) -> dict[str, Any]:
        """The system's row of the index: name, latitude, longitude, elevation, DC capacity, time zone."""
        import pandas as pd

        index = self.index()
        if key[0] not in index.index:
            return {}
        row = index.loc[key[0]]
        values: dict[str, Any] = {}
        for column, name in METADATA.items():
            value = row.get(column)
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                continue
            values[name] = value.item() if hasattr(value, "item") else value
        if "time_zone" in values:
            values["time_zone"] = site_time_zone(values["time_zone"])
        return values

    def metrics(self, system: int) -> pd.DataFrame:
        """The system's metrics table: metric_id, sensor_name, common_name, units, standard_name, ..."""
        import pandas as pd

        path = f"{self.root}/parquet/metrics/metrics__system_{system}__part000.parquet"
        fs = self.filesystem()

        def read() -> pd.DataFrame:
            if not fs.exists(path):
                raise ValueError(f"no data: PVDAQ system {system} has no metrics table ({path})")
            with fs.open(path, "rb") as handle:
                return pd.read_parquet(handle)

        return self._reach(read)

    def power_metric(self, system: int) -> tuple[int, str]:
        """The metric_id of the system's power (`power_channel`, else its one AC power metric), and its name."""
        metrics = self.metrics(system)
        names = [c for c in _NAME_COLUMNS if c in metrics.columns]

        def label(row: Any) -> str:
            return str(next((row[c] for c in names if isinstance(row[c], str) and row[c]), row["metric_id"]))

        if self.power_channel is not None:
            wanted = self.power_channel.strip().lower()
            for _, row in metrics.iterrows():
                if wanted == str(row["metric_id"]) or any(str(row[c]).lower() == wanted for c in names):
                    return int(row["metric_id"]), label(row)
            raise ValueError(
                f"PVDAQ system {system} has no metric {self.power_channel!r}; its metrics: {_listed(metrics, label)}"
            )
        power = metrics[[_is_ac_power(row, names) for _, row in metrics.iterrows()]]
        if len(power) == 1:
            return int(power["metric_id"].iloc[0]), label(power.iloc[0])
        if power.empty:
            raise ValueError(
                f"PVDAQ system {system} has no AC power metric; set power_channel to one of: {_listed(metrics, label)}"
            )
        raise ValueError(
            f"PVDAQ system {system} has {len(power)} AC power metrics ({_listed(power, label)}); "
            "choose one with power_channel (--data-option power_channel=...)"
        )

    def get_data(self, key: tuple[Any, ...]) -> pd.DataFrame:
        """The system's AC power by `measured_on` (local time), sentinel values dropped: one column."""
        system = int(key[0])
        metric, name = self.power_metric(system)
        frame = self._reach(
            lambda: read_long_system(
                f"{self.root}/parquet/pvdata",
                system,
                filesystem=self.filesystem(),
                channels=[metric],
                years=self.years or None,
            )
        )
        power = frame[str(metric)]
        power = power[power.notna() & ~power.isin(SENTINELS)]
        if power.empty:
            raise ValueError(f"no data: PVDAQ system {system} has only missing or sentinel values of metric {metric}")
        return power.rename(name).to_frame()

    def probe(self, key: tuple[Any, ...]) -> None:
        """A worker reaches the lake: it reads the key's metrics table (a small file)."""
        self.metrics(int(key[0]))

    # --- errors ----------------------------------------------------------------------------

    def _reach(self, read: Any, listing: bool = False) -> Any:
        """`read()`, the store's errors as one line: SdtError when `listing` (before the start), else StoreError."""
        try:
            return read()
        except (SdtError, ValueError):
            raise
        except Exception as exc:
            text = _explain(exc)
            if listing:
                raise SdtError(f"cannot read the PVDAQ data lake at {self.location}: {text}") from None
            raise StoreError(text) from None


def _explain(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, PermissionError):
        return f"access denied ({_first(exc)}): the data lake is public, leave anonymous=true"
    if isinstance(exc, FileNotFoundError):
        return f"no such bucket or folder ({_first(exc)}): check bucket and prefix"
    if "Connect" in name or "Endpoint" in name or isinstance(exc, (ConnectionError, TimeoutError)):
        where = endpoint_url() or "of AWS"
        return f"cannot reach the S3 endpoint {where} ({name}): check the network and AWS_ENDPOINT_URL"
    return f"{name}: {_first(exc)}"


def _is_ac_power(row: Any, names: list[str]) -> bool:
    """A metric named as AC power: `ac_power`, `AC Power`, `inv1_ac_power_kw`; not DC power, not energy."""
    for column in names:
        text = str(row[column]) if isinstance(row[column], str) else ""
        words = set(re.split(r"[^a-z0-9]+", text.lower()))
        if text and named_as_power(text) and ("ac" in words or "ac_power" in text.lower()) and "dc" not in words:
            return True
    return False


def _listed(metrics: pd.DataFrame, label: Any) -> str:
    return ", ".join(f"{label(row)} ({row['metric_id']})" for _, row in metrics.iterrows())


@functools.lru_cache(maxsize=64)
def site_time_zone(value: Any) -> str:
    """The index's `timezone_or_utc_offset` as a name pandas knows: an IANA name as it is, a bare
    offset (-7, "-07:00", "UTC-7") as Etc/GMT+7 (POSIX's inverted sign); anything else unchanged."""
    text = str(value).strip()
    found = re.fullmatch(r"(?:UTC|GMT)?\s*([+-]?)(\d{1,2})(?:[:.]?(\d{2}))?(?:\.0)?", text, re.IGNORECASE)
    if not found:
        return text
    sign, hours, minutes = found.group(1), int(found.group(2)), int(found.group(3) or 0)
    if minutes:
        return f"{sign or '+'}{hours:02d}:{minutes:02d}"
    if hours == 0:
        return "UTC"
    return f"Etc/GMT{'+' if sign == '-' else '-'}{hours}"
