"""Progress of a run: a bar on a terminal, plain periodic lines elsewhere (logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Done, failed, rate and ETA, on `stream` (stderr by default); nothing unless `show`."""

    def __init__(
        self, total: int, done: int = 0, interval: float = 10.0, stream: TextIO | None = None, show: bool = True
    ):
        self.total, self.done, self.failed = total, done, 0
        self.stream = stream or sys.stderr
        self.interval, self.show = interval, show
        self.start = self.last_line = time.monotonic()
        self._first = self._shown = done
        self._bar = None
        if show and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, unit="key", file=self.stream, dynamic_ncols=True)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.start
        return (self.done - self._first) / elapsed if elapsed > 0 else 0.0

    def update(self, ok: int, failed: int) -> None:
        self.done += ok + failed
        self.failed += failed
        if self._bar is not None:
            self._bar.update(ok + failed)
            self._bar.set_postfix(failed=self.failed, refresh=False)
        elif self.show and time.monotonic() - self.last_line >= self.interval:
            self._line()

    def write(self, line: str) -> None:
        """A line of text above the bar, or on its own without one."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def _line(self) -> None:
        self.last_line, self._shown = time.monotonic(), self.done
        left = self.total - self.done
        eta = f"{left / self.rate:.0f} s" if self.rate > 0 else "?"
        print(
            f"sdt run: {self.done}/{self.total} done, {self.failed} failed, {self.rate:.1f} keys/s, ETA {eta}",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.show and self._shown != self.done:
            self._line()
