"""The loss factor analysis without the work its bootstrap repeats.

`LossFactorAnalysis.estimate_degradation_rate` solves ~500 samples of one problem. For each
it rebuilds the soiling dictionary of sawtooth waves (the same for every sample of a
series length) and attributes the losses with Shapley values by walking all n! paths
through the 2^n subsets of the n loss factors, evaluating each subset once per path that
crosses it. Here each dictionary is built once per length and each subset evaluated once
per attribution, and the dictionary is kept in a form that is cheap to copy and scale;
every value is computed by SDT's own code, as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def cached_sawtooth_dictionary(original: Callable[..., Any], T: int) -> Any:
    """SDT's dictionary for series length `T`, built once per length; each caller gets a copy.

    SDT builds it as a LIL array, whose copy and scaling (gfosd's `Basis` negates it) loop in
    Python over its rows: tens of ms a sample. The same entries in CSR form cost microseconds,
    and gfosd turns either into the same COO blocks of the same problem.
    """
    return _sawtooth(original, int(T)).copy()


@functools.lru_cache(maxsize=8)
def _sawtooth(original: Callable[..., Any], T: int) -> Any:
    import scipy.sparse as sp

    return sp.csr_array(original(T))


def memoized_model_wrapper(original: Callable[..., Any], energy_model: Any, use_ixs: Any) -> Callable[..., Any]:
    """SDT's `model_f(**subset)`, evaluated once per subset of loss factors."""
    model_f = original(energy_model, use_ixs)
    results: dict[tuple[tuple[str, Any], ...], Any] = {}

    def memoized(**kwargs: Any) -> Any:
        subset = tuple(sorted(kwargs.items()))
        if subset not in results:
            results[subset] = model_f(**kwargs)
        return results[subset]

    return memoized


def cached_paths(original: Callable[..., Any], n: int, dtype: Any = int) -> Any:
    """SDT's array of every monotone path through the n-cube, enumerated once per `n`; a copy."""
    return _paths(original, int(n), dtype).copy()


@functools.lru_cache(maxsize=8)
def _paths(original: Callable[..., Any], n: int, dtype: Any) -> Any:
    return original(n, dtype=dtype)
