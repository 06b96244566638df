"""The local plug on real LocalClusters: 1 thread per worker, small memory, at most 2 workers."""

from __future__ import annotations

import os

import dask.config
import pytest
from dask.system import CPU_COUNT
from distributed import Client, LocalCluster
from distributed.system import MEMORY_LIMIT
from sdt_local import LocalClient

from sdt_core import ClientPlug, SettingsError, get_plug, list_plugs
from sdt_core.testing import live_processes

SMALL = {"workers": 2, "threads": 1, "memory": 1, "dashboard_address": "127.0.0.1:0"}


def test_the_plug_is_discovered_with_its_settings():
    (local,) = [p for p in list_plugs() if p.name == "local"]
    assert local.status == "ok" and local.distribution == "sdt-local"
    assert [s.name for s in local.settings] == [
        "workers",
        "threads",
        "memory",
        "processes",
        "host",
        "dashboard_address",
        "insecure",
        "env",
    ]


def test_readme_call_returns_a_client_that_computes():
    plug = LocalClient(workers=2, threads=1, memory=2, dashboard_address="127.0.0.1:0")
    client = plug.init_client()
    try:
        assert isinstance(client, Client) and plug.client is client
        assert isinstance(plug.cluster, LocalCluster)
        assert client.submit(lambda x: x + 1, 41).result() == 42
        workers = client.scheduler_info()["workers"].values()
        assert [w["nthreads"] for w in workers] == [1, 1]
        assert {w["memory_limit"] for w in workers} == {2 * 2**30}
        assert plug.dask_config is dask.config
    finally:
        plug.close()
    assert plug.client is None and plug.cluster is None


def test_context_manager_leaves_no_process_behind():
    with get_plug("local", workers=1, threads=1, memory=1, dashboard_address="127.0.0.1:0") as client:
        (worker_pid,) = client.run(os.getpid).values()
        assert worker_pid in live_processes()
    assert worker_pid not in live_processes()


def test_context_manager_closes_client_and_cluster_when_the_body_raises():
    plug = get_plug("local", **SMALL)
    with pytest.raises(ZeroDivisionError), plug as client:
        client.submit(lambda: 1).result()
        raise ZeroDivisionError
    assert plug.client is None and plug.cluster is None
    assert client.status == "closed"


def test_scheduler_and_dashboard_listen_on_loopback():
    with get_plug("local", workers=1, threads=1, memory=1, dashboard_address="127.0.0.1:0") as client:
        plug_link = client.dashboard_link
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        assert plug_link.startswith("http://127.0.0.1:")


def test_the_dashboard_link_is_shown(capsys):
    with get_plug("local", workers=1, threads=1, memory=1, dashboard_address="127.0.0.1:0") as client:
        link = client.cluster.dashboard_link
    assert f"Dask dashboard: {link}" in capsys.readouterr().err


def test_a_users_own_readme_style_subclass_works_as_a_plug():
    class MyLocalClient(ClientPlug):  # as the README's "Configuring the Dask Client" writes it
        def __init__(self, workers=1, threads=1, memory=1.0, **kwargs):
            self.workers, self.threads, self.memory, self.kwargs = workers, threads, memory, kwargs
            self.dask_config = dask.config
            self.client = None
            self.cluster = None

        def init_client(self):
            self.cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=self.threads,
                memory_limit=f"{self.memory:.2f}GiB",
                dashboard_address="127.0.0.1:0",
                **self.kwargs,
            )
            self.client = Client(self.cluster)
            return self.client

    plug = MyLocalClient(workers=1)
    with plug as client:
        assert client.submit(sum, [1, 2]).result() == 3
    assert plug.client is None and plug.cluster is None


def test_backend_keywords_pass_through_to_local_cluster():
    with get_plug("local", **SMALL, scheduler_port=0, silence_logs=50, name="passed-through") as client:
        assert client.cluster.name == "passed-through"


def test_processes_false_runs_workers_in_this_process():
    with get_plug("local", **(SMALL | {"processes": False, "workers": 1})) as client:
        assert set(client.run(os.getpid).values()) == {os.getpid()}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"workers": 0}, "plug 'local': workers must be >= 1, got 0"),
        ({"memory": -1}, "plug 'local': memory must be >= 0.5, got -1.0"),
        ({"threads": "two"}, "plug 'local': threads must be an integer, got the string 'two'"),
        ({"processes": "False"}, "plug 'local': processes must be True or False, got the string 'False'"),
        (
            {"workers": CPU_COUNT, "threads": 2},
            f"plug 'local': workers x threads = {CPU_COUNT} x 2 exceeds the {CPU_COUNT} cores of this machine; "
            "lower workers or threads",
        ),
        (
            {"n_workers": 2},
            "plug 'local': n_workers is set from the setting 'workers'; give workers=... instead",
        ),
    ],
)
def test_bad_settings_fail_before_anything_starts(values, message):
    before = live_processes()
    with pytest.raises(SettingsError) as err:
        LocalClient(**values)
    assert str(err.value) == message
    assert live_processes() == before


def test_the_readme_processes_string_is_refused():
    with pytest.raises(SettingsError, match="processes must be True or False, got the string 'False'"):
        LocalClient(workers=1, threads=1, memory=6.0, processes="False")


def test_unknown_setting_suggests_the_closest():
    with pytest.raises(SettingsError, match="no setting 'wrokers'; did you mean 'workers'"):
        get_plug("local", wrokers=2)


def test_a_default_that_does_not_fit_the_cores_is_fitted_and_an_explicit_one_is_refused():
    assert get_plug("local", workers=CPU_COUNT).threads == 1  # threads defaulted to 2
    assert get_plug("local", threads=CPU_COUNT).workers == 1  # workers defaulted to 2
    with pytest.raises(SettingsError, match="exceeds the"):
        get_plug("local", workers=CPU_COUNT + 1, threads=1)


def test_memory_per_worker_defaults_to_what_sdt_was_measured_to_need():
    from sdt_core import worker_memory_gib

    fast = get_plug("local", workers=2, threads=1).settings
    assert fast.memory == worker_memory_gib(1, exact=False) == 1.5
    with dask.config.set({"sdt.exact-sdt": True}):  # `sdt run --exact-sdt`
        exact = get_plug("local", workers=1, threads=2).settings
        assert exact.memory == worker_memory_gib(2, exact=True) == 17.0
    assert get_plug("local", workers=1, threads=1, memory=3).settings.memory == 3.0
    assert "memory" not in fast.given  # sized, not given: the other checks still see it as a default


def oversubscribed():
    memory = round(0.6 * MEMORY_LIMIT / 2**30, 1)  # each fits this machine, both together do not
    return get_plug("local", workers=2, threads=1, memory=memory)


def test_memory_above_the_machine_turns_spilling_on_and_says_so(caplog):
    plug = oversubscribed()
    config, settings = plug.contributed_config(), plug.settings
    share = MEMORY_LIMIT / (settings.workers * settings.memory * 2**30)
    assert config["distributed.worker.memory.spill"] == pytest.approx(0.7 * share, abs=1e-3)
    assert config["distributed.worker.memory.spill"] < dask.config.get("distributed.worker.memory.spill")
    assert "exceeds this machine's" in caplog.text and "spill to disk" in caplog.text


def test_memory_within_the_machine_keeps_workers_over_their_limit_alive():
    config = get_plug("local", **SMALL).contributed_config()
    assert config == {
        "distributed.worker.memory.terminate": False,
        "distributed.worker.multiprocessing-method": "forkserver",
        "distributed.deploy.lost-worker-timeout": "1h",
        "distributed.scheduler.worker-saturation": 1.0,
    }


def test_the_users_dask_config_wins_over_the_plugs():
    with dask.config.set({"distributed.worker.memory.spill": False, "distributed.worker.memory.terminate": 0.9}):
        config = oversubscribed().contributed_config()
    assert "distributed.worker.memory.spill" not in config and "distributed.worker.memory.terminate" not in config
    assert "distributed.worker.memory.target" in config


def test_contributed_config_reaches_the_workers_and_is_released_on_close():
    settings = oversubscribed().settings
    expected = oversubscribed().contributed_config()["distributed.worker.memory.spill"]
    plug = get_plug(
        "local",
        workers=2,
        threads=1,
        memory=settings.memory,
        dashboard_address="127.0.0.1:0",
        config_overrides={"distributed.worker.memory.pause": 0.5},
    )
    with plug as client:
        seen = client.run(
            lambda: (
                dask.config.get("distributed.worker.memory.spill"),
                dask.config.get("distributed.worker.memory.pause"),
            )
        )
        assert sorted(seen.values()) == [(expected, 0.5), (expected, 0.5)]
    assert dask.config.get("distributed.worker.memory.pause") == 0.8
