"""HTTP: ``GET /api/v1/series`` -- points of a series or a pattern, as JSON or CSV.

The app that includes ``router`` sets ``app.state.series`` to a SeriesStore and turns
TelmonError into JSON 4xx responses; nothing here catches them.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from telmon.rollup.params import stat_list, step_value, when
from telmon.rollup.errors import BadSeriesQuery
from telmon.rollup.store import SeriesStore

router = APIRouter()


def get_series_store(request: Request) -> SeriesStore:
    return request.app.state.series


@router.get("/api/v1/series", tags=["series"], summary="Points of a series (or of all matching a glob pattern)")
def get_series(
    store: Annotated[SeriesStore, Depends(get_series_store)],
    name: Annotated[str, Query(description="series name, or a glob pattern such as host*.cpu")],
    start: Annotated[str | None, Query(description="ISO 8601 (naive = UTC), epoch seconds, now, or -30d; "
                                                   "default: 1 day before end")] = None,
    end: Annotated[str, Query(description="end of the span (exclusive); default now")] = "now",
    step: Annotated[str | None, Query(description="seconds or 1m/1h/1d per point; 'span' for one point; "
                                                  "default: the answering tier's step")] = None,
    stat: Annotated[list[str] | None, Query(description="count, sum, min, max, mean, median, pNN, first_ts, "
                                                        "last_ts, expected, completeness; repeat or comma-separate")] = None,
    agg: Annotated[str | None, Query(description="merge (one distribution across series) or sum (each stat summed)")] = None,
    format: Annotated[str, Query(description="json or csv")] = "json",
) -> Any:
    now = time.time()
    if format not in ("json", "csv"):
        raise BadSeriesQuery(f"format must be json or csv, not {format!r}", field="format")
    t_end = when(end, now, field="end")
    t_start = when(start, now, field="start") if start else t_end - 86400
    answer = store.series(name, t_start, t_end, step_value(step), stat_list(stat), agg or None, now=now)
    if format == "csv":
        return Response(answer.to_csv(), media_type="text/csv; charset=utf-8")
    return answer.to_json()
