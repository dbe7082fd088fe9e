"""Alert rules as declared in the config file's ``[[rules]]`` tables (issue 9).

A rule names a *kind* (what it watches), its threshold, a ``for`` duration, a severity and
labels.  Every kind yields *subjects* (a station, a transfer client, a series, a sink) with a
value; a subject whose value crosses the threshold is active.  :func:`parse_rules` validates
the tables and raises ConfigError naming the rule (``rules[3]``: 1-based, as the tables read)
and the key, so a typo never becomes a rule that silently never fires.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from telmon.errors import ConfigError, InvalidTime
from telmon.timeutil import parse_span

SEVERITIES = ("info", "warning", "critical")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_GLOB = re.compile(r"[*?\[]")

# Transfer statistics a `transfer` rule may watch (telmon.tail.query columns).
TRANSFER_METRICS = ("latency_p95", "latency_median", "latency_mean", "latency_max", "errors", "over_max", "files",
                    "bytes", "duplicates")
# Counts: a known client with no row in the span has 0 of them (latencies are then unknown).
TRANSFER_COUNTS = frozenset({"errors", "over_max", "files", "bytes", "duplicates"})
# telmon's own health figures a `lag` rule may watch (telmon.health.snapshot components).
LAG_METRICS = ("ingest_lag", "ingest_queue", "tail_lag", "tail_pending", "outbox_age", "outbox_pending",
               "notify_failed", "notify_queued", "down")
STATUS_WORDS = ("A", "D", "U", "on_time", "late", "missing", "silent", "never", "unscheduled")

COMMON_KEYS = frozenset({"name", "kind", "for", "severity", "labels", "subjects", "exclude", "notify", "email_to",
                         "reminder", "summary"})


@dataclass(frozen=True, slots=True)
class KindSpec:
    """What a kind accepts: its own keys, which are required, defaults, and whether it takes a
    numeric threshold (``above`` / ``below``) and which directions make sense."""

    keys: frozenset[str]
    required: frozenset[str] = frozenset()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    threshold: tuple[str, ...] = ()  # allowed among ("above", "below")
    threshold_required: bool = False
    help: str = ""


KINDS: dict[str, KindSpec] = {
    "silence": KindSpec(frozenset({"after", "station_kinds", "include_never"}), frozenset({"after"}),
                        {"include_never": True},
                        help="a station with no arrival for longer than `after` (value: seconds silent)"),
    "status": KindSpec(frozenset({"status"}), frozenset({"status"}),
                       help="a station whose schedule status is one of `status` (NOAA A/D/U or a map word)"),
    "missing": KindSpec(frozenset({"span", "above"}), defaults={"span": 86400.0, "above": 0.0},
                        threshold=("above",),
                        help="a scheduled station with more than `above` missing slots over `span`"),
    "completeness": KindSpec(frozenset({"span", "below", "min_expected"}), frozenset({"below"}),
                             {"span": 86400.0, "min_expected": 1}, threshold=("below",), threshold_required=True,
                             help="a scheduled station whose completeness (%) over `span` is below `below`"),
    "transfer": KindSpec(frozenset({"metric", "span", "above", "below", "direction", "machines"}),
                         frozenset({"metric"}), {"span": 900.0}, threshold=("above", "below"), threshold_required=True,
                         help="a transfer client (tx/NAME or rx/NAME) whose `metric` over `span` crosses the threshold"),
    "series": KindSpec(frozenset({"series", "stat", "span", "above", "below", "by"}), frozenset({"series"}),
                       {"stat": "mean", "span": 300.0, "by": "series"}, threshold=("above", "below"),
                       threshold_required=True,
                       help="a numeric series (host metric, sensor) whose `stat` over `span` crosses the threshold"),
    "rejected": KindSpec(frozenset({"span", "above"}), defaults={"span": 3600.0, "above": 0.0}, threshold=("above",),
                         help="more than `above` rejected files or samples over `span`, per feed"),
    "lag": KindSpec(frozenset({"metric", "above"}), frozenset({"metric"}), threshold=("above",),
                    threshold_required=True,
                    help="one of telmon's own health figures (ingest lag, tail lag, outbox age, ...) above `above`"),
}


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    kind: str
    for_s: float = 0.0
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    subjects: tuple[str, ...] = ()  # globs (empty: every subject)
    exclude: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()  # channel names or kinds ("email", "webhook", "webhook:ops"); empty: all
    email_to: tuple[str, ...] = ()
    reminder: float | None = None  # None: the alert_reminder setting
    summary: str | None = None
    above: float | None = None
    below: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # the kind's own keys

    def param(self, key: str) -> Any:
        return self.params.get(key, KINDS[self.kind].defaults.get(key))

    def breaches(self, value: float | None) -> bool:
        """The threshold test: strictly above ``above`` or strictly below ``below``."""
        if value is None or value != value:
            return False
        if self.above is not None and value > self.above:
            return True
        return self.below is not None and value < self.below

    def threshold_text(self) -> str:
        if self.above is not None:
            return f"> {self.above:g}"
        if self.below is not None:
            return f"< {self.below:g}"
        return ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "for_s": self.for_s, "severity": self.severity,
                "labels": dict(self.labels), "subjects": list(self.subjects), "exclude": list(self.exclude),
                "notify": list(self.notify), "email_to": list(self.email_to), "reminder_s": self.reminder,
                "summary": self.summary, "above": self.above, "below": self.below, "params": dict(self.params),
                "threshold": self.threshold_text(), "help": KINDS[self.kind].help}


class SubjectFilter:
    """The ``subjects`` / ``exclude`` globs of a rule, applied to many subjects at once.

    Exact names (no glob character) are looked up, not scanned: a rule naming one station out
    of 10,000 costs one dict lookup, which keeps per-station rules cheap (bench/alerts.py)."""

    __slots__ = ("exact", "patterns", "exclude_exact", "exclude_re")

    def __init__(self, subjects: Sequence[str], exclude: Sequence[str]) -> None:
        self.exact = [s for s in subjects if not _GLOB.search(s)]
        globs = [s for s in subjects if _GLOB.search(s)]
        self.patterns = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs)) if globs else None
        self.exclude_exact = {s for s in exclude if not _GLOB.search(s)}
        xg = [s for s in exclude if _GLOB.search(s)]
        self.exclude_re = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in xg)) if xg else None

    @property
    def everything(self) -> bool:
        return not self.exact and self.patterns is None

    def pick(self, observed: Mapping[str, Any]) -> Iterable[str]:
        """The subjects of ``observed`` this rule covers."""
        if self.everything:
            chosen: Iterable[str] = observed.keys()
        elif self.patterns is None:
            chosen = [s for s in self.exact if s in observed]
        else:
            match = self.patterns.match
            extra = [s for s in self.exact if s in observed]
            named = set(extra)
            chosen = extra + [s for s in observed if match(s) and s not in named]
        if self.exclude_exact or self.exclude_re is not None:
            xre = self.exclude_re.match if self.exclude_re is not None else None
            chosen = [s for s in chosen if s not in self.exclude_exact and not (xre and xre(s))]
        return chosen

    def covers(self, subject: str) -> bool:
        if subject in self.exclude_exact or (self.exclude_re is not None and self.exclude_re.match(subject)):
            return False
        if self.everything:
            return True
        return subject in self.exact or (self.patterns is not None and bool(self.patterns.match(subject)))


# --- parsing -------------------------------------------------------------------------------------------


def duration(value: Any, *, where: str, path: str | None, allow_zero: bool = True) -> float:
    """Seconds from a number or a span like ``90``, ``15m``, ``2h``, ``7d``."""
    if isinstance(value, bool):
        raise ConfigError(f"expected a duration like 90, 15m, 2h, got {value!r}", path=path, key=where)
    if allow_zero and (value == 0 or str(value).strip() in ("0", "0s", "0m", "0h")):
        return 0.0
    try:
        return float(parse_span(value))
    except (InvalidTime, ValueError):
        raise ConfigError(f"expected a duration like 90, 15m, 2h, got {value!r}", path=path, key=where) from None


def _number(value: Any, where: str, path: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"expected a number, got {value!r}", path=path, key=where)
    return float(value)


def _strings(value: Any, where: str, path: str | None) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"expected a list of non-empty strings, got {value!r}", path=path, key=where)
    return tuple(value)


def parse_rules(tables: Any, path: str | None = None) -> list[Rule]:
    """Rules from the config file's ``[[rules]]`` tables (a list of dicts).

    Raises ConfigError with ``key`` ``rules[N].KEY`` (N counts the tables from 1) for an unknown
    kind or key, a missing required key, a bad duration, number, severity or template, or two
    rules with one name."""
    if not isinstance(tables, list):
        raise ConfigError("[[rules]] must be an array of tables", path=path, key="rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, table in enumerate(tables, 1):
        rule = parse_rule(table, f"rules[{i}]", path)
        if rule.name in seen:
            raise ConfigError(f"a rule named {rule.name!r} is declared twice", path=path, key=f"rules[{i}].name")
        seen.add(rule.name)
        rules.append(rule)
    return rules


def parse_rule(table: Any, where: str, path: str | None = None) -> Rule:
    if not isinstance(table, dict):
        raise ConfigError("each [[rules]] entry must be a table", path=path, key=where)
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError("needs a name: letters, digits and _ . : - (at most 100)", path=path, key=f"{where}.name")
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", path=path, key=f"{where}.kind")
    spec = KINDS[kind]
    unknown = sorted(set(table) - COMMON_KEYS - spec.keys)
    if unknown:
        raise ConfigError(f"unknown key for a {kind} rule (it takes {', '.join(sorted(spec.keys | COMMON_KEYS))})",
                          path=path, key=f"{where}.{unknown[0]}")
    for key in sorted(spec.required):
        if key not in table:
            raise ConfigError(f"a {kind} rule needs {key!r}", path=path, key=f"{where}.{key}")
    severity = table.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ConfigError(f"severity must be one of {', '.join(SEVERITIES)}", path=path, key=f"{where}.severity")
    labels = table.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, (str, int, float))
                                               for k, v in labels.items()):
        raise ConfigError("labels must be a table of names to strings", path=path, key=f"{where}.labels")
    above = _number(table["above"], f"{where}.above", path) if "above" in table else None
    below = _number(table["below"], f"{where}.below", path) if "below" in table else None
    if above is not None and below is not None:
        raise ConfigError("give either above or below, not both", path=path, key=f"{where}.below")
    if spec.threshold_required and above is None and below is None:
        raise ConfigError(f"a {kind} rule needs a threshold: {' or '.join(spec.threshold)}", path=path,
                          key=f"{where}.{spec.threshold[0]}")
    if above is None and below is None and "above" in spec.defaults:
        above = float(spec.defaults["above"])
    params = _kind_params(kind, table, where, path)
    reminder = duration(table["reminder"], where=f"{where}.reminder", path=path) if "reminder" in table else None
    summary = table.get("summary")
    if summary is not None:
        _check_template(summary, f"{where}.summary", path)
    notify = _strings(table.get("notify", []), f"{where}.notify", path)
    for n in notify:
        if n not in ("email", "webhook") and not n.startswith("webhook:"):
            raise ConfigError(f"notify entries are email, webhook or webhook:<name>, not {n!r}", path=path,
                              key=f"{where}.notify")
    return Rule(
        name=name, kind=kind, for_s=duration(table.get("for", 0), where=f"{where}.for", path=path),
        severity=severity, labels={k: str(v) for k, v in labels.items()},
        subjects=_strings(table.get("subjects", []), f"{where}.subjects", path),
        exclude=_strings(table.get("exclude", []), f"{where}.exclude", path),
        notify=notify, email_to=_strings(table.get("email_to", []), f"{where}.email_to", path),
        reminder=reminder, summary=summary, above=above, below=below, params=params,
    )


def _kind_params(kind: str, table: dict[str, Any], where: str, path: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if "span" in table:
        params["span"] = duration(table["span"], where=f"{where}.span", path=path, allow_zero=False)
    if kind == "silence":
        params["after"] = duration(table["after"], where=f"{where}.after", path=path, allow_zero=False)
        if "station_kinds" in table:
            params["station_kinds"] = _strings(table["station_kinds"], f"{where}.station_kinds", path)
        if "include_never" in table:
            if not isinstance(table["include_never"], bool):
                raise ConfigError("expected true or false", path=path, key=f"{where}.include_never")
            params["include_never"] = table["include_never"]
    elif kind == "status":
        words = _strings(table["status"], f"{where}.status", path)
        bad = [w for w in words if w not in STATUS_WORDS]
        if bad:
            raise ConfigError(f"status words are {', '.join(STATUS_WORDS)}, not {bad[0]!r}", path=path,
                              key=f"{where}.status")
        params["status"] = words
    elif kind == "completeness":
        if "min_expected" in table:
            params["min_expected"] = int(_number(table["min_expected"], f"{where}.min_expected", path))
    elif kind == "transfer":
        metric = table["metric"]
        if metric not in TRANSFER_METRICS:
            raise ConfigError(f"metric must be one of {', '.join(TRANSFER_METRICS)}", path=path, key=f"{where}.metric")
        params["metric"] = metric
        if "direction" in table:
            if table["direction"] not in ("tx", "rx"):
                raise ConfigError("direction must be tx or rx", path=path, key=f"{where}.direction")
            params["direction"] = table["direction"]
        if "machines" in table:
            params["machines"] = _strings(table["machines"], f"{where}.machines", path)
    elif kind == "series":
        series = table["series"]
        if not isinstance(series, str) or not series:
            raise ConfigError("expected a series name or glob", path=path, key=f"{where}.series")
        params["series"] = series
        if "stat" in table:
            from telmon.rollup.buckets import check_stats

            try:
                check_stats([str(table["stat"])])
            except ValueError as exc:
                raise ConfigError(str(exc), path=path, key=f"{where}.stat") from None
            params["stat"] = str(table["stat"])
        if "by" in table:
            if table["by"] not in ("series", "host"):
                raise ConfigError("by must be series or host", path=path, key=f"{where}.by")
            params["by"] = table["by"]
    elif kind == "lag":
        if table["metric"] not in LAG_METRICS:
            raise ConfigError(f"metric must be one of {', '.join(LAG_METRICS)}", path=path, key=f"{where}.metric")
        params["metric"] = table["metric"]
    return params


_TEMPLATE_FIELDS = {"rule": "r", "subject": "s", "value": 1.0, "value_text": "1", "severity": "warning",
                    "kind": "k", "threshold": "> 1", "labels": {}}


def _check_template(text: Any, where: str, path: str | None) -> None:
    if not isinstance(text, str):
        raise ConfigError("summary must be a string", path=path, key=where)
    try:
        text.format_map(_TEMPLATE_FIELDS)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise ConfigError(f"summary template: {exc!r}; fields are {', '.join(_TEMPLATE_FIELDS)}", path=path,
                          key=where) from None
