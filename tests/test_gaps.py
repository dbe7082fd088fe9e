from hypothesis import given
from hypothesis import strategies as st

from telmon import gaps


def test_find_gaps_counts_missing_entries():
    times = [0, 3600, 7200, 18000, 21600]  # 10800 and 14400 missing
    assert gaps.find_gaps(times, 3600) == [(7200, 18000, 2)]


def test_jitter_within_tolerance_is_not_a_gap():
    times = [0, 3600 + 30, 7200 - 20, 10800]
    assert gaps.find_gaps(times, 3600) == []


def test_infer_interval_is_the_median_spacing():
    times = [0, 900, 1800, 2700, 3600, 90000]  # one long outage does not stretch it
    assert gaps.infer_interval(times) == 900
    assert gaps.infer_interval([5.0]) is None


def test_trailing_gap():
    assert gaps.trailing_gap(0, 4 * 3600 + 10, 3600) == (0, 4 * 3600 + 10, 4)
    assert gaps.trailing_gap(0, 3600 * 1.2, 3600) is None
    assert gaps.trailing_gap(None, 100, 10) is None


@given(st.lists(st.integers(min_value=0, max_value=500), min_size=2, unique=True), st.integers(1, 20))
def test_every_spacing_is_either_a_gap_or_not(raw, step):
    times = sorted(t * 60 for t in raw)
    interval = step * 60
    found = gaps.find_gaps(times, interval)
    starts = {g[0] for g in found}
    for a, b in zip(times, times[1:]):
        assert (a in starts) == (b - a > interval * 1.5)
    for a, b, n in found:
        assert n >= 1 and n == max(1, round((b - a) / interval) - 1)
