"""The cluster options a start asks the gateway for: what it offers, with the user's values set.

Each gateway offers its own options (`Gateway.cluster_options()`: worker cores and memory, an
image, an environment, ...), validated by dask-gateway's `Options` on the client. Values come
from, first to last: the gateway's defaults, dask config `gateway.cluster.options`, the `options`
setting, and `threads` and `memory`, which set the options named in `SIZE_OPTIONS` when the
gateway offers them and are refused when it offers none.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sdt_core import SettingsError
from sdt_gateway.settings import PLUG

if TYPE_CHECKING:
    from dask_gateway import Options

    from sdt_gateway.settings import GatewaySettings

#: The gateway options each size setting sets (those the gateway offers), named as in
#: dask-gateway-server's ClusterConfig and the examples of its documentation.
SIZE_OPTIONS = {"threads": ("worker_cores", "worker_threads"), "memory": ("worker_memory",)}
MASK = "***"
_SECRET_NAME = re.compile(r"secret|token|password|passwd|credential|private|key", re.I)


def requested(settings: GatewaySettings, offered: Options) -> Options:
    """`offered` (the gateway's options, changed in place) with the user's values set; else one line."""
    for source, values in (
        ("dask config gateway.cluster.options", settings.configured_options()),
        ("options", settings.options),
    ):
        for key, value in values.items():
            _set(settings, offered, key, value, source)
    for name, targets in SIZE_OPTIONS.items():
        value = getattr(settings, name)
        if value is None:
            continue
        present = [target for target in targets if target in offered]
        if not present:
            raise SettingsError(
                f"{PLUG}: the gateway at {settings.address} offers no option for {name} ({' or '.join(targets)}); "
                f"its options: {', '.join(offered) or 'none'}; leave {name} out: its workers get the gateway's size"
            )
        for target in present:
            if target in settings.options:
                raise SettingsError(f"{PLUG}: {name} and options {target} both set {target}; give one of them")
            _set(settings, offered, target, _size(value, offered[target], target, name), f"{name}={value:g}")
    return offered


def _size(value: float, default: Any, target: str, name: str) -> Any:
    """`value` (threads, or memory in GiB) in the form of the gateway's option `target`."""
    if isinstance(default, str):  # dask-gateway-server's memory notation: "4 G"
        return f"{value:g} G"
    if isinstance(default, int) and not isinstance(default, bool):
        if float(value) != int(value):
            raise SettingsError(f"{PLUG}: the gateway's option {target} takes whole numbers; give {name} as one")
        return int(value)
    return value


def _set(settings: GatewaySettings, offered: Options, key: str, value: Any, source: str) -> None:
    if key not in offered:
        hint = difflib.get_close_matches(key, list(offered), n=1)
        meant = f"did you mean {hint[0]!r}? " if hint else ""
        raise SettingsError(
            f"{PLUG}: the gateway at {settings.address} offers no cluster option {key!r} (given in {source}); "
            f"{meant}its options: {', '.join(offered) or 'none'}"
        )
    try:
        offered[key] = value
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{PLUG}: cluster option {key} (given in {source}): {_tidy(str(exc))}") from None


def _tidy(message: str) -> str:
    """dask-gateway's bounds without its trailing zeros: "<= 2.000000" as "<= 2"."""
    return re.sub(r"(\d+)\.(\d*?)0+\b", lambda m: m[1] + (f".{m[2]}" if m[2] else ""), message)


def shown(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options as they may be shown: mappings (an environment) and secret-named values masked."""
    return {
        key: {k: MASK for k in value} if isinstance(value, Mapping) else MASK if _SECRET_NAME.search(key) else value
        for key, value in options.items()
    }
