"""sdt-core: run Solar Data Tools analyses on a Dask cluster made by any installed plug.

Everything a plug needs is importable from here (the reference: docs/reference.md).
Importing sdt-core and listing plugs imports no Dask, pandas or cloud SDK: backends are
imported only when a cluster is made, data libraries only when data is read.
"""

import importlib
from typing import TYPE_CHECKING, Any

from sdt_core.errors import (
    ClusterStartError,
    PlugUnusableError,
    SdtError,
    SettingsError,
    UnknownPlugError,
    VersionMismatchError,
)
from sdt_core.job.memory import worker_memory_gib
from sdt_core.plugs.attached import Attached
from sdt_core.plugs.clientplug import ClientPlug, RegisteredPlug, get_plug
from sdt_core.plugs.discovery import GROUP, PlugInfo, list_plugs
from sdt_core.plugs.exposure import check_exposure
from sdt_core.plugs.hookspecs import hookimpl
from sdt_core.plugs.idle import IDLE_PRELOAD, idle_environment, idle_timeout
from sdt_core.plugs.setting_types import Address, Host
from sdt_core.plugs.settings import Options, SettingInfo, Settings, setting
from sdt_core.plugs.warm import warm_up, warm_workers

if TYPE_CHECKING:
    from sdt_core.dataplugs import DATA_GROUP, DataPlug, list_data_plugs, open_data
    from sdt_core.job.runner import run
    from sdt_core.output.summary import RunSummary
    from sdt_core.output.terminal import Terminal
    from sdt_core.plugs.adaptive import adapt_to_run
    from sdt_core.plugs.graceful import GracefulStop, NannyGracefulStop
    from sdt_core.plugs.leftovers import Leftover
    from sdt_core.plugs.plan import ClusterPlan, Machines, Prices

#: Loaded on first use, so that listing plugs does not pay for the runner, data plugs and plans.
_LAZY = {
    "ClusterPlan": "sdt_core.plugs.plan",
    "Leftover": "sdt_core.plugs.leftovers",
    "GracefulStop": "sdt_core.plugs.graceful",
    "NannyGracefulStop": "sdt_core.plugs.graceful",
    "Machines": "sdt_core.plugs.plan",
    "Prices": "sdt_core.plugs.plan",
    "DATA_GROUP": "sdt_core.dataplugs",
    "DataPlug": "sdt_core.dataplugs",
    "list_data_plugs": "sdt_core.dataplugs",
    "open_data": "sdt_core.dataplugs",
    "RunSummary": "sdt_core.output.summary",
    "Terminal": "sdt_core.output.terminal",
    "run": "sdt_core.job.runner",
    "adapt_to_run": "sdt_core.plugs.adaptive",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sdt_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DATA_GROUP",
    "GROUP",
    "IDLE_PRELOAD",
    "Address",
    "Attached",
    "ClientPlug",
    "ClusterPlan",
    "ClusterStartError",
    "DataPlug",
    "GracefulStop",
    "Host",
    "Leftover",
    "Machines",
    "NannyGracefulStop",
    "Options",
    "PlugInfo",
    "PlugUnusableError",
    "Prices",
    "RegisteredPlug",
    "RunSummary",
    "SdtError",
    "SettingInfo",
    "Settings",
    "SettingsError",
    "Terminal",
    "UnknownPlugError",
    "VersionMismatchError",
    "adapt_to_run",
    "check_exposure",
    "get_plug",
    "hookimpl",
    "idle_environment",
    "idle_timeout",
    "list_data_plugs",
    "list_plugs",
    "open_data",
    "run",
    "setting",
    "warm_up",
    "warm_workers",
    "worker_memory_gib",
]
