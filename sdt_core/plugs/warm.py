"""Warm workers: what a key of SDT's pipeline imports, imported before a worker's first key.

`import solardatatools` alone takes 3-4 s; without a warm-up every worker's first key paid it
(and cvxpy's and pandas's) in its load or analysis stage. The local plug's forkserver imports
`modules()` once, so every worker it forks starts warm; on every other cluster sdt-core
starts, the worker plugin `sdt_core.plugs.warmup.WarmUp` imports them when a worker starts,
before it takes keys. Dask config `sdt.warm-workers` says when: `auto` (the default) warms
the workers of a run of SDT's own analysis and of a cluster whose analysis is not known
(`sdt up`), not those of a run of another `--analysis`; `true` and `false` force it.

Importing this module imports neither Dask nor SDT.
"""

from __future__ import annotations

import importlib

#: Dask config: import what keys need in each worker before its first key: true, false, or
#: `AUTO` (the default), true unless a run says its analysis is not SDT's (`for_run`).
WARM_CONFIG = "sdt.warm-workers"
AUTO = "auto"

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
    """Whether the workers of a cluster started now are warmed up (dask config
    `sdt.warm-workers`: true, false, or auto, the default, which is true here)."""
    return warm_setting() in (True, AUTO)


def warm_setting() -> bool | str:
    """Dask config `sdt.warm-workers`: True, False or `AUTO`; anything else is one line (`SdtError`)."""
    import dask.config

    from sdt_core.errors import SdtError

    value = dask.config.get(WARM_CONFIG, default=AUTO)
    text = str(value).strip().lower() if isinstance(value, (bool, str)) else None
    if text not in ("true", "false", AUTO):
        raise SdtError(f"dask config {WARM_CONFIG} is {value!r}; set it to true, false or {AUTO}")
    return AUTO if text == AUTO else text == "true"


def for_run(sdt_analysis: bool) -> dict[str, bool]:
    """The dask config a run holds while its cluster starts: `sdt.warm-workers` decided for a
    run whose analysis is SDT's own (`sdt_analysis`) or another (`auto` warms only the first)."""
    setting = warm_setting()
    return {WARM_CONFIG: sdt_analysis if setting == AUTO else bool(setting)}


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
