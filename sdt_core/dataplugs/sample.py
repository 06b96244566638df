"""The embedded sample set: SDT's two real sample files plus deterministic synthetic systems.

A synthetic system is pvlib's clear-sky irradiance times a weather process, scaled to a
capacity, with the defects real data have: gaps, inverter clipping and a time shift. The
same index always gives the same system.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sdt_core.dataplugs import DataPlug
from sdt_core.dataplugs.frames import read_power_csv
from sdt_core.errors import SettingsError
from sdt_core.plugs.settings import setting

#: The real sample systems shipped inside the solar-data-tools wheel (package sdt_dask).
REAL_SYSTEMS = ("TAEFC1044741", "ZT162185000441C1203")
REAL_DAYS = {"TAEFC1044741": 490, "ZT162185000441C1203": 226}
SYNTHETIC = "synthetic-"
STEP = pd.Timedelta(minutes=5)
#: The most synthetic systems and days of each (a hundred years) taken: beyond, a typo, not a wish.
MAX_SYSTEMS, MAX_DAYS = 100_000, 36_500


def real_sample_file(name: str) -> Path:
    """Path of one of SDT's sample files, found without importing its package."""
    spec = importlib.util.find_spec("sdt_dask")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the sample files come with solar-data-tools (package sdt_dask): pip install it")
    return Path(next(iter(spec.submodule_search_locations))) / "examples" / "example_data" / f"{name}.csv"


def synthetic_system(index: int, days: int = 365, start: str = "2023-01-01") -> pd.DataFrame:
    """A synthetic PV system's AC power (kW) every 5 minutes, local standard time."""
    import pvlib

    rng = np.random.default_rng([20261124, index])
    latitude, longitude = rng.uniform(28, 46), rng.uniform(-122, -75)
    utc_offset = round(longitude / 15)
    times = pd.date_range(start, periods=days * 288, freq=STEP, tz=f"Etc/GMT{-utc_offset:+d}")
    sun = pvlib.solarposition.ephemeris(times, latitude, longitude)  # 10x cheaper than SPA, ample here
    clear_sky = pvlib.clearsky.haurwitz(sun["apparent_zenith"])["ghi"].to_numpy(copy=True)
    clear_sky /= clear_sky.max()  # a tilted array's flatter seasons: clear noons near capacity

    capacity = rng.uniform(3.0, 12.0)
    daily_clearness = np.repeat(rng.beta(4.0, 1.4, days), 288)  # mostly sunny, some overcast days
    passing_clouds = np.clip(1 - np.abs(np.convolve(rng.normal(0, 0.25, times.size), np.ones(6) / 6, "same")), 0, 1)
    weather = daily_clearness + (1 - daily_clearness) * passing_clouds * rng.uniform(0.1, 0.6)
    power = capacity * clear_sky * np.clip(weather, 0, 1) * rng.normal(1.0, 0.01, times.size)

    if index % 2 == 0:  # an undersized inverter clips the peaks
        power = np.minimum(power, 0.8 * capacity)
    if days >= 60:  # a clock that ran an hour ahead for a stretch of days
        first = rng.integers(days // 3, days // 2) * 288
        power[first : first + 30 * 288] = np.roll(power, -12)[first : first + 30 * 288]
    frame = pd.DataFrame({"ac_power": np.round(np.maximum(power, 0.0), 4)}, index=times.tz_localize(None))
    longest = max(13, min(288 * 5, times.size // 10))  # up to 5 days, at most a tenth of the series
    for _ in range(int(rng.integers(1, 4))):  # communication outages: missing rows
        begin = int(rng.integers(0, times.size - 1))
        frame = frame.drop(frame.index[begin : begin + int(rng.integers(12, longest))])
    frame.index.name = "timestamp"
    return frame


def write_sample_data(folder: Path, systems: int, days: int) -> list[Path]:
    """Write `systems` synthetic systems of `days` days as CSV files; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(systems):
        path = folder / f"{SYNTHETIC}{index:03d}.csv"
        synthetic_system(index, days).to_csv(path)
        paths.append(path)
    return paths


class SampleData(DataPlug):
    """SDT's two real sample files plus deterministic synthetic systems (no files needed)."""

    systems: int = setting(4, "Number of synthetic systems.", ge=0, le=MAX_SYSTEMS)
    days: int = setting(365, "Days of data of each synthetic system.", ge=1, le=MAX_DAYS)
    lengths: list[int] = setting([], "Days of each synthetic system in turn, repeated (default: `days` for all).")
    real: bool = setting(True, "Include SDT's two real sample systems.")

    def check(self) -> None:
        if any(not 1 <= days <= MAX_DAYS for days in self.lengths):
            raise SettingsError(
                f"data plug 'sample': every one of lengths must be from 1 to {MAX_DAYS:,}, got {self.lengths}"
            )

    def days_of(self, index: int) -> int:
        """Days of data of synthetic system `index`."""
        return self.lengths[index % len(self.lengths)] if self.lengths else self.days

    def keys(self) -> Iterable[tuple[str]]:
        real = [(name,) for name in REAL_SYSTEMS] if self.real else []
        return real + [(f"{SYNTHETIC}{i:03d}",) for i in range(self.systems)]

    def weight(self, key: tuple[Any, ...]) -> float | None:
        """Days of data."""
        name = str(key[0])
        return float(self.days_of(_index(name))) if name.startswith(SYNTHETIC) else float(REAL_DAYS[name])

    def get_data(self, key: tuple[Any, ...]) -> pd.DataFrame:
        name = str(key[0])
        if name.startswith(SYNTHETIC):
            return synthetic_system(_index(name), self.days_of(_index(name)))
        return read_power_csv(str(real_sample_file(name)))


def _index(name: str) -> int:
    return int(name.removeprefix(SYNTHETIC))
