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
    if u.size == 0:
        return n
    top = int(u.max())
    k = 1
    while k < 10 and top >> (7 * k):  # one comparison per byte the largest value needs
        n += u >= _U64(1 << (7 * k))
        k += 1
    return n


def encode_varints(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint64 array -> (uint8 buffer, bytes per value)."""
    u = np.asarray(codes, dtype=np.uint64).ravel()
    lengths = varint_lengths(u)
    widest = int(lengths.max()) if len(lengths) else 0
    if widest <= 1:
        return u.astype(np.uint8), lengths  # all below 128: the bytes are the values
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    out[starts] = ((u & _U64(0x7F)) | ((lengths > 1).astype(np.uint64) << _U64(7))).astype(np.uint8)
    for j in range(1, widest):
        live = np.flatnonzero(lengths > j)
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


def encode_buffer(codes: np.ndarray, per_segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Varint-encode uint64 codes, ``per_segment[i]`` of them belonging to segment i ->
    (one buffer, bytes of each segment)."""
    buf, lengths = encode_varints(codes)
    return buf, segment_sums(lengths, per_segment)


def encode_segments(codes: np.ndarray, per_segment: np.ndarray) -> list[bytes]:
    """Like encode_buffer, cut into one byte string per segment."""
    return split_bytes(*encode_buffer(codes, per_segment))


def decode_segments(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Decode many varint byte strings at once -> (values, how many values each blob held)."""
    return decode_buffer(np.frombuffer(b"".join(blobs), dtype=np.uint8), np.array([len(x) for x in blobs], np.int64))


def decode_buffer(buf: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Varints of consecutive segments of ``lengths`` bytes -> (values, values per segment)."""
    values = decode_varints(buf)
    if len(lengths) == 0:
        return values, np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(buf < 0x80)
    # value k ends at byte ends[k]; it belongs to the first segment whose end is beyond it
    owner = np.searchsorted(np.cumsum(lengths), ends, side="right")
    return values, np.bincount(owner, minlength=len(lengths)).astype(np.int64)


def gather(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Bytes buf[starts[i] : starts[i] + lengths[i]] of every i, laid end to end."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.uint8)
    shift = np.repeat(np.asarray(starts, dtype=np.int64) - segment_starts(lengths), lengths)
    return buf[np.arange(total, dtype=np.int64) + shift]


def join_sections(sections: list[tuple[np.ndarray, np.ndarray]]) -> list[bytes]:
    """Per blob: a header of varint byte lengths of all sections but the last, then the
    sections.  ``sections[s]`` is (buffer, bytes per blob) of section s.  Slicing Python
    bytes beats a numpy gather here: a few thousand slices against a million-entry index."""
    lens = np.stack([np.asarray(length, dtype=np.int64) for _, length in sections])
    n = lens.shape[1]
    header = encode_buffer(lens[:-1].T.ravel().astype(np.uint64), np.full(n, len(sections) - 1, dtype=np.int64))
    pieces = []
    for buf, length in [header, *sections]:
        raw = np.asarray(buf, dtype=np.uint8).tobytes()
        ends = np.cumsum(length).tolist()
        pieces.append([raw[a:b] for a, b in zip([0, *ends[:-1]], ends)])
    return [b"".join(parts) for parts in zip(*pieces)]


def split_sections(blobs: list[bytes], count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Undo join_sections for many blobs at once -> per section: (its bytes from every blob
    laid end to end, its length in each blob).  Raises ValueError on a malformed blob."""
    buf = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    sizes = np.array([len(b) for b in blobs], dtype=np.int64)
    starts = segment_starts(sizes)
    term = np.flatnonzero(buf < 0x80)
    # the header's varints are the first count-1 of each blob: their ends are the next terminators
    at = np.searchsorted(term, starts)
    if len(blobs) and (at.max() + count - 2 >= len(term)):
        raise ValueError("truncated section header")
    pos = starts.copy()
    lens = []
    for k in range(count - 1):
        end = term[at + k]
        width = end - pos + 1
        if width.max(initial=1) > 9:
            raise ValueError("section header varint too long")
        val = np.zeros(len(blobs), dtype=np.int64)
        for j in range(int(width.max(initial=0))):
            m = width > j
            val[m] |= (buf[pos[m] + j].astype(np.int64) & 0x7F) << (7 * j)
        lens.append(val)
        pos = end + 1
    last = starts + sizes - pos - np.sum(lens, axis=0)
    if np.any(last < 0):
        raise ValueError("sections longer than their blob")
    lens.append(last)
    out = []
    for length in lens:
        out.append((gather(buf, pos, length), length))
        pos = pos + length
    return out
