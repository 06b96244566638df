"""The benchmark suite runs whole: every figure it declares, in miniature (`bench/run.py --tiny`).

Not a measurement (1 worker, one 10-day system, one repeat): a change that breaks a variant
or a figure's arithmetic fails here. Its exact-SDT variants cost tens of seconds each (SDT as
released checks its clipping fit on a dense matrix), so the whole miniature takes minutes:
marked `bench`, deselected by default (`pytest -m bench tests/test_bench.py`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.bench
def test_every_figure_of_the_suite_runs_in_miniature(tmp_path):
    latest = {name: (BENCH / "results" / name).read_bytes() for name in ("latest.json", "latest.md")}
    result = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--tiny", "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["repeats"] == 1 and len(results["figures"]) >= 12  # every declared figure, none left out
    assert [name for name in results["figures"] if not results.get(name)] == []
    assert "| figure | value | target |" in (tmp_path / "latest.md").read_text()
    assert {name: (BENCH / "results" / name).read_bytes() for name in latest} == latest  # the real figures kept
