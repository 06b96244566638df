"""Adaptive scaling: `--adapt MIN:MAX`, Python's `adapt=(MIN, MAX)` (the `adapt_cluster` hook)."""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from typing import Any

from sdt_core.errors import SdtError

log = logging.getLogger(__name__)

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
    """How many workers the cluster had over a run (run.json's `workers`): [seconds, count] at each
    change, and at the end (`close`). It looks every `every` seconds in a thread of its own, so a
    cluster that shrinks while a long key runs (no key finishing) is seen when it shrinks."""

    def __init__(self, client: Any, every: float = 1.0):
        import threading

        self._clock = time.monotonic
        self.client, self.every = client, every
        self.started = self._clock()
        self.points: list[list[float]] = []
        self._lock = threading.Lock()
        self._looked = -every
        self.look()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sdt-worker-timeline", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            if getattr(self.client, "status", "running") in ("closing", "closed"):
                return  # a run that failed before `close`: no thread left behind
            self.look()

    def look(self) -> None:
        """Note the number of workers, at most once per `every` seconds."""
        with self._lock:
            now = self._clock() - self.started
            if now - self._looked < self.every * 0.9:  # the thread's own wake-ups are `every` apart
                return
            self._looked = now
            try:
                count = len(self.client.nthreads())
            except Exception:  # the scheduler is going away: the run says so itself
                return
            if not self.points or self.points[-1][1] != count:
                self.points.append([round(now, 1), count])

    def close(self) -> None:
        """Stop looking; note the number of workers at the end, so the last count has its end too."""
        self._stop.set()
        self._thread.join()
        self._looked = -self.every
        self.look()
        end = round(self._clock() - self.started, 1)
        if self.points and self.points[-1][0] < end:
            self.points.append([end, self.points[-1][1]])


#: Scheduler metadata where each run says how many keys it still holds back: {client id: hint}.
WAITING_KEY = "sdt-waiting-keys"
#: A hint older than this (seconds) is ignored: its run was killed before it could take it back.
STALE_S = 600.0


def fresh_hints(hints: Any, now: float) -> list[dict[str, Any]]:
    """The hints (as `WaitingKeys` publishes them) of runs still going: not stale, well formed."""
    values = hints.values() if isinstance(hints, dict) else ()
    return [h for h in values if isinstance(h, dict) and now - float(h.get("at", 0)) <= STALE_S]


def held_back(hints: Any, now: float) -> int:
    """Keys that runs still hold back, over the fresh `hints`."""
    return sum(int(hint.get("keys", 0)) for hint in fresh_hints(hints, now))


def extra_workers(hints: Any, target_duration: float, threads_per_worker: float, now: float) -> int:
    """Workers to add to the scheduler's own target for the keys runs hold back (`hints`, as
    `WaitingKeys` publishes them): enough threads to run them within `target_duration` at
    their run's mean key time (all at once while no key of the run is done), one per key at most."""
    threads = 0
    for hint in fresh_hints(hints, now):
        keys, mean = int(hint.get("keys", 0)), hint.get("mean_s")
        threads += keys if mean is None else min(keys, math.ceil(keys * float(mean) / target_duration))
    return math.ceil(threads / max(threads_per_worker, 1.0))


class WaitingKeys:
    """What a run tells the scheduler of the keys it holds back, for `RunAdaptive` (in the
    process that holds the cluster, maybe not this one): their number and the run's mean key
    time, under `WAITING_KEY` in the scheduler's metadata; `clear()` takes it back."""

    def __init__(self, client: Any):
        self.client = client
        self._seconds, self._done = 0.0, 0
        self._sent: tuple[int, float | None] | None = None

    def finished(self, rows: list[dict[str, Any]]) -> None:
        """Keys done: their time makes the run's mean key time."""
        for row in rows:
            if isinstance(row.get("total_s"), (int, float)):
                self._seconds += row["total_s"]
                self._done += 1

    def holding(self, keys: int) -> None:
        """The run still holds `keys` keys back; tell the scheduler when that or the mean changed."""
        mean = round(self._seconds / self._done, 2) if self._done else None
        if self._sent == (keys, mean):
            return
        hint = {"keys": keys, "mean_s": mean, "at": time.time()}
        try:
            self.client.set_metadata([WAITING_KEY, self.client.id], hint)
        except Exception as exc:  # the scheduler is going away: the run says so itself
            log.debug("could not tell the scheduler the keys waiting: %s", exc)
            return
        self._sent = (keys, mean)

    def clear(self) -> None:
        """Take the hint back, leaving the scheduler's metadata as it was before the run."""
        if self._sent is None:
            return
        try:
            self.client.run_on_scheduler(_forget, self.client.id)
        except Exception as exc:  # a scheduler that runs no code sent to it, or gone
            log.debug("could not remove the hint of keys waiting: %s", exc)
            with contextlib.suppress(Exception):
                self.client.set_metadata([WAITING_KEY, self.client.id], None)


def _forget(client_id: str, dask_scheduler: Any = None) -> None:
    hints = dask_scheduler.task_metadata.get(WAITING_KEY)
    if isinstance(hints, dict):
        hints.pop(client_id, None)
        if not hints:
            del dask_scheduler.task_metadata[WAITING_KEY]
