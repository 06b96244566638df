"""Durable results: an append-only log of one JSON line per finished key, then summaries.

`results.jsonl` is written as each key finishes and flushed, so a crash loses at most the
keys in flight; `--resume` reads it back to skip what is done. `run.json` records what the
run was, so a resume cannot mix two different runs in one folder.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sdt_core.errors import RunFailed, SdtError
from sdt_core.output.files import open_append, write_whole, written_whole
from sdt_core.output.folder_lock import FolderLock

LOG = "results.jsonl"
RUN = "run.json"
SUMMARY = "summary"
#: Stages of the rows written for a task the cluster could not finish (sdt_core.job.submission).
CLUSTER_STAGE = "cluster"  # the cluster went away: transient, a resume runs the key again
WORKER_STAGE = "worker"  # the key killed its worker process every time it ran
MEMORY_STAGE = "memory"  # the key kept its worker paused for memory
TIMEOUT_STAGE = "timeout"  # the key ran longer than the key timeout (--key-timeout)
SETUP_STAGE = "setup"  # the worker could not load the data plug or the analysis: a resume retries
BUDGET_STAGE = "budget"  # not started: the run's spend reached --max-cost (sdt_core.job.cost)
#: Rows a resume runs again: what failed was the environment, not the key.
TRANSIENT_STAGES = (CLUSTER_STAGE, SETUP_STAGE, BUDGET_STAGE)
#: What must match for a resume to go on with a folder.
IDENTITY = ("data", "analysis", "sdt_mode")
#: The prefix of the row fields of a key's metadata (`DataPlug.metadata`): `meta_latitude`.
META_PREFIX = "meta_"
#: Row fields sdt-core writes itself; an analysis returning one of them fails its key.
RESERVED = frozenset(
    {
        "key",
        "status",
        "stage",
        "error",
        "start_time",
        "load_s",
        "analysis_s",
        "total_s",
        "worker",
        "worker_log",
        "peak_memory_mb",
        "sdt_mode",
        "sdt_substitutions",
        "sdt_fallback",
        "power_column",
        "cost_usd",
    }
)


def _key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row["key"])


def log_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete row of the log file `path`, in order. A line cut short by a crash (not
    JSON) is skipped; a line that is not a row of sdt's (not UTF-8 text; JSON that is not an
    object with a list `key` and a `status` ok or error) is an `SdtError` naming it."""
    if not path.exists():
        return
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                raise _not_a_row(path, number, "is not UTF-8 text") from None
            except (json.JSONDecodeError, RecursionError):
                continue
            problem = row_problem(row)
            if problem:
                raise _not_a_row(path, number, problem)
            yield row


def done_keys(rows: Iterable[Mapping[str, Any]], rerun: Iterable[str] = ()) -> set[tuple[Any, ...]]:
    """Keys with a final row among `rows`: ok, or failed for the key itself (not for the
    cluster), and not in a stage of `rerun` (`--rerun timeout`: the keys that ran too long go again)."""
    again = {*TRANSIENT_STAGES, *rerun}
    latest = {_key(row): row for row in rows}
    return {key for key, row in latest.items() if row.get("stage") not in again}


def row_problem(row: Any) -> str | None:
    """What makes `row` no result row of sdt's, or None."""
    if not isinstance(row, dict):
        return f"is {type(row).__name__} JSON, not a row (an object with key and status)"
    key = row.get("key")
    if not isinstance(key, list) or not key or not all(isinstance(k, (str, int, float, bool)) for k in key):
        return f'has the key {str(key)[:60]!r}, not a list of plain values such as ["system-1"]'
    if row.get("status") not in ("ok", "error"):
        return f"has the status {str(row.get('status'))[:30]!r}, not ok or error"
    return None


def _not_a_row(path: Path, number: int, problem: str) -> SdtError:
    return SdtError(
        f"{path} line {number} {problem}: not written by sdt; fix or remove that line, or choose another --out"
    )


def _run_record(path: Path) -> dict[str, Any]:
    """The run.json at `path`; `SdtError` if it is not one."""
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        record = None
    if not isinstance(record, dict):
        raise SdtError(f"--resume: {path} is not the record of an sdt run (a JSON object); choose another --out")
    return record


class ResultLog:
    """The output folder of one run: its log, its identity, its summaries."""

    def __init__(self, folder: Path, run: Mapping[str, Any], resume: bool):
        self.folder = folder
        self.path = folder / LOG
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.lock = FolderLock(folder)
            self.lock.acquire()  # first: a second run is told the folder is busy, nothing else
        except OSError as exc:
            raise SdtError(f"cannot write to the output folder {folder}: {exc.strerror}; choose another --out") from exc
        try:
            self._open(run, resume)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, run: Mapping[str, Any], resume: bool) -> None:
        folder = self.folder
        try:
            if self.path.exists() and self.path.stat().st_size and not resume:
                raise SdtError(
                    f"{folder} holds results of an earlier run; add --resume to go on with it, or choose another --out"
                )
            self._check_identity(folder / RUN, run, resume)
            self.run = dict(run)
            write_whole(folder / RUN, json.dumps(self.run, indent=2, default=str))
            self._file = open_append(self.path)
        except OSError as exc:
            raise SdtError(f"cannot write to the output folder {folder}: {exc.strerror}; choose another --out") from exc
        if self._file.tell() and not self.path.read_bytes().endswith(b"\n"):
            self._file.write("\n")  # a crash cut the last line short: never glue onto it
        self._synced = time.monotonic()

    def _check_identity(self, path: Path, run: Mapping[str, Any], resume: bool) -> None:
        if not resume:
            return
        if not path.exists():
            if any(True for _ in self.rows()):
                raise SdtError(
                    f"--resume: {path.parent} holds results but no {RUN}, which tells what data and analysis "
                    "they are of; choose another --out"
                )
            return
        before = _run_record(path)
        if before.get("sdt_mode", "exact") != run["sdt_mode"]:
            flag = "with --exact-sdt" if run["sdt_mode"] == "fast" else "without --exact-sdt"
            raise SdtError(
                f"--resume: {path.parent} holds results of SDT's {before.get('sdt_mode', 'exact')} mode, "
                f"this run is {run['sdt_mode']}: run {flag} to go on with it, or choose another --out"
            )
        for field in IDENTITY:
            if before.get(field) != json.loads(json.dumps(run[field], default=str)):
                raise SdtError(
                    f"--resume: {path.parent} was a run with {field} {before.get(field)!r}, "
                    f"not {run[field]!r}; choose another --out"
                )

    def add_to_record(self, **fields: Any) -> None:
        """Add `fields` to run.json (e.g. what the run cost, known at its end)."""
        self.run |= fields
        write_whole(self.folder / RUN, json.dumps(self.run, indent=2, default=str))

    def rows(self) -> Iterable[dict[str, Any]]:
        """Every complete row of the log, in order (a line cut short by a crash is skipped)."""
        return log_rows(self.path)

    def done(self, rerun: Iterable[str] = ()) -> set[tuple[Any, ...]]:
        """Keys with a final row (`done_keys`)."""
        return done_keys(self.rows(), rerun)

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Write `rows`; a failure to write ends the run in one line (a row cut short is not counted)."""
        try:
            for row in rows:
                self._file.write(json.dumps(row, default=str) + "\n")
            self._file.flush()  # survives a kill of this process
            if time.monotonic() - self._synced > 1.0:  # and, within a second, of the machine
                os.fsync(self._file.fileno())
                self._synced = time.monotonic()
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._file.close()  # what is still buffered is lost: a resume runs those keys again
            raise RunFailed(
                f"cannot write {self.path}: {exc.strerror}; the keys written are kept: "
                "make room, then the same command with --resume goes on"
            ) from exc

    def close(self) -> None:
        """Flush the log to disk and close it (the folder stays locked until the run ends)."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def __enter__(self) -> ResultLog:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            self.lock.release()  # another run may use the folder now

    def write_summary(self, keys: Iterable[tuple[Any, ...]] | None = None) -> tuple[Path, Path, dict[str, int]]:
        """summary.csv and summary.parquet: one row per key of the folder, its last result; and
        the counts by status of `keys` (default: all of them)."""
        import pandas as pd

        latest = {_key(row): row for row in self.rows()}
        counted = set(latest) if keys is None else set(keys) & set(latest)
        statuses = collections.Counter(latest[key]["status"] for key in counted)
        table = pd.DataFrame(list(latest.values()))
        if not table.empty:
            keys = pd.DataFrame(table.pop("key").tolist()).add_prefix("key_field_")
            table = pd.concat([keys, table], axis=1)
        csv, parquet = self.folder / f"{SUMMARY}.csv", self.folder / f"{SUMMARY}.parquet"
        with written_whole(csv) as file:
            table.to_csv(file, index=False)
        with written_whole(parquet, "wb") as file:
            table.astype({c: "string" for c in table.columns if table[c].dtype == object}).to_parquet(file)
        return csv, parquet, {"ok": statuses["ok"], "error": statuses["error"]}
