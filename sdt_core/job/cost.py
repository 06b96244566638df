"""What a run spends (`cost_usd` per row, the total in run.json) and its budget (`--max-cost`).

A key's cost is the worker time it took at the price of its worker in the plug's plan (spot
or on-demand, as planned): its seconds, divided by the threads of a worker (a key holds one
thread), times the worker's price per second. Only plugs whose plan has prices can say it.

The budget is kept before it is spent: a key starts only when what the keys done cost, plus
what the keys in flight and it are expected to cost (each the mean cost of a key done so
far), stays within `--max-cost`. Until a first key is done, one key per worker thread starts,
to learn what a key costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdt_core.errors import SdtError
from sdt_core.output.results import BUDGET_STAGE

if TYPE_CHECKING:
    from sdt_core.plugs.clientplug import ClientPlug
    from sdt_core.plugs.plan import ClusterPlan

#: `sdt run`'s exit status when --max-cost stopped it (keys not started; the rest recorded).
EXIT_BUDGET = 3


@dataclass
class Ledger:
    """The run's spend: each row charged as it is recorded, against `max_cost` if given."""

    worker_per_hour: float  # USD, one worker as planned (spot or on-demand)
    threads: int  # threads per worker: a key holds one
    cluster_per_hour: float  # USD, the whole planned cluster with its scheduler
    max_cost: float | None = None
    spent: float = 0.0  # USD, the keys recorded so far
    charged: int = 0  # keys recorded with worker time, whose mean cost predicts the next ones'

    def charge(self, row: dict[str, Any]) -> dict[str, Any]:
        """`row` with its `cost_usd`, added to what the run spent."""
        seconds = row.get("total_s")
        cost = float(seconds) * self.worker_per_hour / 3600 / self.threads if seconds else 0.0
        self.spent += cost
        self.charged += bool(seconds)
        return row | {"cost_usd": round(cost, 8)}

    def room(self, in_flight: int, threads: int) -> int | None:
        """How many more keys may start while `in_flight` run on `threads` worker threads
        without the expected spend passing `max_cost`; None without a budget."""
        if self.max_cost is None:
            return None
        if not self.charged:  # no key's cost known yet: one per thread, to learn it
            return max(0, threads - in_flight) if self.spent < self.max_cost else 0
        per_key = self.spent / self.charged
        affordable = math.floor((self.max_cost - self.spent) / per_key + 1e-9) if per_key > 0 else threads + in_flight
        return max(0, affordable - in_flight)

    def record(self, held_s: float) -> dict[str, Any]:
        """What run.json keeps: the keys' cost, and the planned cluster's for the `held_s` it was up."""
        return {
            "keys_usd": round(self.spent, 6),
            "cluster_usd": round(self.cluster_per_hour * held_s / 3600, 6),
            "worker_usd_per_hour": self.worker_per_hour,
            "cluster_usd_per_hour": self.cluster_per_hour,
            "max_cost_usd": self.max_cost,
        }

    def not_started(self, key: tuple[Any, ...]) -> dict[str, Any]:
        """The row of a key the budget kept from starting."""
        error = f"not started: the run spent {self.spent:.4f} USD, --max-cost is {self.max_cost:g} USD"
        return {"key": list(key), "status": "error", "stage": BUDGET_STAGE, "error": error, "cost_usd": 0.0}


def check_max_cost(max_cost: float | None) -> float | None:
    if max_cost is None:
        return None
    if isinstance(max_cost, bool) or not isinstance(max_cost, (int, float)) or not math.isfinite(max_cost):
        raise SdtError(f"--max-cost takes an amount in USD such as 2.50, got {max_cost!r}")
    if max_cost <= 0:
        raise SdtError(f"--max-cost must be more than 0 USD, got {max_cost:g}")
    return float(max_cost)


def ledger(plug: ClientPlug, max_cost: float | None) -> Ledger | None:
    """The run's ledger when the plug's plan has prices, else None; `SdtError` if `max_cost` needs one."""
    max_cost = check_max_cost(max_cost)
    plan_of = getattr(plug, "plan", None)
    plan: ClusterPlan | None = plan_of() if callable(plan_of) else None
    workers = [m for m in plan.machines if m.role == "workers"] if plan is not None and plan.prices else []
    prices = [m.price for m in workers]
    cluster = plan.cost_per_hour if plan is not None else None
    if not workers or any(p is None for p in prices) or cluster is None:
        if max_cost is None:
            return None
        name = getattr(plug, "plug", type(plug).__name__)
        raise SdtError(
            f"--max-cost needs a plug whose plan has prices (see `sdt plan {name}`); plug '{name}' has none: "
            "leave out --max-cost"
        )
    return Ledger(float(prices[0] or 0.0), max(1, int(getattr(plug, "threads", 1) or 1)), cluster, max_cost)
