"""Benchmark: schedule questions at network scale (issue 4).

Registers N hourly stations (a CSV through `telmon stations import`'s library call), loads D days
of hourly entries through the real ingest path (EDL files written to a folder, read, hashed,
sniffed, parsed and committed by Ingestor.ingest with the slot recorder installed), and reports
the ingest rate.  The data has holes: 0.5 % of hours dropped, 0.2 % of reports 10 minutes late
(outside a 5-minute window), and 5 % of stations going silent on a random day.

At a checkpoint (default day 30) and at the end it times, over random windows:
  * missing  - stations with missing slots in one day           (schedule.query.missing)
  * silent   - stations silent since T                          (schedule.query.silent)
  * complete - completeness of 100 stations over 30 days        (schedule.query.completeness)
and, in the same run on the same data, the plain SQL answer over the entries table (a LAG window
query, a GROUP BY max, a GROUP BY count), printing p50 / p95 and the ratio.

    python bench/gaps.py [--stations 10000] [--days 365] [--checkpoint 30] [--windows 100]
                         [--scan-windows 10] [--json bench/out/gaps.json] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telmon.ingest.pipeline import Ingestor  # noqa: E402
from telmon.schedule import query as sq  # noqa: E402
from telmon.schedule.store import SlotRecorder, ensure_schema  # noqa: E402
from telmon.store.sqlite import SQLiteStore  # noqa: E402

T0 = 1_672_531_200  # 2023-01-01T00:00:00Z
HOUR, DAY = 3600, 86400
DROP, LATE, DIE = 0.005, 0.002, 0.05


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


class Network:
    """Deterministic synthetic stations: where they are, when they die, what each day holds."""

    def __init__(self, n: int, days: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.n, self.days = n, days
        self.codes = [f"B{i:06d}" for i in range(n)]
        self.lat = [round(rng.uniform(25, 49), 4) for _ in range(n)]
        self.lon = [round(rng.uniform(-124, -67), 4) for _ in range(n)]
        self.dies = [rng.randrange(1, days) if rng.random() < DIE else days + 1 for _ in range(n)]
        self.seed = seed

    def registry_csv(self) -> str:
        rows = ["id,name,lat,lon,interval,first,window"]
        rows += [f"{c},bench {c},{la},{lo},3600,0,300" for c, la, lo in zip(self.codes, self.lat, self.lon)]
        return "\n".join(rows) + "\n"

    def day_file(self, i: int, day: int) -> str | None:
        if day >= self.dies[i]:
            return None
        rng = random.Random(self.seed * 1_000_003 + i * 7919 + day)
        base = time.gmtime(T0 + day * DAY)
        ymd = time.strftime("%Y/%m/%d", base)
        lines = [f"//STATION {self.codes[i]}", "//DEVICE STAGE", "//OVERWRITE true"]
        for h in range(24):
            r = rng.random()
            if r < DROP:
                continue
            minute = "10" if r < DROP + LATE else "00"
            lines.append(f'"{ymd} {h:02d}:{minute}", {i % 97 + h / 24:.3f}')
        return "\n".join(lines) + "\n"


def load_days(ingestor: Ingestor, net: Network, first: int, last: int, inbox: Path, batch: int) -> tuple[int, int, float]:
    """Write and ingest days [first, last); returns (files, entries, seconds spent ingesting)."""
    files = entries = 0
    spent = 0.0
    for day in range(first, last):
        paths = []
        for i in range(net.n):
            text = net.day_file(i, day)
            if text is None:
                continue
            p = inbox / f"{net.codes[i]}.{day}.edl"
            p.write_text(text)
            paths.append(p)
        t = time.perf_counter()
        for k in range(0, len(paths), batch):
            results = ingestor.ingest([(p, "rsync") for p in paths[k:k + batch]])
            entries += sum(r.entries for r in results)
            bad = [r for r in results if r.status != "ok"]
            if bad:
                raise SystemExit(f"ingest failed: {bad[0].path}: {bad[0].reasons}")
        spent += time.perf_counter() - t
        files += len(paths)
        for p in paths:
            p.unlink()
        if day % 10 == 9 or day == last - 1:
            print(f"  day {day + 1}: {files} files, {entries} entries, {entries / spent:,.0f} entries/s", flush=True)
    return files, entries, spent


def timed(fn: Callable[[], Any], runs: list[float]) -> Any:
    t = time.perf_counter()
    out = fn()
    runs.append((time.perf_counter() - t) * 1000)
    return out


def questions(store: SQLiteStore, net: Network, days: int, windows: int, scan_windows: int, rng: random.Random) -> dict[str, Any]:
    now = T0 + days * DAY + HOUR
    ours: dict[str, list[float]] = {"missing": [], "silent": [], "complete": []}
    scan: dict[str, list[float]] = {"missing": [], "silent": [], "complete": []}
    sizes: dict[str, list[int]] = {"missing": [], "silent": [], "complete": []}
    span30 = min(30, days)
    plan = []
    for _ in range(windows):
        day = rng.randrange(0, days)
        since = T0 + rng.uniform(0, days) * DAY
        start30 = T0 + rng.randrange(0, days - span30 + 1) * DAY
        ids = rng.sample(net.codes, min(100, net.n))
        plan.append((day, since, start30, ids))
    warm: dict[str, list[float]] = {"missing": [], "silent": [], "complete": []}
    # The same windows twice: the first pass reads pages from disk (the store is far larger than
    # the page cache this machine keeps), the second shows the questions with their pages cached.
    for day, since, start30, ids in plan + plan:
        if len(ours["missing"]) == len(plan):
            ours, warm = warm, ours
        a = T0 + day * DAY
        sizes["missing"].append(timed(lambda: sq.missing(store, a, a + DAY, now=now), ours["missing"])["count"])
        sizes["silent"].append(timed(lambda: sq.silent(store, since, now=now), ours["silent"])["count"])
        sizes["complete"].append(timed(lambda: sq.completeness(store, ids, start30, start30 + span30 * DAY, now=now),
                                       ours["complete"])["count"])
    ours, warm = warm, ours  # ours: the first (cold) pass; warm: the repeat
    with store._read() as conn:
        sid = dict(conn.execute("SELECT code, id FROM stations"))
        for day, since, start30, ids in plan[:scan_windows]:
            a = T0 + day * DAY
            timed(lambda: conn.execute(
                "SELECT station_id, count(*) FROM (SELECT station_id, observed_at - lag(observed_at) OVER "
                "(PARTITION BY station_id ORDER BY observed_at) AS d FROM entries "
                "WHERE observed_at >= ? AND observed_at < ?) WHERE d > 5400 GROUP BY station_id",
                (a - HOUR, a + DAY)).fetchall(), scan["missing"])
            timed(lambda: conn.execute(
                "SELECT station_id, max(observed_at) AS m FROM entries GROUP BY station_id HAVING m < ?",
                (since,)).fetchall(), scan["silent"])
            ph = ",".join("?" * len(ids))
            timed(lambda: conn.execute(
                f"SELECT station_id, count(*) FROM entries WHERE station_id IN ({ph}) AND observed_at >= ? "
                "AND observed_at < ? GROUP BY station_id",
                [*(sid[c] for c in ids), start30, start30 + span30 * DAY]).fetchall(), scan["complete"])
    out: dict[str, Any] = {"days": days, "entries": None}
    for q in ours:
        o50, o95 = pct(ours[q], 0.5), pct(ours[q], 0.95)
        s50, s95 = pct(scan[q], 0.5), pct(scan[q], 0.95)
        out[q] = {"p50_ms": round(o50, 3), "p95_ms": round(o95, 3),
                  "warm_p50_ms": round(pct(warm[q], 0.5), 3), "warm_p95_ms": round(pct(warm[q], 0.95), 3),
                  "scan_p50_ms": round(s50, 2),
                  "scan_p95_ms": round(s95, 2), "ratio_p50": round(s50 / o50, 1) if o50 else None,
                  "answer_rows_median": statistics.median(sizes[q]), "windows": len(ours[q]),
                  "scan_windows": len(scan[q])}
    return out


def report(res: dict[str, Any]) -> None:
    print(f"\n  after {res['days']} days ({res['entries']:,} entries):")
    print(f"  {'question':<10} {'p50 ms':>9} {'p95 ms':>9} {'warm p50':>9} {'warm p95':>9} {'scan p50':>10} "
          f"{'scan p95':>10} {'ratio':>8} {'rows':>6}")
    for q in ("missing", "silent", "complete"):
        r = res[q]
        print(f"  {q:<10} {r['p50_ms']:>9.3f} {r['p95_ms']:>9.3f} {r['warm_p50_ms']:>9.3f} {r['warm_p95_ms']:>9.3f} "
              f"{r['scan_p50_ms']:>10.1f} {r['scan_p95_ms']:>10.1f} {r['ratio_p50']:>7}x {r['answer_rows_median']:>6}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--checkpoint", type=int, default=30, help="Also time the questions after this many days.")
    ap.add_argument("--windows", type=int, default=100)
    ap.add_argument("--scan-windows", type=int, default=10, help="Windows for the (slow) plain SQL answers.")
    ap.add_argument("--batch", type=int, default=500, help="Files per ingest transaction (the worker's batch_max).")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "out" / "gaps.json"))
    ap.add_argument("--dir", default=None, help="Where the store goes (default: a temporary folder).")
    ap.add_argument("--keep", action="store_true", help="Keep the store afterwards.")
    ap.add_argument("--reuse", action="store_true",
                    help="Time the questions on the store a --keep run left in --dir (no loading); keeps the "
                         "ingest figures of the --json file it replaces.")
    ap.add_argument("--no-schedule", action="store_true",
                    help="Ingest without the slot recorder (to measure what it costs); skips the questions.")
    args = ap.parse_args()

    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="telmon-bench-gaps-"))
    work.mkdir(parents=True, exist_ok=True)
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
    inbox = Path(tempfile.mkdtemp(prefix="telmon-bench-inbox-", dir=shm))
    net = Network(args.stations, args.days)
    rng = random.Random(11)
    store = SQLiteStore(work / "bench.db")
    ensure_schema(store)
    if not args.no_schedule:
        store.record_hooks.append(SlotRecorder())
    ingestor = Ingestor(store, now=lambda: T0 + args.days * DAY)
    if args.reuse:
        reuse(store, net, args, rng, inbox)
        return
    reg = work / "stations.csv"
    reg.write_text(net.registry_csv())
    t = time.perf_counter()
    imp = sq.import_file(store, reg, now=T0)
    import_s = time.perf_counter() - t
    print(f"registry: {imp['created']} stations imported in {import_s:.1f}s")
    results: dict[str, Any] = {
        "command": " ".join(["python", "bench/gaps.py", *sys.argv[1:]]),
        "stations": args.stations, "days": args.days, "registry_import_s": round(import_s, 2), "checkpoints": [],
    }
    total_files = total_entries = 0
    total_s = 0.0
    try:
        loaded = 0
        for stop in sorted({min(args.checkpoint, args.days), args.days}):
            print(f"loading days {loaded + 1}..{stop} of {args.stations} stations")
            f, e, s = load_days(ingestor, net, loaded, stop, inbox, args.batch)
            total_files, total_entries, total_s = total_files + f, total_entries + e, total_s + s
            loaded = stop
            if args.no_schedule:
                continue
            res = questions(store, net, loaded, args.windows, args.scan_windows, rng)
            res["entries"] = total_entries
            results["checkpoints"].append(res)
            report(res)
        results["ingest"] = {"files": total_files, "entries": total_entries, "seconds": round(total_s, 1),
                             "entries_per_s": round(total_entries / total_s), "files_per_s": round(total_files / total_s)}
        results["db_bytes"] = (work / "bench.db").stat().st_size
        print(f"\ningest: {total_entries:,} entries in {total_files:,} files, {total_s:,.0f}s: "
              f"{total_entries / total_s:,.0f} entries/s, {total_files / total_s:,.0f} files/s")
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out}")
    finally:
        store.close()
        shutil.rmtree(inbox, ignore_errors=True)
        if not args.keep and not args.dir:
            shutil.rmtree(work, ignore_errors=True)


def reuse(store: SQLiteStore, net: Network, args: argparse.Namespace, rng: random.Random, inbox: Path) -> None:
    try:
        out = Path(args.json)
        previous = json.loads(out.read_text()) if out.exists() else {}
        res = questions(store, net, args.days, args.windows, args.scan_windows, rng)
        res["entries"] = previous.get("ingest", {}).get("entries") or store.counts()["entries"]
        report(res)
        kept = [c for c in previous.get("checkpoints", []) if c["days"] != args.days]
        previous.setdefault("command", "")
        previous["checkpoints"] = sorted(kept + [res], key=lambda c: c["days"])
        previous["reused"] = " ".join(["python", "bench/gaps.py", *sys.argv[1:]])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(previous, indent=2) + "\n")
        print(f"wrote {out}")
    finally:
        store.close()
        shutil.rmtree(inbox, ignore_errors=True)


if __name__ == "__main__":
    main()
