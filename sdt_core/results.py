"""Durable results: an append-only log of one JSON line per finished key, then summaries.

`results.jsonl` is written as each key finishes and flushed, so a crash loses at most the
keys in flight; `--resume` reads it back to skip what is done. `run.json` records what the
run was, so a resume cannot mix two different runs in one folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sdt_core.errors import SdtError

LOG = "results.jsonl"
RUN = "run.json"
SUMMARY = "summary"
#: Rows with this stage failed for the cluster, not for the data: a resume runs them again.
CLUSTER_STAGE = "cluster"
#: What must match for a resume to go on with a folder.
IDENTITY = ("data", "analysis", "sdt_mode")


def _key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row["key"])


class ResultLog:
    """The output folder of one run: its log, its identity, its summaries."""

    def __init__(self, folder: Path, run: Mapping[str, Any], resume: bool):
        self.folder = folder
        self.path = folder / LOG
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size and not resume:
                raise SdtError(
                    f"{folder} holds results of an earlier run; add --resume to go on with it, or choose another --out"
                )
            self._check_identity(folder / RUN, run, resume)
            (folder / RUN).write_text(json.dumps(dict(run), indent=2, default=str))
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise SdtError(f"cannot write to the output folder {folder}: {exc.strerror}; choose another --out") from exc
        if self._file.tell() and not self.path.read_bytes().endswith(b"\n"):
            self._file.write("\n")  # a crash cut the last line short: never glue onto it
        self._synced = time.monotonic()

    @staticmethod
    def _check_identity(path: Path, run: Mapping[str, Any], resume: bool) -> None:
        if not (resume and path.exists()):
            return
        before = json.loads(path.read_text())
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

    def rows(self) -> Iterable[dict[str, Any]]:
        """Every complete row of the log, in order (a line cut short by a crash is skipped)."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue

    def done(self) -> set[tuple[Any, ...]]:
        """Keys with a final row: ok, or failed for their data (not for the cluster)."""
        return {_key(row) for row in self.rows() if row.get("stage") != CLUSTER_STAGE}

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self._file.write(json.dumps(row, default=str) + "\n")
        self._file.flush()  # survives a kill of this process
        if time.monotonic() - self._synced > 1.0:  # and, within a second, of the machine
            os.fsync(self._file.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def write_summary(self) -> tuple[Path, Path, dict[str, int]]:
        """summary.csv and summary.parquet: one row per key, its last result; and the counts."""
        import pandas as pd

        latest = {_key(row): row for row in self.rows()}
        table = pd.DataFrame(list(latest.values()))
        if not table.empty:
            keys = pd.DataFrame(table.pop("key").tolist()).add_prefix("key_field_")
            table = pd.concat([keys, table], axis=1)
        csv, parquet = self.folder / f"{SUMMARY}.csv", self.folder / f"{SUMMARY}.parquet"
        table.to_csv(csv, index=False)
        table.astype({c: "string" for c in table.columns if table[c].dtype == object}).to_parquet(parquet)
        statuses = table["status"].value_counts().to_dict() if not table.empty else {}
        return csv, parquet, {"ok": int(statuses.get("ok", 0)), "error": int(statuses.get("error", 0))}
