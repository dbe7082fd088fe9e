"""Reading and judging samples handed to ``SeriesStore.write`` (pure; no database).

Input is an iterable of ``(series name, times, values)``: times in epoch seconds (numbers, or a
numpy datetime64 array), values numbers.  Every bad sample gets a reason; none is dropped
silently and none makes the write fail.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

OK = 0
NON_NUMERIC = 1
NAN = 2
INFINITE = 3
BAD_TIME = 4
TOO_OLD = 5
FUTURE = 6
LENGTH = 7
REASONS = {
    NON_NUMERIC: "non-numeric value",
    NAN: "NaN value",
    INFINITE: "infinite value",
    BAD_TIME: "bad timestamp",
    TOO_OLD: "older than retention",
    FUTURE: "too far in the future",
    LENGTH: "times and values differ in length",
}
BAD_NAME = "bad series name"

# Names are matched with glob patterns, so glob metacharacters cannot be part of one.
_NAME = re.compile(r"^[^\x00-\x1f\x7f*?\[\]]{1,200}$")


def check_name(name: object) -> str | None:
    """The name if it can name a series, else None."""
    if isinstance(name, str) and _NAME.match(name) and name.strip() == name:
        return name
    return None


@dataclass(slots=True)
class Intake:
    names: list[str]  # distinct usable series names, first seen first
    name_index: np.ndarray  # per sample: position in names
    ts: np.ndarray  # float64 epoch seconds (NaN where unreadable)
    values: np.ndarray  # float64 (NaN where unreadable)
    code: np.ndarray  # int8 per sample: OK or the first problem found while reading
    bad_names: list[tuple[str, int]]  # (repr of the name, samples) for unusable names

    @property
    def total(self) -> int:
        return len(self.code) + sum(n for _, n in self.bad_names)


def _numbers(seq: Any, *, times: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """-> (float64 array, readable mask or None when all are).  Booleans and strings are
    not numbers here."""
    if type(seq) is np.ndarray and seq.dtype.kind in "iuf" and seq.ndim == 1:
        return seq.astype(np.float64, copy=False), None  # the common case, kept cheap
    arr = seq if isinstance(seq, np.ndarray) else None
    if arr is None:
        try:
            arr = np.asarray(seq)
        except (ValueError, TypeError):
            arr = np.array(list(seq), dtype=object)
    arr = arr.ravel()
    kind = arr.dtype.kind
    if kind in "iuf":
        return arr.astype(np.float64), None
    if kind == "M" and times:
        us = arr.astype("datetime64[us]")
        ok = ~np.isnat(us)
        return np.where(ok, us.astype(np.int64) / 1e6, np.nan), ok
    if kind == "O":
        ok = np.array([isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_)) for x in arr], dtype=bool)
        out = np.full(len(arr), np.nan)
        if ok.any():
            out[ok] = np.array([float(x) for x in arr[ok]], dtype=np.float64)
        return out, ok
    return np.full(len(arr), np.nan), np.zeros(len(arr), dtype=bool)


def read_samples(samples: Iterable[tuple[str, Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]],
                 known: Container[str] = ()) -> Intake:
    """Gather the input into flat arrays, marking what cannot be read at all.  Names in
    ``known`` are already known to be good (series that exist)."""
    names: list[str] = []
    index_of: dict[str, int] = {}
    owners: list[int] = []
    sizes: list[int] = []
    parts_ts: list[np.ndarray] = []
    parts_val: list[np.ndarray] = []
    problems: list[tuple[int, np.ndarray]] = []  # (offset, codes) of series with bad samples
    bad_names: list[tuple[str, int]] = []
    offset = 0
    for name, ts_in, val_in in samples:
        ts, ts_ok = _numbers(ts_in, times=True)
        val, val_ok = _numbers(val_in, times=False)
        i = index_of.get(name) if isinstance(name, str) else None
        if i is None:
            if not (isinstance(name, str) and name in known) and check_name(name) is None:
                bad_names.append((name[:200] if isinstance(name, str) else repr(name)[:200], max(len(ts), len(val))))
                continue
            i = index_of[name] = len(names)
            names.append(name)
        n = max(len(ts), len(val))
        if len(ts) != len(val):
            problems.append((offset, np.full(n, LENGTH, dtype=np.int8)))
            ts = np.resize(ts, n) if len(ts) else np.full(n, np.nan)
            val = np.resize(val, n) if len(val) else np.full(n, np.nan)
        elif val_ok is not None or ts_ok is not None:
            code = np.zeros(n, dtype=np.int8)
            if val_ok is not None:
                code[~val_ok] = NON_NUMERIC
            if ts_ok is not None:
                code[~ts_ok & (code == OK)] = BAD_TIME
            problems.append((offset, code))
        owners.append(i)
        sizes.append(n)
        parts_ts.append(ts)
        parts_val.append(val)
        offset += n
    code = np.zeros(offset, dtype=np.int8)
    for at, c in problems:
        code[at:at + len(c)] = c
    return Intake(
        names,
        np.repeat(np.array(owners, dtype=np.int64), np.array(sizes, dtype=np.int64)),
        np.concatenate(parts_ts) if parts_ts else np.zeros(0),
        np.concatenate(parts_val) if parts_val else np.zeros(0),
        code,
        bad_names,
    )


def judge(intake: Intake, oldest: np.ndarray, newest: float) -> np.ndarray:
    """Final reason code per sample: reading problems first, then NaN, infinity, a bad
    time, a time before ``oldest[name]`` (outside every tier) or after ``newest``."""
    code = intake.code.copy()
    ok = code == OK
    v, t = intake.values, intake.ts
    code[ok & np.isnan(v)] = NAN
    code[ok & np.isinf(v)] = INFINITE
    ok = code == OK
    code[ok & ~np.isfinite(t)] = BAD_TIME
    ok = code == OK
    with np.errstate(invalid="ignore"):
        code[ok & (t < oldest[intake.name_index])] = TOO_OLD
        ok = code == OK
        code[ok & (t > newest)] = FUTURE
    return code
