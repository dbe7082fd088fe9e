"""Station registries: OpenDCS platform XML, NOAA PDT fixed-width lines, NWS HADS pipe lists
and a plain CSV (FORMATS.md, "Platform schedules").

Each reader returns the stations it could read and a problem (file, line, reason) for each line
it could not; a bad line never stops the rest.  Nothing here touches a store.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telmon.errors import ConfigError, InvalidTime
from telmon.formats.decodes import load_platform_infos, parse_dms, parse_hms
from telmon.schedule.slots import Schedule
from telmon.timeutil import parse_span

FORMATS = ("opendcs", "pdt", "hads", "csv")
# HADS lists carry no transmit window; GOES windows are tens of seconds, so one minute is
# assumed (and said so in the station's metadata) unless the caller gives another.
DEFAULT_WINDOW = 60.0
_HEX8 = re.compile(r"^[0-9A-Fa-f]{8}$")


@dataclass(slots=True)
class RegistryStation:
    code: str
    name: str | None = None
    kind: str = "station"
    lat: float | None = None
    lon: float | None = None
    schedule: Schedule | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegistryProblem:
    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}" if self.line else f"{self.path}: {self.reason}"


@dataclass(slots=True)
class Registry:
    """What one registry file gave."""

    path: str
    format: str
    stations: list[RegistryStation] = field(default_factory=list)
    problems: list[RegistryProblem] = field(default_factory=list)


class _Bad(ValueError):
    """A field that cannot be read; the message says which and why."""


def read_registry(path: str | Path, fmt: str | None = None, *, default_window: float = DEFAULT_WINDOW) -> Registry:
    """Read a registry file; ``fmt`` is one of FORMATS, or None to recognise it by content.

    Raises ConfigError when the file cannot be read at all (missing, unknown format, bad XML).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read registry file: {exc.strerror or exc}", path=str(p)) from None
    fmt = fmt or detect_format(data)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown registry format {fmt!r}; use one of {', '.join(FORMATS)}", path=str(p))
    if fmt == "opendcs":
        return read_opendcs(data, str(p), default_window=default_window)
    text = data.decode("utf-8-sig", errors="replace")
    reader = {"pdt": read_pdt, "hads": read_hads, "csv": read_csv}[fmt]
    return reader(text, str(p), default_window=default_window)


def detect_format(data: bytes) -> str:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "opendcs"
    lines = [ln for ln in head.decode("utf-8", "replace").splitlines() if ln.strip() and not ln.startswith("#")]
    sample = lines[:20]
    if sample and sum("|" in ln for ln in sample) > len(sample) / 2:
        return "hads"
    if sample and sum(_HEX8.match(ln[6:14]) is not None and len(ln) >= 47 for ln in sample) > len(sample) / 2:
        return "pdt"
    return "csv"


# --- field readers ----------------------------------------------------------------------------


def _span(text: str, what: str) -> float:
    """'00:04:50' / '01:00' (HH:MM, as OpenDCS writes) / '3600' / '15m' -> seconds."""
    s = text.strip()
    if ":" in s:
        v = parse_hms(s)
        if v is None:
            raise _Bad(f"{what} {text!r} is not HH:MM[:SS]")
        return float(v)
    try:
        return float(s) if re.fullmatch(r"\d+(\.\d+)?", s) else parse_span(s)
    except InvalidTime:
        raise _Bad(f"{what} {text!r} is not seconds, HH:MM:SS or a span like 15m") from None


def _coord(text: str, what: str, limit: float) -> float | None:
    s = text.strip()
    if not s:
        return None
    v = parse_dms(s)
    if v is None or not -limit <= v <= limit:
        raise _Bad(f"{what} {text!r} is not decimal degrees or degrees minutes seconds within ±{limit:g}")
    return v


def _signed_dms(text: str, deg_digits: int, what: str, limit: float) -> float | None:
    """PDT coordinates: sign, degrees (2 or 3 digits), minutes, seconds: '+421622', '-0910349'."""
    s = text.strip()
    if not s or set(s) <= {"0", "+", "-"}:
        return None
    m = re.fullmatch(rf"([+-]?)(\d{{{deg_digits}}})(\d\d)(\d\d)", s)
    if not m or int(m.group(3)) >= 60 or int(m.group(4)) >= 60:
        raise _Bad(f"{what} {text!r} is not sign + {'D' * deg_digits}MMSS")
    value = int(m.group(2)) + int(m.group(3)) / 60 + int(m.group(4)) / 3600
    if value > limit:
        raise _Bad(f"{what} {text!r} is beyond ±{limit:g} degrees")
    return round(-value if m.group(1) == "-" else value, 6)


def _hhmmss(text: str, what: str) -> int:
    if not re.fullmatch(r"\d{6}", text) or int(text[2:4]) >= 60 or int(text[4:6]) >= 60:
        raise _Bad(f"{what} {text!r} is not HHMMSS")
    return int(text[0:2]) * 3600 + int(text[2:4]) * 60 + int(text[4:6])


def _schedule(interval: float, first: float, window: float, baud: int | None = None) -> Schedule:
    try:
        return Schedule(interval, first, window, baud, "registry")
    except ValueError as exc:
        raise _Bad(str(exc)) from None


# --- OpenDCS platform XML ---------------------------------------------------------------------


def read_opendcs(data: bytes, path: str, *, default_window: float = DEFAULT_WINDOW) -> Registry:
    """Every GOES transport medium of an OpenDCS platform XML file (self-timed ones get a schedule)."""
    reg = Registry(path, "opendcs")
    infos = load_platform_infos(data)  # ConfigError on unreadable XML
    if not infos:
        reg.problems.append(RegistryProblem(path, None, "no GOES TransportMedium found"))
    for address, info in infos.items():
        if not _HEX8.match(address):
            reg.problems.append(RegistryProblem(path, None, f"platform {address!r}: MediumId is not a DCP address"))
            continue
        meta: dict[str, Any] = {"channel": info.channel, "medium_type": info.medium_type,
                                "description": info.description, "registry": "opendcs"}
        sched = None
        if (info.medium_type or "").lower() in ("goes-self-timed", "goes") and info.transmit_interval:
            window = info.transmit_window
            if window is None:
                window, meta["window_assumed"] = default_window, True
            try:
                sched = _schedule(info.transmit_interval, info.assigned_time or 0, window)
            except _Bad as exc:
                reg.problems.append(RegistryProblem(path, None, f"platform {address}: {exc}"))
                continue
        reg.stations.append(RegistryStation(address, info.site_name, "goes-dcp", info.latitude, info.longitude,
                                            sched, {k: v for k, v in meta.items() if v is not None}))
    return reg


# --- NOAA PDT ---------------------------------------------------------------------------------

# (name, offset, width) as FORMATS.md gives them
_PDT = (("agency", 0, 6), ("address", 6, 8), ("type", 14, 1), ("channel", 15, 3), ("first", 22, 6),
        ("interval", 28, 6), ("window", 34, 4), ("baud", 38, 4), ("state", 43, 2), ("description", 47, 31),
        ("lat", 78, 7), ("lon", 85, 8))


def read_pdt(text: str, path: str, *, default_window: float = DEFAULT_WINDOW) -> Registry:
    reg = Registry(path, "pdt")
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            reg.stations.append(_pdt_line(line.rstrip("\r\n")))
        except _Bad as exc:
            reg.problems.append(RegistryProblem(path, lineno, str(exc)))
    return reg


def _pdt_line(line: str) -> RegistryStation:
    if len(line) < 47:
        raise _Bad(f"line has {len(line)} characters; a PDT line has at least 47 (up to the description)")
    f = {name: line[off:off + width].strip() for name, off, width in _PDT}
    if not _HEX8.match(f["address"]):
        raise _Bad(f"DCP address {f['address']!r} is not 8 hex digits (columns 7-14)")
    baud = int(f["baud"]) if f["baud"].isdigit() and int(f["baud"]) > 0 else None
    sched = None
    interval = _hhmmss(f["interval"], "st_xmit_interval") if f["interval"] else 0
    if interval:
        w = f["window"]
        if not re.fullmatch(r"\d{4}", w) or int(w[2:]) >= 60:
            raise _Bad(f"st_xmit_window {w!r} is not MMSS")
        sched = _schedule(interval, _hhmmss(f["first"], "st_first_xmit_sod"), int(w[:2]) * 60 + int(w[2:]), baud)
    meta = {"agency": f["agency"] or None, "type": f["type"] or None,
            "channel": int(f["channel"]) if f["channel"].isdigit() else None, "baud": baud,
            "state": f["state"] or None, "registry": "pdt"}
    return RegistryStation(
        f["address"].upper(), f["description"] or None, "goes-dcp",
        _signed_dms(f["lat"], 2, "latitude", 90), _signed_dms(f["lon"], 3, "longitude", 180), sched,
        {k: v for k, v in meta.items() if v is not None},
    )


# --- NWS HADS ---------------------------------------------------------------------------------


def read_hads(text: str, path: str, *, default_window: float = DEFAULT_WINDOW) -> Registry:
    """``GOES ID|NWSLI|owner|state|HSA|lat|lon|first daily transmission (UTC)|interval (min)|name|...``"""
    reg = Registry(path, "hads")
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split("|")]
        if not reg.stations and not reg.problems and not _HEX8.match(cells[0]) and "goes" in cells[0].lower():
            continue  # a header line
        try:
            reg.stations.append(_hads_line(cells, default_window))
        except _Bad as exc:
            reg.problems.append(RegistryProblem(path, lineno, str(exc)))
    return reg


def _hads_line(cells: list[str], default_window: float) -> RegistryStation:
    if len(cells) < 9:
        raise _Bad(f"{len(cells)} fields; a HADS line has at least 9 separated by '|'")
    address, nwsli, owner, state, hsa, lat, lon, first, interval = cells[:9]
    if not _HEX8.match(address):
        raise _Bad(f"GOES ID {address!r} is not 8 hex digits")
    sched = None
    if interval:
        if not re.fullmatch(r"\d+", interval):
            raise _Bad(f"interval {interval!r} is not whole minutes")
        if int(interval):
            if re.fullmatch(r"\d{6}", first):
                first_s = float(_hhmmss(first, "first daily transmission"))
            elif re.fullmatch(r"\d{4}", first):
                first_s = float(_hhmmss(first + "00", "first daily transmission"))
            else:
                first_s = _span(first or "0", "first daily transmission")
            sched = _schedule(int(interval) * 60, first_s, default_window)
    name = cells[9] if len(cells) > 9 and cells[9] else None
    meta = {"nwsli": nwsli or None, "owner": owner or None, "state": state or None, "hsa": hsa or None,
            "registry": "hads", "window_assumed": True if sched else None}
    return RegistryStation(address.upper(), name, "goes-dcp", _coord(lat, "latitude", 90), _coord(lon, "longitude", 180),
                           sched, {k: v for k, v in meta.items() if v is not None})


# --- plain CSV --------------------------------------------------------------------------------

CSV_COLUMNS = ("id", "name", "lat", "lon", "interval", "first", "window")


def read_csv(text: str, path: str, *, default_window: float = DEFAULT_WINDOW) -> Registry:
    """``id,name,lat,lon,interval,first,window`` (a header row with these names is optional and
    may add ``kind``); spans as seconds, HH:MM[:SS] or 15m/1h; an empty interval means no schedule."""
    reg = Registry(path, "csv")
    columns: tuple[str, ...] = CSV_COLUMNS
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in row]
        if lineno == 1 or (not reg.stations and not reg.problems and columns is CSV_COLUMNS):
            lowered = tuple(c.lower() for c in cells)
            if lowered and lowered[0] in ("id", "station", "code"):
                columns = ("id",) + lowered[1:]
                continue
        try:
            reg.stations.append(_csv_row(dict(zip(columns, cells)), len(cells), default_window))
        except _Bad as exc:
            reg.problems.append(RegistryProblem(path, lineno, str(exc)))
    return reg


def _csv_row(row: dict[str, str], n_cells: int, default_window: float) -> RegistryStation:
    code = row.get("id", "")
    if not code:
        raise _Bad("empty station id")
    if n_cells > 1 and n_cells < 4:
        raise _Bad(f"{n_cells} fields; expected {','.join(CSV_COLUMNS)}")
    sched = None
    interval = row.get("interval", "")
    if interval:
        iv = _span(interval, "interval")
        first = _span(row["first"], "first") if row.get("first") else 0.0
        window = _span(row["window"], "window") if row.get("window") else min(default_window, iv / 2)
        sched = _schedule(iv, first, window)
    return RegistryStation(code, row.get("name") or None, row.get("kind") or "station",
                           _coord(row.get("lat", ""), "latitude", 90), _coord(row.get("lon", ""), "longitude", 180),
                           sched, {"registry": "csv"})
