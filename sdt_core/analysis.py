"""What runs for each key on a worker: load its data, analyse it, return one small row.

An analysis is any `f(frame) -> dict` of the frame a data plug returned (one power column,
indexed by timestamps). The default is SDT's pipeline (`sdt_pipeline`). A failure is caught
with the stage it happened in; the row says which and why, and the run goes on.
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import pickle
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sdt_core.acceleration import Substitution, key_mode, sdt_version
from sdt_core.errors import SdtError
from sdt_core.imports import importable_cwd
from sdt_core.memory import peak_memory

if TYPE_CHECKING:
    import pandas as pd

    from sdt_core.dataplugs import DataPlug

Analysis = Callable[["pd.DataFrame"], Mapping[str, Any]]
ERROR_LENGTH = 500
log = logging.getLogger(__name__)


class StageFailed(Exception):
    """An analysis stage raised; carries the stage's name and the timings so far."""

    def __init__(self, stage: str, error: BaseException, timings: dict[str, float]):
        text = " ".join(f"{type(error).__name__}: {error}".split())
        super().__init__(text[:ERROR_LENGTH])
        self.stage = stage
        self.timings = timings


@contextmanager
def stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    """Time a stage into `timings[name + "_s"]`; turn its failure into `StageFailed`."""
    start = time.perf_counter()
    try:
        yield
    except StageFailed:
        raise
    except Exception as exc:
        raise StageFailed(name, exc, timings) from exc
    finally:
        timings[f"{name}_s"] = round(time.perf_counter() - start, 4)


def sdt_pipeline(frame: pd.DataFrame, *, loss_analysis: bool = False, **pipeline_kwargs: Any) -> dict[str, Any]:
    """SDT's pipeline and report; with `loss_analysis`, the loss factor analysis of systems
    with more than 365 days, as SDT's Dask tool does."""
    from solardatatools import DataHandler

    timings: dict[str, float] = {}
    with stage("pipeline", timings):
        handler = DataHandler(frame)
        handler.run_pipeline(**({"fix_shifts": True, "verbose": False} | pipeline_kwargs))
    with stage("report", timings):
        values = dict(handler.report(return_values=True, verbose=False))
    values["days"] = int(handler.num_days)
    if loss_analysis and handler.num_days > 365:
        with stage("loss_analysis", timings):
            handler.run_loss_factor_analysis(verbose=False)
            values |= handler.loss_analysis.report()
    elif loss_analysis:
        values["loss_analysis"] = f"skipped: {handler.num_days} days, needs more than 365"
    return values | timings


def check_pipeline_options(options: Mapping[str, Any]) -> None:
    """Refuse, in one line, a keyword that SDT's `run_pipeline` does not take."""
    if not options:
        return
    import inspect

    from solardatatools import DataHandler

    taken = [p for p in inspect.signature(DataHandler.run_pipeline).parameters if p != "self"]
    for name in options:
        if name not in taken:
            import difflib

            hint = difflib.get_close_matches(name, taken, n=1)
            guess = f"did you mean {hint[0]!r}? " if hint else ""
            raise SdtError(
                f"--pipeline {name}: SDT's run_pipeline takes no such keyword; {guess}it takes {', '.join(taken)}"
            )


def data_inventory(frame: pd.DataFrame) -> dict[str, Any]:
    """A quick look at one system's data: values, days covered, peak power, share missing."""
    power = frame.iloc[:, 0]
    span = frame.index.max() - frame.index.min()
    step = frame.index.to_series().diff().median()
    expected = span / step + 1 if step and step.total_seconds() > 0 else len(power)
    return {
        "values": int(power.notna().sum()),
        "days": round(span.total_seconds() / 86400, 2),
        "max_power": float(power.max()),
        "missing_share": round(1 - power.notna().sum() / expected, 4),
    }


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
    from sdt_core.results import SETUP_STAGE

    try:
        data, analysis, fast = _unpack(packed)
    except Exception as exc:
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:ERROR_LENGTH]
        log.error("key %s failed in %s: %s", list(key), SETUP_STAGE, text, exc_info=exc)
        return {"key": list(key), "status": "error", "stage": SETUP_STAGE, "error": text, "worker": _worker()}
    return process_key(key, data, analysis, fast)


@functools.lru_cache(maxsize=4)
def _unpack(packed: bytes) -> tuple[DataPlug, Analysis, tuple[Substitution, ...]]:
    return pickle.loads(packed)  # type: ignore[no-any-return]


def process_key(
    key: tuple[Any, ...], data: DataPlug, analysis: Analysis, fast: tuple[Substitution, ...] = ()
) -> dict[str, Any]:
    """The task run for one key: its result row, `status` "ok" or "error" with `stage`.

    With `fast` substitutions the key runs on SDT's fast path; if one of them raises, the
    key is run again exactly, and its row says why (`sdt_fallback`). `peak_memory_mb` is
    this worker process's peak resident memory while the key ran (`sdt_core.memory`).
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


#: Row fields sdt-core writes itself; an analysis returning one of them fails its key.
RESERVED = frozenset(
    {
        "key",
        "status",
        "stage",
        "error",
        "start_time",
        "load_s",
        "analysis_s",
        "total_s",
        "worker",
        "worker_log",
        "peak_memory_mb",
        "sdt_mode",
        "sdt_substitutions",
        "sdt_fallback",
        "power_column",
    }
)


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


def load_analysis(spec: str) -> Analysis:
    """The function named `module:function` (the current directory is importable)."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise SdtError(f"--analysis takes MODULE:FUNCTION, got {spec!r}")
    importable_cwd()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a missing module, a SyntaxError, or the module's own code raising
        where = f" ({exc.filename}, line {exc.lineno})" if isinstance(exc, SyntaxError) else ""
        text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        error = text if isinstance(exc, ModuleNotFoundError) else f"{type(exc).__name__}: {text}{where}"
        raise SdtError(f"cannot import the analysis module {module_name!r}: {error}") from exc
    function = getattr(module, name, None)
    if not callable(function):
        raise SdtError(f"module {module_name!r} has no function {name!r} (--analysis {spec})")
    return function  # type: ignore[no-any-return]
