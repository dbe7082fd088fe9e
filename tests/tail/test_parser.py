"""The MetPX line parser on the real excerpts (tests/data/samples/metpx), on every rule of
FORMATS.md's Sundew section, and against an independent line-by-line reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telmon.formats import metpx
from telmon.tail import synth
from telmon.timeutil import parse_time
from tests.support import SAMPLES

METPX = SAMPLES / "metpx"
EXCERPT_ZONE = "-04:00"  # the excerpts are local time, 4 h behind UTC (SOURCE.txt)


def lines(name: str, zone: str = EXCERPT_ZONE) -> list[metpx.Line]:
    return metpx.parse_lines((METPX / name).read_bytes(), zone)


def test_rx_excerpt_exact() -> None:
    got = lines("rx_file.log")
    assert [g.kind for g in got] == ["other"] * 6 + ["transfer", "other"]
    t = got[6]
    assert t.nbytes == 107
    assert t.product_type == "SM"
    assert t.source == "file"
    assert t.log_time == parse_time("2006-10-08T04:24:36.556Z")  # 00:24:36,556 local = 04:24:36.556 UTC
    assert t.stamp == parse_time("2006-10-08T04:24:36Z")
    assert t.latency == 0.556


def test_tx_excerpt_exact() -> None:
    got = lines("tx_loop.log")
    transfers = [g for g in got if g.kind == "transfer"]
    dups = [g for g in got if g.kind == "duplicate"]
    assert [g.nbytes for g in transfers] == [130, 130, 103, 141, 141]
    assert sum(g.nbytes for g in transfers) == 645  # type: ignore[misc]
    assert [g.product_type for g in transfers] == ["SA", "SA", "SI", "SM", "SM"]
    assert [g.latency for g in transfers] == [0.616, 0.617, 0.618, 0.619, 0.62]
    assert [g.product_type for g in dups] == ["SI", "SA", "SA", "SI", "SM", "SM"]
    assert [g.source for g in dups] == ["file"] + ["localhost"] * 5  # "file\:CWAO": the backslash is dropped
    assert sum(g.kind == "other" for g in got) == 6
    assert not any(g.kind == "bad" for g in got)


def test_zone_setting_decides_latency() -> None:
    data = (METPX / "tx_loop.log").read_bytes()
    utc = [g.latency for g in metpx.parse_lines(data, "UTC") if g.kind == "transfer"]
    assert utc[0] == pytest.approx(-4 * 3600 + 0.616)  # read as UTC, the log looks 4 h early
    named = [g.latency for g in metpx.parse_lines(data, "America/Montreal") if g.kind == "transfer"]
    assert named == [0.616, 0.617, 0.618, 0.619, 0.62]  # EDT in October 2006
    winter = b"2007-01-15 09:00:05,250 [INFO] (10 Bytes) Bulletin X:file:CWAO:SA:3:Direct:20070115140000  delivered\n"
    assert metpx.parse_lines(winter, "America/Montreal")[0].latency == 5.25  # EST, 5 h behind
    assert metpx.parse_lines(winter, "UTC-5")[0].latency == 5.25
    with pytest.raises(ValueError):
        metpx.LogZone("Mars/Olympus")


def test_radar_message_line() -> None:
    line = ("2013-06-06 14:47:11,368 [INFO] (86 Bytes) Message radar.24_HR_ACCUM.GIF.XSS++201306061440_XSS_24_HR_"
            "ACCUM_MM.gif:URP:XSS:RADAR:GIF::20130606144709  delivered (lat=1.368449,speed=168950.887119)\n")
    [g] = metpx.parse_lines(line, "UTC")
    assert (g.kind, g.nbytes, g.product_type, g.source, g.latency) == ("transfer", 86, "RADAR", "URP", 2.368)


def test_first_stats_library_input_is_not_a_log() -> None:
    # files/test1 of 2006 ("arrival;departure;bytecount") is not the production format
    got = lines("test1")
    assert len(got) == 25
    assert all(g.kind == "bad" and g.reason == metpx.REASONS[metpx.NO_TIMESTAMP] for g in got)


def test_errors_duplicates_and_skipped_lines() -> None:
    text = (
        "2006-10-08 00:24:36,616 [ERROR] SACN31_CWAO_1:file:CWAO:SA:3:Direct:20061008042430 could not be delivered\n"
        "2006-10-08 00:24:37,000 [ERROR] Connection lost with host pxatx (timeout)\n"
        "Traceback (most recent call last):\n"
        '  File "/apps/px/lib/senderWMO.py", line 210, in send\n'
        "2006-10-08 00:24:37,100 [CRITICAL] sender died\n"
        "2006-10-08 00:24:38,000 [INFO] (20480 Bytes) sent in 0.2 sec, 102400.0 Bytes/sec\n"
        "2006-10-08 00:24:38,001 [INFO] (512 Bytes) Segment 2 of 4 of X:file:CWAO:SA:3:Direct:20061008042436\n"
        "2006-10-08 00:24:38,002 [WARNING] SEND TIMEOUT (30 s)\n"
        "2006-10-08 00:24:38,003 [INFO] (99 Bytes) SEND TIMEOUT on X:file:CWAO:SA:3:Direct:20061008042436\n"
        "2006-10-08 00:24:38,004 [INFO] suppressed duplicate send SI_X:file:CWAO:SI:3:Direct:20061008042436\n"
        "\n"
    )
    got = metpx.parse_lines(text, EXCERPT_ZONE)
    assert [g.kind for g in got] == ["error", "error", "continuation", "continuation", "error", "other", "other",
                                     "other", "other", "duplicate", "blank"]
    assert [g.product_type for g in got if g.kind == "error"] == ["SA", None, None]
    assert all(g.nbytes is None for g in got if g.kind == "error")  # an error is never a file


@pytest.mark.parametrize("line, reason", [
    ("2006-10-08 00:24:36,616 [INFO] (13O Bytes) Bulletin X:file:CWAO:SA:3:Direct:20061008042436  delivered",
     metpx.BAD_BYTES),
    ("2006-10-08 00:24:36,616 [INFO] (130 Bytes) Bulletin SACN31_CWAO  delivered", metpx.NO_PRODUCT),
    ("2006-10-08 00:24:36,616 [INFO] (130 Bytes) Bulletin X:CWAO:SA:Direct:20061008042436  delivered",
     metpx.NO_PRODUCT),
    ("2006-10-08 00:24:36,616 [INFO] (130 Bytes) Bulletin X:file:CWAO:SA:3:Direct:20061308042436  delivered",
     metpx.BAD_STAMP),
    ("2006-02-30 00:24:36,616 [INFO] (130 Bytes) Bulletin X:file:CWAO:SA:3:Direct:20061008042436  delivered",
     metpx.BAD_TIMESTAMP),
    ("2006-10-08 00:24:36.616 [INFO] (130 Bytes) Bulletin X:file:CWAO:SA:3:Direct:20061008042436  delivered",
     metpx.NO_TIMESTAMP),
    ("garbage \x00\xff line", metpx.NO_TIMESTAMP),
])
def test_unparseable_lines_have_reasons(line: str, reason: int) -> None:
    [g] = metpx.parse_lines(line.encode("latin-1") + b"\n", EXCERPT_ZONE)
    assert g.kind == "bad"
    assert g.reason == metpx.REASONS[reason]


def test_crlf_partial_line_and_midnight() -> None:
    text = (b"2006-10-08 00:24:36,616 [INFO] (130 Bytes) Bulletin X:file:CWAO:SA:3:Direct:20061008042436  delivered\r\n"
            b"2006-10-09 00:00:01,000 [INFO] (5 Bytes) Ingested in DB as /db/X:file:CWAO:SM:3:Direct:20061008235950\n"
            b"2006-10-08 00:24:36,700 [INFO] (7 Bytes) Bulletin Y:file:CWAO")
    p = metpx.parse_chunk(text, metpx.LogZone("UTC"))
    assert len(p) == 2  # the partial last line waits for its newline
    assert p.nbytes.tolist() == [130, 5]
    # a day boundary between stamp and log line: 11 s, not wrapped by a day (the 2006 bug)
    assert p.latency[1] == 11.0
    assert len(metpx.parse_chunk(text, metpx.LogZone("UTC"), final=True)) == 3


def test_vectorised_parser_matches_line_by_line_reference() -> None:
    for direction, seed in (("tx", 3), ("rx", 4)):
        text, truth = synth.client_log(direction, "amis", parse_time("2024-03-01T23:30:00Z"), 7200, 5000,
                                       seed=seed, zone_offset_s=-14400)
        ref = synth.file_truth(text, -14400)
        p = metpx.parse_chunk(text, metpx.LogZone(EXCERPT_ZONE))
        counted = np.isin(p.kind, (metpx.TRANSFER, metpx.DUPLICATE, metpx.ERROR))
        kinds = {metpx.TRANSFER: synth.TRANSFER, metpx.DUPLICATE: synth.DUPLICATE, metpx.ERROR: synth.ERROR}
        assert [kinds[int(k)] for k in p.kind[counted]] == ref.kind == truth.kind
        assert p.log_ms[counted].tolist() == ref.log_ms == truth.log_ms
        types = [p.types[i] if i >= 0 else "_" for i in p.ptype[counted].tolist()]
        assert types == ref.ptype == truth.ptype
        tr = p.kind[counted] == metpx.TRANSFER
        assert p.nbytes[counted][tr].tolist() == [b for b, k in zip(truth.nbytes, truth.kind) if k == synth.TRANSFER]
        lat_ms = np.round(p.latency[counted][tr] * 1000).astype(int).tolist()
        assert lat_ms == [v for v, k in zip(truth.latency_ms, truth.kind) if k == synth.TRANSFER]
        assert p.counts()["bad"] == 0
        assert len(p) == truth.lines


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_parse_without_raising(data: bytes) -> None:
    p = metpx.parse_chunk(data, metpx.LogZone(EXCERPT_ZONE), final=True)
    assert len(p) == data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
    assert np.all((p.kind == metpx.TRANSFER) <= (p.stamp >= 0))


def _transfer(y: int, mo: int, d: int, h: int, mi: int, s: int, ms: int, nb: int, tt: str,
              lat: int) -> tuple[str, int, str, int]:
    logged = parse_time(f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z")
    line = (f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d},{ms:03d} [INFO] ({nb} Bytes) Bulletin "
            f"N_{tt}:file\\:CWAO:{tt}:3:Direct:{metpx.stamp_text(logged - lat)}  delivered\n")
    return line, nb, tt, lat * 1000 + ms


_line = st.builds(
    _transfer,
    st.integers(1971, 2099), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23), st.integers(0, 59),
    st.integers(0, 59), st.integers(0, 999), st.integers(0, 10 ** 12), st.sampled_from(["SA", "SM", "RADAR", "X.Y"]),
    st.integers(0, 10 ** 6))


@settings(max_examples=100, deadline=None)
@given(st.lists(_line, min_size=1, max_size=30))
def test_generated_transfer_lines_read_exactly(items: list[tuple[str, int, str, int]]) -> None:
    p = metpx.parse_chunk("".join(i[0] for i in items).encode(), metpx.LogZone("UTC"))
    assert p.kind.tolist() == [metpx.TRANSFER] * len(items)
    assert p.nbytes.tolist() == [i[1] for i in items]
    assert [p.types[t] for t in p.ptype.tolist()] == [i[2] for i in items]
    assert np.round(p.latency * 1000).astype(np.int64).tolist() == [i[3] for i in items]
