"""EDL parser on the real USGS telmon samples, and on the inputs the old parser broke on."""

from __future__ import annotations

import pytest

from telmon.formats import edl
from telmon.timeutil import parse_time
from tests.support import SAMPLES

FIRST = "telmon/nwiswa.telemetry.f3671554b79d4af69b26cb2ea3b0da98.20180303T071510.grfilt.edl"
SECOND = "telmon/nwiswa.telemetry.f3671554b79d4af69b26cb2ea3b0da98.20180304T071510.grfilt.edl"


def read(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.mark.parametrize(
    "name, first, first_value, last, last_value",
    [
        (FIRST, "2018-02-19T02:00:00Z", 3188.3097222222264, "2018-03-02T03:00:00Z", None),
        ("telmon/testedl.txt", "2018-02-19T02:00:00Z", 3188.3097222222264, "2018-03-02T03:00:00Z", None),
        (SECOND, "2018-02-20T02:00:00Z", 3041.207638888884, "2018-03-03T03:00:00Z", None),
    ],
)
def test_samples(name: str, first: str, first_value: float, last: str, last_value: None) -> None:
    data = read(name)
    result = edl.parse(data, name=name)
    assert result.problems == []
    [unit] = result.units
    assert unit.station == "12113390"
    assert len(unit.entries) == 266  # 270 lines less the 4 headers
    assert unit.entries[0].observed_at == parse_time(first)
    assert unit.entries[0].values == {"GRFILTF-1": first_value}
    assert unit.entries[-1].observed_at == parse_time(last)
    assert unit.meta == {"source": "nwiswa EDL", "device": "GRFILTF-1"}
    assert unit.overwrite is True
    assert unit.message_time is None
    assert (unit.offset, unit.length) == (0, len(data))
    # hourly and in order
    times = [e.observed_at for e in unit.entries]
    assert all(b - a == 3600 for a, b in zip(times, times[1:]))


def test_specific_values() -> None:
    unit = edl.parse(read(SECOND)).units[0]
    by_time = {e.observed_at: e.values["GRFILTF-1"] for e in unit.entries}
    assert by_time[parse_time("2018-02-20T03:00:00Z")] == 3024.4680555555506
    assert by_time[parse_time("2018-02-20T17:00:00Z")] == 2756.6895833333283


def test_spacing_crlf_blank_lines_and_no_final_newline_change_nothing() -> None:
    messy = (
        b"\r\n//SOURCE nwiswa EDL\r\n\r\n//STATION   12113390  \r\n//DEVICE GRFILTF-1\r\n"
        b'"2018/02/19 02:00",3188.3\r\n'
        b"\r\n   \r\n"
        b'  "2018/02/19 03:00"  ,   3196.5   \r\n'
        b'"2018/02/19 04:00", -2'
    )
    result = edl.parse(messy)
    assert result.problems == []
    [unit] = result.units
    assert unit.station == "12113390"
    assert [(e.observed_at, e.values) for e in unit.entries] == [
        (parse_time("2018-02-19T02:00:00Z"), {"GRFILTF-1": 3188.3}),
        (parse_time("2018-02-19T03:00:00Z"), {"GRFILTF-1": 3196.5}),
        (parse_time("2018-02-19T04:00:00Z"), {"GRFILTF-1": -2.0}),
    ]


def test_bad_line_is_a_problem_at_its_line_and_the_rest_is_kept() -> None:
    lines = read(FIRST).split(b"\n")
    lines[9] = b"this is not a data line"  # line 10
    lines[20] = b'"2018/13/19 02:00", 1.0'  # line 21: month 13
    lines[30] = b'"2018/02/20 07:00", twelve'  # line 31
    lines[40] = b'"99999/02/20 07:00", 1'  # line 41: year 99999
    result = edl.parse(b"\n".join(lines))
    [unit] = result.units
    assert len(unit.entries) == 266 - 4
    assert [p.line for p in result.problems] == [10, 21, 31, 41]
    assert result.problems[0].reason.startswith('bad EDL data line: expected "YYYY/MM/DD HH:MM", value')
    assert "2018/13/19 02:00" in result.problems[1].reason
    assert "twelve" in result.problems[2].reason
    assert all(p.reason for p in result.problems)


@pytest.mark.parametrize("data", [b"", b"\n", b"  \r\n\r\n\t"])
def test_empty_file(data: bytes) -> None:
    result = edl.parse(data)
    assert result.units == []
    assert len(result.problems) == 1
    assert result.problems[0].reason.startswith("empty file")


def test_empty_file_reason_is_exact() -> None:
    assert edl.parse(b"").problems[0].reason == "empty file"


def test_missing_station_gives_no_unit() -> None:
    result = edl.parse(b'//SOURCE x\n"2018/02/19 02:00", 1\n')
    assert result.units == []
    assert any("STATION" in p.reason for p in result.problems)


def test_overwrite_false_default_parameter_and_nan() -> None:
    result = edl.parse(b'//STATION 1\n//OVERWRITE false\n"2018/02/19 02:00", 1\n"2018/02/19 03:00", NaN\n')
    [unit] = result.units
    assert unit.overwrite is False
    assert [e.values for e in unit.entries] == [{"value": 1.0}, {"value": None}]
    assert unit.meta == {"source": None, "device": None}


def test_bad_overwrite_and_conflicting_station_are_problems() -> None:
    result = edl.parse(b'//STATION 1\n//OVERWRITE maybe\n//STATION 2\n"2018/02/19 02:00", 1\n')
    [unit] = result.units
    assert unit.station == "1" and unit.overwrite is True
    assert sorted(p.line for p in result.problems) == [2, 3]


def test_nul_bytes_and_bad_utf8_are_problems_not_crashes() -> None:
    result = edl.parse(b'//STATION 1\n"2018/02\x00/19 02:00", 1\n\xff\xfe\n"2018/02/19 03:00", 2\n')
    assert [p.line for p in result.problems] == [2, 3]
    assert [e.values for e in result.units[0].entries] == [{"value": 2.0}]


def test_sniff() -> None:
    assert edl.sniff(read(FIRST)[:4096])
    assert edl.sniff(b'"2018/02/19 02:00", 1\n')
    assert not edl.sniff(b"hello world")
    assert not edl.sniff(b"")
