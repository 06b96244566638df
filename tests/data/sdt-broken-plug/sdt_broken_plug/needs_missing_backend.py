"""Imports a backend that is not installed, at the top of the module."""

import sdt_no_such_backend  # noqa: F401
