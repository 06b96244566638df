"""What runs for each key on a worker: load its data, analyse it, return one small row.

An analysis is any `f(frame) -> dict` of the frame a data plug returned (one power column,
indexed by timestamps). The default is SDT's pipeline (`sdt_pipeline`). A failure is caught
with the stage it happened in; the row says which and why, and the run goes on.
"""

from __future__ import annotations

import importlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdt_core.acceleration import Substitution, key_mode, sdt_version
from sdt_core.errors import SdtError
from sdt_core.memory import peak_memory

if TYPE_CHECKING:
    import pandas as pd

    from sdt_core.dataplugs import DataPlug

Analysis = Callable[["pd.DataFrame"], Mapping[str, Any]]
ERROR_LENGTH = 500


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
    from sdt_core.dataplugs.frames import check_span, power_frame

    row: dict[str, Any] = {"key": list(key), "status": "ok", "stage": None, "error": None}
    timings: dict[str, float] = {}
    row["start_time"] = round(time.time(), 3)
    start = time.perf_counter()
    usable = tuple(s for s in fast if sdt_version() in s.proven_on)  # this worker's SDT may not be the client's
    with key_mode(bool(usable), usable) as mode:
        try:
            with stage("load", timings):
                frame = power_frame(data.get_data(key))
                check_span(frame)
            with stage("analysis", timings):
                values = analysis(frame)
            row |= {str(k): _plain(v) for k, v in values.items()}
        except StageFailed as failed:
            row |= {"status": "error", "stage": failed.stage, "error": str(failed)} | failed.timings
    row |= timings | {"total_s": round(time.perf_counter() - start, 4), "worker": _worker()}
    row |= {"sdt_mode": mode.label, "sdt_substitutions": ",".join(sorted(mode.used))}
    if mode.failure:  # never keep a result that a failed replacement may have touched
        row["sdt_fallback"] = mode.failure[:ERROR_LENGTH]
    return row


def _plain(value: Any) -> Any:
    """Numpy scalars as Python ones; NaN as None, so rows are plain JSON."""
    value = value.item() if hasattr(value, "item") and callable(value.item) else value
    if isinstance(value, float) and math.isnan(value):
        return None
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


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
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SdtError(f"cannot import the analysis module {module_name!r}: {exc}") from exc
    function = getattr(module, name, None)
    if not callable(function):
        raise SdtError(f"module {module_name!r} has no function {name!r} (--analysis {spec})")
    return function  # type: ignore[no-any-return]
