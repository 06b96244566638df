"""The slurm plug against a real single-node SLURM (conftest.py starts it): real sbatch jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sdt_slurm.jobs import default_lifetime, walltime_seconds

from sdt_core import SettingsError, get_plug, list_plugs
from sdt_core.testing import live_processes

SDT = Path(sys.executable).with_name("sdt")
SMALL = ["--workers", "2", "--threads", "1", "--memory", "1.5", "--set", "dashboard_address=127.0.0.1:0"]


def sdt(*args: str, cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SDT), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def job_outputs(folder: Path) -> dict[int, str]:
    """The output of each job that ran from `folder` (sbatch's default slurm-JOBID.out), by job id."""
    return {int(p.stem.split("-")[1]): p.read_text(errors="replace") for p in folder.glob("slurm-*.out")}


def submissions(slurm) -> int | None:
    """How many batch jobs slurmctld accepted so far (None: a SLURM this session did not start)."""
    return slurm.log.read_text().count("_slurm_rpc_submit_batch_job") if slurm.log else None


def wait_no_workers(timeout: float = 30) -> list[str]:
    """Wait until no Dask worker started from this test session runs; the command lines of those left."""
    deadline = time.monotonic() + timeout
    while (left := [c for c in live_processes().values() if "dask_worker" in c]) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def test_the_plug_is_discovered():
    (plug,) = [p for p in list_plugs() if p.name == "slurm"]
    assert plug.status == "ok" and plug.distribution == "sdt-slurm"
    assert {"queue", "account", "walltime", "job_extra", "job_script_prologue", "lifetime"} <= {
        s.name for s in plug.settings
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 1800), ("1", 60), ("10:30", 630), ("01:00:00", 3600), ("2-12", 216000), ("1-00:30", 88200),
     ("1-00:00:05", 86405)],
)  # fmt: skip
def test_walltime_in_slurms_formats(text, seconds):
    assert walltime_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "1h", "0", "00:00:00", "1:2:3:4", "-5", "a-1"])
def test_a_walltime_slurm_would_refuse_is_refused(text):
    with pytest.raises(ValueError):
        walltime_seconds(text)


def test_workers_retire_before_the_walltime_by_default():
    for walltime in (60, 3600, 86400):
        lifetime, stagger = default_lifetime(walltime)
        assert 0 < stagger < lifetime and lifetime + stagger < walltime
        assert walltime - (lifetime + stagger) <= max(0.1 * walltime, 480)
    assert default_lifetime(3600) == (3060, 120)


def test_settings_map_to_one_worker_per_job():
    plug = get_plug(
        "slurm", workers=3, threads=2, memory=1.5, job_extra=["--qos=debug"], walltime="30",
        job_script_prologue=["module load python"],
    )  # fmt: skip
    script = plug.plan().texts[0][1]
    assert script.index("module load python") < script.index("distributed.cli.dask_worker")
    assert "#SBATCH --cpus-per-task=2" in script and "#SBATCH --mem=2G" in script
    assert "#SBATCH --qos=debug" in script and "#SBATCH -t 30" in script
    assert "--nthreads 2 --memory-limit 1.50GiB" in script and "--nworkers" not in script
    assert "--lifetime 1530s --lifetime-stagger 90s" in script
    assert plug.plan().machines[0].count == 3
    fixed = get_plug("slurm", replace_workers=False, lifetime="1h", walltime="30").plan()
    assert "--lifetime" not in fixed.texts[0][1] and "are not replaced" in " ".join(fixed.notes)


def test_tls_lets_the_scheduler_listen_for_other_nodes_but_not_the_dashboard():
    plug = get_plug("slurm", host="0.0.0.0", tls=True)
    assert plug.plan().tls and "tls://0.0.0.0:PORT" in plug.plan().texts[0][1]
    with pytest.raises(SettingsError, match=r"dashboard_address :8787 can be reached .*--set insecure=true"):
        get_plug("slurm", tls=True, dashboard_address=":8787")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"walltime": "1h"}, "walltime '1h' is not a SLURM time limit; give MM, MM:SS"),
        ({"walltime": "10", "lifetime": "10m"}, "reaches the walltime 10 (600 s)"),
        ({"lifetime": "soon"}, "lifetime 'soon' is not a duration"),
        ({"host": "0.0.0.0"}, "host 0.0.0.0 can be reached from other machines"),
        ({"interface": "eth0"}, "interface eth0 can be reached from other machines"),
        ({"cores": 4}, "cores is set from the setting 'threads'"),
        ({"job_extra_directives": ["--qos=x"]}, "give job_extra=... instead"),
    ],
)
def test_bad_settings_are_one_clear_error(settings, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        get_plug("slurm", **settings)


def test_plan_prints_the_job_script_and_submits_nothing(slurm, tmp_path):
    before = submissions(slurm)
    args = ["--set", f"queue={slurm.partition}", "--set", "account=pvteam", "--set", "walltime=00:20:00"]
    done = sdt("plan", "slurm", *args, "--threads", "2", "--memory", "3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for line in (f"#SBATCH -p {slurm.partition}", "#SBATCH -A pvteam", "#SBATCH -t 00:20:00", "#SBATCH --mem=3G",
                 "#SBATCH --cpus-per-task=2"):  # fmt: skip
        assert f"\n  {line}\n" in out
    assert "Job script (one per worker):" in out and "distributed.cli.dask_worker tcp://127.0.0.1:PORT" in out
    assert "workers: 2 x SLURM job in partition" in out
    for cloud in ("Estimated cost", "price", "region/location", "image:"):  # a batch queue has no prices
        assert cloud not in out
    as_json = json.loads(sdt("plan", "slurm", *args, "--json", cwd=tmp_path).stdout)
    assert as_json["prices"] is None and as_json["cost_per_hour"] is None
    assert "#SBATCH -A pvteam" in as_json["texts"][0][1]
    assert slurm.queue() == [] and job_outputs(tmp_path) == {} and submissions(slurm) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "queue=nosuchpartition"], "partition 'nosuchpartition' does not exist; give queue=NAME, one of"),
        (["--set", "walltime=forever"], "walltime 'forever' is not a SLURM time limit"),
        (["--set", "host=0.0.0.0"], "can be reached from other machines"),
    ],
)
def test_bad_settings_exit_2_in_one_line_and_submit_nothing(slurm, tmp_path, args, message):
    before = submissions(slurm)
    done = sdt("run", "--plug", "slurm", *SMALL, *args, "--limit", "1", cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr
    assert slurm.queue() == [] and job_outputs(tmp_path) == {} and submissions(slurm) == before


def test_without_slurms_commands_one_line_says_so(tmp_path):
    env = os.environ | {"PATH": str(SDT.parent)}  # sdt and python, no sbatch or sinfo
    done = subprocess.run(
        [str(SDT), "run", "--plug", "slurm", *SMALL, "--limit", "1"], capture_output=True, text=True, cwd=tmp_path,
        env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "sdt: error: plug 'slurm': SLURM's commands (sbatch, sinfo) are not on PATH; run on a machine that "
        "submits to SLURM (a login node), or install slurm-client"
    )


def test_sdts_pipeline_runs_through_sbatch_jobs_over_tls_and_leaves_no_job(slurm, tmp_path):
    done = sdt("run", "--plug", "slurm", *SMALL, "--set", f"queue={slurm.partition}", "--set", "tls=true",
               "--limit", "2", "--out", "out", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 keys: 2 ok, 0 failed" in done.stderr
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["key"][0] for r in rows) == ["TAEFC1044741", "ZT162185000441C1203"]
    assert all(r["status"] == "ok" and r["sdt_mode"] == "fast" for r in rows)
    jobs = job_outputs(tmp_path)
    assert len(jobs) == 2 and all("Start worker at:" in out for out in jobs.values())
    workers = {w for out in jobs.values() for w in _worker_addresses(out)}
    assert {r["worker"] for r in rows} <= workers and all(w.startswith("tls://") for w in workers)
    assert slurm.wait_empty() == []
    assert wait_no_workers() == []
    assert list(tmp_path.glob(".dask-jobqueue.*")) == []  # the certificate's files went with the cluster


def _worker_addresses(job_output: str) -> set[str]:
    return {line.split()[-1] for line in job_output.splitlines() if "Start worker at:" in line}


SLOW_ANALYSIS = """
import time

def slow(frame):
    time.sleep({seconds})
    return {{"rows": len(frame)}}
"""


def test_a_run_longer_than_the_walltime_finishes_on_replaced_workers(slurm, tmp_path):
    keys, seconds, workers = 16, 8, 2  # 64 s of work on 2 workers: longer than one job's 1-minute walltime
    data = _slow_data(tmp_path, keys, seconds)
    settings = ["--set", "walltime=1", "--set", "lifetime=40s", "--set", "lifetime_stagger=3s"]  # retire at 37-43 s
    done = sdt("run", str(data), "--plug", "slurm", *SMALL, *settings, "--analysis", "slow_analysis:slow",
               "--out", "out", cwd=tmp_path, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["key"][0] for r in rows) == [f"system{i:02d}" for i in range(keys)]  # each key exactly once
    assert all(r["status"] == "ok" and r["rows"] == 48 for r in rows)
    jobs = job_outputs(tmp_path)
    assert len(jobs) > workers, f"no worker was replaced: jobs {sorted(jobs)}"
    retired = [job for job, out in jobs.items() if "Reason: worker-lifetime-reached" in out]
    assert retired, "no worker retired at its lifetime"
    assert not [job for job, out in jobs.items() if "DUE TO TIME LIMIT" in out], "a job was killed at its walltime"
    assert slurm.wait_empty() == []
    assert wait_no_workers() == []


def _slow_data(tmp_path: Path, keys: int, seconds: float) -> Path:
    """`keys` CSV systems of two days and the analysis `slow_analysis:slow` that takes `seconds` each."""
    (tmp_path / "slow_analysis.py").write_text(SLOW_ANALYSIS.format(seconds=seconds))
    data = tmp_path / "data"
    data.mkdir()
    for i in range(keys):
        rows = "\n".join(
            f"2024-06-{1 + h // 24:02d} {h % 24:02d}:00,{max(0, 12 - abs(h % 24 - 12))}" for h in range(48)
        )
        (data / f"system{i:02d}.csv").write_text("timestamp,power\n" + rows + "\n")
    return data


def test_a_worker_job_cancelled_mid_run_retires_and_every_key_gets_one_row(slurm, tmp_path):
    keys = 14  # 3 s each on 2 workers: about 21 s; one job is cancelled after the first results
    data = _slow_data(tmp_path, keys, 3)
    command = [str(SDT), "run", str(data), "--plug", "slurm", *SMALL, "--analysis", "slow_analysis:slow"]
    results = tmp_path / "out" / "results.jsonl"
    with subprocess.Popen([*command, "--out", "out"], cwd=tmp_path, stderr=subprocess.PIPE, text=True) as running:
        deadline = time.monotonic() + 300
        while (not results.exists() or len(results.read_text().splitlines()) < 2) and time.monotonic() < deadline:
            assert running.poll() is None, running.stderr.read()[-3000:]
            time.sleep(0.2)
        cancelled = slurm.queue()[0]
        slurm.run("scancel", cancelled)  # SIGTERM to every process of the job, SIGKILL 5 s later (KillWait)
        err = running.communicate(timeout=400)[1]
    assert running.returncode == 0, err[-3000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["key"][0] for r in rows) == [f"system{i:02d}" for i in range(keys)]  # each key exactly once
    assert all(r["status"] == "ok" for r in rows)
    jobs = job_outputs(tmp_path)
    assert "retiring gracefully" in jobs[int(cancelled)], jobs[int(cancelled)][-2000:]
    assert "worker-close-gracefully" in (tmp_path / "out" / "logs" / "scheduler.log").read_text()
    assert len(jobs) == 3  # a job replaced the cancelled one's worker
    counts = [count for _, count in json.loads((tmp_path / "out" / "run.json").read_text())["workers"]]
    assert 1 in counts and counts[-1] == 2, counts  # one left, the run's workers came back to 2
    assert slurm.wait_empty() == []
    assert wait_no_workers() == []


def test_adapt_submits_worker_jobs_while_keys_wait(slurm, tmp_path):
    keys = 10  # 2 s each, 2 in flight, the rest held back by the runner
    data = _slow_data(tmp_path, keys, 2)
    small = [*SMALL[:1], "1", *SMALL[2:]]  # starts with 1 worker
    done = sdt("run", str(data), "--plug", "slurm", *small, "--analysis", "slow_analysis:slow", "--adapt", "1:2",
               "--max-in-flight", "2", "--out", "out", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["key"][0] for r in rows) == [f"system{i:02d}" for i in range(keys)]  # each key exactly once
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    counts = [count for _, count in record["workers"]]
    assert record["adapt"] == [1, 2] and counts[0] <= 1 and max(counts) == 2, counts  # 0: the first job starting
    assert len({r["worker"] for r in rows}) == 2  # the job submitted while keys waited ran some
    assert slurm.wait_empty() == []
    assert wait_no_workers() == []
