"""The errors sdt-core raises. Each message is one line: what is wrong and how to fix it."""

from __future__ import annotations


class SdtError(Exception):
    """Base class of sdt-core's errors. `exit_code` is what the `sdt` command exits with."""

    exit_code = 2


class UnknownPlugError(SdtError, LookupError):
    """No installed plug has the requested name."""


class PlugUnusableError(SdtError):
    """The plug is installed but could not be loaded (see `sdt plugs`)."""


class SettingsError(SdtError, ValueError):
    """A setting is unknown, of the wrong type or out of range, or a preflight check failed."""


class ClusterStartError(SdtError, RuntimeError):
    """The cluster did not start; what the plug created has been removed."""

    exit_code = 1


class VersionMismatchError(SdtError, RuntimeError):
    """The scheduler or workers run other versions of the packages that matter than the client."""

    exit_code = 1


class RunFailed(SdtError, RuntimeError):
    """The run could not go on; the keys it finished are in its output folder."""

    exit_code = 1
