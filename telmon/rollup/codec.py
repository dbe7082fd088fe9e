"""Byte layouts of raw-sample chunks and tier blocks, encoded and decoded many at a time.

Raw chunk (one per series per write and day): sample times as int64 microseconds, sorted,
written as LEB128 varints of zigzag(first time, first delta, then delta-of-delta) -- one
byte per sample for a steady rate -- and values exactly, as short decimals where they are
(see decimals.py: ~2 bytes for 47.23, else 8).

Tier block part (buckets of one series in ``block_buckets(step)`` consecutive steps): a log
of *partials* -- pieces of buckets, one per write that touched them -- stored column by
column in six sections of one blob (a format byte, then a varint header giving the first
five lengths), so that decoding a thousand parts is one numpy pass per section.  Compacted
parts are zlib-compressed when that pays (format byte 1; 0 is plain).  Partials of the same bucket
(within a part or across the parts of a block) are merged on read.

  heads      varints, 2 per partial: bucket index in block, zigzag(count) << 2 | inexact << 1 | explicit
  sums       a float per partial (decimals.py: exact, short when the values are short decimals)
  extrema    floats (min, max) per partial with count >= 2, or inexact with count >= 1
  offsets    varints: a unit code (0: us, 1: ms, 2: s -- the coarsest dividing every offset of
             the part, so whole-second sample times cost one byte), then per partial the
             first-sample offset from the bucket start if count >= 1, then last - first
             if extrema are stored
  sk_groups  varints, 2 per sketch store: bucket index * 3 + sign, number of bins
  sk_bins    varints, 2 per bin: zigzag(key delta within the store), zigzag(count)

A partial of count 1 or 2 without the explicit flag has the sketch of its min (and max):
one-sample minute buckets then cost ~11 bytes with no sketch stored.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from telmon.rollup import decimals
from telmon.rollup import sketch as sk
from telmon.rollup import varint as vi
from telmon.rollup.buckets import NO_FIRST, NO_LAST, US, BucketArrays, implied, merge_rows
from telmon.rollup.sketch import Entries

BLOCK_SECTIONS = ("heads", "sums", "extrema", "offsets", "sk_groups", "sk_bins")


# --- raw chunks -------------------------------------------------------------------------

def encode_chunks(ts_us: np.ndarray, values: np.ndarray, lengths: np.ndarray) -> tuple[list[bytes], list[bytes]]:
    """Chunks laid end to end (each sorted by time) -> (time blobs, value blobs)."""
    ts_us = np.asarray(ts_us, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    d = vi.segment_deltas(ts_us, lengths)
    codes = vi.segment_deltas(d, lengths)
    starts = vi.segment_starts(lengths)
    second = starts[lengths >= 2] + 1
    codes[second] = d[second]  # the first delta is kept whole, later ones as delta-of-delta
    ts_blobs = vi.encode_segments(vi.zigzag(codes), lengths)
    return ts_blobs, decimals.encode(values, lengths)


def decode_chunks(ts_blobs: Sequence[bytes], val_blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (times in us, values, samples per chunk), chunks laid end to end."""
    codes, lengths = vi.decode_segments(list(ts_blobs))
    values = decimals.decode(b"".join(val_blobs), [len(b) for b in val_blobs], lengths)
    c = vi.unzigzag(codes)
    starts = vi.segment_starts(lengths)[lengths > 0]
    first = c[starts].copy()
    c[starts] = 0
    d = vi.segment_cumsum(c, lengths)
    ts = vi.segment_cumsum(d, lengths) + np.repeat(first, lengths[lengths > 0])
    return ts, values, lengths


# --- tier blocks ------------------------------------------------------------------------

@dataclass(slots=True)
class EncodedBlocks:
    """Encoded block parts, column by column (plain lists, ready for executemany)."""

    series_id: list[int]
    start: list[int]  # block start, epoch seconds
    parts: list[int]  # partials in the part
    data: list[bytes]  # varint lengths of the first five sections, then the six sections

    def __len__(self) -> int:
        return len(self.data)

    def rows(self, step: int) -> Iterator[tuple[int, int, int, int, bytes]]:
        return zip(self.series_id, repeat(step), self.start, self.parts, self.data)


def _masks(count: np.ndarray, inexact: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    has_first = count >= 1
    has_extra = (count >= 2) | (has_first & inexact)
    return has_first, has_extra, ~implied(count, inexact)


_UNITS = np.array([1, 1_000, 1_000_000], dtype=np.uint64)
# First byte of a part: how the rest is stored.
_PLAIN = b"\x00"
_ZLIB = b"\x01"


def _pack(data: bytes) -> bytes:
    if len(data) < 128:
        return data
    packed = zlib.compress(memoryview(data)[1:], 1)  # level 1: within 5% of level 9, 3x faster
    return _ZLIB + packed if len(packed) < 0.9 * (len(data) - 1) else data


def _unpack(data: bytes) -> bytes:
    if data[:1] == _PLAIN:
        return data[1:]
    if data[:1] == _ZLIB:
        try:
            return zlib.decompress(memoryview(data)[1:])
        except zlib.error as exc:
            raise ValueError(f"part does not inflate: {exc}") from None
    raise ValueError(f"unknown part format {data[:1]!r}")


def _with_units(codes: np.ndarray, per_block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prefix each block's offsets with the coarsest unit dividing them all, and divide."""
    unit = np.full(len(per_block), 2, dtype=np.int64)
    if codes.any():
        for code, size in ((1, _UNITS[2]), (0, _UNITS[1])):
            # a block keeps unit `code + 1` only if no offset breaks it
            breaks = vi.segment_sums((codes % size) != 0, per_block) > 0
            unit[breaks] = code
        divisor = _UNITS[unit][vi.segment_ids(per_block)]
        if codes.max() < 2**53:  # exact in float64, and much faster than uint64 division
            codes = (codes.astype(np.float64) / divisor.astype(np.float64)).astype(np.uint64)
        else:
            codes = codes // divisor
    return np.insert(codes, vi.segment_starts(per_block), unit.astype(np.uint64)), per_block + 1


def _without_units(values: np.ndarray, per_block: np.ndarray) -> np.ndarray:
    if np.any(per_block < 1) or np.any(values[vi.segment_starts(per_block)] > 2):
        raise ValueError("offsets without a unit")
    starts = vi.segment_starts(per_block)
    unit = _UNITS[values[starts].astype(np.int64)]
    is_unit = np.zeros(len(values), dtype=bool)
    is_unit[starts] = True
    return values[~is_unit] * np.repeat(unit, per_block - 1)


def encode_blocks(arr: BucketArrays, step: int, span: int, *, pack: bool = False) -> EncodedBlocks:
    """Partials (group = series id) -> one encoded part per (series, block) they fall in.
    Rows with a zero count are left out.  ``pack``: zlib-compress parts where that saves a
    tenth or more (compacted blocks: sketch bins of a day of hours compress to ~55%)."""
    if np.any(arr.count == 0):
        arr = arr.take(arr.count != 0)
    if len(arr) == 0:
        return EncodedBlocks([], [], [], [])
    block = np.floor_divide(arr.start, span) * span
    g = arr.group
    if not np.all((g[1:] > g[:-1]) | ((g[1:] == g[:-1]) & (block[1:] >= block[:-1]))):
        order = np.lexsort((block, g))  # rows of one block together (aggregates come sorted)
        arr = arr.take(order)
        block = block[order]
    n = len(arr)
    firsts = np.flatnonzero(np.r_[True, (arr.group[1:] != arr.group[:-1]) | (block[1:] != block[:-1])])
    parts = np.diff(np.r_[firsts, n])
    blk_of_row = np.repeat(np.arange(len(firsts)), parts)
    idx = (arr.start - block) // step
    has_first, has_extra, explicit = _masks(arr.count, arr.inexact)

    head = (vi.zigzag(arr.count) << np.uint64(2)) | (arr.inexact.astype(np.uint64) << np.uint64(1)) | explicit.astype(np.uint64)
    heads = vi.encode_buffer(np.column_stack([idx.astype(np.uint64), head]).ravel(), parts * 2)
    sums = decimals.encode_buffer(arr.sum, parts)
    ext = np.column_stack([arr.min[has_extra], arr.max[has_extra]]).ravel()
    extrema = decimals.encode_buffer(ext, vi.segment_sums(has_extra, parts) * 2)

    k = has_first.astype(np.int64) + has_extra
    bucket_us = arr.start * US
    if has_first.all() and not has_extra.any():
        # one sample per bucket, the usual minute tier: just the first offsets
        off_codes = (arr.first - bucket_us).astype(np.uint64)
    else:
        off_codes = np.zeros(int(k.sum()), dtype=np.uint64)
        pos = np.cumsum(k) - k
        off_codes[pos[has_first]] = (arr.first[has_first] - bucket_us[has_first]).astype(np.uint64)
        off_codes[pos[has_extra] + 1] = (arr.last[has_extra] - arr.first[has_extra]).astype(np.uint64)
    per_block = vi.segment_sums(k, parts)
    offsets = vi.encode_buffer(*_with_units(off_codes, per_block))

    e = arr.sketch
    e = e.take(np.flatnonzero(explicit[e.owner]))
    if len(e):
        new_group = np.r_[True, (e.owner[1:] != e.owner[:-1]) | (e.sign[1:] != e.sign[:-1])]
        gstart = np.flatnonzero(new_group)
        gsize = np.diff(np.r_[gstart, len(e)])
        gowner = e.owner[gstart]
        codes = (idx[gowner] * 3 + e.sign[gstart]).astype(np.uint64)
        groups_per_block = np.bincount(blk_of_row[gowner], minlength=len(firsts))
        sk_groups = vi.encode_buffer(np.column_stack([codes, gsize.astype(np.uint64)]).ravel(), groups_per_block * 2)
        kdelta = vi.segment_deltas(e.key, gsize)
        bins_per_block = np.bincount(blk_of_row[e.owner], minlength=len(firsts))
        sk_bins = vi.encode_buffer(np.column_stack([vi.zigzag(kdelta), vi.zigzag(e.count)]).ravel(), bins_per_block * 2)
    else:
        sk_groups = sk_bins = (np.zeros(0, np.uint8), np.zeros(len(firsts), np.int64))

    data = [_PLAIN + d for d in vi.join_sections([heads, sums, extrema, offsets, sk_groups, sk_bins])]
    if pack:
        data = [_pack(d) for d in data]
    return EncodedBlocks(arr.group[firsts].tolist(), block[firsts].tolist(), parts.tolist(), data)


def decode_blocks(rows: Sequence[Sequence[object]], step: int, alpha: float) -> BucketArrays:
    """Stored block parts -> their buckets, partials merged, sorted by (series, start).

    Each row is ``(series_id, block_start, data)``.  Raises ValueError when the bytes do not
    add up."""
    if not rows:
        return BucketArrays.empty(alpha)
    series_id = np.array([r[0] for r in rows], dtype=np.int64)
    block_start = np.array([r[1] for r in rows], dtype=np.int64)
    (heads_b, heads_l), (sums_b, sums_l), (ext_b, ext_l), (offs_b, offs_l), (groups_b, groups_l), (bins_b, bins_l) = \
        vi.split_sections([_unpack(r[2]) for r in rows], len(BLOCK_SECTIONS))  # type: ignore[arg-type]
    heads, per_block = vi.decode_buffer(heads_b, heads_l)
    if np.any(per_block % 2):
        raise ValueError("odd number of head varints")
    heads = heads.reshape(-1, 2)
    parts = per_block // 2
    blk = vi.segment_ids(parts)
    idx = heads[:, 0].astype(np.int64)
    code = heads[:, 1]
    count = vi.unzigzag(code >> np.uint64(2))
    inexact = ((code >> np.uint64(1)) & np.uint64(1)).astype(bool)
    has_first, has_extra, explicit = _masks(count, inexact)
    n = len(count)

    sums = decimals.decode(sums_b, sums_l, parts)
    ext = decimals.decode(ext_b, ext_l, vi.segment_sums(has_extra, parts) * 2)
    start = block_start[blk] + idx * step
    vmin = np.where(count >= 1, sums, np.inf)
    vmax = np.where(count >= 1, sums, -np.inf)
    vmin[has_extra] = ext[0::2]
    vmax[has_extra] = ext[1::2]

    offs = _without_units(*vi.decode_buffer(offs_b, offs_l))
    k = has_first.astype(np.int64) + has_extra
    if len(offs) != int(k.sum()):
        raise ValueError("offsets do not match the heads")
    pos = np.cumsum(k) - k
    first = np.full(n, NO_FIRST, dtype=np.int64)
    last = np.full(n, NO_LAST, dtype=np.int64)
    first[has_first] = start[has_first] * US + offs[pos[has_first]].astype(np.int64)
    last[has_first] = first[has_first]
    last[has_extra] = first[has_extra] + offs[pos[has_extra] + 1].astype(np.int64)

    # sketches: stored bins are owned by (block, bucket index); derived ones by their partial
    groups, gper_block = vi.decode_buffer(groups_b, groups_l)
    groups = groups.reshape(-1, 2).astype(np.int64)
    gblk = vi.segment_ids(gper_block // 2)
    bins, _ = vi.decode_buffer(bins_b, bins_l)
    bins = bins.reshape(-1, 2)
    gsize = groups[:, 1]
    if len(bins) != int(gsize.sum()):
        raise ValueError("sketch bins do not match their groups")
    keys = vi.segment_cumsum(vi.unzigzag(bins[:, 0]), gsize)
    bcount = vi.unzigzag(bins[:, 1])

    # a (block, bucket index) pair names one bucket: map stored groups to a partial of it
    bucket_key = blk * (1 << 32) + idx
    order = np.argsort(bucket_key, kind="stable")
    gkey = gblk * (1 << 32) + groups[:, 0] // 3
    at = np.searchsorted(bucket_key[order], gkey)
    if np.any(at >= n) or np.any(bucket_key[order][np.minimum(at, n - 1)] != gkey):
        raise ValueError("sketch group for a bucket the block does not hold")
    owner = np.repeat(order[at], gsize)
    stored = Entries(owner, np.repeat(groups[:, 0] % 3, gsize), keys, bcount)

    implicit = np.flatnonzero(~explicit & (count >= 1))
    two = implicit[count[implicit] == 2]
    derived = sk.from_values(np.r_[implicit, two], np.r_[vmin[implicit], vmax[two]], alpha)
    arr = BucketArrays(
        group=series_id[blk], start=start, count=count, sum=sums, min=vmin, max=vmax, first=first, last=last,
        inexact=inexact, sketch=sk.normalise(sk.concat([stored, derived]), keep_negative=True), alpha=alpha,
    )
    return merge_rows(arr)
