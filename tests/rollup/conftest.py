"""Fixtures for the rollup tests: a real SQLite store in tmp_path with a SeriesStore on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from telmon.rollup.store import SeriesStore
from telmon.store.sqlite import SQLiteStore

# A fixed "now" on a UTC midnight, so bucket edges are easy to reason about.
NOW = 1_700_006_400.0
assert NOW % 86400 == 0


@pytest.fixture
def sstore(tmp_path: Path) -> Iterator[SeriesStore]:
    st = SQLiteStore(tmp_path / "telmon.db")
    yield SeriesStore(st)
    st.close()


def tier_state(ss: SeriesStore, name: str, steps: tuple[int, ...] = (60, 3600, 86400)) -> dict[int, dict[str, np.ndarray]]:
    """Every stored bucket of a series, per tier, as plain arrays (for exact comparisons)."""
    out = {}
    for step in steps:
        arr = ss.buckets(name, step)
        out[step] = {
            "start": arr.start, "count": arr.count, "sum": arr.sum, "min": arr.min, "max": arr.max,
            "first": arr.first, "last": arr.last, "inexact": arr.inexact,
            "sk_owner": arr.sketch.owner, "sk_sign": arr.sketch.sign, "sk_key": arr.sketch.key,
            "sk_count": arr.sketch.count,
        }
    return out


def assert_same_state(a: dict[int, dict[str, np.ndarray]], b: dict[int, dict[str, np.ndarray]]) -> None:
    """Bucket by bucket: all fields equal, sums within float rounding."""
    assert a.keys() == b.keys()
    for step in a:
        for field in a[step]:
            x, y = a[step][field], b[step][field]
            assert x.shape == y.shape, (step, field, x.shape, y.shape)
            if field == "sum":
                np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-9, err_msg=f"step {step} {field}")
            else:
                np.testing.assert_array_equal(x, y, err_msg=f"step {step} {field}")
