"""The fleet report: OUT/report.html, one self-contained page of a run folder.

`write_report(OUT)` reads OUT/run.json and OUT/results.jsonl (`frames`) and lays them out
with bokeh (`page`); `sdt report OUT` and the end of every `sdt run` call it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdt_core.errors import SdtError
from sdt_core.output.files import write_whole

REPORT = "report.html"
log = logging.getLogger(__name__)


def write_report(folder: Path) -> Path:
    """Write `folder`/report.html from the run in `folder`; `SdtError` if it holds no run."""
    from sdt_core.output.report.frames import read_run
    from sdt_core.output.report.page import render

    text = render(read_run(folder))
    write_whole(folder / REPORT, text)  # a reader never sees half a page
    return folder / REPORT


@dataclass
class Written:
    """Where the report went; None until written, or when it could not be."""

    path: Path | None = None


@contextmanager
def written_at_exit(
    folder: Path, enabled: bool = True, guard: Callable[[], AbstractContextManager[Any]] = nullcontext
) -> Iterator[Written]:
    """Write the report (if `enabled`) when the block ends, normally or not, inside `guard()`
    (the runner's: a stop signal waits until the report is written). A failure to write it is
    logged, never raised: the run's results are safe whatever happens to its report. A block
    that failed on the folder's own content (`SdtError`) has said so: the report's failure,
    the same, is not said again."""
    written = Written()
    failed: BaseException | None = None
    try:
        yield written
    except BaseException as exc:
        failed = exc
        raise
    finally:
        if enabled:
            with guard():
                written.path = _write_or_warn(folder, said=isinstance(failed, SdtError))


def _write_or_warn(folder: Path, said: bool = False) -> Path | None:
    try:
        return write_report(folder)
    except Exception as exc:
        level = logging.DEBUG if said and isinstance(exc, SdtError) else logging.WARNING
        log.log(level, "sdt run: could not write the fleet report %s: %s: %s", folder / REPORT, type(exc).__name__, exc)
        return None
