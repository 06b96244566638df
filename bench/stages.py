"""Where the pipeline's time goes: SDT's stages and the solver layers under them, profiled.

`profile_pipeline(data, keys, fast)` runs SDT's pipeline on each key of `data` in this process under cProfile
(after one unprofiled warm-up key, so imports and first-call costs are left out) and splits
the time two ways: by the stages `DataHandler.run_pipeline` calls, and by layer: the
solver itself, cvxpy's problem canonicalisation, and everything else.
"""

from __future__ import annotations

import cProfile
import pstats
from typing import Any

# (file suffix, function) of the layers, cumulative time.
SOLVER = ("cvxpy/reductions/solvers/solving_chain.py", "solve_via_data")
CANONICALISATION = ("cvxpy/problems/problem.py", "get_problem_data")
PIPELINE = ("solardatatools/data_handler.py", "run_pipeline")
#: Readable names of the stages whose function name does not say it.
LABELS = {
    "run_optimizer": "sunrise/sunset estimation (SunriseSunset.run_optimizer)",
    "capacity_clustering": "capacity change (capacity_clustering)",
    "auto_fix_time_shifts": "time shifts (auto_fix_time_shifts)",
    "clipping_check": "clipping (clipping_check)",
}


def _find(stats: dict[Any, Any], where: tuple[str, str]) -> Any:
    return next((f for f in stats if f[0].endswith(where[0]) and f[2] == where[1]), None)


def profile_pipeline(data: Any, keys: list[str], fast: bool) -> dict[str, Any]:
    from sdt_core import acceleration
    from sdt_core.acceleration import key_mode
    from sdt_core.dataplugs.frames import power_frame

    substitutions = acceleration.proven() if fast else ()
    frames = [power_frame(data.get_data((key,))) for key in keys]
    profiler = cProfile.Profile()
    days = 0
    for i, frame in enumerate([frames[0], *frames]):
        with key_mode(fast, substitutions):
            from solardatatools import DataHandler

            handler = DataHandler(frame)
            if i:
                profiler.enable()
            handler.run_pipeline(fix_shifts=True, verbose=False)
            profiler.disable()
            days += int(handler.num_days) if i else 0
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    pipeline = _find(stats, PIPELINE)
    total = stats[pipeline][3]
    stages = {LABELS.get(f[2], f[2]): v[4][pipeline][3] for f, v in stats.items() if pipeline in v[4]}
    stages = {name: t for name, t in sorted(stages.items(), key=lambda kv: -kv[1]) if t >= 0.005 * total}
    solver = stats[_find(stats, SOLVER)][3]
    canonicalisation = stats[_find(stats, CANONICALISATION)][3]
    return {
        "keys": len(keys),
        "system_years": days / 365,
        "seconds_per_key": total / len(keys),
        "stages": {name: t / len(keys) for name, t in stages.items()},
        "layers": {
            "solver (CLARABEL)": solver / len(keys),
            "cvxpy canonicalisation": canonicalisation / len(keys),
            "everything else": (total - solver - canonicalisation) / len(keys),
        },
    }
