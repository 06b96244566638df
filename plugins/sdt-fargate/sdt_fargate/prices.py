"""Fargate prices for `sdt plan fargate`: Linux/x86, on-demand and Fargate Spot, USD per hour."""

from __future__ import annotations

from sdt_core import Prices

#: Fargate Spot rates move with supply and demand; these are AWS's long-published Linux/x86
#: rates (about 67% below on-demand), read as quoted beside the on-demand ones, not live.
SPOT_PRICES = Prices(
    taken="2026-12-02",
    source="https://aws.amazon.com/fargate/pricing/ (Fargate Spot, Linux/x86), as quoted in "
    "https://tomgregory.com/aws/aws-fargate-spot-vs-fargate-price-comparison/; spot rates change",
    where="us-east-1, us-east-2, us-west-2",
)
PRICES = Prices(
    taken="2026-11-24",
    source="https://aws.amazon.com/fargate/pricing/ (Linux/x86 on-demand)",
    where="us-east-1, us-east-2, us-west-2",
    spot=SPOT_PRICES,
)
#: The region a plan prices when none is set: us-east-1, the first of the table.
UNSET_REGION_PRICED_AS = "us-east-1"

#: region -> (USD per vCPU-hour, USD per GB-hour of memory), on-demand
RATES: dict[str, tuple[float, float]] = {
    "us-east-1": (0.04048, 0.004445),
    "us-east-2": (0.04048, 0.004445),
    "us-west-2": (0.04048, 0.004445),
}
#: region -> (USD per vCPU-hour, USD per GB-hour of memory) on Fargate Spot
SPOT_RATES: dict[str, tuple[float, float]] = {
    "us-east-1": (0.01334053, 0.00146489),
    "us-east-2": (0.01334053, 0.00146489),
    "us-west-2": (0.01334053, 0.00146489),
}
#: USD per hour for each public IPv4 address (one per task with public_ip=True).
PUBLIC_IPV4 = 0.005


def task_price(region: str | None, vcpu: float, memory_gib: float, public_ip: bool, spot: bool = False) -> float | None:
    """USD per hour of one task (on Fargate Spot if `spot`), or None for a region the table does not have."""
    rates = SPOT_RATES if spot else RATES
    if region not in rates:
        return None
    per_vcpu, per_gb = rates[region]
    return vcpu * per_vcpu + memory_gib * per_gb + (PUBLIC_IPV4 if public_ip else 0.0)
