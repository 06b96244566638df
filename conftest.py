"""The whole test suite (tests/ and every plug's tests/) uses sdt_core.testing's fixtures and hooks.

Every test fails if it leaves a process or port behind, or if its output or logs show
`sdt_core.testing.SECRET`; temporary files live in a folder of the session's own;
`pytest --run-cloud` also runs the tests marked `cloud`. A third-party plug's test suite
gets the same by importing these names in its own root conftest.py.
"""

from sdt_core.testing import (  # noqa: F401
    aws,
    azure_blob,
    azurite,
    dask_scratch,
    leak_check,
    moto_server,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_unconfigure,
)
