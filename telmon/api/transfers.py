"""Transfer-log statistics over HTTP (issue 5): the question, the tailer's state, the push receiver.

``router`` is included by the app; routes read the store, the series and the clock from
``request.app.state.service`` and the tail settings from its config.  Errors are TelmonErrors,
which the app turns into JSON.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from telmon.errors import TelmonError
from telmon.tail import admin, push
from telmon.tail.query import transfers as query_transfers
from telmon.tail.settings import TailSettings

router = APIRouter(tags=["transfers"])

Many = Annotated[list[str] | None, Query(description="repeat or separate with commas")]
Time = Annotated[str | None, Query(description="ISO 8601 (naive = UTC) or epoch seconds")]


class PushForbidden(TelmonError):
    status = 403


class PushUnauthorized(TelmonError):
    status = 401


def _service(request: Request) -> Any:
    return request.app.state.service


def _now(request: Request, now: str | None) -> float:
    from telmon.timeutil import parse_time

    return parse_time(now, field="now") if now else float(_service(request).now())


@router.get("/api/v1/transfers", summary="MetPX transfer statistics per client, machine and product")
def transfers(request: Request, client: Many = None, type: Many = None, machine: Many = None,  # noqa: A002
              product: Many = None, span: str | None = None, start: Time = None, end: Time = None,
              now: Time = None, step: str | None = None, by: Many = None) -> Any:
    """Files, bytes, errors, duplicates, files over the maximum latency and latency
    min / mean / median / p95 / max, per ``by`` group (default: type and client), for the span."""
    groups = [("direction" if b == "type" else b) for v in (by or []) for b in v.split(",") if b] or ["direction", "client"]
    return query_transfers(_service(request).series, clients=client, directions=type, machines=machine,
                           products=product, start=start, end=end, span=span, step=step, by=groups,
                           now=_now(request, now))


@router.get("/api/v1/transfers/files", summary="Followed log files, their checkpoints and the tailer's notes")
def tail_files(request: Request, machine: str | None = None, notes: int = 20) -> Any:
    service = _service(request)
    data = admin.status(service.store, machine=machine, notes=min(max(notes, 0), 500))
    runtime = getattr(service, "tail", None)
    data["runtime"] = runtime.status() if runtime is not None else None
    return data


@router.post(push.PUSH_PATH, summary="Receive a machine's transfer statistics (telmon tail --push)")
async def receive_push(request: Request) -> Any:
    service = _service(request)
    settings = TailSettings.from_config(getattr(service, "config", None))
    if not settings.accept_token:
        raise PushForbidden("this telmon accepts no pushes (set tail_accept_token)")
    given = request.headers.get("authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else ""
    if not hmac.compare_digest(token.encode(), settings.accept_token.encode()):
        raise PushUnauthorized("bad or missing push token")
    body = push.decode_push(await request.body(), request.headers.get("content-encoding"))
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(push.apply_push, service.store, service.series, body, now=float(service.now()))
