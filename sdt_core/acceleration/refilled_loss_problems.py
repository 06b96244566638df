"""The loss factor analysis's problem compiled once per series, each bootstrap sample's rows refilled.

`LossFactorAnalysis.estimate_degradation_rate` solves ~500 samples of one problem: each
sample draws a quantile level `tau`, a soiling stiffness weight `w` and the days it holds
out, and SDT builds the gfosd problem anew and cvxpy compiles it anew (a fifth of the
analysis). Of the data cvxpy hands CLARABEL (P, c, A, b, cones), a sample changes only:
the rows of the equality `sum of the components = the data` for the days it uses (one row
a day, in day order: the other days' rows are absent, and the zero cone is that much
smaller), the entries of `c` that are `tau - 0.5` and those that are `w`.

So per series (the log energy, capacity labels and the other settings) and thread, this
compiles SDT's own problem once over every day with data, and finds where `tau` and `w`
enter `c` by compiling it once more for another `tau` and once for another `w`. The check:
the refill must give cvxpy's own data entry for entry for those two and for SDT's own
problem of the first sample (its days, `tau` and `w`), else the series is left to SDT.
Each sample's problem is then a `RefilledLossProblem`: its `decompose` with CLARABEL hands
CLARABEL the refilled data as `Problem.solve` does (a new solver, no settings) and reads
the components back from the solution as cvxpy does; anything else (another solver, a
solution that is not "Solved", its objective value, any other attribute) builds SDT's own
gfosd problem for the sample and uses it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sdt_core.acceleration.refilled_problems import SOLVER, compiled, cvxpy_proven, keep, same_data, thread_cache
from sdt_core.acceleration.repeated_fits import _fingerprint
from sdt_core.acceleration.swap import NOT_APPLICABLE

#: The cvxpy solve method (`Problem.register_solve`) that compiles nothing and solves nothing:
#: it keeps the cvxpy problem gfosd built, to compile it here.
CAPTURE = "sdt-core-capture"


def refilled_loss_problem(
    original: Callable[..., Any],
    analysis: Any,
    tau: float = 0.9,
    num_harmonics: int = 4,
    deg_type: str = "linear",
    include_soiling: bool = True,
    weight_seasonal: float = 10e-2,
    weight_soiling_stiffness: float = 5e-1,
    weight_soiling_sparsity: float = 1e-2,
    weight_deg_nonlinear: float = 10e4,
    deg_rate: float | None = None,
    use_capacity_change_labels: bool = True,
) -> Any:
    """SDT's `LossFactorAnalysis.make_problem`, as a problem whose CLARABEL solve is refilled
    from the series' compiled problem (the same signature and defaults as SDT's)."""
    import numpy as np

    settings = {
        "num_harmonics": num_harmonics,
        "deg_type": deg_type,
        "include_soiling": include_soiling,
        "weight_seasonal": weight_seasonal,
        "weight_soiling_sparsity": weight_soiling_sparsity,
        "weight_deg_nonlinear": weight_deg_nonlinear,
        "use_capacity_change_labels": use_capacity_change_labels,
    }
    inherited = deg_rate is None and analysis.MC_results is not None  # SDT then fixes the rate
    if deg_rate is not None or inherited or not cvxpy_proven():
        return NOT_APPLICABLE
    if not all(type(v) in (float, np.float64) and np.isfinite(v) for v in (tau, weight_soiling_stiffness)):
        return NOT_APPLICABLE
    data, use = analysis.log_energy, analysis.use_ixs
    if not (isinstance(data, np.ndarray) and data.dtype == np.float64 and data.ndim == 1):
        return NOT_APPLICABLE
    if not (isinstance(use, np.ndarray) and use.dtype == bool and use.shape == data.shape):
        return NOT_APPLICABLE
    key = _fingerprint((data, analysis.capacity_change_labels, tuple(sorted(settings.items()))))
    if key is None:
        return NOT_APPLICABLE
    sample = Sample(np.logical_and(use, ~np.isnan(data)), float(tau), float(weight_soiling_stiffness))
    snapshot = copy.copy(analysis)  # SDT's own problem for this sample, whenever it is asked for
    own = functools.partial(original, snapshot, tau=tau, weight_soiling_stiffness=weight_soiling_stiffness, **settings)
    cache = thread_cache("loss")
    series = cache[key] if key in cache else _compile(original, snapshot, settings, sample, own)
    keep(cache, key, series)
    if series is None:
        return NOT_APPLICABLE
    return RefilledLossProblem(series, sample, own)


@dataclass(frozen=True)
class Sample:
    """What one bootstrap sample changes: the days it uses (with data), `tau` and `w`."""

    used: Any
    tau: float
    weight: float


@dataclass
class Series:
    """SDT's problem of one series over every day with data, compiled, and where a sample enters it."""

    data: dict[str, Any]  # cvxpy's data for CLARABEL
    solver: Any  # cvxpy's CLARABEL interface
    days: Any  # the days with data, one equality row each
    first_day_row: int  # the row of the first of them
    tau_entries: Any  # the entries of c that are tau - 0.5
    weight_entries: Any  # those that are w
    offset: int  # where gfosd's variable starts in CLARABEL's solution
    size: int  # its length
    shape: tuple[int, int, int]  # gfosd's T, p, K

    def refill(self, sample: Sample) -> dict[str, Any]:
        """The data of the series' problem for `sample`."""
        import numpy as np

        rows = np.ones(self.data["A"].shape[0], dtype=bool)
        rows[self.first_day_row : self.first_day_row + len(self.days)] = sample.used[self.days]
        c = self.data["c"].copy()
        c[self.tau_entries] = sample.tau - 0.5
        c[self.weight_entries] = sample.weight
        dims = copy.copy(self.data["dims"])
        dims.zero -= int(len(self.days) - np.count_nonzero(sample.used[self.days]))
        return {**self.data, "A": self.data["A"][rows, :], "b": self.data["b"][rows], "c": c, "dims": dims}

    def solve(self, sample: Sample) -> Any:
        """gfosd's variable, as cvxpy reads it from CLARABEL's solution of the sample's problem;
        None unless CLARABEL solved it."""
        import numpy as np

        solution = self.solver.solve_via_data(self.refill(sample), False, False, {}, {})
        if str(solution.status) != "Solved":
            return None
        x = np.reshape(solution.x[self.offset : self.offset + self.size], (self.size,), order="F")
        return x


class RefilledLossProblem:
    """A sample's gfosd problem: solved with CLARABEL from the series' refilled data, else SDT's own.

    Its objective value is cvxpy's, evaluated (when asked for) on SDT's own problem for the sample
    at the solution, as `Problem.solve` evaluates it.
    """

    def __init__(self, series: Series, sample: Sample, own: Callable[[], Any]) -> None:
        self._series, self._sample, self._own, self._problem = series, sample, own, None
        self.T, self.p, self.K = series.shape
        self.decomposition: Any = None
        self._qss_soln: Any = None

    @property
    def objective_value(self) -> Any:
        """gfosd's `objective_value`: cvxpy's value of the problem at its solution (None before one)."""
        if self._problem is None and self._qss_soln is None:
            return None
        return self._gfosd().objective_value

    def decompose(
        self, solver: str = "qss", canonical_form: Any = None, make_feasible: bool = True, **kwargs: Any
    ) -> None:
        """gfosd's `Problem.decompose`: with CLARABEL and no settings, solved from the refilled data."""
        from gfosd import Problem

        found = None
        if self._problem is None and solver == SOLVER and canonical_form is None and kwargs in ({}, {"verbose": False}):
            found = self._series.solve(self._sample)
        if found is None:
            problem = self._gfosd()
            problem.decompose(solver, canonical_form, make_feasible, **kwargs)
            self.decomposition, self._qss_soln = problem.decomposition, problem._qss_soln
            return
        self._qss_soln = found
        Problem.retrieve_result(self, found)

    def _gfosd(self) -> Any:
        """SDT's own gfosd problem for the sample, with this one's solution."""
        if self._problem is None:
            problem = self._own()
            value = None if self._qss_soln is None else objective_value(problem, self._qss_soln)
            problem.decomposition, problem._qss_soln = self.decomposition, self._qss_soln
            problem.objective_value = value
            self._problem = problem
        return self._problem

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_series", "_sample", "_own", "_problem"):
            raise AttributeError(name)
        return getattr(self._gfosd(), name)


def objective_value(problem: Any, x: Any) -> Any:
    """cvxpy's value of the problem gfosd builds for `problem`, with its variable's value `x`
    (what `Problem.solve` leaves in `value`: its objective evaluated at the solution). It
    leaves `problem` without a solution."""
    from cvxpy.interface.matrix_utilities import scalar_value

    cvx_problem = cvxpy_problem(problem)
    (variable,) = cvx_problem.variables()
    variable.save_value(x)
    return scalar_value(cvx_problem.objective.value)


def cvxpy_problem(problem: Any) -> Any:
    """The cvxpy problem gfosd builds to decompose `problem` with CLARABEL (not solved; gfosd
    then records no solution on `problem`)."""
    import cvxpy

    kept: list[Any] = []
    cvxpy.Problem.register_solve(CAPTURE, _capture)
    problem.decompose(solver=SOLVER, method=CAPTURE, kept=kept)
    return kept[0]


def _capture(problem: Any, solver: Any = None, kept: list[Any] | None = None, **_: Any) -> None:
    if kept is not None:
        kept.append(problem)


def _compile(
    original: Callable[..., Any], snapshot: Any, settings: dict[str, Any], sample: Sample, own: Callable[[], Any]
) -> Series | None:
    """The series' problem over every day with data, compiled, checked against SDT's own for `sample`."""
    import numpy as np

    every_day = copy.copy(snapshot)
    every_day.use_ixs = ~np.isnan(snapshot.log_energy)

    def compile_for(tau: float, weight: float) -> tuple[Any, Any, dict[str, Any], Any, Any]:
        problem = original(every_day, tau=tau, weight_soiling_stiffness=weight, **settings)
        cvx_problem = cvxpy_problem(problem)
        return (problem, cvx_problem, *compiled(cvx_problem))

    problem, cvx_problem, data, chain, inverse = compile_for(sample.tau, sample.weight)
    every = Sample(every_day.use_ixs, sample.tau, sample.weight)
    probes = (  # another tau, another w: the same data but where they enter c
        Sample(every.used, 0.25 if sample.tau != 0.25 else 0.75, sample.weight),
        Sample(every.used, sample.tau, 0.25 if sample.weight != 0.25 else 0.75),
    )
    tau_c, weight_c = (compile_for(probe.tau, probe.weight)[2] for probe in probes)
    tau_entries, weight_entries = np.flatnonzero(tau_c["c"] != data["c"]), np.flatnonzero(weight_c["c"] != data["c"])
    days = np.flatnonzero(every.used)
    equalities = problem.make_graph_form()["A"].shape[0]
    stuffing = [i for r, i in zip(chain.reductions, inverse, strict=True) if type(r).__name__ == "ConeMatrixStuffing"]
    (variable,) = cvx_problem.variables()
    if data["dims"].zero != equalities or len(stuffing) != 1 or variable.id not in stuffing[0].var_offsets:
        return None
    series = Series(
        data=data,
        solver=chain.solver,
        days=days,
        first_day_row=equalities - len(days),
        tau_entries=tau_entries,
        weight_entries=weight_entries,
        offset=stuffing[0].var_offsets[variable.id],
        size=int(np.prod(variable.shape)),
        shape=(problem.T, problem.p, problem.K),
    )
    checks = ((every, data), (probes[0], tau_c), (probes[1], weight_c), (sample, compiled(cvxpy_problem(own()))[0]))
    return series if all(same_data(series.refill(s), own_data) for s, own_data in checks) else None
