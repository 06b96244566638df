"""The main job: one analysis per key of a data plug, on the cluster a plug made.

Everything is checked before the cluster starts. Keys go to the cluster a bounded number
at a time (about two seconds of work, at least 8 per worker thread), each result is
logged as it arrives, and only small rows cross the network. A scheduler the plug attached
to (`sdt_core.Attached`) is left as it was found: no worker restarted, the performance
report's task-stream recorder removed again, only the run's own client closed.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dask.config

from sdt_core import acceleration
from sdt_core.analysis import Analysis, check_sdt_options, load_analysis, sdt_pipeline
from sdt_core.dataplugs import DataPlug, open_data
from sdt_core.errors import SdtError
from sdt_core.job import signals, watchdog
from sdt_core.job.access import check_before_start, check_on_worker
from sdt_core.job.cost import Ledger, ledger
from sdt_core.job.submission import submit_all
from sdt_core.job.task import pack, process_packed_key
from sdt_core.output.cluster_logs import LOGS, ClusterLogs
from sdt_core.output.files import replacing
from sdt_core.output.report import written_at_exit
from sdt_core.output.results import LOG, SUMMARY, ResultLog, done_keys, log_rows
from sdt_core.output.run_log import RUN_LOG, RunLog
from sdt_core.output.summary import RunSummary, error_kinds
from sdt_core.output.terminal import STDERR_LOG, Terminal
from sdt_core.plugs.clientplug import ClientPlug, RegisteredPlug, get_plug
from sdt_core.plugs.scaling import WaitingKeys, WorkerTimeline
from sdt_core.plugs.settings import mask_credentials
from sdt_core.plugs.warm import for_run as warm_for_run

REPORT = "dask-report.html"
TASK_STREAM = "task-stream"  # the scheduler plugin Dask's performance report records tasks with
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A run checked and ready to start: everything `run` needs before a cluster exists."""

    data_plug: DataPlug
    function: Analysis
    fast: tuple[acceleration.Substitution, ...]
    cluster_plug: ClientPlug
    selected: list[tuple[Any, ...]]
    run_id: dict[str, Any]
    max_in_flight: int
    retries: int
    key_timeout: float
    rerun: frozenset[str]
    warm: dict[str, bool]  # dask config `sdt.warm-workers` while the cluster starts, decided for the analysis
    ledger: Ledger | None = None  # what the run spends, when the plug's plan has prices


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
    loss_options: Mapping[str, Any] | None = None,
    keys: Iterable[Any] | None = None,
    limit: int | None = None,
    max_in_flight: int = 10_000,
    retries: int = 3,
    report: bool = True,
    progress_interval: float = 10.0,
    biggest_first: bool = True,
    exact_sdt: bool | None = None,
    terminal: Terminal | None = None,
    dry_run: bool = False,
    key_timeout: float | str | None = None,
    rerun: Iterable[str] = (),
    max_cost: float | None = None,
    adapt: str | tuple[int, int] | None = None,
) -> RunSummary:
    """Run `analysis` (default: SDT's pipeline) for every key of `data` on cluster plug `plug`.

    `data` is a directory, a data plug URL (`s3://bucket/prefix`) or a DataPlug; None is the
    embedded sample set. Keys go biggest first when the data plug can weigh them. SDT runs on
    its fast path unless `exact_sdt` (default: dask config `sdt.exact-sdt`, else False).
    `report`: the fleet report (OUT/report.html, `sdt_core.output.report`) and Dask's performance report.
    `terminal` says what to show (default: progress; log records and warnings go to
    OUT/run.log, the cluster's logs to OUT/logs/). Raises `SdtError` on bad input, before
    anything starts. A key running longer than `key_timeout` (seconds or a duration such as
    "30m"; default: dask config `sdt.key-timeout`, else 2 h) is failed with stage `timeout`
    and its worker replaced. A `resume` skips every key done, except those whose last row
    failed in a stage of `rerun` (e.g. `{"timeout"}`). `dry_run`: check every input and list
    the keys, then stop: nothing is started or written, and the summary's `keys` counts what
    a run would do. With a plug whose plan has prices, each row records its `cost_usd` and
    run.json the run's; a key starts only while the keys done and in flight, and it, are
    expected to stay within `max_cost` (USD); the keys left get a row of stage `budget` (a
    resume runs them). `adapt=(MIN, MAX)`: the cluster grows to MAX workers while keys wait
    and shrinks in the run's tail (a plug with the `adapt_cluster` hook); run.json records
    its workers over time.
    """
    started = time.monotonic()
    _check_bounds(max_in_flight=max_in_flight, retries=retries, limit=limit)
    seconds = watchdog.key_timeout(key_timeout)
    again = _rerun(rerun, resume)
    data_plug = _data_plug(data)
    _check_out(out, data_plug)
    function, analysis_id = _analysis(analysis, loss_analysis, pipeline or {}, loss_options or {})
    warm = warm_for_run(sdt_analysis=analysis is None)
    exact = acceleration.exact_sdt() if exact_sdt is None else exact_sdt
    with dask.config.set({acceleration.EXACT_CONFIG: exact}):  # plugs size workers by the mode
        cluster_plug = get_plug(plug, **(settings or {})) if isinstance(plug, str) else plug
    _adapt(cluster_plug, adapt)
    selected = _keys(data_plug, keys, limit)
    check_before_start(data_plug, cluster_plug, selected[0])
    spend = ledger(cluster_plug, max_cost)
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
        "key_timeout_s": seconds,
        "adapt": getattr(cluster_plug, "adapt", None),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sdt_core": version("sdt-core"),
    }
    if dry_run:
        folder = Path(out)
        return RunSummary(
            folder,
            len(selected),
            0,
            0,
            0,
            round(time.monotonic() - started, 1),
            folder / f"{SUMMARY}.csv",
            folder / f"{SUMMARY}.parquet",
            None,
            mode,
            cluster=repr(cluster_plug),
            dry_run=True,
        )
    ready = Prepared(
        data_plug, function, fast, cluster_plug, selected, run_id, max_in_flight, retries, seconds, again, warm, spend
    )
    try:
        return _run(ready, Path(out), resume, report, progress_interval, biggest_first, terminal or Terminal(), started)
    except signals.Stopped as stop:  # also one before the run counts its keys, or one after: `_stopped`
        stop.detail = stop.detail or _stopped(Path(out), selected)
        raise


def _stopped(out: Path, selected: list[tuple[Any, ...]]) -> str:
    """What a stopped run says after "stopped by SIGNAL": the keys done in `out`, and how to go on."""
    done = len(done_keys(log_rows(out / LOG)) & set(selected))
    return f"{done} of {len(selected)} keys done in {out}; the same command with --resume goes on"


def _run(
    ready: Prepared,
    out: Path,
    resume: bool,
    report: bool,
    progress_interval: float,
    biggest_first: bool,
    terminal: Terminal,
    started: float,
) -> RunSummary:
    """The run itself, once every input was checked: the folder, the cluster, the keys, the summary."""
    data_plug, selected, cluster_plug, spend = ready.data_plug, ready.selected, ready.cluster_plug, ready.ledger
    not_started, held = 0, time.monotonic()
    # The folder is this run's until the end; its fleet report is written at the end, whatever happens.
    with (
        ResultLog(Path(out), ready.run_id, resume) as log,
        written_at_exit(Path(out), report, signals.shielded) as fleet_report,
    ):
        try:
            earlier = log.done(ready.rerun) & set(selected) if resume else set()
            todo = [key for key in selected if key not in earlier]
            if biggest_first:
                todo = _biggest_first(data_plug, todo)
            report_path = Path(out) / REPORT if report and todo else None
            records = RunLog(Path(out) / RUN_LOG, echo=terminal.live)
            saved: list[Path] = []
            cluster = ""
            if todo:
                packed = pack(data_plug, ready.function, ready.fast)
                task = functools.partial(process_packed_key, packed=packed)
                try:
                    with records, terminal.holding(Path(out) / LOGS / STDERR_LOG):
                        with (
                            dask.config.set(ready.warm),
                            signals.running(cluster_plug) as client,
                            _as_found(client, cluster_plug),
                            _performance_report(report_path),
                        ):
                            cluster = cluster_plug.cluster_line()
                            logs = ClusterLogs(cluster_plug, client, Path(out) / LOGS)
                            progress = terminal.progress(len(selected), len(earlier), progress_interval)

                            timeline = WorkerTimeline(client)
                            waiting = _waiting(client, cluster_plug)

                            def record(rows: Iterable[dict[str, Any]]) -> None:
                                timeline.look()
                                batch = [_masked(row) for row in rows]
                                if waiting is not None:
                                    waiting.finished(batch)
                                if spend is not None:
                                    batch = [spend.charge(row) for row in batch]
                                logs.point(batch)
                                log.append(batch)
                                terminal.finished(batch)

                            owned = cluster_plug.owns_cluster
                            where = str(getattr(data_plug, "location", type(data_plug).__name__))
                            try:
                                if owned:  # a scheduler attached to gets no plugin of ours
                                    records.attach(client)
                                    logs.outlive_ctrl_c()
                                check_on_worker(client, packed, todo[0], where)
                                held = time.monotonic()
                                left = submit_all(
                                    client,
                                    todo,
                                    task,
                                    record,
                                    progress,
                                    ready.max_in_flight,
                                    ready.retries,
                                    owned,
                                    ready.key_timeout,
                                    spend.room if spend is not None else None,
                                    waiting.holding if waiting is not None else None,
                                )
                                if spend is not None:
                                    not_started = len(left)
                                    log.append([spend.not_started(key) for key in left])
                            finally:  # also on Ctrl-C and SIGTERM: before the cluster closes
                                progress.close()
                                if waiting is not None:
                                    waiting.clear()
                                timeline.close()
                                fields: dict[str, Any] = {"workers": timeline.points}
                                if spend is not None:
                                    fields["cost"] = spend.record(time.monotonic() - held)
                                _add_to_record(log, fields)
                                saved = logs.save()
                                records.drain()
                finally:
                    log.close()
            csv, parquet, counts = log.write_summary(keys=selected)
            latest = {tuple(row["key"]): row for row in log.rows()}
            kinds = error_kinds(latest[key] for key in selected if key in latest)
        except signals.Stopped as stop:
            log.close()
            stop.detail = _stopped(out, selected)
            raise
    return RunSummary(
        Path(out),
        len(selected),
        counts["ok"],
        counts["error"],
        len(earlier),
        round(time.monotonic() - started, 1),
        csv,
        parquet,
        report_path,
        ready.run_id["sdt_mode"],
        fleet_report.path,
        kinds,
        records.path if records.path.exists() else None,
        records.count,
        tuple(saved),
        cluster,
        cost_usd=None if spend is None else round(spend.spent, 6),
        not_started=not_started,
        max_cost=None if spend is None else spend.max_cost,
    )


def _adapt(plug: ClientPlug, adapt: str | tuple[int, int] | None) -> None:
    """`adapt` given to `run`: set on the plug, which must be one with hooks that can scale."""
    if adapt is None:
        return
    if not isinstance(plug, RegisteredPlug):
        raise SdtError(f"--adapt needs a plug with hooks; {type(plug).__name__} is a ClientPlug class: leave it out")
    plug.set_adapt(adapt)


def _waiting(client: Any, plug: ClientPlug) -> WaitingKeys | None:
    """The hint of keys held back, for a cluster that may adapt: the plug's own with `--adapt`, or
    one attached to (e.g. `sdt up NAME --adapt`); None for a cluster of fixed size."""
    return WaitingKeys(client) if getattr(plug, "adapt", None) is not None or not plug.owns_cluster else None


def _masked(row: dict[str, Any]) -> dict[str, Any]:
    """A row whose error names a data URL, its password masked (`mask_credentials`)."""
    error = row.get("error")
    return row | {"error": mask_credentials(error)} if isinstance(error, str) else row


#: The largest --limit, --max-in-flight and retries taken: beyond, a typo, not a wish.
MAX_COUNT = 10**9


def _check_bounds(**values: int | None) -> None:
    lowest = {"max_in_flight": 1, "retries": 0, "limit": 1}
    for name, value in values.items():
        if value is None:
            continue
        option = "--" + name.replace("_", "-")
        if isinstance(value, bool) or not isinstance(value, int) or not lowest[name] <= value <= MAX_COUNT:
            raise SdtError(f"{option} must be an integer from {lowest[name]} to {MAX_COUNT:,}, got {value!r}")


def _check_out(out: str | Path, data: DataPlug) -> None:
    """The output folder: given, and not the folder the data are read from."""
    if not str(out).strip():
        raise SdtError("--out is empty: give the folder for the results, e.g. --out sdt-results")
    if data.reads_folder(Path(out)):
        raise SdtError(
            f"--out {out} is the data folder: a resume would read the run's own files as systems; choose another --out"
        )


def _rerun(stages: Iterable[str], resume: bool) -> frozenset[str]:
    """The stages whose failed keys a resume runs again; only with a resume."""
    chosen = frozenset(stage.strip() for stage in ([stages] if isinstance(stages, str) else stages))
    if chosen and not resume:
        raise SdtError("--rerun goes with --resume: it names the stages whose failed keys the resume runs again")
    if "" in chosen:
        raise SdtError("--rerun takes the stage of failed keys, such as timeout, memory, worker or analysis")
    return chosen


def _data_plug(data: str | DataPlug | None) -> DataPlug:
    from sdt_core.dataplugs.sample import SampleData

    if data is None:
        return SampleData()
    return open_data(data) if isinstance(data, str) else data


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
    analysis: str | Analysis | None, loss_analysis: bool, pipeline: Mapping[str, Any], loss_options: Mapping[str, Any]
) -> tuple[Analysis, dict[str, Any]]:
    """The function to run per key, and what identifies it in run.json."""
    if analysis is None:
        check_sdt_options("--pipeline", pipeline)
        check_sdt_options("--loss-option", loss_options)
        if loss_options and not loss_analysis:
            raise SdtError("--loss-option applies to the loss factor analysis: add --loss-analysis")
        options = {"loss_analysis": loss_analysis, **pipeline}
        options |= {"loss_options": dict(loss_options)} if loss_options else {}  # earlier runs' identity kept
        return functools.partial(sdt_pipeline, **options), {"function": _name(sdt_pipeline), "options": options}
    if loss_analysis or pipeline or loss_options:
        raise SdtError(
            "--loss-analysis, --loss-option and --pipeline options apply to SDT's pipeline, not to --analysis"
        )
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


@contextmanager
def _as_found(client: Any, plug: ClientPlug) -> Iterator[None]:
    """On a scheduler the plug attached to: remove, at the end, the task-stream recorder the
    performance report adds to the scheduler, unless it was there before."""
    if plug.owns_cluster:
        yield
        return
    had = client.run_on_scheduler(_has_task_stream)
    try:
        yield
    finally:
        if not had:
            try:
                client.run_on_scheduler(_remove_task_stream)
            except Exception as exc:  # the scheduler went away: nothing left to tidy
                log.debug("could not remove the task-stream recorder: %s", exc)


def _has_task_stream(dask_scheduler: Any) -> bool:
    return TASK_STREAM in dask_scheduler.plugins


def _remove_task_stream(dask_scheduler: Any) -> None:
    if TASK_STREAM in dask_scheduler.plugins:
        dask_scheduler.remove_plugin(name=TASK_STREAM)


def _add_to_record(results: Any, fields: dict[str, Any]) -> None:
    """Add `fields` to run.json; while an error ends the run (a full disk), failing to does not hide it."""
    ending = sys.exc_info()[1]
    try:
        results.add_to_record(**fields)
    except OSError as exc:
        if ending is None:
            raise
        log.debug("run.json kept without %s: %s", ", ".join(fields), exc)


@contextmanager
def _performance_report(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    from distributed import performance_report

    with replacing(path) as temporary, performance_report(filename=str(temporary)):
        yield
