"""HTTP routes of the push receivers, as plain Starlette routes on the telmon app.

Starlette endpoints with orjson parse the hot ingest route ~1.7x faster than FastAPI with
pydantic models (shared/DESIGN.md), and the app's error handlers still turn the TelmonError
leaves raised here into ``{"error": ..., "kind": ...}`` with their status.

  POST /api/v1/samples              native ingest (JSON array or NDJSON)
  POST /api/perf/{host}/{epoch}     Lizmon's monitor posts {"label": number, ...}
  GET  /api/perf/{host}[/{label}]   Lizmon's summaries (label: case-insensitive substring)
  POST /log/store                   one energy-sensor event (text/plain line or JSON)
  POST /log/parse                   the parsed event as JSON (stateless)
  GET  /clusters/summary            the last MeanShift result
  GET  /api/v1/push/status          writer, clustering and token counts
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from telmon.api.responses import FastJSON
from telmon.errors import BadRequest
from telmon.push import clusters, lizmon, sensors
from telmon.push.errors import BadEvent, BodyTooLarge, UnknownHost
from telmon.push.samples import HOST_PREFIX, SENSOR_PREFIX, SampleBatch, check_host_name, parse_lizmon, parse_native
from telmon.push.tokens import Token
from telmon.push.writer import Job

if TYPE_CHECKING:
    from telmon.push import Push

_EMPTY = b"{}"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) past ``limit`` bytes -- by Content-Length before reading, and
    while reading for chunked bodies that announce nothing."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest(f"bad Content-Length header {declared!r}") from None
        if size > limit:
            raise BodyTooLarge(limit, size)
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> tuple[str | None, str | None]:
    """(type, charset) of the Content-Type header, lower-cased; (None, None) when absent."""
    raw = request.headers.get("content-type")
    if raw is None:
        return None, None
    main, *params = raw.split(";")
    charset = None
    for p in params:
        k, _, v = p.strip().partition("=")
        if k.strip().lower() == "charset":
            charset = v.strip().strip('"') or None
    return main.strip().lower() or None, charset


def _answer(batch: SampleBatch, reasons: dict[str, int]) -> Response:
    rejected = sum(reasons.values())
    return FastJSON({"accepted": batch.size - rejected, "rejected": rejected, "reasons": reasons})


def build_routes(push: Push) -> list[Route]:
    gate = push.gate
    writer = push.writer
    judge = push.judge
    limit = push.settings.push_max_body
    now = push.now

    async def native(request: Request) -> Response:
        token = gate.write_token(request)
        body = await read_body(request, limit)
        t = now()
        batch = parse_native(body, now=t)
        if token is not None:
            check_series_scope(push, token, batch)
        reasons = judge.judge(batch, now=t)
        await writer.write(Job(batch))
        return _answer(batch, reasons)

    async def lizmon_post(request: Request) -> Response:
        host = request.path_params["host"]
        check_host_name(host)
        token = gate.write_token(request)
        if token is not None:
            gate.tokens.check_host(token, host)
        body = await read_body(request, limit)
        batch = parse_lizmon(host, request.path_params["epoch"], body)
        reasons = judge.judge(batch, now=now())
        await writer.write(Job(batch))
        return _answer(batch, reasons)

    async def lizmon_get(request: Request) -> Response:
        gate.check_read(request)
        host = request.path_params["host"]
        label = request.path_params.get("label") or None
        return FastJSON(await run_in_threadpool(perf_report, push, host, label))

    async def log_store(request: Request) -> Response:
        token = gate.write_token(request)
        body = await read_body(request, limit)
        event = read_sensor_body(body, *media_type(request))
        if token is not None:
            gate.tokens.check_station(token, event.station)
        t = now()
        values = event.series()
        prefix = f"{SENSOR_PREFIX}{event.station}."
        batch = SampleBatch.build([prefix + k for k in values], list(range(len(values))), [t] * len(values),
                                  list(values.values()))
        await writer.write(Job(batch, [event.row(t)]))
        return Response(_EMPTY, media_type="application/json")

    async def log_parse(request: Request) -> Response:
        gate.check_read(request)
        body = await read_body(request, limit)
        return FastJSON(parse_text_body(body, *media_type(request)))

    async def clusters_summary(request: Request) -> Response:
        gate.check_read(request)
        return FastJSON(await run_in_threadpool(clusters.summary, push.store))

    async def status(request: Request) -> Response:
        gate.check_read(request)
        return FastJSON(await run_in_threadpool(push.status))

    return [
        Route("/api/v1/samples", native, methods=["POST"]),
        Route("/api/perf/{host}/{epoch}", lizmon_post, methods=["POST"]),
        Route("/api/perf/{host}", lizmon_get, methods=["GET"]),
        # {label:path}: Lizmon matched the rest of the path, slashes included
        Route("/api/perf/{host}/{label:path}", lizmon_get, methods=["GET"]),
        Route("/log/store", log_store, methods=["POST"]),
        Route("/log/parse", log_parse, methods=["POST"]),
        Route("/clusters/summary", clusters_summary, methods=["GET"]),
        Route("/api/v1/push/status", status, methods=["GET"]),
    ]


def parse_route() -> Route:
    """/log/parse alone, for ``telmon parse-service`` (no store, no tokens)."""

    async def log_parse(request: Request) -> Response:
        body = await read_body(request, 1024 * 1024)
        return FastJSON(parse_text_body(body, *media_type(request)))

    return Route("/log/parse", log_parse, methods=["POST"])


def parse_text_body(body: bytes, ctype: str | None, charset: str | None) -> dict[str, Any]:
    if ctype not in (None, "text/plain"):
        raise BadEvent(f"unsupported Content-Type {ctype!r}: /log/parse takes the event line as text/plain")
    return sensors.parse_line(sensors.decode_text(body, charset))


def read_sensor_body(body: bytes, ctype: str | None, charset: str | None) -> sensors.Event:
    """The event of a /log/store body: text/plain line, or JSON (parsed form, old all-string
    form, or the double-encoded JSON string); no Content-Type: sniffed from the first byte."""
    if ctype is None:
        first = body.lstrip()[:1]
        ctype = "application/json" if first in (b"{", b'"') else "text/plain"
    if ctype == "text/plain":
        return sensors.read_event(sensors.parse_line(sensors.decode_text(body, charset)))
    if ctype == "application/json" or ctype.endswith("+json"):
        if charset and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
            body = sensors.decode_text(body, charset).encode()
        return sensors.read_event(sensors.decode_json_event(body))
    raise BadEvent(f"unsupported Content-Type {ctype!r}: send text/plain (the event line) or application/json "
                   "(the parsed event)")


def check_series_scope(push: Push, token: Token, batch: SampleBatch) -> None:
    """Every series a native request writes must belong to a host or station of the token:
    ``host.<h>.*`` for a host it may write, ``sensor.<s>.*`` for a station."""
    tokens = push.gate.tokens
    for host in batch.hosts:
        tokens.check_host(token, host)
    if "*" in token.hosts and "*" in token.stations:
        return
    hosts = set(batch.hosts)
    for name in batch.names:
        if name.startswith(HOST_PREFIX):
            rest = name[len(HOST_PREFIX):]
            # the host part may hold dots itself: any split the token allows will do
            if any(h in hosts for h in _prefixes(rest)) or any(token.may_write_host(h) for h in _prefixes(rest)):
                continue
            tokens.check_host(token, rest.split(".", 1)[0])
        elif name.startswith(SENSOR_PREFIX):
            rest = name[len(SENSOR_PREFIX):]
            if any(token.may_write_station(s) for s in _prefixes(rest)):
                continue
            tokens.check_station(token, rest.split(".", 1)[0])
        else:
            from telmon.push.errors import Forbidden

            raise Forbidden(f"token {token.name!r} may only write series under host.<host>. or sensor.<station>. "
                            f"(it may write: {token.scopes()}), not {name!r}", token=token.name, target=name)


def _prefixes(rest: str) -> list[str]:
    """'a.b.cpu' -> ['a', 'a.b'] (every split that leaves a label)."""
    parts = rest.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def perf_report(push: Push, host: str, label: str | None) -> dict[str, Any]:
    check_host_name(host)
    push.writer.settle()  # read-your-writes: what was acknowledged is in the rollups
    now = push.now()
    labels = lizmon.host_labels(push.series, host, push.writer.known_hosts())
    if not labels:
        raise UnknownHost(host)
    return lizmon.summaries(push.series, labels, label, now=now)
