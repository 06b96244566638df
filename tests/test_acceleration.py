"""SDT's fast path: each substitution gives SDT's own results, is recorded, and can be turned off.

The proof of the whole pipeline runs fast and exact side by side on real LocalClusters
(a subset of the proof set here; `bench/` runs all of it). The mechanism tests use a small
module of the test's own as the swapped target, on an in-process cluster where they need one.
"""

from __future__ import annotations

import json
import textwrap
import uuid

import numpy as np
import pandas as pd
import pytest

from sdt_core import acceleration, run
from sdt_core.acceleration import Substitution, key_mode
from sdt_core.acceleration.equivalence import compare_runs, differences
from sdt_core.dataplugs.sample import SampleData, synthetic_system
from sdt_core.job.task import process_key
from sdt_core.output.results import LOG

SMALL = {"workers": 2, "threads": 1, "memory": 8, "dashboard_address": "127.0.0.1:0"}  # exact SDT peaks at ~6 GB
THREADS = {"workers": 1, "threads": 2, "processes": False, "dashboard_address": "127.0.0.1:0"}
VERSION = acceleration.sdt_version()


def rows(out) -> list[dict]:
    return [json.loads(line) for line in (out / LOG).read_text().splitlines()]


def by_name(name: str) -> Substitution:
    return next(s for s in acceleration.SUBSTITUTIONS if s.name == name)


# The substitutions one by one, in this process, against SDT's original on real inputs.


def test_the_psd_certificate_gives_the_osd_solution_value_for_value():
    from solardatatools.signal_decompositions import l2_l1d1_l2d2p365

    signal = synthetic_system(3, days=20).iloc[::12, 0].to_numpy()  # hourly: a small OSD problem
    results = {}
    for fast in (True, False):
        with key_mode(fast, (by_name("psd-certified-quad-form"),)) as mode:
            results[fast] = l2_l1d1_l2d2p365(signal, w1=50, solver="CLARABEL", return_all=True)
        assert mode.used == ({"psd-certified-quad-form"} if fast else set())
    for fast_part, exact_part in zip(results[True][:-1], results[False][:-1], strict=True):
        assert np.array_equal(fast_part, exact_part, equal_nan=True)


def test_the_clipping_fit_is_sdts_value_for_value_without_its_dense_copy():
    from solardatatools.algorithms.clipping import ClippingDetection

    from sdt_core.job.memory import peak_memory

    rng = np.random.default_rng(11)
    daily_max = np.concatenate([rng.beta(5, 2, 300), np.full(60, 0.8)])  # 60 clipped days
    results, peaks = {}, {}
    for fast in (True, False):
        with peak_memory() as peak, key_mode(fast, (by_name("psd-certified-quad-form"),)) as mode:
            detection = ClippingDetection()
            detection.pointmass_detection(daily_max, solver="CLARABEL")
        results[fast], peaks[fast] = detection, peak.mb
        assert mode.used == ({"psd-certified-quad-form"} if fast else set())
    assert np.array_equal(results[True].y_hat, results[False].y_hat)
    assert np.array_equal(results[True].point_mass_locations, results[False].point_mass_locations)
    assert len(results[True].point_mass_locations) > 0
    assert peaks[True] < 1000 and peaks[False] > 3000, peaks  # the dense copy: 25,000^2 values


def test_cvxpy_itself_is_untouched_by_the_psd_certificate():
    import cvxpy
    import gfosd.problem

    with key_mode(True, (by_name("psd-certified-quad-form"),)):
        pass
    assert cvxpy.quad_form.__module__.startswith("cvxpy")
    assert gfosd.problem.cvx.Variable is cvxpy.Variable and gfosd.problem.cvx.quad_form is not cvxpy.quad_form
    x = cvxpy.Variable(2)
    with key_mode(True, (by_name("psd-certified-quad-form"),)) as mode:
        gfosd.problem.cvx.quad_form(x, np.array([[2.0, 1.0], [1.0, 2.0]]))  # dense: not certified here
    assert mode.used == set()


def loss_problem_inputs():
    from solardatatools.algorithms.loss_factor_analysis import LossFactorAnalysis

    rng = np.random.default_rng(7)
    days = 800
    energy = 30 * (1 + 0.2 * np.sin(np.arange(days) * 2 * np.pi / 365)) * rng.uniform(0.6, 1.0, days)
    energy *= 1 - 0.01 * np.arange(days) / 365
    return LossFactorAnalysis, energy


def test_the_loss_factor_substitutions_give_sdts_values_bit_for_bit():
    from solardatatools.algorithms import loss_factor_analysis as lfa

    LossFactorAnalysis, energy = loss_problem_inputs()
    names = ("psd-certified-quad-form", "sawtooth-dictionary-cache", "shapley-memo", "shapley-paths-cache")
    results = {}
    for fast in (True, False):
        with key_mode(fast, tuple(map(by_name, names))) as mode:
            analysis = LossFactorAnalysis(energy, num_harmonics=4, deg_type="linear", include_soiling=True)
            analysis.estimate_losses()
            again = lfa.make_sawtooth_dictionary(len(energy))
            again[0, 0] = 99.0  # a caller changing its copy changes nobody else's
            results[fast] = (
                analysis.problem.decomposition.copy(),
                analysis.report(),
                lfa.make_sawtooth_dictionary(len(energy)).toarray(),
                lfa.enumerate_paths(5, dtype=bool),
            )
        assert mode.used == (set(names) if fast else set())
    fast, exact = results[True], results[False]
    assert np.array_equal(fast[0], exact[0])
    assert fast[1] == exact[1]
    assert np.array_equal(fast[2], exact[2]) and np.array_equal(fast[3], exact[3])


def test_the_repeated_fit_memos_give_sdts_pipeline_bit_for_bit():
    from solardatatools import DataHandler

    from sdt_core.dataplugs.frames import power_frame

    frame = power_frame(SampleData(systems=1, days=365, real=False).get_data(("synthetic-000",)))
    memos = ("capacity-fit-memo", "sunrise-fit-memo")
    results = {}
    for memo in (True, False):
        names = ("psd-certified-quad-form", *(memos if memo else ()))  # the clipping fit affordable in both
        with key_mode(True, tuple(map(by_name, names))) as mode:
            handler = DataHandler(frame)
            handler.run_pipeline(fix_shifts=True, verbose=False)
        results[memo] = (
            handler.report(return_values=True, verbose=False),
            handler.capacity_analysis.s1,
            handler.capacity_analysis.labels,
            handler.daytime_analysis.sunrise_estimates,
            handler.daytime_analysis.sunset_estimates,
            np.random.get_state()[1],  # the fits draw no random numbers: later draws are unchanged
        )
        assert mode.used == set(names)  # this system repeats both fits
    fast, exact = results[True], results[False]
    assert fast[0] == exact[0]
    for fast_part, exact_part in zip(fast[1:], exact[1:], strict=True):
        assert np.array_equal(fast_part, exact_part)


def test_a_repeated_fit_is_answered_with_a_copy_and_other_inputs_run_sdt():
    from sdt_core.acceleration.repeated_fits import memoized_fit
    from sdt_core.acceleration.swap import NOT_APPLICABLE

    calls = []

    def fit(signal, use_ixs=None, w2=1.0):
        calls.append(w2)
        return signal * w2, np.cumsum(signal)

    signal = np.arange(5.0)
    first = memoized_fit(fit, signal, use_ixs=signal > 1, w2=2.0)
    first[0][0] = 99.0  # a caller changing its result changes nobody else's
    again = memoized_fit(fit, signal.copy(), use_ixs=signal > 1, w2=2.0)
    assert calls == [2.0] and np.array_equal(again[0], signal * 2.0)
    memoized_fit(fit, signal, use_ixs=signal > 2, w2=2.0)
    memoized_fit(fit, signal.astype(np.float32), use_ixs=signal > 1, w2=2.0)
    assert calls == [2.0, 2.0, 2.0]
    assert memoized_fit(fit, signal, use_ixs=signal > 1, w2=object()) is NOT_APPLICABLE


# The mechanism: dispatch by key mode, fallback, version guard.


TARGET = """
calls = []
def compute(x):
    calls.append(x)
    return x + 1
def faster(original, x):
    return x + 1
def raises(original, x):
    raise FloatingPointError("the replacement broke")
def declines(original, x):
    from sdt_core.acceleration.swap import NOT_APPLICABLE
    return NOT_APPLICABLE
def analysis(frame):
    import importlib
    return {"value": importlib.import_module(__name__).compute(2)}
"""


@pytest.fixture
def target(tmp_path, monkeypatch):
    """`substitution(replacement)`: a new module of this test's own, `compute(x) = x + 1`,
    and a substitution of its `compute` by its function `replacement`."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def substitution(replacement: str, proven_on: tuple[str, ...] = (VERSION,)) -> tuple[Substitution, str]:
        name = f"fastpath_target_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(TARGET)
        sub = Substitution(f"{name}-{replacement}", f"{name}:compute", f"{name}:{replacement}", proven_on, "test")
        return sub, name

    return substitution


def test_the_replacement_runs_only_inside_a_fast_key(target):
    import importlib

    faster, name = target("faster")
    with key_mode(True, (faster,)) as mode:
        module = importlib.import_module(name)  # swapped when imported
        assert module.compute(1) == 2 and module.calls == []
    assert mode.used == {faster.name}
    assert module.compute(1) == 2 and module.calls == [1]  # outside a key: the original
    with key_mode(False, (faster,)) as exact:
        assert module.compute(5) == 6 and module.calls == [1, 5]
    assert exact.label == "exact" and exact.used == set()

    declines, name = target("declines")
    module = importlib.import_module(name)  # imported first, swapped when the key starts
    with key_mode(True, (declines,)) as declined:
        assert module.compute(7) == 8 and module.calls == [7]
    assert declined.used == set()
    with pytest.raises(ValueError, match=f"{name}:compute is already replaced by {declines.name}"):
        key_mode(True, (faster.__class__(**vars(faster) | {"target": declines.target}),)).__enter__()


def test_a_method_of_a_class_its_module_defines_is_swapped_on_the_class(tmp_path, monkeypatch):
    import importlib

    name = f"fastpath_class_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            class Model:
                def __init__(self, x):
                    self.x = x
                def compute(self, y):
                    return self.x + y
            def faster(original, model, y):
                return ("fast", original(model, y))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sub = Substitution(f"{name}-method", f"{name}:Model.compute", f"{name}:faster", (VERSION,), "test")
    with key_mode(True, (sub,)) as mode:
        module = importlib.import_module(name)
        model = module.Model(1)  # still the class: it makes its objects
        assert type(model) is module.Model and model.compute(2) == ("fast", 3)
    assert mode.used == {sub.name}
    assert model.compute(2) == 3  # outside a key: the original


def test_a_replacement_that_raises_reruns_the_key_exactly_and_its_row_says_so(target):
    broken, name = target("raises")
    data = SampleData(systems=1, days=2, real=False)
    analysis = __import__("importlib").import_module(name).analysis
    row = process_key(("synthetic-000",), data, analysis, fast=(broken,))
    assert (row["status"], row["value"], row["sdt_mode"]) == ("ok", 3, "exact")
    assert row["sdt_fallback"] == f"{broken.name}: FloatingPointError: the replacement broke"


def test_a_substitution_not_proven_on_this_sdt_stays_off(target):
    unproven, name = target("raises", proven_on=("0.0.1",))
    analysis = __import__("importlib").import_module(name).analysis
    row = process_key(("synthetic-000",), SampleData(systems=1, days=2, real=False), analysis, fast=(unproven,))
    assert (row["status"], row["sdt_mode"], row["sdt_substitutions"]) == ("ok", "exact", "")
    assert "sdt_fallback" not in row
    assert acceleration.proven("0.0.1") == ()
    assert acceleration.unproven_reason("0.0.1") == (
        "fast path off: solar-data-tools 0.0.1 is not a version it was proven on (2.1.5); SDT runs exactly as released"
    )
    assert acceleration.unproven_reason(VERSION) is None


def test_on_an_unproven_sdt_the_run_is_exact_and_says_so_in_one_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(acceleration, "sdt_version", lambda: "9.9.9")
    summary = run(
        "sample://?systems=2&days=2&real=false",
        settings=THREADS,
        out=tmp_path / "out",
        analysis="sdt_core.analysis:data_inventory",
        report=False,
    )
    assert summary.mode == "exact"
    recorded = json.loads((tmp_path / "out" / "run.json").read_text())
    assert (recorded["sdt_mode"], recorded["sdt"]["substitutions"]) == ("exact", [])
    assert {row["sdt_mode"] for row in rows(tmp_path / "out")} == {"exact"}
    warnings = [r.getMessage() for r in caplog.records if "fast path off" in r.getMessage()]
    assert warnings == [
        "sdt run: fast path off: solar-data-tools 9.9.9 is not a version it was proven on (2.1.5); "
        "SDT runs exactly as released"
    ]


def test_the_equivalence_rule():
    ok = {"key": ["a"], "status": "ok", "capacity": 5.0, "n": 3, "flag": True, "name": "x", "total_s": 1.0}
    assert differences(ok, ok | {"capacity": 5.0 * (1 + 5e-7), "total_s": 9.0, "worker": "w"}) == []
    assert differences(ok, ok | {"capacity": 5.0 * (1 + 2e-6)}) == [f"capacity: fast 5.0, exact {5.0 * (1 + 2e-6)!r}"]
    assert differences(ok, ok | {"n": 3.0}) == ["n: fast 3, exact 3.0"]
    assert differences(ok, ok | {"flag": False}) == ["flag: fast True, exact False"]
    assert differences(ok | {"extra": 1}, ok) == ["extra: only in the fast row"]
    error = {"key": ["a"], "status": "error", "stage": "analysis", "error": "ValueError: bad"}
    assert differences(error, error | {"error": "ValueError: other words"}) == []
    assert differences(error, error | {"error": "KeyError: bad"}) == ["error type: fast 'ValueError', exact 'KeyError'"]
    assert differences(error, ok) == [
        "status: fast 'error', exact 'ok'",
        "stage: fast 'analysis', exact None",
        "error type: fast 'ValueError', exact ''",
    ]
    assert compare_runs([ok], []) == {"['a']": ["only in the fast run"]}


# The whole pipeline, fast against exact, on real LocalClusters.


@pytest.fixture(scope="module")
def proof_runs(tmp_path_factory):
    """SDT's two real sample files and three synthetic systems (one too short), in both modes."""
    data = SampleData(systems=3, lengths=[1, 120, 400])
    outs = {}
    for mode in ("fast", "exact"):
        outs[mode] = tmp_path_factory.mktemp(mode) / "out"
        run(data, settings=SMALL, out=outs[mode], exact_sdt=mode == "exact", report=False)
    return outs


def test_fast_and_exact_pipelines_agree_on_the_sample_set(proof_runs):
    fast, exact = rows(proof_runs["fast"]), rows(proof_runs["exact"])
    assert len(fast) == len(exact) == 5
    assert compare_runs(fast, exact) == {}
    statuses = {row["key"][0]: row["status"] for row in fast}
    assert statuses == {
        "TAEFC1044741": "ok",
        "ZT162185000441C1203": "ok",
        "synthetic-000": "error",
        "synthetic-001": "ok",
        "synthetic-002": "ok",
    }


def test_each_row_and_the_run_record_how_they_were_computed(proof_runs):
    for mode in ("fast", "exact"):
        recorded = json.loads((proof_runs[mode] / "run.json").read_text())
        assert recorded["sdt_mode"] == mode and recorded["sdt"]["solar-data-tools"] == VERSION
        names = [s["name"] for s in recorded["sdt"]["substitutions"]]
        assert names == ([s.name for s in acceleration.SUBSTITUTIONS] if mode == "fast" else [])
        for row in rows(proof_runs[mode]):
            assert row["sdt_mode"] == mode and row["peak_memory_mb"] > 100
            used = set(filter(None, row["sdt_substitutions"].split(",")))
            if mode == "exact" or row["status"] == "error":
                assert used == set()
            else:
                assert "psd-certified-quad-form" in used
    peak = {mode: max(r["peak_memory_mb"] for r in rows(proof_runs[mode])) for mode in proof_runs}
    assert peak["fast"] < 1500 < 4000 < peak["exact"], peak  # the clipping check's ~5 GB is gone


def test_fast_and_exact_loss_factor_analyses_agree(tmp_path):
    data = SampleData(systems=1, lengths=[800], real=False)  # converges in 25 bootstrap samples
    results = {}
    for mode in ("fast", "exact"):
        out = tmp_path / mode
        run(data, settings=SMALL, out=out, exact_sdt=mode == "exact", loss_analysis=True, report=False)
        results[mode] = rows(out)
    assert compare_runs(results["fast"], results["exact"]) == {}
    for row in results["fast"]:
        assert row["status"] == "ok", row["error"]
        assert isinstance(row["degradation rate [%/yr]"], float)
        assert row["sdt_mode"] == "fast" and "sdt_fallback" not in row
        assert {"sawtooth-dictionary-cache", "shapley-memo", "loss-problem-refill"} <= set(
            row["sdt_substitutions"].split(",")
        )


def test_the_cli_runs_fast_by_default_and_exact_on_request(sdt, tmp_path):
    args = ("sample://?systems=1&days=2&real=false", "--analysis", "sdt_core.analysis:data_inventory", "--no-report")
    small = ("--workers", "1", "--threads", "1", "--set", "dashboard_address=127.0.0.1:0")
    assert sdt("run", *args, *small, "--out", "fast", cwd=tmp_path).returncode == 0
    assert sdt("run", *args, *small, "--out", "exact", "--exact-sdt", cwd=tmp_path).returncode == 0
    for mode in ("fast", "exact"):
        assert json.loads((tmp_path / mode / "run.json").read_text())["sdt_mode"] == mode
    refused = sdt("run", *args, *small, "--out", "fast", "--resume", "--exact-sdt", cwd=tmp_path)
    assert (refused.returncode, refused.stderr) == (
        2,
        "sdt: error: --resume: fast holds results of SDT's fast mode, this run is exact: "
        "run without --exact-sdt to go on with it, or choose another --out\n",
    )
    from_config = sdt(
        "run", *args, *small, "--out", "exact", "--resume", cwd=tmp_path, env_extra={"DASK_SDT__EXACT_SDT": "true"}
    )
    assert from_config.returncode == 0, from_config.stderr


def test_a_row_records_the_peak_memory_of_its_key(tmp_path, monkeypatch):
    name = f"holds_memory_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            def hold(frame):
                block = np.ones(int(frame.iloc[0, 0]) * 2**20 // 8)  # that many MiB, touched
                return {"held_mb": block.nbytes / 2**20}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the worker processes import it too
    folder = tmp_path / "data"
    folder.mkdir()
    for held in (50, 600):
        times = pd.date_range("2024-01-01", periods=3 * 288, freq="5min")
        pd.DataFrame({"timestamp": times, "p": float(held)}).to_csv(folder / f"hold-{held}.csv", index=False)
    run(str(folder), settings=SMALL | {"workers": 1}, out=tmp_path / "out", analysis=f"{name}:hold", report=False)
    peak = {row["key"][0]: row["peak_memory_mb"] for row in rows(tmp_path / "out")}
    assert peak["hold-600"] - peak["hold-50"] > 500, peak
