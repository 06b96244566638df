"""The day matrices' column reductions done at once: numpy's and scipy's own results, bit for bit.

Every call SDT's pipeline makes to the two replaced names on SDT's real sample files and on
synthetic systems is recorded and replayed both ways; the results must be identical (type,
dtype, shape and every value's bits), and so must those of generated matrices.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sdt_core import acceleration
from sdt_core.acceleration import key_mode
from sdt_core.acceleration.column_reductions import column_modes, nanfree_quantile
from sdt_core.acceleration.swap import NOT_APPLICABLE, _View
from sdt_core.dataplugs.frames import power_frame
from sdt_core.dataplugs.sample import SampleData
from tests.solver_handovers import pipeline_run_through

QUANTILE, MODES = "capacity-metric-quantile", "linearity-column-modes"
SYSTEMS = [("TAEFC1044741", []), ("ZT162185000441C1203", []), ("synthetic-000", [365]), ("synthetic-001", [120])]


def by_name(name: str):
    return next(s for s in acceleration.SUBSTITUTIONS if s.name == name)


def identical(fast, exact) -> bool:
    """The same type, and arrays of the same dtype, shape and bits (NaNs included)."""
    if type(fast) is not type(exact):
        return False
    if isinstance(exact, tuple):
        return all(identical(f, e) for f, e in zip(fast, exact, strict=True))
    fast, exact = np.asarray(fast), np.asarray(exact)
    return fast.dtype == exact.dtype and fast.shape == exact.shape and fast.tobytes() == exact.tobytes()


def pipeline_calls(key: str, lengths: list[int]) -> dict[str, list[tuple]]:
    """The arguments of each call SDT's pipeline on `key` makes to the two replaced names."""
    from solardatatools import data_quality
    from solardatatools.algorithms import capacity_change

    frame = power_frame(SampleData(systems=2, lengths=lengths).get_data((key,)))
    calls: dict[str, list[tuple]] = {QUANTILE: [], MODES: []}
    own_mode = data_quality.mode

    def quantile(a, *args, **kwargs):
        calls[QUANTILE].append((a.copy(), args, kwargs))
        return np.nanquantile(a, *args, **kwargs)

    def mode(a, *args, **kwargs):
        calls[MODES].append((a.copy(), args, kwargs))
        return own_mode(a, *args, **kwargs)

    pipeline_run_through(frame, capacity_change, "np", _View(np, {"nanquantile": quantile}))
    pipeline_run_through(frame, data_quality, "mode", mode)
    return calls


@pytest.mark.parametrize(("key", "lengths"), SYSTEMS)
def test_the_pipelines_calls_give_numpys_and_scipys_own_results_bit_for_bit(key, lengths):
    from scipy.stats import mode
    from solardatatools import data_quality
    from solardatatools.algorithms import capacity_change

    calls = pipeline_calls(key, lengths)
    assert [len(calls[QUANTILE]), len(calls[MODES])] == [1, 1]
    acceleration.install((by_name(QUANTILE), by_name(MODES)))
    replaced = {QUANTILE: capacity_change.np.nanquantile, MODES: data_quality.mode}
    for name, original in ((QUANTILE, np.nanquantile), (MODES, mode)):
        assert replaced[name].__sdt_substitution__ == name
        for a, args, kwargs in calls[name]:
            results = {}
            for fast in (False, True):
                with key_mode(fast, (by_name(name),)) as used, warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    results[fast] = replaced[name](a.copy(), *args, **kwargs)
                assert used.used == ({name} if fast else set()), (name, fast)
            assert identical(results[True], results[False]), name
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert identical(results[False], original(a, *args, **kwargs))  # the exact run is SDT's own


def columns(draw, nan: bool) -> np.ndarray:
    """A float matrix of few distinct values (so modes tie), NaNs in some places when `nan`."""
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12))
    values = st.sampled_from([0.0, 1.0, -1.0, 0.5, 1 / 3, 1e-4, np.inf, -np.inf, 2.5e10])
    a = draw(hnp.arrays(np.float64, shape, elements=values))
    if nan:
        a[draw(hnp.arrays(np.bool_, shape))] = np.nan
    return a


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_modes_of_generated_matrices_are_scipys_bit_for_bit(data):
    from scipy.stats import mode

    a = columns(data.draw, nan=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = mode(a, axis=0, nan_policy="omit", keepdims=True)
        fast = column_modes(mode, a, axis=0, nan_policy="omit", keepdims=True)
    if not np.isnan(a).any():
        assert fast is NOT_APPLICABLE  # scipy's own call is vectorised then
    else:
        assert identical(fast, exact)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from([0.0, 0.05, 0.5, 0.95, 1.0, 0.3]))
def test_quantiles_of_generated_matrices_are_numpys_bit_for_bit(data, q):
    a = columns(data.draw, nan=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert identical(nanfree_quantile(np.nanquantile, a, q=q, axis=0), np.nanquantile(a, q=q, axis=0))


def test_a_day_without_values_gets_scipys_own_answer_and_warning():
    from scipy.stats import mode

    a = np.array([[1.0, np.nan, np.nan], [1.0, 2.0, np.nan], [3.0, 2.0, np.nan]])
    with pytest.warns(RuntimeWarning, match="too small") as exact_warnings:
        exact = mode(a, axis=0, nan_policy="omit", keepdims=True)
    with pytest.warns(RuntimeWarning, match="too small") as fast_warnings:
        fast = column_modes(mode, a, axis=0, nan_policy="omit", keepdims=True)
    assert identical(fast, exact) and exact.count.dtype == np.float64
    assert [str(w.message) for w in fast_warnings] == [str(w.message) for w in exact_warnings]


def test_other_calls_and_negative_zeros_run_the_originals():
    from scipy.stats import mode

    def original(*args, **kwargs):
        raise AssertionError("the replacement declines; the dispatcher runs the original")

    a = np.array([[1.0, np.nan], [-0.0, 2.0], [0.0, 2.0]])
    full = np.nan_to_num(a)
    for args, kwargs in (
        ((a,), {"axis": 0, "nan_policy": "omit", "keepdims": True}),  # -0.0 with 0.0: sort order could pick either
        ((np.abs(a),), {"axis": 1, "nan_policy": "omit", "keepdims": True}),
        ((np.abs(a),), {"axis": 0, "nan_policy": "propagate", "keepdims": True}),
        ((np.abs(a),), {"axis": 0, "nan_policy": "omit", "keepdims": False}),
        ((np.abs(a).astype(np.float32),), {"axis": 0, "nan_policy": "omit", "keepdims": True}),
        ((np.abs(full),), {"axis": 0, "nan_policy": "omit", "keepdims": True}),  # no NaNs: scipy's call is vectorised
    ):
        assert column_modes(original, *args, **kwargs) is NOT_APPLICABLE, (args, kwargs)
    for args, kwargs in (
        ((np.abs(a),), {"q": 1.0, "axis": 0}),  # NaNs
        ((full,), {"q": 1.0, "axis": 0}),  # -0.0
        ((np.abs(full),), {"q": 1.0, "axis": 1}),
        ((np.abs(full),), {"q": [0.5, 1.0], "axis": 0}),
        ((np.abs(full),), {"q": 1.0, "axis": 0, "method": "nearest"}),
        ((np.abs(full)[0],), {"q": 1.0, "axis": 0}),
    ):
        assert nanfree_quantile(original, *args, **kwargs) is NOT_APPLICABLE, (args, kwargs)
    assert mode(np.abs(full), axis=0, keepdims=True).count.dtype == np.int64  # why NaN-free calls are left alone
