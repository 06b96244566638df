"""Durations as a user writes them: seconds, "20m", "90 s", "1.5h", "20 minutes"; none or 0 for never."""

from __future__ import annotations

import math
from typing import Any

from sdt_core.errors import SettingsError

_NEVER = ("none", "off", "never", "false", "no", "")


def parse_duration(value: Any, what: str) -> float | None:
    """Seconds from a duration (a number of seconds or dask's "20 minutes", "1h"); None for none,
    off or 0. Raises `SettingsError` naming `what` for anything else."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in _NEVER):
        return None
    from dask.utils import parse_timedelta

    try:
        seconds = float(parse_timedelta(value.strip() if isinstance(value, str) else value, default="seconds"))
    except (TypeError, ValueError, KeyError, IndexError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise SettingsError(f"{what} takes a duration such as 20m, 90s or 1h, or none; got {value!r}")
    return seconds or None


def describe(seconds: float) -> str:
    """A duration in words: "20 minutes", "90 s", "1.5 h"."""
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        minutes = seconds / 60
        return f"{minutes:g} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} s"
