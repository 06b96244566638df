"""The analyses a run can do per key, and the stages they are timed by.

An analysis is any `f(frame) -> dict` of the frame a data plug returned (one power column,
indexed by timestamps), named on the command line as `--analysis module:function`. The
default is SDT's pipeline (`sdt_pipeline`); `data_inventory` is a quick look at the data. A
stage that raises (`stage`) becomes `StageFailed`, so the key's row says where and why.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sdt_core.errors import SdtError
from sdt_core.plugs.imports import import_module

if TYPE_CHECKING:
    import pandas as pd

Analysis = Callable[["pd.DataFrame"], Mapping[str, Any]]
ERROR_LENGTH = 500


def error_text(error: BaseException) -> str:
    """An error as one line of at most ERROR_LENGTH characters: its type, then its message if any."""
    message = " ".join(str(error).split())
    return (f"{type(error).__name__}: {message}" if message else type(error).__name__)[:ERROR_LENGTH]


class StageFailed(Exception):
    """An analysis stage raised; carries the stage's name and the timings so far."""

    def __init__(self, stage: str, error: BaseException, timings: dict[str, float]):
        super().__init__(error_text(error))
        self.stage = stage
        self.timings = timings


@contextmanager
def stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    """Time a stage into `timings[name + "_s"]`; turn its failure into `StageFailed`.

    Any failure, BaseExceptions too: an analysis's `sys.exit()`, KeyboardInterrupt or own
    BaseException subclass is the key's failure, not its worker's (in a worker's thread,
    nothing else raises them).
    """
    start = time.perf_counter()
    try:
        yield
    except StageFailed:
        raise
    except BaseException as exc:
        raise StageFailed(name, exc, timings) from exc
    finally:
        timings[f"{name}_s"] = round(time.perf_counter() - start, 4)


def sdt_pipeline(
    frame: pd.DataFrame,
    *,
    loss_analysis: bool = False,
    loss_options: Mapping[str, Any] | None = None,
    **pipeline_kwargs: Any,
) -> dict[str, Any]:
    """SDT's pipeline and report; with `loss_analysis`, the loss factor analysis of systems
    with more than 365 days, as SDT's Dask tool does. `loss_options`: keywords of SDT's
    `run_loss_factor_analysis` and `LossFactorAnalysis.estimate_degradation_rate` (e.g.
    max_samples); SDT's defaults for the others."""
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
            _loss_factor_analysis(handler, loss_options or {})
            values |= handler.loss_analysis.report()
    elif loss_analysis:
        values["loss_analysis"] = f"skipped: {handler.num_days} days, needs more than 365"
    return values | timings


def _sdt_takers() -> dict[str, tuple[Callable[..., Any], ...]]:
    """SDT's functions whose keywords each option of `sdt run` passes on."""
    from solardatatools import DataHandler
    from solardatatools.algorithms.loss_factor_analysis import LossFactorAnalysis

    return {
        "--pipeline": (DataHandler.run_pipeline,),
        "--loss-option": (DataHandler.run_loss_factor_analysis, LossFactorAnalysis.estimate_degradation_rate),
    }


def _keywords(function: Callable[..., Any]) -> list[str]:
    import inspect

    return [p for p in inspect.signature(function).parameters if p != "self"]


#: The keywords of `estimate_degradation_rate` for the loss factor analysis of this context
#: (this key): `run_loss_factor_analysis` calls it without them.
_DEGRADATION_OPTIONS: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "sdt_degradation_options", default=types.MappingProxyType({})
)
_PASSING = threading.Lock()


def _loss_factor_analysis(handler: Any, options: Mapping[str, Any]) -> None:
    """`handler.run_loss_factor_analysis` with `options`, each given to the SDT function that takes it."""
    run_analysis = _sdt_takers()["--loss-option"][0]
    own = {k: v for k, v in options.items() if k in _keywords(run_analysis)}
    passed = {k: v for k, v in options.items() if k not in own}
    if passed:
        _pass_degradation_options()
    token = _DEGRADATION_OPTIONS.set(passed)
    try:
        handler.run_loss_factor_analysis(**({"verbose": False} | own))
    finally:
        _DEGRADATION_OPTIONS.reset(token)


def _pass_degradation_options() -> None:
    """Make `LossFactorAnalysis.estimate_degradation_rate` take this context's options (once a process).

    Its keywords given by the caller (SDT passes `verbose`) win; with no options set, it is SDT's own.
    """
    from solardatatools.algorithms.loss_factor_analysis import LossFactorAnalysis

    with _PASSING:
        original = LossFactorAnalysis.estimate_degradation_rate
        if getattr(original, "__sdt_options__", False):
            return

        @functools.wraps(original)
        def estimate_degradation_rate(self: Any, *args: Any, **kwargs: Any) -> Any:
            return original(self, *args, **({**_DEGRADATION_OPTIONS.get(), **kwargs}))

        estimate_degradation_rate.__sdt_options__ = True  # type: ignore[attr-defined]
        LossFactorAnalysis.estimate_degradation_rate = estimate_degradation_rate  # type: ignore[method-assign]


def check_sdt_options(option: str, options: Mapping[str, Any]) -> None:
    """Refuse, in one line, a keyword that none of the SDT functions `option` (--pipeline,
    --loss-option) passes keywords to takes."""
    if not options:
        return
    functions = _sdt_takers()[option]
    taken = list(dict.fromkeys(p for function in functions for p in _keywords(function)))
    for name in options:
        if name not in taken:
            import difflib

            hint = difflib.get_close_matches(name, taken, n=1)
            guess = f"did you mean {hint[0]!r}? " if hint else ""
            names = " and ".join(f.__name__ for f in functions)
            verb, pronoun = ("takes", "it takes") if len(functions) == 1 else ("take", "they take")
            raise SdtError(
                f"{option} {name}: SDT's {names} {verb} no such keyword; {guess}{pronoun} {', '.join(taken)}"
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


def load_analysis(spec: str) -> Analysis:
    """The function named `module:function` (the current directory is searched last: `sdt_core.plugs.imports`)."""
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise SdtError(f"--analysis takes MODULE:FUNCTION, got {spec!r}")
    try:
        module = import_module(module_name)
    except SdtError:
        raise
    except Exception as exc:  # a missing module, a SyntaxError, or the module's own code raising
        where = f" ({exc.filename}, line {exc.lineno})" if isinstance(exc, SyntaxError) else ""
        text = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        error = text if isinstance(exc, ModuleNotFoundError) else f"{type(exc).__name__}: {text}{where}"
        raise SdtError(f"cannot import the analysis module {module_name!r}: {error}") from exc
    function = getattr(module, name, None)
    if not callable(function):
        raise SdtError(f"module {module_name!r} has no function {name!r} (--analysis {spec})")
    return function  # type: ignore[no-any-return]
