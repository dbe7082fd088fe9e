"""What each moving part of a running telmon is doing: one list of components.

A component is a watcher, the ingest worker, a tailer, a push forwarder, the push writer, the
host agent, a sink relay, the alert evaluator or a notification channel, with its state
(``ok``, ``degraded``, ``down``, ``stopped``), lag, last error and a few figures.  `/readyz`,
`/metrics`, `telmon status` and the `lag` alert rules all read this one snapshot, so they
never disagree.  Every capability is found by duck typing on the service (``service.tail``,
``service.push``, ``service.sinks``, ``service.alerts``): what is not installed is not listed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from telmon.timeutil import iso

# An outbox whose oldest row waits longer than this is stuck (readiness fails).
DEFAULT_STUCK_AFTER = 600.0


@dataclass(slots=True)
class Component:
    kind: str  # store | ingest | watcher | tailer | forwarder | push-writer | agent | sink | alerts | notifier
    name: str
    state: str = "ok"  # ok | degraded | down | stopped
    lag_s: float | None = None
    last_error: str | None = None
    figures: dict[str, float | int | None] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.kind if self.kind == self.name else f"{self.kind}:{self.name}"

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["id"] = self.id
        return body


def _alive(thread: Any) -> bool | None:
    """True/False for a thread object, None when there is none (the part was never started)."""
    if thread is None:
        return None
    return bool(isinstance(thread, threading.Thread) and thread.is_alive())


def _state(alive: bool | None, last_error: str | None = None, degraded: bool = False) -> str:
    if alive is None:
        return "stopped"
    if not alive:
        return "down"
    return "degraded" if degraded else "ok"


class IngestLag:
    """How long files have waited in the ingest queue: the time the queue last went from
    empty to non-empty, or of the last commit, whichever is later (0 while it is empty).

    The ingest worker keeps counts, not times, so this wraps its ``submit`` and chains its
    ``on_commit`` (as telmon.sinks chains ``on_commit``); installed by telmon.health.install."""

    def __init__(self, worker: Any, clock: Callable[[], float]) -> None:
        self.worker = worker
        self.clock = clock
        self.waiting_since: float | None = None
        self.last_progress: float | None = None
        submit = worker.submit
        previous = worker.on_commit

        def tracked_submit(path: Any, feed: str) -> None:
            if self.waiting_since is None:
                self.waiting_since = self.clock()
            submit(path, feed)

        def on_commit(results: Any) -> None:
            self.last_progress = self.clock()
            if worker.depth == 0:
                self.waiting_since = None
            if previous is not None:
                previous(results)

        worker.submit = tracked_submit
        worker.on_commit = on_commit

    def lag(self, now: float) -> float:
        if self.worker.depth == 0 or self.waiting_since is None:
            return 0.0
        since = max(self.waiting_since, self.last_progress or self.waiting_since)
        return max(0.0, now - since)


def store_reachable(store: Any) -> str | None:
    """None when the store answers a one-row indexed read, else why not."""
    if getattr(store, "_closed", False):  # SQLiteStore after close(): reads may still work, writes do not
        return "the store is closed"
    try:
        store.station("\x00telmon-readyz")
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable", with its message
        return f"{type(exc).__name__}: {exc}"
    return None


def snapshot(service: Any, *, now: float, stuck_after: float = DEFAULT_STUCK_AFTER,
             check_store: bool = True) -> list[Component]:
    """Every component of ``service`` (see module doc), in a stable order."""
    out: list[Component] = []
    if check_store:
        err = store_reachable(service.store)
        out.append(Component("store", "store", "down" if err else "ok", last_error=err,
                             detail={"url": getattr(service.store, "url", None)}))
    out += _ingest(service, now)
    out += _watchers(service)
    out += _tail(service, now)
    out += _push(service, now)
    out += _sinks(service, stuck_after)
    alerts = getattr(service, "alerts", None)
    if alerts is not None and hasattr(alerts, "components"):
        out += alerts.components(now=now)
    return out


def _ingest(service: Any, now: float) -> list[Component]:
    worker = getattr(service, "worker", None)
    if worker is None:
        return []
    ws = worker.stats
    tracker = getattr(service, "ingest_lag", None)
    lag = tracker.lag(now) if tracker is not None else None
    alive = _alive(getattr(worker, "_thread", None))
    return [Component(
        "ingest", "ingest", _state(alive, ws.last_error), lag_s=lag, last_error=ws.last_error,
        figures={"queue": worker.depth, "submitted": ws.submitted, "files": ws.committed_files,
                 "arrivals": ws.arrivals, "rejected": ws.rejected, "duplicates": ws.duplicates,
                 "batches": ws.batches},
        detail={"last_commit_at": iso(ws.last_commit_at)},
    )]


def _watchers(service: Any) -> list[Component]:
    out = []
    for spec, w in getattr(service, "watchers", []) or []:
        s = w.stats
        alive = _alive(getattr(w, "_thread", None))
        missing = [root for root, mode in (s.roots or {}).items() if mode == "missing"]
        out.append(Component(
            "watcher", str(spec.path), _state(alive, s.last_error, degraded=bool(missing)),
            last_error=s.last_error,
            figures={"events": s.events, "files": s.files_emitted, "overflows": s.overflows, "rescans": s.rescans,
                     "folders": s.dirs_watched, "errors": s.errors},
            detail={"feed": spec.feed, "mode": s.mode, "fallback": s.fallback_reason, "missing_roots": missing},
        ))
    return out


def _tail(service: Any, now: float) -> list[Component]:
    runtime = getattr(service, "tail", None)
    if runtime is None:
        return []
    out = []
    tailer = getattr(runtime, "tailer", None)
    if tailer is not None:
        st = tailer.status
        alive = _alive(getattr(tailer, "_thread", None))
        lag = None if st.last_poll_at is None else max(0.0, now - st.last_poll_at)
        out.append(Component(
            "tailer", str(getattr(tailer, "machine", "tail")), _state(alive, st.last_error), lag_s=lag,
            last_error=st.last_error,
            figures={"lines": st.lines, "bytes": st.bytes, "pending_bytes": st.pending_bytes, "commits": st.commits,
                     "samples": st.samples},
            detail={"dirs": list(getattr(tailer.settings, "dirs", [])), "last_commit_at": iso(st.last_commit_at)},
        ))
    pusher = getattr(runtime, "pusher", None)
    if pusher is not None:
        ps = pusher.status()
        alive = _alive(getattr(pusher, "_thread", None))
        lag = None if not ps.get("waiting") or ps.get("last_ok_at") is None else max(0.0, now - ps["last_ok_at"])
        out.append(Component(
            "forwarder", str(ps.get("url")), _state(alive, ps.get("last_error"), degraded=bool(ps.get("failures"))
                                                    and bool(ps.get("waiting"))),
            lag_s=lag, last_error=ps.get("last_error"),
            figures={"waiting": ps.get("waiting"), "waiting_bytes": ps.get("waiting_bytes"), "sent": ps.get("sent"),
                     "failures": ps.get("failures")},
        ))
    return out


def _push(service: Any, now: float) -> list[Component]:
    push = getattr(service, "push", None)
    if push is None:
        return []
    out = []
    writer = getattr(push, "writer", None)
    if writer is not None:
        ws = writer.stats
        alive = _alive(getattr(writer, "_feed_thread", None))
        out.append(Component(
            "push-writer", "push", _state(alive, ws.last_error), last_error=ws.last_error,
            figures={"queued": getattr(writer, "depth", None), "samples": ws.samples, "requests": ws.jobs,
                     "backlog": ws.backlog, "failures": ws.failures},
        ))
    agent = getattr(push, "agent", None)
    if agent is not None:
        st = agent.stats
        alive = _alive(getattr(push, "agent_thread", None))
        out.append(Component(
            "agent", str(agent.host), _state(alive, st.last_error, degraded=bool(st.send_failures)),
            last_error=st.last_error,
            figures={"collected": st.collected, "sent": st.sent, "send_failures": st.send_failures},
        ))
    return out


def _sinks(service: Any, stuck_after: float) -> list[Component]:
    sinks = getattr(service, "sinks", None)
    if sinks is None:
        return []
    try:
        rows = sinks.status()["sinks"]
    except Exception as exc:  # noqa: BLE001 - a sink status failure is itself the component's state
        return [Component("sink", "outbox", "down", last_error=f"{type(exc).__name__}: {exc}")]
    out = []
    for r in rows:
        relay = r.get("relay") or {}
        age = r.get("oldest_pending_age_s")
        stuck = bool(r.get("pending")) and age is not None and age > stuck_after
        thread = getattr(getattr(sinks, "relays", {}).get(r["sink"]), "_thread", None)
        alive = _alive(thread) if thread is not None else (True if getattr(sinks, "_started", False) else None)
        state = _state(alive, r.get("last_error"), degraded=r.get("state") == "failing" or stuck)
        out.append(Component(
            "sink", str(r["sink"]), state, lag_s=age or 0.0, last_error=r.get("last_error"),
            figures={"pending": r.get("pending"), "delivered": r.get("delivered")},
            detail={"stuck": stuck, "relay": relay, "last_delivered_at": iso(r.get("last_delivered_at"))},
        ))
    return out


def ready(components: list[Component], *, stuck_after: float = DEFAULT_STUCK_AFTER) -> tuple[bool, list[dict[str, Any]]]:
    """Readiness from a snapshot: the store answers, every started thread is alive, and no
    outbox is stuck.  Returns (ready, checks) with one check per component that can fail."""
    checks = []
    for c in components:
        if c.kind == "store":
            ok, why = c.state == "ok", c.last_error
        elif c.kind == "sink":
            stuck = bool(c.detail.get("stuck"))
            ok = c.state != "down" and not stuck
            why = f"outbox stuck: {c.figures.get('pending')} rows, the oldest waiting {c.lag_s:.0f}s" \
                if stuck else (c.last_error if not ok else None)
        elif c.kind in ("ingest", "watcher", "tailer", "forwarder", "push-writer", "agent", "alerts"):
            ok = c.state not in ("down", "stopped")
            why = None if ok else f"{c.kind} is {c.state}" + (f": {c.last_error}" if c.last_error else "")
        else:
            continue
        checks.append({"check": c.id, "ok": ok, "reason": why})
    return all(ch["ok"] for ch in checks), checks
