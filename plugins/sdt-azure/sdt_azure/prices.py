"""Azure VM sizes and prices for `sdt plan azure`: Linux pay-as-you-go and Spot, USD per hour."""

from __future__ import annotations

from sdt_core import Prices

PRICES = Prices(
    taken="2026-11-24",
    source="https://azure.microsoft.com/pricing/details/virtual-machines/linux/ (pay-as-you-go list prices)",
    where="eastus",
)
#: VM size -> (vCPUs, memory GiB, USD per hour in `PRICES.where`)
VM_SIZES: dict[str, tuple[int, float, float]] = {
    "Standard_DS1_v2": (1, 3.5, 0.073),
    "Standard_DS2_v2": (2, 7.0, 0.146),
    "Standard_D2s_v3": (2, 8.0, 0.096),
    "Standard_D4s_v3": (4, 16.0, 0.192),
    "Standard_D8s_v3": (8, 32.0, 0.384),
    "Standard_D16s_v3": (16, 64.0, 0.768),
    "Standard_D4s_v5": (4, 16.0, 0.192),
    "Standard_D8s_v5": (8, 32.0, 0.384),
    "Standard_E4s_v3": (4, 32.0, 0.252),
    "Standard_E8s_v3": (8, 64.0, 0.504),
    "Standard_F4s_v2": (4, 8.0, 0.169),
    "Standard_F8s_v2": (8, 16.0, 0.338),
}
#: VM size -> USD per hour on Spot in `PRICES.where`. Empty: Azure's Spot prices move by the
#: hour and location, and none was read from a source yet (Azure's Retail Prices API lists
#: them, `priceType` "Consumption" with "Spot" in `meterName`); the plan then shows a Spot
#: cost as unknown, at most the pay-as-you-go one (a Spot VM with max_price -1 never costs more).
SPOT_PRICES: dict[str, float] = {}
