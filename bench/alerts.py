"""Benchmark: one alert evaluation pass over a network of stations (issue 9).

Registers N hourly stations (a CSV registry through the schedule import), records H hours of
reports through the store's real write path with the slot recorder (one file per hour holding
every station's message, as an LRGS file does), with 5 % of the stations silent for the last
six hours and 10 % missing one slot in three.  Then times evaluation passes of

  * fleet      - one silence rule and one completeness rule, each over all N stations
  * per-station - one silence rule and one completeness rule per station (2 N rules, each naming
                 its station)

each as the first pass (every alert new: all transitions and notifications written) and as a
steady pass (nothing changes), and, in the same run, the baseline of asking per station (the
station row, then that station's completeness), timed on a sample and scaled to N.

    python bench/alerts.py [--stations 10000] [--hours 26] [--passes 5] [--json bench/out/alerts.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telmon.alerts import db  # noqa: E402
from telmon.alerts.evaluator import Evaluator  # noqa: E402
from telmon.alerts.rules import parse_rules  # noqa: E402
from telmon.alerts.settings import AlertSettings  # noqa: E402
from telmon.model import Entry, Unit  # noqa: E402
from telmon.schedule import query as sq  # noqa: E402
from telmon.schedule.settings import ScheduleSettings  # noqa: E402
from telmon.schedule.store import SlotRecorder, ensure_schema  # noqa: E402
from telmon.store.base import FileRecord  # noqa: E402
from telmon.store.sqlite import SQLiteStore  # noqa: E402

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z, a slot start
HOUR = 3600.0
SETTINGS = AlertSettings(alert_webhooks=["bench=http://127.0.0.1:9/unused"])


def build(path: Path, n: int, hours: int) -> tuple[SQLiteStore, list[str], float]:
    store = SQLiteStore(path)
    ensure_schema(store)
    store.record_hooks.append(SlotRecorder(ScheduleSettings()))
    codes = [f"B{i:06d}" for i in range(n)]
    reg = path.parent / "stations.csv"
    reg.write_text("id,name,interval,first,window\n" + "".join(f"{c},bench {c},1h,0,300\n" for c in codes))
    sq.import_file(store, reg, now=T0 - (hours + 1) * HOUR)
    silent = set(codes[: n // 20])  # 5 %: nothing for the last six hours
    gappy = codes[n // 20: n // 20 + n // 10]  # 10 %: every third slot missing
    gap_set = set(gappy)
    for h in range(hours, -1, -1):
        slot = T0 - h * HOUR
        units = []
        for i, c in enumerate(codes):
            if c in silent and h < 6:
                continue
            if c in gap_set and (h + i) % 3 == 0:
                continue
            units.append(Unit(c, [Entry(slot, {"stage": 1.0})], message_time=slot))
        rec = FileRecord(f"/bench/hour-{h}.lrgs", "GOES", len(units) * 80, int((slot + 60) * 1e9), f"hour{h}",
                         slot + 60, "lrgs", units)
        store.record_files([rec], now=slot + 60)
    return store, codes, T0 + 30 * 60


def timed_passes(store: SQLiteStore, rules: list[dict[str, Any]], now: float, passes: int) -> dict[str, Any]:
    db.ensure_schema(store)
    with store.transaction() as conn:  # a clean slate for each configuration
        conn.execute("DELETE FROM alert_state")
        conn.execute("DELETE FROM alert_events")
        conn.execute("DELETE FROM alert_notifications")
    t = time.perf_counter()
    parsed = parse_rules(rules)
    ev = Evaluator(store, parsed, SETTINGS)
    setup = time.perf_counter() - t
    first = ev.evaluate(now)
    steady = [ev.evaluate(now + 30 * (i + 1)) for i in range(passes)]
    secs = [r.seconds for r in steady]
    return {
        "rules": len(parsed), "setup_s": round(setup, 4),
        "first_pass_s": round(first.seconds, 4), "first_pass_changes": first.changed,
        "first_pass_notifications": first.notifications,
        "steady_pass_s": {"median": round(statistics.median(secs), 4), "max": round(max(secs), 4)},
        "firing": steady[-1].firing, "pending": steady[-1].pending, "source_reads": steady[-1].reads,
        "queued_notifications": len(db.notifications(store, limit=10_000)),
    }


def per_station_baseline(store: SQLiteStore, codes: list[str], now: float, sample: int) -> dict[str, Any]:
    """The naive way: for each station, read its row, then its own completeness."""
    settings = ScheduleSettings()
    picked = codes[:: max(1, len(codes) // sample)][:sample]
    t = time.perf_counter()
    silent = low = 0
    for c in picked:
        row = store.station(c)
        if row and (row["last_arrival_at"] is None or now - row["last_arrival_at"] > 2 * HOUR):
            silent += 1
        comp = sq.completeness(store, [c], now - 86400, now, now=now, settings=settings)["stations"]
        if comp and comp[0]["completeness"] is not None and comp[0]["completeness"] < 90:
            low += 1
    secs = time.perf_counter() - t
    return {"sample": len(picked), "sample_s": round(secs, 4), "scaled_to_all_s": round(secs * len(codes) / len(picked), 3),
            "silent_in_sample": silent, "low_in_sample": low}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", type=int, default=10_000)
    ap.add_argument("--hours", type=int, default=26)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--baseline-sample", type=int, default=500)
    ap.add_argument("--json", default=str(Path(__file__).parent / "out" / "alerts.json"))
    ap.add_argument("--dir", default=None, help="Work folder (default: a temporary one, removed after).")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    work = Path(args.dir or tempfile.mkdtemp(prefix="telmon-bench-alerts-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        store, codes, now = build(work / "telmon.db", args.stations, args.hours)
        built = time.perf_counter() - t
        print(f"built {args.stations} stations x {args.hours + 1} hourly reports in {built:.1f}s")
        fleet = timed_passes(store, [
            {"name": "silent", "kind": "silence", "after": "2h"},
            {"name": "complete", "kind": "completeness", "span": "24h", "below": 90},
        ], now, args.passes)
        per_rules: list[dict[str, Any]] = []
        for c in codes:
            per_rules.append({"name": f"silent-{c}", "kind": "silence", "after": "2h", "subjects": [c]})
            per_rules.append({"name": f"complete-{c}", "kind": "completeness", "span": "24h", "below": 90,
                              "subjects": [c]})
        per_station = timed_passes(store, per_rules, now, args.passes)
        baseline = per_station_baseline(store, codes, now, args.baseline_sample)
        store.close()
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "stations": args.stations, "hours": args.hours, "build_s": round(built, 2),
        "fleet": fleet, "per_station": per_station, "baseline_per_station_queries": baseline,
        "ratio_baseline_to_fleet_steady": round(baseline["scaled_to_all_s"] / fleet["steady_pass_s"]["median"], 1),
        "target_s": 1.0,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1m_before": load_before, "load_average_1m_after": os.getloadavg()[0]},
        "command": "python " + " ".join(["bench/alerts.py", *sys.argv[1:]]),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    for label, r in (("fleet (2 rules)", fleet), (f"per station ({per_station['rules']} rules)", per_station)):
        print(f"{label:28}: first pass {r['first_pass_s']:.3f}s ({r['first_pass_changes']} alerts written, "
              f"{r['first_pass_notifications']} notifications), steady pass median {r['steady_pass_s']['median']:.3f}s "
              f"max {r['steady_pass_s']['max']:.3f}s; firing {r['firing']}, source reads per pass {r['source_reads']}")
    print(f"{'baseline (query per station)':28}: {baseline['sample_s']:.3f}s for {baseline['sample']} stations, "
          f"~{baseline['scaled_to_all_s']:.1f}s for all")
    print(f"ratio baseline / fleet steady: {result['ratio_baseline_to_fleet_steady']}x   (target < 1 s per pass; "
          f"load average {load_before:.2f} before, {result['machine']['load_average_1m_after']:.2f} after, "
          f"{os.cpu_count()} CPUs)")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
