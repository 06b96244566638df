"""Bounded waits: a worker paused for memory longer than a limit ends its keys, or the run.

Dask pauses a worker whose process memory passes its pause threshold (80% of its limit) and
resumes it when the memory falls. A key that holds more than that never lets it fall, and
sdt-core's local plug does not terminate workers at their limit (SDT's peaks are brief), so
without a bound the run would wait forever. Every second this watchdog asks the scheduler
which workers are paused. A worker paused longer than `sdt.pause-timeout` seconds (dask
config, default 60) is restarted and the keys it was running are failed for memory; a worker
paused that long while running nothing twice in a row ends the run: its limit is too small.
On a scheduler sdt-core attached to (`restart=False`) workers are never restarted: the keys
are failed the same way and the worker is left as it is.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

TIMEOUT_CONFIG = "sdt.pause-timeout"
INTERVAL = 1.0


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


async def _replace_worker(dask_scheduler: Any, address: str) -> str:
    """On the scheduler: forget a worker without blaming the tasks queued on it (a restart
    counts against them, and four make a KilledWorker), then have its nanny start a new one."""
    from distributed.core import rpc

    ws = dask_scheduler.workers.get(address)
    if ws is None:
        return "gone"
    if ws.nanny is None:
        return "it has no nanny to restart it"
    nanny = ws.nanny
    await dask_scheduler.remove_worker(address, stimulus_id="sdt-paused-for-memory", expected=True, close=False)
    async with rpc(nanny, connection_args=dask_scheduler.connection_args) as comm:
        await comm.kill(reason="sdt-paused-for-memory")  # the nanny starts a new worker process
    return "OK"


class PauseWatchdog:
    """Watches `client`'s workers while a run's `futures` (task key -> Future) are pending.

    `failures` maps the task keys it failed to why; `fatal` says why the run must end.
    `restart=False` (workers sdt-core did not start) fails keys but never restarts a worker.
    """

    def __init__(
        self, client: Any, futures: dict[Any, Any], timeout: float | None = None, restart: bool = True
    ) -> None:
        import dask.config

        self.client = client
        self.futures = futures
        self.restart = restart
        self.timeout = float(dask.config.get(TIMEOUT_CONFIG, default=60) if timeout is None else timeout)
        self.failures: dict[Any, str] = {}
        self.fatal: str | None = None
        self._paused_since: dict[str, float] = {}
        self._idle_restarts = 0  # of workers paused while running nothing, since a key last finished
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sdt-pause-watchdog", daemon=True)

    def __enter__(self) -> PauseWatchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                self.check(paused_workers(self.client))
            except Exception as exc:  # the cluster going away is the main loop's to report
                log.debug("pause watchdog: %s", exc)

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
                for key in running:
                    self.failures[key] = reason
                self.client.cancel([self.futures[k] for k in running])
            else:
                self._idle_restarts += 1
                if self._idle_restarts > 1:
                    self._end(self._stays_paused(addr, held))
                    return
            if not self.restart:
                log.warning(
                    "worker %s was paused for memory (%s) for %g s; it is not sdt's to restart: left as it is",
                    addr,
                    held,
                    self.timeout,
                )
                self._paused_since.pop(addr, None)
                continue
            log.warning("worker %s was paused for memory (%s) for %g s: restarting it", addr, held, self.timeout)
            self._paused_since.pop(addr, None)
            try:
                outcome = self.client.run_on_scheduler(_replace_worker, address=addr)
            except Exception as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            if outcome not in ("OK", "gone"):
                self._end(f"worker {addr} stays paused for memory ({held}) and cannot be restarted: {outcome}")
                return

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
