"""Reading pushed samples into flat arrays, and judging them the way SeriesStore will.

Native body (``POST /api/v1/samples``): a JSON array of items, or NDJSON (one item a line).
An item is either one sample of a named series, or one snapshot of a host::

    {"series": "pump.7.pressure", "time": 1700000000.5, "value": 3.2}
    {"host": "web1", "time": 1700000000, "values": {"cpu.total": 4.9, "mem.percent": 62.3}}

``time`` is epoch seconds (default: when the request arrived).  A host snapshot's values
become the series ``host.<host>.<label>`` (the names the Lizmon routes and the agent use).
Structure errors (not JSON, a missing key, a value that is not a number) reject the whole
request with the item's position; samples the store would refuse (too old, too far in the
future) are counted per reason in the answer and in the rejections table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from telmon.errors import BadRequest
from telmon.rollup import intake
from telmon.rollup.tiers import DEFAULT_POLICY, Policy, parse_policy, resolve

HOST_PREFIX = "host."
SENSOR_PREFIX = "sensor."
_SERIES_KEYS = frozenset(("series", "time", "value"))
_HOST_KEYS = frozenset(("host", "time", "values"))
_NUMBER = (int, float)


def host_series(host: str, label: str) -> str:
    return f"{HOST_PREFIX}{host}.{label}"


def check_host_name(host: object, where: str = "host") -> str:
    """A host name usable inside a series name (and a URL path segment); raises BadRequest."""
    if not isinstance(host, str) or not host:
        raise BadRequest(f"{where}: a host name is a non-empty string", field="host")
    if "/" in host or intake.check_name(host) is None or len(host) > 100:
        raise BadRequest(f"{where}: bad host name {host[:120]!r}: 1-100 characters, no '/', no control or glob "
                         "characters (*?[]), no leading or trailing space", field="host")
    return host


@dataclass(slots=True)
class SampleBatch:
    """Samples of one request as flat arrays; ``names[name_index[i]]`` names sample i."""

    names: list[str]
    name_index: np.ndarray
    ts: np.ndarray
    values: np.ndarray
    hosts: list[str] = field(default_factory=list)  # hosts that sent snapshots (for the host registry)

    @property
    def size(self) -> int:
        return len(self.ts)

    @staticmethod
    def build(names: list[str], index: list[int], ts: list[float], values: list[float],
              hosts: Sequence[str] = ()) -> SampleBatch:
        return SampleBatch(names, np.asarray(index, dtype=np.int64), np.asarray(ts, dtype=np.float64),
                           np.asarray(values, dtype=np.float64), list(hosts))


# Names already found usable: agents send the same names every time, so the regex runs once
# per name, not once per sample.  Bounded: cleared when it grows past the limit.
_GOOD_NAMES: set[str] = set()
_GOOD_NAMES_MAX = 500_000


def _remember(name: str) -> str | None:
    if intake.check_name(name) is None:
        return None
    if len(_GOOD_NAMES) >= _GOOD_NAMES_MAX:
        _GOOD_NAMES.clear()
    _GOOD_NAMES.add(name)
    return name


class _Collector:
    """Appends samples, interning series names (a name is checked once per request)."""

    __slots__ = ("names", "index_of", "index", "ts", "values", "hosts")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.index_of: dict[str, int] = {}
        self.index: list[int] = []
        self.ts: list[float] = []
        self.values: list[float] = []
        self.hosts: list[str] = []

    def name(self, name: str, where: str) -> int:
        i = self.index_of.get(name)
        if i is None:
            if name not in _GOOD_NAMES and _remember(name) is None:
                raise BadRequest(f"{where}: {name[:220]!r} cannot name a series: 1-200 characters, no control or "
                                 "glob characters (*?[]), no leading or trailing space", field="series")
            i = self.index_of[name] = len(self.names)
            self.names.append(name)
        return i

    def intern_all(self, names: list[str], where: str) -> None:
        """Append the samples' name indexes for many names at once (a host snapshot)."""
        for name in names:
            if name not in _GOOD_NAMES and _remember(name) is None:
                self.name(name, where)  # raises, naming the series
        if not self.index_of:  # the first snapshot of the request: nothing to look up
            n = len(names)
            self.names.extend(names)
            self.index_of.update(zip(names, range(n)))
            self.index.extend(range(n))
            return
        get = self.index_of.get
        for name in names:
            i = get(name)
            if i is None:
                i = self.index_of[name] = len(self.names)
                self.names.append(name)
            self.index.append(i)

    def batch(self) -> SampleBatch:
        return SampleBatch.build(self.names, self.index, self.ts, self.values, self.hosts)


def _time(item: dict[str, Any], where: str, now: float) -> float:
    t = item.get("time")
    if t is None:
        return now
    if type(t) not in _NUMBER:
        raise BadRequest(f"{where}: 'time' must be a number of epoch seconds, got {_show(t)}", field="time")
    return t


def _show(v: Any) -> str:
    text = orjson.dumps(v).decode() if not isinstance(v, bytes) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _load_items(body: bytes) -> tuple[list[Any], str]:
    """-> (items, 'item' or 'line'): a JSON array, or NDJSON lines."""
    text = body.strip()
    if not text:
        raise BadRequest("empty body: send a JSON array of samples, or NDJSON (one JSON object a line)")
    if text[:1] == b"[":
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from None
        if not isinstance(items, list):
            raise BadRequest("body is not a JSON array")
        return items, "item"
    lines = [ln for ln in text.split(b"\n") if ln.strip()]
    try:
        # one parse for the whole body is several times faster than one per line
        items = orjson.loads(b"[" + b",".join(lines) + b"]")
        if len(items) == len(lines):
            return items, "line"
    except orjson.JSONDecodeError:
        pass
    items = []
    for n, line in enumerate(text.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"line {n}: not valid JSON: {exc}") from None
    return items, "line"


def parse_native(body: bytes, *, now: float) -> SampleBatch:
    """Read a native ingest body.  Raises BadRequest naming the item (or line) and the key."""
    items, unit = _load_items(body)
    if not items:
        raise BadRequest("no samples in the body")
    out = _Collector()
    index, ts, values = out.index, out.ts, out.values
    for pos, item in enumerate(items, 1):
        if type(item) is not dict:
            raise BadRequest(f"{unit} {pos}: expected a JSON object, got {_show(item)}")
        if "host" in item:
            where = f"{unit} {pos}"
            if item.keys() - _HOST_KEYS:
                raise BadRequest(f"{where}: unknown key(s) {sorted(item.keys() - _HOST_KEYS)}; a host snapshot has "
                                 "'host', 'time' and 'values'")
            host = check_host_name(item["host"], where)
            snap = item.get("values")
            if type(snap) is not dict or not snap:
                raise BadRequest(f"{where}: 'values' must be a non-empty object of label -> number", field="values")
            t = _time(item, where, now)
            prefix = f"{HOST_PREFIX}{host}."
            vals = list(snap.values())
            if not all(type(v) in _NUMBER for v in vals):
                label, v = next((k, v) for k, v in snap.items() if type(v) not in _NUMBER)
                raise BadRequest(f"{where}: value of {label!r} must be a number, got {_show(v)}", field="values")
            out.intern_all([prefix + label for label in snap], where)
            ts.extend([t] * len(vals))
            values.extend(vals)
            if host not in out.hosts:
                out.hosts.append(host)
            continue
        name = item.get("series")
        if type(name) is not str:
            where = f"{unit} {pos}"
            if "series" not in item:
                raise BadRequest(f"{where}: give 'series' (with 'value') or 'host' (with 'values')")
            raise BadRequest(f"{where}: 'series' must be a string, got {_show(name)}", field="series")
        v = item.get("value")
        if type(v) not in _NUMBER:
            where = f"{unit} {pos}"
            if item.keys() - _SERIES_KEYS:
                raise BadRequest(f"{where}: unknown key(s) {sorted(item.keys() - _SERIES_KEYS)}; a sample has "
                                 "'series', 'time' and 'value'")
            raise BadRequest(f"{where}: 'value' must be a number, got {_show(v)}" if "value" in item
                             else f"{where}: missing 'value'", field="value")
        if len(item) > 3 or (len(item) == 3 and "time" not in item):
            raise BadRequest(f"{unit} {pos}: unknown key(s) {sorted(item.keys() - _SERIES_KEYS)}; a sample has "
                             "'series', 'time' and 'value'")
        t = item.get("time")
        if t is None:
            t = now
        elif type(t) not in _NUMBER:
            raise BadRequest(f"{unit} {pos}: 'time' must be a number of epoch seconds, got {_show(t)}", field="time")
        i = out.index_of.get(name)
        index.append(i if i is not None else out.name(name, f"{unit} {pos}"))
        ts.append(t)
        values.append(v)
    return out.batch()


def parse_lizmon(host: str, epoch: str, body: bytes) -> SampleBatch:
    """``POST /api/perf/<host>/<epoch>`` with ``{"label": number, ...}`` (Lizmon's monitor).
    Numeric strings are taken too, as Lizmon's receiver converted them."""
    check_host_name(host)
    if not epoch.isdigit():
        raise BadRequest(f"epoch must be whole seconds since 1970, got {epoch!r}", field="epoch")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if type(data) is not dict:
        raise BadRequest(f"body must be a JSON object of label -> number, got {_show(data)}")
    if not data:
        raise BadRequest("empty object: no labels to store")
    out = _Collector()
    t = float(int(epoch))
    for label, v in data.items():
        if type(v) is str:
            try:
                v = float(v)
            except ValueError:
                raise BadRequest(f"label {label!r}: {_show(v)} is not a number", field=label) from None
        elif type(v) not in _NUMBER:
            raise BadRequest(f"label {label!r}: {_show(v)} is not a number", field=label)
        out.index.append(out.name(host_series(host, label), f"label {label!r}"))
        out.ts.append(t)
        out.values.append(v)
    out.hosts.append(host)
    return out.batch()


class Judge:
    """Predicts, per request, which samples SeriesStore.write will refuse and why (future,
    older than retention, non-finite), so each request's answer counts its own rejections
    although many requests share one write.  Policies are re-read every few seconds."""

    def __init__(self, series: Any, *, refresh: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.series = series
        self.refresh = refresh
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded_at = -float("inf")
        self._rules: list[tuple[str, Policy]] = []
        self._retention: dict[str, float] = {}
        self._shortest_retention = DEFAULT_POLICY.max_retention

    def _refresh(self) -> None:
        with self._lock:
            if self._clock() - self._loaded_at > self.refresh:
                rules = [(p, parse_policy(s)) for p, s in self.series.policies()]
                if rules != self._rules:
                    self._rules, self._retention = rules, {}
                self._shortest_retention = min([DEFAULT_POLICY.max_retention,
                                                *(p.max_retention for _, p in rules)])
                self._loaded_at = self._clock()

    def _shortest(self) -> float:
        """The shortest retention any series may have: samples newer than it are never too old."""
        self._refresh()
        return self._shortest_retention

    def _retention_of(self, names: Sequence[str]) -> np.ndarray:
        self._refresh()
        with self._lock:
            cache, rules = self._retention, self._rules
        out = np.empty(len(names))
        for i, name in enumerate(names):
            r = cache.get(name)
            if r is None:
                policy = resolve(name, rules, DEFAULT_POLICY) if rules else DEFAULT_POLICY
                r = cache[name] = policy.max_retention
                if len(cache) > 200_000:
                    cache.clear()
            out[i] = r
        return out

    def judge(self, batch: SampleBatch, *, now: float) -> dict[str, int]:
        """Rejected samples per reason (empty when all will be stored)."""
        if not batch.size:
            return {}
        lo, hi = float(batch.ts.min()), float(batch.ts.max())
        if hi <= now + self.series.future_tolerance and lo >= now - self._shortest():
            return {}  # the common case, decided without a look at each series' policy
        taken = intake.Intake(batch.names, batch.name_index, batch.ts, batch.values,
                              np.zeros(batch.size, np.int8), [])
        oldest = now - self._retention_of(batch.names)
        code = intake.judge(taken, oldest, now + self.series.future_tolerance)
        bad = code[code != intake.OK]
        if not len(bad):
            return {}
        kinds, counts = np.unique(bad, return_counts=True)
        return {intake.REASONS[int(k)]: int(n) for k, n in zip(kinds, counts)}
