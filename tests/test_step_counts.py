"""The time axis's step count by numpy: the Counter SDT builds, key for key, in the same order."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sdt_core import acceleration
from sdt_core.acceleration import key_mode
from sdt_core.acceleration.step_counts import counted_steps
from sdt_core.acceleration.swap import NOT_APPLICABLE
from sdt_core.dataplugs.frames import power_frame
from sdt_core.dataplugs.sample import SampleData
from tests.solver_handovers import pipeline_run_through

NAME = "time-axis-step-count"
SUB = next(s for s in acceleration.SUBSTITUTIONS if s.name == NAME)
SYSTEMS = [("TAEFC1044741", []), ("ZT162185000441C1203", []), ("synthetic-000", [365]), ("synthetic-001", [120])]


def same_counter(fast, exact) -> bool:
    """The same Counter: the same keys (and their types) in the same order, the same counts (and types)."""
    return (
        type(fast) is type(exact)
        and [(type(k), k, type(v), v) for k, v in fast.items()] == [(type(k), k, type(v), v) for k, v in exact.items()]
        and fast.most_common() == exact.most_common()
    )


@pytest.mark.parametrize(("key", "lengths"), SYSTEMS)
def test_the_pipelines_step_count_is_counters_own(key, lengths):
    from solardatatools import time_axis_manipulation as tam

    frame = power_frame(SampleData(systems=2, lengths=lengths).get_data((key,)))
    calls = []

    def record(*args, **kwargs):
        calls.append((tuple(a.copy() for a in args), kwargs))  # a pandas Index of int64
        return Counter(*args, **kwargs)

    pipeline_run_through(frame, tam, "Counter", record)
    assert len(calls) == 1
    acceleration.install((SUB,))
    results = {}
    for fast in (False, True):
        with key_mode(fast, (SUB,)) as mode:
            results[fast] = tam.Counter(*calls[0][0], **calls[0][1])
        assert mode.used == ({NAME} if fast else set())
    assert same_counter(results[True], results[False]) and same_counter(results[False], Counter(*calls[0][0]))


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.int64, st.integers(0, 60), elements=st.integers(-3, 4).map(lambda v: 10 * v)))
def test_generated_steps_are_counted_as_counter_counts_them(steps):
    steps = pd.Index(steps)
    assert same_counter(counted_steps(Counter, steps), Counter(steps))


def test_other_calls_run_counters_own():
    def original(*args, **kwargs):
        raise AssertionError("the replacement declines; the dispatcher runs Counter")

    for args, kwargs in (
        ((np.arange(4),), {}),
        ((pd.Index(np.arange(4.0)),), {}),
        ((pd.Index(np.arange(4, dtype=np.int32)),), {}),
        ((pd.Series(np.arange(4)),), {}),
        (([1, 1, 2],), {}),
        ((), {"a": 1}),
        ((pd.Index(np.arange(4)), pd.Index(np.arange(4))), {}),
    ):
        assert counted_steps(original, *args, **kwargs) is NOT_APPLICABLE, (args, kwargs)
