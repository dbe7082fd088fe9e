"""Energy-sensor events (shared/FORMATS.md "Energy sensor events"; samples/energy-sensors).

One event per line: sections ``Name: key=value; key=value;`` or ``Name: v1;v2;...``::

    Device: ID=1; Fw=16071801; Evt=2; Alarms: CoilRevesed=OFF; Power: Active=1753W; ...
    Peaks: 7.33;7.31;...; UTC Time: 2016-10-4 16:47:50; hz: 49.87; WiFi Strength: -62; Dummy: 20

``parse_line`` gives the sections as JSON-ready data with typed values (units stripped, a
decimal comma read as a dot, ON/OFF as booleans); ``read_event`` takes that (or the old
service's all-string form, or the double-encoded JSON string its distributed client posted)
and returns the event's fields, or raises BadEvent naming the field and the problem.  The
misspelt keys (``CoilRevesed``, ``Appearent``) are part of the format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from telmon.push.errors import BadEvent

_SECTION = re.compile(r"^[A-Za-z][A-Za-z0-9 _-]{0,63}$")
_NUMBER = re.compile(r"^([+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?)\s*(W|var|VA|V|rad|Hz|A|dBm)?$")
_TIME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?Z?$")


def typed(text: str) -> Any:
    """'1753W' -> 1753, '-43,841rad' -> -43.841, 'OFF' -> False; other text stays text."""
    if text == "ON":
        return True
    if text == "OFF":
        return False
    m = _NUMBER.match(text)
    if not m:
        return text
    num = m.group(1).replace(",", ".")
    if "." in num or "e" in num or "E" in num:
        return float(num)
    return int(num)


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def parse_line(line: str) -> dict[str, Any]:
    """Sections of one event line.  Raises BadEvent for text that is not in the format."""
    text = line.strip()
    if not text:
        raise BadEvent("empty event: the body holds no text")
    if "\n" in text:
        raise BadEvent(f"one event per request: the body holds {len(text.splitlines())} lines")
    sections: dict[str, Any] = {}
    current: str | None = None
    for token in text.split(";"):
        item = token.strip()
        if not item:
            continue
        head, colon, rest = item.partition(":")
        if colon and "=" not in head:
            # "Name: first item" starts a section; the first item of a list section may itself
            # hold colons (UTC Time: 2016-10-4 16:47:50)
            name = head.strip()
            if not _SECTION.match(name):
                raise BadEvent(f"bad section name {_clip(name)!r} (letters, digits, spaces, '_' or '-')")
            if name in sections:
                raise BadEvent(f"section {name!r} appears twice")
            current = name
            item = rest.strip()
            if not item:
                sections[name] = None  # filled by the next items, else reported empty below
                continue
            sections[name] = {} if _is_pair(item) else []
        elif current is None:
            raise BadEvent(f"expected 'Section: ...' at the start, found {_clip(item)!r}")
        if sections[current] is None:
            sections[current] = {} if _is_pair(item) else []
        target = sections[current]
        if isinstance(target, dict):
            key, eq, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or not key:
                raise BadEvent(f"section {current!r}: {_clip(item)!r} is not key=value")
            if ":" in value:
                raise BadEvent(f"section {current!r}: ':' is not allowed in the value of {key!r} ({_clip(item)!r})")
            if not value:
                raise BadEvent(f"section {current!r}: {key!r} has no value")
            if key in target:
                raise BadEvent(f"section {current!r}: key {key!r} appears twice")
            target[key] = typed(value)
        else:
            if "=" in item:
                raise BadEvent(f"section {current!r}: {_clip(item)!r} mixes key=value into a list of values")
            if target and ":" in item:
                raise BadEvent(f"section {current!r}: ':' is not allowed in a list value ({_clip(item)!r})")
            target.append(typed(item))
    for name, value in sections.items():
        if not value:
            raise BadEvent(f"section {name!r} is empty")
    return sections


def _is_pair(item: str) -> bool:
    return "=" in item


@dataclass(frozen=True, slots=True)
class Event:
    device_id: int
    device_fw: int
    device_evt: int
    reported_at: float
    coil_reversed: bool
    power_active_w: float
    power_reactive_var: float
    power_apparent_va: float
    line_current_a: float
    line_voltage_v: float
    line_phase_rad: float
    line_frequency_hz: float
    peaks: tuple[float, ...]
    fft_re: tuple[float, ...]
    fft_img: tuple[float, ...]
    wifi_strength_dbm: float
    dummy: str

    @property
    def station(self) -> str:
        return str(self.device_id)

    def features(self) -> list[float]:
        """The eight clustering features of the old service, in its order: active, reactive,
        apparent power, current, voltage, then the first three peaks."""
        return [self.power_active_w, self.power_reactive_var, self.power_apparent_va, self.line_current_a,
                self.line_voltage_v, *self.peaks[:3]]

    def row(self, received_at: float) -> tuple[Any, ...]:
        """Values for push_sensor_events, in writer.EVENT_COLUMNS order."""
        return (received_at, self.device_id, self.device_fw, self.device_evt, self.reported_at,
                int(self.coil_reversed), self.power_active_w, self.power_reactive_var, self.power_apparent_va,
                self.line_current_a, self.line_voltage_v, self.line_phase_rad, self.line_frequency_hz,
                orjson.dumps(self.peaks).decode(), orjson.dumps(self.fft_re).decode(),
                orjson.dumps(self.fft_img).decode(), self.wifi_strength_dbm, self.dummy)

    def series(self) -> dict[str, float]:
        """label -> value of the series each event feeds (``sensor.<id>.<label>``)."""
        return {
            "power.active": self.power_active_w, "power.reactive": self.power_reactive_var,
            "power.apparent": self.power_apparent_va, "line.current": self.line_current_a,
            "line.voltage": self.line_voltage_v, "line.frequency": self.line_frequency_hz,
            "wifi.strength": self.wifi_strength_dbm,
        }


def _section(data: dict[str, Any], name: str, kind: type) -> Any:
    if name not in data:
        raise BadEvent(f"missing section {name!r}")
    value = data[name]
    if kind is dict and not isinstance(value, dict):
        raise BadEvent(f"section {name!r} must hold key=value pairs (a JSON object), got {_clip(_dump(value))}")
    return value


def _dump(v: Any) -> str:
    try:
        return orjson.dumps(v).decode()
    except TypeError:
        return repr(v)


def _number(value: Any, where: str) -> float:
    if isinstance(value, list) and len(value) == 1:  # the list form of one-value sections
        value = value[0]
    if isinstance(value, str):
        value = typed(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadEvent(f"{where}: {_clip(_dump(value))} is not a number")
    if value != value or value in (float("inf"), float("-inf")):
        raise BadEvent(f"{where}: {_clip(_dump(value))} is not a finite number")
    return float(value)


def _whole(value: Any, where: str) -> int:
    v = _number(value, where)
    if v != int(v):
        raise BadEvent(f"{where}: {v!r} is not a whole number")
    return int(v)


def _key(data: dict[str, Any], section: str, key: str) -> Any:
    sec = _section(data, section, dict)
    if key not in sec:
        raise BadEvent(f"missing {section}.{key}")
    return sec[key]


def _numbers(data: dict[str, Any], name: str) -> tuple[float, ...]:
    value = data.get(name)
    if name not in data:
        raise BadEvent(f"missing section {name!r}")
    if isinstance(value, str):  # the old all-string form kept some lists as 'a;b;c'
        value = [v for v in value.split(";") if v.strip()]
    if not isinstance(value, list):
        raise BadEvent(f"section {name!r} must be a list of numbers, got {_clip(_dump(value))}")
    return tuple(_number(v, f"{name}[{i}]") for i, v in enumerate(value))


def _scalar(data: dict[str, Any], name: str) -> Any:
    if name not in data:
        raise BadEvent(f"missing section {name!r}")
    value = data[name]
    if isinstance(value, list):
        if len(value) != 1:
            raise BadEvent(f"section {name!r} must hold one value, got {len(value)}")
        value = value[0]
    if isinstance(value, (dict, list)) or value is None:
        raise BadEvent(f"section {name!r} must hold one value, got {_clip(_dump(value))}")
    return value


def _utc(value: Any) -> float:
    if isinstance(value, str):
        m = _TIME.match(value.strip())
        if m:
            try:
                dt = datetime(*(int(g) for g in m.groups()), tzinfo=timezone.utc)  # type: ignore[misc]
            except ValueError as exc:
                raise BadEvent(f"UTC Time: {value!r} is not a real date ({exc})") from None
            return dt.timestamp()
    raise BadEvent(f"UTC Time: cannot read {_clip(_dump(value))} as YYYY-M-D H:M:S")


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().upper() in ("ON", "OFF"):
        return value.strip().upper() == "ON"
    raise BadEvent(f"{where}: {_clip(_dump(value))} is not ON or OFF")


def read_event(data: Any) -> Event:
    """The event in parsed form (from parse_line, or JSON).  Raises BadEvent."""
    if not isinstance(data, dict):
        raise BadEvent(f"an event is a JSON object of sections, got {_clip(_dump(data))}")
    # fields are read in the order of the line, so the first problem named is the first one there
    device = (_whole(_key(data, "Device", "ID"), "Device.ID"), _whole(_key(data, "Device", "Fw"), "Device.Fw"),
              _whole(_key(data, "Device", "Evt"), "Device.Evt"))
    coil = _flag(_key(data, "Alarms", "CoilRevesed"), "Alarms.CoilRevesed")
    power = (_number(_key(data, "Power", "Active"), "Power.Active"),
             _number(_key(data, "Power", "Reactive"), "Power.Reactive"),
             _number(_key(data, "Power", "Appearent"), "Power.Appearent"))
    line = (_number(_key(data, "Line", "Current"), "Line.Current"),
            _number(_key(data, "Line", "Voltage"), "Line.Voltage"),
            _number(_key(data, "Line", "Phase"), "Line.Phase"))
    peaks = _numbers(data, "Peaks")
    if len(peaks) < 3:
        raise BadEvent(f"Peaks: need at least 3 values (the first three are clustering features), got {len(peaks)}")
    fft_re, fft_img = _numbers(data, "FFT Re"), _numbers(data, "FFT Img")
    if len(fft_re) != len(fft_img):
        raise BadEvent(f"FFT Re has {len(fft_re)} values but FFT Img has {len(fft_img)}")
    reported_at = _utc(_scalar(data, "UTC Time"))
    frequency = _number(_scalar(data, "hz"), "hz")
    wifi = _number(_scalar(data, "WiFi Strength"), "WiFi Strength")
    dummy = _scalar(data, "Dummy")
    return Event(
        device_id=device[0], device_fw=device[1], device_evt=device[2], reported_at=reported_at,
        coil_reversed=coil, power_active_w=power[0], power_reactive_var=power[1], power_apparent_va=power[2],
        line_current_a=line[0], line_voltage_v=line[1], line_phase_rad=line[2], line_frequency_hz=frequency,
        peaks=peaks, fft_re=fft_re, fft_img=fft_img, wifi_strength_dbm=wifi, dummy=str(dummy),
    )


def decode_json_event(body: bytes) -> Any:
    """A JSON body: the parsed event, or the old client's JSON string holding it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadEvent(f"body is not valid JSON: {exc}") from None
    if isinstance(data, str):
        # send_distributed_events.py posted json=<the text /log/parse returned>: JSON in a JSON string
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BadEvent(f"body is a JSON string that does not hold JSON (double encoding): {exc}") from None
    return data


def decode_text(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8")
    except LookupError:
        raise BadEvent(f"unknown charset {charset!r}") from None
    except UnicodeDecodeError as exc:
        raise BadEvent(f"body is not {charset or 'utf-8'} text: {exc.reason} at byte {exc.start}") from None
