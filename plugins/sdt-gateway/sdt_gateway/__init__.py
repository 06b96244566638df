"""Dask Gateway: a cluster asked for with your credentials (stopped at the end), or one of yours attached to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdt_core import Attached, RegisteredPlug, hookimpl
from sdt_gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from sdt_core import ClusterPlan
    from sdt_gateway.cluster import OwnedCluster

__all__ = ["GatewayClient", "GatewaySettings"]


@hookimpl
def plug_settings() -> type[GatewaySettings]:
    return GatewaySettings


@hookimpl
def preflight(settings: GatewaySettings) -> None:
    """The gateway answers and accepts the credentials; the options exist, or the cluster to attach to runs."""
    from sdt_gateway import server
    from sdt_gateway.options import requested

    server.check_auth_module(settings)
    if settings.cluster_name is None:
        requested(settings, server.offered_options(settings))
    else:
        server.running_report(settings, settings.cluster_name)


@hookimpl
def make_cluster(settings: GatewaySettings) -> OwnedCluster | Attached:
    from sdt_gateway import server
    from sdt_gateway.cluster import start

    if settings.cluster_name is None:
        return start(settings)
    report = server.running_report(settings, settings.cluster_name)
    return Attached(report.scheduler_address, security=report.security, timeout=settings.timeout)


@hookimpl
def plan_cluster(settings: GatewaySettings) -> ClusterPlan:
    from sdt_gateway.plan import plan

    return plan(settings)


class GatewayClient(RegisteredPlug):
    """A ClientPlug for Dask Gateway: `GatewayClient(workers=4, threads=2, memory=8, address="https://...")`."""

    plug_name = "gateway"
