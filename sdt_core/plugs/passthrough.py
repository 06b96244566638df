"""Pass-through keywords that sdt-core checks before anything starts.

A backend keyword (`--set protocol=...`) is passed on unchecked unless its value can be
judged here: Dask's backends take these keywords under the same names, and would reject a
wrong value only after the output folder was made and a start attempted, or silently take
another (a port out of range became a random one). Each check returns what is wrong, or None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sdt_core.errors import SettingsError

MAX_PORT = 65_535


def _protocol(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be the name of a Dask comm protocol such as tcp, got {value!r}"
    from distributed.comm.registry import get_backend

    name = value.removesuffix("://")
    try:
        get_backend(name)
    except (ValueError, ImportError):
        from distributed.comm.registry import backends

        return f"must be a Dask comm protocol ({', '.join(sorted(backends))}), got {value!r}"
    return None


def _interface(value: Any) -> str | None:
    if value is None:
        return None
    import psutil

    names = sorted(psutil.net_if_addrs())
    if value not in names:
        return f"must be a network interface of this machine ({', '.join(names)}), got {value!r}"
    return None


def _log_level(value: Any) -> str | None:
    if isinstance(value, (bool, int)):
        return None
    if isinstance(value, str) and isinstance(logging.getLevelName(value.upper()), int):
        return None
    return f"must be a logging level (a number, or a name such as WARNING), or false; got {value!r}"


def _port(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_PORT:
        return f"must be a port from 0 (any free one) to {MAX_PORT}, got {value}"
    return None


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "protocol": _protocol,
    "interface": _interface,
    "silence_logs": _log_level,
}


def check_passthrough(plug: str, noun: str, key: str, value: Any) -> None:
    """Raise `SettingsError` (one line) if pass-through keyword `key` cannot take `value`."""
    check = CHECKS.get(key) or (_port if key == "port" or key.endswith("_port") else None)
    problem = check(value) if check else None
    if problem:
        raise SettingsError(f"{noun} '{plug}': {key} {problem}")
