"""SDT's loss factor analysis options (`sdt run --loss-option KEY=VALUE`) reach SDT."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sdt_core import SdtError, acceleration, run
from sdt_core.acceleration import key_mode
from sdt_core.analysis import _loss_factor_analysis


def handler_after_its_pipeline(days: int = 400):
    """SDT's DataHandler holding what its pipeline leaves for the loss analysis: daily energy,
    capacity labels and outage flags of a system degrading 1 %/yr (its pipeline is not what is tested)."""
    from solardatatools import DataHandler

    rng = np.random.default_rng(7)
    energy = 30 * (1 + 0.2 * np.sin(np.arange(days) * 2 * np.pi / 365)) * rng.uniform(0.6, 1.0, days)
    energy *= 1 - 0.01 * np.arange(days) / 365
    handler = DataHandler.__new__(DataHandler)
    handler._ran_pipeline = True
    handler.daily_signals = SimpleNamespace(energy=energy)
    handler.capacity_analysis = SimpleNamespace(labels=np.zeros(days, dtype=int))
    handler.daily_flags = SimpleNamespace(no_errors=np.ones(days, dtype=bool))
    return handler


def test_loss_options_reach_run_loss_factor_analysis_and_estimate_degradation_rate():
    handler = handler_after_its_pipeline()
    # median_tol 0 never converges: SDT's default max_samples (500) would take 501 samples.
    options = {"max_samples": 20, "median_tol": 0.0, "num_harmonics": 2}
    with key_mode(True, acceleration.proven()):
        _loss_factor_analysis(handler, options)
    assert len(handler.loss_analysis.MC_results["samples"]) == 21  # SDT stops after max_samples + 1
    assert handler.loss_analysis.user_settings["num_harmonics"] == 2
    assert isinstance(handler.loss_analysis.report()["degradation rate [%/yr]"], float)


def test_loss_options_without_the_loss_analysis_are_refused_before_anything_starts(tmp_path):
    with pytest.raises(SdtError, match=r"^--loss-option applies to the loss factor analysis: add --loss-analysis$"):
        run("sample://?systems=1&days=2&real=false", out=tmp_path / "out", loss_options={"max_samples": 50})
    assert not (tmp_path / "out").exists()
