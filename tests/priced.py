"""A plug written for the tests: a LocalCluster on this machine, planned at cloud prices.

`--plug tests.priced` (a module of hooks, not installed). Each worker costs `price` USD an
hour, the scheduler `scheduler_price`; its data plug `Numbered` gives system i a constant
power of i + 1, and the analysis `nap` sleeps `SDT_TEST_NAP` seconds (default 0.2).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
from distributed import WorkerPlugin

from sdt_core import ClusterPlan, DataPlug, Machines, Prices, Settings, hookimpl, setting


class PricedSettings(Settings):
    price: float = setting(3600.0, "USD per worker-hour (3600: a dollar a second).")
    scheduler_price: float = setting(36.0, "USD per scheduler-hour.")
    processes: bool = setting(False, "Workers in their own processes.")
    azure_events: str | None = setting(None, "URL of a stand-in for Azure's scheduled events endpoint.")
    settled: bool = setting(False, "Workers take tasks once their memory monitor looked (paused ones stay paused).")


@hookimpl
def plug_settings():
    return PricedSettings


@hookimpl
def make_cluster(settings):
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=settings.workers,
        threads_per_worker=settings.threads,
        processes=settings.processes,
        memory_limit=int(settings.memory * 2**30),
        dashboard_address="127.0.0.1:0",
        host="127.0.0.1" if settings.processes else None,
        silence_logs=40,
    )


@hookimpl
def worker_plugins(settings):
    """With `azure_events`: the plugin the azure plug gives Spot VMs, polling that URL instead.
    With `settled`: `Settled`."""
    plugins = [Settled()] if settings.settled else []
    if settings.azure_events is not None:
        from dask_cloudprovider.azure import AzurePreemptibleWorkerPlugin

        plugins.append(AzurePreemptibleWorkerPlugin(poll_interval_s=0.2, metadata_url=settings.azure_events))
    return plugins or None


class Settled(WorkerPlugin):
    """A worker plugin: its setup returns once the worker's memory monitor has paused it, or
    after 5 s (the check before the first key then finds a worker over its limit paused)."""

    name = "tests-settled"

    async def setup(self, worker):
        import asyncio

        for _ in range(50):
            if worker.status.name == "paused":
                return
            await asyncio.sleep(0.1)


@hookimpl
def plan_cluster(settings):
    machines = (
        Machines("scheduler", 1, "process", 1, 1, settings.scheduler_price),
        Machines("workers", settings.workers, "process", settings.threads, settings.memory, settings.price),
    )
    prices = Prices(taken="2026-12-03", source="the tests", where="this machine")
    return ClusterPlan("tests.priced", machines, None, "this machine", "loopback", False, prices)


class Numbered(DataPlug):
    """Systems 0..N-1; system i's power is i + 1 all day."""

    systems: int = setting(10, "Number of systems.")

    def keys(self):
        return [(f"system-{i:04d}",) for i in range(self.systems)]

    def get_data(self, key):
        i = int(key[0].split("-")[1])
        index = pd.date_range("2024-01-01", periods=2 * 288, freq="5min")
        return pd.DataFrame({"power": np.full(len(index), i + 1.0)}, index=index)


def nap(frame):
    """Sleep a fixed time: a key of known worker time."""
    time.sleep(float(os.environ.get("SDT_TEST_NAP", "0.2")))
    return {"i": int(frame.iloc[:, 0].max()) - 1}


def tail(frame):
    """A run with a long tail: system 0 sleeps `SDT_TEST_TAIL` seconds (default 7), the others 0.3 s."""
    i = int(frame.iloc[:, 0].max()) - 1
    time.sleep(float(os.environ.get("SDT_TEST_TAIL", "7")) if i == 0 else 0.3)
    return {"i": i}


def stoppable(frame):
    """Write this worker process's id to `SDT_TEST_PIDS`/i.PID when key i starts, then sleep
    2 s for system 0 and 0.3 s for the others: a test can tell a worker running key 0 to stop."""
    from pathlib import Path

    i = int(frame.iloc[:, 0].max()) - 1
    (Path(os.environ["SDT_TEST_PIDS"]) / f"{i}.{os.getpid()}").touch()
    time.sleep(2.0 if i == 0 else 0.3)
    return {"i": i}


def shapley_paths(frame):
    """SDT's paths through 5 loss factors (`enumerate_paths`, a target of the fast path): no solve, no data."""
    from solardatatools.algorithms import loss_factor_analysis

    paths = loss_factor_analysis.enumerate_paths(5, dtype=bool)
    return {"paths": int(paths.shape[0]), "path_sum": int(paths.sum())}


def sdt_imported(frame):
    """Whether this worker had imported SDT before this key, which needs none of it."""
    import sys

    return {"sdt_imported": "solardatatools" in sys.modules}
