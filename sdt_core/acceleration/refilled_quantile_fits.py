"""SDT's seasonal quantile fit handed to CLARABEL without cvxpy compiling each fit anew.

The sunrise/sunset estimation fits `tl1_l2d2p365` (gfosd's `_osd_tl1_l2d2p365`) twice for each
of 21 detection thresholds, on new data with a new set of days in use each time: each fit
builds gfosd's problem anew and cvxpy compiles it anew (two thirds of the stage's time; the
solve is a quarter). For one series length `T`, `tau` and `w0`, the data cvxpy hands CLARABEL
(P, c, A, b, cones) differ between fits only in the rows that tie the model to the days in
use: one row of A per day in use, two entries (the day's residual and seasonal component),
its value in b, and the size of the zero cone.

So per `(T, tau, w0)` and thread, the first fits are SDT's own, their problems compiled by
cvxpy. The first gives cvxpy's data with those rows written for every day (each such row
holding the same two entries as the rows cvxpy wrote, every other row and vector as
cvxpy's); that layout must give back the first fit's data and the data of the first later fit
with other days in use bit for bit (P, A entry for entry with their index types, c and b,
the cones), and the variable must come first in cvxpy's solution; else the fits are left to
SDT. Each later fit keeps the rows of its days in use, puts its data in b, and hands the
result to a new CLARABEL solver through cvxpy's own CLARABEL interface with SDT's settings,
as `Problem.solve` does; its seasonal component is read from the solution as cvxpy and gfosd
read it. A solve that does not end "Solved" is left to SDT (its warnings and errors).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from sdt_core.acceleration.refilled_problems import (
    SOLVER,
    cvxpy_proven,
    keep,
    same_data,
    solver_data,
    thread_cache,
)
from sdt_core.acceleration.repeated_fits import _fingerprint
from sdt_core.acceleration.swap import NOT_APPLICABLE

#: Layouts kept per thread: the pipeline asks for three or four (tau 0.1, 0.85, 0.9) per series length.
KEPT = 4


@dataclass
class _Layout:
    """cvxpy's data for one `(T, tau, w0)` with every day in use, and where the days' rows are."""

    data: dict[str, Any]  # cvxpy's data of the first fit (P, c, the cones, the other rows of b)
    length: int  # T
    first: int  # the first day row (the rows of the other components come before)
    zero: int  # the end of the zero cone in the first fit's data
    rows: int  # the rows of A with every day in use
    indptr: Any  # A with every day in use, CSC
    indices: Any
    values: Any


@dataclass
class _Seen:
    """The first fit on one `(T, tau, w0)` (its compiled problem) until a second one checked the layout."""

    problem: Any  # the cvxpy problem of SDT's first fit
    signal: Any
    used: Any  # its days in use (indices)
    layout: _Layout | None = None
    refillable: bool = True


def refilled_quantile_fit(
    original: Any,
    signal: Any,
    use_ixs: Any = None,
    tau: float = 0.75,
    w0: float = 1,
    return_all: bool = False,
    solver: str = "OSQP",
    verbose: bool = False,
) -> Any:
    """SDT's `_osd_tl1_l2d2p365`, with CLARABEL handed cvxpy's data for the days in use, built directly."""
    import numpy as np

    used = _days_in_use(signal, use_ixs)
    plain = all(type(v) in (float, int, np.float64) and np.isfinite(v) for v in (tau, w0))
    if used is None or solver != SOLVER or verbose or return_all or not plain or not cvxpy_proven():
        return NOT_APPLICABLE
    key = _fingerprint((len(signal), tau, w0))
    cache = thread_cache("quantile")
    seen = cache.get(key)
    if seen is not None:
        keep(cache, key, seen, KEPT)
        if not seen.refillable:
            return NOT_APPLICABLE
        if seen.layout is not None:
            return _fit(seen.layout, signal, used)
    s_seas, problem = original(signal, use_ixs=use_ixs, tau=tau, w0=w0, return_all=True, solver=solver)
    if seen is None:
        keep(cache, key, _Seen(problem._cvx_obj, signal.copy(), used), KEPT)
    else:
        seen.layout = _learn(seen, problem._cvx_obj, signal, used)
        seen.refillable = seen.layout is not None
        seen.problem = seen.signal = None  # no longer needed
    return s_seas


def _days_in_use(signal: Any, use_ixs: Any) -> Any:
    """The indices gfosd's mask keeps (in use and not NaN), or None when the fit is not one this covers."""
    import numpy as np

    if not isinstance(signal, np.ndarray) or signal.dtype != np.float64 or signal.ndim != 1:
        return None
    if use_ixs is not None and not (
        isinstance(use_ixs, np.ndarray) and use_ixs.dtype == np.bool_ and use_ixs.shape == signal.shape
    ):
        return None
    kept = ~np.isnan(signal) if use_ixs is None else use_ixs & ~np.isnan(signal)
    used = np.flatnonzero(kept)
    return used if used.size and np.all(np.isfinite(signal[used])) else None


def _learn(seen: _Seen, problem: Any, signal: Any, used: Any) -> _Layout | None:
    """The layout of the first fit's data, if it gives both fits' data bit for bit and the variable comes first."""
    if not (_variable_first(seen.problem) and _variable_first(problem)):
        return None
    first = solver_data(seen.problem)
    layout = _layout(first, len(signal), seen.used)
    if layout is None:
        return None
    for own, days, values in ((first, seen.used, seen.signal), (solver_data(problem), used, signal)):
        if not identical(_data(layout, values, days), own):
            return None
    return layout


def _variable_first(problem: Any) -> bool:
    """Whether the problem has one variable, at offset 0 of cvxpy's solution vector."""
    variables = problem.variables()
    if len(variables) != 1:
        return False
    _, _, inverse = problem.get_problem_data(SOLVER, False, False, False, False, None, {})
    offsets = [inv.var_offsets.get(variables[0].id) for inv in inverse if hasattr(inv, "var_offsets")]
    return bool(offsets) and all(offset == 0 for offset in offsets)


def _layout(data: dict[str, Any], length: int, used: Any) -> _Layout | None:
    """A with a row for every day, from cvxpy's data for the days `used`; None if its day rows are not
    each the same two entries, at the day's residual and seasonal component (columns d and T + d)."""
    import numpy as np

    A = data["A"]
    if A.format != "csc" or not A.has_canonical_format:
        return None
    zero, days = data["dims"].zero, len(used)
    first = zero - days
    cols = np.repeat(np.arange(A.shape[1]), np.diff(A.indptr))
    rows = A.indices
    day = (rows >= first) & (rows < zero)
    day_rows = np.argsort(rows[day], kind="stable")
    day_cols, day_values = cols[day][day_rows].reshape(-1, 2), A.data[day][day_rows].reshape(-1, 2)
    if first < 0 or day_cols.shape[0] != days or not np.array_equal(day_cols, np.c_[used, length + used]):
        return None
    pattern = day_values[0]
    if not np.all(day_values == pattern):
        return None
    # every day's row: the other rows kept, the day rows moved to their day's place, the missing days added
    shift = rows.copy()
    shift[day] = first + used[rows[day] - first]
    shift[rows >= zero] += length - days
    missing = np.setdiff1d(np.arange(length), used)
    all_rows = np.concatenate([shift, first + missing, first + missing])
    all_cols = np.concatenate([cols, missing, length + missing])
    all_values = np.concatenate([A.data, np.full(missing.size, pattern[0]), np.full(missing.size, pattern[1])])
    order = np.lexsort((all_rows, all_cols))
    indptr = np.zeros(A.shape[1] + 1, dtype=A.indptr.dtype)
    np.cumsum(np.bincount(all_cols, minlength=A.shape[1]), out=indptr[1:])
    return _Layout(
        data=data,
        length=length,
        first=first,
        zero=zero,
        rows=A.shape[0] + length - days,
        indptr=indptr,
        indices=all_rows[order].astype(A.indices.dtype),
        values=all_values[order],
    )


def _data(layout: _Layout, signal: Any, used: Any) -> dict[str, Any]:
    """cvxpy's data for the days `used` of `signal`: the layout's rows of those days, their values in b."""
    import numpy as np

    first, length, days = layout.first, layout.length, len(used)
    kept = np.ones(layout.rows, dtype=bool)
    kept[first : first + length] = False
    kept[first + used] = True
    entries = np.concatenate([[0], np.cumsum(kept[layout.indices])])
    selected = kept[layout.indices]
    renumbered = (np.cumsum(kept) - 1)[layout.indices[selected]].astype(layout.indices.dtype)
    own = layout.data
    indptr = entries[layout.indptr].astype(layout.indptr.dtype)
    A = type(own["A"])((layout.values[selected], renumbered, indptr), shape=(int(kept.sum()), own["A"].shape[1]))
    A.indices, A.indptr = renumbered, indptr  # the index types of cvxpy's, which the constructor may narrow
    b = own["b"]
    # gfosd's mask product gives 0.0 + 1.0 * value for each day in use (so -0.0 becomes 0.0)
    b = np.concatenate([b[:first], signal[used] + 0.0, b[layout.zero :]])
    dims = copy.copy(own["dims"])
    dims.zero = first + days
    return {**own, "param_prob": None, "dims": dims, "A": A, "b": b}


def identical(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """`same_data`, and bit for bit: the same matrix classes and index types, vectors to the bit (signed zeros)."""

    if not same_data(a, b):
        return False
    for name in ("P", "A"):
        x, y = a[name], b[name]
        if type(x) is not type(y) or x.indices.dtype != y.indices.dtype or x.indptr.dtype != y.indptr.dtype:
            return False
        if x.data.dtype != y.data.dtype or x.data.tobytes() != y.data.tobytes():
            return False
    return all(
        (a[n] is None and b[n] is None) or (a[n] is not None and b[n] is not None and a[n].tobytes() == b[n].tobytes())
        for n in ("c", "b", "lower_bounds", "upper_bounds")
    )


def _fit(layout: _Layout, signal: Any, used: Any) -> Any:
    """SDT's seasonal component: the data for the days `used` solved by a new CLARABEL solver, read back
    as cvxpy (the variable's slice of the solution) and gfosd (its second component) do; or NOT_APPLICABLE
    when the solve does not end "Solved"."""
    import numpy as np
    from cvxpy.reductions.solvers.conic_solvers.clarabel_conif import CLARABEL

    solution = CLARABEL().solve_via_data(_data(layout, signal, used), False, False, {}, {})
    if str(solution.status) != "Solved":
        return NOT_APPLICABLE
    length = layout.length
    return np.asarray(solution.x[length : 2 * length], dtype=np.float64)
