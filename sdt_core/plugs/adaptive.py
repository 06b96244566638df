"""`RunAdaptive`: distributed's adaptive scaling, counting the keys runs still hold back (imports distributed)."""

from __future__ import annotations

import logging
import time
from typing import Any

from distributed.deploy.adaptive import Adaptive

from sdt_core.plugs.scaling import WAITING_KEY, extra_workers, fresh_hints, held_back

log = logging.getLogger(__name__)


class RunAdaptive(Adaptive):
    """Adaptive scaling whose target is the scheduler's (for the tasks it has) plus the workers
    the keys that runs hold back need (`WaitingKeys` tells the scheduler): the cluster grows
    while keys wait in the runner. In a run's tail (every run has submitted all its keys), a
    worker the target no longer needs is retired at once, not after `wait_count` looks: the
    keys left (all in flight) are fewer than the workers, and no more will come."""

    #: Whether the last target was taken in runs' tail: runs hint, and none holds a key back.
    in_tail: bool = False
    wait_count: int  # distributed's: the looks a worker must be idle for before it is retired

    async def target(self) -> int:
        seen = int(await super().target())
        self.in_tail = False
        try:
            hints = await self.scheduler.get_metadata(keys=[WAITING_KEY], default=None)
        except Exception as exc:  # an old or unreachable scheduler: what it sees alone
            log.debug("no hint of keys waiting: %s", exc)
            return seen
        workers = self.cluster.scheduler_info.get("workers", {}) if self.cluster else {}
        threads = [w.get("nthreads", 1) for w in workers.values()]
        per_worker = sum(threads) / len(threads) if threads else 1.0
        now = time.time()
        self.in_tail = bool(fresh_hints(hints, now)) and held_back(hints, now) == 0
        return seen + extra_workers(hints, self.target_duration, per_worker, now)

    async def recommendations(self, target: int) -> dict[str, Any]:
        """distributed's, but in runs' tail a worker to close is closed at the first look."""
        if not self.in_tail:
            return dict(await super().recommendations(target))
        patient, self.wait_count = self.wait_count, 1
        try:
            return dict(await super().recommendations(target))
        finally:
            self.wait_count = patient


def adapt_to_run(cluster: Any, minimum: int, maximum: int, **kwargs: Any) -> Any:
    """`cluster.adapt(minimum, maximum)` with sdt's `RunAdaptive`: besides the tasks the scheduler
    sees, the keys a run still holds back (submission is bounded) count as work waiting, so the
    cluster grows while they wait and shrinks in the run's tail. For a `distributed` cluster
    (a `SpecCluster`, dask-jobqueue's, dask-cloudprovider's); the plug's `adapt_cluster` calls it."""
    return cluster.adapt(Adaptive=RunAdaptive, minimum=minimum, maximum=maximum, **kwargs)
