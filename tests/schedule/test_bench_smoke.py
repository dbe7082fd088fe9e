"""bench/gaps.py on a tiny network, so the benchmark cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_gaps_runs_small(tmp_path: Path):
    out = tmp_path / "gaps.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gaps.py"), "--stations", "40", "--days", "4", "--checkpoint", "2",
         "--windows", "5", "--scan-windows", "2", "--json", str(out), "--dir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out.read_text())
    assert [c["days"] for c in data["checkpoints"]] == [2, 4]
    assert data["ingest"]["entries"] > 40 * 4 * 23
    for q in ("missing", "silent", "complete"):
        assert data["checkpoints"][-1][q]["p95_ms"] > 0
