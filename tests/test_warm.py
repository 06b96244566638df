"""Warm workers: each worker imports what keys need before its first key (`sdt_core.plugs.warm`).

The local plug's workers are forked from a server that imported it (`sdt_local.warm`); the
workers of other plugs (here `tests.priced`'s LocalCluster, its workers spawned as fresh interpreters)
import it at start through the `WarmUp` worker plugin. Dask config `sdt.warm-workers` says
when: `auto` (the default) for runs of SDT's own analysis and clusters started without a run.
"""

from __future__ import annotations

import contextlib
import multiprocessing.forkserver
import multiprocessing.util
import os
import sys

import dask.config
import pandas as pd
import pytest
import sdt_local

from sdt_core import get_plug, run
from sdt_core.acceleration import SUBSTITUTIONS, proven
from sdt_core.job.task import pack, process_packed_key
from sdt_core.plugs.imports import import_object
from sdt_core.plugs.warm import WARM_CONFIG, for_run, modules, warm_workers
from sdt_core.testing import live_processes

from .priced import Numbered

#: What a key of SDT's pipeline paid for at its start before workers were warm.
PAID = ("solardatatools", "cvxpy", "pandas")
CLUSTER = {"workers": 1, "threads": 1, "memory": 1.5}


def imported(names: list[str]) -> dict[str, bool]:
    """On a worker: which of `names` it has imported."""
    return {name: name in sys.modules for name in names}


def swapped() -> dict[str, bool]:
    """On a worker: whether each fast-path target of an imported module is swapped (its dispatcher in place)."""
    found = {}
    for sub in SUBSTITUTIONS:
        module_name, _, path = sub.target.partition(":")
        obj = sys.modules.get(module_name)
        if obj is None:
            continue
        for part in path.split("."):
            obj = getattr(obj, part)
        found[sub.name] = hasattr(obj, "__sdt_substitution__")
    return found


def stop_the_forkserver() -> None:
    """Stop this process's forkserver, if one runs: the next local cluster starts a new one."""
    with contextlib.suppress(FileNotFoundError):  # its socket, removed by the server itself (sdt_local.forkserver)
        multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]
    os.makedirs(multiprocessing.util.get_temp_dir(), mode=0o700, exist_ok=True)  # removed with it; the next one's


@pytest.fixture(scope="module")
def local():
    """A client of the local plug's cluster: 1 worker process, forked from sdt's forkserver, started
    for it as in a new `sdt` process (one this process started earlier, for a run of another
    analysis, stays cold for its life: its workers are then warmed by the worker plugin)."""
    stop_the_forkserver()
    with get_plug("local", dashboard_address="127.0.0.1:0", **CLUSTER) as client:
        yield client


def test_the_switch_is_on_unless_dask_config_turns_it_off():
    assert warm_workers()
    with dask.config.set({WARM_CONFIG: False}):
        assert not warm_workers()
    with dask.config.set({WARM_CONFIG: "auto"}):
        assert warm_workers()  # a cluster whose analysis is not known (`sdt up`)


@pytest.mark.parametrize(
    ("setting", "sdt", "other"),
    [
        (None, True, False),
        ("auto", True, False),
        ("AUTO", True, False),
        (True, True, True),
        ("true", True, True),
        (False, False, False),
        ("false", False, False),
    ],
)
def test_auto_warms_the_workers_of_a_run_of_sdts_analysis_only_true_and_false_force_it(setting, sdt, other):
    with dask.config.set({WARM_CONFIG: setting} if setting is not None else {}):
        assert (for_run(sdt_analysis=True), for_run(sdt_analysis=False)) == ({WARM_CONFIG: sdt}, {WARM_CONFIG: other})


@pytest.mark.parametrize(("setting", "warm"), [(None, False), (True, True)])
def test_a_run_of_another_analysis_gets_cold_workers_unless_dask_config_forces_them_warm(tmp_path, setting, warm):
    config = {sdt_local.METHOD: "spawn"} | ({WARM_CONFIG: setting} if setting is not None else {})
    with dask.config.set(config):  # workers spawned as fresh interpreters, as on other machines
        summary = run(
            Numbered(systems=2),
            plug="tests.priced",
            settings=CLUSTER | {"processes": True},
            analysis="tests.priced:sdt_imported",
            out=tmp_path / "out",
            report=False,
        )
        assert dask.config.get(WARM_CONFIG, default=None) == setting  # the run's decision ended with it
    assert summary.ok == 2
    rows = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert rows["sdt_imported"].tolist() == [warm, warm]


def test_a_warm_workers_setting_that_is_not_true_false_or_auto_is_one_line_before_any_cluster(sdt, tmp_path):
    before = live_processes()
    env = {"DASK_SDT__WARM_WORKERS": "maybe"}
    result = sdt("run", "--analysis", "tests.priced:nap", "--out", str(tmp_path / "out"), env_extra=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == "sdt: error: dask config sdt.warm-workers is 'maybe'; set it to true, false or auto\n"
    assert live_processes() == before and not (tmp_path / "out").exists()
    assert set(PAID) <= set(modules())
    assert {s.target.partition(":")[0] for s in SUBSTITUTIONS} <= set(modules())


def test_local_workers_are_forked_warm_from_a_server_that_imported_what_keys_need(local):
    (state,) = local.run(imported, [*PAID, sdt_local.SERVER_WARM]).values()
    assert state == dict.fromkeys([*PAID, sdt_local.SERVER_WARM], True)  # SERVER_WARM: only the server imports it


def thread_pools() -> dict[str, int]:
    """On a worker: the threads of each BLAS and OpenMP library it has loaded."""
    from threadpoolctl import threadpool_info

    return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()}


def test_warm_workers_run_one_blas_and_openmp_thread_as_dask_sets_for_a_worker(local):
    (pools,) = local.run(thread_pools).values()
    assert len(pools) >= 2 and set(pools.values()) == {1}, pools  # loaded by the server: two threads each before


def test_the_forkserver_preloads_the_warm_up_only_when_it_is_on(monkeypatch):
    server = multiprocessing.forkserver._forkserver
    monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", lambda: None)  # this session's server stays
    monkeypatch.setattr(server, "_preload_modules", ["__main__", sdt_local.SERVER_SETUP, sdt_local.SERVER_WARM])
    with dask.config.set({sdt_local.METHOD: "forkserver", WARM_CONFIG: False}):
        assert sdt_local._ignoring_interrupts({})
    assert server._preload_modules == ["__main__", sdt_local.SERVER_SETUP]
    with dask.config.set({sdt_local.METHOD: "forkserver", WARM_CONFIG: True}):
        assert sdt_local._ignoring_interrupts({})
    assert server._preload_modules == ["__main__", sdt_local.SERVER_SETUP, sdt_local.SERVER_WARM]


def test_on_a_warm_worker_a_fast_key_swaps_and_uses_its_substitutions_an_exact_key_runs_sdts_original(local):
    analysis = import_object("tests.priced:shapley_paths")
    data = Numbered(systems=1)
    key = data.keys()[0]

    def run(fast):
        row = local.submit(process_packed_key, key, pack(data, analysis, fast), pure=False).result()
        assert row["status"] == "ok", row
        return row

    (before,) = local.run(swapped).values()
    assert before and not any(before.values())  # SDT imported before any key; nothing swapped by the warm-up
    exact = run(())
    assert (exact["sdt_mode"], exact["sdt_substitutions"]) == ("exact", "")
    fast = run(proven())  # install() after SDT's import: swapped at once
    assert (fast["sdt_mode"], fast["sdt_substitutions"]) == ("fast", "shapley-paths-cache")
    (after,) = local.run(swapped).values()
    assert after["shapley-paths-cache"]
    exact_again = run(())  # the dispatcher is in place: an exact key still runs SDT's original
    assert (exact_again["sdt_mode"], exact_again["sdt_substitutions"]) == ("exact", "")
    assert exact["paths"] == fast["paths"] == exact_again["paths"] == 120
    assert exact["path_sum"] == fast["path_sum"] == exact_again["path_sum"]


@pytest.mark.parametrize("warm", [True, False])
def test_other_plugs_workers_import_at_start_through_the_worker_plugin_unless_turned_off(warm):
    settings = CLUSTER | {"processes": True}
    config = {WARM_CONFIG: warm, sdt_local.METHOD: "spawn"}  # fresh interpreters, as on other machines
    with get_plug("tests.priced", config_overrides=config, **settings) as client:
        (state,) = client.run(imported, [*PAID, sdt_local.SERVER_WARM]).values()
        plugins = client.run(lambda dask_worker: repr(dask_worker.plugins.get("sdt-warm-up")))
    assert state["solardatatools"] is state["cvxpy"] is warm  # (a worker may import pandas for its own use)
    assert state["pandas"] or not warm
    assert not state[sdt_local.SERVER_WARM]  # spawned, not forked from the warm server
    assert list(plugins.values()) == [f"WarmUp(imports={warm})"]  # it looks at memory also when cold


HOLD_OVER_PAUSE = """
import numpy as np
held = []
def dask_setup(worker):
    held.append(np.ones(int(0.6 * 2**30) // 8))  # over the pause threshold of a 0.5 GiB worker (0.4 GiB)
"""


def test_a_warm_worker_over_its_pause_threshold_from_its_start_takes_no_key(tmp_path, monkeypatch):
    """Dask's memory monitor first looks an interval after a worker registered; a warm worker
    ran keys of milliseconds in that time (CI: a worker restarted for memory ran all the keys
    queued for it). The warm-up looks at its memory before the worker takes any: here the
    monitor would look only after a minute, and the worker is paused before its first key."""
    (tmp_path / "hold_over_pause.py").write_text(HOLD_OVER_PAUSE)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = CLUSTER | {"memory": 0.5, "preload": ["hold_over_pause"]}
    with (
        dask.config.set({"distributed.worker.memory.monitor-interval": "60s"}),
        get_plug("local", dashboard_address="127.0.0.1:0", **settings) as client,
    ):
        future = client.submit(sum, [1, 2], pure=False)
        with pytest.raises(TimeoutError):
            future.result(timeout=3)
        (status,) = (w["status"] for w in client.scheduler_info()["workers"].values())
        assert status == "paused"
        future.release()
