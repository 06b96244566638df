"""The rule by which the fast path is proven equal to SDT as released, and where it is proven.

Two rows of one key, one from each mode, are equal when every report field is: strings,
booleans and integers identical, floats within `REL_TOL` of each other (relative), missing
values missing in both; and an error row is the same error (stage and exception type) in
both. Timings, memory, worker and mode fields are not results and are not compared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from sdt_core.output.results import RESERVED

REL_TOL = 1e-6

#: Row fields that describe how a key ran, not what it found (an error is compared by its type).
BOOKKEEPING = RESERVED - {"status", "stage"}

#: Days of the synthetic systems of the proof, in turn: short and long series, one under a
#: day's worth of valid data (an error row in both modes), and over two years for the loss
#: factor analysis. Even-numbered systems clip; systems of 60 days or more have a time shift;
#: every one has gaps (`sdt_core.dataplugs.sample`).
PROOF_LENGTHS = (365, 30, 120, 400, 800, 1, 200, 365, 60, 730)
PROOF_SYSTEMS = 20  # with SDT's two real sample files: 22 keys


def is_result_field(name: str) -> bool:
    return name not in BOOKKEEPING and not name.endswith("_s")


def differences(fast: Mapping[str, Any], exact: Mapping[str, Any]) -> list[str]:
    """Every way the fast row differs from the exact one by the rule above ([] when equal)."""
    found = []
    if fast.get("status") == "error" or exact.get("status") == "error":
        for field in ("status", "stage"):
            if fast.get(field) != exact.get(field):
                found.append(f"{field}: fast {fast.get(field)!r}, exact {exact.get(field)!r}")
        kinds = [str(row.get("error") or "").partition(":")[0] for row in (fast, exact)]
        if kinds[0] != kinds[1]:
            found.append(f"error type: fast {kinds[0]!r}, exact {kinds[1]!r}")
        return found
    for field in sorted({*fast, *exact}):
        if not is_result_field(field):
            continue
        if field not in fast or field not in exact:
            found.append(f"{field}: only in the {'fast' if field in fast else 'exact'} row")
        elif not equal(fast[field], exact[field]):
            found.append(f"{field}: fast {fast[field]!r}, exact {exact[field]!r}")
    return found


def equal(a: Any, b: Any) -> bool:
    """One field's values by the rule: floats within REL_TOL, everything else identical."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0) or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def compare_runs(fast: Iterable[Mapping[str, Any]], exact: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Differences by key (as text) between two runs' rows; keys missing from one run too."""
    by_key = [{str(row["key"]): row for row in rows} for rows in (fast, exact)]
    found: dict[str, list[str]] = {}
    for key in sorted({*by_key[0], *by_key[1]}):
        if key not in by_key[0] or key not in by_key[1]:
            found[key] = [f"only in the {'fast' if key in by_key[0] else 'exact'} run"]
        elif diff := differences(by_key[0][key], by_key[1][key]):
            found[key] = diff
    return found
