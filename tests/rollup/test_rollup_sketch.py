"""Quantile sketch maths, no database: accuracy, merge laws, serialisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telmon.rollup import sketch as sk
from telmon.rollup.sketch import QuantileSketch

# finite, no subnormals (those count as zero: documented), magnitudes a telemetry value can have
VALUES = st.lists(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False, allow_subnormal=False),
    min_size=1, max_size=300,
)
QS = [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0]
ALPHAS = st.sampled_from([0.01, 0.02, 0.005, 0.05])


def within(estimate: float, exact: float, alpha: float) -> bool:
    # the bound is |estimate - exact| <= alpha * |exact|; 1e-9 leaves room for log/exp rounding
    return abs(estimate - exact) <= alpha * abs(exact) * (1 + 1e-9) + 1e-300


@settings(max_examples=150, deadline=None)
@given(VALUES, ALPHAS)
def test_quantiles_within_relative_error_of_lower_rank_rule(values: list[float], alpha: float) -> None:
    x = np.array(values)
    s = QuantileSketch.from_values(x, alpha)
    assert s.count == len(x)
    for q in QS:
        exact = float(np.quantile(x, q, method="lower"))
        assert within(s.quantile(q), exact, alpha), (q, s.quantile(q), exact)


@settings(max_examples=100, deadline=None)
@given(VALUES, VALUES, VALUES)
def test_merge_is_associative_and_commutative_and_equals_sketch_of_union(a: list[float], b: list[float], c: list[float]) -> None:
    sa, sb, sc = (QuantileSketch.from_values(v) for v in (a, b, c))
    left = QuantileSketch.merged([QuantileSketch.merged([sa, sb]), sc])
    right = QuantileSketch.merged([sa, QuantileSketch.merged([sb, sc])])
    swapped = QuantileSketch.merged([sc, sb, sa])
    union = QuantileSketch.from_values(a + b + c)
    assert left == right == swapped == union


@settings(max_examples=100, deadline=None)
@given(VALUES, ALPHAS)
def test_bytes_round_trip(values: list[float], alpha: float) -> None:
    s = QuantileSketch.from_values(values, alpha)
    data = s.to_bytes()
    assert QuantileSketch.from_bytes(data) == s
    # compact: a couple of bytes per non-empty bin plus a small header
    assert len(data) <= 8 + 2 * len(s.entries) * 5


def test_zeros_negatives_and_subnormals() -> None:
    x = np.array([-5.0, -1.0, 0.0, 0.0, 5e-324, 1.0, 5.0])
    s = QuantileSketch.from_values(x)
    assert s.quantile(0) == pytest.approx(-5.0, rel=0.01)
    assert s.quantile(0.5) == 0.0  # the subnormal counts as zero
    assert s.quantile(1) == pytest.approx(5.0, rel=0.01)


def test_rejects_nan_and_bad_alpha() -> None:
    with pytest.raises(ValueError):
        QuantileSketch.from_values([1.0, float("nan")])
    with pytest.raises(ValueError):
        QuantileSketch(alpha=0.9)
    with pytest.raises(ValueError):
        QuantileSketch.merged([QuantileSketch(0.01), QuantileSketch(0.02)])
    with pytest.raises(ValueError):
        QuantileSketch.from_bytes(b"\x80")


@settings(max_examples=60, deadline=None)
@given(VALUES)
def test_coarser_alpha_conversion_compounds_the_bounds(values: list[float]) -> None:
    """Re-binning a 1% sketch to 2% keeps every quantile within (1.01)(1.02) - 1."""
    x = np.array(values)
    s = QuantileSketch.from_values(x, 0.01).converted(0.02)
    assert s.count == len(x)
    bound = 1.01 * 1.02 - 1
    for q in QS:
        assert within(s.quantile(q), float(np.quantile(x, q, method="lower")), bound)


def test_many_sketches_at_once_match_one_at_a_time() -> None:
    rng = np.random.default_rng(7)
    owner = np.sort(rng.integers(0, 50, 5000))
    values = rng.lognormal(0, 2, 5000) * rng.choice([-1, 1], 5000)
    entries = sk.from_values(owner, values)
    got = sk.quantiles(entries, 50, [0.5, 0.99], 0.01)
    for o in range(50):
        mine = values[owner == o]
        if len(mine):
            np.testing.assert_array_equal(got[o], QuantileSketch.from_values(mine).quantiles([0.5, 0.99]))
        else:
            assert np.isnan(got[o]).all()
