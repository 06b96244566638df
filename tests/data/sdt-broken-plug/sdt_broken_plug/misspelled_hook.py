"""Implements a hook that sdt-core does not have."""

from sdt_core import Settings, hookimpl


@hookimpl
def plug_settings():
    return Settings


@hookimpl
def make_clustr(settings):
    raise AssertionError("never called")
