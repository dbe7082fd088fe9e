"""The host agent: psutil snapshots posted in batches, spooled on disk while the receiver is away.

``telmon agent --this-host NAME --publish URL`` takes a snapshot every interval (CPU total and
per core, load, memory, swap, disk usage per mount and I/O per device, network bytes, packets,
errors and drops per interface, process count), appends it to the spool and sends the oldest
spooled snapshots in batches.  A snapshot leaves the spool only when the receiver
acknowledged it (2xx), so an outage costs nothing until the spool's bound is reached (then
the oldest are dropped and counted).  SIGTERM/SIGINT end the loop after the current step.

Where it sends: ``http://host:port`` (or ``.../api/v1/samples``) posts native host snapshots
(one request per batch); a URL ending in ``/api/perf`` speaks Lizmon (one post per snapshot),
so the agent also feeds an old Lizmon receiver.  Inside ``telmon serve`` it writes straight
into the server's push writer instead (no HTTP, no spool needed).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from telmon.push.samples import SampleBatch, parse_native
from telmon.push.spool import Spool

log = logging.getLogger("telmon.push.agent")

_UNSAFE = re.compile(r"[\s*?\[\]/\\]+")
_SKIP_FS = {"squashfs", "iso9660", "udf"}
_SKIP_DEV = ("loop", "ram", "zram")


def _safe(part: str) -> str:
    """A device or mount name as one dot-free label part."""
    part = _UNSAFE.sub("_", part.strip("/")).replace(".", "_").strip("_")
    return part or "root"


class Collector:
    """Snapshots of this host as ``label -> number``.  Counters (disk I/O, network) are sent
    as per-second rates over the time since the previous snapshot, so the first snapshot has
    none; a counter that went backwards (a reset) gives no rate that time."""

    def __init__(self, psutil_module: Any = None) -> None:
        if psutil_module is None:
            import psutil as psutil_module
        self.ps = psutil_module
        self._last: dict[str, tuple[float, dict[str, float]]] = {}
        # the first cpu_percent() call has nothing to compare with: prime it
        self.ps.cpu_percent(interval=None)
        self.ps.cpu_percent(interval=None, percpu=True)

    def snapshot(self, now: float) -> dict[str, float]:
        ps = self.ps
        out: dict[str, float] = {"cpu.total": float(ps.cpu_percent(interval=None))}
        for i, pct in enumerate(ps.cpu_percent(interval=None, percpu=True)):
            out[f"cpu.core.{i}"] = float(pct)
        try:
            one, five, fifteen = ps.getloadavg()
            out.update({"load.1m": one, "load.5m": five, "load.15m": fifteen})
        except (AttributeError, OSError):
            pass
        vm = ps.virtual_memory()
        out.update({"mem.total": vm.total, "mem.available": vm.available, "mem.used": vm.used,
                    "mem.percent": vm.percent})
        sw = ps.swap_memory()
        out.update({"swap.total": sw.total, "swap.used": sw.used, "swap.percent": sw.percent})
        seen = set()
        for part in ps.disk_partitions(all=False):
            if part.fstype in _SKIP_FS or part.mountpoint in seen:
                continue
            seen.add(part.mountpoint)
            try:
                du = ps.disk_usage(part.mountpoint)
            except OSError:  # gone, or not ours to read
                continue
            name = "root" if part.mountpoint == "/" else _safe(part.mountpoint)
            out.update({f"disk.{name}.total": du.total, f"disk.{name}.used": du.used, f"disk.{name}.free": du.free,
                        f"disk.{name}.percent": du.percent})
        io = ps.disk_io_counters(perdisk=True) or {}
        self._rates(out, "diskio", now, {
            dev: {"read_bytes": c.read_bytes, "write_bytes": c.write_bytes, "reads": c.read_count,
                  "writes": c.write_count}
            for dev, c in io.items() if not dev.startswith(_SKIP_DEV)})
        net = ps.net_io_counters(pernic=True) or {}
        self._rates(out, "net", now, {
            nic: {"bytes_sent": c.bytes_sent, "bytes_recv": c.bytes_recv, "packets_sent": c.packets_sent,
                  "packets_recv": c.packets_recv, "errin": c.errin, "errout": c.errout, "dropin": c.dropin,
                  "dropout": c.dropout}
            for nic, c in net.items()})
        try:
            out["procs.count"] = len(ps.pids())
        except OSError:
            pass
        return {k: float(v) for k, v in out.items()}

    def _rates(self, out: dict[str, float], group: str, now: float, counters: dict[str, dict[str, float]]) -> None:
        for dev, values in counters.items():
            key = f"{group}:{dev}"
            prev = self._last.get(key)
            self._last[key] = (now, values)
            if prev is None or now <= prev[0]:
                continue
            elapsed = now - prev[0]
            for name, v in values.items():
                delta = v - prev[1].get(name, v)
                if delta >= 0:
                    out[f"{group}.{_safe(dev)}.{name}_per_s"] = delta / elapsed


class SendError(Exception):
    def __init__(self, message: str, *, status: int | None = None, retry: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry  # False: re-sending the same batch cannot succeed


class Sender(Protocol):
    def send(self, items: Sequence[bytes]) -> None: ...
    def close(self) -> None: ...


class HttpSender:
    """Native ingest (``/api/v1/samples``) or Lizmon (``/api/perf``) over HTTP."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        import httpx

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"--publish needs an http(s) URL, got {url!r}")
        path = parts.path.rstrip("/")
        self.lizmon = path.endswith("/api/perf")
        if not self.lizmon and not path.endswith("/api/v1/samples"):
            path += "/api/v1/samples"
        self.url = f"{parts.scheme}://{parts.netloc}{path}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)

    def send(self, items: Sequence[bytes]) -> None:
        import httpx

        try:
            if self.lizmon:
                for raw in items:
                    item = orjson.loads(raw)
                    self._check(self.client.post(f"{self.url}/{item['host']}/{int(item['time'])}",
                                                 content=orjson.dumps(item["values"]),
                                                 headers={"Content-Type": "application/json"}))
            else:
                body = b"[" + b",".join(items) + b"]"
                self._check(self.client.post(self.url, content=body, headers={"Content-Type": "application/json"}))
        except httpx.HTTPError as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from None

    @staticmethod
    def _check(resp: Any) -> None:
        if resp.status_code < 300:
            return
        try:
            message = resp.json().get("error", resp.text)
        except ValueError:
            message = resp.text[:200]
        # 400: the batch itself is bad; 401/403: keep it (a token fix lets it through); 413: split it
        raise SendError(f"HTTP {resp.status_code}: {message}", status=resp.status_code,
                        retry=resp.status_code not in (400, 422))

    def close(self) -> None:
        self.client.close()


class DirectSender:
    """Into a PushWriter of the same process (the agent inside ``telmon serve``)."""

    def __init__(self, writer: Any, *, now: Callable[[], float] = time.time) -> None:
        self.writer = writer
        self.now = now

    def send(self, items: Sequence[bytes]) -> None:
        from telmon.push.writer import Job

        batch: SampleBatch = parse_native(b"[" + b",".join(items) + b"]", now=self.now())
        try:
            self.writer.write_sync(Job(batch), timeout=60)
        except Exception as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        pass


@dataclass(slots=True)
class AgentStats:
    collected: int = 0
    sent: int = 0
    send_failures: int = 0
    discarded: int = 0  # refused by the receiver as bad (400): re-sending cannot help
    last_error: str | None = None
    collected_times: list[float] = field(default_factory=list)  # kept only with keep_times (tests)


class Agent:
    def __init__(self, host: str, sender: Sender, spool: Spool, *, interval: float = 10.0, batch: int = 60,
                 batch_bytes: int = 1024 * 1024, collector: Collector | None = None,
                 now: Callable[[], float] = time.time, keep_times: bool = False) -> None:
        from telmon.push.samples import check_host_name

        self.host = check_host_name(host, "--this-host")
        self.sender = sender
        self.spool = spool
        self.interval = float(interval)
        self.batch = max(1, int(batch))
        self.batch_bytes = int(batch_bytes)
        self.collector = collector or Collector()
        self.now = now
        self.keep_times = keep_times
        self.stats = AgentStats()
        self.stop_event = threading.Event()
        self._batch_now = self.batch

    def collect(self) -> None:
        """Take one snapshot into the spool."""
        t = self.now()
        values = self.collector.snapshot(t)
        # the spool's own state travels with the data, so the receiver sees an outage's cost
        values["agent.spool.pending"] = float(len(self.spool))
        values["agent.spool.dropped"] = float(self.spool.dropped)
        self.spool.add(orjson.dumps({"host": self.host, "time": t, "values": values}))
        self.stats.collected += 1
        if self.keep_times:
            self.stats.collected_times.append(t)

    def flush(self, deadline: float | None = None) -> bool:
        """Send spooled snapshots, oldest first, until the spool is empty (True), a send fails
        or ``deadline`` (monotonic) passes (False)."""
        while len(self.spool):
            if deadline is not None and time.monotonic() > deadline:
                return False
            entries = self.spool.oldest(self._batch_now, self.batch_bytes)
            if not entries:
                return True
            seqs = [s for s, _ in entries]
            try:
                self.sender.send([data for _, data in entries])
            except SendError as exc:
                self.stats.last_error = str(exc)
                if exc.status == 413 and len(entries) > 1:
                    self._batch_now = max(1, len(entries) // 2)  # the receiver's body limit: smaller batches
                    continue
                if not exc.retry or exc.status == 413:
                    log.error("receiver refused %d snapshot(s) for good: %s", len(entries), exc)
                    self.spool.remove(seqs)
                    self.stats.discarded += len(entries)
                    continue
                self.stats.send_failures += 1
                log.warning("receiver unreachable, %d snapshot(s) spooled: %s", len(self.spool), exc)
                return False
            self.spool.remove(seqs)
            self.stats.sent += len(entries)
        return True

    def run(self, *, max_snapshots: int | None = None) -> AgentStats:
        """Collect and send until ``stop()`` (or ``max_snapshots``); then one last short try
        to send what is spooled (the rest waits in the spool for the next start)."""
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            try:
                self.collect()
            except Exception as exc:  # a broken sensor reading must not end the agent
                self.stats.last_error = f"collect: {type(exc).__name__}: {exc}"
                log.exception("collecting a snapshot failed")
            self.flush(deadline=time.monotonic() + max(self.interval, 1.0))
            if max_snapshots is not None and self.stats.collected >= max_snapshots:
                break
            next_at += self.interval
            now_m = time.monotonic()
            if next_at < now_m:  # fell behind (a slow send): skip the missed ticks
                next_at = now_m
            self.stop_event.wait(next_at - now_m)
        self.flush(deadline=time.monotonic() + min(5.0, self.interval))
        self.sender.close()
        return self.stats

    def stop(self) -> None:
        self.stop_event.set()


def default_spool_dir(host: str) -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "telmon", f"agent-{_safe(host)}")
