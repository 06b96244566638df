"""Contributes Dask config by raising, only for a start of the local plug (so it loads fine)."""

from sdt_core import Settings, hookimpl


@hookimpl
def plug_settings():
    return Settings


@hookimpl
def make_cluster(settings):
    raise AssertionError("never called")


@hookimpl
def configure_dask(plug, settings):
    if plug == "local":
        raise KeyError("local")
    return None
