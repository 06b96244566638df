from sdt_core.testing import (  # noqa: F401  (fixtures and hooks)
    dask_scratch,
    leak_check,
    pytest_configure,
    pytest_unconfigure,
)
