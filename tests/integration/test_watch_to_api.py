"""Files dropped into a real watched folder, answers checked through the real HTTP app."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from telmon.api.app import create_app
from telmon.config import Config, WatchSpec
from telmon.service import Service
from tests.support import SAMPLES, wait_for

EDL_A = SAMPLES / "telmon" / "nwiswa.telemetry.f3671554b79d4af69b26cb2ea3b0da98.20180303T071510.grfilt.edl"
EDL_B = SAMPLES / "telmon" / "nwiswa.telemetry.f3671554b79d4af69b26cb2ea3b0da98.20180304T071510.grfilt.edl"
OKVI4 = SAMPLES / "goes" / "lrgs" / "OKVI4.data"
PLATFORM = SAMPLES / "goes" / "platforms" / "OKVI4-decodes.xml"


def make_service(tmp_path: Path, *, poll: float | None = None, quarantine: bool = True) -> tuple[Service, Path]:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    cfg = Config()
    cfg.set("data_dir", str(tmp_path / "data"))
    cfg.set("quarantine", quarantine)
    cfg.set("settle", 0.2)
    cfg.platforms.append(str(PLATFORM))
    cfg.watch.append(WatchSpec(str(inbox), "GOES", poll))
    return Service(cfg), inbox


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Service, Path, TestClient]]:
    svc, inbox = make_service(tmp_path)
    svc.start()
    with TestClient(create_app(svc)) as client:
        yield svc, inbox, client
    svc.close()


def files_recorded(svc: Service) -> int:
    return svc.store.counts()["files"]


def test_written_and_renamed_in_files_are_answered(running):
    svc, inbox, client = running
    shutil.copyfile(EDL_A, inbox / "a.edl")                      # written in place
    tmp = inbox / ".b.edl.tmp"                                   # the rsync way: temp, then rename
    shutil.copyfile(EDL_B, tmp)
    os.replace(tmp, inbox / "b.edl")
    sub = inbox / "goes" / "2010"                                # a new subfolder, made after start
    sub.mkdir(parents=True)
    shutil.copyfile(OKVI4, sub / "okvi4.msgs")
    wait_for(lambda: files_recorded(svc) == 3, what="3 files recorded")

    updated = client.get("/api/v1/updated", params={"start": "2000-01-01", "end": "2100-01-01"}).json()
    assert [s["station"] for s in updated["stations"]] == ["12113390", "CE344292"]
    assert updated["stations"][1]["arrivals"] == 72             # one arrival per LRGS message

    entries = client.get("/api/v1/entries", params={"station": "12113390", "limit": 10000}).json()["entries"]
    # the two files overlap; each (station, time) is kept once: 2018-02-19 02:00 .. 2018-03-03 03:00 hourly
    assert len(entries) == 12 * 24 + 2
    assert entries[0]["observed_at"] == "2018-02-19T02:00:00Z" and entries[-1]["observed_at"] == "2018-03-03T03:00:00Z"

    okvi = client.get("/api/v1/entries", params={"station": "CE344292", "limit": 10000}).json()["entries"]
    assert okvi[-1]["observed_at"] == "2010-08-25T17:00:00Z"
    assert okvi[-1]["values"]["HG"] == pytest.approx(6.08) and okvi[-1]["values"]["VB"] == pytest.approx(13.436)

    arrivals = client.get("/api/v1/arrivals", params={"station": "CE344292", "limit": 100}).json()["arrivals"]
    assert len(arrivals) == 72 and {a["meta"]["failure_code"] for a in arrivals} == {"G"}


def test_touch_changes_nothing_and_new_content_is_a_new_version(running):
    svc, inbox, client = running
    target = inbox / "a.edl"
    shutil.copyfile(EDL_A, target)
    wait_for(lambda: files_recorded(svc) == 1, what="first version")
    os.utime(target)                                            # touch: same content
    with open(target, "ab") as fh:                              # close-after-write, same content
        fh.write(b"")
    svc.watchers[0][1].scan_now()
    wait_for(lambda: svc.worker.stats.duplicates >= 1 or svc.worker.wait_idle(0.5), what="re-read")
    assert files_recorded(svc) == 1
    with open(target, "a") as fh:
        fh.write('"2018/03/02 04:00", 1.5\n')
    wait_for(lambda: files_recorded(svc) == 2, what="second version")
    files = list(svc.store.iter_files())
    assert [f["version"] for f in files] == [1, 2]


def test_bad_files_are_rejected_quarantined_and_listed(running):
    svc, inbox, client = running
    (inbox / "empty.edl").write_bytes(b"")
    (inbox / "notes.txt").write_text("this is not telemetry\n")
    bad_line = EDL_A.read_text().splitlines()
    bad_line.insert(10, '"2018/02/19 99:99", oops')
    (inbox / "partial.edl").write_text("\n".join(bad_line) + "\n")
    wait_for(lambda: files_recorded(svc) == 3, what="3 files recorded")
    rej = client.get("/api/v1/rejected").json()["rejected"]
    by_name = {Path(r["path"]).name: r for r in rej}
    assert "empty" in by_name["empty.edl"]["reason"]
    assert "no format" in by_name["notes.txt"]["reason"]
    assert by_name["partial.edl"]["line"] == 11 and by_name["partial.edl"]["file_status"] == "partial"
    # whole rejections are moved to quarantine; the partial file stays and its good lines count
    wait_for(lambda: not (inbox / "notes.txt").exists(), what="quarantine move")
    assert by_name["partial.edl"]["quarantined_to"] is None and (inbox / "partial.edl").exists()
    assert svc.store.station("12113390")["entry_count"] == 266  # every good line of the file
    assert svc.status()["watchers"][0]["mode"] == "inotify"


def test_files_present_at_start_are_caught_up_once(tmp_path):
    svc, inbox = make_service(tmp_path)
    shutil.copyfile(EDL_A, inbox / "old.edl")
    os.utime(inbox / "old.edl", (1e9, 1e9))
    svc.start()
    try:
        wait_for(lambda: files_recorded(svc) == 1, what="catch-up")
    finally:
        svc.close()
    svc2, _ = make_service(tmp_path)                            # restart: nothing new to record
    svc2.start()
    try:
        svc2.worker.wait_idle(5)
        assert files_recorded(svc2) == 1 and svc2.worker.stats.committed_files == 0
    finally:
        svc2.close()


def test_poll_mode_sees_written_and_renamed_files(tmp_path):
    svc, inbox = make_service(tmp_path, poll=0.2)
    svc.start()
    try:
        assert svc.status()["watchers"][0]["mode"] == "poll"
        shutil.copyfile(EDL_A, inbox / "a.edl")
        tmp = tmp_path / "elsewhere.edl"
        shutil.copyfile(EDL_B, tmp)
        os.replace(tmp, inbox / "b.edl")
        wait_for(lambda: files_recorded(svc) == 2, what="2 polled files")
        assert svc.store.station("12113390")["entry_count"] == 12 * 24 + 2
    finally:
        svc.close()
