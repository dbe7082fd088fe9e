"""The jobarchive format on archives built from the real jobdata sample, and its rejections."""

from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from telmon.formats import jobarchive
from telmon.ingest.pipeline import Ingestor
from telmon.store.sqlite import SQLiteStore
from tests.jobs.support import JOBDATA, archive, jobdata
from tests.support import SAMPLES


def test_the_real_jobdata_gives_one_arrival_of_its_boinc_user_with_the_job_summary():
    data = archive(JOBDATA.read_bytes(), extra=68034)
    assert jobarchive.sniff(data[:4096])
    result = jobarchive.parse(data, name="myTAR.tgz")
    assert result.problems == []
    [unit] = result.units
    assert unit.station == "b-22033"  # no USER_ID: b-<BOINC_USERID>
    assert unit.entries == []
    assert unit.message_time == 1_403_170_860.0  # the tar mtime of ./jobdata
    job = unit.meta["job"]
    assert job["jobid"] == 11862984 and job["events"] == 100000 and job["exitcode"] == 0
    assert job["cpuusage"] == 1888 and job["diskusage"] == 2004 and job["BOINC_USERID"] == 22033
    assert job["run"] == "pp winclusive 7000 10 - pythia8 8.170 default-noFsr"
    assert job["AGENT_JABBER_ID"].startswith("agent_s-22033_1_7_")
    # a volunteer's account key is neither stored nor published
    assert "BOINC_AUTHENTICATOR" not in job and unit.meta["redacted"] == ["BOINC_AUTHENTICATOR"]
    assert unit.meta["user"] == "b-22033"


def test_user_id_wins_over_the_boinc_id_and_values_keep_their_types():
    unit = jobarchive.parse(archive(jobdata(USER_ID="alice", exitcode=-1, events=None, seed="0x1f"))).units[0]
    assert unit.station == "alice"
    assert unit.meta["job"]["exitcode"] == -1  # a failed job needs no events
    assert unit.meta["job"]["seed"] == "0x1f"


def test_a_member_named_jobdata_without_dot_slash_is_read_too():
    assert jobarchive.parse(archive(JOBDATA.read_bytes(), name="jobdata")).units


def test_a_job_without_any_user_is_kept_as_anonymous():
    unit = jobarchive.parse(archive(jobdata(BOINC_USERID=None))).units[0]
    assert unit.station == jobarchive.ANONYMOUS and unit.meta["user"] is None


def reasons(data: bytes) -> list[str]:
    result = jobarchive.parse(data)
    assert result.units == []
    return [p.reason for p in result.problems]


def test_corrupt_truncated_and_incomplete_archives_are_rejected_with_their_reason():
    good = archive(JOBDATA.read_bytes(), extra=5000)
    assert reasons(good[:-12]) == [f"corrupt archive: gzip stream is truncated ({len(good) - 12} bytes)"]
    assert reasons(good[: len(good) // 2])[0].startswith("corrupt archive")
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    assert reasons(bytes(flipped))[0].startswith("corrupt archive")
    assert reasons(b"\x1f\x8b" + os.urandom(200))[0].startswith("corrupt archive")
    assert reasons(gzip.compress(b"not a tar at all" * 64))[0].startswith("corrupt archive")
    assert reasons(good + b"trailing junk") == ["corrupt archive: 13 bytes of garbage after the gzip stream"]


def test_missing_jobdata_malformed_lines_and_missing_fields_are_rejected():
    assert reasons(archive(None)) == ["archive holds no ./jobdata member"]
    assert reasons(archive(b"")) == ["./jobdata is empty"]
    bad_line = jobdata() + b"this line has no equals sign\n=no key\n"
    result = jobarchive.parse(archive(bad_line))
    assert [(p.reason, p.line) for p in result.problems] == [
        ("./jobdata line is not key=value: 'this line has no equals sign'", 18),
        ("./jobdata line is not key=value: '=no key'", 19),
    ]
    assert reasons(archive(jobdata(exitcode=None))) == ["./jobdata has no integer exitcode"]
    assert reasons(archive(jobdata(exitcode="ok"))) == ["./jobdata exitcode is not an integer: 'ok'"]
    assert reasons(archive(jobdata(events=None))) == ["./jobdata of a successful job has no events count"]
    assert reasons(archive(jobdata(jobid=None))) == ["./jobdata has no jobid"]
    assert reasons(archive(b"jobid=1\nexitcode=0\nevents=\xff\xfe\n")) == ["./jobdata is not UTF-8 text (byte 26)"]


def test_sniff_wants_a_gzip_tar():
    assert not jobarchive.sniff(gzip.compress(b"plain text, gzip'd" * 100)[:4096])
    assert not jobarchive.sniff(b"\x1f\x8b")
    for sample in (SAMPLES / "goes" / "shef" / "ShefSample1.input_shef", JOBDATA):
        assert not jobarchive.sniff(sample.read_bytes()[:4096])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_parse_never_raises_on_damaged_archives(data):
    good = archive(JOBDATA.read_bytes(), extra=2000)
    cut = data.draw(st.integers(0, len(good)))
    flips = data.draw(st.lists(st.integers(0, len(good) - 1), max_size=4))
    damaged = bytearray(good[:cut])
    for i in flips:
        if i < len(damaged):
            damaged[i] ^= 0x5A
    result = jobarchive.parse(bytes(damaged))
    assert bool(result.units) != bool(result.problems)


def test_a_rejected_archive_is_in_the_rejected_list_with_its_reason(tmp_path: Path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "broken.tgz").write_bytes(archive(jobdata(), extra=3000)[:-40])
    (inbox / "nojob.tgz").write_bytes(archive(None))
    (inbox / "good.tgz").write_bytes(archive(jobdata(USER_ID="u1")))
    with SQLiteStore(tmp_path / "t.db") as store:
        results = Ingestor(store).ingest([(inbox / n, "nfs") for n in ("broken.tgz", "nojob.tgz", "good.tgz")])
        assert [(r.status, r.format) for r in results] == [
            ("rejected", "jobarchive"), ("rejected", "jobarchive"), ("ok", "jobarchive")]
        rejected = {Path(r["path"]).name: r["reason"] for r in store.rejected()}
    assert rejected["nojob.tgz"] == "archive holds no ./jobdata member"
    assert rejected["broken.tgz"].startswith("corrupt archive: gzip stream is truncated")


def test_parsing_is_deterministic_for_the_same_bytes():
    data = archive(jobdata(USER_ID=f"u{random.randint(0, 9)}"))
    assert jobarchive.parse(data) == jobarchive.parse(data)
