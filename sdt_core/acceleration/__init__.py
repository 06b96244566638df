"""SDT's fast path: cheaper formulations of SDT's own math, proven to give the same results.

Each `Substitution` replaces one name inside solar-data-tools (or a library it calls) with a
cheaper computation of the same mathematics, and lists the SDT versions on which it was
proven to give the same report (`tests/test_acceleration.py`, `bench/`). On any other
version it stays off.

In every process that runs keys, `install()` puts a dispatcher in each target's place. The
dispatcher runs the replacement only inside `key_mode(fast=True)`, and SDT's original
everywhere else, so one process can run keys of both modes side by side and code outside a
key is never affected. If a replacement raises, the key is marked so that the runner reruns
it exactly: a key's result never mixes the two modes.
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version

from sdt_core.acceleration.swap import FastPathFailed, KeyMode, Substitution, install, key_mode

#: The SDT versions every substitution below was proven on; a new one is added after
#: `pytest tests/test_acceleration.py tests/test_refilled_problems.py` and the benchmark's proof set
#: (`python bench/run.py --only fast_proof fast_loss`) pass on it.
PROVEN_ON = ("2.1.5",)

SUBSTITUTIONS: tuple[Substitution, ...] = (
    Substitution(
        name="psd-certified-quad-form",
        target="gfosd.problem:cvx.quad_form",
        replacement="sdt_core.acceleration.solver_checks:certified_cvxpy",
        proven_on=PROVEN_ON,
        summary="OSD problems tell cvxpy that their quadratic cost matrix is PSD when it is diagonal and "
        "nonnegative (checked on the sparse matrix) instead of cvxpy testing it on a dense copy: the "
        "clipping check's CDF fit drops from ~13 s and ~5 GB to ~0.2 s and ~20 MB, value for value.",
    ),
    Substitution(
        name="sawtooth-dictionary-cache",
        target="solardatatools.algorithms.loss_factor_analysis:make_sawtooth_dictionary",
        replacement="sdt_core.acceleration.loss_factors:cached_sawtooth_dictionary",
        proven_on=PROVEN_ON,
        summary="The loss factor analysis's soiling dictionary is built once per series length, "
        "not once per bootstrap sample, and handed over in CSR form (the same entries), which gfosd "
        "copies and scales without a Python loop over rows.",
    ),
    Substitution(
        name="shapley-memo",
        target="solardatatools.algorithms.loss_factor_analysis:model_wrapper",
        replacement="sdt_core.acceleration.loss_factors:memoized_model_wrapper",
        proven_on=PROVEN_ON,
        summary="The Shapley loss attribution evaluates each of its 2^n factor subsets once, "
        "not once per path through it (720 evaluations become 32).",
    ),
    Substitution(
        name="shapley-paths-cache",
        target="solardatatools.algorithms.loss_factor_analysis:enumerate_paths",
        replacement="sdt_core.acceleration.loss_factors:cached_paths",
        proven_on=PROVEN_ON,
        summary="The Shapley attribution's n! paths through the loss factors are enumerated once per n, "
        "not once per bootstrap sample.",
    ),
    Substitution(
        name="loss-problem-refill",
        target="solardatatools.algorithms.loss_factor_analysis:LossFactorAnalysis.make_problem",
        replacement="sdt_core.acceleration.refilled_loss_problems:refilled_loss_problem",
        proven_on=PROVEN_ON,
        summary="The loss factor analysis's problem is compiled by cvxpy once per series (3 compiles and a "
        "check instead of one a bootstrap sample): each sample hands CLARABEL cvxpy's data for the series over "
        "every day with data, with the rows of the days the sample leaves out taken away and its tau and "
        "soiling stiffness refilled where they enter (checked per series against SDT's own problem compiled "
        "by cvxpy), and reads the components back as cvxpy does. CLARABEL only.",
    ),
    Substitution(
        name="capacity-fit-memo",
        target="solardatatools.algorithms.capacity_change:l1_pwc_smoothper_trend",
        replacement="sdt_core.acceleration.repeated_fits:memoized_fit",
        proven_on=PROVEN_ON,
        summary="The capacity change check's fit for the weight it chose is the one it already made "
        "for that weight on the same data: answered from it (14 fits become 13).",
    ),
    Substitution(
        name="capacity-problem-refill",
        target="solardatatools.signal_decompositions:_cvx_l1_pwc_smoothper_trend",
        replacement="sdt_core.acceleration.refilled_problems:refilled_capacity_fit",
        proven_on=PROVEN_ON,
        summary="The capacity change check's problem is compiled by cvxpy once per data (2 compiles a key "
        "instead of 13); each weight's fit takes cvxpy's data for it, refilled where the weight enters "
        "(its objective entries, w2 times those for w2 = 1), checked against SDT's own problem compiled "
        "by cvxpy, and hands CLARABEL the same matrices, vectors and cones. CLARABEL only.",
    ),
    Substitution(
        name="time-shift-problem-refill",
        target="solardatatools.algorithms.time_shifts:l2_l1d1_l2d2p365",
        replacement="sdt_core.acceleration.refilled_time_shifts:refilled_time_shift_fit",
        proven_on=PROVEN_ON,
        summary="The time shift check's weight search compiles its problem with cvxpy twice per data instead "
        "of 11 times: the first two weights' fits are SDT's own and give where the weight enters cvxpy's "
        "data (its objective entries, w1 times those for w1 = 1), checked against both; each later weight's "
        "fit hands CLARABEL the first problem's matrices, vectors and cones with those entries refilled. "
        "CLARABEL only.",
    ),
    Substitution(
        name="capacity-metric-quantile",
        target="solardatatools.algorithms.capacity_change:np.nanquantile",
        replacement="sdt_core.acceleration.column_reductions:nanfree_quantile",
        proven_on=PROVEN_ON,
        summary="The capacity change check's daily metric (each day's quantile of the filled data matrix, "
        "which has no NaNs) is numpy's quantile of all days at once instead of its NaN-skipping quantile "
        "day by day: the same arithmetic on the same values.",
    ),
    Substitution(
        name="linearity-column-modes",
        target="solardatatools.data_quality:mode",
        replacement="sdt_core.acceleration.column_reductions:column_modes",
        proven_on=PROVEN_ON,
        summary="The linearity scores' most frequent step of each day (scipy's mode omitting NaNs, day by "
        "day) is counted for all days at once on the sorted matrix: the same values and counts, as floats "
        "as scipy returns them; a day without values gets scipy's own answer.",
    ),
    Substitution(
        name="time-axis-step-count",
        target="solardatatools.time_axis_manipulation:Counter",
        replacement="sdt_core.acceleration.step_counts:counted_steps",
        proven_on=PROVEN_ON,
        summary="The time axis's sampling steps are counted by numpy instead of a Python loop over every "
        "timestamp: the same Counter (the same keys in the same order, the same counts).",
    ),
    Substitution(
        name="quantile-problem-refill",
        target="solardatatools.signal_decompositions:_osd_tl1_l2d2p365",
        replacement="sdt_core.acceleration.refilled_quantile_fits:refilled_quantile_fit",
        proven_on=PROVEN_ON,
        summary="The seasonal quantile fit (the sunrise/sunset search's 40 fits, the clear day and daily score "
        "fits) compiled by cvxpy twice per series length, tau and thread instead of once per fit: the first "
        "two fits are SDT's own and give cvxpy's data with a row for every day (checked against both, bit "
        "for bit); each later fit keeps the rows of its days in use, puts its values in b and hands CLARABEL "
        "the same matrices, vectors and cones through cvxpy's CLARABEL interface. CLARABEL only.",
    ),
    Substitution(
        name="sunrise-fit-memo",
        target="solardatatools.algorithms.sunrise_sunset_estimation:tl1_l2d2p365",
        replacement="sdt_core.acceleration.repeated_fits:memoized_fit",
        proven_on=PROVEN_ON,
        summary="The sunrise/sunset search fits each distinct set of detected sunrises once: thresholds "
        "that detect the same ones repeat the same fit (same data, same seeded split).",
    ),
)


#: Dask config: run SDT exactly as released, without the fast path (`sdt run --exact-sdt`).
EXACT_CONFIG = "sdt.exact-sdt"


def exact_sdt() -> bool:
    """Whether runs use SDT exactly as released (dask config `sdt.exact-sdt`, default False)."""
    import dask.config

    return bool(dask.config.get(EXACT_CONFIG, default=False))


@functools.cache
def sdt_version() -> str | None:
    """The installed solar-data-tools version, or None."""
    try:
        return version("solar-data-tools")
    except PackageNotFoundError:
        return None


def proven(sdt: str | None = None) -> tuple[Substitution, ...]:
    """The substitutions proven on SDT version `sdt` (default: the installed one)."""
    sdt = sdt_version() if sdt is None else sdt
    return tuple(s for s in SUBSTITUTIONS if sdt in s.proven_on)


def unproven_reason(sdt: str | None = None) -> str | None:
    """One line saying why the fast path is off on SDT version `sdt`, or None when it is on."""
    sdt = sdt_version() if sdt is None else sdt
    if proven(sdt):
        return None
    versions = ", ".join(sorted({v for s in SUBSTITUTIONS for v in s.proven_on}))
    return (
        f"fast path off: solar-data-tools {sdt or '(not installed)'} is not a version it was proven on "
        f"({versions}); SDT runs exactly as released"
    )


__all__ = [
    "EXACT_CONFIG",
    "PROVEN_ON",
    "SUBSTITUTIONS",
    "FastPathFailed",
    "KeyMode",
    "Substitution",
    "exact_sdt",
    "install",
    "key_mode",
    "proven",
    "sdt_version",
    "unproven_reason",
]
