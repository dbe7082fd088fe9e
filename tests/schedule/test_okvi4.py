"""OKVI4's real 72 messages against its real platform XML, through the real ingest path."""

from __future__ import annotations

import random
from pathlib import Path

from telmon.schedule import query as sq
from telmon.schedule.store import rebuild_all
from tests.schedule.conftest import OKVI4_ADDRESS, OKVI4_DATA, OKVI4_FIRST, OKVI4_LAST, OKVI4_XML, okvi4_messages, write

SPAN = (OKVI4_FIRST - 60, OKVI4_LAST + 60)
AFTER = OKVI4_LAST + 600  # before the next window (18:04:50) closes


def _import(store) -> dict:
    return sq.import_file(store, OKVI4_XML, now=OKVI4_FIRST)


def test_72_of_72_on_time(sched_store, ingestor, tmp_path: Path):
    result = _import(sched_store)
    assert result["created"] == 1 and result["problems"] == []
    ingestor.ingest([(write(tmp_path / "OKVI4.data", OKVI4_DATA.read_bytes()), "GOES")])
    got = sq.completeness(sched_store, OKVI4_ADDRESS, *SPAN, now=AFTER)["stations"][0]
    assert got["expected"] == 72 and got["received"] == 72 and got["on_time"] == 72
    assert got["late"] == 0 and got["missing"] == 0 and got["completeness"] == 100.0
    assert got["schedule"] == {"interval_s": 3600.0, "first_s": 290.0, "window_s": 10.0, "baud": None,
                               "source": "registry", "inferred": False}
    page = sq.station(sched_store, OKVI4_ADDRESS, now=AFTER)
    assert page["status"] == "on_time" and page["noaa_status"] == "A" and page["name"] == "OKVI4"
    assert page["lat"] == 42.272778 and page["lon"] == -91.063611
    assert page["next_expected"] == {"start": "2010-08-25T18:04:50Z", "end": "2010-08-25T18:05:00Z"}
    assert page["recent_entries"][0]["observed_at"] == "2010-08-25T17:00:00Z"  # decoded samples


def test_removed_messages_are_exactly_the_missing_slots(sched_store, ingestor, tmp_path: Path):
    _import(sched_store)
    messages = okvi4_messages()  # newest first
    removed = {3, 4, 10, 40, 41, 42, 70}  # interior messages; 0 is the newest, 71 the oldest
    kept = b"".join(m for i, m in enumerate(messages) if i not in removed)
    ingestor.ingest([(write(tmp_path / "part.data", kept), "GOES")])
    expected_missing = sorted(OKVI4_LAST - 3600 * i - 4 for i in removed)  # slot starts (:04:50)
    got = sq.slots(sched_store, OKVI4_ADDRESS, *SPAN, now=AFTER)
    assert got["expected"] == 72 and got["missing"] == len(removed) and got["received"] == 72 - len(removed)
    from telmon.timeutil import iso

    assert sorted(got["missing_slots"]) == [iso(t) for t in expected_missing]
    # the spine's question 2 now answers in missing slots for this scheduled station
    from telmon import query

    gaps = query.station_gaps(sched_store, *SPAN, now=AFTER)
    st = {s["station"]: s for s in gaps["stations"]}[OKVI4_ADDRESS]
    assert st["missing"] == len(removed) and st["interval_source"] == "schedule"
    assert [g["missing"] for g in st["gaps"]] == [1, 3, 1, 2]
    # the station-wide "missing slots in this span" question lists it
    assert sq.missing(sched_store, *SPAN, now=AFTER)["stations"][0]["missing"] == len(removed)
    # the removed messages arrive later (an rsync backfill): the slots they touch are corrected
    back = b"".join(m for i, m in enumerate(messages) if i in removed)
    ingestor.ingest([(write(tmp_path / "backfill.data", back), "GOES")])
    got = sq.completeness(sched_store, OKVI4_ADDRESS, *SPAN, now=AFTER)["stations"][0]
    assert got["missing"] == 0 and got["on_time"] == 72


def test_one_file_per_message_in_random_order_gives_the_same_answer(sched_store, ingestor, tmp_path: Path):
    _import(sched_store)
    messages = okvi4_messages()
    order = list(range(len(messages)))
    random.Random(4).shuffle(order)
    for k in order:
        ingestor.ingest([(write(tmp_path / f"m{k:02d}.data", messages[k]), "GOES")])
    got = sq.completeness(sched_store, OKVI4_ADDRESS, *SPAN, now=AFTER)["stations"][0]
    assert (got["expected"], got["on_time"], got["missing"]) == (72, 72, 0)


def test_silence_after_the_last_message_is_counted_from_now(sched_store, ingestor, tmp_path: Path):
    _import(sched_store)
    ingestor.ingest([(write(tmp_path / "OKVI4.data", OKVI4_DATA.read_bytes()), "GOES")])
    later = OKVI4_LAST + 5 * 3600 + 30  # 5 windows closed since, the 5th 30 s ago (grace 60 s)
    got = sq.completeness(sched_store, OKVI4_ADDRESS, OKVI4_FIRST - 60, later, now=later)["stations"][0]
    assert got["expected"] == 76 and got["missing"] == 4
    assert sq.station(sched_store, OKVI4_ADDRESS, now=later)["status"] == "missing"
    three_days = OKVI4_LAST + 3 * 86400
    page = sq.station(sched_store, OKVI4_ADDRESS, now=three_days)
    assert page["status"] == "silent" and page["noaa_status"] == "D"
    assert sq.silent(sched_store, OKVI4_LAST + 1, now=three_days)["stations"][0]["station"] == OKVI4_ADDRESS


def test_a_message_outside_its_window_is_late(sched_store, ingestor, tmp_path: Path):
    _import(sched_store)
    messages = okvi4_messages()
    # message 0 says 17:04:54; rewrite its time to 17:06:54, two minutes after its window closed
    late = messages[0].replace(b"10237170454", b"10237170654")
    ingestor.ingest([(write(tmp_path / "a.data", b"".join(messages[1:]) + late), "GOES")])
    got = sq.slots(sched_store, OKVI4_ADDRESS, *SPAN, now=AFTER)
    assert got["late"] == 1 and got["on_time"] == 71 and got["missing"] == 0
    assert got["late_slots"][0]["code"] == "U" and got["late_slots"][0]["slot"] == "2010-08-25T17:04:50Z"
    assert sq.station(sched_store, OKVI4_ADDRESS, now=AFTER)["status"] == "late"


def test_schedule_inferred_without_a_registry(sched_store, ingestor, tmp_path: Path):
    ingestor.ingest([(write(tmp_path / "OKVI4.data", OKVI4_DATA.read_bytes()), "GOES")])
    page = sq.station(sched_store, OKVI4_ADDRESS, now=AFTER)
    sch = page["schedule"]
    assert sch["inferred"] and sch["interval_s"] == 3600
    c = page["completeness"]["24h"]
    assert c["expected"] == 24 and c["on_time"] == 24
    # an unregistered station created on the fly stays flagged
    assert page["registered"] is False


def test_rebuild_replays_history_recorded_before_the_hook(store, tmp_path: Path):
    from telmon.ingest.pipeline import Ingestor
    from telmon.schedule.store import ensure_schema

    Ingestor(store).ingest([(write(tmp_path / "OKVI4.data", OKVI4_DATA.read_bytes()), "GOES")])
    ensure_schema(store)
    sq.import_file(store, OKVI4_XML, now=OKVI4_FIRST)
    rebuild_all(store)
    got = sq.completeness(store, OKVI4_ADDRESS, *SPAN, now=AFTER)["stations"][0]
    assert (got["expected"], got["on_time"]) == (72, 72)


def test_station_list_counts_agree_with_the_slot_view_on_any_span(sched_store, ingestor, tmp_path: Path):
    _import(sched_store)
    messages = okvi4_messages()
    kept = b"".join(m for i, m in enumerate(messages) if i not in {3, 4, 10, 30, 40, 41, 42, 70})
    ingestor.ingest([(write(tmp_path / "part.data", kept), "GOES")])
    rng = random.Random(9)
    later = OKVI4_LAST + 7 * 3600
    for _ in range(60):
        a = OKVI4_FIRST - 7200 + rng.random() * 80 * 3600
        b = a + rng.choice([1, 5, 24, 30]) * 3600 * rng.random() + 60
        if rng.random() < 0.3:  # day-aligned spans take the fast path
            a, b = a - a % 86400, a - a % 86400 + 86400
        want = sq.slots(sched_store, OKVI4_ADDRESS, a, b, now=later)["missing"]
        for runs in (False, True):
            got = sq.missing(sched_store, a, b, now=later, runs=runs)["stations"]
            assert (got[0]["missing"] if got else 0) == want, (a, b, runs)
