"""Float64 columns stored exactly, in fewer bytes when the values are short decimals.

Telemetry mostly arrives as text (station files, logs, JSON) with a few decimals: 47.23 as a
float64 costs 8 bytes, as the integer 4723 delta-coded against its neighbour one or two.
Each segment (the values of one chunk or block part) picks the smallest power of ten k <= 9
that makes every value v an integer i with ``i / 10**k == v`` exactly (-0.0 stays raw); its
bytes are then a code byte k + 1 and zigzag varints of the first integer and the deltas.  When
no k fits, or the integers would not be shorter, the code byte is 0 and the raw little-endian
float64 values follow.  (The idea of ALP, Afroozeh & Boncz, SIGMOD 2024, without its bit
packing.)  Decoding performs the same division, so the round trip is bit-exact.
"""

from __future__ import annotations

import numpy as np

from telmon.rollup import varint as vi

MAX_DECIMALS = 9
_POW = 10.0 ** np.arange(MAX_DECIMALS + 1)
_EXACT = float(2 ** 52)  # past this, integers are not all representable in a float64


def _scales(values: np.ndarray, per_segment: np.ndarray) -> np.ndarray:
    """Per segment: the fewest decimals k that make every value an exact integer, or -1."""
    n_seg = len(per_segment)
    seg = vi.segment_ids(per_segment)
    k_seg = np.full(n_seg, -1, dtype=np.int64)
    open_seg = np.asarray(per_segment) > 0
    # 0, 1, 2 decimals are the common cases; a segment that fails even at the most decimals
    # is full-precision data: stop trying it early
    order = [0, 1, 2, MAX_DECIMALS, *range(3, MAX_DECIMALS)]
    with np.errstate(over="ignore", invalid="ignore"):
        for k in order:
            if not open_seg.any():
                break
            live = open_seg[seg]
            idx = None if live.all() else np.flatnonzero(live)
            v = values if idx is None else values[idx]
            owner = seg if idx is None else seg[idx]
            scaled = np.round(v * _POW[k])
            # -0.0 would come back as 0.0: it stays raw
            ok = (np.abs(scaled) < _EXACT) & (scaled / _POW[k] == v) & ~((v == 0) & np.signbit(v))
            failed = np.bincount(owner[~ok], minlength=n_seg) > 0
            if k == MAX_DECIMALS:
                open_seg &= ~failed  # not even at the most decimals: raw
                continue
            good = open_seg & ~failed
            k_seg[good] = k
            open_seg &= ~good
    return k_seg


def encode_buffer(values: np.ndarray, per_segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 values, ``per_segment[i]`` of them in segment i -> (the segments' bytes laid
    end to end, bytes per segment; 0 for an empty segment)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    per_segment = np.asarray(per_segment, dtype=np.int64)
    k_seg = _scales(values, per_segment)
    seg = vi.segment_ids(per_segment)
    scaled = k_seg >= 0
    use = scaled[seg]
    ints = np.round(values[use] * _POW[k_seg[seg[use]]]).astype(np.int64)
    counts = np.where(scaled, per_segment, 0)
    buf, lengths = vi.encode_buffer(vi.zigzag(vi.segment_deltas(ints, counts)), counts)
    filled = per_segment > 0
    worse = scaled & (lengths >= 8 * per_segment)  # integers that would not save bytes stay raw
    raw = filled & (~scaled | worse)
    if not raw.any():
        # every segment short decimals (the usual case): code bytes slotted in front of each
        at = vi.segment_starts(lengths)[filled]
        return np.insert(buf, at, (k_seg[filled] + 1).astype(np.uint8)), np.where(filled, lengths + 1, 0)
    if not (filled & scaled & ~worse).any():
        # every segment raw: a zero byte in front of each one's float64s
        at = vi.segment_starts(per_segment * 8)[filled]
        return np.insert(values.view(np.uint8), at, np.uint8(0)), np.where(filled, 8 * per_segment + 1, 0)
    return _mixed(values, per_segment, k_seg, raw, buf, lengths)


def _mixed(values: np.ndarray, per_segment: np.ndarray, k_seg: np.ndarray, raw: np.ndarray, buf: np.ndarray,
           lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """encode_buffer when some segments are raw and some short decimals: both kinds of
    payload scattered into place behind their code bytes."""
    filled = per_segment > 0
    scaled = filled & ~raw
    seg_len = np.where(filled, 1 + np.where(raw, 8 * per_segment, np.where(scaled, lengths, 0)), 0)
    out = np.empty(int(seg_len.sum()), dtype=np.uint8)
    at = vi.segment_starts(seg_len)
    out[at[filled]] = np.where(raw[filled], 0, k_seg[filled] + 1).astype(np.uint8)
    raw_src = values[raw[vi.segment_ids(per_segment)]].view(np.uint8)
    out[_positions(at[raw] + 1, 8 * per_segment[raw])] = raw_src
    # the integer buffer holds every scaled segment, kept or not: take the kept ones' bytes
    int_src = buf[_positions(vi.segment_starts(lengths)[scaled], lengths[scaled])]
    out[_positions(at[scaled] + 1, lengths[scaled])] = int_src
    return out, seg_len


def _positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """starts[i], starts[i] + 1, ..., starts[i] + lengths[i] - 1 for every i, laid end to end."""
    total = int(np.sum(lengths))
    return np.arange(total, dtype=np.int64) + np.repeat(starts - vi.segment_starts(lengths), lengths)


def encode(values: np.ndarray, per_segment: np.ndarray) -> list[bytes]:
    """Like encode_buffer, as one byte string per segment (empty for an empty segment)."""
    return vi.split_bytes(*encode_buffer(values, per_segment))


def decode(buf: np.ndarray | bytes, seg_bytes: np.ndarray | list[int], per_segment: np.ndarray) -> np.ndarray:
    """Undo encode for segments laid end to end: ``seg_bytes`` long, holding ``per_segment``
    values each.  Raises ValueError when they do not match."""
    per_segment = np.asarray(per_segment, dtype=np.int64)
    if len(per_segment) * 16 < per_segment.sum():
        return _decode_each(buf, np.asarray(seg_bytes, dtype=np.int64), per_segment)
    return _decode_all(buf, seg_bytes, per_segment)


def _decode_all(buf: np.ndarray | bytes, seg_bytes: np.ndarray | list[int], per_segment: np.ndarray) -> np.ndarray:
    """decode, all segments in whole-array steps: faster for many small segments."""
    b = np.frombuffer(buf, dtype=np.uint8) if isinstance(buf, (bytes, bytearray, memoryview)) else buf
    seg_bytes = np.asarray(seg_bytes, dtype=np.int64)
    per_segment = np.asarray(per_segment, dtype=np.int64)
    if len(seg_bytes) != len(per_segment) or int(seg_bytes.sum()) != len(b):
        raise ValueError("float segments do not match their bytes")
    out = np.empty(int(per_segment.sum()), dtype=np.float64)
    starts = vi.segment_starts(seg_bytes)
    filled = per_segment > 0
    if np.any(seg_bytes[~filled]) or np.any(seg_bytes[filled] < 1):
        raise ValueError("float segment without its code byte")
    code = np.full(len(per_segment), -1, dtype=np.int64)
    code[filled] = b[starts[filled]]
    raw = code == 0
    scaled = (code >= 1) & (code <= MAX_DECIMALS + 1)
    if np.any(filled & ~raw & ~scaled):
        raise ValueError("unknown float segment code")
    if np.any(seg_bytes[raw] != 1 + 8 * per_segment[raw]):
        raise ValueError("raw float segment of the wrong length")
    elem_seg = vi.segment_ids(per_segment)
    if raw.any():
        out[raw[elem_seg]] = vi.gather(b, starts[raw] + 1, seg_bytes[raw] - 1).view("<f8")
    if scaled.any():
        counts = per_segment[scaled]
        codes = vi.decode_varints(vi.gather(b, starts[scaled] + 1, seg_bytes[scaled] - 1))
        if len(codes) != int(counts.sum()):
            raise ValueError("decimal float segments hold the wrong number of values")
        ints = vi.segment_cumsum(vi.unzigzag(codes), counts)
        out[scaled[elem_seg]] = ints / _POW[np.repeat(code[scaled] - 1, counts)]
    return out


def _decode_each(buf: np.ndarray | bytes, seg_bytes: np.ndarray, per_segment: np.ndarray) -> np.ndarray:
    """decode, one segment at a time: faster when segments hold many values each."""
    raw = buf.tobytes() if isinstance(buf, np.ndarray) else bytes(buf)
    seg_bytes = np.asarray(seg_bytes, dtype=np.int64)
    per_segment = np.asarray(per_segment, dtype=np.int64)
    out = np.empty(int(per_segment.sum()), dtype=np.float64)
    ends = np.cumsum(seg_bytes).tolist()
    starts = [0, *ends[:-1]]
    vstarts = vi.segment_starts(per_segment).tolist()
    int_parts, int_counts, int_scale, int_at = [], [], [], []
    for a, b, n, at in zip(starts, ends, per_segment.tolist(), vstarts):
        if n == 0:
            if b != a:
                raise ValueError("bytes for an empty float segment")
            continue
        if b <= a:
            raise ValueError("missing float segment")
        code = raw[a]
        if code == 0:
            if b - a - 1 != 8 * n:
                raise ValueError("raw float segment of the wrong length")
            out[at:at + n] = np.frombuffer(raw, dtype="<f8", count=n, offset=a + 1)
        elif code <= MAX_DECIMALS + 1:
            int_parts.append(raw[a + 1:b])
            int_counts.append(n)
            int_scale.append(code - 1)
            int_at.append(at)
        else:
            raise ValueError(f"unknown float segment code {code}")
    if int_parts:
        codes = vi.decode_varints(b"".join(int_parts))
        counts = np.array(int_counts, dtype=np.int64)
        if len(codes) != int(counts.sum()):
            raise ValueError("decimal float segments hold the wrong number of values")
        ints = vi.segment_cumsum(vi.unzigzag(codes), counts)
        values = ints / _POW[np.repeat(np.array(int_scale, dtype=np.int64), counts)]
        dest = np.repeat(np.array(int_at, dtype=np.int64) - vi.segment_starts(counts), counts) + np.arange(len(ints))
        out[dest] = values
    return out
