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
    and sdt-core's key path (`sdt_core.plugs.warm.modules()`) before it takes keys, unless
    `imports` is false, and then looks at its memory.

    sdt-core registers it on every cluster it starts, with `imports` from dask config
    `sdt.warm-workers` (`sdt_core.plugs.warm`). The imports run in a thread, so the worker's
    event loop keeps answering; a worker runs no task before its plugins are set up
    (`Worker.plugin_add` is awaited first). On a worker forked from a warm local forkserver
    everything is imported already: it costs nothing.

    The look at its memory (`pause_if_over`): Dask's memory monitor first looks an interval
    after the worker registered, and a worker ran its first keys in that time, even over its
    pause threshold from its start.
    """

    name = "sdt-warm-up"
    idempotent = True

    def __init__(self, imports: bool = True) -> None:
        self.imports = imports

    async def setup(self, worker: Any) -> None:
        if self.imports:
            failed = await asyncio.get_running_loop().run_in_executor(None, warm_up)
            for module, error in failed.items():
                log.warning("worker %s: warm-up could not import %s: %s", worker.address, module, error)
        pause_if_over(worker)

    def teardown(self, worker: Any) -> None:
        return None

    def __repr__(self) -> str:
        return f"WarmUp(imports={self.imports})"


def pause_if_over(worker: Any) -> None:
    """Pause `worker` now if its process memory is over its pause threshold, as Dask's memory
    monitor would at its next look (and resume it at a look below it); nothing without a limit."""
    manager = getattr(worker, "memory_manager", None)
    if manager is None or not manager.memory_limit or manager.memory_pause_fraction is False:
        return
    manager._maybe_pause_or_unpause(worker, worker.monitor.get_process_memory())
