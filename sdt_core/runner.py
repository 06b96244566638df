"""The main job: one analysis per key of a data plug, on the cluster a plug made.

Everything is checked before the cluster starts. Keys go to the cluster a bounded number
at a time (about two seconds of work, at least 8 per worker thread), each result is
logged as it arrives, and only small rows cross the network.
"""

from __future__ import annotations

import collections
import datetime
import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dask.config

from sdt_core import acceleration
from sdt_core.analysis import Analysis, load_analysis, process_key, sdt_pipeline
from sdt_core.clientplug import ClientPlug, get_plug
from sdt_core.dataplugs import DataPlug, open_data
from sdt_core.errors import SdtError
from sdt_core.progress import Progress
from sdt_core.results import CLUSTER_STAGE, ResultLog

REPORT = "dask-report.html"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    """What a run did and where its results are."""

    out: Path
    keys: int
    ok: int
    failed: int
    earlier: int  # keys done by an earlier run of the same folder (--resume)
    seconds: float
    summary_csv: Path
    summary_parquet: Path
    report: Path | None
    mode: str = "exact"  # "fast": SDT's fast path (sdt_core.acceleration); "exact": SDT as released


def run(
    data: str | DataPlug | None = None,
    *,
    plug: str | ClientPlug = "local",
    settings: Mapping[str, Any] | None = None,
    out: str | Path = "sdt-results",
    resume: bool = False,
    analysis: str | Analysis | None = None,
    loss_analysis: bool = False,
    pipeline: Mapping[str, Any] | None = None,
    keys: Iterable[Any] | None = None,
    limit: int | None = None,
    max_in_flight: int = 10_000,
    retries: int = 3,
    report: bool = True,
    progress_interval: float = 10.0,
    biggest_first: bool = True,
    exact_sdt: bool | None = None,
) -> RunSummary:
    """Run `analysis` (default: SDT's pipeline) for every key of `data` on cluster plug `plug`.

    `data` is a directory, a data plug URL (`s3://bucket/prefix`) or a DataPlug; None is the
    embedded sample set. Keys go biggest first when the data plug can weigh them. SDT runs on
    its fast path unless `exact_sdt` (default: dask config `sdt.exact-sdt`, else False).
    Raises `SdtError` on bad input, before anything starts.
    """
    from sdt_core.dataplugs.sample import SampleData

    started = time.monotonic()
    data_plug = SampleData() if data is None else open_data(data) if isinstance(data, str) else data
    function, analysis_id = _analysis(analysis, loss_analysis, pipeline or {})
    exact = acceleration.exact_sdt() if exact_sdt is None else exact_sdt
    with dask.config.set({acceleration.EXACT_CONFIG: exact}):  # plugs size workers by the mode
        cluster_plug = get_plug(plug, **(settings or {})) if isinstance(plug, str) else plug
    todo = _keys(data_plug, keys, limit)
    fast = _fast_path(exact)
    mode = "fast" if fast else "exact"
    run_id = {
        "data": {"plug": _name(type(data_plug)), "options": data_plug.public_dict()},
        "analysis": analysis_id,
        "sdt_mode": mode,
        "sdt": {
            "solar-data-tools": acceleration.sdt_version(),
            "substitutions": [s.record() for s in fast],
        },
        "cluster": repr(cluster_plug),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sdt_core": version("sdt-core"),
    }
    log = ResultLog(Path(out), run_id, resume)
    earlier = log.done() & set(todo) if resume else set()
    todo = [key for key in todo if key not in earlier]
    if biggest_first:
        todo = _biggest_first(data_plug, todo)
    report_path = Path(out) / REPORT if report and todo else None
    try:
        if todo:
            with cluster_plug as client, _performance_report(report_path):
                progress = Progress(len(todo) + len(earlier), len(earlier), progress_interval)
                try:
                    task = functools.partial(process_key, data=data_plug, analysis=function, fast=fast)
                    _submit_all(client, todo, task, log, progress, max_in_flight, retries)
                finally:
                    progress.close()
    finally:
        log.close()
    csv, parquet, counts = log.write_summary()
    return RunSummary(
        Path(out),
        len(todo) + len(earlier),
        counts["ok"],
        counts["error"],
        len(earlier),
        round(time.monotonic() - started, 1),
        csv,
        parquet,
        report_path,
        mode,
    )


def _fast_path(exact: bool) -> tuple[acceleration.Substitution, ...]:
    """The substitutions this run uses: none when exact, else those proven on this SDT."""
    if exact:
        return ()
    reason = acceleration.unproven_reason()
    if reason:
        log.warning("sdt run: %s", reason)
    return acceleration.proven()


def _name(obj: Any) -> str:
    return f"{obj.__module__}:{getattr(obj, '__qualname__', type(obj).__name__)}"


def _analysis(
    analysis: str | Analysis | None, loss_analysis: bool, pipeline: Mapping[str, Any]
) -> tuple[Analysis, dict[str, Any]]:
    """The function to run per key, and what identifies it in run.json."""
    if analysis is None:
        options = {"loss_analysis": loss_analysis, **pipeline}
        return functools.partial(sdt_pipeline, **options), {"function": _name(sdt_pipeline), "options": options}
    if loss_analysis or pipeline:
        raise SdtError("--loss-analysis and --pipeline options apply to SDT's pipeline, not to --analysis")
    function = load_analysis(analysis) if isinstance(analysis, str) else analysis
    return function, {"function": _name(function)}


def _keys(data: DataPlug, keys: Iterable[Any] | None, limit: int | None) -> list[tuple[Any, ...]]:
    """The keys to process, each a tuple, in order, without repeats."""
    try:
        listed = list(data.keys() if keys is None else keys)
    except SdtError:
        raise
    except Exception as exc:
        raise SdtError(f"cannot list the keys of {data!r}: {type(exc).__name__}: {exc}") from exc
    unique = dict.fromkeys(tuple(k) if isinstance(k, (tuple, list)) else (k,) for k in listed)
    chosen = list(itertools.islice(unique, limit))
    if not chosen:
        raise SdtError(f"no data: {getattr(data, 'location', repr(data))} has no keys")
    return chosen


def _biggest_first(data: DataPlug, keys: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Keys by the plug's `weight`, biggest first, so no big system starts last; else as given."""
    weight = getattr(data, "weight", None)
    try:
        weights = [weight(key) for key in keys] if weight else []
    except OSError:
        return keys
    known = [w for w in weights if w is not None]
    if len(known) != len(keys):
        return keys
    order = sorted(range(len(keys)), key=lambda i: -known[i])  # stable: ties keep their order
    return [keys[i] for i in order]


def _performance_report(path: Path | None) -> Any:
    if path is None:
        return nullcontext()
    from distributed import performance_report

    return performance_report(filename=str(path))


def _submit_all(
    client: Any,
    todo: list[tuple[Any, ...]],
    task: Callable[..., dict[str, Any]],
    log: ResultLog,
    progress: Progress,
    max_in_flight: int,
    retries: int,
) -> None:
    """Keep about two seconds of work in flight (at least 8 keys per thread); log each result."""
    from distributed import as_completed

    threads = max(1, sum(client.nthreads().values()))
    pending = iter(todo)
    owners: dict[str, tuple[Any, ...]] = {}
    finished = as_completed(with_results=True, raise_errors=False)  # results fetched in the background

    def refill(target: int) -> None:
        room = target - len(owners)
        if room < max(1, target // 4):  # one client.map per quarter of the window, not per result
            return
        batch = list(itertools.islice(pending, room))
        if batch:
            futures = client.map(task, batch, pure=False, retries=retries)
            owners.update(zip((f.key for f in futures), batch, strict=True))
            finished.update(futures)

    recent: collections.deque[tuple[float, int]] = collections.deque()  # (time, keys finished)
    refill(min(max_in_flight, 8 * threads))
    for batch in finished.batches():
        rows = [_row(owners.pop(future.key), future, result) for future, result in batch]
        batch.clear()  # release the finished tasks on the scheduler before adding new ones
        log.append(rows)
        failed = sum(row["status"] != "ok" for row in rows)
        progress.update(len(rows) - failed, failed)
        now = time.monotonic()
        recent.append((now, len(rows)))
        while now - recent[0][0] > 2.0:
            recent.popleft()
        two_seconds_of_work = sum(n for _, n in recent)  # keys finished in the last two seconds
        refill(min(max_in_flight, max(8 * threads, two_seconds_of_work)))


def _row(key: tuple[Any, ...], future: Any, result: Any) -> dict[str, Any]:
    """The task's row; or, when the cluster lost the task for good, a row a resume retries."""
    if future.status == "finished":
        return result  # type: ignore[no-any-return]
    return {"key": list(key), "status": "error", "stage": CLUSTER_STAGE, "error": f"{type(result).__name__}: {result}"}
