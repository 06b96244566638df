"""What a start would create and cost: the answer of a plug's `plan_cluster` hook (`sdt plan`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Prices:
    """A plug's price table: hourly prices by machine kind, and where and when they were taken."""

    taken: str  # ISO date the prices were read from `source`
    source: str  # URL of the price page
    where: str  # the region or location they are for, e.g. "us-east-1"
    currency: str = "USD"
    spot: Prices | None = None  # where and when the spot prices were taken, if the table has any


@dataclass(frozen=True)
class Machines:
    """Identical machines (tasks, VMs) of one role."""

    role: str  # "scheduler" or "workers"
    count: int
    kind: str  # e.g. "Fargate task" or "Standard_D4s_v3"
    vcpu: float
    memory_gib: float
    price_per_hour: float | None  # each, on-demand; None when the price table has no price for it
    spot_price_per_hour: float | None = None  # each, on spot capacity; None: not offered or not in the table
    spot: bool = False  # whether they run on spot capacity (the scheduler never does)

    @property
    def price(self) -> float | None:
        """What one of them costs per hour as planned: the spot price on spot, else the on-demand price."""
        return self.spot_price_per_hour if self.spot else self.price_per_hour

    @property
    def cost_per_hour(self) -> float | None:
        return None if self.price is None else self.count * self.price

    def price_text(self) -> str:
        """Its price as `sdt plan` shows it: on-demand and spot side by side when the table has both."""
        each = "no price in the table" if self.price_per_hour is None else f"{self.price_per_hour:.4f}/h each"
        if not self.spot:
            return each if self.spot_price_per_hour is None else f"{each}; on spot {self.spot_price_per_hour:.4f}/h"
        spot = (
            "no spot price in the table"
            if self.spot_price_per_hour is None
            else f"{self.spot_price_per_hour:.4f}/h each"
        )
        on_demand = "" if self.price_per_hour is None else f"; on-demand {self.price_per_hour:.4f}/h"
        return f"on spot: {spot}{on_demand}"


@dataclass(frozen=True)
class ClusterPlan:
    """Everything a start would create, and its estimated cost per hour (with `prices`); nothing is created."""

    plug: str
    machines: tuple[Machines, ...]
    image: str | None
    where: str | None  # region or location
    network: str  # who can reach the scheduler
    tls: bool
    prices: Prices | None = None  # None: machines that are not priced (a batch queue, machines of your own)
    also: tuple[str, ...] = field(default=())  # other resources created, e.g. "1 security group"
    notes: tuple[str, ...] = field(default=())  # warnings and assumptions
    texts: tuple[tuple[str, str], ...] = field(default=())  # (title, text) shown in full, e.g. a job script

    @property
    def cost_per_hour(self) -> float | None:
        costs = [m.cost_per_hour for m in self.machines]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)

    @property
    def on_demand_cost_per_hour(self) -> float | None:
        """The cost per hour with every machine on-demand (what spot saves is the difference)."""
        costs = [None if m.price_per_hour is None else m.count * m.price_per_hour for m in self.machines]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {
            "cost_per_hour": self.cost_per_hour,
            "on_demand_cost_per_hour": self.on_demand_cost_per_hour,
        }

    def __str__(self) -> str:
        lines = [f"Plan for plug '{self.plug}' (nothing has been created)"]
        for m in self.machines:
            price = f" ({m.price_text()})" if self.prices is not None else ""
            lines.append(f"  {m.role}: {m.count} x {m.kind}, {m.vcpu:g} vCPU, {m.memory_gib:g} GiB{price}")
        priced = self.prices is not None  # a cloud's plan names its image and region even when unset
        lines += [f"  image: {self.image or 'not set'}"] if priced or self.image else []
        lines += [f"  region/location: {self.where or 'not set'}"] if priced or self.where else []
        lines += [
            f"  network: {self.network}",
            f"  TLS: {'on' if self.tls else 'OFF: traffic between client, scheduler and workers is unencrypted'}",
        ]
        lines += [f"  also creates: {item}" for item in self.also]
        if self.prices is not None:
            lines.append(self._cost_line(self.prices))
        lines += [f"Note: {note}" for note in self.notes]
        for title, text in self.texts:
            lines += [f"{title}:", *(f"  {line}" if line else "" for line in text.rstrip().splitlines())]
        return "\n".join(lines)

    def _cost_line(self, prices: Prices) -> str:
        cost, on_demand = self.cost_per_hour, self.on_demand_cost_per_hour
        spot = [m for m in self.machines if m.spot]
        if cost is not None:
            total = f"{cost:.2f} {prices.currency}"
        elif spot and on_demand is not None:
            kinds = ", ".join(sorted({m.kind for m in spot if m.spot_price_per_hour is None}))
            total = f"unknown (no spot price for {kinds}), at most {on_demand:.2f} {prices.currency}"
        else:
            total = f"unknown (no prices for {self.where or 'an unset region or location'})"
        line = f"Estimated cost: {total} per hour"
        if spot and cost is not None and on_demand is not None:
            line += f" with {', '.join(m.role for m in spot)} on spot ({on_demand:.2f} on-demand)"
        line += f", from prices for {prices.where} taken on {prices.taken} ({prices.source})"
        if spot and prices.spot is not None:
            line += f"; spot prices for {prices.spot.where} taken on {prices.spot.taken} ({prices.spot.source})"
        return line + "; data transfer and storage not included"
