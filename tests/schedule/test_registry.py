"""Registry imports: OpenDCS XML (the real OKVI4 file), NOAA PDT fixed width, NWS HADS pipes and
plain CSV built from the layouts in FORMATS.md; bad lines reported with file and line and skipped;
re-import updates in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from telmon.errors import BadRequest, ConfigError, NotFound
from telmon.schedule import query as sq
from telmon.schedule.registry import detect_format, read_registry
from tests.schedule.conftest import OKVI4_XML

NOW = 1_700_000_000.0


def pdt_line(address: str, *, first: str = "000450", interval: str = "010000", window: str = "0010",
             baud: str = " 300", lat: str = "+421622", lon: str = "-0910349", desc: str = "IOWA RIVER AT OAKVILLE",
             kind: str = "S") -> str:
    """A NOAA PDT line with each field at its documented offset (agency 0+6, address 6+8, ...)."""
    line = [" "] * 93
    for off, text in ((0, "USGS"), (6, address), (14, kind), (15, "049"), (22, first), (28, interval), (34, window),
                      (38, baud), (43, "IA"), (47, desc[:31]), (78, lat), (85, lon)):
        line[off:off + len(text)] = list(text)
    return "".join(line)


def test_opendcs_platform_xml():
    reg = read_registry(OKVI4_XML)
    assert reg.format == "opendcs" and reg.problems == []
    (st,) = reg.stations
    assert st.code == "CE344292" and st.name == "OKVI4" and st.kind == "goes-dcp"
    assert (st.lat, st.lon) == (42.272778, -91.063611)
    assert (st.schedule.interval, st.schedule.first, st.schedule.window) == (3600, 290, 10)
    assert st.meta["channel"] == 49


def test_pdt_fixed_width(tmp_path: Path):
    path = tmp_path / "pdts.txt"
    path.write_text("\n".join([
        pdt_line("CE344292"),
        pdt_line("3B0123F4", first="001500", interval="000500", window="0030", baud="1200", lat="-334512",
                 lon="+1510203", desc="SYDNEY HARBOUR"),
        pdt_line("ZZZZZZZZ"),  # line 3: bad address
        pdt_line("CE000001", interval="01X000"),  # line 4: bad interval
        "short line",  # line 5
        pdt_line("CE000002", kind="R", interval="000000", window="0000"),  # random reporter: no schedule
    ]) + "\n")
    assert detect_format(path.read_bytes()) == "pdt"
    reg = read_registry(path)
    assert [s.code for s in reg.stations] == ["CE344292", "3B0123F4", "CE000002"]
    a, b, c = reg.stations
    assert (a.schedule.interval, a.schedule.first, a.schedule.window, a.schedule.baud) == (3600, 290, 10, 300)
    assert (a.lat, a.lon, a.name) == (42.272778, -91.063611, "IOWA RIVER AT OAKVILLE")
    assert (b.schedule.interval, b.schedule.first, b.schedule.window, b.schedule.baud) == (300, 900, 30, 1200)
    assert b.lat == pytest.approx(-33.753333) and b.lon == pytest.approx(151.034167)
    assert c.schedule is None
    assert [(p.line, p.path) for p in reg.problems] == [(3, str(path)), (4, str(path)), (5, str(path))]
    assert "8 hex digits" in reg.problems[0].reason and "HHMMSS" in reg.problems[1].reason
    assert str(reg.problems[0]).startswith(f"{path}:3: ")


def test_hads_pipes(tmp_path: Path):
    path = tmp_path / "hads.txt"
    path.write_text(
        "GOES ID|NWSLI|owner|state|HSA|lat|lon|first|interval|name\n"
        "CE344292|OKVI4|USGS|IA|DVN|42 16 22|-91 03 49|00:04:50|60|IOWA RIVER AT OAKVILLE\n"
        "DD1234AB|ABCM8|MT-DNRC|MT|TFX|47.5|-111.25|001200|15|SOME CREEK\n"
        "DD1234AC|ABCM9|MT-DNRC|MT|TFX|47.5|-111.25|001200|fifteen|BAD INTERVAL\n"
        "DD1234AD|ABCM7|MT-DNRC|MT|TFX|147.5|-111.25|001200|15|BAD LATITUDE\n"
        "only|three|fields\n"
    )
    reg = read_registry(path)
    assert reg.format == "hads"
    a, b = reg.stations
    assert (a.code, a.name, a.meta["nwsli"], a.lat) == ("CE344292", "IOWA RIVER AT OAKVILLE", "OKVI4", 42.272778)
    assert (a.schedule.interval, a.schedule.first, a.schedule.window) == (3600, 290, 60)  # window assumed
    assert a.meta["window_assumed"] is True
    assert (b.schedule.interval, b.schedule.phase) == (900, 720 % 900)
    assert [p.line for p in reg.problems] == [4, 5, 6]


def test_csv_with_and_without_header(tmp_path: Path):
    path = tmp_path / "stations.csv"
    path.write_text(
        "id,name,lat,lon,interval,first,window\n"
        "12113390,Green River,47.3,-122.2,1h,0,0\n"
        "OKVI4X,Oakville,N 42 16 22,W 91 03 49,01:00,00:04:50,00:00:10\n"
        "NOSCHED,No schedule,45,-100,,,\n"
        ",missing id,1,2,3600,0,0\n"
        "BADWIN,Bad window,1,2,3600,0,7200\n"
    )
    reg = read_registry(path)
    assert reg.format == "csv"
    assert [s.code for s in reg.stations] == ["12113390", "OKVI4X", "NOSCHED"]
    assert (reg.stations[1].schedule.interval, reg.stations[1].schedule.first) == (3600, 290)
    assert reg.stations[1].lat == 42.272778 and reg.stations[2].schedule is None
    assert [p.line for p in reg.problems] == [5, 6] and "shorter than the interval" in reg.problems[1].reason
    bare = tmp_path / "bare.csv"
    bare.write_text("A1,Alpha,10,20,900,60,30\n")
    assert read_registry(bare, "csv").stations[0].schedule.interval == 900


def test_unreadable_registry_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_registry(tmp_path / "nope.csv")
    bad = tmp_path / "bad.xml"
    bad.write_text("<Database><Platform>")
    with pytest.raises(ConfigError):
        read_registry(bad)
    with pytest.raises(ConfigError, match="unknown registry format"):
        read_registry(OKVI4_XML, "xls")


def test_import_creates_then_updates_in_place(sched_store, tmp_path: Path):
    path = tmp_path / "stations.csv"
    path.write_text("id,name,lat,lon,interval,first,window\nS1,One,10,20,3600,0,60\nS2,Two,11,21,900,0,30\n")
    first = sq.import_file(sched_store, path, now=NOW)
    assert (first["created"], first["updated"], first["schedules_changed"]) == (2, 0, 2)
    path.write_text("id,name,lat,lon,interval,first,window\nS1,One renamed,10.5,20,3600,0,60\nS2,Two,11,21,1800,0,30\n")
    again = sq.import_file(sched_store, path, now=NOW)
    assert (again["created"], again["updated"], again["schedules_changed"]) == (0, 2, 1)
    page = sq.station(sched_store, "S1", now=NOW)
    assert page["name"] == "One renamed" and page["lat"] == 10.5 and page["registered"] is True
    assert sq.station(sched_store, "S2", now=NOW)["schedule"]["interval_s"] == 1800
    assert sched_store.station("S2")["interval_s"] == 1800  # the spine's station row follows
    assert sq.status(sched_store, now=NOW)["counts"]["never"] == 2


def test_edit_station_by_hand(sched_store, tmp_path: Path):
    path = tmp_path / "s.csv"
    path.write_text("S1,One,10,20,3600,0,60\n")
    sq.import_file(sched_store, path, "csv", now=NOW)
    out = sq.edit(sched_store, "S1", interval="15m", window="30", name="Uno", lat="12.5", now=NOW)
    assert out["schedule"]["interval_s"] == 900 and out["schedule"]["source"] == "manual"
    page = sq.station(sched_store, "S1", now=NOW)
    assert page["name"] == "Uno" and page["lat"] == 12.5 and page["schedule"]["window_s"] == 30
    with pytest.raises(NotFound):
        sq.edit(sched_store, "NOPE", name="x", now=NOW)
    with pytest.raises(BadRequest):
        sq.edit(sched_store, "S1", window="20m", now=NOW)  # longer than the interval
    with pytest.raises(BadRequest):
        sq.edit(sched_store, "S1", lat="95", now=NOW)
