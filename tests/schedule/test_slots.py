"""Slot maths as pure functions: the LRGS codes, the ledger against a from-scratch
classification in any arrival order, span counts, and schedule inference."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telmon.schedule.slots import (
    DAY,
    MISSING,
    ON_TIME,
    OUTSIDE,
    PARTLY_OUTSIDE,
    MemoryMarks,
    Schedule,
    SlotState,
    classify,
    classify_all,
    codes_from_ledger,
    infer_schedule,
    message_duration,
    next_expected,
    record,
    span_counts,
    trailing_run,
)

OKVI4 = Schedule(3600, 290, 10)  # AssignedTime 00:04:50, TransmitWindow 00:00:10, TransmitInterval 01:00


def test_lrgs_codes_around_a_window():
    t0 = 1282500000 - 1282500000 % DAY  # a midnight
    start = t0 + 290
    assert classify(OKVI4, start + 4, 2.4) == (OKVI4.index(start), ON_TIME)
    assert classify(OKVI4, start + 9, 2.4)[1] == PARTLY_OUTSIDE  # starts inside, ends late
    assert classify(OKVI4, start - 1, 2.4)[1] == PARTLY_OUTSIDE  # starts early, ends inside
    assert classify(OKVI4, start - 5, 2.4)[1] == OUTSIDE  # over before the window opens
    assert classify(OKVI4, start + 11, 0)[1] == OUTSIDE  # starts after it closed
    # nearest window START: 30 min after is the next hour's slot, 29 min after is this one
    n = OKVI4.index(start)
    assert classify(OKVI4, start + 29 * 60)[0] == n
    assert classify(OKVI4, start + 31 * 60)[0] == n + 1


def test_message_duration_counts_the_header_at_300_baud_by_default():
    assert message_duration(91, None) == pytest.approx(91 * 8 / 300)
    assert message_duration(91, 100) == pytest.approx(7.28)
    assert message_duration(0, 300) == 0.0


def test_schedule_refuses_impossible_values_and_normalises_the_phase():
    with pytest.raises(ValueError):
        Schedule(0, 0, 0)
    with pytest.raises(ValueError):
        Schedule(60, 0, 60)
    # first 02:04:50 at 1 h is the same grid as 00:04:50
    assert Schedule(3600, 7490, 10).phase == 290
    s = Schedule(3600, 290, 10)
    assert s.last_due(s.end(5) + 60, 60) == 5 and s.last_due(s.end(5) + 59, 60) == 4
    assert next_expected(s, s.end(5)) == 6 and next_expected(s, s.end(5) - 1) == 5


schedules = st.builds(
    lambda iv, first_frac, win_frac, baud: Schedule(iv, round(first_frac * 86400), round(win_frac * iv), baud),
    st.sampled_from([60, 300, 900, 3600, 7200, 10800, 21600, 5000]),
    st.floats(0, 0.999),
    st.floats(0, 0.3),
    st.sampled_from([None, 100, 300, 1200]),
)


def _reports(schedule: Schedule, draw_offsets: list[tuple[int, float, int]], base: float) -> list[tuple[float, float]]:
    out = []
    for slot, frac, length in draw_offsets:
        t = schedule.start(schedule.nearest(base) + slot) + frac * schedule.interval
        out.append((t, message_duration(length, schedule.baud)))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schedule=schedules,
    offsets=st.lists(
        st.tuples(st.integers(0, 60), st.one_of(st.floats(-0.02, 0.02), st.floats(-0.49, 0.49)),
                  st.sampled_from([0, 40, 91, 300])),
        min_size=1, max_size=60,
    ),
    seed=st.integers(0, 2**32 - 1),
    now_after=st.integers(-5, 30),
)
def test_ledger_matches_classification_in_any_order(schedule, offsets, seed, now_after):
    base = 1_700_000_000.0
    reports = _reports(schedule, offsets, base)
    now = schedule.end(schedule.nearest(base) + 60 + now_after) + 60
    random.Random(seed).shuffle(reports)
    state, marks = SlotState(), MemoryMarks(schedule)
    for t, d in reports:
        n, code = classify(schedule, t, d)
        record(state, marks, n, code, t)
    want = classify_all(schedule, reports, now, 60)
    got = codes_from_ledger(schedule, state, marks, now, 60)
    assert got == want
    # every accounted slot is exactly one of on time / late / missing, and the counters agree
    assert set(got.values()) <= {ON_TIME, PARTLY_OUTSIDE, OUTSIDE, MISSING}
    stored_missing = sum(n1 - n0 + 1 for n0, n1 in marks.all_runs())
    assert stored_missing == state.missing and len(marks.late) == state.late
    # runs never cross midnight, never overlap
    runs = marks.all_runs()
    for (a0, a1), (b0, _) in zip(runs, runs[1:]):
        assert a1 < b0
    for n0, n1 in runs:
        assert schedule.day(n0) == schedule.day(n1)
    # span counts over a random span agree with the per-slot codes
    rng = random.Random(seed + 1)
    a = schedule.start(min(got) - 2) + rng.random() * schedule.interval * 10
    b = a + rng.random() * schedule.interval * 70
    c = span_counts(schedule, state, runs, list(marks.late), a, b, now, 60)
    in_span = [code for n, code in got.items() if a <= schedule.start(n) < b]
    assert c.expected == len(in_span)
    assert c.missing == in_span.count(MISSING)
    assert c.late == in_span.count(PARTLY_OUTSIDE) + in_span.count(OUTSIDE)
    assert c.on_time == in_span.count(ON_TIME)
    assert c.expected == c.on_time + c.late + c.missing


def test_trailing_run_grows_with_now_not_with_writes():
    s, state, marks = OKVI4, SlotState(), MemoryMarks(OKVI4)
    t = s.start(100) + 3
    record(state, marks, *classify(s, t), t)
    assert trailing_run(s, state, s.end(100) + 3600, 60) is None  # slot 101 ends at end(100)+3600, +60 grace
    assert trailing_run(s, state, s.end(101) + 60, 60) == (101, 101)
    assert trailing_run(s, state, s.end(105) + 61, 60) == (101, 105)
    assert marks.all_runs() == []


def test_a_silent_day_is_stored_as_one_run_per_day():
    s = Schedule(900, 0, 0)
    state, marks = SlotState(), MemoryMarks(s)
    n0 = s.first_from(1_700_006_400.0)  # a midnight
    record(state, marks, n0, ON_TIME, s.start(n0))
    record(state, marks, n0 + 3 * 96, ON_TIME, s.start(n0 + 3 * 96))
    assert len(marks.all_runs()) == 3 and state.missing == 3 * 96 - 1
    record(state, marks, n0 + 100, ON_TIME, s.start(n0 + 100))  # a backfilled report splits a run
    assert len(marks.all_runs()) == 4 and state.missing == 3 * 96 - 2


def test_infer_hourly_goes_rhythm():
    base = 1_282_500_000 - 1_282_500_000 % 3600 + 294  # :04:54 each hour
    times = [base + i * 3600 + (i % 3) for i in range(40)]
    s = infer_schedule(times, 2.4)
    assert s is not None and s.interval == 3600 and s.source == "inferred"
    assert all(classify(s, t, 2.4)[1] == ON_TIME for t in times)
    # a few outages do not stretch the interval
    gappy = [t for i, t in enumerate(times) if i % 7 != 3]
    assert infer_schedule(gappy, 2.4).interval == 3600  # type: ignore[union-attr]


def test_infer_refuses_too_few_or_irregular_times():
    assert infer_schedule([0, 3600, 7200]) is None
    rng = random.Random(3)
    assert infer_schedule(sorted(rng.uniform(0, 1e6) for _ in range(50))) is None
