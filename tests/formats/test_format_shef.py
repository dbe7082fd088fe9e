"""SHEF .A/.E parser: every line of OpenDCS's ShefSample*.assertions, the SHEF test files, and
values checked by hand against the SHEF rules (zones, DH24, continuations, missing values)."""

from __future__ import annotations

import pytest

from telmon.formats import shef
from telmon.model import ParseResult, Unit
from telmon.timeutil import parse_time
from tests.support import SAMPLES

DIR = SAMPLES / "goes/shef"
NOW = parse_time("2026-06-01T00:00:00Z")


def parse_file(name: str) -> ParseResult:
    return shef.parse((DIR / name).read_bytes(), name=name, now=NOW)


def parse_text(text: str, now: float = NOW) -> ParseResult:
    return shef.parse(text.encode(), now=now)


def series(unit: Unit) -> list[tuple[float, dict[str, float | None]]]:
    return [(e.observed_at, e.values) for e in unit.entries]


def by_station(result: ParseResult) -> dict[str, Unit]:
    return {u.station: u for u in result.units}  # the last unit of a station wins


@pytest.mark.parametrize("sample", ["ShefSample1", "ShefSample2"])
def test_opendcs_assertions_every_line(sample: str) -> None:
    result = parse_file(f"{sample}.input_shef")
    assert result.problems == []
    [unit] = result.units
    assert unit.station == "WOOR1"
    assert unit.meta["revision"] is True and unit.meta["format"] == "E"
    expected = []
    for line in (DIR / f"{sample}.assertions").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            sensor, when, value = line.split(",")[:3]
            expected.append((parse_time(when), {"HGIFF": float(value)}))
    assert len(expected) == 12
    assert series(unit) == expected


def test_creation_date_goes_to_meta() -> None:
    unit = parse_file("ShefSample1.input_shef").units[0]
    assert unit.meta["created"] == parse_time("2023-10-19T11:19:00-04:00")  # DC, Eastern daylight


def test_brief_example() -> None:
    [unit] = parse_text(".A FOL 20190401 PS DH0000 /QIH 7390\n").units
    assert unit.station == "FOL"
    assert series(unit) == [(parse_time("2019-04-01T08:00:00Z"), {"QIH": 7390.0})]


def test_a_shef() -> None:
    result = shef.parse((DIR / "a.shef").read_bytes(), now=parse_time("2023-04-01T00:00:00Z"))
    assert result.problems == []  # the junk text lines are ignored silently
    assert [u.station for u in result.units] == ["TEST", "TEST2", "TEST3", "TEST4", "TEST"]
    test, test2, test3, test4, revised = result.units
    assert series(test) == [(parse_time("2023-03-18T00:00:00Z"), {"HG": 1.0})]
    assert series(test2) == [(parse_time("2023-03-18T00:00:00Z"), {"HG": 2.0})]  # mmdd: this year
    assert series(test3) == [(parse_time("2022-05-03T00:00:00Z"), {"HG": 2.0, "TI": 73.3, "VB": 13.5})]
    # DN15 without DH: minute 15 of the default hour (12Z); the .A1 continuation joins it
    assert series(test4) == [(parse_time("2022-05-03T12:15:00Z"), {"HP": 3.4, "HG": 2.5})]
    assert revised.meta["revision"] is True and test.meta["revision"] is False
    assert series(revised) == [(parse_time("2023-03-18T00:00:00Z"), {"HG": 1.1})]


def test_e_shef() -> None:
    result = parse_file("e.shef")
    units = by_station(result)
    start = parse_time("1993-03-29T13:00:00Z")
    assert series(units["EE0104"]) == [(start + i * 3600, {"PPHRG": 0.0}) for i in range(6)]
    assert [v["TA"] for _, v in series(units["EE0105"])] == [18.5, 22.0, 25.0, 28.0, 32.0, 35.0]
    # empty fields keep their time slot; M and m are missing values
    t = parse_time("1982-01-01T12:00:00Z")
    assert series(units["EE0108"]) == [
        (t, {"HG": 2.1}), (t + 12 * 3600, {"HG": 2.3}), (t + 18 * 3600, {"HG": None}),
        (t + 24 * 3600, {"HG": 2.5}), (t + 30 * 3600, {"HG": None}), (t + 36 * 3600, {"HG": 2.7}),
        (t + 42 * 3600, {"HG": 2.8}),
    ]
    assert [p.line for p in result.problems] == [10]  # the "+" value of EE0107
    assert "'+'" in result.problems[0].reason


def test_original_a_only_time_zones() -> None:
    result = parse_file("original_a_only.shef")
    units = by_station(result)
    noon = parse_time("1982-02-08T12:00:00Z")
    # each zone's hour was chosen so that the observation is at 12Z
    for station in ["AA0055", "AA0056", "AA0057", "AA0058", "AA0059", "AA0060", "AA0061", "AA0062",
                    "AA0063", "AA0064", "AA0065", "AA0066", "AA0085", "AA0086", "AA0087", "AA0088",
                    "AA0089", "AA0090"]:
        assert series(units[station]) == [(noon, {"HG": 1.5})], station
    for number in range(69, 84):  # local time with daylight saving: February and August
        day = "1982-02-11" if number <= 75 else "1982-08-11"
        assert series(units[f"AA00{number}"]) == [(parse_time(f"{day}T12:00:00Z"), {"PP": 0.12})], number
    assert series(units["AA0084"]) == [(parse_time("1982-02-08T13:00:00Z"), {"HG": 1.5})]  # NS = -3:30
    assert series(units["AA0147"]) == [(parse_time("1975-10-08T12:00:00Z"), {"HG": 9.99})]


def test_original_a_only_messages() -> None:
    result = parse_file("original_a_only.shef")
    units = by_station(result)
    assert series(units["AA0001"]) == [(parse_time("1982-01-01T12:00:00Z"), {"HG": 2.3})]
    assert series(units["AA0010"]) == [  # .A1-.A4 continuations, DH18 in the middle
        (parse_time("1982-01-11T12:00:00Z"),
         {"HL": 11.3, "PP": 2.34, "PC": 5.14, "QR": 112.3, "US": 13.0, "UD": 123.0}),
        (parse_time("1982-01-11T18:00:00Z"), {"TA": 44.0, "TD": 88.0}),
    ]
    # ':' comments inside the positional fields and before the value
    assert series(units["KCCM6"]) == [(parse_time("2026-08-10T12:00:00Z"), {"PPP": 1.32})]
    assert series(units["AA0264"]) == [(parse_time("1982-01-03T00:00:00Z"), {"HG": 1.1})]  # DH24
    assert series(units["AA0216"])[0][1] == {"PPP": 0.02, "HG": None}  # HG M
    assert units["AA0216"].meta["revision"] is True
    assert series(units["AA0173"]) == [  # DRH+1, Central standard time in November
        (parse_time("2026-11-17T22:00:00Z"), {"PP": 2.2}), (parse_time("2026-11-17T23:00:00Z"), {"PY": 9.9})
    ]
    # refused messages are problems with their line numbers
    reasons = {p.line: p.reason for p in result.problems}
    assert "820132" in reasons[45] and "no such day" in reasons[45]
    assert "QS" in reasons[78]
    assert "AB$I2" in reasons[113]
    assert all(p.reason and p.line for p in result.problems)


def test_original_e_only() -> None:
    result = parse_file("original_e_only.shef")
    units = by_station(result)
    t = parse_time("1982-01-01T12:00:00Z")
    assert series(units["EE0001"]) == [(t + i * 6 * 3600, {"HG": v}) for i, v in enumerate([2.1, 2.2, 2.3, 2.4])]
    rocw1 = series(units["ROCW1"])  # .E1 continuation without a leading slash
    assert len(rocw1) == 16
    assert rocw1[0] == (parse_time("1997-12-03T18:30:00Z"), {"HGIRG": 4.30})
    assert rocw1[-1] == (parse_time("1997-12-03T22:15:00Z"), {"HGIRG": 4.59})
    assert all(p.reason and p.line for p in result.problems)


def test_year_inference_uses_now() -> None:
    text = ".A X01 1231 Z DH23/HG 1\n"
    assert parse_text(text, now=parse_time("2024-01-01T00:30:00Z")).units[0].entries[0].observed_at == (
        parse_time("2023-12-31T23:00:00Z")
    )
    assert parse_text(text, now=parse_time("2024-11-01T00:00:00Z")).units[0].entries[0].observed_at == (
        parse_time("2024-12-31T23:00:00Z")
    )
    two_digit = parse_text(".A X01 300420 Z DH12/HG 1\n.A X02 410101 Z DH12/HG 1\n", now=parse_time("2026-01-01T00:00:00Z"))
    assert [u.entries[0].observed_at for u in two_digit.units] == [
        parse_time("2030-04-20T12:00:00Z"), parse_time("1941-01-01T12:00:00Z")
    ]


def test_daylight_saving_local_and_standard_codes() -> None:
    result = parse_text(
        ".A ST1 20230701 E DH12/HG 1\n.A ST2 20230101 E DH12/HG 1\n.A ST3 20230701 ES DH12/HG 1\n"
        ".A ST4 20230701 P DH12/HG 1\n.A ST5 20230701 H DH12/HG 1\n"
    )
    assert [u.entries[0].observed_at for u in result.units] == [
        parse_time(t) for t in ("2023-07-01T16:00:00Z", "2023-01-01T17:00:00Z", "2023-07-01T17:00:00Z",
                                "2023-07-01T19:00:00Z", "2023-07-01T22:00:00Z")
    ]


def test_values_qualifiers_and_missing() -> None:
    [unit] = parse_text(".A ST1 20230701 Z DH12/HG 3.01F/PP M/TA MM/QR -9999/VB -1.5/PC T\n").units
    assert unit.entries[0].values == {"HG": 3.01, "PP": None, "TA": None, "QR": None, "VB": -1.5, "PC": 0.001}
    assert unit.meta["qualifiers"] == [["HG", parse_time("2023-07-01T12:00:00Z"), "F"]]


def test_e_intervals() -> None:
    [unit] = parse_text(".E ST1 20230701 Z DH00/HG/DIN15/1/2\n.E1 3/4\n.E2 /5\n").units
    assert series(unit) == [(parse_time("2023-07-01T00:00:00Z") + i * 900, {"HG": float(i + 1)}) for i in range(5)]
    [daily] = parse_text(".E ST1 20230301 Z DH12/HG/DID1/1/2/3\n").units
    assert [e.observed_at for e in daily.entries][-1] == parse_time("2023-03-03T12:00:00Z")


def test_b_format_and_bad_lines_are_problems() -> None:
    result = parse_text(
        "junk\n.B ABC 0101 Z DH12/HG\nST1 1.0\n.END\n.A1 HG 1\n.AX ST1 20230101 Z DH12/HG 1\n"
        ".A ST1 20231301 Z DH12/HG 1\n.A ST1 20230101 Z DH12/HG 1\n"
    )
    assert [p.line for p in result.problems] == [2, 5, 6, 7]
    assert result.problems[0].reason.startswith("SHEF .B not supported")
    assert len(result.units) == 1


@pytest.mark.parametrize("data", [b"", b"\n\n  \n"])
def test_empty(data: bytes) -> None:
    result = shef.parse(data)
    assert result.units == [] and result.problems[0].reason.startswith("empty file")


def test_no_messages() -> None:
    result = shef.parse(b"just some text\nand more\n")
    assert result.units == [] and result.problems[0].reason == "no SHEF .A or .E messages found"


def test_sniff() -> None:
    for name in ["a.shef", "e.shef", "original_a_only.shef", "original_e_only.shef", "ShefSample1.input_shef"]:
        assert shef.sniff((DIR / name).read_bytes()[:4096]), name
    assert not shef.sniff(b"...HEADLINE...\nsome text\n")
