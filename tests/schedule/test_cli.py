"""The stations and schedule commands through click's runner, on a real store (registered on a
copy of the main group, as telmon/cli.py will do)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from telmon.cli import main
from telmon.schedule.cli import register
from tests.schedule.conftest import OKVI4_DATA, OKVI4_XML


@pytest.fixture(scope="module")
def cli() -> click.Group:
    group = copy.copy(main)
    group.commands = dict(main.commands)
    register(group)
    return group


def run(cli: click.Group, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.output


def test_import_show_edit_and_questions(cli, tmp_path: Path):
    db = str(tmp_path / "t.db")
    code, out = run(cli, "stations", "import", str(OKVI4_XML), "--store", db)
    assert code == 0 and "1 new" in out
    bad = tmp_path / "s.csv"
    bad.write_text("id,name,lat,lon,interval,first,window\nS1,One,1,2,3600,0,60\nS2,Two,1,2,oops,0,0\n")
    code, out = run(cli, "stations", "import", str(bad), "--store", db)
    assert code == 0 and "1 new" in out and f"skipped {bad}:3: interval 'oops'" in out
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "OKVI4.data").write_bytes(OKVI4_DATA.read_bytes())
    # ingest through the real path with the recorder installed, as Service will once wired
    from telmon.ingest.pipeline import Ingestor
    from telmon.schedule.store import SlotRecorder
    from telmon.store.sqlite import SQLiteStore

    with SQLiteStore(db) as st:
        st.record_hooks.append(SlotRecorder())
        Ingestor(st).ingest([(inbox / "OKVI4.data", "GOES")])
    code, out = run(cli, "schedule", "completeness", "CE344292", "--start", "2010-08-22T18:00", "--end",
                    "2010-08-25T17:30", "--store", db, "--json")
    assert code == 0, out
    row = json.loads(out)["stations"][0]
    assert (row["expected"], row["on_time"], row["completeness"]) == (72, 72, 100.0)
    code, out = run(cli, "stations", "show", "CE344292", "--store", db)
    assert code == 0 and "every 3600s from 290s of the day, window 10s (registry)" in out and "silent" in out
    code, out = run(cli, "stations", "edit", "S1", "--interval", "15m", "--window", "30", "--store", db)
    assert code == 0 and "'interval_s': 900.0" in out
    code, out = run(cli, "stations", "edit", "NOPE", "--name", "x", "--store", db)
    assert code == 1 and "no station 'NOPE'" in out
    code, out = run(cli, "schedule", "status", "--store", db, "--json")
    assert {s["station"]: s["status"] for s in json.loads(out)["stations"]} == {"CE344292": "silent", "S1": "never"}
    code, out = run(cli, "schedule", "silent", "--store", db)
    assert code == 0 and "CE344292" in out and "S1" in out
    code, out = run(cli, "schedule", "missing", "--start", "2010-08-25T17:30", "--end", "2010-08-25T22:00",
                    "--store", db)
    assert code == 0 and "CE344292" in out  # the windows after the last message closed unfilled
    code, out = run(cli, "schedule", "slots", "CE344292", "--start", "2010-08-25T00:00", "--end",
                    "2010-08-25T18:00", "--store", db)
    assert code == 0 and "18/18 received" in out
    # the bare command still lists, with its old options
    code, out = run(cli, "stations", "--search", "CE34", "--store", db)
    assert code == 0 and "CE344292" in out and "S1" not in out
    code, out = run(cli, "schedule", "rebuild", "--store", db)
    assert code == 0 and "2 station(s)" in out
