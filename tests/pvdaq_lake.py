"""A miniature of PVDAQ's layout in the OEDI data lake, built by the tests and served by moto.

The layout is the one NREL's `pvdaq_access` reads (see `sdt_core.dataplugs.pvdaq`): a
systems index `pvdaq/csv/systems_YYYYMMDD.csv` (an older one too: the newest counts),
`pvdaq/parquet/metrics/metrics__system_<id>__part000.parquet`, and the long time series
`pvdaq/parquet/pvdata/system_id=<id>/year=<y>/month=<m>/day=<d>/system_<id>__date_....parquet`
(folder numbers not zero-padded) of `measured_on` (local), `utc_measured_on`, `metric_id`, `value`.

The systems:
- 2: America/Denver across the spring DST change (measured_on skips an hour), sentinels
  -999 and -7999 in its power, an irradiance metric beside it, two rows in the index;
- 4: a bare UTC offset (-5) and two AC power metrics (two inverters);
- 10: across a new year (two year partitions); 100: its folder name starts like 10's;
- 7: a row of the index with no time series.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

BUCKET = "oedi-data-lake"
STEP = "15min"


@dataclass(frozen=True)
class System:
    id: int
    name: str
    zone: str  # timezone_or_utc_offset as the index writes it
    local: str  # the zone measured_on is in
    start: str  # local start
    days: int
    latitude: float
    longitude: float
    dc_capacity_kw: float
    metrics: tuple[tuple[int, str, str], ...]  # metric_id, sensor_name, common_name
    sentinels: tuple[float, ...] = ()


SYSTEMS = {
    2: System(
        2,
        "Lab array",
        "America/Denver",
        "America/Denver",
        "2023-03-09",
        6,
        39.74,
        -105.18,
        5.0,
        ((100, "ac_power", "AC Power"), (101, "poa_irradiance", "POA Irradiance")),
        (-999.0, -7999.0),
    ),
    4: System(
        4,
        "Two inverters",
        "-5",
        "Etc/GMT+5",
        "2022-06-01",
        3,
        40.1,
        -75.2,
        12.5,
        ((200, "inv1_ac_power", "Inverter 1 AC Power"), (201, "inv2_ac_power", "Inverter 2 AC Power")),
    ),
    10: System(
        10,
        "New year",
        "America/Los_Angeles",
        "America/Los_Angeles",
        "2021-12-30",
        4,
        37.4,
        -122.1,
        3.2,
        ((300, "pac", "AC Power"), (301, "dc_power", "DC Power")),
    ),
    100: System(
        100, "Hundred", "-7", "Etc/GMT+7", "2021-12-30", 2, 33.4, -112.0, 90.0, ((400, "ac_power", "AC Power"),)
    ),
}
#: In the index, with no time series.
NO_DATA = 7


def series(system: System) -> pd.DataFrame:
    """The system's long rows: every metric at every 15 minutes, sentinels where the system has them."""
    local = pd.date_range(
        system.start, periods=system.days * 96, freq=STEP, tz=system.local, nonexistent="shift_forward"
    )
    utc = pd.date_range(local[0].tz_convert("UTC"), periods=len(local), freq=STEP)  # regular in UTC
    local = utc.tz_convert(system.local)
    hours = (local.hour + local.minute / 60).to_numpy()
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    rng = np.random.default_rng(system.id)
    parts = []
    for number, (metric, _, _) in enumerate(system.metrics):
        value = np.round(system.dc_capacity_kw * 1000 * sun * rng.uniform(0.7, 1.0, len(sun)) * (1 - 0.1 * number), 2)
        if number == 0 and system.sentinels:
            where = rng.choice(len(value), 2 * len(system.sentinels), replace=False)
            value[where] = np.resize(system.sentinels, len(where))
        parts.append(
            pd.DataFrame(
                {
                    "measured_on": local.tz_localize(None),
                    "utc_measured_on": utc.tz_localize(None),
                    "metric_id": np.int32(metric),
                    "value": value,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def power_csv(system_id: int, path: Path, metric: int | None = None) -> Path:
    """What a user would keep by hand: the system's measured_on and AC power values, sentinels left out."""
    system = SYSTEMS[system_id]
    rows = series(system)
    rows = rows[rows["metric_id"] == (metric or system.metrics[0][0])]
    rows = rows[~rows["value"].isin([-999.0, -7999.0])]
    rows.rename(columns={"value": "ac_power"})[["measured_on", "ac_power"]].to_csv(path, index=False)
    return path


def index_rows() -> pd.DataFrame:
    rows = [
        {
            "system_id": s.id,
            "system_public_name": s.name,
            "timezone_or_utc_offset": s.zone,
            "latitude": s.latitude,
            "longitude": s.longitude,
            "elevation_m": 100.0 + s.id,
            "dc_capacity_kW": s.dc_capacity_kw,
            "first_timestamp": s.start,
            "last_timestamp": str(pd.Timestamp(s.start) + pd.Timedelta(days=s.days)),
        }
        for s in SYSTEMS.values()
    ]
    rows.append({"system_id": 2, "system_public_name": "Lab array (old row)", "timezone_or_utc_offset": "-7"})
    rows.append({"system_id": NO_DATA, "system_public_name": "No data", "latitude": 45.0, "longitude": -90.0})
    return pd.DataFrame(rows)


def build(root: Path) -> Path:
    """The miniature under `root/pvdaq`; returns that folder."""
    lake = root / "pvdaq"
    (lake / "csv").mkdir(parents=True)
    index_rows().head(1).assign(system_public_name="stale").to_csv(lake / "csv" / "systems_20240101.csv", index=False)
    index_rows().to_csv(lake / "csv" / "systems_20250729.csv", index=False)
    (lake / "parquet" / "metrics").mkdir(parents=True)
    for system in SYSTEMS.values():
        metrics = pd.DataFrame(
            [
                {
                    "system_id": system.id,
                    "metric_id": metric,
                    "sensor_name": sensor,
                    "common_name": common,
                    "raw_units": "W" if "power" in sensor or sensor == "pac" else "W/m^2",
                    "units": "W" if "power" in sensor or sensor == "pac" else "W/m^2",
                    "standard_name": sensor,
                }
                for metric, sensor, common in system.metrics
            ]
        )
        metrics.to_parquet(lake / "parquet" / "metrics" / f"metrics__system_{system.id}__part000.parquet")
        rows = series(system)
        for day, part in rows.groupby(rows["measured_on"].dt.date):
            folder = lake / "parquet" / "pvdata" / f"system_id={system.id}"
            folder = folder / f"year={day.year}" / f"month={day.month}" / f"day={day.day}"
            folder.mkdir(parents=True)
            name = f"system_{system.id}__date_{day.year}_{day.month:02d}_{day.day:02d}.parquet"
            pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / name)
    return lake


def public_read(bucket: str) -> dict[str, object]:
    """A bucket policy letting anyone list and read the bucket (unsigned requests)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:HeadObject", "s3:ListBucket"],  # moto asks HeadObject of HEAD
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }


@contextlib.contextmanager
def served(endpoint: str, bucket: str = BUCKET) -> Iterator[str]:
    """The miniature in `bucket` of the S3 API at `endpoint` (moto's server), removed afterwards."""
    import s3fs

    s3 = s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=endpoint)
    with tempfile.TemporaryDirectory() as folder:
        lake = build(Path(folder))
        s3.mkdir(bucket, region_name="us-west-2")  # where the real lake is
        s3.put(str(lake) + "/", f"{bucket}/pvdaq/", recursive=True)
    s3.call_s3("put_bucket_policy", Bucket=bucket, Policy=json.dumps(public_read(bucket)))  # as the real lake
    try:
        yield bucket
    finally:
        s3.rm(bucket, recursive=True)
        s3.invalidate_cache()
