"""cvxpy's convexity check of OSD problems, done on the sparse matrix instead of a dense copy.

gfosd states every OSD problem as `0.5 * quad_form(x, P)` plus constraints, with `P` a sparse
block-diagonal matrix of the components' nonnegative weights. Before it accepts `quad_form`,
cvxpy also tests whether `P` is negative semidefinite, and for a sparse matrix that test
compares a dense copy of it with its diagonal: n^2 values. That is nearly all of the clipping
check's cost (n ~ 25,000: ~11 s and ~5 GB, for a solve of ~0.1 s) and a third of the loss
factor analysis's (~70 ms, ~500 times). When `P` is diagonal with nonnegative entries, checked
here on the sparse matrix, it is PSD, and `psd_wrap` tells cvxpy so. The problem handed to the
solver is the same, value for value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdt_core.acceleration.swap import NOT_APPLICABLE


def certified_cvxpy(original: Callable[..., Any], x: Any, P: Any, *args: Any, **kwargs: Any) -> Any:
    """cvxpy's `quad_form(x, P)`, with `P` marked PSD when it is a nonnegative diagonal matrix."""
    if not _nonnegative_diagonal(P):
        return NOT_APPLICABLE
    import cvxpy

    return original(x, cvxpy.psd_wrap(P), *args, **kwargs)


def _nonnegative_diagonal(P: Any) -> bool:
    import numpy as np
    import scipy.sparse as sp

    if not sp.issparse(P) or P.shape[0] != P.shape[1]:
        return False
    coo = P.tocoo()
    off_diagonal = coo.row != coo.col
    return not np.any(coo.data[off_diagonal]) and bool(np.all(coo.data[~off_diagonal] >= 0))
