"""Column by column reductions of SDT's day matrices, done for all columns at once.

numpy's `nanquantile(a, q, axis=0)` and scipy's `mode(a, axis=0, nan_policy="omit")` reduce
each column of a matrix on its own, in a Python loop (`apply_along_axis`): ~365 small calls
a system-year. Here every column is reduced at once, with the same values:

- `nanquantile` of a matrix without NaNs is numpy's `quantile` of each column, which numpy
  computes for all columns at once with the same arithmetic (the same two order statistics
  of each column, the same interpolation, element by element).
- `mode` omitting NaNs is, per column, the most frequent of its values and, among those, the
  smallest, with how often it occurs; scipy returns both as floats when it loops (the loop
  joins each column's value and count in one float array). Here the columns are sorted once
  and their runs of equal values counted; a column without values gets what scipy's own
  `mode` gives it (NaN, 0, and scipy's warning).

Both decline (SDT's own call runs) for anything else, and for a matrix holding -0.0: equal
values are then identical bit for bit, so the order in which a column is sorted or
partitioned cannot change which of them is returned.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sdt_core.acceleration.swap import NOT_APPLICABLE

#: The scipy versions whose `mode(..., nan_policy="omit")` returns floats for a matrix with NaNs.
SCIPY_PROVEN_ON = ("1.17.1",)


def nanfree_quantile(original: Callable[..., Any], a: Any, q: Any, axis: Any = None, **kwargs: Any) -> Any:
    """numpy's `nanquantile(a, q, axis=0)` of a float matrix without NaNs: `quantile(a, q, axis=0)`."""
    import numpy as np

    if kwargs or axis != 0 or type(q) not in (float, np.float64) or not _plain_matrix(a) or np.isnan(a).any():
        return NOT_APPLICABLE
    return np.quantile(a, q, axis=0)


def column_modes(
    original: Callable[..., Any], a: Any, axis: Any = 0, nan_policy: str = "propagate", keepdims: bool = False
) -> Any:
    """scipy's `mode(a, axis=0, nan_policy="omit", keepdims=True)` of a float matrix with NaNs."""
    import numpy as np

    if axis != 0 or nan_policy != "omit" or keepdims is not True or not _scipy_proven() or not _plain_matrix(a):
        return NOT_APPLICABLE
    valid = ~np.isnan(a)
    if valid.all() or a.shape[0] == 0:
        return NOT_APPLICABLE  # scipy's own call reduces all columns at once
    ordered = np.sort(a, axis=0).T  # a row per column, its NaNs last
    kept = ~np.isnan(ordered)
    rows, length = ordered.shape
    # a run of equal values starts at a column's first value and wherever the value changes
    starts = kept.copy()
    starts[:, 1:] &= ordered[:, 1:] != ordered[:, :-1]
    # a run ends where the next one starts, at the column's first NaN, or at the column's end
    boundaries = np.flatnonzero(starts | ~kept)
    lengths = np.diff(boundaries, append=rows * length)
    counts = np.zeros(rows * length, dtype=np.int64)
    counts[boundaries] = np.where(starts.ravel()[boundaries], lengths, 0)
    counts = counts.reshape(rows, length)
    first_most = np.argmax(counts, axis=1)  # the first longest run: the smallest most frequent value
    found = np.arange(rows)
    modes = ordered[found, first_most]
    most = counts[found, first_most].astype(np.float64)
    empty = ~kept[:, 0]
    if empty.any():
        own = original(a[:, np.flatnonzero(empty)[:1]], axis=0, nan_policy="omit", keepdims=True)
        modes[empty], most[empty] = own.mode[0, 0], own.count[0, 0]
    return _result_type(original)(mode=modes[np.newaxis, :], count=most[np.newaxis, :])


def _plain_matrix(a: Any) -> bool:
    """Whether `a` is a float64 matrix without -0.0."""
    import numpy as np

    return isinstance(a, np.ndarray) and a.dtype == np.float64 and a.ndim == 2 and not (np.signbit(a) & (a == 0)).any()


@functools.cache
def _scipy_proven() -> bool:
    from importlib.metadata import version

    return version("scipy") in SCIPY_PROVEN_ON


@functools.cache
def _result_type(original: Callable[..., Any]) -> Any:
    """The type of scipy's `mode` result (ModeResult), without naming a private module."""
    import numpy as np

    return type(original(np.zeros((1, 1)), axis=0, keepdims=True))
