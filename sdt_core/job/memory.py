"""Peak memory of this process while a block of code (one key) runs.

On Linux a sampler thread reads the kernel's high-water mark of the resident set (VmHWM)
every 50 ms and resets it to the current size (`5` into /proc/self/clear_refs), so each
reading is the true peak since the one before, even when a solver held the interpreter for
seconds in between. A block's peak is the largest reading over its span. Where the mark
cannot be reset, the sampler reads the current resident set size instead, which can miss
peaks shorter than 50 ms. With several threads per worker the peak is the process's, shared
by the keys running beside it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INTERVAL = 0.05
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class Peak:
    """The peak resident set size seen while a block ran."""

    def __init__(self, start: int) -> None:
        self.bytes = start

    @property
    def mb(self) -> float:
        return round(self.bytes / 2**20, 1)


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _high_water_mark() -> int:
    """The peak RSS since the last call (Linux); resets the kernel's mark."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
            break
    else:
        raise OSError("no VmHWM in /proc/self/status")
    _CLEAR_REFS.write_text("5")
    return peak


class _Sampler:
    def __init__(self) -> None:
        self._open: list[Peak] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        try:
            _high_water_mark()
            self._read = _high_water_mark
        except OSError:
            self._read = _rss

    def _update(self) -> None:
        """Give the reading since the last one to every open block (holding the lock)."""
        reading = self._read()
        for peak in self._open:
            peak.bytes = max(peak.bytes, reading)

    @contextmanager
    def block(self) -> Iterator[Peak]:
        with self._changed:
            self._update()  # what came before this block belongs to the others
            peak = Peak(_rss())
            self._open.append(peak)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sdt-peak-memory", daemon=True)
                self._thread.start()
            self._changed.notify()
        try:
            yield peak
        finally:
            with self._changed:
                self._update()
                self._open.remove(peak)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._open:
                    self._changed.wait()
                self._changed.wait(INTERVAL)
                if self._open:
                    self._update()


_SAMPLER: _Sampler | None = None
_LOCK = threading.Lock()


@contextmanager
def peak_memory() -> Iterator[Peak]:
    """`with peak_memory() as peak: ...`; then `peak.mb` is this process's peak RSS meanwhile."""
    global _SAMPLER
    with _LOCK:
        if _SAMPLER is None:
            _SAMPLER = _Sampler()
    with _SAMPLER.block() as peak:
        yield peak


# What a worker needs: measured by the benchmark (bench/results/latest.md, "memory per key"),
# the peak resident memory of a worker process with SDT imported, and what one key of SDT's
# pipeline adds to it at its peak (up to two years of 5-minute data; the exact clipping
# check alone adds ~5 GB, whatever the data).
WORKER_BASE_GIB = 0.5
KEY_PEAK_GIB = {"fast": 0.4, "exact": 5.6}
#: Dask's spill threshold (a fraction of the limit): above it a worker with nothing to spill
#: warns "Unmanaged memory use is high"; at 0.8 it pauses.
SPILL_FRACTION = 0.7


def worker_memory_gib(threads: int, exact: bool | None = None) -> float:
    """Memory per worker of `threads` threads that keeps SDT's measured peak under Dask's spill
    threshold, in half-GiB steps; `exact` defaults to dask config `sdt.exact-sdt`."""
    from sdt_core.acceleration import exact_sdt

    mode = "exact" if (exact_sdt() if exact is None else exact) else "fast"
    need = (WORKER_BASE_GIB + threads * KEY_PEAK_GIB[mode]) / SPILL_FRACTION
    return math.ceil(round(need * 2, 6)) / 2
