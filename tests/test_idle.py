"""Idle shutdown (`sdt up --idle-timeout`, dask config `sdt.idle-timeout`) on real local clusters."""

from __future__ import annotations

import subprocess
import time

import pytest
from distributed import Client, fire_and_forget

from sdt_core import SettingsError, get_plug
from sdt_core.plugs.duration import parse_duration
from sdt_core.plugs.idle import DEFAULT_IDLE_TIMEOUT, resolve_idle_timeout

from .conftest import SDT

UP = ("up", "local", "--workers", "1", "--threads", "1", "--memory", "1", "--dashboard-address", "127.0.0.1:0")


def test_a_cluster_stays_up_while_another_client_or_a_task_is_there_then_closes_itself_and_up_exits_0():
    proc = subprocess.Popen(
        [SDT, *UP, "--idle-timeout", "2s", "--set", "silence_logs=40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        assert lines[4] == "Idle shutdown: after 2 s with no task and no other client (--idle-timeout none: never).\n"
        with Client(lines[1].split()[1], timeout=30) as other:
            time.sleep(4)  # twice the timeout, with a second client connected
            assert proc.poll() is None
            # A task outlives its client: fire-and-forget keeps it running after the client left.
            fire_and_forget(other.submit(time.sleep, 4, pure=False))
            time.sleep(0.5)
        left = time.monotonic()
        time.sleep(3)
        assert proc.poll() is None  # the task still runs
        _, err = proc.communicate(timeout=90)
        waited = time.monotonic() - left
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == 0, err
    assert waited >= 3.5 + 2  # the task's rest, then the timeout
    assert err.strip().splitlines()[-1] == "Cluster closed: idle for 2 s: no task and no client but sdt up's."
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20m", 1200.0), ("90", 90.0), ("1.5h", 5400.0), ("20 minutes", 1200.0), ("none", None), ("0", None)],
)
def test_durations_are_read_as_a_user_writes_them(text, seconds):
    assert parse_duration(text, "--idle-timeout") == seconds


def test_a_bad_duration_is_one_line_and_exit_2_before_anything_starts(sdt):
    result = sdt(*UP, "--idle-timeout", "soon")
    assert (result.returncode, result.stderr) == (
        2,
        "sdt: error: --idle-timeout takes a duration such as 20m, 90s or 1h, or none; got 'soon'\n",
    )
    with pytest.raises(SettingsError, match=r"sdt\.idle-timeout takes a duration"):
        resolve_idle_timeout({"sdt.idle-timeout": "-5"}, priced=lambda: True)


def test_the_default_is_on_for_a_priced_plan_only_and_the_config_wins():
    assert resolve_idle_timeout({}, priced=lambda: True) == DEFAULT_IDLE_TIMEOUT
    assert resolve_idle_timeout({}, priced=lambda: False) is None
    assert resolve_idle_timeout({"sdt.idle-timeout": None}, priced=lambda: True) is None
    import dask.config

    with dask.config.set({"sdt.idle-timeout": "5m"}):
        assert resolve_idle_timeout({}, priced=lambda: False) == 300.0


def test_a_run_through_python_gets_the_rule_on_its_scheduler_when_configured():
    plug = get_plug(
        "local", workers=1, threads=1, memory=1, processes=False, config_overrides={"sdt.idle-timeout": "1h"}
    )
    with plug as client:
        assert plug.idle_timeout == 3600.0
        watched = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler._sdt_idle_watch.timeout)
        assert watched == 3600.0
