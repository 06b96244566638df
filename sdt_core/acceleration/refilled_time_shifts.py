"""The time shift check's problem compiled once per data, its weight refilled per fit.

The time shift check fits `l2_l1d1_l2d2p365` for 11 weights `w1` on the same data (the
metric, one train split, `w2`): each fit builds SDT's gfosd problem anew and cvxpy compiles
it anew. The weight enters only the objective, as `w1 * abs(...)` of the jump component: of
the data cvxpy hands CLARABEL (P, c, A, b, cones), only some entries of `c` depend on it,
each `w1 * c1` with `c1` the entry for `w1 = 1`.

So per data and thread, the first two fits with different weights are SDT's own (their
problems compiled by cvxpy); they give where `c` scales with the weight and `c1`, and are the
check: the refill for each of the two weights must equal cvxpy's data entry for entry (P, A,
b and cones identical, `c` value for value), else the data is left to SDT. Each later fit
takes cvxpy's data of the first problem, sets `c` for its weight and hands it to a new
CLARABEL solver with gfosd's settings, as `Problem.solve` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sdt_core.acceleration.refilled_problems import (
    SOLVER,
    cvxpy_proven,
    keep,
    refill,
    same_data,
    solve_refilled,
    solver_data,
    thread_cache,
)
from sdt_core.acceleration.repeated_fits import _fingerprint
from sdt_core.acceleration.swap import NOT_APPLICABLE

#: The solver options gfosd's `Problem.decompose` passes cvxpy for SDT's eps_rel and eps_abs of 1e-6.
OPTIONS = {"tol_gap_rel": 1e-6, "tol_gap_abs": 1e-6}


@dataclass
class _Seen:
    """SDT's first fit on one data (its gfosd problem, compiled) and what the second one taught."""

    decomposition: Any  # the gfosd Problem; its `_cvx_obj` is the compiled cvxpy problem
    weight: float
    own: dict[str, Any]  # cvxpy's data for `weight`
    scaled: Any = None  # the entries of c that are w1 * c1, once a second weight was fit
    unit_c: Any = None
    refillable: bool = False


def refilled_time_shift_fit(
    original: Any,
    signal: Any,
    use_ixs: Any = None,
    w1: float = 50,
    w2: float = 1e-3,
    yearly_periodic: bool = False,
    return_all: bool = False,
    solver: str = "CLARABEL",
    sum_card: bool = False,
    transition_locs: Any = None,
    verbose: bool = False,
) -> Any:
    """SDT's `l2_l1d1_l2d2p365` (time shifts), with its problem compiled once per data and thread."""
    import numpy as np

    if solver != SOLVER or verbose or return_all or sum_card or transition_locs is not None:
        return NOT_APPLICABLE
    if type(w1) not in (float, np.float64) or not np.isfinite(w1) or not cvxpy_proven():
        return NOT_APPLICABLE
    if not isinstance(signal, np.ndarray) or signal.dtype != np.float64 or signal.ndim != 1:
        return NOT_APPLICABLE
    key = _fingerprint((signal, use_ixs, w2, bool(yearly_periodic)))
    if key is None:
        return NOT_APPLICABLE
    cache = thread_cache("time-shifts")
    seen = cache.get(key)
    if seen is not None and seen.scaled is not None:
        keep(cache, key, seen)
        return _fit(seen, float(w1)) if seen.refillable else NOT_APPLICABLE
    s_hat, s_seas, _, decomposition = original(
        signal, use_ixs=use_ixs, w1=w1, w2=w2, yearly_periodic=yearly_periodic, return_all=True, solver=solver
    )
    own = solver_data(decomposition._cvx_obj, OPTIONS)
    if seen is None:
        seen = _Seen(decomposition, float(w1), own)
    elif float(w1) != seen.weight:
        _learn(seen, float(w1), own)
    keep(cache, key, seen)
    return s_hat, s_seas


def _learn(seen: _Seen, weight: float, own: dict[str, Any]) -> None:
    """Where `c` scales with the weight and its values for weight 1, checked on both fits' data."""
    first = seen.own
    seen.scaled = first["c"] != own["c"]
    seen.unit_c = first["c"].copy()
    seen.unit_c[seen.scaled] = first["c"][seen.scaled] / seen.weight
    unit = {**first, "c": seen.unit_c}
    seen.refillable = (
        len(seen.decomposition._cvx_obj.variables()) == 1
        and same_data(refill(unit, seen.scaled, seen.weight), first)
        and same_data(refill(unit, seen.scaled, weight), own)
    )
    seen.own = {}  # no longer needed


def _fit(seen: _Seen, w1: float) -> tuple[Any, Any]:
    """SDT's fit for `w1`: the first problem solved with its data refilled, read back as gfosd does."""
    problem = seen.decomposition._cvx_obj
    solve_refilled(problem, seen.scaled, w1, warm_start=False, options=OPTIONS, unit_c=seen.unit_c)
    seen.decomposition.retrieve_result(problem.variables()[0].value)
    components = seen.decomposition.decomposition
    return components[2].copy(), components[1].copy()
