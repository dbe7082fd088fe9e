"""Redis statistics from the outbox, applied once per archive.

Two layouts:

* ``t4tc`` (job archives), the key layout of the Test4Theory dashboards (../shared/FORMATS.md):
  hash ``<prefix>`` (``jobs_completed``, ``events``, ``jobs_failed``, ``event_rate``), sorted
  sets ``<prefix>PER_USER/{jobs_completed,cpuusage,diskusage,events,jobs_failed}``,
  ``<prefix>EVENT_BUFFER``, set ``<prefix>USERS`` and ``<prefix>NEW_USERS/<user>`` (1-day TTL).
* ``arrivals`` (any other arrival routed here): hash ``<prefix>`` (``arrivals``, ``entries``),
  sorted sets ``<prefix>PER_STATION/{arrivals,entries}``, ``<prefix>PER_FEED/arrivals`` and
  ``<prefix>LAST_ARRIVAL`` (score = newest arrival time in ms).

A batch is applied by one Lua script, atomically. Each item carries its archive id (the
archive's sha256); the script skips ids already in ``<prefix>_telmon/PROCESSED`` and adds the
new ones, so a batch re-sent after a crash or a lost reply counts nothing twice. Times come
from the arrival (its received time), never from the clock at apply time, so a replay
writes the same values.

``event_rate`` is the events of successful jobs received in the last ``window`` seconds
divided by ``window``. monitor.py read the buffer from index 1 (dropping one job), divided by
the span between the oldest and newest job (zero when they share a timestamp) and reported
per minute; here a running sum of the buffer (``<prefix>_telmon/EVENT_BUFFER_SUM``), kept in
step with additions and trimming, makes each update O(changes), not O(buffer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis as redis_lib

from telmon.sinks.outbox import Outbox, OutboxRow

log = logging.getLogger("telmon.sinks.redis")

SINK = "redis"

# KEYS: none (the per-user keys are only known inside); this script is for a single Redis
# server, not a cluster.  ARGV[1]: JSON {now_ms, window_ms, ttl_ms, keep_ms, rates: [prefix],
# items: [{k, p, id, ...}]}.  Returns the number of items applied (not already processed).
APPLY_LUA = r"""
local req = cjson.decode(ARGV[1])
local now = tonumber(req.now_ms)
local window = tonumber(req.window_ms)

local function has_user(u) return u ~= nil and u ~= cjson.null and u ~= '' end

-- Refuse the whole batch before writing anything if a key has the wrong type: a Redis
-- script is not rolled back, and half an item applied would be counted again on retry.
local expect = {}
local function want(key, typ) expect[key] = typ end
for _, it in ipairs(req.items) do
  want(it.p .. '_telmon/PROCESSED', 'zset')
  want(it.p, 'hash')
  if it.k == 't4tc' then
    want(it.p .. 'EVENT_BUFFER', 'zset'); want(it.p .. 'USERS', 'set')
    want(it.p .. '_telmon/EVENT_BUFFER_SUM', 'string')
    for _, f in ipairs({'jobs_completed', 'cpuusage', 'diskusage', 'events', 'jobs_failed'}) do
      want(it.p .. 'PER_USER/' .. f, 'zset')
    end
  else
    want(it.p .. 'PER_STATION/arrivals', 'zset'); want(it.p .. 'PER_STATION/entries', 'zset')
    want(it.p .. 'PER_FEED/arrivals', 'zset'); want(it.p .. 'LAST_ARRIVAL', 'zset')
  end
end
for _, p in ipairs(req.rates) do
  want(p, 'hash'); want(p .. 'EVENT_BUFFER', 'zset'); want(p .. '_telmon/EVENT_BUFFER_SUM', 'string')
end
for key, typ in pairs(expect) do
  local t = redis.call('TYPE', key).ok
  if t ~= 'none' and t ~= typ then
    return redis.error_reply('WRONGTYPE telmon: ' .. key .. ' is a ' .. t .. ', expected a ' .. typ)
  end
end

local function member_events(m)
  -- '<jobid>_<events>_<suffix>': the events are the second field from the end
  local parts = {}
  for piece in string.gmatch(m, '[^_]+') do parts[#parts + 1] = piece end
  return tonumber(parts[#parts - 1] or '0') or 0
end

local function ensure_sum(p)
  -- A buffer left by the old daemon (or a lost sum key) is summed once, here.
  local sumkey = p .. '_telmon/EVENT_BUFFER_SUM'
  if redis.call('EXISTS', sumkey) == 0 then
    local total = 0
    for _, m in ipairs(redis.call('ZRANGE', p .. 'EVENT_BUFFER', 0, -1)) do total = total + member_events(m) end
    redis.call('SET', sumkey, string.format('%d', total))
  end
end

local function apply_job(it)
  local p, u = it.p, it.user
  redis.call('HINCRBY', p, 'jobs_completed', 1)
  if has_user(u) then
    redis.call('ZINCRBY', p .. 'PER_USER/jobs_completed', 1, u)
    if it.cpu then redis.call('ZINCRBY', p .. 'PER_USER/cpuusage', it.cpu, u) end
    if it.disk then redis.call('ZINCRBY', p .. 'PER_USER/diskusage', it.disk, u) end
  end
  if it.ok then
    redis.call('HINCRBY', p, 'events', it.events)
    if has_user(u) then redis.call('ZINCRBY', p .. 'PER_USER/events', it.events, u) end
    ensure_sum(p)
    if redis.call('ZADD', p .. 'EVENT_BUFFER', it.t, it.member) == 1 then
      redis.call('INCRBY', p .. '_telmon/EVENT_BUFFER_SUM', it.events)
    end
  else
    redis.call('HINCRBY', p, 'jobs_failed', 1)
    if has_user(u) then redis.call('ZINCRBY', p .. 'PER_USER/jobs_failed', 1, u) end
  end
  if has_user(u) and redis.call('SADD', p .. 'USERS', u) == 1 then
    -- new for a day from when the archive arrived (a replay does not make it new again)
    local key = p .. 'NEW_USERS/' .. u
    redis.call('SET', key, it.t)
    redis.call('PEXPIREAT', key, string.format('%d', tonumber(it.t) + tonumber(req.ttl_ms)))
  end
end

local function apply_arrival(it)
  local p = it.p
  redis.call('HINCRBY', p, 'arrivals', 1)
  redis.call('HINCRBY', p, 'entries', it.entries)
  redis.call('ZINCRBY', p .. 'PER_STATION/arrivals', 1, it.station)
  redis.call('ZINCRBY', p .. 'PER_STATION/entries', it.entries, it.station)
  redis.call('ZINCRBY', p .. 'PER_FEED/arrivals', 1, it.feed)
  local last = redis.call('ZSCORE', p .. 'LAST_ARRIVAL', it.station)
  if not last or tonumber(last) < tonumber(it.t) then
    redis.call('ZADD', p .. 'LAST_ARRIVAL', it.t, it.station)
  end
end

local applied = 0
local rate_prefixes = {}
for _, p in ipairs(req.rates) do rate_prefixes[p] = true end
for _, it in ipairs(req.items) do
  local done = it.p .. '_telmon/PROCESSED'
  if not redis.call('ZSCORE', done, it.id) then
    if it.k == 't4tc' then apply_job(it); rate_prefixes[it.p] = true else apply_arrival(it) end
    redis.call('ZADD', done, now, it.id)
    applied = applied + 1
  end
end
local seen_done = {}
for _, it in ipairs(req.items) do
  local done = it.p .. '_telmon/PROCESSED'
  if not seen_done[done] then
    seen_done[done] = true
    redis.call('ZREMRANGEBYSCORE', done, '-inf', '(' .. (now - tonumber(req.keep_ms)))
  end
end

-- event_rate over (now - window, now]: drop older buffer members from the running sum.
for p, _ in pairs(rate_prefixes) do
  ensure_sum(p)
  local buf, sumkey = p .. 'EVENT_BUFFER', p .. '_telmon/EVENT_BUFFER_SUM'
  local cutoff = now - window
  local gone = 0
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', buf, '-inf', cutoff)) do gone = gone + member_events(m) end
  if gone ~= 0 then redis.call('DECRBY', sumkey, string.format('%d', gone)) end
  redis.call('ZREMRANGEBYSCORE', buf, '-inf', cutoff)
  local total = tonumber(redis.call('GET', sumkey) or '0')
  redis.call('HSET', p, 'event_rate', string.format('%.17g', total / (window / 1000)))
end
return applied
"""


@dataclass(slots=True)
class RedisLayout:
    """Where and how arrivals are counted; times in seconds."""

    t4tc_prefix: str = "T4TC_MONITOR/TOTAL/"
    arrivals_prefix: str = "telmon/arrivals/"
    rate_window: float = 600.0
    new_user_ttl: float = 86400.0
    processed_keep: float = 30 * 86400.0


def _number(value: Any) -> str | None:
    """A cpu/disk usage Redis can add (monitor.py's RepresentsFloat), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if f != f or f in (float("inf"), float("-inf")):
        return None
    return str(value)


def redis_item(msg: dict[str, Any], layout: RedisLayout) -> dict[str, Any]:
    """What the Lua script needs from one outbox message. Counts are sent as text so Lua's
    doubles never round them."""
    t_ms = int(round(float(msg["received_at"]) * 1000))
    if msg.get("format") == "jobarchive":
        job = msg.get("job") or {}
        ok = job.get("exitcode") == 0
        events = int(job.get("events") or 0) if ok else 0
        jobid = str(job.get("jobid", "unknown")).replace("_", "-")
        item = {
            "k": "t4tc", "p": layout.t4tc_prefix, "id": msg["id"], "t": str(t_ms), "ok": ok,
            "user": msg.get("user"), "events": str(events),
            "cpu": _number(job.get("cpuusage")), "disk": _number(job.get("diskusage")),
            # monitor.py's '<jobid>_<events>_<16 random chars>', with the archive's hash as
            # the 16 chars, so that a replay writes the same member
            "member": f"{jobid}_{events}_{msg['sha256'][:16].upper()}",
        }
        # JSON null decodes to a truthy value in Lua: leave absent fields out instead
        return {k: v for k, v in item.items() if v is not None}
    return {
        "k": "arrivals", "p": layout.arrivals_prefix, "id": msg["id"], "t": str(t_ms),
        "station": str(msg.get("station")), "feed": str(msg.get("feed")), "entries": str(int(msg.get("entries") or 0)),
    }


class RedisStats:
    """Applies messages to one Redis server with the Lua script; thread-safe (redis-py pools)."""

    def __init__(self, client: redis_lib.Redis, layout: RedisLayout | None = None) -> None:
        self.client = client
        self.layout = layout or RedisLayout()
        self._script = client.register_script(APPLY_LUA)

    @classmethod
    def from_url(cls, url: str, layout: RedisLayout | None = None, *, timeout: float = 10.0) -> RedisStats:
        client = redis_lib.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, layout)

    def apply(self, messages: Sequence[dict[str, Any]], *, now: float, refresh_rate: bool = False) -> int:
        """Count ``messages`` (outbox bodies) not counted before; returns how many were new.
        Raises redis.RedisError when Redis cannot be reached or refuses (nothing half-applied)."""
        lay = self.layout
        req = {
            "now_ms": int(now * 1000),
            "window_ms": int(lay.rate_window * 1000),
            "ttl_ms": int(lay.new_user_ttl * 1000),
            "keep_ms": int(lay.processed_keep * 1000),
            "rates": [lay.t4tc_prefix] if refresh_rate else [],
            "items": [redis_item(m, lay) for m in messages],
        }
        return int(self._script(args=[orjson.dumps(req)]))

    def refresh_rate(self, *, now: float) -> None:
        """Trim the event buffer and recompute event_rate (so it decays when jobs stop)."""
        self.apply([], now=now, refresh_rate=True)

    def close(self) -> None:
        self.client.close()


@dataclass
class RelayStats:
    delivered: int = 0
    skipped: int = 0  # already counted (a replay after a crash)
    batches: int = 0
    failures: int = 0
    connected: bool = False
    last_error: str | None = None


class RedisRelay:
    """Drains the ``redis`` outbox rows into Redis, in order, in batches; one daemon thread."""

    def __init__(self, outbox: Outbox, stats: RedisStats, *, batch: int = 500, poll: float = 0.25,
                 rate_interval: float = 5.0, retry_max: float = 30.0,
                 now: Callable[[], float] = time.time) -> None:
        self.outbox = outbox
        self.redis = stats
        self.batch = batch
        self.poll = poll
        self.rate_interval = rate_interval
        self.retry_max = retry_max
        self.now = now
        self.stats = RelayStats()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="telmon-sink-redis", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the batch in hand; undelivered rows stay in the outbox for next time."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def drain_once(self) -> int:
        """Deliver one batch; returns how many rows it took (0 when the outbox is empty)."""
        rows = self.outbox.pending(SINK, limit=self.batch)
        if not rows:
            return 0
        self._deliver(rows)
        return len(rows)

    def _deliver(self, rows: list[OutboxRow]) -> None:
        now = self.now()
        applied = self.redis.apply([r.body() for r in rows], now=now)
        self.outbox.delivered(SINK, [r.id for r in rows], now=now)
        st = self.stats
        st.batches += 1
        st.delivered += len(rows)
        st.skipped += len(rows) - applied
        st.connected = True

    def _run(self) -> None:
        delay = 0.5
        next_rate = 0.0
        while not self._stop.is_set():
            try:
                took = self.drain_once()
                if took == 0 and self.rate_interval > 0 and self.now() >= next_rate:
                    self.redis.refresh_rate(now=self.now())
                    next_rate = self.now() + self.rate_interval
                delay = 0.5
            except redis_lib.RedisError as exc:
                self._failed(exc)
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            except Exception as exc:  # noqa: BLE001 - the relay thread must survive a bad row
                log.exception("redis relay failed")
                self._failed(exc)
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if took < self.batch:
                self._wake.wait(self.poll)
                self._wake.clear()

    def _failed(self, exc: Exception) -> None:
        st = self.stats
        st.failures += 1
        st.connected = False
        msg = f"{type(exc).__name__}: {exc}"
        if msg != st.last_error:
            log.warning("redis sink cannot deliver (will retry): %s", msg)
        st.last_error = msg
        try:
            self.outbox.failed(SINK, msg, now=self.now())
        except Exception:  # noqa: BLE001 - the store may be the thing failing
            log.exception("cannot record the redis sink error")
