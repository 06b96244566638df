"""Fargate prices for `sdt plan fargate`: Linux/x86 on-demand, USD per hour."""

from __future__ import annotations

from sdt_core import Prices

PRICES = Prices(
    taken="2026-11-24",
    source="https://aws.amazon.com/fargate/pricing/ (Linux/x86 on-demand)",
    where="us-east-1, us-east-2, us-west-2",
)
#: region -> (USD per vCPU-hour, USD per GB-hour of memory)
RATES: dict[str, tuple[float, float]] = {
    "us-east-1": (0.04048, 0.004445),
    "us-east-2": (0.04048, 0.004445),
    "us-west-2": (0.04048, 0.004445),
}
#: USD per hour for each public IPv4 address (one per task with public_ip=True).
PUBLIC_IPV4 = 0.005


def task_price(region: str | None, vcpu: float, memory_gib: float, public_ip: bool) -> float | None:
    """USD per hour of one task, or None for a region the table does not have."""
    if region not in RATES:
        return None
    per_vcpu, per_gb = RATES[region]
    return vcpu * per_vcpu + memory_gib * per_gb + (PUBLIC_IPV4 if public_ip else 0.0)
