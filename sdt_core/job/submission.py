"""Keys through the cluster: a bounded window of tasks, each result recorded once.

About two seconds of work is in flight (at least 8 keys per worker thread, at most
`max_in_flight`; the threads are read again as keys finish, so a cluster that grows gets
keys); each finished task's row is handed to `record` as it arrives. A task the cluster
could not finish gets a row that says why: `worker` when the key killed its worker process
each time it ran, `memory` when its worker stayed paused for memory and `timeout` when it
ran longer than the key timeout (the watchdog), and `cluster` otherwise (the cluster went
away): only `cluster` rows are run again by a resume (unless `--rerun` names a stage).
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

from sdt_core.analysis import ERROR_LENGTH
from sdt_core.errors import RunFailed
from sdt_core.job.watchdog import Watchdog
from sdt_core.output.progress import Progress
from sdt_core.output.results import CLUSTER_STAGE, WORKER_STAGE


def submit_all(
    client: Any,
    todo: list[tuple[Any, ...]],
    task: Callable[..., dict[str, Any]],
    record: Callable[[Iterable[dict[str, Any]]], None],
    progress: Progress,
    max_in_flight: int,
    retries: int,
    restart_workers: bool = True,
    key_timeout: float | None = None,
    budget: Callable[[int, int], int | None] | None = None,
    holding: Callable[[int], None] | None = None,
) -> list[tuple[Any, ...]]:
    """Run `task(key)` for every key of `todo` on `client`'s cluster; `record` each row.
    `budget(in_flight, threads)` says how many more keys may start (None: no limit; the
    ledger's `room`): once it allows none, those in flight finish, and the keys never
    started are returned. `holding(n)` hears after each submission how many keys are still
    held back (`WaitingKeys`: adaptive scaling counts them).

    A key running longer than `key_timeout` seconds is failed and its worker replaced.
    `restart_workers=False` (a scheduler sdt-core attached to): a worker paused for memory
    or running a key too long is never restarted, only the keys it runs are failed.
    """
    from distributed import as_completed

    threads = ClusterThreads(client)
    pending = iter(todo)
    held = [len(todo)]  # keys not submitted yet
    owners: dict[Any, tuple[Any, ...]] = {}  # task key -> data key
    futures: dict[Any, Any] = {}  # task key -> Future, for the watchdog
    finished = as_completed(with_results=True, raise_errors=False)  # results fetched in the background

    def refill(two_seconds_of_work: int = 0) -> None:
        now_threads = threads.now()  # a cluster that grew (--adapt) gets keys for its new threads
        target = min(max_in_flight, max(8 * now_threads, two_seconds_of_work))
        room = target - len(owners)
        allowed = None if budget is None else budget(len(owners), now_threads)
        if allowed is not None and allowed < room:  # the budget, not the window, decides
            room = allowed
        elif room < max(1, target // 4):  # one client.map per quarter window
            return
        if room <= 0:
            return
        batch = list(itertools.islice(pending, room))
        if batch:
            submitted = client.map(task, batch, pure=False, retries=retries)
            owners.update(zip((f.key for f in submitted), batch, strict=True))
            futures.update((f.key, f) for f in submitted)
            finished.update(submitted)
            held[0] -= len(batch)
            if holding is not None:
                holding(held[0])

    recent: collections.deque[tuple[float, int]] = collections.deque()  # (time, keys finished)
    with Watchdog(client, futures, restart=restart_workers, key_timeout=key_timeout) as watchdog:
        refill()
        for batch in finished.batches():
            rows = []
            lost = client.status != "running"  # the scheduler went away: what was in flight is cancelled
            for future, result in batch:
                key = owners.pop(future.key)
                futures.pop(future.key, None)
                ended = watchdog.fatal or lost
                if not ended or future.key in watchdog.failures or future.status != "cancelled":
                    rows.append(row_of(key, future, result, watchdog.failures.get(future.key)))
            batch.clear()  # release the finished tasks on the scheduler before adding new ones
            record(rows)
            if lost:
                raise RunFailed(
                    f"lost the connection to the scheduler (client {client.status}): the keys done are kept; "
                    "once the cluster is back, the same command with --resume goes on"
                )
            if any(row["status"] == "ok" for row in rows):
                watchdog.progressed()
            failed = sum(row["status"] != "ok" for row in rows)
            progress.update(len(rows) - failed, failed)
            if watchdog.fatal:
                continue  # every pending task is being cancelled: drain them, start nothing new
            now = time.monotonic()
            recent.append((now, len(rows)))
            while now - recent[0][0] > 2.0:
                recent.popleft()
            two_seconds_of_work = sum(n for _, n in recent)  # keys finished in the last two seconds
            refill(two_seconds_of_work)
    if watchdog.fatal:
        raise RunFailed(watchdog.fatal)
    return list(pending)


class ClusterThreads:
    """The cluster's worker threads (at least 1), read again at most once per `every` seconds."""

    def __init__(self, client: Any, every: float = 1.0):
        self.client, self.every = client, every
        self._count, self._read = 1, -float("inf")

    def now(self) -> int:
        """The threads as last read, read again if that is `every` seconds old."""
        if time.monotonic() - self._read >= self.every:
            self._read = time.monotonic()
            try:
                self._count = max(1, sum(self.client.nthreads().values()))
            except Exception:  # the scheduler is going away: the loop sees it and says so
                pass
        return self._count


def row_of(key: tuple[Any, ...], future: Any, result: Any, failure: tuple[str, str] | None = None) -> dict[str, Any]:
    """The task's row; or, for a task the cluster could not finish, an error row saying why
    (`failure`: the stage and reason the watchdog failed it for)."""
    if future.status == "finished":
        return result  # type: ignore[no-any-return]
    if failure is not None:
        stage, text = failure
    else:
        error = result[1] if isinstance(result, tuple) and len(result) == 3 else result  # (type, value, traceback)
        if type(error).__name__ == "KilledWorker":
            stage = WORKER_STAGE
            text = (
                "KilledWorker: its worker process died each time it ran the key (a crash, or memory beyond the limit)"
            )
        else:
            stage, text = CLUSTER_STAGE, f"{type(error).__name__}: {error}"
    text = " ".join(text.split())[:ERROR_LENGTH]
    return {"key": list(key), "status": "error", "stage": stage, "error": text}
