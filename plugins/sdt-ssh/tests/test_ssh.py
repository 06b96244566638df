"""The ssh plug against a real OpenSSH server on 127.0.0.1 (the `sshd` fixture, conftest.py).

Every test that starts a cluster ends by proving that nothing it started through sshd is
left (`wait_no_sessions`): those processes are not this process's descendants once sshd's
sessions end, so the suite's leak check alone would not see them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dask.config
import psutil
import pytest
from sdt_ssh import SSHClient

from sdt_core import SettingsError, get_plug, list_plugs
from sdt_core.testing import SECRET

SDT = Path(sys.executable).with_name("sdt")
QUICK_DATA = "sample://?systems=2&days=30&real=false"  # two small synthetic systems
QUICK = ("--analysis", "sdt_core.analysis:data_inventory", "--no-report")


def sdt(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SDT), *map(str, args)], capture_output=True, text=True, timeout=300, env=os.environ | (env or {})
    )


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("sdt: error:")]
    return line


def test_the_plug_is_discovered():
    (ssh,) = [p for p in list_plugs() if p.name == "ssh"]
    assert (ssh.status, ssh.distribution) == ("ok", "sdt-ssh")
    secret = {s.name for s in ssh.settings if s.secret}
    assert secret == {"passphrase", "password", "connect_options"}


def test_sdt_run_over_ssh_completes_and_leaves_nothing(sshd, tmp_path):
    out = tmp_path / "out"
    key = ("--set", f"key_file={sshd.encrypted_key}")  # its passphrase from the environment
    env = {"DASK_SDT__SSH__PASSPHRASE": SECRET}
    result = sdt("run", QUICK_DATA, "--plug", "ssh", *sshd.cli_settings(), *key, "--workers", 2, "--threads", 1,
                 "--memory", 1, "--limit", 2, *QUICK, "--out", out, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 keys: 2 ok, 0 failed" in result.stderr
    assert [r["status"] for r in rows(out)] == ["ok", "ok"]
    assert "ssh" in json.loads((out / "run.json").read_text())["cluster"]
    shown = [result.stdout, result.stderr, *(p.read_text() for p in out.iterdir() if p.suffix in (".json", ".jsonl"))]
    assert not any(SECRET in text for text in shown)
    sshd.wait_no_sessions()


def test_a_real_sdt_run_over_ssh(sshd, tmp_path):
    out = tmp_path / "out"
    result = sdt("run", QUICK_DATA, "--plug", "ssh", *sshd.cli_settings(), "--workers", 1,
                 "--threads", 1, "--memory", 2, "--limit", 1, "--no-report", "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    (row,) = rows(out)
    assert row["status"] == "ok", row
    assert row["capacity"] > 0 and 0 <= row["quality score"] <= 1  # SDT's report, computed over ssh
    sshd.wait_no_sessions()


def test_workers_run_through_sshd_with_the_core_settings(sshd, caplog):
    with get_plug("ssh", **sshd.settings(workers=2, known_hosts=None)) as client:
        assert "host keys are not checked (known_hosts=none)" in caplog.text
        info = client.scheduler_info()
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        workers = info["workers"].values()
        assert [w["nthreads"] for w in workers] == [1, 1]
        assert {w["memory_limit"] for w in workers} == {2**30}
        assert all(w["host"] == "127.0.0.1" for w in workers)
        pids = set(client.run(os.getpid).values()) | {client.run_on_scheduler(os.getpid)}
        assert len(pids) == 3 and pids <= set(sshd.sessions())  # started by sshd, not by this process
    sshd.wait_no_sessions()


def test_a_passphrase_from_dask_config_works_and_is_never_shown(sshd, capsys):
    settings = sshd.settings(key_file=str(sshd.encrypted_key))
    with dask.config.set({"sdt.ssh.passphrase": SECRET}):
        plug = SSHClient(**settings)
        assert SECRET not in repr(plug)
        with plug as client:
            assert client.submit(sum, [1, 2]).result() == 3
            remote = sshd.sessions()
            handed = [psutil.Process(pid).environ().get("DASK_INTERNAL_INHERIT_CONFIG", "") for pid in remote]
            assert any(handed)  # the dask config SSHCluster hands the remote processes...
            config = [json.dumps(dask.config.deserialize(text)) for text in handed if text]
            assert not any(SECRET in text for text in config)  # ...holds no plug's settings
            assert not any(SECRET in cmdline for cmdline in remote.values())
    sshd.wait_no_sessions()
    assert SECRET not in capsys.readouterr().err


def test_a_wrong_key_is_one_line_exit_1_and_leaves_nothing(sshd, tmp_path):
    result = sdt("run", "--plug", "ssh", *sshd.cli_settings(), "--set", f"key_file={sshd.wrong_key}",
                 "--limit", 1, *QUICK, "--out", tmp_path / "out")  # fmt: skip
    line = one_line(result, 1)
    assert line.startswith("sdt: error: plug 'ssh': the cluster did not start: Permission denied")
    assert f"accept the key {sshd.wrong_key}" in line
    sshd.wait_no_sessions()


def test_a_host_key_that_is_not_the_known_one_is_refused(sshd, tmp_path):
    other = tmp_path / "known_hosts"
    forged = sshd.wrong_key.with_suffix(".pub").read_text().split()[:2]
    other.write_text(f"[127.0.0.1]:{sshd.port} {' '.join(forged)}\n")
    result = sdt("run", "--plug", "ssh", *sshd.cli_settings(), "--set", f"known_hosts={other}",
                 "--limit", 1, *QUICK, "--out", tmp_path / "out")  # fmt: skip
    line = one_line(result, 1)
    assert "the cluster did not start: Host key is not trusted" in line, line
    assert f"not the one in {other}" in line
    sshd.wait_no_sessions()


def test_a_worker_host_that_fails_stops_the_scheduler_already_started(sshd, tmp_path):
    before = sshd.log.read_text()
    # sshd listens on 127.0.0.1 only: the scheduler starts there, the worker's host refuses.
    result = sdt("run", "--plug", "ssh", *sshd.cli_settings(), "--set", "hosts=127.0.0.1,127.0.0.2",
                 "--limit", 1, *QUICK, "--out", tmp_path / "out")  # fmt: skip
    line = one_line(result, 1)
    assert "the cluster did not start:" in line and "Connect call failed ('127.0.0.2'" in line, line
    assert "Accepted publickey" in sshd.log.read_text()[len(before) :]  # the scheduler did start
    sshd.wait_no_sessions()


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"hosts": ""}, "hosts needs at least two, got 0"),
        ({"hosts": "127.0.0.1"}, "hosts needs at least two, got 1"),
        ({"key_file": "/no/such/key"}, "key_file /no/such/key cannot be read: No such file or directory"),
        ({"port": "70000"}, "port must be <= 65535, got 70000"),
        (
            {"hosts": "no-such-host.invalid,no-such-host.invalid", "insecure": "true"},
            "host no-such-host.invalid does not resolve",
        ),
        ({"hosts": "127.0.0.1,bad_host!"}, "hosts: 'bad_host!' is not a host name or an IP address"),
        ({"known_hosts": "/no/such/known_hosts"}, "known_hosts /no/such/known_hosts cannot be read"),
        ({"known_hosts": os.devnull}, "host 127.0.0.1 (port {port}) has no key in /dev/null"),
        ({"key_file": "{encrypted}"}, "key_file {encrypted}: Passphrase must be specified"),
        ({"workers": "3", "hosts": "127.0.0.1,127.0.0.1,127.0.0.1"}, "workers=3 cannot be spread evenly"),
        ({"hosts": "10.0.0.1,10.0.0.2"}, "can be reached from other machines, with no authentication or TLS"),
        ({"worker_options": "nthreads=4"}, "worker_options nthreads is set from the setting 'threads'"),
    ],
)
def test_bad_settings_are_one_line_exit_2_and_start_nothing(sshd, tmp_path, sets, message):
    before = sshd.log.read_text()
    fill = {"port": sshd.port, "encrypted": sshd.encrypted_key}
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v.format(**fill)}")]
    result = sdt("run", "--plug", "ssh", *sshd.cli_settings(), *args, *QUICK, "--out", tmp_path / "out")
    assert message.format(**fill) in one_line(result, 2)
    assert sshd.log.read_text() == before  # no connection was even opened
    log = tmp_path / "out" / "results.jsonl"
    assert not log.exists() or log.read_text() == ""  # no key was run


def test_workers_are_spread_over_the_worker_hosts():
    hosts = ["127.0.0.1", "127.0.0.1", "localhost"]
    assert get_plug("ssh", hosts=hosts).settings.workers == 2  # one per worker host
    assert get_plug("ssh", hosts=hosts, workers=4).settings.workers_per_host == 2
    assert get_plug("ssh", hosts=hosts, workers_per_host=3).settings.workers == 6
    with pytest.raises(SettingsError, match="workers=4 does not match workers_per_host=3 on 2 worker hosts"):
        get_plug("ssh", hosts=hosts, workers=4, workers_per_host=3)


def test_binding_defaults_to_loopback_and_an_exposed_cluster_needs_insecure(caplog):
    local = get_plug("ssh", hosts=["127.0.0.1", "localhost"]).settings
    assert (local.scheduler_host, local.worker_host) == ("127.0.0.1", "127.0.0.1")
    with pytest.raises(SettingsError, match=r"the scheduler's host 127\.0\.0\.1 is loopback"):
        get_plug("ssh", hosts=["127.0.0.1", "10.0.0.2"])
    remote = get_plug("ssh", hosts=["10.0.0.1", "10.0.0.2"], insecure=True).settings
    assert (remote.scheduler_host, remote.worker_host) == ("10.0.0.1", None)
    assert "can be reached from other machines (insecure=True)" in caplog.text


def test_plan_shows_what_would_run_where():
    result = sdt("plan", "ssh", "--set", "hosts=127.0.0.1,127.0.0.1,localhost,localhost", "--workers", 6,
                 "--threads", 1, "--set", "known_hosts=none")  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "scheduler: 1 x process on 127.0.0.1" in out
    assert "workers: 2 x worker process on 127.0.0.1, 1 vCPU, 1.5 GiB" in out
    assert "workers: 4 x worker process on localhost, 1 vCPU, 1.5 GiB" in out
    assert f"{sys.executable} on each host" in out
    assert "network: loopback only" in out and "host keys are not checked" in out


def test_the_leftover_check_finds_a_process_orphaned_on_the_ssh_side(sshd):
    ssh = ["ssh", "-p", str(sshd.port), "-i", str(sshd.client_key), "-o", "BatchMode=yes",
           "-o", f"UserKnownHostsFile={sshd.known_hosts}", "127.0.0.1"]  # fmt: skip
    started = subprocess.run([*ssh, "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!"], capture_output=True,
                             text=True, timeout=60, check=True)  # fmt: skip
    pid = int(started.stdout)
    try:
        assert pid not in {p.pid for p in psutil.Process(sshd.process.pid).children(recursive=True)}
        assert "sleep 300" in sshd.sessions()[pid]  # found by the variable sshd set, not by ancestry
        with pytest.raises(AssertionError, match="left behind on the SSH side"):
            sshd.wait_no_sessions(timeout=1)
    finally:
        psutil.Process(pid).kill()
    sshd.wait_no_sessions()


def test_sdt_up_check_starts_computes_and_stops(sshd):
    result = sdt("up", "ssh", "--hosts", "127.0.0.1,127.0.0.1", "--port", sshd.port, "--key-file", sshd.client_key,
                 "--known-hosts", sshd.known_hosts, "--dashboard-port", 0, "--threads", 1, "--memory", 1,
                 "--check")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Scheduler: tcp://127.0.0.1:" in result.stdout
    sshd.wait_no_sessions()
