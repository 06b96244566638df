"""A gateway cluster the plug asked for: started, owned, and stopped when it is closed.

`start` submits the cluster with the requested options, waits (within `start_timeout`) for
the gateway to run its scheduler, scales it to `workers` and waits for the first worker. Any
failure or interruption on the way stops what was submitted. The result, an `OwnedCluster`,
is dask-gateway's `GatewayCluster` (a client connects to it as to any Dask cluster; `scale`
and `adapt(minimum, maximum)` go through the gateway), whose `close()` also waits until the
gateway reports the cluster stopped: when sdt-core has closed it, nothing of it runs.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

from dask_gateway import GatewayCluster, GatewayWarning

from sdt_core import ClusterStartError
from sdt_gateway import server
from sdt_gateway.options import requested
from sdt_gateway.settings import PLUG, GatewaySettings

log = logging.getLogger(__name__)
#: Seconds to wait for the gateway to report a stopped cluster stopped.
STOP_TIMEOUT = 120


class OwnedCluster(GatewayCluster):
    """A gateway cluster sdt started: closing it stops it and waits until the gateway has."""

    settings: GatewaySettings | None = None

    def close(self, shutdown: bool | None = None) -> None:
        if self.status == "closed":
            return
        stopping = self.shutdown_on_close if shutdown is None else shutdown
        gateway = self.gateway
        super().close(shutdown=shutdown)
        # Closed: when collected, dask-gateway's client closes itself again, and fails noisily on
        # distributed's stopped loop ("Exception ignored in: Gateway.__del__"). Once is enough.
        gateway.close = _closed
        if stopping and self.name is not None and self.settings is not None:
            stopped(self.settings, self.name)

    def scale(self, n: int, **kwargs: Any) -> None:
        """Ask the gateway for `n` workers; its refusal to give them all is a warning in the log."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GatewayWarning)
            super().scale(n, **kwargs)
        for warning in caught:
            log.warning("gateway: %s", warning.message)


def _closed() -> None:
    """A closed gateway client's `close`."""


def start(settings: GatewaySettings) -> OwnedCluster:
    """A new gateway cluster of `settings.workers` workers, running, with at least one worker."""
    deadline = time.monotonic() + settings.start_timeout
    options = requested(settings, server.offered_options(settings, ClusterStartError))
    name = server.submit(settings, options)
    try:
        state = server.wait_until(settings, name, (server.RUNNING,), settings.start_timeout)
        if state != server.RUNNING:
            raise ClusterStartError(_not_running(settings, name, state))
        cluster = OwnedCluster.from_name(name, shutdown_on_close=True, **server.gateway_kwargs(settings))
    except BaseException:
        _stop_quietly(settings, name)
        raise
    cluster.settings = settings
    try:
        cluster.scale(settings.workers)
        _first_worker(cluster, deadline, settings)
    except BaseException:
        cluster.close()
        raise
    return cluster


def _not_running(settings: GatewaySettings, name: str, state: str) -> str:
    if state in server.ENDED:
        return f"{PLUG}: the gateway could not start cluster {name} ({state}); its logs are on the gateway's side"
    return f"{PLUG}: cluster {name} was still {state} after start_timeout={settings.start_timeout:g} s; it was stopped"


def _first_worker(cluster: OwnedCluster, deadline: float, settings: GatewaySettings) -> None:
    while not cluster.scheduler_info.get("workers"):
        if time.monotonic() > deadline:
            raise ClusterStartError(
                f"{PLUG}: no worker joined cluster {cluster.name} within start_timeout={settings.start_timeout:g} s "
                "(the gateway's quota or capacity?); it was stopped"
            )
        time.sleep(server.POLL_S)


def stopped(settings: GatewaySettings, name: str) -> None:
    """Wait until the gateway reports cluster `name` stopped; a warning (with its name) if it does not."""
    try:
        state = server.wait_until(settings, name, server.ENDED, STOP_TIMEOUT)
    except Exception as exc:
        state = f"unknown: {exc}"
    if state not in server.ENDED:
        log.warning(
            "gateway: cluster %s is not reported stopped (%s); stop it with dask_gateway.Gateway().stop_cluster(%r)",
            name,
            state,
            name,
        )


def _stop_quietly(settings: GatewaySettings, name: str) -> None:
    try:
        server.stop(settings, name)
    except Exception as exc:  # the start's own error is the one to report
        log.warning("gateway: could not stop cluster %s: %s", name, exc)
        return
    stopped(settings, name)
