"""The capacity change check's problem compiled once per key, its weight refilled per fit.

The capacity change check fits `_cvx_l1_pwc_smoothper_trend` for 13 weights `w2` on the same
data; each fit builds SDT's problem anew and cvxpy compiles it anew (most of the stage's cost).
The weight enters only the objective, as `w2 * mean(abs(...))`: of the data cvxpy hands
CLARABEL (P, c, A, b, cones), only some entries of `c` depend on it, each `w2 * c1` with `c1`
the entry for `w2 = 1`, one floating-point product, as cvxpy computes it.

So per data (the masked series, `w3`, `w4`) and thread, this builds SDT's own problem with
`w2 = 1` once and compiles it. SDT's own problem for the first weight asked, compiled by
cvxpy, is the check: its data must equal the refill (P, A, b and cones
identical, `c` equal to `w2 * c1` where it differs from `c1`), else the data is left to SDT.
Each later fit takes cvxpy's data of the compiled problem (its parameter, the reweighting,
applied by cvxpy), sets `c` for its weight, and hands it to CLARABEL as `Problem.solve` does:
a new solver for the first solve of a fit, the same solver updated for the reweighted one.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from sdt_core.acceleration.repeated_fits import _fingerprint
from sdt_core.acceleration.swap import NOT_APPLICABLE

SOLVER = "CLARABEL"
#: The cvxpy versions whose `Problem.solve` the fit's two solves were proven to replay.
CVXPY_PROVEN_ON = ("1.9.3",)
#: Compiled problems kept per thread: a key's fits all share one.
KEPT = 2
#: The reweighting of SDT's fit (`eps` in `_cvx_l1_pwc_smoothper_trend`).
EPS = 0.1


@dataclass
class _Compiled:
    """SDT's problem for one data with `w2 = 1`, compiled, and where its `c` scales with `w2`."""

    problem: Any
    tv_weights: Any  # its cvxpy Parameter
    scaled: Any  # boolean mask of the entries of c that are w2 * c1
    refillable: bool


_LOCAL = threading.local()


def refilled_capacity_fit(
    original: Callable[..., Any],
    signal: Any,
    use_ixs: Any = None,
    w2: float = 2e1,
    w3: float = 1,
    w4: float = 1e1,
    solver: str | None = "CLARABEL",
    verbose: bool = False,
    return_all: bool = False,
) -> Any:
    """SDT's `_cvx_l1_pwc_smoothper_trend`, with its problem compiled once per data and thread."""
    import numpy as np

    if solver != SOLVER or verbose or return_all or type(w2) not in (float, np.float64) or not np.isfinite(w2):
        return NOT_APPLICABLE
    if not cvxpy_proven() or not isinstance(signal, np.ndarray) or signal.dtype != np.float64 or signal.ndim != 1:
        return NOT_APPLICABLE
    masked = np.copy(signal)
    if use_ixs is not None:
        masked[~use_ixs] = np.nan
    key = _fingerprint((masked, w3, w4))
    if key is None:
        return NOT_APPLICABLE
    cache = thread_cache("capacity")
    compiled = cache.get(key)
    if compiled is None:
        compiled = _compile(masked, w2, w3, w4)
    keep(cache, key, compiled)
    if not compiled.refillable:
        return NOT_APPLICABLE
    return _fit(compiled, float(w2))


@functools.cache
def cvxpy_proven() -> bool:
    """Whether the installed cvxpy is one whose `Problem.solve` the refills were proven to replay."""
    from importlib.metadata import version

    return version("cvxpy") in CVXPY_PROVEN_ON


def thread_cache(name: str) -> OrderedDict[Hashable, Any]:
    """This thread's compiled problems of one kind (`name`), oldest first."""
    caches = getattr(_LOCAL, "caches", None)
    if caches is None:
        caches = _LOCAL.caches = {}
    return caches.setdefault(name, OrderedDict())


def keep(cache: OrderedDict[Hashable, Any], key: Hashable, value: Any, kept: int = KEPT) -> None:
    """Put `value` in `cache` as its newest entry, dropping the oldest beyond `kept`."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > kept:
        cache.popitem(last=False)


def _compile(masked: Any, w2: float, w3: float, w4: float) -> _Compiled:
    """SDT's problem with `w2 = 1`, compiled, checked against SDT's own problem for `w2`."""
    import numpy as np
    from solardatatools._cvx_signal_decompositions import make_l1_pwc_smoothper_trend_problem

    problem, tv_weights = make_l1_pwc_smoothper_trend_problem(masked, 1.0, w3, w4)
    unit = solver_data(problem)
    scaled = np.zeros(0, dtype=bool)
    refillable = w2 != 1.0
    if refillable:
        own = solver_data(make_l1_pwc_smoothper_trend_problem(masked, w2, w3, w4)[0])
        scaled = own["c"] != unit["c"]
        refillable = same_data(refill(unit, scaled, w2), own)
    return _Compiled(problem, tv_weights, scaled, refillable)


def solver_data(problem: Any, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The data cvxpy hands CLARABEL for `problem` (`get_problem_data`, as `Problem.solve` calls it
    with the solver options `options`)."""
    return compiled(problem, options)[0]  # type: ignore[no-any-return]


def compiled(problem: Any, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any, Any]:
    """cvxpy's data for CLARABEL, solving chain and inverse data of `problem`, as `Problem.solve`
    gets them with the solver options `options`."""
    return problem.get_problem_data(SOLVER, False, False, False, False, None, dict(options or {}))  # type: ignore[no-any-return]


def refill(unit: dict[str, Any], scaled: Any, w2: float) -> dict[str, Any]:
    """The data of the `w2 = 1` problem with `c` set for weight `w2`."""
    c = unit["c"].copy()
    c[scaled] = w2 * unit["c"][scaled]
    return {**unit, "c": c}


def same_data(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two CLARABEL data are identical: P and A entry for entry (the same stored entries,
    explicit zeros included, in the same order), c and b value for value, and the cones.

    (`param_prob`, cvxpy's record of how the data were made, is not handed to the solver.)
    """
    import numpy as np

    arrays = ("c", "b", "lower_bounds", "upper_bounds")
    if a.keys() != b.keys() or vars(a["dims"]) != vars(b["dims"]):
        return False
    for name in ("P", "A"):
        x, y = a[name], b[name]
        if x.format != y.format or x.shape != y.shape:
            return False
        if not all(np.array_equal(getattr(x, f), getattr(y, f)) for f in ("indptr", "indices", "data")):
            return False
    return all(
        np.array_equal(a[n], b[n]) and a[n].dtype == b[n].dtype for n in arrays if a[n] is not None or b[n] is not None
    )


def _fit(compiled: _Compiled, w2: float) -> tuple[Any, Any, Any]:
    """SDT's two solves (uniform weights, then reweighted) with the refilled data."""
    import numpy as np

    problem = compiled.problem
    compiled.tv_weights.value = np.ones(compiled.tv_weights.shape)
    solve_refilled(problem, compiled.scaled, w2, warm_start=False)
    x2 = _by_name(problem)["x2"].value
    compiled.tv_weights.value = 1 / (EPS + np.abs(np.diff(x2, n=1)))
    solve_refilled(problem, compiled.scaled, w2, warm_start=True)
    found = _by_name(problem)
    return found["x2"].value.copy(), found["x3"].value.copy(), found["x4"].value.copy()


def solve_refilled(
    problem: Any,
    scaled: Any,
    weight: float,
    warm_start: bool,
    options: dict[str, Any] | None = None,
    unit_c: Any = None,
) -> None:
    """`problem.solve(solver=CLARABEL, **options)` with the weight in its data: `c` is `unit_c`
    (default: the data's own, a problem made with weight 1) with the `scaled` entries times `weight`."""
    data, chain, inverse = compiled(problem, options)
    unit = data if unit_c is None else {**data, "c": unit_c}
    solution = chain.solve_via_data(problem, refill(unit, scaled, weight), warm_start, False, dict(options or {}))
    problem.unpack_results(solution, chain, inverse)


def _by_name(problem: Any) -> dict[str, Any]:
    return {v.name(): v for v in problem.variables()}
