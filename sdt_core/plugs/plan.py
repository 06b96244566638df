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


@dataclass(frozen=True)
class Machines:
    """Identical machines (tasks, VMs) of one role."""

    role: str  # "scheduler" or "workers"
    count: int
    kind: str  # e.g. "Fargate task" or "Standard_D4s_v3"
    vcpu: float
    memory_gib: float
    price_per_hour: float | None  # each, None when the price table has no price for it

    @property
    def cost_per_hour(self) -> float | None:
        return None if self.price_per_hour is None else self.count * self.price_per_hour


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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"cost_per_hour": self.cost_per_hour}

    def __str__(self) -> str:
        lines = [f"Plan for plug '{self.plug}' (nothing has been created)"]
        for m in self.machines:
            price = ""
            if self.prices is not None:
                each = "no price in the table" if m.price_per_hour is None else f"{m.price_per_hour:.4f}/h each"
                price = f" ({each})"
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
            cost = self.cost_per_hour
            where = self.where or "an unset region or location"
            total = f"{cost:.2f} {self.prices.currency}" if cost is not None else f"unknown (no prices for {where})"
            lines.append(
                f"Estimated cost: {total} per hour, from prices for {self.prices.where} taken on "
                f"{self.prices.taken} ({self.prices.source}); data transfer and storage not included"
            )
        lines += [f"Note: {note}" for note in self.notes]
        for title, text in self.texts:
            lines += [f"{title}:", *(f"  {line}" if line else "" for line in text.rstrip().splitlines())]
        return "\n".join(lines)
