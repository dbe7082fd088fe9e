"""Transfer-log statistics: tail MetPX Sundew logs exactly once, per client, machine and product.

``tailer.Tailer`` follows the log files (rotation, truncation, rewritten heads, ``.gz``),
parses them in bulk (telmon.formats.metpx), and commits each file's per-minute statistics
into the rollup series (telmon.rollup) in the same transaction as the file's checkpoint.
``push`` carries them to a central telmon, ``query`` answers `telmon transfers`, and
``admin`` holds rewind, backup and restore.  See docs/transfers.md.
"""
