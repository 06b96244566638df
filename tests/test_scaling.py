"""Adaptive scaling (`--adapt MIN:MAX`) and graceful interruption (SIGTERM to a worker), on real LocalClusters."""

from __future__ import annotations

import datetime
import http.server
import json
import os
import signal
import threading
import time

import psutil
import pytest

from sdt_core import SdtError, get_plug, run
from sdt_core.cli import main
from sdt_core.output.results import LOG, RUN
from sdt_core.plugs.scaling import parse_adapt

from .priced import Numbered

ONE = {"workers": 1, "threads": 1, "memory": 1, "dashboard_address": "127.0.0.1:0"}


def rows_of(out):
    return [json.loads(line) for line in (out / LOG).read_text().splitlines()]


@pytest.mark.parametrize(("text", "bounds"), [("1:2", (1, 2)), (" 0 : 4 ", (0, 4)), ((2, 2), (2, 2)), (None, None)])
def test_adapt_bounds_are_read(text, bounds):
    assert parse_adapt(text) == bounds


@pytest.mark.parametrize("text", ["2:1", "0:0", "4", "a:b", "1:-2", (1, 2.5)])
def test_bad_adapt_bounds_are_one_line_and_exit_2_before_anything_starts(text, capsys):
    with pytest.raises(SdtError, match=r"^--adapt takes MIN:MAX, whole numbers with 0 <= MIN <= MAX"):
        parse_adapt(text)
    if isinstance(text, str):
        for command in (["up", "local", "--adapt", text], ["run", "--adapt", text, "--out", "never"]):
            with pytest.raises(SystemExit) as bad:
                main(command)
            err = capsys.readouterr().err
            assert bad.value.code == 2 and err.count("\n") == 1 and err.startswith("sdt: error: --adapt takes"), err


def test_a_plug_whose_clusters_cannot_adapt_says_so_before_anything_starts(tmp_path):
    with pytest.raises(SdtError) as refused:
        run(Numbered(systems=2), plug="tests.priced", out=tmp_path / "out", adapt=(1, 2))
    assert str(refused.value) == (
        "plug 'tests.priced' cannot scale its clusters: it implements no adapt_cluster hook; leave out --adapt"
    )
    assert not (tmp_path / "out").exists()


def test_a_local_cluster_grows_while_keys_wait_and_shrinks_in_the_tail(tmp_path):
    out = tmp_path / "out"
    settings = ONE | {"processes": False, "memory": 4}  # in this process: its limit is the whole test process's
    run(
        Numbered(systems=8),
        plug="local",
        settings=settings,
        out=out,
        analysis="tests.priced:tail",
        adapt="1:2",
        report=False,
    )
    rows = rows_of(out)
    assert sorted(row["key"][0] for row in rows) == [f"system-{i:04d}" for i in range(8)]  # each key once
    assert {row["status"] for row in rows} == {"ok"}
    record = json.loads((out / RUN).read_text())
    counts = [count for _, count in record["workers"]]
    assert record["adapt"] == [1, 2]
    assert counts[0] == 1 and 2 in counts and counts[-1] == 1, record["workers"]  # grew, then shrank in the tail


def test_keys_held_back_by_the_runner_grow_the_cluster_and_it_shrinks_in_the_tail(tmp_path, monkeypatch):
    """Two keys in flight of 0.3 s each: the scheduler alone sees 0.6 s of work and wants one
    worker; the 13 keys the runner holds back make it two. The last key (7 s) is the tail."""
    monkeypatch.setenv("SDT_TEST_TAIL", "7")
    out = tmp_path / "out"
    keys = [(f"system-{i:04d}",) for i in [*range(1, 16), 0]]  # system 0, the long one, last
    run(
        Numbered(systems=16),
        plug="local",
        settings=ONE | {"processes": False, "memory": 4},
        out=out,
        analysis="tests.priced:tail",
        keys=keys,
        max_in_flight=2,
        adapt="1:2",
        report=False,
    )
    rows = rows_of(out)
    assert sorted(row["key"][0] for row in rows) == sorted(k[0] for k in keys)  # each key once
    assert {row["status"] for row in rows} == {"ok"}
    workers = json.loads((out / RUN).read_text())["workers"]
    counts = [count for _, count in workers]
    assert counts[0] == 1 and counts[-1] == 1 and 2 in counts, workers
    grown = next(t for t, count in workers if count == 2)
    assert grown < 15 * 0.3, workers  # while short keys still waited, not in the tail
    short = [row["worker"] for row in rows if row["key"][0] != "system-0000"]
    assert len(set(short)) == 2  # the second worker ran keys the runner had held back
    # once the long key alone is left (it starts at most 0.3 s before), the second worker goes
    # within seconds, and run.json says so when it goes (not at the end, when a key next finishes)
    shrunk = next(t for t, count in workers if count == 1 and t > grown)
    assert workers[-1][0] - shrunk >= 7 - 3.5, workers


def test_the_hint_of_keys_held_back_is_taken_back_at_the_end(tmp_path):
    from distributed import Client, LocalCluster

    from sdt_core.plugs.scaling import WAITING_KEY, WaitingKeys

    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        waiting = WaitingKeys(client)
        waiting.finished([{"total_s": 1.0}, {"total_s": 3.0}, {"status": "error"}])
        waiting.holding(7)
        hint = client.get_metadata([WAITING_KEY, client.id])
        assert (hint["keys"], hint["mean_s"]) == (7, 2.0)
        waiting.clear()
        assert WAITING_KEY not in cluster.scheduler.task_metadata  # as found


@pytest.mark.parametrize(
    ("hints", "per_worker", "extra"),
    [
        ({}, 1, 0),
        ({"a": {"keys": 13, "mean_s": None}}, 1, 13),  # no key done yet: one thread each
        ({"a": {"keys": 13, "mean_s": 0.3}}, 1, 1),  # 3.9 s of work: one more thread
        ({"a": {"keys": 40, "mean_s": 2.0}}, 4, 4),  # 80 s of work, 16 threads: 4 workers of 4
        ({"a": {"keys": 40, "mean_s": 2.0}, "b": {"keys": 3, "mean_s": 60}}, 4, 5),  # two runs
        ({"a": {"keys": 40, "mean_s": 2.0, "at": -1000}}, 1, 0),  # a killed run's, stale
        ({"a": {"keys": 0, "mean_s": 2.0}}, 1, 0),  # the tail: none held back
    ],
)
def test_workers_added_for_keys_held_back(hints, per_worker, extra):
    from sdt_core.plugs.scaling import extra_workers

    now = 0.0
    hints = {k: {"at": now} | v for k, v in hints.items()}
    assert extra_workers(hints, 5.0, per_worker, now) == extra


def test_a_worker_told_to_stop_retires_and_every_key_gets_one_row(tmp_path, monkeypatch):
    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv("SDT_TEST_PIDS", str(pids))  # the worker processes get this environment
    stopped = []

    def stop_the_worker_running_key_0():
        deadline = time.monotonic() + 120
        while not list(pids.glob("0.*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # mid-key
        pid = int(next(pids.glob("0.*")).suffix[1:])
        os.kill(pid, signal.SIGTERM)
        stopped.append(pid)

    stopper = threading.Thread(target=stop_the_worker_running_key_0)
    stopper.start()
    out = tmp_path / "out"
    try:
        summary = run(
            Numbered(systems=40),  # ~6 s of keys after the stop: time for the nanny to start it again
            plug="local",
            settings=ONE | {"workers": 2},
            out=out,
            analysis="tests.priced:stoppable",
            report=False,
        )
    finally:
        stopper.join()
    rows = rows_of(out)
    assert sorted(row["key"][0] for row in rows) == [f"system-{i:04d}" for i in range(40)]  # each key once
    assert {row["status"] for row in rows} == {"ok"} and summary.ok == 40
    assert not psutil.pid_exists(stopped[0]) or psutil.Process(stopped[0]).status() == psutil.STATUS_ZOMBIE
    ran = sorted(int(path.suffix[1:]) for path in pids.glob("0.*"))
    assert len(ran) == 2 and stopped[0] in ran  # key 0 ran again on another worker, once
    scheduler_log = (out / "logs" / "scheduler.log").read_text()
    assert "worker-close-gracefully" in scheduler_log  # retired: not a lost worker, its keys not suspected
    workers = json.loads((out / RUN).read_text())["workers"]
    assert workers[-1][1] == 2, workers  # the nanny started it again


class ScheduledEvents(http.server.BaseHTTPRequestHandler):
    """A stand-in for Azure's instance metadata endpoint (the only thing mocked): once `armed`,
    the first poll gets a Preempt event for now, every other poll none."""

    armed = threading.Event()
    told: list[str] = []

    def do_GET(self):
        events = []
        if self.armed.is_set() and not self.told:
            self.told.append(self.path)
            when = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
            events = [{"EventId": "1", "EventType": "Preempt", "ResourceType": "VirtualMachine", "NotBefore": when}]
        body = json.dumps({"DocumentIncarnation": 1, "Events": events}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_worker_whose_azure_spot_vm_is_preempted_retires_and_every_key_gets_one_row(tmp_path, monkeypatch):
    monkeypatch.setenv("SDT_TEST_NAP", "0.5")  # 16 keys on 2 workers: 4 s
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScheduledEvents)
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    url = f"http://127.0.0.1:{server.server_port}/metadata/scheduledevents"
    timer = threading.Timer(1.5, ScheduledEvents.armed.set)  # mid-run
    timer.start()
    out = tmp_path / "out"
    try:
        run(
            Numbered(systems=16),
            plug="tests.priced",
            settings={"workers": 2, "threads": 1, "memory": 4, "azure_events": url},  # in-process workers: see above
            out=out,
            analysis="tests.priced:nap",
            report=False,
        )
    finally:
        timer.cancel()
        server.shutdown()
        server.server_close()
        serving.join()
    rows = rows_of(out)
    assert ScheduledEvents.told  # a worker was told its VM goes
    assert sorted(row["key"][0] for row in rows) == [f"system-{i:04d}" for i in range(16)]  # each key once
    assert {row["status"] for row in rows} == {"ok"}
    workers = json.loads((out / RUN).read_text())["workers"]
    assert [count for _, count in workers][-1] == 1, workers  # it left; the other did the rest


@pytest.mark.parametrize("graceful", [True, False])
def test_a_nanny_told_to_stop_has_its_worker_retired_first_so_no_result_is_computed_again(tmp_path, graceful):
    """SIGTERM to `dask worker` (a Fargate task's first process) reaches only its nanny."""
    import subprocess
    import sys

    import distributed
    from distributed import Client, LocalCluster

    from sdt_core import NannyGracefulStop

    runs = tmp_path / "runs"
    runs.mkdir()

    def mark(i):  # pickled by value: the `dask worker` process need not import the tests
        import os
        import pathlib

        (pathlib.Path(str(runs)) / f"{i}.{os.getpid()}.{os.urandom(4).hex()}").touch()
        return i * 10

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, memory_limit="1GiB", host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster) as client,
    ):
        if graceful:
            client.register_plugin(NannyGracefulStop())  # also sent to nannies that join later
        command = [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address]
        command += ["--nthreads", "1", "--memory-limit", "1GiB", "--name", "cli", "--no-dashboard"]
        with open(tmp_path / "cli.log", "w") as log:
            cli = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            client.wait_for_workers(2, timeout=60)
            there = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "cli")
            held = client.map(mark, range(6), workers=[there], allow_other_workers=True, pure=False)
            distributed.wait(held)
            assert set().union(*client.who_has(held).values()) == {there}  # every result held by the nanny's worker
            cli.send_signal(signal.SIGTERM)  # to the nanny only, as a container's init passes it on
            assert cli.wait(timeout=60) == 0
            assert client.gather(held) == [i * 10 for i in range(6)]
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
    computed = sorted(int(path.name.split(".")[0]) for path in runs.iterdir())
    if graceful:  # handed over before the worker closed
        assert computed == list(range(6)), (tmp_path / "cli.log").read_text()
    else:  # lost with the worker: what the plugin prevents
        assert computed == sorted(2 * list(range(6)))
    assert ("retiring its worker" in (tmp_path / "cli.log").read_text()) is graceful


@pytest.mark.parametrize("name", ["local", "slurm", "fargate", "azure"])
def test_the_plugs_whose_clusters_scale_adapt_them_by_the_keys_held_back(name):
    """The hook on a real (local) distributed cluster: the cloud plugs' clusters are SpecClusters too."""
    from distributed import LocalCluster

    from sdt_core.plugs.adaptive import RunAdaptive
    from sdt_core.plugs.discovery import registry

    plug = get_plug(name, adapt="1:3")
    assert plug.adapt == (1, 3)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        assert registry().adapt_cluster(name, plug.settings, cluster, 1, 3) is True
        adaptive = cluster._adaptive
        assert type(adaptive) is RunAdaptive and (adaptive.minimum, adaptive.maximum) == (1, 3)
        adaptive.stop()


@pytest.mark.parametrize("command", ["run", "up"])
def test_adapt_with_a_plug_whose_clusters_cannot_scale_is_one_line_exit_2(command, capsys):
    args = ["--set", "hosts=127.0.0.1,127.0.0.1", "--adapt", "1:2"]
    with pytest.raises(SystemExit) as refused:
        main(
            [
                command,
                *(["--plug", "ssh"] if command == "run" else ["ssh"]),
                *args,
                *(["--out", "never"] * (command == "run")),
            ]
        )
    err = capsys.readouterr().err
    assert refused.value.code == 2 and err == (
        "sdt: error: plug 'ssh' cannot scale its clusters: it implements no adapt_cluster hook; leave out --adapt\n"
    )


def _retire_at_first_look(hint_keys):
    """A cluster of 2 workers, one running a long task: what `RunAdaptive` recommends at its
    first look, with runs holding back `hint_keys` keys (None: no run hints)."""
    from distributed import Client, LocalCluster

    from sdt_core.plugs.adaptive import adapt_to_run
    from sdt_core.plugs.scaling import WaitingKeys

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        waiting = WaitingKeys(client)
        if hint_keys is not None:
            waiting.holding(hint_keys)
        future = client.submit(time.sleep, 4, pure=False)
        deadline = time.monotonic() + 10
        while not any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        busy = {cluster.scheduler.workers[a].name for a, keys in client.processing().items() if keys}
        adaptive = adapt_to_run(cluster, 1, 2, interval=0)  # no looks of its own: this test looks
        try:
            target = cluster.sync(adaptive.safe_target)
            advice = cluster.sync(adaptive.recommendations, target)
        finally:
            adaptive.stop()
            waiting.clear()
            client.cancel(future)
    return target, advice, busy


def test_in_a_runs_tail_an_idle_worker_is_retired_at_the_first_look():
    target, advice, busy = _retire_at_first_look(hint_keys=0)  # the run holds back no key: its tail
    assert target == 1
    assert advice["status"] == "down" and len(advice["workers"]) == 1, advice
    assert set(advice["workers"]).isdisjoint(busy)  # the idle one, not the one running the key


@pytest.mark.parametrize("hint_keys", [None, 3])
def test_outside_a_runs_tail_distributed_waits_its_wait_count(hint_keys):
    """No run hints (a cluster adapting for another client), or keys still held back (they
    come back soon): distributed's patience, several looks before a worker is retired."""
    _, advice, _ = _retire_at_first_look(hint_keys)
    assert advice == {"status": "same"}


def test_the_worker_timeline_sees_a_cluster_shrink_while_no_key_finishes():
    from distributed import Client, LocalCluster

    from sdt_core.plugs.scaling import WorkerTimeline

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        timeline = WorkerTimeline(client, every=0.2)
        time.sleep(0.3)
        cluster.scale(1)
        deadline = time.monotonic() + 10
        while len(client.nthreads()) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        shrunk = time.monotonic() - timeline.started
        time.sleep(1.5)  # nothing calls look() meanwhile: no key finishes
        timeline.close()
    counts = [count for _, count in timeline.points]
    assert counts == [2, 1, 1], timeline.points  # the drop, then the end
    assert timeline.points[1][0] <= shrunk + 0.5, (shrunk, timeline.points)
    assert not timeline._thread.is_alive()  # closed: no thread left behind


def _slow_key(key):
    time.sleep(0.1)
    return {"key": list(key), "status": "ok", "total_s": 0.1}


def test_the_submission_window_grows_with_the_cluster():
    """A cluster of 1 thread that grows to 2 while keys run: the window (8 keys per thread) is
    sized again, so keys go to the new worker too."""
    from distributed import Client, LocalCluster

    from sdt_core.job.submission import submit_all
    from sdt_core.output.progress import Progress

    seen, rows = [], []

    def budget(in_flight, threads):
        seen.append((in_flight, threads))
        return None

    def record(batch):
        rows.extend(batch)
        if len(rows) >= 2 and len(cluster.scheduler.workers) == 1:
            cluster.scale(2)

    todo = [(f"k{i}",) for i in range(60)]
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        left = submit_all(client, todo, _slow_key, record, Progress(len(todo), show=False), 10_000, 0, budget=budget)
    assert left == [] and sorted(tuple(row["key"]) for row in rows) == sorted(todo)
    assert seen[0][1] == 1 and 2 in {threads for _, threads in seen}, seen
    assert max(in_flight for in_flight, _ in seen) > 8, seen  # more keys than one thread's window
