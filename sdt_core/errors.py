"""The errors sdt-core raises for input it refuses, before anything is started."""

from __future__ import annotations


class SdtError(Exception):
    """Base class of the errors sdt-core raises on bad input: one line, what and how to fix."""


class UnknownPlugError(SdtError, LookupError):
    """No installed plug has the requested name."""


class PlugUnusableError(SdtError):
    """The plug is installed but could not be loaded (see `sdt plugs`)."""


class SettingsError(SdtError, ValueError):
    """A setting is unknown, of the wrong type or out of range."""
