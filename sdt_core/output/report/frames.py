"""A run folder as the tables of the fleet report: what run.json says, and each key's last row.

Everything here is plain pandas; `sdt_core.output.report.page` lays the tables out. Secrets are
masked in run.json already; `masked` masks again whatever a name says is secret.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sdt_core.errors import SdtError
from sdt_core.output.results import LOG, RUN, log_rows
from sdt_core.plugs.settings import _SECRET_NAME, MASK

#: SDT report fields whose distribution the report draws, and what it calls them.
SDT_FIELDS = {
    "capacity": "capacity estimate [kW]",
    "quality score": "data quality score",
    "clearness score": "clear-day share (clearness score)",
    "clipped fraction": "share of days clipped",
    "length": "length [years]",
}
#: The loss factor analysis's fields (`--loss-analysis`), drawn where it ran.
LOSS_FIELDS = {
    name: name
    for name in (
        "degradation rate [%/yr]",
        "total energy loss [kWh]",
        "degradation energy loss [kWh]",
        "soiling energy loss [kWh]",
        "capacity change energy loss [kWh]",
        "weather energy loss [kWh]",
        "system outage loss [kWh]",
    )
}


def _is_true(value: Any) -> bool:
    return value is True


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _nonzero(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value != 0


#: Flag -> (the SDT report field it reads, whether a value raises the flag).
FLAGS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "clipping": ("clipped fraction", _positive),
    "inverter clipping": ("inverter clipping", _is_true),
    "time shift fixed": ("time shift correction", _is_true),
    "capacity change": ("capacity change", _is_true),
    "tz correction": ("time zone correction", _nonzero),
}
#: Row fields of sdt-core itself, shown after the analysis's own in the per-key table.
OWN_FIELDS = ("start_time", "load_s", "analysis_s", "total_s", "peak_memory_mb", "worker", "sdt_mode")


@dataclass(frozen=True)
class RunTables:
    """One run folder: its run.json, and the last row of each key (`key` as a text label;
    `earlier`: done by an earlier run, which a `--resume` skipped)."""

    folder: Path
    run: dict[str, Any]
    keys: pd.DataFrame

    @property
    def started(self) -> float | None:
        """When this run (the last, for a resumed folder) started, in seconds since the epoch."""
        return _started(self.run)


def _started(run: Mapping[str, Any]) -> float | None:
    try:
        return datetime.datetime.fromisoformat(str(run["started"])).timestamp()
    except (KeyError, ValueError):
        return None


def read_run(folder: Path) -> RunTables:
    """The tables of run folder `folder`; `SdtError` (one line) if it holds no run."""
    if not folder.is_dir():
        raise SdtError(f"no run folder {folder}: give the --out folder of an sdt run")
    if not (folder / RUN).exists() and not (folder / LOG).exists():
        raise SdtError(f"{folder} holds no run (no {RUN} or {LOG}): give the --out folder of an sdt run")
    try:
        run = json.loads((folder / RUN).read_text()) if (folder / RUN).exists() else {}
    except (OSError, ValueError) as exc:
        raise SdtError(f"cannot read {folder / RUN}: {exc}; is it the output folder of an sdt run?") from exc
    run = run if isinstance(run, dict) else {}
    latest = {tuple(row["key"]): row for row in log_rows(folder / LOG) if isinstance(row, dict) and "key" in row}
    keys = pd.DataFrame([{**row, "key": key_label(key)} for key, row in latest.items()])
    for name in ("key", "status", "stage", "error"):
        if name not in keys:
            keys[name] = pd.Series(dtype=object)
    started = _started(run)
    start_times = pd.to_numeric(keys.get("start_time", pd.Series(index=keys.index, dtype=float)), errors="coerce")
    keys["earlier"] = start_times < started if started is not None else False
    return RunTables(folder, run, keys)


def key_label(key: Any) -> str:
    """A key as text: its fields joined by '/'."""
    return "/".join(map(str, key)) if isinstance(key, (list, tuple)) else str(key)


def masked(value: Any) -> Any:
    """`value` with the value of every name that says it is secret replaced by the mask."""
    if isinstance(value, Mapping):
        return {k: MASK if _SECRET_NAME.search(str(k)) else masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    if isinstance(value, str):
        return _SECRET_ASSIGNMENT.sub(lambda m: f"{m['name']}={MASK!r}", value)
    return value


#: `name=value` in a repr, where name says it is secret (the value: quoted, a mapping, or a word).
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<name>\w*(?:" + _SECRET_NAME.pattern + r")\w*)=(?:'[^']*'|\"[^\"]*\"|\{[^}]*\}|[^,)\s]*)", re.I
)


def counts(tables: RunTables) -> dict[str, int]:
    """Keys of the folder by status, and those an earlier run did (skipped by `--resume`)."""
    status = tables.keys["status"]
    return {
        "keys": len(tables.keys),
        "ok": int((status == "ok").sum()),
        "error": int((status == "error").sum()),
        "skipped": int(tables.keys["earlier"].sum()),
    }


def wall_seconds(tables: RunTables) -> float | None:
    """From the start of this run to the end of the last key it ran (None: it ran none)."""
    started, cost = tables.started, timeline(tables)
    if started is None or cost.empty:
        return None
    ends = cost["end"][cost["start"] >= started]
    return round(float(ends.max()) - started, 1) if len(ends) else None


def numeric(tables: RunTables, field: str) -> pd.Series:
    """The finite numbers of `field` over the keys that finished ok, indexed by key."""
    ok = tables.keys[tables.keys["status"] == "ok"]
    if field not in ok:
        return pd.Series(dtype=float)
    values = pd.to_numeric(ok[field].where(ok[field].map(lambda v: not isinstance(v, bool))), errors="coerce")
    values.index = ok["key"]
    return values[values.map(math.isfinite)].astype(float)


def distributions(tables: RunTables, fields: Mapping[str, str]) -> dict[str, pd.Series]:
    """Label -> values, for each field of `fields` that some ok key has a number for."""
    found = {label: numeric(tables, field) for field, label in fields.items()}
    return {label: values for label, values in found.items() if len(values)}


def flagged(tables: RunTables) -> pd.DataFrame:
    """One row per raised flag: `flag`, `key`, `value` (only flags whose field the rows have)."""
    ok = tables.keys[tables.keys["status"] == "ok"]
    found = []
    for flag, (field, raised) in FLAGS.items():
        if field in ok:
            pairs = zip(ok["key"], ok[field], strict=True)
            found += [{"flag": flag, "key": key, "value": _shown(value)} for key, value in pairs if raised(value)]
    return pd.DataFrame(found, columns=["flag", "key", "value"])


def _shown(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def flag_counts(tables: RunTables) -> pd.DataFrame:
    """`flag`, `count` and `keys` for each flag whose field the ok rows have (0 counts too)."""
    ok = tables.keys[tables.keys["status"] == "ok"]
    rows = flagged(tables)
    present = [flag for flag, (field, _) in FLAGS.items() if field in ok and ok[field].notna().any()]
    return pd.DataFrame(
        [
            {"flag": flag, "count": int((rows["flag"] == flag).sum()), "keys": few(rows["key"][rows["flag"] == flag])}
            for flag in present
        ],
        columns=["flag", "count", "keys"],
    )


def loss_analysis_counts(tables: RunTables) -> dict[str, int]:
    """Keys whose loss factor analysis ran, and those it skipped (too few days)."""
    ok = tables.keys[tables.keys["status"] == "ok"]
    ran = int(ok["degradation rate [%/yr]"].notna().sum()) if "degradation rate [%/yr]" in ok else 0
    skipped = int(ok["loss_analysis"].astype(str).str.startswith("skipped").sum()) if "loss_analysis" in ok else 0
    return {"ran": ran, "skipped": skipped}


def failures(tables: RunTables) -> pd.DataFrame:
    """One row per failed key: `key`, `stage`, `kind` (the exception's type) and `error`."""
    failed = tables.keys[tables.keys["status"] == "error"]
    errors = failed["error"].fillna("").astype(str)
    return pd.DataFrame(
        {
            "key": failed["key"],
            "stage": failed["stage"].fillna("?").astype(str),
            "kind": errors.map(error_kind),
            "error": errors.map(first_line),
        }
    ).reset_index(drop=True)


def error_kind(error: str) -> str:
    """The exception type an error row names ("ValueError: ..." -> "ValueError")."""
    head, sep, _ = error.partition(":")
    return head.strip() if sep and re.fullmatch(r"[\w.]+", head.strip()) else "error"


def first_line(error: str, length: int = 300) -> str:
    line = error.strip().splitlines()[0] if error.strip() else ""
    return line if len(line) <= length else line[: length - 1] + "…"


def failure_groups(found: pd.DataFrame) -> pd.DataFrame:
    """Failures by stage and kind, most first: `count`, a few `keys`, and the first `error`."""
    columns = ["stage", "kind", "count", "keys", "error"]
    if found.empty:
        return pd.DataFrame(columns=columns)
    groups = found.groupby(["stage", "kind"], sort=False).agg(
        count=("key", "size"), keys=("key", few), error=("error", "first")
    )
    return groups.reset_index().sort_values("count", ascending=False, kind="stable")[columns]


def few(keys: Sequence[str] | pd.Series, most: int = 6) -> str:
    """Up to `most` keys, and how many more."""
    keys = list(keys)
    shown = ", ".join(keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")


def timeline(tables: RunTables) -> pd.DataFrame:
    """Keys that ran on a worker: `key`, `worker`, `status`, `start` and `end` (epoch seconds),
    `total_s` and `peak_memory_mb` (NaN where unknown)."""
    keys = tables.keys
    columns = ["key", "worker", "status", "start", "end", "total_s", "peak_memory_mb"]
    if "start_time" not in keys or "total_s" not in keys:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        {
            "key": keys["key"],
            "worker": keys["worker"].fillna("?").astype(str) if "worker" in keys else "?",
            "status": keys["status"],
            "start": pd.to_numeric(keys["start_time"], errors="coerce"),
            "total_s": pd.to_numeric(keys["total_s"], errors="coerce"),
            "peak_memory_mb": pd.to_numeric(keys.get("peak_memory_mb"), errors="coerce"),
        }
    ).dropna(subset=["start", "total_s"])
    frame["end"] = frame["start"] + frame["total_s"]
    return frame[columns].reset_index(drop=True)


def spend(tables: RunTables) -> dict[str, float]:
    """run.json's `cost` (USD): the keys', the cluster's for the time it was up, the budget; {} without prices."""
    cost = tables.run.get("cost")
    if not isinstance(cost, dict):
        return {}
    return {name: float(cost[name]) for name in ("keys_usd", "cluster_usd", "max_cost_usd") if _finite(cost.get(name))}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def per_key(tables: RunTables) -> pd.DataFrame:
    """Every key's last row: key, status, stage, error, the analysis's fields, then sdt-core's."""
    keys = tables.keys.drop(columns=["earlier"])
    first = ["key", "status", "stage", "error"]
    own = [c for c in OWN_FIELDS if c in keys]
    rest = [c for c in keys.columns if c not in first and c not in own and c != "sdt_substitutions"]
    table = keys[[c for c in first if c in keys] + rest + own].copy()
    if "error" in table:
        table["error"] = table["error"].fillna("").astype(str).map(first_line)
    return table.reset_index(drop=True)


def cluster_size(tables: RunTables) -> pd.DataFrame:
    """run.json's `workers`: `seconds` since the run connected and the number of `workers` from
    then on, one row per change (empty when run.json has none, or not as [seconds, count] pairs)."""
    points = tables.run.get("workers")
    valid = isinstance(points, list) and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) for v in p) for p in points
    )
    return pd.DataFrame(points if valid and points else [], columns=["seconds", "workers"])
