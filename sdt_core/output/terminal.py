"""What a run shows: a progress bar and a closing summary on stderr, and nothing else.

Log records and warnings go to OUT/run.log (`sdt_core.output.run_log`); `-v` also shows them live,
`-q` shows only the summary, `--json` prints each finished key's row on stdout as one JSON
line. While the cluster runs, whatever this process and the processes it starts (a local
plug's workers) write to their stdout and stderr goes to OUT/logs/stderr.log instead of
the terminal; the run's own output goes to the terminal through copies of its descriptors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from sdt_core.output.progress import Progress
from sdt_core.output.summary import RunSummary, summary_lines

log = logging.getLogger(__name__)

#: How loud a run is, quietest first.
LEVELS = ("quiet", "normal", "verbose")
#: The file under OUT/logs/ that receives this machine's processes' own stdout and stderr.
STDERR_LOG = "stderr.log"


class Terminal:
    """What a run shows. `verbosity`: "quiet" (`sdt run -q`: the summary only), "normal"
    (progress and the summary) or "verbose" (`-v`: also each log record as it happens);
    `json`: each finished key's row on stdout, one JSON object per line (`--json`)."""

    def __init__(self, verbosity: str = "normal", json: bool = False) -> None:
        if verbosity not in LEVELS:
            raise ValueError(f"verbosity must be one of {', '.join(LEVELS)}, got {verbosity!r}")
        self.verbosity, self.json = verbosity, json
        self.stdout: TextIO | None = None  # while `holding`: the terminal's own descriptors
        self.stderr: TextIO | None = None
        self._progress: Progress | None = None

    @property
    def err(self) -> TextIO:
        """Where progress, -v records and the summary go."""
        return self.stderr or sys.stderr

    @property
    def out(self) -> TextIO:
        """Where --json rows go."""
        return self.stdout or sys.stdout

    def progress(self, total: int, done: int, interval: float) -> Progress:
        """The run's progress: a bar on a terminal, a plain line every `interval` s elsewhere."""
        self._progress = Progress(total, done, interval, self.err, show=self.verbosity != "quiet")
        return self._progress

    def live(self, line: str) -> None:
        """Show one log record now, above the bar (with -v only)."""
        if self.verbosity != "verbose":
            return
        if self._progress is not None:
            self._progress.write(line)
        else:
            print(line, file=self.err, flush=True)

    def finished(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """With --json: one line per finished key on stdout. Once stdout is closed (`| head -1`),
        rows are no longer printed and the run goes on: every row is in results.jsonl."""
        if not self.json:
            return
        try:
            for row in rows:
                self.out.write(json.dumps(row, default=str) + "\n")
            self.out.flush()
        except (OSError, ValueError) as exc:  # a closed pipe (EPIPE), or a closed stream
            self.json = False
            log.warning("sdt run: stdout was closed (%s): rows are no longer printed; all are in results.jsonl", exc)

    @contextlib.contextmanager
    def holding(self, path: Path) -> Iterator[None]:
        """Send file descriptors 1 and 2 into `path` for the block; this terminal keeps the
        original ones, so the run's own output still reaches them."""
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        before = (self.stdout, self.stderr)
        held: list[tuple[int, int]] = []
        opened: list[TextIO] = []
        try:
            for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
                with contextlib.suppress(ValueError, OSError):
                    stream.flush()
                saved = _dup(fd)
                if saved is None:
                    continue
                held.append((fd, saved))
                if _fileno(stream) == fd:  # else (pytest, a notebook) the stream is not the descriptor
                    copy = os.fdopen(os.dup(saved), "w", buffering=1, encoding=stream.encoding, errors="replace")
                    opened.append(copy)
                    if fd == 1:
                        self.stdout = self.stdout or copy
                    else:
                        self.stderr = self.stderr or copy
                os.dup2(sink, fd)
            yield
        finally:
            for written in (sys.stdout, sys.stderr):
                with contextlib.suppress(ValueError, OSError):
                    written.flush()
            for fd, saved in held:
                os.dup2(saved, fd)
                os.close(saved)
            for own in opened:
                with contextlib.suppress(OSError):
                    own.close()
            os.close(sink)
            self.stdout, self.stderr = before

    def summary(self, summary: RunSummary) -> None:
        """The closing summary on stderr."""
        print("\n".join(summary_lines(summary)), file=self.err, flush=True)


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return None


def _dup(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:  # closed: nothing to hold
        return None
