"""Retention policies and tier choice: pure functions of the policy, the span and now."""

from __future__ import annotations

import pytest

from telmon.rollup.errors import BadPolicy
from telmon.rollup.tiers import DEFAULT_POLICY, block_buckets, choose_tier, format_span, parse_policy, resolve

NOW = 1_700_006_400.0
DAY = 86400


def test_default_policy_is_the_issue_s() -> None:
    p = DEFAULT_POLICY
    assert p.raw_retention == 48 * 3600
    assert [(t.step, t.retention) for t in p.tiers] == [(60, 14 * DAY), (3600, 2 * 365 * DAY), (DAY, 10 * 365 * DAY)]
    assert all(t.alpha == 0.01 for t in p.tiers)
    assert parse_policy(p.spec) == p


def test_policy_text_and_its_errors() -> None:
    p = parse_policy("raw:6h, 10s:1d, 5m:30d@0.02")
    assert p.spec == "raw:6h,10s:1d,5m:30d@0.02"
    assert p.tier(300).alpha == 0.02
    for bad, says in [("1m:14d", "raw"), ("raw:1h", "tier"), ("raw:1h,7m:1d,1h:2d", "multiple"),
                      ("raw:1h,1m:30s", "less than one bucket"), ("raw:1h,1m:1d@0.9", "accuracy"),
                      ("raw:1h,1.5s:1d", "whole number"), ("raw:xx", "retention")]:
        with pytest.raises(BadPolicy, match=says):
            parse_policy(bad)
    assert format_span(172800) == "2d" and format_span(5400) == "90m" and format_span(1.5) == "1.5s"


def test_rules_first_match_wins() -> None:
    fast = parse_policy("raw:1h,10s:1d,1m:7d")
    rules = [("host*.cpu", fast), ("*", DEFAULT_POLICY)]
    assert resolve("host01.cpu", rules) is fast
    assert resolve("station.temp", rules) is DEFAULT_POLICY
    assert resolve("anything", []) is DEFAULT_POLICY


@pytest.mark.parametrize("span_days, step, tier, out_step", [
    (1, None, 60, 60),  # a day: minutes
    (13, None, 60, 60),
    (30, None, 3600, 3600),  # a month: minutes are gone, hours
    (5 * 365, None, DAY, DAY),  # years: days
    (1, 3600, 3600, 3600),  # an hourly step over a day: the hour tier answers (same numbers, fewer buckets)
    (1, 86400, DAY, DAY),
    (1, 10, 0, 10),  # 10 s points: only raw samples have them
    (1, 90, 0, 90),
    (5, 90, 60, 120),  # raw is gone after 48 h: rounded up to whole minutes
    (20 * 365, None, DAY, DAY),  # beyond every tier: the longest one, flagged not covered
])
def test_finest_covering_tier_is_chosen(span_days: float, step: int | None, tier: int, out_step: int) -> None:
    choice = choose_tier(DEFAULT_POLICY, NOW - span_days * DAY, NOW, NOW, step)
    assert (choice.tier, choice.step) == (tier, out_step)
    assert choice.covered == (span_days < 10 * 365)


def test_coarse_tier_with_coarser_accuracy_is_not_preferred() -> None:
    p = parse_policy("raw:2d,1m:14d,1h:2y@0.02")
    # an hourly step over a day could come from either; the 1% minutes keep the accuracy
    assert choose_tier(p, NOW - DAY, NOW, NOW, 3600).tier == 60
    assert choose_tier(p, NOW - 30 * DAY, NOW, NOW, 3600).tier == 3600


def test_blocks_depend_on_the_step_only() -> None:
    assert [block_buckets(s) for s in (1, 10, 60, 300, 3600, 21600, 86400)] == [3600, 360, 60, 60, 24, 24, 30]


def test_raw_kept_longer_than_every_tier_answers_from_raw() -> None:
    p = parse_policy("raw:30d,1m:1d")
    assert choose_tier(p, NOW - 10 * DAY, NOW, NOW) == choose_tier(p, NOW - 10 * DAY, NOW, NOW, None)
    assert (choose_tier(p, NOW - 10 * DAY, NOW, NOW).tier, choose_tier(p, NOW - 10 * DAY, NOW, NOW).step) == (0, 60)
