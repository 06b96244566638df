"""The `sdt` command, run as a user runs it: a subprocess of the installed console script."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import pandas as pd
import pytest
from distributed import Client

from sdt_core.testing import live_processes

from .conftest import SDT

#: The built-in plugs, all installed in the suite's environment, as an unknown plug's error lists them.
PLUGS = "address, azure, fargate, gateway, local, slurm, ssh"

SMALL_LOCAL = ("up", "local", "--workers", "2", "--threads", "1", "--memory", "1", "--dashboard-address", "127.0.0.1:0")


def one_line_usage_error(result) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


def test_plugs_lists_the_installed_plugs(sdt):
    out = sdt("plugs").stdout.splitlines()
    assert out[0].split() == ["NAME", "DISTRIBUTION", "VERSION", "STATUS", "SUMMARY", "OR", "ERROR"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert rows["local"][1:4] == ["sdt-local", "0.1.0", "ok"]
    assert {"fargate", "azure"} <= set(rows)


def test_plugs_json_gives_records_with_settings(sdt):
    records = {r["name"]: r for r in json.loads(sdt("plugs", "--json").stdout)}
    assert records["fargate"]["status"] == "ok"
    settings = {s["name"]: s for s in records["fargate"]["settings"]}
    assert settings["memory"] == {
        "name": "memory",
        "type": "float",
        "default": 16.0,
        "help": "Memory per worker in GiB (the README's 'GB').",
        "secret": False,
    }


def test_info_shows_type_default_and_help(sdt):
    out = sdt("info", "local").stdout
    assert "local: Dask LocalCluster on this machine. (sdt-local 0.1.0)" in out
    assert re.search(r"\nprocesses +bool +True +Run each worker in its own process", out)
    assert "pass through to distributed.LocalCluster, distributed.Nanny" in out
    assert "DASK_SDT__LOCAL__<SETTING>" in out


def test_up_help_derives_options_from_the_plug_settings(sdt):
    out = sdt("up", "fargate", "--help").stdout
    for option in ("--workers", "--worker-cpu", "--region-name", "--environment", "--set", "--check"):
        assert option in out
    assert "[default: 16.0]" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["up", "nosuch"],
            "sdt: error: unknown plug 'nosuch'; installed plugs: " + PLUGS,
        ),
        (
            ["up", "locl"],
            "sdt: error: unknown plug 'locl'; did you mean 'local'? installed plugs: " + PLUGS,
        ),
        (
            ["info", "nosuch"],
            "sdt: error: unknown plug 'nosuch'; installed plugs: "
            + PLUGS
            + "; data plugs: abfs, az, csv, file, parquet, pvdaq, s3, sample",
        ),
        (["up", "local", "--workers", "0"], "sdt: error: plug 'local': workers must be >= 1, got 0"),
        (
            ["up", "local", "--threads", "two"],
            "sdt: error: plug 'local': threads must be an integer, got the string 'two'",
        ),
        (
            ["up", "local", "--set", "processes=maybe"],
            "sdt: error: plug 'local': processes must be True or False, got the string 'maybe'",
        ),
        (
            ["up", "local", "--set", "processes"],
            "sdt: error: --set takes KEY=VALUE, got 'processes' (see `sdt up local --help`)",
        ),
        (
            ["up", "fargate", "--memory", "3"],
            "sdt: error: plug 'fargate': Fargate offers no worker task of 4 vCPU "
            "with 3 GiB; at 4 vCPU memory is 8 to 30 in steps of 1 GiB",
        ),
        (["frobnicate"], "sdt: error: No such command 'frobnicate'. (see `sdt --help`)"),
    ],
)
def test_usage_errors_exit_2_with_one_line_and_start_nothing(sdt, args, message):
    before = live_processes()
    assert one_line_usage_error(sdt(*args)) == message
    assert live_processes() == before


def test_an_unknown_set_key_names_the_valid_ones(sdt):
    line = one_line_usage_error(sdt("up", "local", "--set", "wrokers=1"))
    assert line.startswith("sdt: error: plug 'local' has no setting 'wrokers'; did you mean 'workers'?")


def test_up_check_starts_computes_and_tears_down(sdt):
    result = sdt(*SMALL_LOCAL, "--check")
    assert result.returncode == 0, result.stderr
    assert "check: 100 tasks ran on 2 workers (sum of squares 328350)" in result.stdout
    assert "Dashboard: http://127.0.0.1:" in result.stdout


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_up_serves_until_a_signal_then_tears_everything_down_and_exits_0(stop):
    before = set(live_processes())
    proc = subprocess.Popen(
        [SDT, *SMALL_LOCAL, "--set", "silence_logs=40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(4)]
        assert lines[0] == "Cluster: started by plug 'local'; closed at the end\n", lines
        assert lines[1].startswith("Scheduler: tcp://127.0.0.1:"), lines
        assert lines[2].startswith("Dashboard: http://127.0.0.1:"), lines
        assert lines[3] == "Running; Ctrl-C or SIGTERM stops it.\n", lines
        with Client(lines[1].split()[1], timeout=30) as client:
            assert client.submit(sum, [1, 2, 3]).result() == 6
            assert len(client.scheduler_info()["workers"]) == 2
        started = set(live_processes()) - before
        assert len(started) >= 3  # sdt and its two worker processes
        proc.send_signal(stop)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    deadline = time.monotonic() + 15
    while started & set(live_processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not started & set(live_processes())


def test_lists_and_mappings_are_typed_as_a_user_types_them(sdt, tmp_path):
    """`--ingress a,b` and `--tags k=v,k2=v2` (JSON needed before); `none` only where None is allowed."""
    args = ["plan", "fargate", "--region-name", "us-east-1", "--set", "image=repo/sdt:1", "--json"]
    result = sdt(*args, "--ingress", "203.0.113.7/32,198.51.100.0/24", "--tags", "team=pv,cost=lab", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    network = json.loads(result.stdout)["network"]
    assert "to 203.0.113.7/32, 198.51.100.0/24 on ports 8786-8787" in network
    assert sdt(*args, "--subnets", "none", cwd=tmp_path).returncode == 0  # subnets may be None
    refused = one_line_usage_error(sdt(*args, "--ingress", "none", cwd=tmp_path))
    assert refused == (
        "sdt: error: plug 'fargate': ingress entry 'none' is not an address range; give CIDRs like 203.0.113.7/32"
    )


def test_the_help_of_each_option_says_how_to_type_its_value(sdt):
    out = " ".join(sdt("up", "fargate", "--help").stdout.split())
    subnets = "Subnet ids of the tasks (default: every subnet of the VPC)."
    assert f"--subnets A,B,... {subnets} [a list: a,b,c or JSON, or none; default: None]" in out
    tags = "Tags for every AWS resource the cluster creates."
    assert f"--tags K=V,... {tags} [a mapping: k=v,k2=v2 or JSON; default: {{}}]" in out
    assert "--tls / --no-tls" in out and "--workers INTEGER Number of workers. [default: 2]" in out
    info = sdt("info", "fargate").stdout
    assert "On the command line: --tls/--no-tls, --public-ip/--no-public-ip, " in info
    assert "(or --set NAME=true/false); lists as a,b,c and mappings as k=v,k2=v2 (or JSON)" in info


def test_data_options_without_data_apply_to_the_embedded_sample_set(sdt, tmp_path):
    options = ["--data-option", "systems=2", "--data-option", "lengths=3,4", "--data-option", "real=false"]
    small = ["--workers", "1", "--threads", "1", "--memory", "1", "--set", "dashboard_address=127.0.0.1:0"]
    inventory = ["--analysis", "sdt_core.analysis:data_inventory", "--no-report", "--out", str(tmp_path / "out")]
    result = sdt("run", *options, *small, *inventory, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "2 keys: 2 ok, 0 failed" in result.stderr
    days = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("key_field_0")["days"]
    assert 2 < days["synthetic-000"] <= 3 < days["synthetic-001"] <= 4
    wrong = one_line_usage_error(sdt("run", "--data-option", "power_column=p"))
    assert wrong == (
        "sdt: error: data plug 'sample' has no option 'power_column'; options of data plug 'sample': "
        "systems, days, lengths, real (see `sdt info sample`)"
    )
