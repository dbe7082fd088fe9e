"""Benchmark: MetPX transfer logs, read, parsed, aggregated and committed end to end.

Generates realistic Sundew tx_/rx_ logs (telmon.tail.synth: the line shapes of the real
excerpts, batches, duplicates, errors, tracebacks, skipped lines) and reports, in one run:

  * 2 million lines across 150 clients: lines/s of `telmon tail` catching them up (read,
    parse, per-minute statistics into the rollup series, checkpoints, commits) -- one core;
  * the same files through `wc -l` and a bare `for line in f: pass` loop, and the ratios;
  * MetPX's sizing: one hour of 150 clients at 30 MB/day per log (the 2006 library needed
    15 s for 70 clients' hourly pickles), in seconds;
  * a steady look: 30 s of new lines in every log, one poll, in seconds;
and checks every total against the generator's truth.

    python bench/transfer_logs.py [--lines 2000000] [--clients 150] [--json bench/out/transfer_logs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telmon.formats import metpx  # noqa: E402
from telmon.rollup.store import SeriesStore  # noqa: E402
from telmon.store.sqlite import SQLiteStore  # noqa: E402
from telmon.tail import synth  # noqa: E402
from telmon.tail.query import transfers  # noqa: E402
from telmon.tail.settings import TailSettings  # noqa: E402
from telmon.tail.tailer import Tailer  # noqa: E402

T0 = 1_709_294_400  # 2024-03-01T12:00:00Z
OFFSET = -4 * 3600  # logs in local time, 4 h behind UTC, like the real excerpts
HOUR_BYTES = 30_000_000 // 24  # MetPX: 30 MB per log per day


def write_logs(folder: Path, clients: int, lines_per_client: int, start: float, seconds: float,
               seed: int) -> tuple[int, int, synth.Truth]:
    folder.mkdir(parents=True, exist_ok=True)
    truth = synth.Truth()
    total_lines = total_bytes = 0
    for i in range(clients):
        direction = "tx" if i % 2 == 0 else "rx"
        text, t = synth.client_log(direction, f"client{i:03d}", start, seconds, lines_per_client, seed=seed + i,
                                   zone_offset_s=OFFSET)
        with open(folder / f"{direction}_client{i:03d}.log", "ab") as f:
            f.write(text)
        truth.extend(t)
        total_lines += text.count(b"\n")
        total_bytes += len(text)
    return total_lines, total_bytes, truth


def lines_for_bytes(target: int) -> int:
    sample, _ = synth.client_log("tx", "x", T0, 3600, 4000, seed=1, zone_offset_s=OFFSET)
    return int(target / (len(sample) / sample.count(b"\n")))


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def baselines(folder: Path) -> dict[str, float]:
    """Seconds (wall and CPU) of `wc -l` and of bare Python loops over the same files."""
    files = sorted(str(p) for p in folder.iterdir())
    out: dict[str, float] = {}
    t, c = time.perf_counter(), _child_cpu()
    subprocess.run(["wc", "-l", *files], check=True, stdout=subprocess.DEVNULL)
    out["wc_l_s"], out["wc_l_cpu_s"] = time.perf_counter() - t, _child_cpu() - c
    for key, mode in (("bare_loop", "r"), ("bare_loop_binary", "rb")):
        t, c = time.perf_counter(), time.process_time()
        for name in files:
            with open(name, mode) as f:  # text mode first, as a Python log reader would
                for _line in f:
                    pass
        out[f"{key}_s"], out[f"{key}_cpu_s"] = time.perf_counter() - t, time.process_time() - c
    return out


def tail_once(folder: Path, store_path: Path, now: float, chunk_mb: float = 32.0) -> tuple[dict[str, float], Tailer]:
    store = SQLiteStore(store_path)
    series = SeriesStore(store)
    settings = TailSettings(dirs=[str(folder)], zone="-04:00", machine="bench", chunk_bytes=int(chunk_mb * (1 << 20)))
    tailer = Tailer(store, series, settings, now=lambda: now)
    t, c = time.perf_counter(), time.process_time()
    result = tailer.poll()
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    return {"seconds": seconds, "cpu_seconds": cpu, "lines": result.lines, "bytes": result.bytes,
            "commits": result.commits}, tailer


def _joined(a: synth.Truth, b: synth.Truth) -> synth.Truth:
    out = synth.Truth()
    out.extend(a)
    out.extend(b)
    return out


def check(tailer: Tailer, truth: synth.Truth, now: float) -> dict[str, int]:
    got = transfers(tailer.series, start=T0 - 86400, end=T0 + 86400, by="none", now=now)["rows"][0]
    want = truth.totals()
    for key in ("files", "bytes", "errors", "duplicates", "over_max"):
        if got[key] != want[key]:
            raise SystemExit(f"MISMATCH {key}: tail {got[key]} vs truth {want[key]}")
    return {k: want[k] for k in ("files", "bytes", "errors", "duplicates", "over_max")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=2_000_000)
    ap.add_argument("--clients", type=int, default=150)
    ap.add_argument("--json", default="bench/out/transfer_logs.json")
    ap.add_argument("--skip-hour", action="store_true", help="skip the MetPX-hour run")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="telmon-bench-"))
    now = T0 + 2 * 3600
    report: dict[str, object] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    try:
        # 1. two million lines across 150 clients: catch-up end to end
        logs = work / "logs"
        t = time.perf_counter()
        n_lines, n_bytes, truth = write_logs(logs, args.clients, args.lines // args.clients, T0, 3600, seed=1000)
        report["generated"] = {"lines": n_lines, "bytes": n_bytes, "clients": args.clients,
                               "seconds": round(time.perf_counter() - t, 1)}
        base = baselines(logs)
        run, tailer = tail_once(logs, work / "a.db", now)
        if run["lines"] != n_lines:
            raise SystemExit(f"MISMATCH lines: tail read {run['lines']} of {n_lines}")
        totals = check(tailer, truth, now)
        lps, lps_cpu = n_lines / run["seconds"], n_lines / run["cpu_seconds"]
        report["catch_up"] = {
            "lines": n_lines, "mbytes": round(n_bytes / 1e6, 1), "seconds": round(run["seconds"], 2),
            "cpu_seconds": round(run["cpu_seconds"], 2), "lines_per_s": round(lps), "lines_per_cpu_s": round(lps_cpu),
            "commits": run["commits"], "samples": tailer.status.samples, "totals": totals,
            "wc_l_lines_per_s": round(n_lines / base["wc_l_s"]),
            "bare_loop_lines_per_s": round(n_lines / base["bare_loop_s"]),
            "bare_loop_lines_per_cpu_s": round(n_lines / base["bare_loop_cpu_s"]),
            "bare_loop_binary_lines_per_s": round(n_lines / base["bare_loop_binary_s"]),
            "ratio_to_bare_loop": round(lps / (n_lines / base["bare_loop_s"]), 3),
            "ratio_to_bare_loop_cpu": round(lps_cpu / (n_lines / base["bare_loop_cpu_s"]), 3),
            "ratio_to_wc_l": round(lps / (n_lines / base["wc_l_s"]), 4),
        }
        # where the time goes: parsing alone, on the same files, in the tailer's pieces
        t = time.process_time()
        for p in sorted(logs.iterdir()):
            data = p.read_bytes()
            metpx.parse_many([data], metpx.LogZone("-04:00"), [0], sources=False)
        report["catch_up"]["parse_only_lines_per_cpu_s"] = round(n_lines / (time.process_time() - t))
        # 2. a steady look: 30 s of new lines in every log, one poll
        extra_lines, _, extra_truth = write_logs(logs, args.clients, max(args.lines // args.clients // 120, 5),
                                                 T0 + 3600, 30, seed=5000)
        t = time.perf_counter()
        result = tailer.poll()
        report["steady_poll"] = {"clients": args.clients, "new_lines": result.lines,
                                 "seconds": round(time.perf_counter() - t, 3)}
        check(tailer, _joined(truth, extra_truth), now)
        tailer.store.close()
        # 3. MetPX's hour: 150 clients x 30 MB/day per log
        if not args.skip_hour:
            hour = work / "hour"
            per_client = lines_for_bytes(HOUR_BYTES)
            h_lines, h_bytes, h_truth = write_logs(hour, args.clients, per_client, T0, 3600, seed=9000)
            run_h, tailer_h = tail_once(hour, work / "h.db", now)
            check(tailer_h, h_truth, now)
            report["metpx_hour"] = {"clients": args.clients, "mbytes": round(h_bytes / 1e6, 1), "lines": h_lines,
                                    "seconds": round(run_h["seconds"], 2), "cpu_seconds": round(run_h["cpu_seconds"], 2),
                                    "old_library": "15 s for 70 clients (pds3-dev/pds4-dev, 2006)"}
            tailer_h.store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    c = report["catch_up"]
    assert isinstance(c, dict)
    print(f"\n{c['lines']:,} lines ({c['mbytes']} MB, {args.clients} clients): {c['lines_per_s']:,} lines/s end to end "
          f"({c['lines_per_cpu_s']:,} per CPU second); bare loop {c['bare_loop_lines_per_s']:,}/s "
          f"(ratio {c['ratio_to_bare_loop']}; CPU {c['ratio_to_bare_loop_cpu']}), wc -l {c['wc_l_lines_per_s']:,}/s; "
          f"parsing alone {c['parse_only_lines_per_cpu_s']:,} per CPU second")
    if "metpx_hour" in report:
        h = report["metpx_hour"]
        assert isinstance(h, dict)
        print(f"MetPX hour ({h['clients']} clients x 30 MB/day): {h['mbytes']} MB in {h['seconds']} s "
              f"({h['cpu_seconds']} CPU s); the 2006 library: 15 s for 70 clients")
    s = report["steady_poll"]
    assert isinstance(s, dict)
    print(f"steady look: {s['new_lines']} new lines in {s['clients']} logs committed in {s['seconds']} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
