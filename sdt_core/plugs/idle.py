"""Idle shutdown: a cluster with no task and no client but `sdt up`'s closes itself.

The rule runs in the scheduler's process, wherever that is, so that it holds when every
client process is gone (a laptop closed, a client killed): a scheduler started on this
machine gets it through its client when the cluster starts; a plug that starts its
scheduler elsewhere also makes that scheduler preload this module (`IDLE_PRELOAD`, with
`idle_environment()`), so it holds from the scheduler's first moment.

Idle means: no task queued, waiting for a worker or running, no transition since the last
look, and no client connected except the keepers (`sdt up`'s own client). Distributed's own
`distributed.scheduler.idle-timeout` ignores connected clients (dask/distributed#7959): a
notebook between two computations would lose its cluster.

When the time is up the scheduler announces it on the event topic `IDLE_TOPIC`, then closes
itself, which stops its workers; the client that started the cluster, if alive, closes what
the plug created (`sdt up` does so and exits 0).

Importing this module costs no Dask import: the scheduler's side imports distributed inside.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sdt_core.plugs.duration import describe, parse_duration

if TYPE_CHECKING:
    from distributed import Client, Scheduler

log = logging.getLogger(__name__)

#: Dask config: how long a started cluster may sit idle before it closes itself, as seconds or a
#: duration ("20 minutes", "1h"); none or 0: never. Unset: `DEFAULT_IDLE_TIMEOUT` for a plug
#: whose plan has prices, never for the others. `sdt up NAME --idle-timeout` sets it too.
IDLE_CONFIG = "sdt.idle-timeout"
#: The idle timeout, in seconds, of the clusters of plugs whose plan has prices, unless set.
DEFAULT_IDLE_TIMEOUT = 20 * 60.0
#: The module a scheduler started elsewhere preloads (`--preload`) to close itself when idle
#: for the timeout in its environment (`idle_environment()`).
IDLE_PRELOAD = "sdt_core.plugs.idle"
#: The Dask event topic on which the scheduler announces its idle shutdown to its clients.
IDLE_TOPIC = "sdt-idle-shutdown"
_NAME = "sdt-idle-shutdown"  # of the periodic callback on the scheduler


def idle_timeout() -> float | None:
    """The idle timeout in force (dask config `sdt.idle-timeout`) in seconds, or None when off.

    While a plug's `make_cluster` runs, sdt-core has set it for that start, its default
    included: a plug that starts its scheduler elsewhere passes it on (`idle_environment()`).
    """
    import dask.config

    return parse_duration(dask.config.get(IDLE_CONFIG, default=None), IDLE_CONFIG)


def idle_environment() -> dict[str, str]:
    """Environment variables that give a scheduler started elsewhere the idle timeout in force
    (with `--preload sdt_core.plugs.idle`); empty when it is off."""
    timeout = idle_timeout()
    return {} if timeout is None else {"DASK_SDT__IDLE_TIMEOUT": f"{timeout:g}"}


def resolve_idle_timeout(overrides: dict[str, Any], priced: Callable[[], bool]) -> float | None:
    """The idle timeout of a start: `overrides` (per call), else dask config, else the default:
    `DEFAULT_IDLE_TIMEOUT` when `priced()` (the plug's plan has prices; asked only then), else None."""
    import dask.config

    missing = object()
    value = overrides.get(IDLE_CONFIG, missing)
    if value is missing:
        value = dask.config.get(IDLE_CONFIG, default=missing)
    if value is missing:
        return DEFAULT_IDLE_TIMEOUT if priced() else None
    return parse_duration(value, IDLE_CONFIG)


# ---- the client's side -----------------------------------------------------------------------


def install(client: Client, timeout: float, keeper: bool = False) -> None:
    """Make the scheduler of `client` close itself when idle for `timeout` seconds; with
    `keeper`, this client does not count as a client (`sdt up`'s own)."""
    client.run_on_scheduler(_watch_scheduler, timeout, client.id if keeper else None)


def _watch_scheduler(timeout: float, keeper: str | None, dask_scheduler: Scheduler) -> None:
    """On the scheduler: start (or update) its idle watch."""
    watch = _IdleWatch.of(dask_scheduler) or _IdleWatch(dask_scheduler, timeout)
    watch.timeout = timeout
    if keeper:
        watch.keepers.add(keeper)


# ---- the scheduler's side --------------------------------------------------------------------


def dask_setup(scheduler: Scheduler) -> None:
    """The preload hook (`dask scheduler --preload sdt_core.plugs.idle`): watch from the start,
    with the timeout of dask config `sdt.idle-timeout` (`DASK_SDT__IDLE_TIMEOUT`)."""
    timeout = idle_timeout()
    if timeout is not None:
        _IdleWatch(scheduler, timeout)


class _IdleWatch:
    """Looks at the scheduler every second or so; closes it once idle for `timeout` seconds."""

    def __init__(self, scheduler: Scheduler, timeout: float) -> None:
        from tornado.ioloop import PeriodicCallback

        self.scheduler = scheduler
        self.timeout = timeout
        self.keepers: set[str] = set()
        self.idle_since = time.monotonic()
        self._transitions = scheduler.transition_counter
        self._closing: asyncio.Task[None] | None = None
        interval = max(0.1, min(1.0, timeout / 10))
        callback = PeriodicCallback(self.check, interval * 1000)
        scheduler.periodic_callbacks[_NAME] = callback
        scheduler._sdt_idle_watch = self  # type: ignore[attr-defined]
        callback.start()  # the scheduler starts its callbacks only once; this one may come later

    @staticmethod
    def of(scheduler: Scheduler) -> _IdleWatch | None:
        return getattr(scheduler, "_sdt_idle_watch", None)

    def busy(self) -> bool:
        s = self.scheduler
        transitions, self._transitions = self._transitions, s.transition_counter
        others = [c for c in s.clients if c != "fire-and-forget" and c not in self.keepers]
        working = s.queued or s.unrunnable or any(ws.processing for ws in s.workers.values())
        return bool(others or working or transitions != s.transition_counter or getattr(s, "_active_graph_updates", 0))

    def check(self) -> None:
        from distributed.core import Status

        if self._closing is not None or self.scheduler.status in (Status.closing, Status.closed):
            return
        now = time.monotonic()
        if self.busy():
            self.idle_since = now
        elif now - self.idle_since >= self.timeout:
            self._closing = asyncio.ensure_future(self._close())

    async def _close(self) -> None:
        but = " but sdt up's" if self.keepers else ""
        reason = f"idle for {describe(self.timeout)}: no task and no client{but}"
        log.info("sdt: closing the cluster, %s", reason)
        self.scheduler.log_event(IDLE_TOPIC, {"reason": reason, "timeout": self.timeout})
        await asyncio.sleep(0.5)  # the event reaches the clients before their connections close
        await self.scheduler.close(reason=f"sdt idle shutdown: {reason}")


class IdleNotice:
    """Set when the scheduler of `client` announces its idle shutdown (what `sdt up` waits for)."""

    def __init__(self, client: Client) -> None:
        import threading

        self.reason = ""
        self.event = threading.Event()
        client.subscribe_topic(IDLE_TOPIC, self._announced)

    def _announced(self, event: tuple[float, dict[str, Any]]) -> None:
        self.reason = str(event[1].get("reason", "idle"))
        self.event.set()
