"""The scale benchmark's data and analysis: as cheap as possible, so the runner's own cost shows."""

from __future__ import annotations

from typing import Any

import pandas as pd

from sdt_core import DataPlug

INDEX = pd.date_range("2024-01-01", periods=2 * 24 + 1, freq="h")


class TinyData(DataPlug):
    """N keys whose data is one small two-day hourly frame."""

    count: int = 100_000

    def keys(self) -> list[tuple[int]]:
        return [(i,) for i in range(self.count)]

    def get_data(self, key: tuple[Any, ...]) -> pd.DataFrame:
        return pd.DataFrame({"p": float(key[0] % 7)}, index=INDEX)


def trivial(frame: pd.DataFrame) -> dict[str, Any]:
    return {"peak": float(frame.iloc[:, 0].max())}


class TailData(TinyData):
    """N keys whose frame holds how many keys come after it: the last one's is 0."""

    def get_data(self, key: tuple[Any, ...]) -> pd.DataFrame:
        return pd.DataFrame({"p": float(self.count - 1 - key[0])}, index=INDEX)


def long_tail(frame: pd.DataFrame) -> dict[str, Any]:
    """Keys of very different sizes (of `TailData`): the last key sleeps 12 s, every other 0.5 s (a long tail)."""
    import time

    time.sleep(12.0 if float(frame.iloc[:, 0].max()) == 0.0 else 0.5)
    return {"peak": float(frame.iloc[:, 0].max())}
