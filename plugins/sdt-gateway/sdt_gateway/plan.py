"""What `sdt plan gateway` shows: the cluster a start would ask the gateway for. Nothing is created.

The plan reads the options the gateway offers (a read-only request) to show every option as it
would be submitted, the gateway's defaults included, and refuses an option it does not offer.
A gateway that does not answer or refuses the credentials gives a plan of what was given, which
says why. A gateway has no price table: the plan shows no cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sdt_core import ClusterPlan, Machines, SettingsError
from sdt_gateway import server
from sdt_gateway.options import SIZE_OPTIONS, requested, shown
from sdt_gateway.settings import PLUG, GatewaySettings

CORES, MEMORY = SIZE_OPTIONS["threads"][0], SIZE_OPTIONS["memory"][0]


def plan(settings: GatewaySettings) -> ClusterPlan:
    """The plan of a start with `settings`."""
    where = f"the Dask Gateway at {settings.address}"
    network = (
        f"scheduler and workers run by the gateway, reached through its proxy "
        f"({settings.proxy()}) with the cluster's own certificate"
    )
    who = f"authenticates with auth={settings.auth}" + (f" as {settings.username}" if settings.username else "")
    if settings.cluster_name is not None:
        return ClusterPlan(
            plug="gateway",
            machines=(),
            image=None,
            where=where,
            network=network,
            tls=True,
            notes=(f"attaches to your running cluster {settings.cluster_name}: nothing is created; left running", who),
        )
    try:
        offered = server.offered_options(settings)
    except SettingsError as exc:  # no answer, or the credentials refused: a plan of what was given
        options: Mapping[str, Any] = settings.configured_options() | settings.options
        unread = str(exc).removeprefix(f"{PLUG}: ")
    else:
        options, unread = requested(settings, offered), ""
    notes = [who]
    if unread:
        notes.append(f"the gateway's options could not be read ({unread}): shown as given, the rest is the gateway's")
    machines = _workers(settings.workers, options)
    if not machines:
        notes.append(f"workers: {settings.workers}, of the size the gateway gives them" + _sizes(settings))
    image = options.get("image")
    return ClusterPlan(
        plug="gateway",
        machines=machines,
        image=image if isinstance(image, str) else None,
        where=where,
        network=network,
        tls=True,
        also=("1 gateway cluster (its scheduler, and the workers asked for), stopped when the run ends",),
        notes=tuple(notes),
        texts=(("Cluster options (as they would be submitted)", _listing(shown(options))),),
    )


def _workers(count: int, options: Mapping[str, Any]) -> tuple[Machines, ...]:
    """The workers, when the options tell their cores and memory (in GiB, as dask-gateway's examples)."""
    cores, memory = options.get(CORES), options.get(MEMORY)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (cores, memory)):
        return ()
    return (Machines("workers", count, "gateway worker", float(cores), float(memory), None),)  # type: ignore[arg-type]


def _sizes(settings: GatewaySettings) -> str:
    asked = [f"{name}={getattr(settings, name):g} ({', '.join(SIZE_OPTIONS[name])} where offered)"
             for name in SIZE_OPTIONS if getattr(settings, name) is not None]  # fmt: skip
    return f"; asked: {', '.join(asked)}" if asked else ""


def _listing(options: Mapping[str, Any]) -> str:
    return "\n".join(f"{key}: {value!r}" for key, value in options.items()) or "(none)"
