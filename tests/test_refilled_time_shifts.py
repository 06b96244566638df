"""The time shift problem compiled once per data: CLARABEL gets cvxpy's own data, entry for entry.

Every call SDT's time shift check makes to `l2_l1d1_l2d2p365` on a real sample file and on
synthetic systems is replayed exactly and fast; each hand-over to CLARABEL (P, q, A, b, the
cones, the settings, a new solver) and each reading of the solution back (the variables'
offsets in cvxpy's inverse data) is recorded and compared, and so are the fits' results.
"""

from __future__ import annotations

import numpy as np
import pytest

from sdt_core import acceleration
from sdt_core.acceleration import key_mode
from sdt_core.acceleration.swap import NOT_APPLICABLE
from sdt_core.dataplugs.sample import SampleData
from tests.solver_handovers import pipeline_run_through, record_handovers, same_handover

NAME = "time-shift-problem-refill"
SUB = next(s for s in acceleration.SUBSTITUTIONS if s.name == NAME)
SYSTEMS = [("ZT162185000441C1203", [365]), ("synthetic-000", [365]), ("synthetic-000", [120])]


@pytest.fixture
def handovers(monkeypatch):
    """Every hand-over to CLARABEL and every solution read back, as recorded copies."""
    return record_handovers(monkeypatch)


def pipeline_calls(key: str, lengths: list[int]) -> list[tuple[tuple, dict]]:
    """The arguments of each time shift fit SDT's pipeline makes on `key`, copied."""
    from solardatatools.algorithms import time_shifts

    from sdt_core.dataplugs.frames import power_frame

    frame = power_frame(SampleData(systems=1, lengths=lengths).get_data((key,)))
    calls = []
    fit = time_shifts.l2_l1d1_l2d2p365

    def record(*args, **kwargs):
        copy = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        calls.append((tuple(a.copy() for a in args), copy))
        return fit(*args, **kwargs)

    pipeline_run_through(frame, time_shifts, "l2_l1d1_l2d2p365", record)
    return calls


@pytest.mark.parametrize(("key", "lengths"), SYSTEMS)
def test_clarabel_gets_cvxpys_own_data_and_the_fits_are_sdts_bit_for_bit(key, lengths, handovers):
    from solardatatools.algorithms import time_shifts

    calls = pipeline_calls(key, lengths)
    weights = [kwargs["w1"] for _, kwargs in calls]
    assert len(calls) >= 12 and len(set(weights[:11])) == 11  # the weight search, then the chosen weight
    assert {kwargs["solver"] for _, kwargs in calls} == {"CLARABEL"}
    recorded, results = {}, {}
    for fast in (False, True):
        handovers.clear()
        with key_mode(fast, (SUB,)) as mode:
            results[fast] = [time_shifts.l2_l1d1_l2d2p365(*args, **kwargs) for args, kwargs in calls]
        recorded[fast] = list(handovers)
        assert mode.used == ({NAME} if fast else set())
    assert len(recorded[True]) == len(recorded[False]) == 2 * len(calls)  # one solve and read-back a fit
    for i, (fast, exact) in enumerate(zip(recorded[True], recorded[False], strict=True)):
        assert same_handover(fast, exact), (i, fast[0])
    assert not any(s[5] for s in recorded[True] if s[0] == "solve")  # a new solver each fit, as SDT's
    for fast_fit, exact_fit in zip(results[True], results[False], strict=True):
        for fast_part, exact_part in zip(fast_fit, exact_fit, strict=True):
            assert np.array_equal(fast_part, exact_part)


def test_nine_of_the_eleven_weights_are_refilled(monkeypatch):
    from solardatatools.algorithms import time_shifts

    (args, kwargs), *_ = pipeline_calls(*SYSTEMS[1])
    own = []
    fit = time_shifts.l2_l1d1_l2d2p365

    def counted(*a, **k):
        own.append(k["w1"])
        return fit(*a, **k)

    from sdt_core.acceleration.refilled_time_shifts import refilled_time_shift_fit

    for w1 in np.logspace(-1, 2, 11):
        assert refilled_time_shift_fit(counted, *args, **kwargs | {"w1": w1}) is not NOT_APPLICABLE
    assert own == list(np.logspace(-1, 2, 11)[:2])


def test_other_solvers_and_requests_run_sdts_own_fit():
    from sdt_core.acceleration.refilled_time_shifts import refilled_time_shift_fit

    def sdt_fit(*args, **kwargs):
        raise AssertionError("the replacement declines; the dispatcher runs SDT's fit")

    signal = np.linspace(0.0, 1.0, 40)
    for asked in ({"solver": "MOSEK"}, {"solver": "QSS"}, {"solver": "clarabel"}, {"return_all": True},
                  {"verbose": True}, {"sum_card": True}, {"transition_locs": np.array([10])},
                  {"w1": np.float32(2.0)}, {"w1": float("nan")}):  # fmt: skip
        assert refilled_time_shift_fit(sdt_fit, signal, **({"w1": 2.0} | asked)) is NOT_APPLICABLE, asked
    assert refilled_time_shift_fit(sdt_fit, signal.astype(np.float32), w1=2.0) is NOT_APPLICABLE
