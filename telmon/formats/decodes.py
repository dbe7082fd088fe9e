"""A small interpreter for OpenDCS DECODES scripts: the subset GOES self-timed platforms such as
OKVI4 use (samples/goes/platforms/OKVI4-decodes.xml).

Supported format operations: ``nx`` (skip n bytes), ``n/`` (skip to after the n-th next
newline), ``n( ... )`` (repeat a group) and ``nf(s,type,len,sensor)`` sensor fields of a fixed
length, with type ``a`` (ASCII number), ``b`` (unsigned pseudo-binary) or ``i`` (signed,
two's complement pseudo-binary), as OpenDCS's NumberParser reads them.  Unit converters:
``none``/``raw``, ``linear`` (A*x + B), ``usgs-standard`` (A*(x + B)^C + D) and ``poly-5``.

Times follow DECODES for self-timed messages: the most recent sample of a sensor is at the
message time truncated down to the sensor's recording interval (counted from its time of first
sample); each earlier sample in the message is one interval before the next.

``load_platform_xml`` raises ConfigError on a file it cannot use; ``Decoder.decode`` never
raises, it returns the problems it met.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import NamedTuple, Union

from telmon.errors import ConfigError
from telmon.model import Entry

# A script whose groups do not consume data (e.g. "1000000(0x)") must not spin forever.
_MAX_STEPS = 100_000
_ASCII_NUMBER = re.compile(rb"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


@dataclass(frozen=True, slots=True)
class PlatformInfo:
    """What a platform file says about one GOES transport medium (one DCP address).

    Times of day are seconds after 00:00 UTC, spans are seconds; None when not given.
    """

    dcp_address: str
    site_name: str | None = None
    description: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    medium_type: str | None = None
    channel: int | None = None
    assigned_time: int | None = None  # first transmission of the day
    transmit_window: int | None = None
    transmit_interval: int | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class Sensor:
    """One configured sensor; ``parameter`` (the SHEF-PE code, else the name) names its values."""

    number: int
    name: str
    parameter: str
    interval: int = 0  # recording interval, seconds; 0 = unknown
    first_sample: int = 0  # seconds after midnight UTC of the day's first sample
    units: str | None = None
    algorithm: str = "none"
    coefficients: tuple[float, ...] = ()

    def convert(self, raw: float) -> float | None:
        """Raw field value -> engineering units; None when the formula has no real result."""
        c = self.coefficients
        try:
            if self.algorithm == "usgs-standard":
                value = c[0] * (raw + c[1]) ** c[2] + c[3]
            elif self.algorithm == "linear":
                value = c[0] * raw + c[1]
            elif self.algorithm == "poly-5":
                value = sum(k * raw ** (5 - i) for i, k in enumerate(c[:6]))
            else:
                value = raw
        except (OverflowError, ZeroDivisionError, ValueError):
            return None
        # A negative base with a fractional exponent gives a complex number in Python.
        if isinstance(value, complex) or not math.isfinite(value):
            return None
        # 12 significant digits drop float noise (0.01 * 610 = 6.1000000000000005), not data.
        return float(f"{value:.12g}")


class _Skip(NamedTuple):
    count: int
    lines: bool  # "n/": skip to after the n-th newline instead of n bytes


class _Field(NamedTuple):
    reps: int
    dtype: str
    length: int
    sensor: int


class _Group(NamedTuple):
    reps: int
    ops: tuple[_Op, ...]


_Op = Union[_Skip, _Field, _Group]


class _EndOfData(Exception):
    """The message body ended: DECODES stops there without error."""


def parse_format(statement: str) -> tuple[_Op, ...]:
    """Compile a format statement; raises ValueError naming what is not supported."""
    ops, i = _parse_seq(statement, 0)
    if i < len(statement):
        raise ValueError(f"unbalanced ')' at character {i + 1}")
    return ops


def _parse_seq(s: str, i: int) -> tuple[tuple[_Op, ...], int]:
    ops: list[_Op] = []
    n = len(s)
    while i < n:
        ch = s[i]
        if ch.isspace() or ch == ",":
            i += 1
            continue
        if ch == ")":
            return tuple(ops), i
        start = i
        while i < n and s[i] in "0123456789":
            i += 1
        reps = int(s[start:i]) if i > start else 1
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            raise ValueError("format statement ends after a repeat count")
        ch = s[i]
        if ch in "xX/":
            ops.append(_Skip(reps, ch == "/"))
            i += 1
        elif ch == "(":
            inner, i = _parse_seq(s, i + 1)
            if i >= n:
                raise ValueError("missing ')' in format statement")
            ops.append(_Group(reps, inner))
            i += 1
        elif ch in "fF" and s[i + 1 : i + 2] == "(":
            close = s.find(")", i)
            if close < 0:
                raise ValueError("missing ')' after f(")
            ops.append(_parse_field(reps, s[i + 2 : close]))
            i = close + 1
        else:
            raise ValueError(f"unsupported DECODES operation at {s[i:i + 12]!r}")
    return tuple(ops), i


def _parse_field(reps: int, args: str) -> _Field:
    parts = [p.strip().lower() for p in args.split(",")]
    if len(parts) != 4 or parts[0] != "s":
        raise ValueError(f"only sensor fields f(s,type,length,sensor) are supported, not f({args})")
    if parts[1] not in ("a", "b", "i"):
        raise ValueError(f"field type {parts[1]!r} is not supported (a, b, i are)")
    if not (_whole(parts[2]) and _whole(parts[3])) or int(parts[2]) == 0:
        raise ValueError(f"field length and sensor must be numbers in f({args})")
    return _Field(reps, parts[1], int(parts[2]), int(parts[3]))


@dataclass(frozen=True, slots=True)
class Decoder:
    """A platform's decoding script: ``decode(body, message_time)`` -> (entries, problems).

    ``body`` is the message after the 37-byte header (its first byte is the flag byte).
    """

    platform: PlatformInfo
    sensors: dict[int, Sensor]
    ops: tuple[_Op, ...]
    ascending: bool = False  # DataOrder A: the last sample in the message is the newest
    script_name: str = ""

    @classmethod
    def from_statement(
        cls, statement: str, sensors: list[Sensor], platform: PlatformInfo, *, ascending: bool = False
    ) -> Decoder:
        return cls(platform, {s.number: s for s in sensors}, parse_format(statement), ascending)

    def decode(self, body: bytes, message_time: float) -> tuple[list[Entry], list[str]]:
        run = _Run(self.sensors, body)
        try:
            run.ops(self.ops)
        except _EndOfData:
            pass
        return self._timed(run.samples, message_time, run.problems), run.problems

    def _timed(
        self, samples: dict[int, list[float | None]], message_time: float, problems: list[str]
    ) -> list[Entry]:
        by_time: dict[float, dict[str, float | None]] = {}
        for number, values in samples.items():
            sensor = self.sensors.get(number) or Sensor(number, f"sensor {number}", str(number))
            step = sensor.interval
            if step <= 0:
                newest = message_time
                if len(values) > 1:
                    problems.append(
                        f"sensor {number} has no recording interval: kept 1 of {len(values)} samples"
                    )
                    values = values[-1:] if self.ascending else values[:1]
            else:
                day = message_time - message_time % 86400
                newest = day + sensor.first_sample + (message_time - day - sensor.first_sample) // step * step
            count = len(values)
            for j, value in enumerate(values):
                age = (count - 1 - j) if self.ascending else j
                by_time.setdefault(newest - age * step, {})[sensor.parameter] = value
        return [Entry(t, by_time[t]) for t in sorted(by_time)]


class _Run:
    """One execution of a script over one message body."""

    def __init__(self, sensors: dict[int, Sensor], body: bytes) -> None:
        self.sensors, self.body, self.pos, self.steps = sensors, body, 0, 0
        self.samples: dict[int, list[float | None]] = {}
        self.problems: list[str] = []

    def step(self) -> None:
        self.steps += 1
        if self.steps > _MAX_STEPS:
            self.problems.append(f"decoding script stopped after {_MAX_STEPS} steps")
            raise _EndOfData
        if self.pos >= len(self.body):
            raise _EndOfData

    def ops(self, ops: tuple[_Op, ...]) -> None:
        for op in ops:
            if isinstance(op, _Group):
                for _ in range(op.reps):
                    self.step()
                    self.ops(op.ops)
            elif isinstance(op, _Skip) and op.lines:
                for _ in range(op.count):
                    self.step()
                    self.pos = self.body.find(b"\n", self.pos) + 1 or len(self.body)
            elif isinstance(op, _Skip):
                self.pos += op.count
            else:
                for _ in range(op.reps):
                    self.step()
                    raw = self.body[self.pos : self.pos + op.length]
                    self.pos += op.length
                    if len(raw) < op.length:
                        self.problems.append(
                            f"message body ends inside a {op.length}-byte field of sensor {op.sensor}"
                        )
                        raise _EndOfData
                    self.sample(op, raw)

    def sample(self, op: _Field, raw: bytes) -> None:
        text = raw.strip()
        if not text:
            return  # DECODES skips blank fields: no sample, no time slot
        value: float | None = None
        if text in (b"m", b"M") or not text.strip(b"/"):
            pass  # DECODES' missing-value symbols
        elif op.dtype == "a":
            value = float(raw) if _ASCII_NUMBER.match(raw) else None
            if value is None or not math.isfinite(value):
                self.problems.append(f"sensor {op.sensor}: cannot read field {raw!r} as an ASCII number")
                value = None
        elif min(raw) < 0x3F:  # pseudo-binary uses only '?' and 0x40-0x7F
            self.problems.append(f"sensor {op.sensor}: field {raw!r} is not pseudo-binary")
        else:
            n = 0
            for c in raw:
                n = (n << 6) | (c & 0x3F)
            if op.dtype == "i" and n >> (6 * len(raw) - 1):
                n -= 1 << (6 * len(raw))  # two's complement over 6 bits a byte
            value = float(n)
        sensor = self.sensors.get(op.sensor)
        if value is not None and sensor is not None:
            value = sensor.convert(value)
        self.samples.setdefault(op.sensor, []).append(value)


# --- platform XML -----------------------------------------------------------------------

_DMS = re.compile(r"^\s*([NSEW+-])?\s*(\d+(?:\.\d+)?)(?:\D+(\d+(?:\.\d+)?))?(?:\D+(\d+(?:\.\d+)?))?\D*$")


def parse_dms(text: str | None) -> float | None:
    """'N 42°16'22"' / 'W 91 03 49' / '-91.06' -> signed decimal degrees; None if unreadable."""
    if not text:
        return None
    m = _DMS.match(text.strip())
    if not m:
        return None
    hemi, deg, minutes, seconds = m.groups()
    value = float(deg) + float(minutes or 0) / 60 + float(seconds or 0) / 3600
    return round(-value if hemi in ("S", "W", "-") else value, 6)


def parse_hms(text: str | None) -> int | None:
    """'00:04:50' -> 290, '01:00' (HH:MM, as OpenDCS writes intervals) -> 3600; None if unreadable."""
    if not text:
        return None
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(_whole(p) for p in parts):
        return None
    h, m, s = (int(p) for p in (parts + ["0", "0"])[:3])
    return h * 3600 + m * 60 + s


def _text(el: ET.Element | None, path: str) -> str | None:
    found = el.find(path) if el is not None else None
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _int(text: str | None) -> int | None:
    return int(text) if text and _whole(text) else None


def _whole(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts "¹", which int() refuses."""
    return text.isascii() and text.isdigit()


def _sensors(config: ET.Element, script: ET.Element | None) -> list[Sensor]:
    converters: dict[int, tuple[str, tuple[float, ...], str | None]] = {}
    for ss in script.iter("ScriptSensor") if script is not None else ():
        conv = ss.find("UnitConverter")
        number = _int(ss.get("SensorNumber"))
        if conv is None or number is None:
            continue
        algorithm = (_text(conv, "Algorithm") or "none").lower()
        if algorithm not in ("none", "raw", "linear", "usgs-standard", "poly-5"):
            raise ValueError(f"sensor {number}: unit converter {algorithm!r} is not supported")
        try:
            coeffs = tuple(float(_text(conv, k) or 0.0) for k in "ABCDEF")
        except ValueError:
            raise ValueError(f"sensor {number}: unit converter coefficients must be numbers") from None
        converters[number] = (algorithm, coeffs, conv.get("ToUnitsAbbr"))
    sensors: list[Sensor] = []
    for cs in config.iter("ConfigSensor"):
        number = _int(cs.get("SensorNumber"))
        if number is None:
            continue
        name = _text(cs, "SensorName") or f"sensor {number}"
        codes = [
            dt.get("Code", "").strip()
            for dt in cs.iter("DataType")
            if dt.get("Standard", "").upper() == "SHEF-PE"
        ]
        parameter = next((c for c in codes if c), name)
        if any(s.parameter == parameter for s in sensors):
            parameter = f"{parameter}.{number}"  # one name for two sensors would mix their values
        algorithm, coeffs, units = converters.get(number, ("none", (), None))
        interval, first = parse_hms(_text(cs, "RecordingInterval")), parse_hms(_text(cs, "TimeOfFirstSample"))
        sensors.append(Sensor(number, name, parameter, interval or 0, first or 0, units, algorithm, coeffs))
    return sensors


def _platforms(root: ET.Element) -> list[tuple[PlatformInfo, ET.Element | None, ET.Element | None]]:
    """(info, config, script) for each GOES transport medium in the file."""
    # A Platform may name its config only; the full one is then elsewhere in the Database.
    full = [c for c in root.iter("PlatformConfig") if c.find("ConfigSensor") is not None]
    configs = {c.get("ConfigName"): c for c in full}
    found = []
    for plat in root.iter("Platform"):
        site = plat.find("Site")
        names = site.findall("SiteName") if site is not None else []
        local = [n for n in names if (n.get("NameType") or "").lower() == "local"] or names
        config = plat.find("PlatformConfig")
        if config is not None and config.find("ConfigSensor") is None:
            config = configs.get(config.get("ConfigName"), config)
        for tm in plat.iter("TransportMedium"):
            mtype = tm.get("MediumType") or ""
            address = (tm.get("MediumId") or "").strip().upper()
            if not address or not mtype.lower().startswith("goes"):
                continue
            info = PlatformInfo(
                dcp_address=address,
                site_name=(local[0].text or "").strip() or None if local else None,
                description=_text(plat, "Description"),
                latitude=parse_dms(_text(site, "Latitude")),
                longitude=parse_dms(_text(site, "Longitude")),
                medium_type=mtype,
                channel=_int(_text(tm, "ChannelNum")),
                assigned_time=parse_hms(_text(tm, "AssignedTime")),
                transmit_window=parse_hms(_text(tm, "TransmitWindow")),
                transmit_interval=parse_hms(_text(tm, "TransmitInterval")),
                timezone=_text(tm, "TimeZone"),
            )
            ref = tm.find("DecodesScript")
            scripts = config.findall("DecodesScript") if config is not None else []
            wanted = ref.get("ScriptName") if ref is not None else None
            script = next((s for s in scripts if s.get("ScriptName") == wanted), None)
            if script is None and wanted is None and len(scripts) == 1:
                script = scripts[0]
            found.append((info, config, script))
    return found


def _root(source: str | os.PathLike[str] | bytes) -> tuple[ET.Element, str | None]:
    path = None if isinstance(source, (bytes, bytearray)) else os.fspath(source)
    try:
        if path is None:
            return ET.fromstring(source), None
        return ET.parse(path).getroot(), path
    except (ET.ParseError, OSError, LookupError, ValueError) as err:  # LookupError: bad encoding=
        raise ConfigError(f"cannot read platform XML: {err}", path=path) from None


def load_platform_infos(source: str | os.PathLike[str] | bytes) -> dict[str, PlatformInfo]:
    """Every GOES transport medium in an OpenDCS platform XML file, by DCP address."""
    root, _ = _root(source)
    return {info.dcp_address: info for info, _, _ in _platforms(root)}


def load_platform_xml(source: str | os.PathLike[str] | bytes) -> dict[str, Decoder]:
    """Decoders by DCP address (uppercase) from an OpenDCS platform XML file (a path or the bytes).

    Each Decoder carries its ``platform`` (PlatformInfo: site lat/lon, channel, schedule).
    Media without a decoding script are left out (see load_platform_infos).
    Raises ConfigError for unreadable XML or a script using unsupported operations.
    """
    root, path = _root(source)
    decoders: dict[str, Decoder] = {}
    for info, config, script in _platforms(root):
        if script is None or config is None:
            continue
        statements = [fs.text or "" for fs in script.iter("FormatStatement")]
        name = script.get("ScriptName") or ""
        where = f"platform {info.dcp_address} script {name!r}"
        if not statements:
            raise ConfigError("decoding script has no format statement", path=path, key=where)
        try:
            sensors = _sensors(config, script)
            ops = parse_format(statements[0])
        except ValueError as err:
            raise ConfigError(str(err), path=path, key=where) from None
        order = (_text(script, "DataOrder") or "D").upper()
        decoders[info.dcp_address] = Decoder(info, {s.number: s for s in sensors}, ops, order == "A", name)
    return decoders
