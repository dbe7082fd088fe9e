"""Parsers never raise: mutated real samples (truncation, byte changes, NUL bytes, spliced and
random bytes) give units and problems, never an exception.  Bounded to 200 examples a format."""

from __future__ import annotations

import json
import math
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telmon.formats import decodes, detect, edl, lrgs, shef, toa5
from telmon.model import ParseOptions, ParseResult
from tests.support import SAMPLES

CORPUS = {
    "edl": ["telmon/testedl.txt"],
    "lrgs": ["goes/lrgs/OKVI4.data", "goes/lrgs/Nos6MinAirGap.input_goes"],
    "shef": ["goes/shef/ShefSample1.input_shef", "goes/shef/a.shef", "goes/shef/e.shef",
             "goes/shef/original_a_only.shef"],
    "toa5": ["goes/toa5/TestLogger_Hourly_1.dat", "goes/toa5/Example.dat"],
}
MODULES: dict[str, ModuleType] = {"edl": edl, "lrgs": lrgs, "shef": shef, "toa5": toa5}
OPTIONS = ParseOptions(
    default_tz="America/Chicago",
    decoders=decodes.load_platform_xml(SAMPLES / "goes/platforms/OKVI4-decodes.xml"),
)


@st.composite
def mutated(draw: st.DrawFn, fmt: str) -> bytes:
    data = bytearray((SAMPLES / draw(st.sampled_from(CORPUS[fmt]))).read_bytes())
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "change", "nul", "splice", "random", "digits"]))
        if kind == "random":
            data = bytearray(draw(st.binary(max_size=3000)))
            continue
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            data = data[:at]
        elif kind == "change" and data:
            for _ in range(draw(st.integers(1, 30))):
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif kind == "nul":
            data[at:at] = b"\x00" * draw(st.integers(1, 5))
        elif kind == "splice":
            data[at:at] = draw(st.binary(min_size=1, max_size=200))
        elif kind == "digits":  # absurd numbers: month 13, year 99999, huge values
            data[at:at] = draw(st.sampled_from([b"99999", b"13", b"9" * 400, b"-9999", b"2400", b"1e999"]))
    return bytes(data)


def check(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    for problem in result.problems:
        assert isinstance(problem.reason, str) and problem.reason.strip()
        assert problem.line is None or problem.line >= 1
        assert problem.offset is None or problem.offset >= 0
    for unit in result.units:
        assert isinstance(unit.station, str) and unit.station
        json.dumps(unit.meta, allow_nan=False)
        for entry in unit.entries:
            assert math.isfinite(entry.observed_at)
            for value in entry.values.values():
                assert value is None or (isinstance(value, float) and math.isfinite(value))


@pytest.mark.parametrize("fmt", sorted(MODULES))
def test_parse_never_raises(fmt: str) -> None:
    module = MODULES[fmt]

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated(fmt))
    def run(data: bytes) -> None:
        check(module.parse(data, name="fuzz", options=OPTIONS))
        module.sniff(data[:4096])
        detect(data[:4096])

    run()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_every_format(data: bytes) -> None:
    for module in MODULES.values():
        check(module.parse(data, options=OPTIONS))
