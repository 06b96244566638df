"""The seasonal quantile fit built per days in use: CLARABEL gets cvxpy's own data, bit for bit.

Every call SDT's pipeline makes to `_osd_tl1_l2d2p365` (the sunrise/sunset search's fits, the
clear day and daily score fits) on SDT's two real sample files and on synthetic systems is
replayed exactly and fast; each hand-over to CLARABEL (P, q, A, b, the cones, the settings, a
new solver) is recorded and compared, b and c to the bit, each reading back of SDT's own fits
too, and so are the fits' results, to the bit.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sdt_core import acceleration
from sdt_core.acceleration import key_mode
from sdt_core.acceleration.swap import NOT_APPLICABLE
from sdt_core.dataplugs.sample import SampleData
from tests.solver_handovers import pipeline_run_through, record_handovers, same_handover

NAME = "quantile-problem-refill"
SUB = next(s for s in acceleration.SUBSTITUTIONS if s.name == NAME)
SYSTEMS = [("TAEFC1044741", [365]), ("ZT162185000441C1203", [365]), ("synthetic-000", [365]), ("synthetic-000", [120])]


@pytest.fixture
def handovers(monkeypatch):
    """Every hand-over to CLARABEL and every solution read back, as recorded copies."""
    return record_handovers(monkeypatch)


@pytest.fixture(autouse=True)
def no_layouts_yet():
    """Each test starts without the layouts an earlier one learnt in this thread."""
    from sdt_core.acceleration.refilled_problems import thread_cache

    thread_cache("quantile").clear()
    yield
    thread_cache("quantile").clear()


def pipeline_calls(key: str, lengths: list[int]) -> list[tuple[tuple, dict]]:
    """The arguments of each seasonal quantile fit SDT's pipeline makes on `key`, copied."""
    from solardatatools import signal_decompositions

    from sdt_core.dataplugs.frames import power_frame

    frame = power_frame(SampleData(systems=1, lengths=lengths).get_data((key,)))
    calls = []
    fit = signal_decompositions._osd_tl1_l2d2p365

    def record(*args, **kwargs):
        copy = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        calls.append((tuple(a.copy() for a in args), copy))
        return fit(*args, **kwargs)

    pipeline_run_through(frame, signal_decompositions, "_osd_tl1_l2d2p365", record)
    return calls


def replay(calls: list[tuple[tuple, dict]], handovers: list, fast: bool) -> tuple[list, list[list[tuple]]]:
    """The fits of `calls` fast or exactly, and each fit's records (its solve, and its read-back if cvxpy's)."""
    from solardatatools import signal_decompositions

    handovers.clear()
    with key_mode(fast, (SUB,)) as mode:
        results = [signal_decompositions._osd_tl1_l2d2p365(*args, **kwargs) for args, kwargs in calls]
    assert mode.used == ({NAME} if fast else set())
    fits: list[list[tuple]] = []
    for record in handovers:
        if record[0] == "solve":
            fits.append([])
        fits[-1].append(record)
    return results, fits


def assert_same_handovers(fast: list[list[tuple]], exact: list[list[tuple]]) -> int:
    """Each fit's hand-over equal to SDT's (b and c to the bit), its read-back too when cvxpy's; the fits built."""
    assert len(fast) == len(exact)
    built = 0
    for i, (fast_fit, exact_fit) in enumerate(zip(fast, exact, strict=True)):
        assert len(exact_fit) == 2 and len(fast_fit) in (1, 2), i
        assert same_handover(fast_fit[0], exact_fit[0]), i
        assert fast_fit[0][2].tobytes() == exact_fit[0][2].tobytes(), i  # c, to the bit
        assert fast_fit[0][3].tobytes() == exact_fit[0][3].tobytes(), i  # b, signed zeros too
        assert not fast_fit[0][5]  # a new solver, as SDT's
        if len(fast_fit) == 2:
            assert same_handover(fast_fit[1], exact_fit[1]), i
        built += len(fast_fit) == 1
    return built


def assert_bit_for_bit(fast: list, exact: list) -> None:
    for fast_fit, exact_fit in zip(fast, exact, strict=True):
        assert fast_fit.dtype == exact_fit.dtype and fast_fit.shape == exact_fit.shape
        assert fast_fit.tobytes() == exact_fit.tobytes()


@pytest.mark.parametrize(("key", "lengths"), SYSTEMS)
def test_clarabel_gets_cvxpys_own_data_and_the_fits_are_sdts_bit_for_bit(key, lengths, handovers):
    calls = pipeline_calls(key, lengths)
    assert {kwargs["solver"] for _, kwargs in calls} == {"CLARABEL"}
    exact, exact_fits = replay(calls, handovers, fast=False)
    fast, fast_fits = replay(calls, handovers, fast=True)
    built = assert_same_handovers(fast_fits, exact_fits)
    assert_bit_for_bit(fast, exact)
    assert all(not args for args, _ in calls)  # SDT passes each argument by name
    per_data = Counter((len(kwargs["signal"]), kwargs["tau"], kwargs["w0"]) for _, kwargs in calls)
    assert built == sum(max(n - 2, 0) for n in per_data.values())  # all but the first two fits of each
    if key != "TAEFC1044741":  # its sunrise search finds too few sunrises at every threshold: no search fits
        assert built >= 38


def test_days_the_first_fits_left_out_and_signed_zeros(handovers):
    """Fits with days neither of the first two used, and zeros of both signs in the data."""
    rng = np.random.default_rng(7)
    days = np.arange(200)
    signal = 6 + np.sin(2 * np.pi * days / 365.2425) + rng.normal(0, 0.1, days.size)
    signal[[3, 50, 120]] = [0.0, -0.0, -0.0]
    signal[[10, 11]] = np.nan
    masks = [days % 3 != 0, days % 2 == 0, None, days > 100, rng.random(days.size) < 0.5]
    calls = [((signal.copy(), mask), {"tau": tau, "solver": "CLARABEL"}) for mask in masks for tau in (0.1, 0.9)]
    exact, exact_fits = replay(calls, handovers, fast=False)
    fast, fast_fits = replay(calls, handovers, fast=True)
    assert assert_same_handovers(fast_fits, exact_fits) == 6
    assert_bit_for_bit(fast, exact)


def test_a_layout_that_does_not_give_cvxpys_data_leaves_the_fits_to_sdt(monkeypatch):
    from solardatatools._osd_signal_decompositions import _osd_tl1_l2d2p365

    from sdt_core.acceleration import refilled_quantile_fits

    monkeypatch.setattr(refilled_quantile_fits, "identical", lambda a, b: False)
    signal = 6 + np.sin(np.arange(120) / 20)
    for fit in range(4):
        use = np.arange(120) % (fit + 2) != 0
        found = refilled_quantile_fits.refilled_quantile_fit(_osd_tl1_l2d2p365, signal, use, tau=0.1, solver="CLARABEL")
        assert (found is NOT_APPLICABLE) == (fit >= 2), fit


def test_other_solvers_and_requests_run_sdts_own_fit():
    from sdt_core.acceleration.refilled_quantile_fits import refilled_quantile_fit

    def sdt_fit(*args, **kwargs):
        raise AssertionError("the replacement declines; the dispatcher runs SDT's fit")

    signal = np.linspace(1.0, 2.0, 40)
    with_inf = signal.copy()
    with_inf[5] = np.inf
    for asked in ({"solver": "OSQP"}, {"solver": "QSS"}, {"solver": "clarabel"}, {"return_all": True},
                  {"verbose": True}, {"tau": float("nan")}, {"tau": np.float32(0.1)}, {"w0": "1"},
                  {"use_ixs": np.arange(40) % 2}, {"use_ixs": np.zeros(40, dtype=bool)},
                  {"use_ixs": np.ones(41, dtype=bool)}, {"signal": with_inf}, {"signal": signal.astype(np.float32)},
                  {"signal": np.full(40, np.nan)}, {"signal": list(signal)}):  # fmt: skip
        kwargs = {"signal": signal, "solver": "CLARABEL"} | asked
        assert refilled_quantile_fit(sdt_fit, **kwargs) is NOT_APPLICABLE, asked


def test_sdts_pipeline_with_the_fits_built_is_sdts_bit_for_bit():
    """The whole pipeline on a real sample file: its report, the sunrise/sunset estimates and masks, identical."""
    from solardatatools import DataHandler

    from sdt_core.dataplugs.frames import power_frame

    frame = power_frame(SampleData(systems=0).get_data(("ZT162185000441C1203",)))
    psd = next(s for s in acceleration.SUBSTITUTIONS if s.name == "psd-certified-quad-form")
    results = {}
    for fast in (True, False):
        with key_mode(True, (psd, SUB) if fast else (psd,)) as mode:
            handler = DataHandler(frame)
            handler.run_pipeline(fix_shifts=True, verbose=False)
        assert (NAME in mode.used) == fast
        daytime = handler.daytime_analysis
        results[fast] = (
            handler.report(return_values=True, verbose=False),
            daytime.sunrise_estimates,
            daytime.sunset_estimates,
            daytime.sunup_mask_estimated,
            handler.daily_flags.clear,
            handler.daily_scores.density,
        )
    fast, exact = results[True], results[False]
    assert fast[0] == exact[0]
    for fast_part, exact_part in zip(fast[1:], exact[1:], strict=True):
        assert fast_part.tobytes() == exact_part.tobytes()
