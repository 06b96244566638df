"""The gateway plug against a real dask-gateway-server (conftest.py starts it on 127.0.0.1).

Every cluster a test asks for is the gateway's to start and, once closed, reported stopped: no
test leaves a cluster on the gateway, nor a process or port on this machine (the leak check).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask.config
import pytest

from sdt_core import ClusterStartError, SettingsError, get_plug, list_plugs
from sdt_core.testing import SECRET, free_port

SDT = Path(sys.executable).with_name("sdt")
ONE_WORKER = ["--workers", "1", "--threads", "1", "--memory", "1.5"]
SMALL_DATA = "sample://?systems=2&days=30&real=false"
QUICK = ["--analysis", "sdt_core.analysis:data_inventory", "--data-option", "real=false", "--limit", "2"]


def sdt(*args: str, env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SDT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def one_line_exit_2(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert (done.returncode, done.stderr) == (2, f"sdt: error: plug 'gateway': {message}\n"), done.stderr


def test_the_plug_is_listed_and_importing_it_imports_no_backend():
    (plug,) = [p for p in list_plugs() if p.name == "gateway"]
    assert plug.status == "ok" and plug.distribution == "sdt-gateway"
    assert {"address", "proxy_address", "auth", "password", "options", "cluster_name"} <= {
        s.name for s in plug.settings
    }
    assert {s.name for s in plug.settings if s.secret} == {"password", "api_token", "options"}
    code = "import sys, sdt_core; sdt_core.list_plugs(); print(sorted({'dask_gateway', 'aiohttp'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_settings_default_to_dask_gateways_own_config(monkeypatch):
    monkeypatch.setenv("SDT_TEST_GATEWAY_PASSWORD", SECRET)
    configured = {
        "gateway.address": "https://gateway.example.org/services/dask-gateway/",
        "gateway.proxy-address": 8786,
        "gateway.auth.type": "basic",
        "gateway.auth.kwargs": {"username": "pv", "password": "{SDT_TEST_GATEWAY_PASSWORD}"},
        "gateway.cluster.options": {"image": "registry.example.org/sdt:{SDT_TEST_GATEWAY_PASSWORD}"},
    }
    with dask.config.set(configured):
        settings = get_plug("gateway").settings
        assert settings.address == "https://gateway.example.org/services/dask-gateway"
        assert (settings.proxy_address, settings.auth, settings.username) == ("8786", "basic", "pv")
        assert settings.password == SECRET and SECRET not in repr(settings)
        assert settings.configured_options() == {"image": f"registry.example.org/sdt:{SECRET}"}
        given = get_plug("gateway", address="http://127.0.0.1:9", username="me", password="other").settings
        assert (given.address, given.username, given.password) == ("http://127.0.0.1:9", "me", "other")
    with dask.config.set({"gateway.address": "http://h", "gateway.auth.type": "jupyterhub"}):
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", SECRET)
        settings = get_plug("gateway").settings
        assert (settings.auth, settings.api_token, settings.password) == ("jupyterhub", SECRET, None)


@pytest.mark.parametrize(
    ("config", "values", "message"),
    [
        ({}, {}, "no gateway address; give --set address=https://HOST (or set DASK_GATEWAY__ADDRESS, "
         "dask config gateway.address)"),
        ({"gateway.address": "gateway:8000"}, {}, "address 'gateway:8000' (from dask config gateway.address) is not "
         "an http:// or https:// address; give https://HOST[:PORT]"),
        ({"gateway.auth.type": "mymodule.MyAuth"}, {"address": "http://h"}, "dask config gateway.auth.type is "
         "'mymodule.MyAuth'; the plug takes basic, kerberos, jupyterhub: give --set auth=basic (or kerberos, "
         "jupyterhub)"),
        ({}, {"address": "http://h", "auth": "jupyterhub", "password": "x"}, "password applies to auth=basic, not "
         "auth=jupyterhub"),
        ({}, {"address": "http://h", "auth": "jupyterhub"}, "auth=jupyterhub needs an API token: set "
         "JUPYTERHUB_API_TOKEN or give --set api_token=..."),
        ({"gateway.auth.kwargs.password": "{SDT_NO_SUCH_VARIABLE}"}, {"address": "http://h"}, "dask config "
         "gateway.auth.kwargs.password names the environment variable 'SDT_NO_SUCH_VARIABLE', which is not set"),
        ({}, {"address": "http://h", "cluster_name": "abc", "workers": 3}, "workers does not apply with "
         "cluster_name=abc: the running cluster has its own workers and options; leave workers out"),
        ({}, {"address": "http://h", "auth": "nosuch"}, "auth must be one of 'basic', 'kerberos', 'jupyterhub', "
         "got 'nosuch'"),
    ],
    ids=["no-address", "not-http", "custom-auth", "auth-mismatch", "no-token", "unset-variable", "attach-workers",
         "auth-choice"],
)  # fmt: skip
def test_bad_settings_are_one_line(monkeypatch, config, values, message):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    unset = {"gateway.address": None, "gateway.auth.type": None, "gateway.auth.kwargs": {}}
    with dask.config.set(unset), dask.config.set(config), pytest.raises(SettingsError) as error:
        get_plug("gateway", **values)
    assert str(error.value) == f"plug 'gateway': {message}"


def test_threads_and_memory_are_refused_where_the_gateway_offers_no_option_for_them():
    from dask_gateway.options import Float, Options, String
    from sdt_gateway.options import requested

    def offered():
        return Options(Float("worker_memory", 2.0, label="GiB"), String("image", "sdt:1"))

    plug = get_plug("gateway", address="http://h", threads=2)
    with pytest.raises(SettingsError) as error:
        requested(plug.settings, offered())
    assert str(error.value) == (
        "plug 'gateway': the gateway at http://h offers no option for threads (worker_cores or worker_threads); "
        "its options: worker_memory, image; leave threads out: its workers get the gateway's size"
    )
    assert dict(requested(get_plug("gateway", address="http://h", memory=3).settings, offered())) == {
        "worker_memory": 3.0,
        "image": "sdt:1",
    }
    with pytest.raises(SettingsError, match=r"^plug 'gateway': memory and options worker_memory both set"):
        requested(get_plug("gateway", address="http://h", memory=3, options={"worker_memory": 2}).settings, offered())


# With the real gateway.


def test_sdt_run_of_the_sdt_pipeline_on_a_gateway_cluster_stops_it_at_the_end(gateway_server, gateway_env, tmp_path):
    secret_env = json.dumps({"environment": {"SDT_TEST_TOKEN": SECRET}})
    done = sdt("run", SMALL_DATA, "--plug", "gateway", *gateway_server.settings(), *ONE_WORKER,
               "--set", f"options={secret_env}", "--out", "out", env=gateway_env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 keys: 2 ok, 0 failed" in done.stderr
    assert "Cluster: started by plug 'gateway'; closed at the end" in done.stderr.splitlines()
    out = tmp_path / "out"
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["status"] == "ok" and r["sdt_mode"] == "fast" for r in rows)
    assert all(r["worker"].startswith("tls://127.0.0.1:") for r in rows)
    logs = sorted(p.name for p in (out / "logs").iterdir())
    assert "scheduler.log" in logs and any(name.startswith("worker-") for name in logs), logs
    for text in (done.stdout, done.stderr, (out / "run.json").read_text(), (out / "run.log").read_text()):
        assert SECRET not in text
    assert gateway_server.clusters() == {}  # stopped before sdt exited


def test_from_python_the_options_reach_the_workers_and_scaling_goes_through_the_gateway(gateway_server):
    plug = get_plug(
        "gateway", workers=1, threads=1, memory=0.75, address=gateway_server.address, username=gateway_server.user,
        password=gateway_server.password, options={"environment": {"SDT_TEST_TOKEN": SECRET}},
    )  # fmt: skip
    assert SECRET not in repr(plug)
    with plug as client:
        (name,) = gateway_server.clusters()
        assert plug.owns_cluster and plug.cluster.name == name
        assert set(client.run(os.getenv, "SDT_TEST_TOKEN").values()) == {SECRET}
        (worker,) = client.scheduler_info()["workers"].values()
        assert (worker["nthreads"], worker["memory_limit"]) == (1, int(0.75 * 2**30))
        plug.cluster.adapt(minimum=2, maximum=2)  # the seam of sdt's adaptive scaling: the gateway scales
        client.wait_for_workers(2, timeout=180)
        assert len(client.scheduler_info()["workers"]) == 2
    assert gateway_server.clusters() == {}


@pytest.fixture
def running_cluster(gateway_server):
    """A cluster of the user's started by hand, with one worker, and a client of it; stopped after the test."""
    from distributed import Client

    async def running(gateway):
        while (report := await gateway.get_cluster(name, wait=True)).status.name == "PENDING":
            await asyncio.sleep(0.5)
        await gateway.scale_cluster(name, 1)
        return report

    name = gateway_server.ask(lambda gateway: gateway.submit())
    try:
        report = gateway_server.ask(running)
        with Client(report.scheduler_address, security=report.security, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=180)
            yield name, client
    finally:
        gateway_server.ask(lambda gateway: gateway.stop_cluster(name))
    assert gateway_server.wait_no_clusters() == {}


def test_attaching_to_a_running_cluster_leaves_it_running(gateway_server, gateway_env, running_cluster, tmp_path):
    name, client = running_cluster
    before = client.run(os.getpid)
    done = sdt("run", "--plug", "gateway", *gateway_server.settings(), "--set", f"cluster_name={name}",
               *QUICK, env=gateway_env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 keys: 2 ok, 0 failed" in done.stderr
    attached = f"Cluster: attached to gateway://127.0.0.1:{gateway_server.address.rpartition(':')[2]}/{name}"
    assert f"{attached} (not started by sdt; left running)" in done.stderr.splitlines()
    assert gateway_server.clusters() == {name: "RUNNING"}
    assert client.run(os.getpid) == before and client.submit(sum, [1, 2]).result(timeout=60) == 3


def test_sigterm_to_sdt_up_stops_the_cluster_it_started(gateway_server, gateway_env, tmp_path):
    command = [str(SDT), "up", "gateway", *gateway_server.settings(), *ONE_WORKER]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=gateway_env,
                          cwd=tmp_path) as up:  # fmt: skip
        try:
            lines = []
            while not lines or not lines[-1].startswith("Running;"):
                line = up.stdout.readline()  # type: ignore[union-attr]
                assert line, f"sdt up ended: {up.wait()} {up.stderr.read()}"  # type: ignore[union-attr]
                lines.append(line.strip())
            assert lines[0] == "Cluster: started by plug 'gateway'; closed at the end"
            assert list(gateway_server.clusters().values()) == ["RUNNING"]
            up.send_signal(signal.SIGTERM)
            assert up.wait(timeout=180) == 0
            assert up.stderr.read().strip().splitlines()[-1] == "Cluster closed."  # type: ignore[union-attr]
        finally:
            if up.poll() is None:
                up.kill()
    assert gateway_server.clusters() == {}


SLOW_ANALYSIS = """
import time


def slow(frame):
    time.sleep(2)
    return {"rows": len(frame)}
"""


def test_ctrl_c_mid_run_stops_the_cluster_and_keeps_the_keys_done(gateway_server, gateway_env, tmp_path):
    (tmp_path / "slow_analysis.py").write_text(SLOW_ANALYSIS)
    workers_import_it = json.dumps({"environment": {"PYTHONPATH": str(tmp_path)}})  # a folder they share
    command = [str(SDT), "run", "sample://?systems=30&days=2&real=false", "--plug", "gateway",
               *gateway_server.settings(), *ONE_WORKER, "--set", f"options={workers_import_it}",
               "--analysis", "slow_analysis:slow", "--out", "out"]  # fmt: skip
    results = tmp_path / "out" / "results.jsonl"
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=gateway_env,
                          cwd=tmp_path, start_new_session=True) as run:  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while not (results.exists() and results.read_text().count("\n") >= 1):
                assert run.poll() is None, run.stderr.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "no key finished within 300 s"
                time.sleep(0.2)
            os.killpg(run.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it: to the whole process group
            assert run.wait(timeout=180) == 130
            stderr = run.stderr.read()  # type: ignore[union-attr]
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
    assert "sdt: stopped by SIGINT; " in stderr and "--resume goes on" in stderr, stderr
    done = [json.loads(line) for line in results.read_text().splitlines()]
    assert 1 <= len(done) < 30 and all(row["status"] == "ok" for row in done)
    assert gateway_server.clusters() == {}


def test_a_start_that_does_not_finish_in_time_is_stopped(gateway_server):
    login = {"address": gateway_server.address, "username": gateway_server.user, "password": gateway_server.password}
    plug = get_plug("gateway", workers=1, start_timeout=0.5, **login)
    with pytest.raises(ClusterStartError, match=r"^plug 'gateway': cluster \w+ was still PENDING after "):
        plug.init_client()
    assert gateway_server.clusters() == {}


def test_plan_shows_the_options_it_would_ask_for_and_creates_nothing(gateway_server, gateway_env, tmp_path):
    env = gateway_env | {
        "DASK_GATEWAY__ADDRESS": gateway_server.address,
        "DASK_GATEWAY__AUTH__KWARGS__USERNAME": gateway_server.user,
        "DASK_GATEWAY__AUTH__KWARGS__PASSWORD": gateway_server.password,
    }
    done = sdt("plan", "gateway", "--threads", "2", "--memory", "1.5", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Plan for plug 'gateway' (nothing has been created)",
        "  workers: 2 x gateway worker, 2 vCPU, 1.5 GiB",
        f"  region/location: the Dask Gateway at {gateway_server.address}",
        "  network: scheduler and workers run by the gateway, reached through its proxy "
        f"(gateway://{gateway_server.address.removeprefix('http://')}) with the cluster's own certificate",
        "  TLS: on",
        "  also creates: 1 gateway cluster (its scheduler, and the workers asked for), stopped when the run ends",
        f"Note: authenticates with auth=basic as {gateway_server.user}",
        "Cluster options (as they would be submitted):",
        "  worker_cores: 2",
        "  worker_memory: 1.5",
        "  environment: {}",
    ]
    as_json = json.loads(sdt("plan", "gateway", "--json", env=env, cwd=tmp_path).stdout)
    assert as_json["prices"] is None and as_json["cost_per_hour"] is None
    assert as_json["machines"][0]["vcpu"] == 1 and as_json["machines"][0]["memory_gib"] == 1
    assert gateway_server.clusters() == {}


def test_a_wrong_password_is_one_line_exit_2_and_creates_nothing(gateway_server, gateway_env, tmp_path):
    address, user = gateway_server.address, gateway_server.user
    done = sdt("run", "--plug", "gateway", f"--set=address={address}", f"--set=username={user}",
               "--set=password=wrong", *QUICK, env=gateway_env, cwd=tmp_path)  # fmt: skip
    one_line_exit_2(
        done,
        f"the Dask Gateway at {address} refused the credentials (auth=basic, user {user}); check the password "
        "(--set password=..., or dask config gateway.auth.kwargs.password)",
    )
    assert gateway_server.clusters() == {} and not (tmp_path / "sdt-results" / "summary.csv").exists()


def test_an_unknown_option_is_one_line_exit_2(gateway_server, gateway_env, tmp_path):
    done = sdt("run", "--plug", "gateway", *gateway_server.settings(), "--set", "options=worker_gpus=1", *QUICK,
               env=gateway_env, cwd=tmp_path)  # fmt: skip
    one_line_exit_2(
        done,
        f"the gateway at {gateway_server.address} offers no cluster option 'worker_gpus' (given in options); "
        "did you mean 'worker_cores'? its options: worker_cores, worker_memory, environment",
    )
    assert gateway_server.clusters() == {}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"threads": 4}, "cluster option worker_cores (given in threads=4): worker_cores must be <= 2, got 4"),
        ({"memory": 0.25}, "cluster option worker_memory (given in memory=0.25): worker_memory must be >= 0.5, got "
         "0.25"),
        ({"options": {"worker_cores": "two"}}, "cluster option worker_cores (given in options): worker_cores must be "
         "an integer, got 'two'"),
        ({"cluster_name": "nosuchcluster"}, "the gateway at {address} has no cluster 'nosuchcluster'; your running "
         "clusters: none"),
    ],
    ids=["too-many-threads", "too-little-memory", "wrong-type", "unknown-cluster"],
)  # fmt: skip
def test_what_the_gateway_cannot_give_is_refused_by_preflight(gateway_server, values, message):
    login = {"address": gateway_server.address, "username": gateway_server.user, "password": gateway_server.password}
    with pytest.raises(SettingsError) as error:
        get_plug("gateway", **login, **values).preflight()
    assert str(error.value) == "plug 'gateway': " + message.format(address=gateway_server.address)
    assert gateway_server.clusters() == {}


def test_an_unreachable_gateway_is_one_line_exit_2(gateway_env, tmp_path):
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = sdt("run", "--plug", "gateway", "--set", f"address={address}", *QUICK, env=gateway_env, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"sdt: error: plug 'gateway': no Dask Gateway answers at {address} (Cannot connect")
    assert done.stderr.endswith("); check the address, that the gateway is running\n")


def test_an_address_that_is_no_gateway_is_one_line():
    import http.server
    import threading

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler) as web:
        threading.Thread(target=web.serve_forever, daemon=True).start()
        address = f"http://127.0.0.1:{web.server_address[1]}"
        try:
            with pytest.raises(SettingsError) as error:
                get_plug("gateway", address=address, password="x").preflight()
        finally:
            web.shutdown()
    assert str(error.value) == (
        f"plug 'gateway': {address} answers, but not as a Dask Gateway; give the gateway's address (as "
        "JupyterHub's services list it)"
    )
