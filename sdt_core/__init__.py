"""sdt-core: run Solar Data Tools analyses on a Dask cluster made by any installed plug.

Importing sdt-core and listing plugs imports no Dask and no cloud SDK: backends are
imported only when a cluster is made.
"""

from sdt_core.clientplug import ClientPlug, RegisteredPlug, get_plug
from sdt_core.errors import PlugUnusableError, SdtError, SettingsError, UnknownPlugError
from sdt_core.hookspecs import hookimpl
from sdt_core.plugins import GROUP, PlugInfo, list_plugs
from sdt_core.settings import SettingInfo, Settings, setting

__all__ = [
    "GROUP",
    "ClientPlug",
    "PlugInfo",
    "PlugUnusableError",
    "RegisteredPlug",
    "SdtError",
    "SettingInfo",
    "Settings",
    "SettingsError",
    "UnknownPlugError",
    "get_plug",
    "hookimpl",
    "list_plugs",
    "setting",
]
