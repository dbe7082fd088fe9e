"""LRGS/GOES DCS messages and the DECODES interpreter, checked against OpenDCS's own test data:
OKVI4.data (72 framed messages) decoded must equal SimpleDecodesTest/golden, every row."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from telmon.errors import ConfigError
from telmon.formats import decodes, lrgs
from telmon.model import ParseOptions
from telmon.timeutil import parse_time
from tests.support import SAMPLES

OKVI4 = SAMPLES / "goes/lrgs/OKVI4.data"
NOS = SAMPLES / "goes/lrgs/Nos6MinAirGap.input_goes"
PLATFORM = SAMPLES / "goes/platforms/OKVI4-decodes.xml"
GOLDEN = SAMPLES / "goes/lrgs/SimpleDecodesTest/golden"


def golden() -> list[dict[float, dict[str, float]]]:
    """The golden file: one {time: {PE: value}} per message, in file order."""
    messages: list[dict[float, dict[str, float]]] = []
    for line in GOLDEN.read_text().splitlines():
        if line.startswith("Message for Platform"):
            messages.append({})
        elif line[:2].isdigit():
            cells = [c.strip() for c in line.split("|")]
            when = datetime.strptime(cells[0], "%m/%d/%Y %H:%M:%S").replace(tzinfo=timezone.utc)
            values = {pe: float(v) for pe, v in zip(("HG", "PC", "VB"), cells[1:4]) if v}
            messages[-1][when.timestamp()] = values
    return messages


def test_okvi4_headers() -> None:
    data = OKVI4.read_bytes()
    result = lrgs.parse(data, name="OKVI4.data")
    assert result.problems == []
    assert len(result.units) == 72
    assert {u.station for u in result.units} == {"CE344292"}
    times = [u.message_time for u in result.units]
    assert min(times) == parse_time("2010-08-22T18:04:54Z")
    assert max(times) == parse_time("2010-08-25T17:04:54Z")
    assert times[0] == parse_time("2010-08-25T17:04:54Z")  # the file is newest first
    assert len(set(times)) == 72
    for unit in result.units:
        assert unit.meta["failure_code"] == "G"
        assert unit.meta["channel"] == 49
        assert unit.meta["spacecraft"] == "E"
        assert unit.meta["length"] == 54
        # without a decoding script the message time is the only time entry
        assert [(e.observed_at, e.values) for e in unit.entries] == [(unit.message_time, {})]
    first = result.units[0]
    assert first.meta == {
        "failure_code": "G", "signal_strength": 45, "frequency_offset": 1, "modulation_index": "N",
        "data_quality": "N", "channel": 49, "spacecraft": "E", "source_code": "XE", "length": 54,
        "body": " BST@I`A{H@IaA{H@IbA{H@IbA{H@IcA{H@IbA{H@IcA{H@IcA{Hj ",
    }
    assert (first.offset, first.length) == (2, 37 + 54)  # the file starts "\n\x01"
    assert data[first.offset : first.offset + 8] == b"CE344292"
    assert result.units[1].offset == 2 + 91 + 4  # \x02 \n \n \x01


def test_okvi4_decoded_equals_golden_every_row() -> None:
    decoders = decodes.load_platform_xml(PLATFORM)
    result = lrgs.parse(OKVI4.read_bytes(), options=ParseOptions(decoders=decoders))
    assert result.problems == []
    expected = golden()
    assert len(expected) == len(result.units) == 72
    compared = 0
    for unit, want in zip(result.units, expected):
        got = {e.observed_at: e.values for e in unit.entries}
        assert sorted(got) == sorted(want)
        for when, values in want.items():
            assert set(got[when]) == set(values)
            for pe, value in values.items():
                # the golden file shows DECODES' 5-significant-digit rendering (12.4985 -> 12.498)
                assert got[when][pe] == pytest.approx(value, abs=1e-3), (unit.message_time, when, pe)
                compared += 1
    assert compared == 72 * (4 * 2 + 1)  # stage and precip every 15 min, battery hourly


def test_golden_example_message() -> None:
    decoders = decodes.load_platform_xml(PLATFORM)
    unit = lrgs.parse(OKVI4.read_bytes(), options=ParseOptions(decoders=decoders)).units[0]
    assert unit.message_time == parse_time("2010-08-25T17:04:54Z")
    assert [(e.observed_at, e.values) for e in unit.entries] == [
        (parse_time("2010-08-25T16:15:00Z"), {"HG": 6.1, "PC": 78.8}),
        (parse_time("2010-08-25T16:30:00Z"), {"HG": 6.1, "PC": 78.8}),
        (parse_time("2010-08-25T16:45:00Z"), {"HG": 6.09, "PC": 78.8}),
        (parse_time("2010-08-25T17:00:00Z"), {"HG": 6.08, "PC": 78.8, "VB": 13.436}),
    ]


def test_platform_info() -> None:
    for source in (PLATFORM, str(PLATFORM), PLATFORM.read_bytes()):
        decoders = decodes.load_platform_xml(source)
        assert list(decoders) == ["CE344292"]
        info = decoders["CE344292"].platform
        assert info == decodes.load_platform_infos(source)["CE344292"]
    assert info.site_name == "OKVI4"
    assert info.latitude == pytest.approx(42 + 16 / 60 + 22 / 3600, abs=1e-6)
    assert info.longitude == pytest.approx(-(91 + 3 / 60 + 49 / 3600), abs=1e-6)
    assert (info.channel, info.assigned_time, info.transmit_window, info.transmit_interval) == (49, 290, 10, 3600)
    assert info.medium_type == "goes-self-timed"
    sensors = decoders["CE344292"].sensors
    assert {n: (s.parameter, s.interval) for n, s in sensors.items()} == {
        1: ("HG", 900), 2: ("PC", 900), 3: ("VB", 3600)
    }


def test_pseudo_binary_hint_and_signed_fields() -> None:
    info = decodes.PlatformInfo("X")
    raw = decodes.Sensor(1, "raw", "R", interval=900)
    t = parse_time("2010-08-25T17:04:54Z")
    dec = decodes.Decoder.from_statement("f(s,b,3,1)", [raw], info)
    assert dec.decode(b"@I`", t) == ([decodes.Entry(parse_time("2010-08-25T17:00:00Z"), {"R": 608.0})], [])
    signed = decodes.Decoder.from_statement("2f(s,i,1,1)", [raw], info)
    entries, problems = signed.decode(b"\x7f`", t)  # 63 -> -1, 32 -> -32 over 6 bits
    assert problems == [] and [e.values["R"] for e in entries] == [-32.0, -1.0]
    unsigned = decodes.Decoder.from_statement("f(s,b,1,1)", [raw], info)
    assert unsigned.decode(b"\x7f", t)[0][0].values == {"R": 63.0}
    ascii_ = decodes.Decoder.from_statement("1x,2(f(s,a,4,1))", [raw], info)
    entries, problems = ascii_.decode(b"F12.5 ///", t)
    assert problems == [] and [e.values["R"] for e in entries] == [None, 12.5]


def test_bad_field_and_short_body_are_problems() -> None:
    raw = decodes.Sensor(1, "raw", "R", interval=60)
    dec = decodes.Decoder.from_statement("3(f(s,b,2,1))", [raw], decodes.PlatformInfo("X"))
    entries, problems = dec.decode(b"@A\x01\x02@", 120.0)
    assert [e.values["R"] for e in entries] == [None, 1.0]
    assert any("is not pseudo-binary" in p for p in problems)
    assert any("ends inside" in p for p in problems)


@pytest.mark.parametrize("statement", ["4x,q(1)", "f(t,a,6,1)", "4(f(s,b,3,1)", "f(s,z,3,1)"])
def test_unsupported_script_is_a_config_error(statement: str) -> None:
    xml = PLATFORM.read_bytes().replace(b"4x,4(f(s,b,3,1),f(s,b,3,2)),24x,f(s,b,1,3)", statement.encode())
    with pytest.raises(ConfigError):
        decodes.load_platform_xml(xml)


def test_bad_xml_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError):
        decodes.load_platform_xml(b"<Database><Platform>")
    with pytest.raises(ConfigError):
        decodes.load_platform_xml(tmp_path / "missing.xml")


def test_bare_message() -> None:
    data = NOS.read_bytes()
    result = lrgs.parse(data)
    assert result.problems == []
    [unit] = result.units
    assert unit.station == "33A383F4"
    assert unit.message_time == parse_time("2026-03-03T14:02:36Z")  # 26 062 = 3 March 2026
    assert unit.meta["channel"] == 489
    assert unit.meta["signal_strength"] == 39
    assert unit.meta["frequency_offset"] == 0
    assert unit.meta["source_code"] == "N2"
    assert unit.meta["length"] == 39
    assert (unit.offset, unit.length) == (0, len(data))


def test_bare_back_to_back_and_mixed_with_frames() -> None:
    nos = NOS.read_bytes()
    okvi = OKVI4.read_bytes()
    result = lrgs.parse(nos + nos + okvi[: 2 + 2 * 95] + nos)  # two whole framed messages
    assert result.problems == []
    assert [u.station for u in result.units] == ["33A383F4", "33A383F4", "CE344292", "CE344292", "33A383F4"]
    assert result.units[1].offset == len(nos)


def test_truncated_message_is_reported_with_its_offset_and_the_rest_kept() -> None:
    data = OKVI4.read_bytes()
    third = 2 + 2 * 95  # offset of message 3's header
    assert data[third : third + 8] == b"CE344292"
    cut = data[: third + 37 + 20] + data[third + 37 + 54 :]  # 34 body bytes of message 3 lost
    result = lrgs.parse(cut)
    assert len(result.units) == 71
    [problem] = result.problems
    assert problem.offset == third
    assert "truncated" in problem.reason and "54" in problem.reason
    # the end of a file
    result = lrgs.parse(data[: third + 50])
    assert len(result.units) == 2
    assert [p.offset for p in result.problems] == [third]


def test_bad_header_then_resync() -> None:
    nos = NOS.read_bytes()
    bad = b"ZZA383F4" + nos[8:]
    result = lrgs.parse(nos + bad + nos)
    assert [u.offset for u in result.units] == [0, 2 * len(nos)]
    assert result.problems[0].offset == len(nos)
    assert "not 8 hex digits" in result.problems[0].reason
    for broken, words in [
        (nos[:8] + b"26999140236" + nos[19:], "not a valid"),  # day 999
        (nos[:8] + b"2606214023X" + nos[19:], "YYDDDHHMMSS"),
        (nos[:32] + b"00O39" + nos[37:], "length"),
    ]:
        result = lrgs.parse(broken + nos)
        assert result.problems[0].offset == 0 and words in result.problems[0].reason
        assert [u.offset for u in result.units] == [len(broken)]


def test_header_fields() -> None:
    header = b"CE34429299001000000?57-ALH123WUB00002"
    result = lrgs.parse(header + b"ab")
    unit = result.units[0]
    assert unit.message_time == parse_time("1999-01-01T00:00:00Z")
    assert unit.meta["frequency_offset"] == -10
    assert unit.meta["failure_code"] == "?"
    assert unit.meta["signal_strength"] == 57
    assert unit.meta["body"] == "ab"
    missing = lrgs.parse(b"ce34429210237170454M45+1NN049EXE00000").units[0]
    assert missing.station == "CE344292" and missing.entries == []
    long_body = lrgs.parse(header[:32] + b"00300" + b"x" * 300).units[0]
    assert "body" not in long_body.meta


@pytest.mark.parametrize("data", [b"", b"\n\n", b"\x01\x02\n"])
def test_empty(data: bytes) -> None:
    result = lrgs.parse(data)
    assert result.units == [] and result.problems[0].reason.startswith("empty file")


def test_garbage_bytes() -> None:
    result = lrgs.parse(bytes(range(256)) * 20)
    assert result.units == []
    assert result.problems and all(p.reason and p.offset is not None for p in result.problems)


def test_sniff() -> None:
    assert lrgs.sniff(OKVI4.read_bytes()[:4096])
    assert lrgs.sniff(NOS.read_bytes())
    assert not lrgs.sniff(b"CE344292 hello")
