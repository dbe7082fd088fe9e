"""The SQLite store on a real database: done-marks, versions, entries, gaps, rejections."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telmon import gaps as gapmath
from telmon.model import Entry, Problem, Unit
from telmon.store.base import FileRecord, StationInfo
from telmon.store.sqlite import SQLiteStore

H = 3600.0
T0 = 1_519_005_600.0  # 2018-02-19T02:00:00Z


def record(path, station, times, *, value=1.0, sha=None, received=T0 + 10 * 86400, overwrite=True, problems=()):
    unit = Unit(station, [Entry(t, {"v": value}) for t in times], overwrite=overwrite)
    return FileRecord(path, "test", 100, 1, sha or f"{path}-{value}-{len(times)}", received, "edl",
                      [unit] if times is not None else [], list(problems))


def test_a_file_is_recorded_once_and_a_changed_content_is_a_new_version(store):
    r1 = store.record_files([record("/in/a.edl", "S1", [T0, T0 + H], sha="aaa")], now=T0)
    assert [(r.status, r.version, r.entries) for r in r1] == [("ok", 1, 2)]
    again = store.record_files([record("/in/a.edl", "S1", [T0, T0 + H], sha="aaa")], now=T0)
    assert again[0].status == "duplicate"
    v2 = store.record_files([record("/in/a.edl", "S1", [T0, T0 + H, T0 + 2 * H], sha="bbb")], now=T0)
    assert (v2[0].status, v2[0].version, v2[0].entries) == ("ok", 2, 1)
    counts = store.counts()
    assert counts["files"] == 2 and counts["arrivals"] == 2 and counts["entries"] == 3


def test_file_known_uses_size_and_mtime(store):
    store.record_files([record("/in/a.edl", "S1", [T0])], now=T0)
    assert store.file_known("/in/a.edl", 100, 1)
    assert not store.file_known("/in/a.edl", 100, 2)
    assert not store.file_known("/in/b.edl", 100, 1)


def test_entries_keep_first_seen_time_and_newest_value(store):
    store.record_files([record("/a", "S1", [T0, T0 + H], value=1.0, received=T0 + 100)], now=T0)
    store.record_files([record("/b", "S1", [T0 + H, T0 + 2 * H], value=2.0, received=T0 + 200)], now=T0)
    rows = store.entries(["S1"], None, None, limit=10)
    assert [(r["observed_at"], r["values"]["v"], r["first_seen_at"]) for r in rows] == [
        (T0, 1.0, T0 + 100), (T0 + H, 2.0, T0 + 100), (T0 + 2 * H, 2.0, T0 + 200)]


def test_without_overwrite_the_first_value_stays(store):
    store.record_files([record("/a", "S1", [T0], value=1.0)], now=T0)
    store.record_files([record("/b", "S1", [T0], value=2.0, overwrite=False)], now=T0)
    assert store.entries(["S1"], None, None, limit=10)[0]["values"] == {"v": 1.0}


def test_a_missing_value_never_erases_a_stored_one(store):
    store.record_files([record("/a", "S1", [T0], value=1.0)], now=T0)
    unit = Unit("S1", [Entry(T0, {"v": None, "w": 3.0})])
    store.record_files([FileRecord("/b", "t", 1, 1, "x", T0, "toa5", [unit])], now=T0)
    assert store.entries(["S1"], None, None, limit=10)[0]["values"] == {"v": 1.0, "w": 3.0}


def test_rejected_file_and_partial_file_are_listed_with_where(store):
    res = store.record_files([
        FileRecord("/junk", "t", 5, 1, "j", T0, None, [], [Problem("no format recognises this file", offset=0)]),
        record("/part", "S1", [T0], problems=[Problem("bad EDL data line", line=7)]),
    ], now=T0)
    assert [r.status for r in res] == ["rejected", "partial"]
    rows = store.rejected()
    assert {(r["path"], r["line"], r["offset"]) for r in rows} == {("/junk", None, 0), ("/part", 7, None)}
    assert store.counts()["rejected_files"] == 1


def test_station_state_is_kept_as_data_arrives(store):
    store.record_files([record("/a", "S1", [T0 + 5 * H, T0 + 6 * H], received=T0 + 7 * H)], now=T0)
    store.record_files([record("/b", "S1", [T0, T0 + H], received=T0 + 8 * H)], now=T0)
    s = store.station("S1")
    assert s["first_entry_at"] == T0 and s["last_entry_at"] == T0 + 6 * H
    assert s["arrival_count"] == 2 and s["entry_count"] == 4
    assert s["last_arrival_at"] == T0 + 8 * H and s["registered"] is False


def test_gaps_are_kept_incrementally_with_backfill(store):
    hours = [0, 1, 2, 6, 7, 8]
    store.record_files([record("/a", "S1", [T0 + h * H for h in hours])], now=T0)
    gaps = store.station_gaps(T0, T0 + 9 * H, now=T0 + 8 * H)
    assert gaps[0]["gaps"] == [{"start": T0 + 2 * H, "end": T0 + 6 * H, "missing": 3, "open": False}]
    # an rsync backfill fills part of the hole
    store.record_files([record("/b", "S1", [T0 + 4 * H])], now=T0)
    gaps = store.station_gaps(T0, T0 + 9 * H, now=T0 + 8 * H)
    assert [(g["start"], g["end"], g["missing"]) for g in gaps[0]["gaps"]] == [
        (T0 + 2 * H, T0 + 4 * H, 1), (T0 + 4 * H, T0 + 6 * H, 1)]


def test_configured_interval_overrides_inferred_and_rebuilds_gaps(store):
    store.record_files([record("/a", "S1", [T0 + h * H for h in (0, 1, 2, 3)])], now=T0)
    assert store.station_gaps(T0, T0 + 4 * H, now=T0 + 3 * H) == []
    store.upsert_stations([StationInfo("S1", interval_s=H / 4)], now=T0)
    gaps = store.station_gaps(T0, T0 + 4 * H, now=T0 + 3 * H)
    assert gaps[0]["interval_source"] == "configured"
    assert [g["missing"] for g in gaps[0]["gaps"]] == [3, 3, 3]


def test_open_gap_since_last_entry(store):
    store.record_files([record("/a", "S1", [T0, T0 + H, T0 + 2 * H])], now=T0)
    gaps = store.station_gaps(T0, T0 + 10 * H, now=T0 + 6 * H)
    assert gaps[0]["gaps"] == [{"start": T0 + 2 * H, "end": T0 + 6 * H, "missing": 4, "open": True}]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 300), min_size=2, max_size=120, unique=True), st.integers(1, 6), st.randoms())
def test_incremental_gap_table_equals_a_full_recompute(tmp_path_factory, hours, chunks, rnd: random.Random):
    """However the entries arrive (any order, any grouping), the gap table kept incrementally equals
    find_gaps over all of them with the station's current interval."""
    db = SQLiteStore(tmp_path_factory.mktemp("g") / "t.db")
    try:
        times = [T0 + h * 900 for h in hours]
        rnd.shuffle(times)
        for i in range(chunks):
            part = times[i::chunks]
            if part:
                db.record_files([record(f"/f{i}", "S1", part)], now=T0)
        all_times = sorted(times)
        interval = db.station("S1")["inferred_interval_s"]
        expected = gapmath.find_gaps(all_times, interval)
        got = db.station_gaps(all_times[0], all_times[-1] + 1, now=all_times[-1])
        got_gaps = [(g["start"], g["end"], g["missing"]) for s in got for g in s["gaps"] if not g["open"]]
        assert got_gaps == expected
    finally:
        db.close()


def test_questions_updated_and_silent(store):
    store.upsert_stations([StationInfo("NEVER", name="registered, never reported")], now=T0)
    store.record_files([record("/a", "S1", [T0], received=T0 + 100)], now=T0)
    store.record_files([record("/b", "S2", [T0], received=T0 + 5000)], now=T0)
    updated = store.stations_updated(T0, T0 + 1000)
    assert [u["station"] for u in updated] == ["S1"]
    silent = store.stations_silent(T0, T0 + 1000)
    assert [(s["station"], s["never_seen"]) for s in silent] == [("NEVER", True), ("S2", False)]


def test_arrivals_and_entries_paginate_without_overlap(store):
    for i in range(5):
        store.record_files([record(f"/f{i}", "S1", [T0 + i * H], received=T0 + i)], now=T0)
    first = store.arrivals(["S1"], None, None, limit=2)
    rest = store.arrivals(["S1"], None, None, limit=10, after=(first[-1]["received_at"], first[-1]["id"]))
    assert [a["received_at"] for a in first + rest] == [T0 + i for i in range(5)]
    e1 = store.entries(["S1"], None, None, limit=3)
    e2 = store.entries(["S1"], None, None, limit=3, after=("S1", e1[-1]["observed_at"]))
    assert [e["observed_at"] for e in e1 + e2] == [T0 + i * H for i in range(5)]


def test_inferred_interval_follows_a_change_of_rhythm(store):
    store.record_files([record("/a", "S1", [T0 + h * H for h in range(10)])], now=T0)
    assert store.station("S1")["inferred_interval_s"] == H
    quarter = [T0 + 10 * H + q * 900 for q in range(1, 100)]
    store.record_files([record("/b", "S1", quarter)], now=T0)
    assert store.station("S1")["inferred_interval_s"] == 900
    # and the gap table was rebuilt for the new rhythm: the hourly part is now gappy
    got = store.station_gaps(T0, T0 + 40 * H, now=T0 + 40 * H)
    assert len([g for g in got[0]["gaps"] if not g["open"]]) == 10  # 9 hourly spacings + the step to 15 min
