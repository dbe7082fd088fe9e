"""telmon.formats.detect picks a format by content: file names are never looked at."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from telmon.formats import SNIFF_BYTES, by_name, detect
from tests.support import SAMPLES

EXPECTED = {
    "telmon/nwiswa.telemetry.f3671554b79d4af69b26cb2ea3b0da98.20180303T071510.grfilt.edl": "edl",
    "telmon/nwiswa.telemetry.f3671554b79d4af69b26cb2ea3b0da98.20180304T071510.grfilt.edl": "edl",
    "telmon/testedl.txt": "edl",
    "goes/lrgs/OKVI4.data": "lrgs",
    "goes/lrgs/Nos6MinAirGap.input_goes": "lrgs",
    "goes/shef/ShefSample1.input_shef": "shef",
    "goes/shef/ShefSample2.input_shef": "shef",
    "goes/shef/a.shef": "shef",
    "goes/shef/e.shef": "shef",
    "goes/shef/original_a_only.shef": "shef",
    "goes/shef/original_e_only.shef": "shef",
    "goes/toa5/Example.dat": "toa5",
    "goes/toa5/TestLogger_Hourly_1.dat": "toa5",
}
MISLEADING = {"edl": "data.toa5.dat", "lrgs": "station.edl", "shef": "OKVI4.data", "toa5": "report.shef"}


@pytest.mark.parametrize("relative, fmt", sorted(EXPECTED.items()))
def test_detect_by_content_under_a_misleading_name(relative: str, fmt: str, tmp_path: Path) -> None:
    renamed = tmp_path / MISLEADING[fmt]
    renamed.write_bytes((SAMPLES / relative).read_bytes())
    found = detect(renamed.read_bytes()[:SNIFF_BYTES])
    assert found is not None and found.NAME == fmt
    result = found.parse(renamed.read_bytes(), name=renamed.name)
    assert result.units and result.units[0].station


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\nSed do eiusmod tempor.\n",
        b'{"station": "12113390", "entries": [1, 2, 3]}',
        b"#sensor number, time (ISO8601), expected value\n1,2023-10-19T18:00:00Z,2.5\n",
        b"...HEADLINE...\n.\n..\n",
    ],
)
def test_detect_returns_none_for_other_text(head: bytes) -> None:
    assert detect(head) is None


def test_detect_random_text_and_bytes() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        words = " ".join("".join(rng.choice("abcdefghij ,.") for _ in range(8)) for _ in range(50))
        assert detect(words.encode()) is None
        noise = bytes(rng.randrange(256) for _ in range(512))
        assert detect(noise) is None


def test_by_name() -> None:
    assert [by_name(n).NAME for n in ("edl", "lrgs", "shef", "toa5")] == ["edl", "lrgs", "shef", "toa5"]
    assert by_name("nope") is None
