"""Adaptive scaling: `--adapt MIN:MAX`, Python's `adapt=(MIN, MAX)` (the `adapt_cluster` hook)."""

from __future__ import annotations

import re
from typing import Any

from sdt_core.errors import SdtError

#: The largest MAX of --adapt taken: beyond, a typo.
MOST_WORKERS = 100_000


def parse_adapt(value: str | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """`--adapt MIN:MAX` (or Python's `adapt=(MIN, MAX)`) as two integers; `SdtError` in one line if not."""
    if value is None:
        return None
    fix = f"--adapt takes MIN:MAX, whole numbers with 0 <= MIN <= MAX and 1 <= MAX <= {MOST_WORKERS:,}, e.g. 1:4"
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", value)
        bounds = (int(match[1]), int(match[2])) if match else None
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(type(v) is int for v in value):
        bounds = (value[0], value[1])
    else:
        bounds = None
    if bounds is None or not 0 <= bounds[0] <= bounds[1] or not 1 <= bounds[1] <= MOST_WORKERS:
        raise SdtError(f"{fix}; got {value!r}")
    return bounds


class WorkerTimeline:
    """How many workers the cluster had over a run (run.json's `workers`): [seconds, count] at each change."""

    def __init__(self, client: Any, every: float = 1.0):
        import time

        self._clock = time.monotonic
        self.client, self.every = client, every
        self.started = self._clock()
        self.points: list[list[float]] = []
        self._looked = -every
        self.look()

    def look(self) -> None:
        """Note the number of workers, at most once per `every` seconds."""
        now = self._clock() - self.started
        if now - self._looked < self.every:
            return
        self._looked = now
        try:
            count = len(self.client.nthreads())
        except Exception:  # the scheduler is going away: the run says so itself
            return
        if not self.points or self.points[-1][1] != count:
            self.points.append([round(now, 1), count])

    def worker_seconds(self) -> float:
        """Worker-seconds held from the first look to now."""
        ends = [p[0] for p in self.points[1:]] + [self._clock() - self.started]
        return sum((end - start) * count for (start, count), end in zip(self.points, ends, strict=True))
