"""Bounded waits: a key that runs too long, or a worker paused for memory too long, ends its
keys (or the run) and its worker is replaced.

A key whose read or analysis never returns (a FIFO for a data file, a stuck network read, a
solve that never ends) would hold the run forever, and so would a worker that stays paused:
Dask pauses a worker whose process memory passes its pause threshold (80% of its limit) and
resumes it when the memory falls, and a key that holds more than that never lets it fall
(sdt-core's local plug does not terminate workers at their limit: SDT's peaks are brief).
Every second this watchdog asks the scheduler which workers are paused, and every few
seconds the workers how long each of their keys has run (from the start of its load: a new
worker's start-up is not counted, `sdt_core.job.task.running_for`). A key running longer than the key
timeout (`--key-timeout`, dask config `sdt.key-timeout`, default `DEFAULT_KEY_TIMEOUT`) is
failed with stage `timeout`; a worker paused longer than `sdt.pause-timeout` seconds (default
60) has the keys it runs failed with stage `memory`. Either way its worker is replaced: the
stuck thread, or the memory, goes with its process. A worker paused that long while running
nothing twice in a row ends the run: its limit is too small. On a scheduler sdt-core attached
to (`restart=False`) workers are never restarted: the keys are failed the same way and the
worker is left as it is.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sdt_core.job.task import running_for
from sdt_core.output.results import MEMORY_STAGE, TIMEOUT_STAGE

log = logging.getLogger(__name__)

TIMEOUT_CONFIG = "sdt.pause-timeout"
KEY_TIMEOUT_CONFIG = "sdt.key-timeout"
#: No key of SDT's takes this long: its longest, the loss factor analysis of the 490-day
#: sample file, took 226 s exact on a quiet 2-core machine; a ten-year system is about seven
#: times that, and a loaded machine several times more. A stuck key still ends the same day.
DEFAULT_KEY_TIMEOUT = "2h"
INTERVAL = 1.0
#: Most seconds between two looks at how long the keys have run (a tenth of the key timeout, at least INTERVAL).
KEY_INTERVAL = 10.0


def key_timeout(value: float | str | None = None) -> float:
    """The key timeout in seconds: `value` (seconds, or a duration such as "90s", "30m", "2h"),
    else dask config `sdt.key-timeout`, else `DEFAULT_KEY_TIMEOUT`; `SdtError` if it is none."""
    import math

    import dask.config
    from dask.utils import parse_timedelta

    from sdt_core.errors import SdtError

    given = dask.config.get(KEY_TIMEOUT_CONFIG, default=DEFAULT_KEY_TIMEOUT) if value is None else value
    try:
        seconds = parse_timedelta(given.strip() if isinstance(given, str) else given, default="seconds")
    except (TypeError, ValueError, KeyError, IndexError, OverflowError):  # dask's IndexError: ""
        seconds = None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
        raise SdtError(
            f"--key-timeout (dask config {KEY_TIMEOUT_CONFIG}) must be a duration above zero such as 90s, "
            f"30m or 2h, got {given!r}"
        )
    return float(seconds)


def paused_workers(client: Any) -> dict[str, dict[str, Any]]:
    """Every paused worker's process memory and limit, from the scheduler."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return {
        addr: {"memory": info["metrics"]["memory"], "limit": info["memory_limit"]}
        for addr, info in workers.items()
        if info.get("status") == "paused"
    }


def _executing(dask_worker: Any) -> list[Any]:
    """On a worker: the keys of the tasks it is running now."""
    return [ts.key for ts in dask_worker.state.executing]


async def _replace_worker(dask_scheduler: Any, address: str, reason: str = "sdt-paused-for-memory") -> str:
    """On the scheduler: forget a worker without blaming the tasks queued on it (a restart
    counts against them, and four make a KilledWorker), then have its nanny start a new one."""
    from distributed.core import rpc

    ws = dask_scheduler.workers.get(address)
    if ws is None:
        return "gone"
    if ws.nanny is None:
        return "it has no nanny to restart it"
    nanny = ws.nanny
    await dask_scheduler.remove_worker(address, stimulus_id=reason, expected=True, close=False)
    async with rpc(nanny, connection_args=dask_scheduler.connection_args) as comm:
        await comm.kill(reason=reason)  # the nanny starts a new worker process
    return "OK"


class Watchdog:
    """Watches `client`'s workers while a run's `futures` (task key -> Future) are pending.

    `failures` maps the task keys it failed to their stage and why; `fatal` says why the run
    must end. `restart=False` (workers sdt-core did not start) fails keys but never restarts
    a worker.
    """

    def __init__(
        self,
        client: Any,
        futures: dict[Any, Any],
        timeout: float | None = None,
        restart: bool = True,
        key_timeout: float | None = None,
    ) -> None:
        import dask.config

        self.client = client
        self.futures = futures
        self.restart = restart
        self.timeout = float(dask.config.get(TIMEOUT_CONFIG, default=60) if timeout is None else timeout)
        self.key_timeout = key_timeout
        self.failures: dict[Any, tuple[str, str]] = {}
        self.fatal: str | None = None
        self._paused_since: dict[str, float] = {}
        self._idle_restarts = 0  # of workers paused while running nothing, since a key last finished
        self._keys_looked = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sdt-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                self.check(paused_workers(self.client))
                if self.key_timeout and not self.fatal and self._time_to_look_at_keys():
                    self.check_keys(self.client.run(running_for, on_error="ignore"))
            except Exception as exc:  # the cluster going away is the main loop's to report
                log.debug("watchdog: %s", exc)

    def _time_to_look_at_keys(self) -> bool:
        every = min(KEY_INTERVAL, max(INTERVAL, (self.key_timeout or 0) / 10))
        if time.monotonic() - self._keys_looked < every:
            return False
        self._keys_looked = time.monotonic()
        return True

    def check_keys(self, running: dict[str, Any]) -> None:
        """Act on one look at how long each worker's keys have run (address -> {task key: seconds})."""
        limit = self.key_timeout or 0
        for addr, keys in running.items():
            if not isinstance(keys, dict):  # the worker did not answer: Dask's to notice
                continue
            over = [k for k, seconds in keys.items() if seconds > limit and k in self.futures]
            over = [k for k in over if k not in self.failures]
            if not over:
                continue
            reason = (
                f"TimeoutError: the key ran longer than the key timeout of {limit:g} s (--key-timeout); "
                "its worker was replaced. If it needs longer, give a longer --key-timeout and rerun "
                "it with --resume --rerun timeout"
            )
            self._fail(over, TIMEOUT_STAGE, reason)
            self._replace(addr, "sdt-key-timeout", f"ran a key for over {limit:g} s")
            if self.fatal:
                return

    def check(self, paused: dict[str, dict[str, Any]], now: float | None = None) -> None:
        """Act on one look at the paused workers."""
        now = time.monotonic() if now is None else now
        self._paused_since = {addr: self._paused_since.get(addr, now) for addr in paused}
        for addr, info in paused.items():
            if now - self._paused_since[addr] < self.timeout:
                continue
            running = [k for k in self.client.run(_executing, workers=[addr]).get(addr, []) if k in self.futures]
            held = f"{info['memory'] / 2**30:.2f} GiB of its {info['limit'] / 2**30:.2f} GiB limit"
            if running:
                reason = (
                    f"MemoryError: its worker stayed paused for memory ({held}) for {self.timeout:g} s while "
                    "it ran; give workers more memory (--memory) or fewer threads"
                )
                self._fail(running, MEMORY_STAGE, reason)
            else:
                self._idle_restarts += 1
                if self._idle_restarts > 1:
                    self._end(self._stays_paused(addr, held))
                    return
            self._paused_since.pop(addr, None)
            self._replace(addr, "sdt-paused-for-memory", f"was paused for memory ({held}) for {self.timeout:g} s")
            if self.fatal:
                return

    def _fail(self, keys: list[Any], stage: str, reason: str) -> None:
        for key in keys:
            self.failures[key] = (stage, reason)
        self.client.cancel([self.futures[k] for k in keys])

    def _replace(self, addr: str, reason: str, what: str) -> None:
        """Replace worker `addr`, which `what` (a restart of its process by its nanny)."""
        if not self.restart:
            log.warning("worker %s %s; it is not sdt's to restart: left as it is", addr, what)
            return
        log.warning("worker %s %s: restarting it", addr, what)
        try:
            outcome = self.client.run_on_scheduler(_replace_worker, address=addr, reason=reason)
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        if outcome not in ("OK", "gone"):
            self._end(f"worker {addr} {what} and cannot be restarted: {outcome}")

    def _stays_paused(self, addr: str, held: str) -> str:
        if self.restart:
            return (
                f"worker {addr} stays paused for memory ({held}) without running a key, even after a "
                "restart: its memory limit is too small; give workers more memory (--memory)"
            )
        return (
            f"worker {addr} of the scheduler sdt attached to stays paused for memory ({held}) without "
            "running a key; sdt does not restart workers it did not start: free their memory or restart them"
        )

    def progressed(self) -> None:
        """A key finished: restarts of idle paused workers count from here."""
        self._idle_restarts = 0

    def _end(self, reason: str) -> None:
        """End the run: every pending key is cancelled (a resume runs them again)."""
        self.fatal = reason
        self.client.cancel(list(self.futures.values()))
