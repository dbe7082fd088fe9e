"""One evaluation pass over every rule, and the thread that runs passes inside `telmon serve`.

``Evaluator.evaluate(now)`` is the whole pass, with the time passed in (tests drive it with a
fake clock; the thread passes the service's clock).  It observes every rule set-based
(observe.py), moves the alert states (state.py), and writes the state changes, the
transitions and the notifications they cause in one transaction (db.py), then wakes the
channel workers.  A rule whose source fails keeps its alerts as they were and shows the error.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from telmon.alerts import db
from telmon.alerts.notify import Dispatcher, channels, outgoing
from telmon.alerts.observe import Context, observe
from telmon.alerts.rules import Rule, SubjectFilter
from telmon.alerts.settings import AlertSettings
from telmon.alerts.state import FIRING, PENDING, AlertState, Event, advance
from telmon.timeutil import iso

log = logging.getLogger("telmon.alerts")

PURGE_EVERY = 3600.0


@dataclass(slots=True)
class PassResult:
    at: float
    seconds: float = 0.0
    rules: int = 0
    pending: int = 0
    firing: int = 0
    changed: int = 0
    events: int = 0
    suppressed: int = 0
    notifications: int = 0
    reads: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["at"] = iso(self.at)
        return body


class Evaluator:
    """Evaluates ``rules`` against ``store`` (see module doc).  One pass at a time."""

    def __init__(self, store: Any, rules: Sequence[Rule], settings: AlertSettings | None = None, *,
                 series: Any = None, service: Any = None, config: Any = None, dispatcher: Dispatcher | None = None,
                 stuck_after: float = 600.0) -> None:
        self.store = store
        self.rules = list(rules)
        self.settings = settings or AlertSettings()
        self.series = series
        self.service = service
        self.config = config
        self.dispatcher = dispatcher
        self.stuck_after = stuck_after
        self.channels = dispatcher.channels if dispatcher is not None else channels(self.settings)
        db.ensure_schema(store)
        self.filters = {r.name: SubjectFilter(r.subjects, r.exclude) for r in self.rules}
        self.active: dict[str, dict[str, AlertState]] = db.load_active(store)
        self.errors: dict[str, str] = {}
        self.last: PassResult | None = None
        self.last_error: str | None = None
        self.passes = 0
        self._lock = threading.Lock()

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def context(self, now: float) -> Context:
        return Context(self.store, now, series=self.series, service=self.service, config=self.config,
                       stuck_after=self.stuck_after)

    # --- one pass ---------------------------------------------------------------------------------
    def evaluate(self, now: float) -> PassResult:
        """Run every rule at ``now``; returns what the pass did.  Raises StoreError when the
        states cannot be written (memory is then reloaded from the store, so the next pass
        decides again and nothing is announced twice or lost)."""
        with self._lock:
            t0 = time.perf_counter()
            result = PassResult(at=now, rules=len(self.rules))
            ctx = self.context(now)
            silences = db.silences(self.store, now=now)
            changed: list[AlertState] = []
            removed: list[tuple[str, str]] = []
            transitions: list[tuple[str, AlertState]] = []
            events: list[Event] = []
            for rule in self.rules:
                try:
                    active = observe(rule, ctx, self.filters[rule.name])
                except Exception as exc:  # noqa: BLE001 - one rule's failure must not stop the others
                    self.errors[rule.name] = f"{type(exc).__name__}: {exc}"
                    log.warning("rule %s not evaluated: %s", rule.name, exc)
                    continue
                self.errors.pop(rule.name, None)
                current = self.active.setdefault(rule.name, {})
                step = advance(rule, current, active, now, reminder=self.settings.alert_reminder,
                               silenced=_silencer(rule.name, silences))
                changed += step.changed
                removed += [(rule.name, s) for s in step.removed]
                transitions += step.transitions
                events += step.events
                result.suppressed += step.suppressed
            notes = outgoing(events, self.channels, self.settings, now=now) if events else []
            meta = None
            digest = self._digest_due(now)
            if digest is not None:
                notes.append(digest)
                meta = {"digest_last": repr(now)}
            try:
                db.write_pass(self.store, changed, removed, transitions, notes, now=now, meta=meta)
            except Exception:
                self.active = db.load_active(self.store)
                raise
            if notes and self.dispatcher is not None:
                self.dispatcher.wake()
            self._purge(now)
            result.errors = dict(self.errors)
            result.changed, result.events, result.notifications = len(changed), len(events), len(notes)
            result.reads = ctx.reads
            result.pending, result.firing = self._counts()
            result.seconds = time.perf_counter() - t0
            self.last = result
            self.passes += 1
            return result

    def _counts(self) -> tuple[int, int]:
        pending = firing = 0
        for alerts in self.active.values():
            for st in alerts.values():
                if st.state == PENDING:
                    pending += 1
                elif st.state == FIRING:
                    firing += 1
        return pending, firing

    def rule_counts(self) -> dict[str, dict[str, int]]:
        """rule -> {"pending": n, "firing": n} from memory (every configured rule listed)."""
        out = {r.name: {PENDING: 0, FIRING: 0} for r in self.rules}
        for name, alerts in list(self.active.items()):
            if name not in out:
                continue
            for st in list(alerts.values()):
                if st.state in out[name]:
                    out[name][st.state] += 1
        return out

    def _digest_due(self, now: float) -> db.Outgoing | None:
        from telmon.alerts import digest

        if not digest.enabled(self.settings):
            return None
        last_text = db.get_meta(self.store, "digest_last")
        if last_text is None:
            # first run: start counting from now, do not mail a digest for days never watched
            db.set_meta(self.store, "digest_last", repr(now))
            return None
        if not digest.due(float(last_text), now, self.settings):
            return None
        try:
            return digest.outgoing(self, now)
        except Exception as exc:  # noqa: BLE001 - a digest that cannot be built is logged, alerts go on
            self.last_error = f"digest: {type(exc).__name__}: {exc}"
            log.exception("daily digest not built")
            return None

    def _purge(self, now: float) -> None:
        last = db.get_meta(self.store, "purged_at")
        if last is not None and now - float(last) < PURGE_EVERY:
            return
        db.purge(self.store, before=now - self.settings.alert_keep)
        db.set_meta(self.store, "purged_at", repr(now))


def _silencer(rule: str, silences: Sequence[db.Silence]) -> Callable[[str], bool]:
    mine = [s for s in silences if fnmatch.fnmatchcase(rule, s.rule)]
    if not mine:
        return lambda _subject: False
    if any(s.subject == "*" for s in mine):
        return lambda _subject: True
    return lambda subject: any(fnmatch.fnmatchcase(subject, s.subject) for s in mine)


class EvaluatorThread:
    """Runs ``evaluator.evaluate(clock())`` every ``interval`` seconds until stopped."""

    def __init__(self, evaluator: Evaluator, interval: float, clock: Callable[[], float]) -> None:
        self.evaluator = evaluator
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="telmon-alerts", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.evaluator.evaluate(self.clock())
                self.evaluator.last_error = None
            except Exception as exc:  # noqa: BLE001 - the thread must outlive a failed pass
                self.evaluator.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("alert evaluation failed")
