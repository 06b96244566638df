"""Options of the whole test suite: `pytest --run-cloud` also runs the real-cloud tests."""

from sdt_core.testing import pytest_addoption, pytest_collection_modifyitems  # noqa: F401
