"""The loss factor analysis's problem compiled once per series: CLARABEL gets cvxpy's own data.

The bootstrap of `estimate_degradation_rate` runs fast and as SDT's own (its problems compiled
by cvxpy, only the PSD certificate on) from the same random state, on the real 490-day sample
file and on a synthetic series with capacity changes and outages; each hand-over to CLARABEL
(P, q, A, b entry for entry, the cones, the settings, a new solver) is recorded and compared,
and so are every sample's result, the decomposition and the report.
"""

from __future__ import annotations

import numpy as np
import pytest

from sdt_core import acceleration
from sdt_core.acceleration import key_mode
from sdt_core.acceleration.swap import NOT_APPLICABLE
from tests.solver_handovers import record_handovers, same_handover

NAME = "loss-problem-refill"
SUB = next(s for s in acceleration.SUBSTITUTIONS if s.name == NAME)
PSD = next(s for s in acceleration.SUBSTITUTIONS if s.name == "psd-certified-quad-form")


@pytest.fixture(scope="module")
def sample_file_inputs():
    """The loss analysis's inputs from SDT's pipeline on the 490-day sample file (run on the fast path)."""
    from solardatatools import DataHandler

    from sdt_core.dataplugs.frames import power_frame
    from sdt_core.dataplugs.sample import SampleData

    handler = DataHandler(power_frame(SampleData(systems=1).get_data(("TAEFC1044741",))))
    with key_mode(True, acceleration.proven()):
        handler.run_pipeline(fix_shifts=True, verbose=False)
    assert handler.num_days > 365
    return handler.daily_signals.energy, handler.capacity_analysis.labels, ~handler.daily_flags.no_errors


def synthetic_inputs():
    """A 420-day series with two capacity levels, days without data and outages."""
    rng = np.random.default_rng(3)
    days = 420
    energy = 30 * (1 + 0.2 * np.sin(np.arange(days) * 2 * np.pi / 365)) * rng.uniform(0.6, 1.0, days)
    labels = (np.arange(days) >= 250).astype(int)
    energy[labels == 1] *= 0.8
    energy[rng.choice(days, 30, replace=False)] = 0.0
    outages = np.zeros(days, dtype=bool)
    outages[rng.choice(days, 15, replace=False)] = True
    return energy, labels, outages


def bootstrap(inputs, substitutions, handovers):
    """SDT's loss analysis of `inputs` (its bootstrap cut to its least, 20 samples): the mode,
    what it handed CLARABEL, and the analysis."""
    from solardatatools.algorithms.loss_factor_analysis import LossFactorAnalysis

    energy, labels, outages = inputs
    handovers.clear()
    np.random.seed(22)
    with key_mode(True, substitutions) as mode:
        analysis = LossFactorAnalysis(energy, capacity_change_labels=labels, outage_flags=outages, tau=0.9,
                                      num_harmonics=4, deg_type="linear", include_soiling=True,
                                      weight_seasonal=10e-2, weight_soiling_stiffness=5e-1,
                                      weight_soiling_sparsity=2e-2, weight_deg_nonlinear=10e4, deg_rate=None,
                                      use_capacity_change_labels=True)  # fmt: skip
        analysis.estimate_degradation_rate(max_samples=1)
        analysis.estimate_losses()
    solves = [h for h in handovers if h[0] == "solve"]
    return mode, solves, analysis


@pytest.mark.parametrize("which", ["TAEFC1044741", "synthetic"])
def test_clarabel_gets_cvxpys_own_data_and_the_analysis_is_sdts_bit_for_bit(which, sample_file_inputs, monkeypatch):
    inputs = sample_file_inputs if which == "TAEFC1044741" else synthetic_inputs()
    handovers = record_handovers(monkeypatch)
    fast_mode, fast, fast_analysis = bootstrap(inputs, (PSD, SUB), handovers)
    own_mode, own, own_analysis = bootstrap(inputs, (PSD,), handovers)
    assert fast_mode.used == {PSD.name, NAME} and own_mode.used == {PSD.name}
    samples = own_analysis.MC_results["samples"]
    assert len(samples) == 20 and samples["tau"].nunique() == 20  # each sample its own tau, w and days
    assert len(fast) == len(own) == 21  # the 20 samples, then the analysis with the rate they found
    for i, (f, o) in enumerate(zip(fast, own, strict=True)):
        assert same_handover(f, o), i
    assert len({h[3].tobytes() for h in own[:-1]}) == 20  # the samples' rows differ
    assert not any(h[5] for h in fast)  # a new solver each time, as SDT's
    assert fast_analysis.MC_results["samples"].equals(samples)
    assert fast_analysis.MC_results["running stats"].equals(own_analysis.MC_results["running stats"])
    assert fast_analysis.report() == own_analysis.report()
    assert np.array_equal(fast_analysis.problem.decomposition, own_analysis.problem.decomposition)


def test_each_sample_decomposes_as_sdts_gfosd_problem_with_its_objective(sample_file_inputs):
    from solardatatools.algorithms.loss_factor_analysis import LossFactorAnalysis

    energy, labels, outages = sample_file_inputs
    analysis = LossFactorAnalysis(energy, capacity_change_labels=labels, outage_flags=outages)
    rng = np.random.default_rng(5)
    problems = {}
    for tau, weight in ((0.87, 0.4), (0.93, 0.9)):
        analysis.use_ixs = np.logical_and(~np.isclose(energy, 0, atol=1e-1), rng.uniform(size=len(energy)) > 0.2)
        for fast in (True, False):
            with key_mode(fast, (PSD, SUB)):
                problems[fast] = analysis.make_problem(tau=tau, weight_soiling_stiffness=weight)
                problems[fast].decompose(solver="CLARABEL", verbose=False)
        fast_problem, own = problems[True], problems[False]
        assert type(fast_problem).__name__ == "RefilledLossProblem" and type(own).__name__ == "Problem"
        assert np.array_equal(fast_problem.decomposition, own.decomposition)
        assert fast_problem.objective_value == own.objective_value
        assert np.array_equal(fast_problem._qss_soln, own._qss_soln)
        # anything else is SDT's own problem for the sample, with this solution
        assert np.array_equal(fast_problem.mask.use_set, own.mask.use_set)
        assert np.array_equal(fast_problem.decomposition, fast_problem._gfosd().decomposition)


def test_other_requests_are_sdts_own(sample_file_inputs, monkeypatch):
    from solardatatools.algorithms.loss_factor_analysis import LossFactorAnalysis

    from sdt_core.acceleration import refilled_loss_problems as refilled

    energy, labels, outages = sample_file_inputs
    analysis = LossFactorAnalysis(energy, capacity_change_labels=labels, outage_flags=outages)

    def sdt_make_problem(*args, **kwargs):
        raise AssertionError("the replacement declines; the dispatcher runs SDT's make_problem")

    make = refilled.refilled_loss_problem
    for asked in ({"deg_rate": 1.0}, {"tau": np.float32(0.9)}, {"weight_soiling_stiffness": float("nan")}, {"tau": 1}):
        assert make(sdt_make_problem, analysis, **asked) is NOT_APPLICABLE, asked
    analysis.MC_results = {}  # after the bootstrap SDT fixes the degradation rate it found
    assert make(sdt_make_problem, analysis) is NOT_APPLICABLE
    analysis.MC_results = None
    # another solver's settings: SDT's gfosd problem solves it
    with key_mode(True, (PSD, SUB)):
        problem = analysis.make_problem(tau=0.9)
        problem.decompose(solver="CLARABEL", verbose=False, tol_gap_rel=1e-7)
    assert problem._problem is not None and problem.decomposition is problem._problem.decomposition
    # a series whose refill is not cvxpy's own data is left to SDT, compiled once
    monkeypatch.setattr(refilled, "same_data", lambda a, b: False)
    compiles = []
    monkeypatch.setattr(refilled, "compiled", lambda p, *a: compiles.append(p) or refilled_problems_compiled(p, *a))
    analysis = LossFactorAnalysis(energy[:400], capacity_change_labels=labels[:400], outage_flags=outages[:400])
    with key_mode(True, (PSD, SUB)) as mode:
        for tau in (0.86, 0.88, 0.9):
            assert type(analysis.make_problem(tau=tau)).__name__ == "Problem"
    assert mode.used == {PSD.name} and len(compiles) == 4  # 3 for the series, 1 its check


def refilled_problems_compiled(problem, *args):
    from sdt_core.acceleration.refilled_problems import compiled

    return compiled(problem, *args)
