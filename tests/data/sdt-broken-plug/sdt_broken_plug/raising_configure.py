"""Contributes Dask config by raising, for every start (any plug's)."""

from sdt_core import Settings, hookimpl


@hookimpl
def plug_settings():
    return Settings


@hookimpl
def make_cluster(settings):
    raise AssertionError("never called")


@hookimpl
def configure_dask(plug, settings):
    raise RuntimeError("this plug's Dask config is broken")
