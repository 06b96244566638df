from sdt_core.testing import dask_scratch, leak_check  # noqa: F401  (autouse fixtures)
