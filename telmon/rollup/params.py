"""Reading series-query parameters as people type them (shared by the CLI and HTTP API)."""

from __future__ import annotations

from telmon.errors import InvalidTime
from telmon.rollup.buckets import DEFAULT_STATS
from telmon.timeutil import parse_span, parse_time


def when(text: str, now: float, *, field: str) -> float:
    """'now', '-30d' (before now), ISO 8601 or epoch seconds -> epoch seconds."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("-") and text[-1:].isalpha():  # -30d, -12h: before now
        try:
            return now - parse_span(text[1:])
        except InvalidTime:
            raise InvalidTime(text, field=field) from None
    return parse_time(text, field=field)


def step_value(text: str | None) -> int | None:
    """'1h', '300', or 'span'/'0' (one point for the whole span) -> seconds; None stays None."""
    if text is None:
        return None
    if text.strip().lower() in ("span", "all", "0"):
        return 0
    seconds = parse_span(text)
    if seconds != int(seconds):
        raise InvalidTime(text, field="step")
    return int(seconds)


def stat_list(values: tuple[str, ...] | list[str] | None) -> list[str]:
    """Repeated and/or comma-separated stat names; the defaults when none."""
    out = [s.strip() for v in values or () for s in v.split(",") if s.strip()]
    return out or list(DEFAULT_STATS)
