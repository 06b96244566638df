"""The address plug against real `dask scheduler` / `dask worker` processes (conftest.py).

Each run attaches, finishes, and leaves the scheduler with the same workers (same
addresses, same processes) and the same scheduler plugins.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dask.config
import pytest

from sdt_core import SettingsError, get_plug, list_plugs
from sdt_core.testing import free_port

SDT = Path(sys.executable).with_name("sdt")
QUICK = ["--analysis", "sdt_core.analysis:data_inventory", "--data-option", "real=false", "--limit", "2"]


def sdt(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"} | (env or {})
    return subprocess.run([str(SDT), *args], capture_output=True, text=True, timeout=600, env=environ, cwd=cwd)


def attached_line(address: str) -> str:
    return f"Cluster: attached to {address} (not started by sdt; left running)"


def test_the_plug_is_listed_with_its_settings():
    (plug,) = [p for p in list_plugs() if p.name == "address"]
    assert plug.status == "ok" and plug.distribution == "sdt-address"
    assert [s.name for s in plug.settings] == [
        "workers",
        "threads",
        "memory",
        "address",
        "ca",
        "cert",
        "key",
        "insecure",
        "timeout",
    ]


def test_a_run_completes_and_leaves_the_scheduler_and_its_workers_as_they_were(scheduler, tmp_path):
    before = scheduler.state()
    result = sdt("run", "--plug", "address", "--set", f"address={scheduler.address}", *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 keys: 2 ok, 0 failed" in result.stderr
    assert attached_line(scheduler.address) in result.stderr.splitlines()
    assert (tmp_path / "sdt-results" / "dask-report.html").exists()
    assert len(before["workers"]) == 2 and scheduler.state() == before


def test_sdt_up_takes_the_address_from_dask_scheduler_address(scheduler):
    before = scheduler.state()
    result = sdt("up", "address", "--check", env={"DASK_SCHEDULER_ADDRESS": scheduler.address})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == attached_line(scheduler.address) and lines[1] == f"Scheduler: {scheduler.address}"
    assert "check: 100 tasks ran on 2 workers (sum of squares 328350)" in lines
    ending = f"Disconnected; the scheduler at {scheduler.address} is left running."
    assert result.stderr.strip().splitlines()[-1] == ending
    assert scheduler.state() == before


def test_the_address_comes_from_dask_config_scheduler_address_unless_given():
    with dask.config.set({"scheduler-address": "tcp://127.0.0.1:8786"}):
        assert get_plug("address").settings.address == "tcp://127.0.0.1:8786"
        assert get_plug("address", address="127.0.0.1:9000").settings.address == "tcp://127.0.0.1:9000"


def test_a_run_over_tls_completes_and_leaves_the_scheduler_as_it_was(tls_scheduler, certificates, tmp_path):
    assert tls_scheduler.address.startswith("tls://127.0.0.1:")
    before = tls_scheduler.state()
    tls = [item for name, path in certificates.items() for item in ("--set", f"{name}={path}")]
    result = sdt("run", "--plug", "address", "--set", f"address={tls_scheduler.address}", *tls, *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 keys: 2 ok, 0 failed" in result.stderr
    assert attached_line(tls_scheduler.address) in result.stderr.splitlines()
    assert tls_scheduler.state() == before


def test_a_tls_scheduler_is_not_reached_without_the_certificates_or_over_tcp(tls_scheduler, certificates, tmp_path):
    other = tmp_path / "other-ca.pem"  # a CA that did not sign the scheduler's certificate
    other.write_text(Path(certificates["cert"]).read_text())
    port = tls_scheduler.address.rpartition(":")[2]
    for address, files in (
        (tls_scheduler.address, certificates | {"ca": str(other)}),
        (f"tcp://127.0.0.1:{port}", {}),
    ):
        plug = get_plug("address", address=address, timeout=3, **files)
        with pytest.raises(SettingsError, match=f"^plug 'address': no Dask scheduler answers at {address} within 3 s"):
            plug.preflight()


def test_the_scheduler_must_be_a_scheduler(scheduler):
    with scheduler.client() as client:
        worker = next(iter(client.scheduler_info()["workers"]))
    with pytest.raises(SettingsError) as error:
        get_plug("address", address=worker).preflight()
    assert str(error.value) == (
        f"plug 'address': {worker} is a Dask Worker, not a scheduler; give the scheduler's address"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--workers", "2", "--set", "address=tcp://127.0.0.1:8786"],
            "plug 'address': workers does not apply: the scheduler at the address has its own workers; "
            "leave workers out",
        ),
        (
            ["--memory", "4", "--set", "address=tcp://127.0.0.1:8786"],
            "plug 'address': memory does not apply: the scheduler at the address has its own workers; leave memory out",
        ),
        (
            ["--set", "address=tcp://10.20.30.40:8786"],
            "plug 'address': tcp://10.20.30.40:8786 is plain TCP to another machine: no TLS, no authentication; "
            "give a tls:// address with ca, cert and key, or --set insecure=true",
        ),
        (
            ["--set", "address=tls://10.20.30.40:8786"],
            "plug 'address': tls://10.20.30.40:8786 is tls://: give ca=FILE and cert=FILE (the cluster's CA and "
            "this client's certificate; key=FILE if not in the cert file)",
        ),
        (
            ["--set", "address=tcp://127.0.0.1:8786", "--set", "ca=ca.pem"],
            "plug 'address': ca apply to tls:// addresses, and tcp://127.0.0.1:8786 is tcp://; "
            "give address=tls://HOST:PORT",
        ),
        (
            ["--set", "address=tcp://scheduler"],
            "plug 'address': 'tcp://scheduler' is not an address; give tcp://HOST:PORT or tls://HOST:PORT",
        ),
        (
            ["--set", "address=udp://127.0.0.1:8786"],
            "plug 'address': udp://127.0.0.1:8786 is a udp:// address; give tcp://HOST:PORT or tls://HOST:PORT",
        ),
        (
            [],
            "plug 'address': no scheduler address; give --set address=tls://HOST:PORT (or set DASK_SCHEDULER_ADDRESS)",
        ),
        (
            ["--set", "address=tls://127.0.0.1:8786", "--set", "ca=missing.pem", "--set", "cert=missing.pem"],
            "plug 'address': cannot read ca missing.pem: No such file or directory",
        ),
    ],
    ids=["workers", "memory", "plain-tcp", "tls-without-files", "files-for-tcp", "no-port", "udp", "none", "no-file"],
)
def test_bad_input_is_one_line_exit_2_before_anything_connects(args, message, tmp_path):
    result = sdt("run", "--plug", "address", *args, *QUICK, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, f"sdt: error: {message}\n")
    assert not (tmp_path / "sdt-results" / "summary.csv").exists()


def test_an_unreachable_scheduler_is_one_line_exit_2(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    result = sdt("run", "--plug", "address", "--set", f"address={address}", "--set", "timeout=2", *QUICK, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"sdt: error: plug 'address': no Dask scheduler answers at {address} within 2 s (Timed out trying to "
        f"connect to {address} after 2 s); check the address, that the scheduler is running\n"
    )


def test_insecure_allows_plain_tcp_to_another_machine_with_a_warning(caplog):
    plug = get_plug("address", address="tcp://10.20.30.40:8786", insecure=True)
    assert plug.settings.address == "tcp://10.20.30.40:8786"
    assert "address: tcp://10.20.30.40:8786 is plain TCP (insecure=True): no TLS, no authentication" in caplog.text


def test_threads_do_not_apply_from_python_either():
    with pytest.raises(SettingsError, match=r"^plug 'address': threads does not apply"):
        get_plug("address", threads=2, address="tcp://127.0.0.1:8786")
