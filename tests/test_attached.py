"""Ownership: a plug that attaches to a scheduler it did not start leaves it as it found it.

The "someone else's" scheduler is a real LocalCluster with worker processes, started by the
test and closed by it; the plug under test only returns `Attached(address)`.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dask.config
import pytest
from distributed import Client, LocalCluster

from sdt_core import Attached, PlugUnusableError, get_plug, run
from sdt_core.job.watchdog import Watchdog

from .conftest import run_sdt

PLUGS = '''
"""Plugs for these tests: one attaches to $SDT_TEST_SCHEDULER, one starts threads here, one returns a string."""
import os

from sdt_core import Attached, Settings, hookimpl


class attach:
    @hookimpl
    def plug_settings():
        return Settings

    @hookimpl
    def make_cluster(settings):
        return Attached(os.environ["SDT_TEST_SCHEDULER"], timeout=10)


class start:
    @hookimpl
    def plug_settings():
        return Settings

    @hookimpl
    def make_cluster(settings):
        from distributed import LocalCluster

        return LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0")


class bare_string:
    @hookimpl
    def plug_settings():
        return Settings

    @hookimpl
    def make_cluster(settings):
        return os.environ["SDT_TEST_SCHEDULER"]
'''
HOG = """
import time
import numpy as np

def hog(frame):
    if frame.iloc[:, 0].max() == 9.0:
        block = np.ones(int(1.0 * 2**30) // 8)  # past the pause threshold of its 1 GiB worker, held
        time.sleep(15)
    return {"fine": True}
"""
ATTACH = "attachprobe.hooks:attach"
QUICK = {"analysis": "sdt_core.analysis:data_inventory"}
TINY = "sample://?systems={n}&days=2&real=false"


def foreign_cluster(**kwargs) -> LocalCluster:
    """Someone else's cluster: 2 worker processes, 1 thread and 1 GiB each, on loopback."""
    options = {"n_workers": 2, "threads_per_worker": 1, "memory_limit": "1GiB", "dashboard_address": "127.0.0.1:0"}
    return LocalCluster(host="127.0.0.1", **(options | kwargs))


@pytest.fixture(scope="module")
def foreign() -> Iterator[LocalCluster]:
    with foreign_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def plugs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The package `attachprobe` importable here and in the processes started from here."""
    package = tmp_path_factory.mktemp("plugs") / "attachprobe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hooks.py").write_text(textwrap.dedent(PLUGS))
    (package / "hog.py").write_text(textwrap.dedent(HOG))
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(package.parent))
        patch.setenv("PYTHONPATH", os.pathsep.join([str(package.parent), os.environ.get("PYTHONPATH", "")]))
        yield package.parent


def state(cluster: LocalCluster) -> dict:
    """What must be the same before and after: the workers (address, pid), the scheduler's plugins."""
    with Client(cluster, set_as_default=False) as client:
        pids = client.run(os.getpid)
        plugins = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.plugins))
        assert client.submit(sum, [1, 2]).result() == 3  # and it still computes
    return {"workers": pids, "plugins": plugins, "status": cluster.status.name}


def test_closing_an_attached_plug_leaves_the_scheduler_and_its_workers_running(foreign, plugs, monkeypatch):
    monkeypatch.setenv("SDT_TEST_SCHEDULER", foreign.scheduler_address)
    before = state(foreign)
    plug = get_plug(ATTACH)
    with plug as client:
        assert client.submit(lambda x: x + 1, 41).result() == 42
        assert plug.attached == Attached(foreign.scheduler_address, timeout=10)
        assert plug.cluster is None and not plug.owns_cluster
        assert plug.cluster_line() == (
            f"Cluster: attached to {foreign.scheduler_address} (not started by sdt; left running)"
        )
        assert plug.dashboard_link.startswith("http://127.0.0.1:")
    assert client.status == "closed" and plug.client is None
    assert len(before["workers"]) == 2 and state(foreign) == before


def test_a_started_cluster_is_owned_and_closed(plugs):
    plug = get_plug("attachprobe.hooks:start")
    with plug as client:
        cluster = plug.cluster
        assert plug.owns_cluster and plug.attached is None
        assert plug.cluster_line() == "Cluster: started by plug 'attachprobe.hooks:start'; closed at the end"
        assert client.submit(sum, [1, 2]).result() == 3
    assert cluster.status.name == "closed"


def test_a_run_on_an_attached_scheduler_leaves_it_as_it_was(foreign, plugs, monkeypatch, tmp_path):
    monkeypatch.setenv("SDT_TEST_SCHEDULER", foreign.scheduler_address)
    before = state(foreign)
    summary = run(TINY.format(n=4), plug=ATTACH, out=tmp_path / "out", **QUICK)  # with its performance report
    assert (summary.ok, summary.failed) == (4, 0) and summary.report.exists()
    assert summary.cluster == f"Cluster: attached to {foreign.scheduler_address} (not started by sdt; left running)"
    assert state(foreign) == before  # same workers, same processes, the report's task-stream recorder removed


def test_sdt_up_says_it_attached_and_leaves_the_scheduler_running(foreign, plugs, monkeypatch):
    monkeypatch.setenv("SDT_TEST_SCHEDULER", foreign.scheduler_address)
    before = state(foreign)
    result = run_sdt("up", ATTACH, "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"Cluster: attached to {foreign.scheduler_address} (not started by sdt; left running)"
    )
    assert "check: 100 tasks ran on 2 workers" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == (
        f"Disconnected; the scheduler at {foreign.scheduler_address} is left running."
    )
    assert state(foreign) == before


def test_sdt_up_says_it_started_the_cluster_and_closes_it(plugs):
    result = run_sdt("up", "attachprobe.hooks:start", "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "Cluster: started by plug 'attachprobe.hooks:start'; closed at the end"
    assert result.stderr.strip().splitlines()[-1] == "Cluster closed."


def test_a_bare_address_string_is_refused_in_one_line(foreign, plugs, monkeypatch):
    monkeypatch.setenv("SDT_TEST_SCHEDULER", foreign.scheduler_address)
    with pytest.raises(PlugUnusableError) as error:
        get_plug("attachprobe.hooks:bare_string").init_client()
    assert str(error.value) == (
        f"plug 'attachprobe.hooks:bare_string': make_cluster returned the string {foreign.scheduler_address!r}: "
        "return sdt_core.Attached(address) for a scheduler it did not start"
    )


def test_an_unreachable_attached_scheduler_is_one_line_exit_1(plugs, monkeypatch):
    from sdt_core.testing import free_port

    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("SDT_TEST_SCHEDULER", address)
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "2")
    result = run_sdt("up", ATTACH, "--check")
    assert result.returncode == 1
    assert result.stderr.startswith(f"sdt: error: plug '{ATTACH}': cannot connect to {address}: OSError: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_worker_paused_for_memory_on_an_attached_scheduler_fails_its_key_and_is_not_restarted(
    plugs, monkeypatch, tmp_path
):
    import pandas as pd

    folder = tmp_path / "data"
    folder.mkdir()
    times = pd.date_range("2024-01-01", periods=3 * 288, freq="5min")
    for power in (1.0, 9.0, 2.0):
        pd.DataFrame({"timestamp": times, "p": power}).to_csv(folder / f"p{power:g}.csv", index=False)
    with dask.config.set({"distributed.worker.memory.terminate": False}), foreign_cluster() as cluster:
        monkeypatch.setenv("SDT_TEST_SCHEDULER", cluster.scheduler_address)
        before = state(cluster)["workers"]
        with dask.config.set({"sdt.pause-timeout": 3}):
            summary = run(str(folder), plug=ATTACH, out=tmp_path / "out", analysis="attachprobe.hog:hog", report=False)
        assert (summary.ok, summary.failed) == (2, 1)
        assert state(cluster)["workers"] == before  # the paused worker was not restarted


def test_the_watchdog_restarts_only_workers_sdt_started():
    with foreign_cluster(n_workers=1) as cluster, Client(cluster, set_as_default=False) as client:
        (address, pid), *_ = client.run(os.getpid).items()
        paused = {address: {"memory": 2**30, "limit": 2**30}}  # as the scheduler would report it
        attached = Watchdog(client, {}, timeout=0, restart=False)
        attached.check(paused, now=time.monotonic())
        assert attached.fatal is None and client.run(os.getpid) == {address: pid}
        attached.check(paused, now=time.monotonic())  # twice without a key finishing: the run ends, in one line
        assert attached.fatal.startswith(f"worker {address} of the scheduler sdt attached to stays paused")
        assert client.run(os.getpid) == {address: pid}
        owner = Watchdog(client, {}, timeout=0)
        owner.check(paused, now=time.monotonic())
        client.wait_for_workers(1, timeout=60)
        assert list(client.run(os.getpid).values()) != [pid]  # sdt's own worker: restarted
