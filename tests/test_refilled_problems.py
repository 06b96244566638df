"""The capacity change problem compiled once per data: CLARABEL gets cvxpy's own data, entry for entry.

Every call SDT's pipeline makes to `_cvx_l1_pwc_smoothper_trend` on a real sample file and on
synthetic systems is replayed exactly and fast; each hand-over to CLARABEL (P, q, A, b, the
cones, a new or an updated solver) and each reading of the solution back (the variables'
offsets in cvxpy's inverse data) is recorded and compared, and so are the fits' results.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sdt_core import acceleration
from sdt_core.acceleration import key_mode
from sdt_core.acceleration.swap import NOT_APPLICABLE
from sdt_core.dataplugs.sample import SampleData
from tests.solver_handovers import pipeline_run_through, record_handovers, same_handover

NAME = "capacity-problem-refill"
SUB = next(s for s in acceleration.SUBSTITUTIONS if s.name == NAME)


def pipeline_calls(key: str, lengths: list[int]) -> list[tuple]:
    """The (signal, use_ixs, w2, w3, w4, solver) of each capacity fit SDT's pipeline makes on `key`."""
    from solardatatools import signal_decompositions as sd

    from sdt_core.dataplugs.frames import power_frame

    frame = power_frame(SampleData(systems=1, lengths=lengths).get_data((key,)))
    calls = []
    fit = sd._cvx_l1_pwc_smoothper_trend

    def record(signal, use_ixs=None, w2=2e1, w3=1, w4=1e1, solver="CLARABEL", verbose=False, return_all=False):
        calls.append((signal.copy(), None if use_ixs is None else use_ixs.copy(), w2, w3, w4, solver))
        return fit(signal, use_ixs=use_ixs, w2=w2, w3=w3, w4=w4, solver=solver, verbose=verbose)

    pipeline_run_through(frame, sd, "_cvx_l1_pwc_smoothper_trend", record)
    return calls


@pytest.fixture
def handovers(monkeypatch):
    """Every hand-over to CLARABEL and every solution read back, as recorded copies."""
    return record_handovers(monkeypatch)


SYSTEMS = [("ZT162185000441C1203", [365]), ("synthetic-000", [365]), ("synthetic-000", [120])]


@pytest.mark.parametrize(("key", "lengths"), SYSTEMS)
def test_clarabel_gets_cvxpys_own_data_and_the_fits_are_sdts_bit_for_bit(key, lengths, handovers):
    from solardatatools import signal_decompositions as sd

    calls = pipeline_calls(key, lengths)
    assert len(calls) == 14 and len({c[2] for c in calls}) == 13  # 13 weights, then the chosen one again
    recorded, results = {}, {}
    for fast in (False, True):
        handovers.clear()
        with key_mode(fast, (SUB,)) as mode:
            results[fast] = [sd._cvx_l1_pwc_smoothper_trend(s, use_ixs=u, w2=w2, w3=w3, w4=w4, solver=solver)
                             for s, u, w2, w3, w4, solver in calls]  # fmt: skip
        recorded[fast] = list(handovers)
        assert mode.used == ({NAME} if fast else set())
    assert len(recorded[True]) == len(recorded[False]) == 4 * len(calls)  # two solves and read-backs a fit
    for i, (fast, exact) in enumerate(zip(recorded[True], recorded[False], strict=True)):
        assert same_handover(fast, exact), (i, fast[0])
    assert [s[5] for s in recorded[True] if s[0] == "solve"] == [False, True] * len(calls)  # new, then updated
    for fast_fit, exact_fit in zip(results[True], results[False], strict=True):
        for fast_part, exact_part in zip(fast_fit, exact_fit, strict=True):
            assert np.array_equal(fast_part, exact_part)


def test_other_solvers_and_requests_run_sdts_own_fit():
    from sdt_core.acceleration.refilled_problems import refilled_capacity_fit

    def sdt_fit(*args, **kwargs):
        raise AssertionError("the replacement declines; the dispatcher runs SDT's fit")

    signal = np.linspace(0.0, 1.0, 40)
    for asked in ({"solver": "MOSEK"}, {"solver": None}, {"solver": "clarabel"}, {"return_all": True},
                  {"verbose": True}, {"w2": np.float32(2.0)}):  # fmt: skip
        assert refilled_capacity_fit(sdt_fit, signal, **({"w2": 2.0} | asked)) is NOT_APPLICABLE, asked
    assert refilled_capacity_fit(sdt_fit, signal.astype(np.float32), w2=2.0) is NOT_APPLICABLE


def test_threads_fitting_different_data_each_get_their_own_problem():
    from solardatatools import signal_decompositions as sd

    rng = np.random.default_rng(3)
    signals = [np.log(rng.uniform(1, 3, 120)) + 0.4 * (np.arange(120) > 60 + 10 * i) for i in range(2)]
    weights = np.logspace(-0.5, 2.5, 13)[::3]
    exact = [[sd._cvx_l1_pwc_smoothper_trend(s, w2=w) for w in weights] for s in signals]
    fast: list[list] = [[], []]
    start = threading.Barrier(2)

    def fits(i: int) -> None:
        with key_mode(True, (SUB,)):
            start.wait()
            for w in weights:
                fast[i].append(sd._cvx_l1_pwc_smoothper_trend(signals[i], w2=w))

    threads = [threading.Thread(target=fits, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(2):
        for fast_fit, exact_fit in zip(fast[i], exact[i], strict=True):
            assert all(np.array_equal(a, b) for a, b in zip(fast_fit, exact_fit, strict=True))
