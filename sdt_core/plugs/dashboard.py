"""The dashboard link sdt-core prints: the address the scheduler's dashboard listens on, or "".

`distributed` builds its link from the scheduler's address and the port of the scheduler's
HTTP server. Both can be wrong: that server also runs when the dashboard is off (it then
answers /status with 404), and a scheduler in the client's process (`processes=False`) has
an `inproc://` address naming the machine's outward address while the dashboard may listen
on 127.0.0.1 only. The scheduler itself knows: ask it.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
#: Addresses that mean "every interface": the link then names the host the client reaches the scheduler by.
_ANY = ("", "0.0.0.0", "::")


def dashboard_link(client: Any, cluster: Any = None) -> str:
    """The link to the dashboard of `client`'s scheduler, or "" when it serves none.

    `cluster` is the cluster object the client was made from, if any: a scheduler in this
    process is asked directly, any other one through the client.
    """
    from distributed.comm import get_address_host
    from distributed.utils import format_dashboard_link

    def served(dask_scheduler: Any) -> tuple[str, int] | None:  # nested: sent by value, no sdt-core needed there
        applications = getattr(getattr(dask_scheduler, "http_application", None), "applications", [])
        if not any(c.__name__ == "BokehTornado" for app in applications for c in type(app).__mro__):
            return None  # an HTTP server without a dashboard (dashboard_address=None, or no bokeh)
        return dask_scheduler.http_server.address, dask_scheduler.http_server.port

    scheduler = getattr(cluster, "scheduler", None)
    bound = served(scheduler) if hasattr(scheduler, "http_server") else client.run_on_scheduler(served)
    if bound is None:
        return ""
    host, port = bound
    if host in _ANY:
        address = client.scheduler.address
        host = "127.0.0.1" if address.startswith("inproc://") else get_address_host(address)
    try:
        return str(format_dashboard_link(f"[{host}]" if ":" in host else host, port))
    except KeyError as exc:  # distributed.dashboard.link names an environment variable that is not set
        log.warning("the dashboard link cannot be formatted: distributed.dashboard.link names %s, which is unset", exc)
        return ""
