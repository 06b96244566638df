"""A secret given in `environment` appears in no output, log or report.

Every surface, in one place: `sdt info`, `sdt plan` (text and JSON), a preflight error, a run
whose cluster does not start (its output and every file it wrote), the plug's repr, and the
logs of a failed start. The whole suite also fails any test whose captured output contains
`sdt_core.testing.SECRET` (see `pytest_runtest_makereport` there).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdt_core import ClusterStartError, get_plug
from sdt_core.testing import SECRET

SDT = Path(sys.executable).with_name("sdt")
IMAGE = "example.org/sdt-worker:1"
ENVIRONMENT = json.dumps({"TOKEN": SECRET, "AWS_SECRET_ACCESS_KEY": SECRET})


def sdt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SDT), *args], capture_output=True, text=True, timeout=300, env=env)


def test_a_secret_in_environment_appears_in_no_output_log_or_report(inventory, black_hole, tmp_path, caplog):
    small = ["--workers", "1", "--worker-cpu", "1024", "--memory", "2"]
    settings = {"workers": 1, "worker_cpu": 1024, "memory": 2, "image": IMAGE, "start_timeout": 3}
    settings |= {"scheduler_address": black_hole.address, "environment": ENVIRONMENT}
    sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    config_env = os.environ | {"DASK_SDT__FARGATE__ENVIRONMENT": ENVIRONMENT}
    results = {
        "sdt info": sdt("info", "fargate", env=config_env),
        "sdt info --json": sdt("info", "fargate", "--json", env=config_env),
        "sdt plan": sdt("plan", "fargate", *small, "--image", IMAGE, "--environment", ENVIRONMENT),
        "sdt plan --json": sdt("plan", "fargate", "--json", "--image", IMAGE, env=config_env),
        "preflight error": sdt("up", "fargate", "--image", IMAGE, "--vpc", "vpc-0000", "--environment", ENVIRONMENT),
        "sdt run": sdt("run", "--plug", "fargate", "--out", str(tmp_path / "out"), "--limit", "1", *sets),
    }
    assert results["sdt plan"].returncode == 0, results["sdt plan"].stderr
    assert "2 environment variables passed to the containers (values hidden)" in results["sdt plan"].stdout
    assert results["preflight error"].stderr.startswith("sdt: error: plug 'fargate': VPC vpc-0000 does not exist")
    assert results["sdt run"].returncode == 1
    assert (
        results["sdt run"].stderr.splitlines()[-1].startswith("sdt: error: plug 'fargate': the cluster did not start")
    )
    for name, result in results.items():
        assert SECRET not in result.stdout + result.stderr, name
    written = {p.name: p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    # run.log and logs/stderr.log hold what the failed start logged and printed; report.html the fleet report
    files = [".sdt-holder.json", ".sdt-lock", "report.html", "results.jsonl", "run.json", "run.log", "stderr.log"]
    assert sorted(written) == files
    assert "'TOKEN': '***'" in written["run.json"]
    assert all(SECRET not in text for text in written.values())

    caplog.set_level(logging.DEBUG, logger="sdt_fargate")
    caplog.set_level(logging.DEBUG, logger="sdt_core")
    plug = get_plug("fargate", workers=1, worker_cpu=1024, memory=2, image=IMAGE, environment=json.loads(ENVIRONMENT),
                    start_timeout=3, scheduler_address=black_hole.address)  # fmt: skip
    with pytest.raises(ClusterStartError) as err:
        plug.init_client()
    assert SECRET not in repr(plug) + str(err.value) + caplog.text
