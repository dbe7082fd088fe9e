"""Campbell Scientific TOA5 parser on the pytoa5 sample files."""

from __future__ import annotations

import pytest

from telmon.formats import toa5
from telmon.model import ParseOptions
from telmon.timeutil import parse_time
from tests.support import SAMPLES

HOURLY = SAMPLES / "goes/toa5/TestLogger_Hourly_1.dat"
EXAMPLE = SAMPLES / "goes/toa5/Example.dat"


def test_hourly() -> None:
    data = HOURLY.read_bytes()
    result = toa5.parse(data, name=HOURLY.name)
    assert result.problems == []
    [unit] = result.units
    assert unit.station == "TestLogger"
    assert [e.observed_at for e in unit.entries] == [
        parse_time("2021-06-18T21:00:00Z"), parse_time("2021-06-18T22:00:00Z"), parse_time("2021-06-18T23:00:00Z")
    ]
    assert unit.entries[0].values == {
        "BattV": 13.23, "PTemp_C_Min": 28.62, "PTemp_C_Max": 30.82, "AirT_C(42)": 26.29, "RelHumid_Avg(3)": 49.31
    }
    assert unit.entries[-1].values["AirT_C(42)"] == 23.64
    meta = unit.meta
    assert (meta["logger"], meta["serial"], meta["program"], meta["table"]) == (
        "CR1000X", "12342", "CPU:TestLogger.CR1X", "Hourly"
    )
    assert meta["units"]["AirT_C(42)"] == "Deg C" and meta["processing"]["PTemp_C_Max"] == "Max"
    assert "RECORD" not in meta["units"] and "TIMESTAMP" not in meta["units"]
    assert meta["record_gaps"] == []
    assert (unit.offset, unit.length) == (0, len(data))


def test_example_without_final_newline() -> None:
    result = toa5.parse(EXAMPLE.read_bytes())
    assert result.problems == []
    [unit] = result.units
    assert unit.meta["table"] == "Example"
    assert [(e.observed_at, e.values) for e in unit.entries] == [
        (parse_time("2021-06-19T00:00:00Z"), {"BattV_Min": 12.99}),
        (parse_time("2021-06-20T00:00:00Z"), {"BattV_Min": 12.96}),
    ]


@pytest.mark.parametrize(
    "options, first",
    [
        (ParseOptions(tz={"TestLogger": "-05:00"}), "2021-06-19T02:00:00Z"),
        (ParseOptions(default_tz="America/Chicago"), "2021-06-19T02:00:00Z"),  # CDT in June
        (ParseOptions(default_tz="+0100", tz={"Other": "-05:00"}), "2021-06-18T20:00:00Z"),
        (ParseOptions(default_tz="Etc/GMT+6"), "2021-06-19T03:00:00Z"),
    ],
)
def test_logger_time_zone(options: ParseOptions, first: str) -> None:
    unit = toa5.parse(HOURLY.read_bytes(), options=options).units[0]
    assert unit.entries[0].observed_at == parse_time(first)


def test_unknown_zone_is_a_problem() -> None:
    result = toa5.parse(HOURLY.read_bytes(), options=ParseOptions(default_tz="Mars/Olympus"))
    assert result.units == [] and "Mars/Olympus" in result.problems[0].reason


def test_nan_record_gap_and_bad_rows() -> None:
    lines = HOURLY.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b"13.23", b'"NAN"')
    lines[6] = lines[6].replace(b",12,", b",15,")
    lines.insert(6, b'"2021-06-18 22:30:00",11')  # too few fields (line 7)
    lines.insert(7, b'"2021-13-18 22:30:00",11,1,2,3,4,5')  # month 13 (line 8)
    result = toa5.parse(b"\n".join(lines))
    [unit] = result.units
    assert unit.entries[0].values["BattV"] is None
    assert unit.meta["record_gaps"] == [{"after": 11, "next": 15, "line": 9}]
    assert [p.line for p in result.problems] == [7, 8]
    assert "fields" in result.problems[0].reason and "TIMESTAMP" in result.problems[1].reason
    assert len(unit.entries) == 3


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty file"),
        (b'"TOA5","x"\n', "4 readable header lines"),
        (b'"TOB1","x"\n"a"\n"b"\n"c"\n', "TOA5"),
        (b'"TOA5",""\n"TIMESTAMP"\n""\n""\n', "station"),
        (b'"TOA5","x"\n"RECORD"\n""\n""\n', "TIMESTAMP"),
        (b'"TOA5","x"\n"TIMESTAMP","A"\n"",""\n"",""\n', "no data rows"),
    ],
)
def test_bad_files(data: bytes, words: str) -> None:
    result = toa5.parse(data)
    assert any(words in p.reason for p in result.problems), result.problems
    assert all(p.reason for p in result.problems)


def test_text_field_and_nul_bytes() -> None:
    data = b'"TOA5","x"\n"TIMESTAMP","A","B"\n"","",""\n"","",""\n"2021-01-01 00:00:00","on",1\n"2021\x00",1,1\n'
    result = toa5.parse(data)
    assert result.units[0].entries[0].values == {"A": None, "B": 1.0}
    assert {p.line for p in result.problems} == {6, None}
    assert any("'A' holds text" in p.reason for p in result.problems)


def test_sniff() -> None:
    assert toa5.sniff(HOURLY.read_bytes()) and toa5.sniff(EXAMPLE.read_bytes())
    assert not toa5.sniff(b'"TIMESTAMP","RECORD"\n')
