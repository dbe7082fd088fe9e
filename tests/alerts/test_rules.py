"""[[rules]] parsing: every kind, and errors that name the rule (1-based) and the key."""

from __future__ import annotations

import pytest

from telmon.alerts.rules import KINDS, SubjectFilter, parse_rules
from telmon.errors import ConfigError

GOOD = [
    {"name": "silent-2h", "kind": "silence", "after": "2h", "for": "10m", "severity": "critical",
     "labels": {"team": "hydro"}, "subjects": ["B*"], "exclude": ["B9*"], "notify": ["email"]},
    {"name": "noaa-down", "kind": "status", "status": ["D", "U"]},
    {"name": "missing", "kind": "missing", "span": "6h", "above": 3},
    {"name": "complete", "kind": "completeness", "span": "24h", "below": 90, "min_expected": 4},
    {"name": "latency", "kind": "transfer", "metric": "latency_p95", "span": "15m", "above": 30, "direction": "tx",
     "subjects": ["tx/amis"]},
    {"name": "cpu", "kind": "series", "series": "host.*.cpu.total", "stat": "p95", "span": "5m", "above": 90,
     "for": "10m", "reminder": "1h", "summary": "{subject} is hot: {value_text}"},
    {"name": "rejects", "kind": "rejected", "span": "1h", "above": 10},
    {"name": "lagging", "kind": "lag", "metric": "ingest_lag", "above": 300},
]


def test_every_kind_parses_with_its_defaults() -> None:
    rules = parse_rules(GOOD, "t.toml")
    assert {r.kind for r in rules} == set(KINDS)
    silent, _status, missing, complete, latency, cpu, rejects, lagging = rules
    assert silent.for_s == 600 and silent.param("after") == 7200 and silent.param("include_never") is True
    assert silent.labels == {"team": "hydro"} and silent.severity == "critical"
    assert missing.above == 3 and missing.param("span") == 6 * 3600
    assert complete.below == 90 and complete.param("min_expected") == 4
    assert latency.param("metric") == "latency_p95" and latency.param("direction") == "tx"
    assert cpu.reminder == 3600 and cpu.param("stat") == "p95"
    assert rejects.above == 10 and lagging.above == 300
    # defaults: a missing rule with no threshold fires on any missing slot
    [m] = parse_rules([{"name": "m", "kind": "missing"}])
    assert m.above == 0 and m.param("span") == 86400


@pytest.mark.parametrize(("table", "key", "words"), [
    ({"kind": "silence", "after": "1h"}, "rules[2].name", "needs a name"),
    ({"name": "x", "kind": "nope"}, "rules[2].kind", "kind must be one of"),
    ({"name": "x", "kind": "silence"}, "rules[2].after", "needs 'after'"),
    ({"name": "x", "kind": "silence", "after": "soon"}, "rules[2].after", "duration"),
    ({"name": "x", "kind": "silence", "after": "1h", "colour": "red"}, "rules[2].colour", "unknown key"),
    ({"name": "x", "kind": "completeness"}, "rules[2].below", "needs 'below'"),
    ({"name": "x", "kind": "transfer", "metric": "speed", "above": 1}, "rules[2].metric", "metric must be"),
    ({"name": "x", "kind": "transfer", "metric": "errors"}, "rules[2].above", "needs a threshold"),
    ({"name": "x", "kind": "series", "series": "a", "above": 1, "below": 0}, "rules[2].below", "either above or below"),
    ({"name": "x", "kind": "series", "series": "a", "above": "high"}, "rules[2].above", "expected a number"),
    ({"name": "x", "kind": "series", "series": "a", "above": 1, "stat": "p1000x"}, "rules[2].stat", "unknown stat"),
    ({"name": "x", "kind": "lag", "metric": "ingest_lag", "above": 1, "severity": "huge"}, "rules[2].severity",
     "severity must be"),
    ({"name": "x", "kind": "status", "status": ["Z"]}, "rules[2].status", "status words"),
    ({"name": "x", "kind": "lag", "metric": "ingest_lag", "above": 1, "notify": ["pager"]}, "rules[2].notify",
     "notify entries"),
    ({"name": "x", "kind": "lag", "metric": "ingest_lag", "above": 1, "summary": "{nope}"}, "rules[2].summary",
     "template"),
    ({"name": "x", "kind": "lag", "metric": "ingest_lag", "above": 1, "labels": ["a"]}, "rules[2].labels", "labels"),
    ({"name": "first", "kind": "lag", "metric": "ingest_lag", "above": 1}, "rules[2].name", "declared twice"),
    ("not a table", "rules[2]", "must be a table"),
])
def test_bad_rules_name_index_and_key(table: object, key: str, words: str) -> None:
    first = {"name": "first", "kind": "lag", "metric": "ingest_lag", "above": 1}
    with pytest.raises(ConfigError) as info:
        parse_rules([first, table], "/etc/telmon.toml")
    assert info.value.key == key
    assert info.value.path == "/etc/telmon.toml"
    assert words in str(info.value)
    assert str(info.value).startswith(f"/etc/telmon.toml: {key}: ")


def test_rules_must_be_a_list() -> None:
    with pytest.raises(ConfigError) as info:
        parse_rules({"name": "x"}, "t.toml")
    assert info.value.key == "rules"


def test_subject_filter_exact_globs_and_excludes() -> None:
    observed = {f"B{i:03d}": i for i in range(200)} | {"tx/amis": 1}
    f = SubjectFilter(["B00*", "B150", "tx/amis"], ["B005", "B00[7-9]"])
    assert sorted(f.pick(observed)) == ["B000", "B001", "B002", "B003", "B004", "B006", "B150", "tx/amis"]
    assert f.covers("B001") and not f.covers("B005") and not f.covers("B100")
    everything = SubjectFilter([], [])
    assert len(list(everything.pick(observed))) == 201 and everything.covers("anything")
    assert list(SubjectFilter(["missing"], []).pick(observed)) == []
