"""The telmon command through click's runner, on a real store; errors are one line and exit 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from telmon.cli import main
from tests.support import SAMPLES

EDL = SAMPLES / "telmon" / "nwiswa.telemetry.f3671554b79d4af69b26cb2ea3b0da98.20180303T071510.grfilt.edl"


@pytest.fixture
def db(tmp_path: Path) -> str:
    inbox = tmp_path / "in"
    inbox.mkdir()
    shutil.copyfile(EDL, inbox / "a.edl")
    (inbox / "junk.bin").write_bytes(b"\x00\x01 not telemetry")
    store = str(tmp_path / "t.db")
    result = CliRunner().invoke(main, ["watch", str(inbox), "--once", "--store", store, "--feed", "rsync"])
    assert result.exit_code == 0, result.output
    return store


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


def test_query_updated_table_and_json(db):
    code, out = run("query", "updated", "--start", "2000-01-01", "--store", db)
    assert code == 0 and "STATION" in out and "12113390" in out
    code, out = run("query", "updated", "--start", "2000-01-01", "--store", db, "--json")
    data = json.loads(out)
    assert data["stations"][0]["station"] == "12113390" and data["stations"][0]["feeds"] == ["rsync"]


def test_query_entries_paginates(db):
    code, out = run("query", "entries", "12113390", "--limit", "5", "--store", db, "--json")
    data = json.loads(out)
    assert code == 0 and data["count"] == 5 and data["entries"][0]["observed_at"] == "2018-02-19T02:00:00Z"
    code, out = run("query", "entries", "12113390", "--limit", "5", "--cursor", data["next"], "--store", db, "--json")
    assert json.loads(out)["entries"][0]["observed_at"] == "2018-02-19T07:00:00Z"


def test_query_arrivals_gaps_silent(db):
    code, out = run("query", "arrivals", "12113390", "--store", db)
    assert code == 0 and "a.edl" in out
    code, out = run("query", "gaps", "--start", "2018-02-01", "--end", "2018-03-01", "--store", db)
    assert code == 0 and "(no gaps)" in out  # hourly, complete
    code, out = run("query", "silent", "--start", "2000-01-01", "--end", "2000-01-02", "--store", db)
    assert code == 0 and "12113390" in out


def test_rejected_lists_the_junk_file(db):
    code, out = run("rejected", "--store", db)
    assert code == 0 and "junk.bin" in out and "no format recognises" in out


def test_errors_are_one_line_and_exit_non_zero(db):
    code, out = run("query", "updated", "--start", "last tuesday", "--store", db)
    assert code == 1
    assert out.strip().startswith("Error:") and "ISO 8601" in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1
    code, out = run("query", "updated", "--config", "/nonexistent.toml")
    assert code == 1 and "config file not found" in out


def test_settings_markdown_matches_the_docs():
    code, out = run("settings", "--markdown")
    docs = (Path(__file__).resolve().parent.parent / "docs" / "settings.md").read_text()
    assert code == 0 and out in docs
