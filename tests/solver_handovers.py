"""What cvxpy hands CLARABEL and reads back, recorded, for the refilled problems' proofs."""

from __future__ import annotations

import numpy as np


def record_handovers(monkeypatch) -> list[tuple]:
    """Every hand-over to CLARABEL and every solution read back from now on, as recorded copies."""
    import cvxpy
    from cvxpy.reductions.inverse_data import InverseData
    from cvxpy.reductions.solvers.conic_solvers.clarabel_conif import CLARABEL

    seen: list[tuple] = []
    solve_via_data, unpack_results = CLARABEL.solve_via_data, cvxpy.Problem.unpack_results

    def recorded_solve(self, data, warm_start, verbose, solver_opts, solver_cache=None):
        reused = bool(warm_start and solver_cache and self.name() in solver_cache)
        matrices = {k: (m.format, m.shape, m.indptr, m.indices, m.data) for k in "PA" if (m := data.get(k)) is not None}
        seen.append(("solve", matrices, data["c"].copy(), data["b"].copy(), vars(data["dims"]), reused, solver_opts))
        return solve_via_data(self, data, warm_start, verbose, solver_opts, solver_cache)

    def recorded_unpack(self, solution, chain, inverse_data):
        # a variable by its place in the problem and its name, unless cvxpy made that from its id
        names = {v.id: (k, None if v.name() == f"var{v.id}" else v.name()) for k, v in enumerate(self.variables())}
        layouts = [
            sorted((offset, names.get(i, "auxiliary"), inv.var_shapes[i]) for i, offset in inv.var_offsets.items())
            for inv in inverse_data
            if isinstance(inv, InverseData) and hasattr(inv, "var_offsets")
        ]
        seen.append(("read back", layouts, [type(inv).__name__ for inv in inverse_data]))
        return unpack_results(self, solution, chain, inverse_data)

    monkeypatch.setattr(CLARABEL, "solve_via_data", recorded_solve)
    monkeypatch.setattr(cvxpy.Problem, "unpack_results", recorded_unpack)
    return seen


def same_handover(fast: tuple, exact: tuple) -> bool:
    """Whether two recorded hand-overs are the same: matrices entry for entry, vectors value for value."""
    if fast[0] != exact[0] or fast[0] == "read back":
        return fast == exact
    if fast[1].keys() != exact[1].keys() or "P" not in fast[1]:
        return False
    for name in "PA":
        (ff, fs, *fast_arrays), (ef, es, *exact_arrays) = fast[1][name], exact[1][name]
        same = all(np.array_equal(a, b) for a, b in zip(fast_arrays, exact_arrays, strict=True))
        if (ff, fs) != (ef, es) or not same:
            return False
    return np.array_equal(fast[2], exact[2]) and np.array_equal(fast[3], exact[3]) and fast[4:] == exact[4:]


def pipeline_run_through(frame, module, name: str, replacement) -> None:
    """SDT's pipeline on `frame` with `module.name` replaced (a recorder) for the run, only the
    fast path's PSD check on (SDT's own problems, compiled as cvxpy would)."""
    from solardatatools import DataHandler

    from sdt_core import acceleration
    from sdt_core.acceleration import key_mode

    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        with key_mode(True, tuple(s for s in acceleration.SUBSTITUTIONS if s.name == "psd-certified-quad-form")):
            DataHandler(frame).run_pipeline(fix_shifts=True, verbose=False)
    finally:
        setattr(module, name, original)
