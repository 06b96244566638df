"""Versions that must match between the client and the cluster's scheduler and workers.

Used three ways: `sdt image DIR` pins them into a worker image, `sdt doctor --image-packages
FILE` compares them with an image's `pip list`, and a plug's client compares them with its
scheduler's and workers' when it connects (dask config `sdt.version-mismatch`: error, warn
or ignore; default error).
"""

from __future__ import annotations

import collections
import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sdt_core.errors import SdtError, VersionMismatchError

log = logging.getLogger(__name__)

#: Distributions whose versions must match (beside Python's minor version and the plugs).
PACKAGES = (
    "dask",
    "distributed",
    "cloudpickle",
    "msgpack",
    "toolz",
    "tornado",
    "numpy",
    "pandas",
    "solar-data-tools",
    "sdt-core",
)
PYTHON = "python"
MISMATCH_CONFIG = "sdt.version-mismatch"
FIX = "build the worker image with `sdt image DIR` (`sdt doctor` lists every difference)"


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _comparable(package: str, value: str | None) -> str | None:
    """Python is compared by its minor version, everything else exactly."""
    if value is None or package != PYTHON:
        return value
    return ".".join(value.split(".")[:2])


def local_versions(extra: Iterable[str] = ()) -> dict[str, str | None]:
    """This environment's versions of Python, `PACKAGES` and `extra` distributions (None: absent)."""
    found: dict[str, str | None] = {PYTHON: "{}.{}.{}".format(*sys.version_info[:3])}
    for name in (*PACKAGES, *extra):
        try:
            found[canonical(name)] = version(name)
        except PackageNotFoundError:
            found[canonical(name)] = None
    return found


_FREEZE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*===?\s*([^\s;#]+)")
_TABLE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s+(\d[^\s]*)(?:\s|$)")
_PYTHON = re.compile(r"^python\s+(\d+\.\d+(?:\.\d+)?)", re.I)


def parse_pip_list(text: str) -> dict[str, str]:
    """Versions from `pip list` (table, freeze or json format) or `pip freeze` output.

    A line `Python 3.11.7` (from `python --version`) gives the image's Python version.
    Lines installed from a URL or path (`name @ file://...`, `-e ...`) carry no version
    and are left out.
    """
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            rows = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise SdtError(f"the package list looks like JSON but is not: {exc}") from exc
        return {canonical(r["name"]): str(r["version"]) for r in rows if "name" in r and "version" in r}
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        for pattern in (_PYTHON, _FREEZE, _TABLE):
            match = pattern.match(line)
            if match:
                if pattern is _PYTHON:
                    found[PYTHON] = match.group(1)
                else:
                    found[canonical(match.group(1))] = match.group(2)
                break
    return found


@dataclass(frozen=True)
class Mismatch:
    """One package whose version here differs from the other side's (None: not installed)."""

    package: str
    here: str | None
    there: str | None


def compare(here: Mapping[str, str | None], there: Mapping[str, str | None]) -> list[Mismatch]:
    """Packages installed here whose version there differs; Python by its minor version.

    A package missing there is a mismatch; one unknown there (Python not in a pip list) is not.
    """
    mismatches = []
    for package, mine in here.items():
        if mine is None or (package == PYTHON and package not in there):
            continue
        theirs = there.get(package)
        if _comparable(package, mine) != _comparable(package, theirs):
            mismatches.append(Mismatch(package, mine, theirs))
    return mismatches


def cluster_differences(versions: Mapping[str, Any]) -> str:
    """The scheduler's and workers' differences from the client, from `Client.get_versions()`.

    One clause per package, e.g. "numpy 2.3.1 here, 2.2.0 on 3 of 4 workers"; "" if none.
    """
    mine = _packages(versions["client"])
    scheduler = versions.get("scheduler")
    workers = [_packages(info) for info in (versions.get("workers") or {}).values() if info]
    clauses = []
    for package, here in mine.items():
        wanted = {package: here}
        where = [f"{m.there or 'missing'} on the scheduler" for m in compare(wanted, _packages(scheduler or {}))]
        counts = collections.Counter(m.there or "missing" for w in workers for m in compare(wanted, w))
        where += [f"{there} on {n} of {len(workers)} workers" for there, n in sorted(counts.items())]
        if where:
            clauses.append(f"{package} {here} here, {', '.join(where)}")
    return "; ".join(clauses)


def _packages(info: Mapping[str, Any]) -> dict[str, str | None]:
    return {canonical(k): v for k, v in (info.get("packages") or {}).items()}


def check_cluster(client: Any, distributions: Iterable[str] = (), on_mismatch: str | None = None) -> str:
    """Compare the versions of client, scheduler and workers; one message for all differences.

    `on_mismatch` (default: dask config `sdt.version-mismatch`, else "error"): "error" raises
    `VersionMismatchError`, "warn" logs a warning, "ignore" does nothing. Returns the message
    ("" when everything matches).
    """
    import dask.config

    policy = on_mismatch or dask.config.get(MISMATCH_CONFIG, default="error")
    if policy not in ("error", "warn", "ignore"):
        raise SdtError(f"dask config {MISMATCH_CONFIG} must be error, warn or ignore, got {policy!r}")
    if policy == "ignore":
        return ""
    differences = cluster_differences(client.get_versions(packages=[*PACKAGES, *distributions]))
    if not differences:
        return ""
    message = f"the cluster runs other versions than this client: {differences}; {FIX}"
    if policy == "error":
        raise VersionMismatchError(message)
    log.warning("%s", message)
    return message
