"""Realistic Sundew ``tx_``/``rx_`` log text with its ground truth, for tests and the benchmark.

The line shapes are those of the real excerpts (tests/data/samples/metpx): batches announced by
"N new bulletins will be sent" / "N bulletins will be ingested", delivered and ingested
products with ``(N Bytes)`` and the seven colon fields, suppressed duplicates, receiver
"Queued for:" lines, errors with and without a product (some followed by a traceback), and
lines the parser must skip (``/sec``, `` Segment ``, ``SEND TIMEOUT``, connection notices).
The truth is what a correct parser must count: every number comes from what was written, so
a test compares totals exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

TYPES = ("SA", "SM", "SI", "FT", "WW", "SN", "RADAR", "GIF")
_TYPE_WEIGHTS = np.array([30, 25, 10, 10, 8, 7, 6, 4], dtype=np.float64) / 100
SOURCES = ("file", "localhost", "URP", "cmc")

# event kinds in Truth.kind (same codes as telmon.formats.metpx)
TRANSFER, DUPLICATE, ERROR = 0, 1, 2


@dataclass(slots=True)
class Truth:
    """What was written that counts: one row per transfer, duplicate or error line."""

    kind: list[int] = field(default_factory=list)
    log_ms: list[int] = field(default_factory=list)  # UTC epoch milliseconds
    ptype: list[str] = field(default_factory=list)  # "_" for an error that names no product
    nbytes: list[int] = field(default_factory=list)
    latency_ms: list[int] = field(default_factory=list)  # log time - reception stamp
    lines: int = 0  # every line written, skipped ones included

    def extend(self, other: Truth) -> None:
        for name in ("kind", "log_ms", "ptype", "nbytes", "latency_ms"):
            getattr(self, name).extend(getattr(other, name))
        self.lines += other.lines

    def totals(self, max_latency: float = 15.0) -> dict[str, float]:
        k = np.array(self.kind, dtype=np.int64)
        lat = np.array(self.latency_ms, dtype=np.int64)
        tr = k == TRANSFER
        return {
            "files": int(tr.sum()),
            "bytes": int(np.array(self.nbytes, dtype=np.int64)[tr].sum()) if tr.any() else 0,
            "errors": int((k == ERROR).sum()),
            "duplicates": int((k == DUPLICATE).sum()),
            "over_max": int((lat[tr] > max_latency * 1000).sum()),
            "latency_sum_ms": int(lat[tr].sum()) if tr.any() else 0,
        }

    def latencies(self) -> np.ndarray:
        k = np.array(self.kind, dtype=np.int64)
        return np.array(self.latency_ms, dtype=np.int64)[k == TRANSFER] / 1000.0


class _Clock:
    """Log timestamps in a fixed-offset zone, formatted once per second (lines come in order)."""

    def __init__(self, offset_s: int) -> None:
        self.offset_s = offset_s
        self._sec = -1
        self._text = ""

    def text(self, utc_ms: int) -> str:
        sec, ms = divmod(utc_ms, 1000)
        if sec != self._sec:
            self._sec = sec
            self._text = datetime.fromtimestamp(sec + self.offset_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        return f"{self._text},{ms:03d}"


def _stamp(sec: int) -> str:
    return datetime.fromtimestamp(sec, timezone.utc).strftime("%Y%m%d%H%M%S")


def client_log(direction: str, client: str, start: float, seconds: float, lines: int, *, seed: int = 0,
               zone_offset_s: int = 0, error_rate: float = 0.004, dup_rate: float = 0.05,
               slow_rate: float = 0.03) -> tuple[bytes, Truth]:
    """About ``lines`` log lines of one client (``direction`` "tx" or "rx") spread over
    [start, start + seconds) UTC, written in a zone ``zone_offset_s`` from UTC.
    Returns the text and its truth."""
    rng = np.random.default_rng(seed)
    clock = _Clock(zone_offset_s)
    truth = Truth()
    out: list[str] = []
    # batch arrival times, then a few milliseconds per line inside a batch
    batches = max(1, lines // (4 if direction == "tx" else 7))  # enough; the loop stops at ``lines``
    t0 = int(start * 1000)
    times = np.sort(rng.integers(t0, t0 + int(seconds * 1000), batches))
    sizes = rng.integers(1, 8, batches)
    n_types = rng.choice(len(TYPES), size=int(sizes.sum()) + 1, p=_TYPE_WEIGHTS)
    lat_ms = np.where(rng.random(len(n_types)) < slow_rate, rng.integers(15_000, 180_000, len(n_types)),
                      (rng.exponential(1.5, len(n_types)) * 1000).astype(np.int64))
    sizes_b = np.clip(rng.lognormal(7.5, 1.3, len(n_types)), 20, 5_000_000).astype(np.int64)
    coin = rng.random((len(n_types), 3))
    j = 0
    seq = 0
    for b in range(batches):
        if len(out) >= lines:
            break
        ms = int(times[b])
        if direction == "tx":
            out.append(f"{clock.text(ms)} [INFO] {sizes[b]} new bulletins will be sent\n")
        else:
            out.append(f"{clock.text(ms)} [INFO] {sizes[b]} bulletins will be ingested\n")
        truth.lines += 1
        for _ in range(int(sizes[b])):
            ms += int(coin[j, 2] * 3)  # 0-2 ms apart: several lines share a millisecond
            tt = TYPES[int(n_types[j])]
            src = SOURCES[seq % len(SOURCES)]
            seq += 1
            stamp_s = (ms - int(lat_ms[j])) // 1000
            latency = ms - stamp_s * 1000
            name = f"{tt}CN{seq % 90 + 10}_CWAO_{seq % 999999:06d}___{seq % 100000:05d}"
            product = f"{name}:{src}:CWAO:{tt}:3:Direct:{_stamp(stamp_s)}"
            ts = clock.text(ms)
            if coin[j, 0] < error_rate:
                if coin[j, 1] < 0.5:
                    out.append(f"{ts} [ERROR] {product} could not be delivered: Connection reset by peer\n")
                    truth.ptype.append(tt)
                else:
                    out.append(f"{ts} [ERROR] Connection lost with host pxatx (timeout)\n")
                    out.append("Traceback (most recent call last):\n")
                    out.append('  File "/apps/px/lib/senderWMO.py", line 210, in send\n')
                    truth.lines += 2
                    truth.ptype.append("_")
                truth.kind.append(ERROR)
                truth.log_ms.append(ms)
                truth.nbytes.append(0)
                truth.latency_ms.append(0)
            elif direction == "tx" and coin[j, 0] < error_rate + dup_rate:
                out.append(f"{ts} [INFO] suppressed duplicate send {name}\\:{product[len(name) + 1:]}\n")
                truth.kind.append(DUPLICATE)
                truth.log_ms.append(ms)
                truth.ptype.append(tt)
                truth.nbytes.append(0)
                truth.latency_ms.append(0)
            else:
                nb = int(sizes_b[j])
                if direction == "tx":
                    src_part = product.replace(f"{name}:{src}:", f"{name}:{src}\\:", 1)
                    out.append(f"{ts} [INFO] ({nb} Bytes) Bulletin {src_part}  delivered\n")
                else:
                    day = datetime.fromtimestamp(stamp_s, timezone.utc).strftime("%Y%m%d")
                    out.append(f"{ts} [INFO] ({nb} Bytes) Ingested in DB as /apps/px/db/{day}/{tt}/{src}/CWAO/{product}\n")
                    out.append(f"{ts} [INFO] Queued for: {client} archive\n")
                    truth.lines += 1
                truth.kind.append(TRANSFER)
                truth.log_ms.append(ms)
                truth.ptype.append(tt)
                truth.nbytes.append(nb)
                truth.latency_ms.append(latency)
            truth.lines += 1
            j += 1
        if coin[b % len(coin), 1] < 0.01:
            # lines that look like transfers but are not, and plain notices
            ts = clock.text(ms)
            out.append(f"{ts} [INFO] (20480 Bytes) sent in 0.2 sec, 102400.0 Bytes/sec\n")
            out.append(f"{ts} [INFO] (512 Bytes) Segment 2 of 4 of {name}:{src}:CWAO:SA:3:Direct:{_stamp(ms // 1000)}\n")
            out.append(f"{ts} [WARNING] SEND TIMEOUT (30 s) on socket, retrying\n")
            out.append(f"{ts} [INFO] Connexion established with pxatx\n")
            truth.lines += 4
    return "".join(out).encode(), truth


def file_truth(text: bytes, zone_offset_s: int = 0) -> Truth:
    """The truth of log text written by client_log, recovered line by line with plain string
    operations (an independent reference for the vectorised parser)."""
    truth = Truth()
    for raw in text.decode().splitlines():
        truth.lines += 1
        if len(raw) < 31 or raw[4] != "-" or raw[19] != ",":
            continue
        dt = datetime.strptime(raw[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        ms = int(dt.timestamp() - zone_offset_s) * 1000 + int(raw[20:23])
        level, _, msg = raw[24:].partition("] ")
        fields = None
        words = [w for w in msg.split() if w.count(":") >= 6]
        if words:
            fields = words[-1].replace("\\:", ":").split(":")
        if level == "[ERROR":
            truth.kind.append(ERROR)
            truth.ptype.append(fields[-4] if fields else "_")
            truth.log_ms.append(ms)
            truth.nbytes.append(0)
            truth.latency_ms.append(0)
        elif level == "[INFO" and msg.startswith("suppressed duplicate") and fields:
            truth.kind.append(DUPLICATE)
            truth.ptype.append(fields[-4])
            truth.log_ms.append(ms)
            truth.nbytes.append(0)
            truth.latency_ms.append(0)
        elif level == "[INFO" and msg.startswith("(") and " Bytes)" in msg and fields and "/sec" not in msg \
                and " Segment " not in msg and "SEND TIMEOUT" not in msg:
            stamp = datetime.strptime(fields[-1], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc).timestamp()
            truth.kind.append(TRANSFER)
            truth.ptype.append(fields[-4])
            truth.log_ms.append(ms)
            truth.nbytes.append(int(msg[1:msg.index(" ")]))
            truth.latency_ms.append(ms - int(stamp) * 1000)
    return truth
