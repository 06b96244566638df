"""Warm workers: what a key of SDT's pipeline imports, imported before a worker's first key.

`import solardatatools` alone takes 3-4 s; without a warm-up every worker's first key paid it
(and cvxpy's and pandas's) in its load or analysis stage. The local plug's forkserver imports
`modules()` once, so every worker it forks starts warm; on every other cluster sdt-core
starts, the worker plugin `sdt_core.plugs.warmup.WarmUp` imports them when a worker starts,
before it takes keys. Dask config `sdt.warm-workers` (default True) turns both off.

Importing this module imports neither Dask nor SDT.
"""

from __future__ import annotations

import importlib

#: Dask config: import what keys need in each worker before its first key (default True).
WARM_CONFIG = "sdt.warm-workers"

#: What a key of SDT's pipeline imports that a fresh worker has not: pandas, SDT (which
#: imports scipy, scikit-learn, matplotlib, gfosd...), cvxpy and the compiled backend it
#: loads at its first canonicalisation, and sdt-core's key path. The modules of the fast
#: path's targets and replacements are added by `modules()`. Traced from one key of a
#: worker (`sys.modules` before and after): nothing else was left to import.
KEY_MODULES = (
    "pandas",
    "solardatatools",
    "cvxpy",
    "cvxpy.cvxcore.python.cppbackend",
    "wrapt",
    "sdt_core.job.task",
    "sdt_core.dataplugs.frames",
)


def modules() -> tuple[str, ...]:
    """The modules a worker imports to be warm: `KEY_MODULES`, then those the fast path's
    substitutions swap names in and take their replacements from.

    Importing a target's module does not swap it: that happens in a fast key (`install`),
    which swaps a module imported already at once.
    """
    acceleration = importlib.import_module("sdt_core.acceleration")  # by name: the plugs sit below the fast path
    fast = [spec.partition(":")[0] for sub in acceleration.SUBSTITUTIONS for spec in (sub.target, sub.replacement)]
    return tuple(dict.fromkeys([*KEY_MODULES, *fast]))


def warm_workers() -> bool:
    """Whether workers are warmed up (dask config `sdt.warm-workers`, default True)."""
    import dask.config

    return bool(dask.config.get(WARM_CONFIG, default=True))


def warm_up() -> dict[str, str]:
    """Import `modules()` in this process; return those that failed, with their error (one line).

    A module that fails is left to the key that needs it, which then fails with the error
    in its row, where it belongs.
    """
    failed = {}
    for name in modules():
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed[name] = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    return failed
