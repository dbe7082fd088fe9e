"""Benchmark: files landing in a watched folder, end to end.

Writes N EDL files (24 hourly entries each) into a folder watched by a real telmon Service
(inotify, the SQLite store), from a separate writer process, and reports:
  * files/s from the first write to the last commit;
  * p50/p99 latency from a file's close to its entries being answerable (committed), in the
    burst and in a second run paced at --rate files/s (latency at a sustained rate, not queueing);
and, in the same run, the old way — one `python3` process per file, as `inotifywait |
python3 parse.py` did — with the ratio.

    python bench/arrivals.py [--files 5000] [--baseline-files 100] [--json bench/out/arrivals.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telmon.config import Config, WatchSpec  # noqa: E402
from telmon.service import Service  # noqa: E402

T0 = 1_519_005_600  # 2018-02-19T02:00:00Z


def edl_text(station: int, day: int) -> str:
    lines = ["//SOURCE bench EDL", f"//STATION {10_000_000 + station}", "//DEVICE STAGE", "//OVERWRITE true"]
    base = T0 + day * 86400
    for h in range(24):
        t = time.gmtime(base + h * 3600)
        lines.append(f'"{time.strftime("%Y/%m/%d %H:%M", t)}", {station + day + h / 24:.4f}')
    return "\n".join(lines) + "\n"


def writer(folder: str, n: int, stations: int, out: mp.Queue, rate: float = 0.0) -> None:  # type: ignore[type-arg]
    """Write n files, as fast as possible or paced at ``rate`` files/s; report each one's close time."""
    closes = {}
    t0 = time.time()
    for i in range(n):
        if rate:
            delay = t0 + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        station, day = i % stations, i // stations
        path = os.path.join(folder, f"bench.{station}.{day}.edl")
        with open(path, "w") as fh:
            fh.write(edl_text(station, day))
        closes[path] = time.time()
    out.put(closes)


def bench_telmon(n: int, stations: int, work: Path, rate: float = 0.0) -> dict[str, float]:
    work = work / (f"paced{rate:g}" if rate else "burst")
    work.mkdir()
    inbox = work / "inbox"
    inbox.mkdir()
    cfg = Config()
    cfg.set("data_dir", str(work / "data"))
    cfg.set("reconcile_interval", 0)
    committed: dict[str, float] = {}
    lock = threading.Lock()
    done = threading.Event()

    def on_commit(results: list) -> None:  # type: ignore[type-arg]
        now = time.time()
        with lock:
            for r in results:
                committed.setdefault(r.path, now)
            if len(committed) >= n:
                done.set()

    svc = Service(cfg, on_commit=on_commit)
    svc.add_watch(WatchSpec(str(inbox), "bench"))
    svc.start()
    try:
        q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        start = time.time()
        proc = mp.Process(target=writer, args=(str(inbox), n, stations, q, rate))
        proc.start()
        last_report = 0.0
        while not done.wait(0.5):
            with lock:
                got = len(committed)
            if time.time() - last_report > 2:
                print(f"  telmon: {got}/{n} files committed", file=sys.stderr)
                last_report = time.time()
            if time.time() - start > 600:
                raise SystemExit(f"telmon did not commit all files in 600 s ({got}/{n})")
        closes = q.get()
        proc.join()
        end = max(committed.values())
        lat = sorted(committed[p] - closes[p] for p in closes)
        counts = svc.store.counts()
        assert counts["files"] == n and counts["entries"] == n * 24, counts
    finally:
        svc.close()
    return {
        "files": n,
        "seconds": end - start,
        "files_per_s": n / (end - start),
        "latency_p50_s": statistics.quantiles(lat, n=100)[49],
        "latency_p99_s": statistics.quantiles(lat, n=100)[98],
    }


OLD_PARSER = r'''
import sqlite3, sys
path, db = sys.argv[1], sys.argv[2]
station, rows = None, []
for line in open(path):
    line = line.strip()
    if line.startswith("//STATION"):
        station = line.split()[1]
    elif line.startswith('"'):
        t, v = line.split(",")
        rows.append((station, t.strip('"'), float(v)))
con = sqlite3.connect(db)
con.execute("create table if not exists entries (station, t, v)")
con.executemany("insert into entries values (?,?,?)", rows)
con.commit()
'''


def bench_old_way(n: int, stations: int, work: Path) -> dict[str, float]:
    """One python3 process per file: what `inotifywait -m | while read f; do python3 parse.py $f` cost."""
    folder = work / "old"
    folder.mkdir()
    script = work / "parse.py"
    script.write_text(OLD_PARSER)
    db = work / "old.db"
    paths = []
    for i in range(n):
        p = folder / f"old.{i}.edl"
        p.write_text(edl_text(i % stations, i // stations))
        paths.append(p)
    start = time.time()
    for p in paths:
        subprocess.run([sys.executable, "-S", str(script), str(p), str(db)], check=True)
    seconds = time.time() - start
    return {"files": n, "seconds": seconds, "files_per_s": n / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--stations", type=int, default=500)
    ap.add_argument("--baseline-files", type=int, default=100)
    ap.add_argument("--rate", type=float, default=2000.0,
                    help="files/s of the paced run that measures latency at a sustained rate (0: skip it)")
    ap.add_argument("--json", default="bench/out/arrivals.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="telmon-bench-"))
    try:
        print(f"telmon: {args.files} EDL files x 24 entries into a watched folder ...", file=sys.stderr)
        new = bench_telmon(args.files, args.stations, work)
        paced = None
        if args.rate:
            print(f"telmon: {args.files} files paced at {args.rate:g} files/s (latency at a sustained rate) ...",
                  file=sys.stderr)
            paced = bench_telmon(args.files, args.stations, work, rate=args.rate)
        print(f"old way: {args.baseline_files} files, one python3 process each ...", file=sys.stderr)
        old = bench_old_way(args.baseline_files, args.stations, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = new["files_per_s"] / old["files_per_s"]
    print(f"telmon     {new['files_per_s']:10.0f} files/s   ({new['files']} files in {new['seconds']:.2f} s)")
    print(f"           latency close -> answerable: p50 {new['latency_p50_s'] * 1000:.1f} ms, "
          f"p99 {new['latency_p99_s'] * 1000:.1f} ms")
    if paced:
        print(f"paced      {args.rate:10.0f} files/s offered: latency close -> answerable p50 "
              f"{paced['latency_p50_s'] * 1000:.1f} ms, p99 {paced['latency_p99_s'] * 1000:.1f} ms")
    print(f"old way    {old['files_per_s']:10.1f} files/s   (one python3 per file)")
    print(f"ratio      {ratio:10.1f} x")
    p99 = (paced or new)["latency_p99_s"]
    targets = {"files_per_s >= 2000": new["files_per_s"] >= 2000, "p99 < 1 s at the paced rate": p99 < 1.0,
               ">= 50x the old way": ratio >= 50}
    for name, ok in targets.items():
        print(f"target {name}: {'met' if ok else 'MISSED'}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"telmon": new, "paced": paced, "old_way": old, "ratio": ratio, "targets": targets},
                                              indent=2))


if __name__ == "__main__":
    main()
