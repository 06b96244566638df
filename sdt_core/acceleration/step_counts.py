"""The time axis's sampling steps counted by numpy instead of a Python loop over every timestamp.

SDT's `standardize_time_axis` finds a system's sampling interval as the most common step
between timestamps: `Counter(steps)` of a pandas Index of int64, a Python loop over ~100,000
steps a system-year. numpy's `unique` gives the same distinct values, their first occurrences
and counts, from which the same Counter is built: each value once, as the Python int iterating
the Index gives, in the order of its first occurrence (which orders ties in `most_common`),
its count a Python int.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdt_core.acceleration.swap import NOT_APPLICABLE


def counted_steps(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`Counter(steps)` of a pandas Index of int64, counted by numpy (anything else: `Counter`'s own)."""
    import numpy as np
    import pandas as pd

    if kwargs or len(args) != 1 or type(args[0]) is not pd.Index or args[0].dtype != np.int64:
        return NOT_APPLICABLE
    steps = args[0].to_numpy()
    _, first, counts = np.unique(steps, return_index=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    return original(dict(zip(steps[first[order]].tolist(), counts[order].tolist(), strict=True)))
