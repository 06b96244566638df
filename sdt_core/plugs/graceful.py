"""Graceful interruption: `GracefulStop`, the worker plugin a plug delivers through `worker_plugins`."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from distributed import WorkerPlugin

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
        loop = worker.loop.asyncio_loop if hasattr(worker.loop, "asyncio_loop") else worker.loop

        def retire() -> None:
            log.warning("worker %s: SIGTERM, retiring gracefully", worker.address)
            loop.remove_signal_handler(signal.SIGTERM)  # a second SIGTERM ends it at once
            loop.create_task(worker.close_gracefully(restart=self.restart, reason="SIGTERM"))

        loop.add_signal_handler(signal.SIGTERM, retire)

    def teardown(self, worker: Any) -> None:
        return None

    def __repr__(self) -> str:
        return f"GracefulStop(restart={self.restart})"
