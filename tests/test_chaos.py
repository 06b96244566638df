"""2,000 keys, 1% of them raising, 1% killing their worker, 1% holding more memory than their
worker has: `sdt run` finishes by itself and records each key once, with the right status.

The tests' data plug `tests.priced:Numbered` gives system i a constant power of i + 1, so the analysis
knows its key from its data and each key's fate is fixed: i % 100 == 1 raises, 2 kills its
worker process (SIGKILL), 3 holds 1.2 GiB in a 1 GiB worker until it is stopped.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import time

import pytest

from sdt_core.output.results import LOG

from .conftest import REPO, SDT

SYSTEMS = int(os.environ.get("SDT_CHAOS_SYSTEMS", "2000"))  # fewer, to try it quickly

ANALYSIS = """
import os
import signal
import time

import numpy as np


def fate(frame):
    i = int(frame.iloc[:, 0].max()) - 1
    if i % 100 == 1:
        raise ValueError(f"system {i} is bad")
    if i % 100 == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    if i % 100 == 3:
        held = np.ones(int(1.2 * 2**30) // 8)  # more than the worker's 1 GiB
        time.sleep(600)
    return {"i": i}
"""


@pytest.mark.timeout(1500)
def test_raising_killing_and_memory_hungry_keys_are_each_recorded_once(tmp_path):
    (tmp_path / "chaos.py").write_text(ANALYSIS)
    command = [str(SDT), "run", "--data", "tests.priced:Numbered", "--data-option", f"systems={SYSTEMS}"]
    command += ["--analysis", "chaos:fate", "--out", "out", "--no-report", "--workers", "2", "--threads", "1"]
    command += ["--memory", "1", "--set", "dashboard_address=127.0.0.1:0"]
    env = {"DASK_SDT__PAUSE_TIMEOUT": "3"}  # a worker paused for memory for 3 s: its key fails
    env["PYTHONPATH"] = str(REPO)  # the run and its workers import the data plug from tests/priced.py
    start = time.monotonic()
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1400, env=os.environ | env)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "out" / LOG).read_text().splitlines()]
    keys = [row["key"][0] for row in rows]
    assert len(keys) == len(set(keys)) == SYSTEMS  # each key once
    outcome = collections.Counter()
    for row in rows:
        i = int(row["key"][0].split("-")[1])
        expected = {1: ("error", "analysis"), 2: ("error", "worker"), 3: ("error", "memory")}.get(i % 100, ("ok", None))
        assert (row["status"], row["stage"]) == expected, row
        outcome[row["stage"] or "ok"] += 1
    assert outcome == {
        "ok": SYSTEMS * 97 // 100,
        "analysis": SYSTEMS // 100,
        "worker": SYSTEMS // 100,
        "memory": SYSTEMS // 100,
    }
    assert f"{SYSTEMS} keys: {SYSTEMS * 97 // 100} ok, {SYSTEMS * 3 // 100} failed" in result.stderr
    print(f"chaos: {SYSTEMS} keys in {seconds:.0f} s")
