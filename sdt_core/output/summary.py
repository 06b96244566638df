"""What a run did and where its results are: `RunSummary`, and its closing lines on stderr."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunSummary:
    """What a run did and where its results are."""

    out: Path
    keys: int
    ok: int
    failed: int
    earlier: int  # keys done by an earlier run of the same folder (--resume)
    seconds: float
    summary_csv: Path
    summary_parquet: Path
    report: Path | None
    mode: str = "exact"  # "fast": SDT's fast path (sdt_core.acceleration); "exact": SDT as released
    fleet_report: Path | None = None  # OUT/report.html (sdt_core.output.report); None: not asked for, or it failed
    error_kinds: tuple[tuple[str, int], ...] = ()  # ("ValueError in analysis", keys), most common first
    run_log: Path | None = None  # this run's warnings and log records (sdt_core.output.run_log)
    log_records: int = 0  # how many it wrote there
    logs: tuple[Path, ...] = ()  # the scheduler's and workers' logs it saved (sdt_core.output.cluster_logs)
    cluster: str = ""  # who owns the cluster: started by the plug (closed) or attached to (left running)
    dry_run: bool = False  # `run(dry_run=True)`: inputs checked, keys counted, nothing started or written
    cost_usd: float | None = None  # the keys' worker time at the plan's prices; None: the plug has none
    not_started: int = 0  # keys --max-cost kept from starting (rows of stage `budget`)
    max_cost: float | None = None  # the run's --max-cost, USD


def budget_line(summary: RunSummary) -> str:
    """The closing line of a run --max-cost stopped."""
    return (
        f"sdt: budget reached: the keys cost {summary.cost_usd:.4f} USD of --max-cost {summary.max_cost:g}, "
        "and the next would pass it; "
        f"{summary.not_started} keys not started; --resume with a higher --max-cost goes on"
    )


def summary_lines(summary: RunSummary) -> list[str]:
    """Counts by status, the top error kinds, and where the results, report and logs are."""
    earlier = f" ({summary.earlier} done by an earlier run)" if summary.earlier else ""
    lines = [f"{summary.keys} keys: {summary.ok} ok, {summary.failed} failed{earlier} in {summary.seconds} s"]
    if summary.error_kinds:
        kinds = "; ".join(f"{n} x {kind}" for kind, n in summary.error_kinds[:3])
        more = f"; {len(summary.error_kinds) - 3} more kinds" if len(summary.error_kinds) > 3 else ""
        lines.append(f"Errors: {kinds}{more}")
    if summary.cost_usd is not None:
        budget = f" (--max-cost {summary.max_cost:g})" if summary.max_cost is not None else ""
        lines.append(f"Cost: {summary.cost_usd:.4f} USD of worker time at the plan's prices{budget}")
    if summary.cluster:
        lines.append(summary.cluster)
    lines.append(f"Summary: {summary.summary_csv} and {summary.summary_parquet}")
    if summary.fleet_report:
        lines.append(f"Fleet report: {summary.fleet_report}")
    if summary.report:
        lines.append(f"Dask report: {summary.report}")
    if summary.logs:
        lines.append(f"Logs: {summary.logs[0].parent}/ ({_logs_text(summary.logs)})")
    if summary.run_log is not None:
        lines.append(f"{summary.log_records} warnings and log records in {summary.run_log}")
    return lines


def _logs_text(logs: Iterable[Path]) -> str:
    names = [path.name for path in logs]
    workers = sum(name.startswith("worker-") for name in names)
    parts = (["scheduler"] if "scheduler.log" in names else []) + [f"{workers} worker{'s' * (workers != 1)}"]
    return " and ".join(parts)


def error_kinds(rows: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, int], ...]:
    """The error rows' kinds, most common first: "ValueError in analysis"."""
    kinds = collections.Counter(
        f"{str(row.get('error') or 'error').split(':', 1)[0]} in {row.get('stage')}"
        for row in rows
        if row.get("status") == "error"
    )
    return tuple(kinds.most_common())
