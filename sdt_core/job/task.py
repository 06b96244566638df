"""What a worker runs for each key: load its data, run the analysis, return one small row.

The client pickles the data plug, the analysis and the fast path's substitutions once
(`pack`); each task unpickles them and runs `process_key`. A failure is caught with the
stage it happened in; the row says which and why, and the run goes on.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import pickle
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sdt_core.acceleration import Substitution, key_mode, sdt_version
from sdt_core.analysis import ERROR_LENGTH, Analysis, StageFailed, error_text, stage
from sdt_core.job.memory import peak_memory
from sdt_core.output.results import META_PREFIX, RESERVED, SETUP_STAGE

if TYPE_CHECKING:
    from sdt_core.dataplugs import DataPlug

log = logging.getLogger(__name__)


def pack(data: DataPlug, analysis: Analysis, fast: tuple[Substitution, ...] = ()) -> bytes:
    """What every task of a run needs, pickled once by the client for `process_packed_key`."""
    import cloudpickle

    return cloudpickle.dumps((data, analysis, fast))  # type: ignore[no-any-return]


def process_packed_key(key: tuple[Any, ...], packed: bytes) -> dict[str, Any]:
    """`process_key` with its data plug and analysis from `pack`, unpickled inside the task.

    A worker that cannot unpickle them (a module the client has and the worker lacks) gets
    an error row, stage `setup`, rather than a broken connection to its scheduler, which is
    what Dask does with a task it cannot unpickle: the run would wait forever.
    """
    try:
        data, analysis, fast = _unpack(packed)
    except Exception as exc:
        text = error_text(exc)
        log.error("key %s failed in %s: %s", list(key), SETUP_STAGE, text, exc_info=exc)
        return {"key": list(key), "status": "error", "stage": SETUP_STAGE, "error": text, "worker": _worker()}
    with _timed():
        return process_key(key, data, analysis, fast)


#: On a worker: when each task running `process_key` started it (task key -> time.monotonic()).
_STARTED: dict[Any, float] = {}


@contextlib.contextmanager
def _timed() -> Iterator[None]:
    """Record, for `running_for`, when this task's key started (its worker's start-up not counted)."""
    try:
        from distributed import get_worker

        task = get_worker().get_current_task()
    except (ImportError, ValueError):  # not on a worker
        task = None
    _STARTED[task] = time.monotonic()
    try:
        yield
    finally:
        _STARTED.pop(task, None)


def running_for() -> dict[Any, float]:
    """On a worker: how long each key it runs has run, by task key (for `sdt_core.job.watchdog`)."""
    now = time.monotonic()
    return {task: now - started for task, started in list(_STARTED.items()) if task is not None}


@functools.lru_cache(maxsize=4)
def _unpack(packed: bytes) -> tuple[DataPlug, Analysis, tuple[Substitution, ...]]:
    return pickle.loads(packed)  # type: ignore[no-any-return]


def process_key(
    key: tuple[Any, ...], data: DataPlug, analysis: Analysis, fast: tuple[Substitution, ...] = ()
) -> dict[str, Any]:
    """The task run for one key: its result row, `status` "ok" or "error" with `stage`.

    With `fast` substitutions the key runs on SDT's fast path; if one of them raises, the
    key is run again exactly, and its row says why (`sdt_fallback`). `peak_memory_mb` is
    this worker process's peak resident memory while the key ran (`sdt_core.job.memory`).
    """
    with peak_memory() as peak:
        row = _attempt(key, data, analysis, fast)
        if row.get("sdt_fallback"):
            row = _attempt(key, data, analysis, ()) | {"sdt_fallback": row["sdt_fallback"]}
    return row | {"peak_memory_mb": peak.mb}


def _attempt(
    key: tuple[Any, ...], data: DataPlug, analysis: Analysis, fast: tuple[Substitution, ...]
) -> dict[str, Any]:
    from sdt_core.dataplugs.frames import check_span, load_frame

    row: dict[str, Any] = {"key": list(key), "status": "ok", "stage": None, "error": None}
    timings: dict[str, float] = {}
    row["start_time"] = round(time.time(), 3)
    start = time.perf_counter()
    row |= metadata_fields(data, key)
    usable = tuple(s for s in fast if sdt_version() in s.proven_on)  # this worker's SDT may not be the client's
    with key_mode(bool(usable), usable) as mode:
        try:
            with stage("load", timings):
                frame = load_frame(data, key)
                row["power_column"] = str(frame.columns[0])
                check_span(frame)
            with stage("analysis", timings):
                values = result_fields(analysis(frame))
            row |= values
        except StageFailed as failed:
            row |= {"status": "error", "stage": failed.stage, "error": str(failed)} | failed.timings
            log.error("key %s failed in %s: %s", list(key), failed.stage, failed, exc_info=failed.__cause__)
    row |= timings | {"total_s": round(time.perf_counter() - start, 4), "worker": _worker()}
    row |= {"sdt_mode": mode.label, "sdt_substitutions": ",".join(sorted(mode.used))}
    if mode.failure:  # never keep a result that a failed replacement may have touched
        row["sdt_fallback"] = mode.failure[:ERROR_LENGTH]
    return row


def metadata_fields(data: DataPlug, key: tuple[Any, ...]) -> dict[str, Any]:
    """The data plug's metadata of `key` as row fields `meta_NAME`; none if it has none or fails (logged)."""
    method = getattr(data, "metadata", None)
    if method is None:
        return {}
    try:
        values = method(key) or {}
        return {f"{META_PREFIX}{name}": _plain(str(name), value) for name, value in dict(values).items()}
    except Exception as exc:
        log.warning("key %s: no metadata: %s", list(key), error_text(exc))
        return {}


def result_fields(values: Any) -> dict[str, Any]:
    """An analysis's result as row fields; TypeError or ValueError (one line) if it is not a
    mapping of names to plain values (str, int, float, bool, None; numpy scalars, dates)."""
    if not isinstance(values, Mapping):
        raise TypeError(f"the analysis returned {type(values).__name__}, not a mapping of field names to values")
    fields = {}
    for name, value in values.items():
        name = str(name)
        if name in RESERVED:
            raise ValueError(f"the analysis returned the field {name!r}, which sdt-core's rows reserve; rename it")
        fields[name] = _plain(name, value)
    return fields


def _plain(name: str, value: Any) -> Any:
    """A plain JSON value: numpy scalars as Python ones, NaN as None, dates as ISO text."""
    if hasattr(value, "isoformat") and callable(value.isoformat):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    raise TypeError(
        f"the analysis returned {type(value).__name__} for {name!r}; give a plain value (str, number, bool)"
    )


def _worker() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None
