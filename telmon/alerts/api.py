"""The alerts API: rules and their alerts, testing a rule, silences, notifications, a digest
preview.  Thin wrappers over telmon.alerts.ops; errors leave as telmon's JSON errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body
from fastapi.responses import PlainTextResponse

from telmon.alerts import ops

if TYPE_CHECKING:
    from telmon.alerts import Alerts


def router(alerts: Alerts) -> APIRouter:
    """Routes under /api/v1/alerts for the running ``alerts`` (``service.alerts``)."""
    r = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
    ev = alerts.evaluator
    clock = alerts.clock

    @r.get("", summary="Rules with pending / firing counts, the alerts, silences and channels")
    def list_alerts(rule: str | None = None, limit: int | None = None) -> Any:
        return ops.list_alerts(ev, now=clock(), limit=limit, rule=rule)

    @r.get("/rules", summary="The configured rules")
    def rules() -> Any:
        return ops.rules_list(ev.rules)

    @r.post("/rules/{name}/test", summary="What a rule finds now (no state changes); notify=true sends a test")
    def test(name: str, notify: bool = False) -> Any:
        return ops.test_rule(ev, name, now=clock(), notify=notify)

    @r.post("/evaluate", summary="Run an evaluation pass now")
    def evaluate() -> Any:
        return alerts.evaluate().to_json()

    @r.get("/silences", summary="Silences (active ones unless all=true)")
    def silences(all: bool = False) -> Any:  # noqa: A002 - the query parameter's name
        return ops.silences(ev, now=clock(), include_expired=all)

    @r.post("/silences", status_code=201, summary="Silence alerts: {rule, subject, for | until, comment, created_by}")
    def silence(body: dict[str, Any] = Body(...)) -> Any:  # noqa: B008 - FastAPI's way to take a JSON body
        from telmon.errors import BadRequest

        unknown = set(body) - {"rule", "subject", "for", "until", "comment", "created_by"}
        if unknown:
            raise BadRequest(f"unknown field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
        if not isinstance(body.get("rule"), str):
            raise BadRequest("rule (a rule name or glob) is required", field="rule")
        return ops.silence(ev, body["rule"], body.get("subject"), now=clock(), duration=body.get("for"),
                           until=body.get("until"), comment=str(body.get("comment") or ""),
                           created_by=body.get("created_by"))

    @r.delete("/silences/{silence_id}", summary="Expire a silence now")
    def unsilence(silence_id: str) -> Any:
        return ops.unsilence(ev, silence_id, now=clock())

    @r.get("/notifications", summary="Notifications, newest first (status=failed: those given up on)")
    def notifications(status: str | None = None, channel: str | None = None, limit: int | None = None) -> Any:
        return ops.notifications(ev, status=status, channel=channel, limit=limit)

    @r.get("/digest", response_class=PlainTextResponse, summary="The daily digest as it would be mailed now")
    def digest() -> Any:
        from telmon.alerts.digest import compose

        subject, text = compose(ev, clock())
        return PlainTextResponse(f"Subject: {subject}\n\n{text}")

    return r
