"""`WarmUp`: the worker plugin that imports what keys need when a worker starts (`sdt_core.plugs.warm`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from distributed import WorkerPlugin

from sdt_core.plugs.warm import warm_up

log = logging.getLogger(__name__)


class WarmUp(WorkerPlugin):
    """A Dask worker plugin: each worker, also one that joins later, imports SDT, cvxpy, pandas
    and sdt-core's key path (`sdt_core.plugs.warm.modules()`) before it takes keys.

    sdt-core registers it on every cluster it starts, unless dask config `sdt.warm-workers` is
    false. The imports run in a thread, so the worker's event loop keeps answering; a worker
    runs no task before its plugins are set up (`Worker.plugin_add` is awaited first). On a
    worker forked from a warm local forkserver everything is imported already: it costs nothing.
    """

    name = "sdt-warm-up"
    idempotent = True

    async def setup(self, worker: Any) -> None:
        failed = await asyncio.get_running_loop().run_in_executor(None, warm_up)
        for module, error in failed.items():
            log.warning("worker %s: warm-up could not import %s: %s", worker.address, module, error)

    def teardown(self, worker: Any) -> None:
        return None

    def __repr__(self) -> str:
        return "WarmUp()"
