"""Graceful interruption: the plugins a plug delivers through `worker_plugins`.

`GracefulStop` acts where SIGTERM reaches the worker's own process (a local worker process,
every process of a SLURM job); `NannyGracefulStop` where it reaches only the nanny, the
first process of a container that `dask worker` runs in (Fargate Spot's notice).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Any

from distributed import NannyPlugin, WorkerPlugin

log = logging.getLogger(__name__)


class GracefulStop(WorkerPlugin):
    """A Dask worker plugin: a worker told to stop (SIGTERM: Fargate Spot's notice, the end of a
    batch job, an autoscaler) retires instead of dying: the scheduler moves the results it holds
    to other workers and runs its waiting keys elsewhere, the key it is running finishes or runs
    again elsewhere, and no key is lost, failed or recorded twice for it.

    `restart`: a worker with a nanny starts again afterwards (the cluster keeps its size; a
    local cluster's), else the nanny closes too (a cloud machine about to go). Deliver it
    through a plug's `worker_plugins` hook. Only where the worker runs in its process's main
    thread (a worker process); elsewhere it does nothing.
    """

    name = "sdt-graceful-stop"
    idempotent = True

    def __init__(self, restart: bool = True):
        self.restart = restart

    def setup(self, worker: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # workers in threads of another process: the signal is that process's

        def retire() -> Any:
            log.warning("worker %s: SIGTERM, retiring gracefully", worker.address)
            return worker.close_gracefully(restart=self.restart, reason="SIGTERM")

        _on_sigterm(worker, retire)

    def teardown(self, worker: Any) -> None:
        return None

    def __repr__(self) -> str:
        return f"GracefulStop(restart={self.restart})"


class NannyGracefulStop(NannyPlugin):
    """A Dask nanny plugin: a nanny told to stop (SIGTERM to `dask worker`, the first process
    of a Fargate task, which its worker process never sees) has the scheduler retire its
    worker first, as `GracefulStop` does, and then closes. Without it, the nanny kills its
    worker at once and the results it held are computed again. Deliver it next to
    `GracefulStop` through `worker_plugins`; it acts only in a nanny that runs in its
    process's main thread (`dask worker`), not in the nannies of a `LocalCluster`.
    """

    name = "sdt-graceful-stop-nanny"

    def setup(self, nanny: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        async def retire() -> None:
            for _ in range(50):  # a worker that just joined: its nanny learns its address a moment later
                if nanny.worker_address or nanny.process is None:
                    break
                await asyncio.sleep(0.1)
            log.warning("nanny %s: SIGTERM, retiring its worker %s gracefully", nanny.address, nanny.worker_address)
            try:
                if nanny.worker_address:
                    await nanny.scheduler.retire_workers(
                        workers=[nanny.worker_address], close_workers=False, remove=True, stimulus_id="nanny-sigterm"
                    )
            finally:
                await nanny.close(reason="SIGTERM")

        _on_sigterm(nanny, retire)

    def __repr__(self) -> str:
        return "NannyGracefulStop()"


def _on_sigterm(server: Any, stop: Any) -> None:
    """Run the coroutine `stop()` on `server`'s event loop at the first SIGTERM; a second one ends it at once."""
    loop = server.loop.asyncio_loop if hasattr(server.loop, "asyncio_loop") else server.loop

    def handle() -> None:
        loop.remove_signal_handler(signal.SIGTERM)
        loop.create_task(stop())

    loop.add_signal_handler(signal.SIGTERM, handle)
