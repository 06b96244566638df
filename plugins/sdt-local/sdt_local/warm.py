"""Imported by the server local worker processes are forked from, after `sdt_local.forkserver`,
when dask config `sdt.warm-workers` is on: it imports what keys need
(`sdt_core.warm_up`), so every worker it forks starts warm, and the imports are paid
once per server instead of once per worker. A module that fails to import is left to the
key that needs it.
"""

from sdt_core import warm_up

warm_up()
