"""Slot maths for self-timed stations, as plain functions of data and ``now``.

A schedule is (interval, first slot offset of the day, window).  Slot ``n`` starts at
``phase + n * interval`` seconds after the epoch (``phase = first mod interval``) and lasts
``window`` seconds.  Each report (a message time, or a time entry for formats without one) is
matched to its nearest slot and coded as LRGS's MsgValidator does (FORMATS.md, "Platform
schedules"; opendcs ``lrgs/archive/MsgValidator.java``):

* ``O`` on time: starts inside the window and ends by its end;
* ``T`` partly outside: starts early but ends inside, or starts inside and ends late;
* ``U`` completely outside: ends before the window starts, or starts after it ends;
* ``M`` missing: the window ended (plus a grace delay) and no report was matched to it.

A slot with several reports keeps the best code (O < T < U).  The ledger below keeps, per
station, only what is not implied: runs of missing slots (split at UTC midnight so that an
index on their start finds every run touching a day) and late (T/U) slots.  Every slot from the
first report's slot (``origin``) to the newest filled slot (``last``) that is in no missing run
and has no late mark is on time; slots after ``last`` whose window has closed are missing
without being stored (the trailing run grows with ``now``, not with writes).
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

DAY = 86400.0
HEADER_BYTES = 37  # the LRGS/DOMSAT header, counted in the message's air time
DEFAULT_BAUD = 300  # MsgValidator's assumption when the baud rate is unknown

ON_TIME, PARTLY_OUTSIDE, OUTSIDE, MISSING = "O", "T", "U", "M"
LATE_CODES = (PARTLY_OUTSIDE, OUTSIDE)
LABELS = {
    ON_TIME: "on time",
    PARTLY_OUTSIDE: "partly outside its window",
    OUTSIDE: "completely outside its window",
    MISSING: "missing",
}
_RANK = {ON_TIME: 0, PARTLY_OUTSIDE: 1, OUTSIDE: 2, MISSING: 3}


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a self-timed station transmits.  ``first`` is as declared (seconds after 00:00 UTC);
    ``source`` says where the schedule came from: registry, manual or inferred.

    Raises ValueError for a non-positive interval or a window not shorter than the interval.
    """

    interval: float
    first: float = 0.0
    window: float = 0.0
    baud: int | None = None
    source: str = "registry"
    # first mod interval, computed once: slot arithmetic runs per report and per answer row
    phase: float = field(init=False, repr=False, compare=False, default=0.0)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval) and self.interval > 0):
            raise ValueError(f"interval must be a positive number of seconds, got {self.interval!r}")
        if not (math.isfinite(self.first) and math.isfinite(self.window)):
            raise ValueError("first and window must be finite")
        if not 0 <= self.window < self.interval:
            raise ValueError(f"window ({self.window:g} s) must be >= 0 and shorter than the interval "
                             f"({self.interval:g} s)")
        if self.baud is not None and self.baud <= 0:
            raise ValueError(f"baud must be positive, got {self.baud!r}")
        # For intervals that divide a day this is LRGS's grid (first + k*interval from each
        # midnight); for others the grid runs on from the epoch instead of restarting daily.
        object.__setattr__(self, "phase", self.first % self.interval)

    def start(self, n: int) -> float:
        return self.phase + n * self.interval

    def end(self, n: int) -> float:
        return self.start(n) + self.window

    def nearest(self, t: float) -> int:
        """The slot whose window START is nearest ``t`` (MsgValidator's rounding)."""
        return math.floor((t - self.phase + self.interval / 2) / self.interval)

    def index(self, slot_start: float) -> int:
        """The slot that starts at ``slot_start`` (a value this schedule produced)."""
        return round((slot_start - self.phase) / self.interval)

    def first_from(self, t: float) -> int:
        """The first slot starting at or after ``t``."""
        return math.ceil((t - self.phase) / self.interval - 1e-9)

    def last_before(self, t: float) -> int:
        """The last slot starting strictly before ``t``."""
        return self.first_from(t) - 1

    def last_due(self, now: float, grace: float) -> int:
        """The newest slot whose window ended at least ``grace`` seconds before ``now``."""
        return math.floor((now - grace - self.window - self.phase) / self.interval + 1e-9)

    def day(self, n: int) -> int:
        return math.floor(self.start(n) / DAY)

    def same_as(self, other: Schedule | None) -> bool:
        return (other is not None and self.interval == other.interval and self.phase == other.phase
                and self.window == other.window and self.baud == other.baud)


@functools.lru_cache(maxsize=4096)
def cached_schedule(interval: float, first: float, window: float, baud: int | None, source: str) -> Schedule:
    """A shared Schedule for stored values: rows of a large network mostly repeat a few schedules,
    and a Schedule is immutable."""
    return Schedule(interval, first, window, baud, source)


def message_duration(length_bytes: int | None, baud: int | None) -> float:
    """Seconds a GOES message of ``length_bytes`` (header included) is on the air."""
    if not length_bytes:
        return 0.0
    return length_bytes * 8.0 / (baud or DEFAULT_BAUD)


def classify(schedule: Schedule, t: float, duration: float = 0.0) -> tuple[int, str]:
    """(slot, code) for a report starting at ``t`` and lasting ``duration`` seconds."""
    # The slot arithmetic inlined: this runs once per report on the ingest path.
    iv, phase = schedule.interval, schedule.phase
    n = math.floor((t - phase + iv / 2) / iv)
    start = phase + n * iv
    end = start + schedule.window
    t_end = t + duration
    if t < start:
        return n, OUTSIDE if t_end < start else PARTLY_OUTSIDE
    if t <= end:
        return n, PARTLY_OUTSIDE if t_end > end else ON_TIME
    return n, OUTSIDE


def better(a: str, b: str | None) -> bool:
    """Whether code ``a`` is better than ``b`` (None: nothing yet)."""
    return b is None or _RANK[a] < _RANK[b]


# --- the ledger: incremental state per station ----------------------------------------------


@dataclass(slots=True)
class SlotState:
    """What a station's slots are, besides its missing runs and late marks."""

    origin: int | None = None  # the oldest slot any report was matched to
    last: int | None = None  # the newest filled slot
    last_code: str | None = None  # its code
    missing: int = 0  # slots in stored missing runs (not the trailing run)
    late: int = 0  # late-marked slots


class Marks(Protocol):
    """Where a station's missing runs and late marks live (memory, or rows of the store)."""

    def is_missing(self, n: int) -> bool: ...

    def add_missing(self, n0: int, n1: int) -> None: ...

    def fill(self, n: int) -> None: ...

    def late_code(self, n: int) -> str | None: ...

    def set_late(self, n: int, code: str, t: float) -> None: ...

    def clear_late(self, n: int) -> None: ...


def record(state: SlotState, marks: Marks, n: int, code: str, t: float) -> bool:
    """Account one report matched to slot ``n`` with ``code``; True if anything changed.

    Order does not matter: a report older than the newest one (a backfill) corrects the slot
    it falls in, and one older than the oldest extends the history back with the slots between
    marked missing.
    """
    late = code in LATE_CODES
    if state.origin is None or state.last is None:
        state.origin = state.last = n
        state.last_code = code
        if late:
            marks.set_late(n, code, t)
            state.late += 1
        return True
    if n > state.last:
        if n > state.last + 1:
            marks.add_missing(state.last + 1, n - 1)
            state.missing += n - 1 - state.last
        state.last, state.last_code = n, code
        if late:
            marks.set_late(n, code, t)
            state.late += 1
        return True
    if n < state.origin:
        if n < state.origin - 1:
            marks.add_missing(n + 1, state.origin - 1)
            state.missing += state.origin - 1 - n
        state.origin = n
        if late:
            marks.set_late(n, code, t)
            state.late += 1
        return True
    # A slot inside the history: missing (filled now), late (maybe improved), or on time.
    if state.missing and marks.is_missing(n):
        marks.fill(n)
        state.missing -= 1
        if late:
            marks.set_late(n, code, t)
            state.late += 1
        return True
    old = marks.late_code(n) if state.late else None
    if old is None or not better(code, old):
        return False  # already on time, or no better than what it has
    if late:
        marks.set_late(n, code, t)
    else:
        marks.clear_late(n)
        state.late -= 1
    if n == state.last:
        state.last_code = code
    return True


@dataclass(slots=True)
class MemoryMarks:
    """Marks in memory, with a log of what changed so a store can write only that.

    Missing runs are kept per UTC day as [n0, n1] (inclusive), never crossing midnight.
    """

    schedule: Schedule
    runs: dict[int, list[list[int]]] = field(default_factory=dict)
    late: dict[int, tuple[str, float]] = field(default_factory=dict)
    added_runs: dict[int, int] = field(default_factory=dict)  # start -> end, to insert
    removed_runs: set[int] = field(default_factory=set)  # starts of loaded runs, to delete
    put_late: dict[int, tuple[str, float]] = field(default_factory=dict)
    dropped_late: set[int] = field(default_factory=set)

    def load_run(self, n0: int, n1: int) -> None:
        self.runs.setdefault(self.schedule.day(n0), []).append([n0, n1])

    def load_late(self, n: int, code: str, t: float) -> None:
        self.late[n] = (code, t)

    def _find(self, n: int) -> list[int] | None:
        for run in self.runs.get(self.schedule.day(n), ()):
            if run[0] <= n <= run[1]:
                return run
        return None

    def is_missing(self, n: int) -> bool:
        return self._find(n) is not None

    def add_missing(self, n0: int, n1: int) -> None:
        sch = self.schedule
        while n0 <= n1:
            d = sch.day(n0)
            stop = min(n1, sch.first_from((d + 1) * DAY) - 1)
            self._add_run(n0, stop)
            n0 = stop + 1

    def _add_run(self, n0: int, n1: int) -> None:
        self.runs.setdefault(self.schedule.day(n0), []).append([n0, n1])
        self.added_runs[n0] = n1

    def _remove_run(self, run: list[int]) -> None:
        self.runs[self.schedule.day(run[0])].remove(run)
        if run[0] in self.added_runs:
            del self.added_runs[run[0]]
        else:
            self.removed_runs.add(run[0])

    def fill(self, n: int) -> None:
        run = self._find(n)
        if run is None:
            raise KeyError(n)
        n0, n1 = run
        self._remove_run(run)
        if n0 <= n - 1:
            self._add_run(n0, n - 1)
        if n + 1 <= n1:
            self._add_run(n + 1, n1)

    def late_code(self, n: int) -> str | None:
        item = self.late.get(n)
        return item[0] if item else None

    def set_late(self, n: int, code: str, t: float) -> None:
        self.late[n] = (code, t)
        self.put_late[n] = (code, t)
        self.dropped_late.discard(n)

    def clear_late(self, n: int) -> None:
        self.late.pop(n, None)
        self.put_late.pop(n, None)
        self.dropped_late.add(n)

    def all_runs(self) -> list[tuple[int, int]]:
        return sorted((r[0], r[1]) for runs in self.runs.values() for r in runs)


# --- what a span holds ------------------------------------------------------------------------


def run_overlap(schedule: Schedule, n0: int, n1: int, a: float, b: float) -> tuple[int, int] | None:
    """The part of slots n0..n1 that start inside [a, b), or None."""
    lo = max(n0, schedule.first_from(a))
    hi = min(n1, schedule.last_before(b))
    return (lo, hi) if lo <= hi else None


def trailing_run(schedule: Schedule, state: SlotState, now: float, grace: float) -> tuple[int, int] | None:
    """Slots after the newest filled one whose window has closed: missing, never stored."""
    if state.last is None:
        return None
    due = schedule.last_due(now, grace)
    return (state.last + 1, due) if due > state.last else None


def next_expected(schedule: Schedule, now: float) -> int:
    """The first slot whose window has not ended yet at ``now``."""
    return math.floor((now - schedule.window - schedule.phase) / schedule.interval) + 1


@dataclass(slots=True)
class SpanCounts:
    expected: int = 0
    received: int = 0
    on_time: int = 0
    late: int = 0
    missing: int = 0

    @property
    def completeness(self) -> float | None:
        return None if self.expected == 0 else round(100.0 * self.received / self.expected, 2)

    def as_dict(self) -> dict[str, float | int | None]:
        return {"expected": self.expected, "received": self.received, "on_time": self.on_time,
                "late": self.late, "missing": self.missing, "completeness": self.completeness}


def span_counts(
    schedule: Schedule, state: SlotState, runs: Iterable[tuple[int, int]], late_slots: Iterable[int],
    a: float, b: float, now: float, grace: float,
) -> SpanCounts:
    """Counts over slots starting in [a, b): ``runs`` and ``late_slots`` are the station's stored
    marks near the span (extra ones are ignored)."""
    out = SpanCounts()
    if state.origin is None or state.last is None:
        return out
    trail = trailing_run(schedule, state, now, grace)
    top = trail[1] if trail else state.last
    accounted = run_overlap(schedule, state.origin, top, a, b)
    if accounted is None:
        return out
    lo, hi = accounted
    out.expected = hi - lo + 1
    for n0, n1 in runs:
        part = run_overlap(schedule, max(n0, lo), min(n1, hi), a, b)
        if part:
            out.missing += part[1] - part[0] + 1
    if trail:
        part = run_overlap(schedule, max(trail[0], lo), min(trail[1], hi), a, b)
        if part:
            out.missing += part[1] - part[0] + 1
    out.late = sum(1 for n in late_slots if lo <= n <= hi)
    out.received = out.expected - out.missing
    out.on_time = out.received - out.late
    return out


# --- reference classification (tests, rebuilds) ------------------------------------------------


def classify_all(
    schedule: Schedule, reports: Sequence[tuple[float, float]], now: float, grace: float
) -> dict[int, str]:
    """Every accounted slot's code, computed from scratch: (time, duration) reports in any order.

    Slots run from the oldest report's slot to the newest filled slot, or to the newest slot due
    at ``now`` if later.  The ledger must always agree with this.
    """
    best: dict[int, str] = {}
    for t, d in reports:
        n, code = classify(schedule, t, d)
        if better(code, best.get(n)):
            best[n] = code
    if not best:
        return {}
    top = max(max(best), schedule.last_due(now, grace))
    return {n: best.get(n, MISSING) for n in range(min(best), top + 1)}


def codes_from_ledger(
    schedule: Schedule, state: SlotState, marks: MemoryMarks, now: float, grace: float
) -> dict[int, str]:
    """Every accounted slot's code as the ledger holds it (the inverse view of classify_all)."""
    if state.origin is None or state.last is None:
        return {}
    trail = trailing_run(schedule, state, now, grace)
    top = trail[1] if trail else state.last
    missing = {n for n0, n1 in marks.all_runs() for n in range(n0, n1 + 1)}
    out = {}
    for n in range(state.origin, top + 1):
        if n in missing or n > state.last:
            out[n] = MISSING
        else:
            out[n] = marks.late_code(n) or ON_TIME
    return out


# --- inference ---------------------------------------------------------------------------------

MIN_REPORTS = 8


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def infer_schedule(times: Iterable[float], duration: float = 0.0, *, min_reports: int = MIN_REPORTS) -> Schedule | None:
    """A schedule that fits ``times`` (interval and phase), or None when they are too few or too
    irregular.  The interval is the median spacing (outages do not stretch it), rounded to the
    minute above 10 minutes; the window covers the central 90 % of the times' offsets from the
    phase, with a margin, so a station keeping its usual rhythm reads as on time.
    """
    ts = sorted(set(times))
    if len(ts) < min_reports:
        return None
    spacings = [b - a for a, b in zip(ts, ts[1:])]
    interval = float(statistics.median(spacings))
    if interval >= 600:
        interval = round(interval / 60) * 60.0
    elif interval >= 1:
        interval = float(round(interval))
    if interval <= 0:
        return None
    regular = sum(1 for s in spacings if abs(s / interval - round(s / interval)) < 0.05 and round(s / interval) >= 1)
    if regular < 0.5 * len(spacings):
        return None
    ref = ts[-1]

    def wrap(x: float) -> float:
        return (x + interval / 2) % interval - interval / 2

    centre = ref + statistics.median(wrap(t - ref) for t in ts)
    offsets = sorted(wrap(t - centre) for t in ts)
    lo, hi = _quantile(offsets, 0.05), _quantile(offsets, 0.95) + duration
    margin = max(30.0, 0.02 * interval)
    window = min(hi - lo + 2 * margin, interval / 2)
    # modulo the interval, not the day: the grid must pass through the observed times even
    # when the interval does not divide a day
    first = (centre + lo - margin) % interval
    return Schedule(interval, round(first, 3), round(window, 3), None, "inferred")
