"""sdt-core: run Solar Data Tools analyses on a Dask cluster made by any installed plug.

Importing sdt-core and listing plugs imports no Dask, pandas or cloud SDK: backends are
imported only when a cluster is made, data libraries only when data is read.
"""

from sdt_core.clientplug import ClientPlug, RegisteredPlug, get_plug
from sdt_core.dataplugs import DataPlug, list_data_plugs, open_data
from sdt_core.errors import PlugUnusableError, SdtError, SettingsError, UnknownPlugError
from sdt_core.hookspecs import hookimpl
from sdt_core.plugins import GROUP, PlugInfo, list_plugs
from sdt_core.runner import RunSummary, run
from sdt_core.settings import Options, SettingInfo, Settings, setting

__all__ = [
    "GROUP",
    "ClientPlug",
    "DataPlug",
    "Options",
    "PlugInfo",
    "PlugUnusableError",
    "RegisteredPlug",
    "RunSummary",
    "SdtError",
    "SettingInfo",
    "Settings",
    "SettingsError",
    "UnknownPlugError",
    "get_plug",
    "hookimpl",
    "list_data_plugs",
    "list_plugs",
    "open_data",
    "run",
    "setting",
]
