"""Round-robin rollups of numeric series: raw samples, tiers of buckets, mergeable sketches.

Pure maths (no database): :mod:`sketch`, :mod:`buckets`, :mod:`tiers`, :mod:`codec`.
Storage and questions: :class:`telmon.rollup.store.SeriesStore`.
"""
