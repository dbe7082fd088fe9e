"""Errors of the rollup layer: leaves of telmon's one TelmonError tree, carrying their data."""

from __future__ import annotations

from telmon.errors import BadRequest, NotFound, StoreError


class BadPolicy(BadRequest):
    """A retention policy that cannot be read or kept."""

    def __init__(self, spec: str, reason: str) -> None:
        super().__init__(f"bad retention policy {spec!r}: {reason}", field="policy")
        self.spec = spec
        self.reason = reason


class BadSeriesQuery(BadRequest):
    """A series question that cannot be answered as asked (bad stat, step, span, agg)."""


class UnknownSeries(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__("series", name)
        self.name = name


class UnknownBatch(NotFound):
    def __init__(self, batch_id: int) -> None:
        super().__init__("series batch", batch_id)
        self.batch_id = batch_id


class CorruptBlock(StoreError):
    """A stored block or chunk that does not decode (disk damage or a bug): names the row."""

    def __init__(self, table: str, row_id: int, reason: str, *, url: str | None = None) -> None:
        super().__init__(f"corrupt {table} row {row_id}: {reason}", url=url)
        self.table = table
        self.row_id = row_id
