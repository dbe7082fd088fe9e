"""Vectorised integer codecs: LEB128 varints, zigzag, per-segment deltas and cumulative sums.

Everything here works on whole numpy arrays at once, so that encoding the blocks of a
thousand series is a handful of array operations, not a Python loop per value.
"""

from __future__ import annotations

import numpy as np

_U64 = np.uint64


def zigzag(values: np.ndarray) -> np.ndarray:
    """int64 -> uint64 so that small magnitudes of either sign get small codes."""
    v = np.asarray(values, dtype=np.int64)
    return ((v << 1) ^ (v >> 63)).view(np.uint64)


def unzigzag(codes: np.ndarray) -> np.ndarray:
    u = np.asarray(codes, dtype=np.uint64)
    return ((u >> _U64(1)).view(np.int64)) ^ -((u & _U64(1)).view(np.int64))


def varint_lengths(codes: np.ndarray) -> np.ndarray:
    """Bytes each uint64 takes as a varint (1..10)."""
    u = np.asarray(codes, dtype=np.uint64)
    n = np.ones(u.shape, dtype=np.int64)
    rest = u >> _U64(7)
    while rest.any():
        n += rest > 0
        rest = rest >> _U64(7)
    return n


def encode_varints(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint64 array -> (uint8 buffer, bytes per value)."""
    u = np.asarray(codes, dtype=np.uint64).ravel()
    lengths = varint_lengths(u)
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    for j in range(int(lengths.max()) if len(lengths) else 0):
        live = lengths > j
        byte = ((u[live] >> _U64(7 * j)) & _U64(0x7F)).astype(np.uint8)
        more = (lengths[live] > j + 1).astype(np.uint8) << 7
        out[starts[live] + j] = byte | more
    return out, lengths


def decode_varints(buf: bytes | np.ndarray) -> np.ndarray:
    """A buffer of back-to-back varints -> uint64 array.  Raises ValueError if truncated."""
    b = np.frombuffer(buf, dtype=np.uint8) if isinstance(buf, (bytes, bytearray, memoryview)) else buf
    if len(b) == 0:
        return np.zeros(0, dtype=np.uint64)
    if b[-1] & 0x80:
        raise ValueError("truncated varint stream")
    ends = np.flatnonzero(b < 0x80)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    pos = np.arange(len(b), dtype=np.int64) - np.repeat(starts, ends - starts + 1)
    if len(pos) and pos.max() > 9:
        raise ValueError("varint longer than 10 bytes")
    parts = (b & 0x7F).astype(np.uint64) << (7 * pos).astype(np.uint64)
    return np.add.reduceat(parts, starts)


def segment_starts(lengths: np.ndarray) -> np.ndarray:
    """Start offsets of consecutive segments of the given lengths."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.cumsum(lengths) - lengths


def segment_ids(lengths: np.ndarray) -> np.ndarray:
    """For segments of the given lengths laid end to end: the segment of each element."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)


def segment_sums(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sum of each segment (0 for an empty one) of integer values laid end to end."""
    c = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.asarray(values, dtype=np.int64), out=c[1:])
    ends = np.cumsum(np.asarray(lengths, dtype=np.int64))
    return c[ends] - c[ends - np.asarray(lengths, dtype=np.int64)]


def segment_cumsum(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each segment.  int64 wrap-around in the global running
    sum cancels out in the subtraction, so large epoch values are safe."""
    v = np.asarray(values)
    if len(v) == 0:
        return v.copy()
    c = np.cumsum(v)
    starts = segment_starts(lengths)
    nonempty = np.asarray(lengths) > 0
    base = np.zeros(len(lengths), dtype=c.dtype)
    base[nonempty] = c[starts[nonempty]] - v[starts[nonempty]]
    with np.errstate(over="ignore"):
        return c - np.repeat(base, lengths)


def segment_deltas(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Differences to the previous element within each segment; a segment's first element is kept."""
    v = np.asarray(values, dtype=np.int64)
    d = np.empty_like(v)
    if len(v) == 0:
        return d
    d[0] = v[0]
    d[1:] = v[1:] - v[:-1]
    starts = segment_starts(lengths)
    nonempty = np.asarray(lengths) > 0
    d[starts[nonempty]] = v[starts[nonempty]]
    return d


def split_bytes(buf: np.ndarray, lengths: np.ndarray) -> list[bytes]:
    """Cut one uint8 buffer into consecutive byte strings of the given lengths."""
    raw = buf.tobytes()
    ends = np.cumsum(lengths).tolist()
    starts = [0, *ends[:-1]]
    return [raw[a:b] for a, b in zip(starts, ends)]


def encode_segments(codes: np.ndarray, per_segment: np.ndarray) -> list[bytes]:
    """Varint-encode uint64 codes and cut the result into one byte string per segment,
    where ``per_segment[i]`` values belong to segment i."""
    buf, lengths = encode_varints(codes)
    return split_bytes(buf, segment_sums(lengths, per_segment))


def decode_segments(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Decode many varint byte strings at once -> (values, how many values each blob held)."""
    joined = b"".join(blobs)
    values = decode_varints(joined)
    if not blobs:
        return values, np.zeros(0, dtype=np.int64)
    b = np.frombuffer(joined, dtype=np.uint8)
    ends = np.flatnonzero(b < 0x80)
    byte_ends = np.cumsum([len(x) for x in blobs])
    # value k ends at byte ends[k]; it belongs to the first blob whose end is beyond it
    owner = np.searchsorted(byte_ends, ends, side="right")
    counts = np.bincount(owner, minlength=len(blobs)).astype(np.int64)
    return values, counts
