"""Power data frames: any table with timestamps and power becomes one time-indexed column."""

from __future__ import annotations

import re
import warnings
from typing import IO, Any

import pandas as pd

#: Options core applies to the frame of every key, when the data plug declares them.
FRAME_OPTIONS = ("power_column", "timestamp_column", "time_zone")


class FrameError(ValueError):
    """A table without the timestamps or power SDT needs; `option` is the data option that picks them.

    `usage`: the options are wrong for any table of the data (a column they name is missing,
    or several columns could be power), so `sdt run` refuses before the start when the
    first key's head shows it; otherwise it is that key's error row.
    """

    def __init__(self, message: str, option: str | None = None, hint: str | None = None, usage: bool = False):
        self.message, self.option, self.usage = message, option, usage
        hint = hint if hint is not None else f"set {option}" if option else ""
        super().__init__(f"{message}; {hint}" if hint else message)

    def for_plug(self, data: object) -> ValueError:
        """The same error, telling what to do with the options that `data` has."""
        if self.option is None:
            return ValueError(self.message)
        if hasattr(data, self.option):
            return ValueError(f"{self.message}; set the data option {self.option} (--data-option {self.option}=...)")
        plug = type(data).__name__
        return ValueError(f"{self.message} ({plug} has no {self.option} option to choose one)")


def load_frame(data: Any, key: tuple[Any, ...]) -> pd.DataFrame:
    """The frame SDT gets for `key`: the data plug's table, with its declared frame options applied.

    `power_column` and `timestamp_column` pick the columns (default: found by name and
    content); `time_zone` converts timestamps that carry a zone to the site's local time.
    """
    power, timestamps, zone = (getattr(data, name, None) for name in FRAME_OPTIONS)
    try:
        frame = power_frame(data.get_data(key), power, timestamps)
    except FrameError as exc:
        raise exc.for_plug(data) from None
    if zone and frame.index.tz is not None:
        frame.index = frame.index.tz_convert(zone)
    return frame


TIMESTAMP_NAMES = ("timestamp", "ts", "time", "datetime", "date_time", "date", "time_stamp", "measured_on")
#: The long format of SDT's VADER exports: site, meas_name, ts, sensor, meas_val_f.
LONG_FORMAT = frozenset({"ts", "meas_val_f", "site", "sensor", "meas_name"})


def read_power_csv(
    source: str | IO[Any],
    power_column: str | None = None,
    timestamp_column: str | None = None,
    compression: str | None = "infer",
    nrows: int | None = None,
) -> pd.DataFrame:
    """A CSV file (wide, or the long VADER format) as a time-indexed one-column power frame
    (`nrows`: of its first rows only)."""
    try:
        raw = pd.read_csv(source, compression=compression, nrows=nrows)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a readable CSV file: {str(exc).strip().splitlines()[0]}") from exc
    return power_frame(raw, power_column, timestamp_column)


def power_frame(
    frame: pd.DataFrame, power_column: str | None = None, timestamp_column: str | None = None
) -> pd.DataFrame:
    """`frame` as one numeric power column indexed by sorted timestamps; ValueError says why not."""
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise ValueError("no data: the table is empty")
    if LONG_FORMAT <= set(frame.columns) and timestamp_column is None:
        from solardatatools.time_axis_manipulation import make_time_series

        frame, _ = make_time_series(frame.copy())
    elif not isinstance(frame.index, pd.DatetimeIndex):
        column = timestamp_column or _timestamp_column(frame)
        if column not in frame.columns:
            raise FrameError(f"no timestamp column {column!r}; columns: {', '.join(map(str, frame.columns))}")
        index = _to_datetime(frame[column])
        frame = frame.drop(columns=[column]).set_index(pd.DatetimeIndex(index, name=column))
        frame = frame[frame.index.notna()]
    column = power_column or _power_column(frame)
    if column not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise FrameError(f"no power column {column!r}; columns: {columns}", usage=bool(power_column))
    power = pd.to_numeric(frame[column], errors="coerce").to_frame(str(column))
    return power[~power.index.duplicated(keep="first")].sort_index()


ONE_DAY = pd.Timedelta(days=1)


def check_span(frame: pd.DataFrame, minimum: pd.Timedelta = ONE_DAY) -> None:
    """Refuse a frame with less than `minimum` of valid data between its first and last value."""
    valid = frame.index[frame.iloc[:, 0].notna()]
    span = valid.max() - valid.min() if len(valid) else pd.Timedelta(0)
    if span < minimum:
        raise ValueError(f"under a day of data: {len(valid)} values over {span}")


def _to_datetime(values: pd.Series) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(values, errors="coerce")


def _timestamp_column(frame: pd.DataFrame) -> str:
    by_name = [c for c in frame.columns if str(c).strip().lower() in TIMESTAMP_NAMES]
    if by_name:
        return by_name[0]
    for column in frame.columns:
        sample = frame[column].dropna().head(100)
        if not pd.api.types.is_numeric_dtype(sample) and len(sample) and _to_datetime(sample).notna().mean() > 0.9:
            return column
    columns = ", ".join(map(str, frame.columns))
    raise FrameError(f"no timestamp column: none of {columns} holds dates", "timestamp_column")


def _power_column(frame: pd.DataFrame) -> str:
    numeric = [str(c) for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    if not numeric:
        raise FrameError(f"no power column: none of {', '.join(map(str, frame.columns))} is numeric", "power_column")
    return choose_power_column(numeric)


#: Words of a column name that say power (`ac_power`, `Power (kW)`, `P_AC`, `watts`).
POWER_WORDS = frozenset({"power", "kw", "w", "watt", "watts", "kilowatt", "kilowatts", "pac", "p"})
#: Words that say it is something else, even with a power word (`irradiance_w_m2`, `energy_kwh`).
NOT_POWER_WORDS = frozenset(
    {"irradiance", "irrad", "ghi", "poa", "dni", "dhi", "m2", "temperature", "temp", "wind", "speed", "humidity"}
    | {"voltage", "volt", "current", "amp", "energy", "kwh", "wh", "factor", "pf", "setpoint", "limit", "status"}
)


def named_as_power(name: str) -> bool:
    """Whether a column's name says power: `ac_power`, `my_power`, `kW`, `W`, `P_AC`; not `irradiance_w_m2`."""
    words = set(re.split(r"[^a-z0-9]+|(?<=[a-z])(?=[0-9])", name.lower())) - {""}
    squeezed = re.sub(r"[^a-z]", "", name.lower())
    return not words & NOT_POWER_WORDS and (bool(words & POWER_WORDS) or "power" in squeezed)


def choose_power_column(numeric: list[str]) -> str:
    """The power column among the numeric columns: never a guess.

    A column named as power wins (an AC one among several); a lone numeric column is taken;
    otherwise FrameError names the candidates and asks for `power_column`.
    """
    named = [c for c in numeric if named_as_power(c)]
    ac = [c for c in named if "ac" in re.split(r"[^a-z0-9]+", c.lower()) or c.lower().startswith("ac")]
    for candidates in (named, ac):
        if len(candidates) == 1:
            return candidates[0]
    if len(named) > 1:
        raise FrameError(f"several columns are named as power: {', '.join(named)}", "power_column", usage=True)
    if len(numeric) == 1:
        return numeric[0]
    raise FrameError(
        f"no column is named as power among the numeric columns {', '.join(numeric)}", "power_column", usage=True
    )
