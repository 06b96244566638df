"""What a finished run measured per key, and what that predicts for another cluster (`sdt plan --results`).

A run's rows carry each key's days of data, its time (`total_s`) and its worker's peak memory
(`peak_memory_mb`). From them: seconds of one worker thread per system-year of data, and the
largest peak of a key. A plan's workers and price then give the hours and the cost of a
number of system-years, assuming its cores are as fast as the ones that ran the keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdt_core.errors import SdtError
from sdt_core.output.results import LOG, RUN

if TYPE_CHECKING:
    from sdt_core.plugs.plan import ClusterPlan
    from sdt_core.plugs.settings import Settings


@dataclass(frozen=True)
class Measured:
    """Per-key cost measured by one run's ok rows."""

    folder: Path
    mode: str  # "fast" or "exact"
    keys: int
    system_years: float
    thread_seconds: float  # sum of the keys' times
    peak_memory_gb: float  # the largest peak of a worker while one key ran

    @property
    def seconds_per_system_year(self) -> float:
        return self.thread_seconds / self.system_years

    @property
    def system_years_per_core_hour(self) -> float:
        return 3600 / self.seconds_per_system_year

    @classmethod
    def from_results(cls, folder: str | Path) -> Measured:
        """The figures of the run in `folder`; SdtError (one line) when it has none."""
        folder = Path(folder)
        try:
            mode = json.loads((folder / RUN).read_text()).get("sdt_mode", "exact")
            rows = [json.loads(line) for line in (folder / LOG).read_text().splitlines() if line.strip()]
        except (OSError, json.JSONDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "unreadable"
            raise SdtError(
                f"no run results in {folder} ({why}); give the --out folder of a finished `sdt run`"
            ) from exc
        timed = [r for r in rows if r.get("status") == "ok" and r.get("days") and r.get("total_s")]
        if not timed:
            raise SdtError(f"{folder} has no finished key with its days and time; run `sdt run --out {folder}` first")
        return cls(
            folder=folder,
            mode=mode,
            keys=len(timed),
            system_years=sum(float(r["days"]) for r in timed) / 365,
            thread_seconds=sum(float(r["total_s"]) for r in timed),
            peak_memory_gb=max(float(r.get("peak_memory_mb") or 0) for r in timed) / 1024,
        )

    def lines(self, plan: ClusterPlan, settings: Settings, system_years: float) -> list[str]:
        """What `sdt plan --results` adds: time and cost of `system_years` on `plan`, memory check."""
        workers = next((m for m in plan.machines if m.role == "workers"), None)
        out = [
            f"Measured in {self.folder} ({self.keys} keys, SDT {self.mode}): "
            f"{self.seconds_per_system_year:.1f} s of one thread per system-year "
            f"({self.system_years_per_core_hour:,.0f} system-years per core-hour), "
            f"peak {self.peak_memory_gb:.2f} GB per worker while a key ran"
        ]
        if workers is None:
            return out
        threads = workers.count * settings.threads
        hours = system_years * self.seconds_per_system_year / 3600 / threads
        cost = plan.cost_per_hour
        price = f", ~{hours * cost:,.2f} {plan.prices.currency}" if cost is not None and plan.prices else ""
        out.append(
            f"  {system_years:,.0f} system-years on {workers.count} workers x {settings.threads} threads: "
            f"~{hours:,.2f} h{price} (if its cores are as fast as the ones measured)"
        )
        need = settings.threads * self.peak_memory_gb
        if need > 0.7 * workers.memory_gib:
            out.append(
                f"  Warning: {settings.threads} keys at once need ~{need:.1f} GB per worker, over 70% of its "
                f"{workers.memory_gib:g} GiB (Dask's spill threshold): give more memory or fewer threads"
            )
        return out


def describe(measured: Measured) -> dict[str, Any]:
    """The figures as plain JSON values."""
    return {
        "folder": str(measured.folder),
        "mode": measured.mode,
        "keys": measured.keys,
        "system_years": round(measured.system_years, 3),
        "seconds_per_system_year": round(measured.seconds_per_system_year, 3),
        "system_years_per_core_hour": round(measured.system_years_per_core_hour, 1),
        "peak_memory_gb": round(measured.peak_memory_gb, 3),
    }
