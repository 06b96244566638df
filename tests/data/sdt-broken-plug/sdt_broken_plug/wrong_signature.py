"""Implements make_cluster with an argument the hookspec does not have."""

from sdt_core import Settings, hookimpl


@hookimpl
def plug_settings():
    return Settings


@hookimpl
def make_cluster(settings, region):
    raise AssertionError("never called")
