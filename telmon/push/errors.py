"""Errors of the push receivers: leaves of TelmonError that carry their HTTP status."""

from __future__ import annotations

from telmon.errors import BadRequest, TelmonError


class Unauthorized(TelmonError):
    """401: no token, or one that cannot be used (unknown, malformed, expired, revoked)."""

    status = 401

    def __init__(self, reason: str, *, token: str | None = None) -> None:
        super().__init__(reason)
        self.token = token  # the token's name when it is known, never its secret


class Forbidden(TelmonError):
    """403: a valid token that may not write what the request writes."""

    status = 403

    def __init__(self, reason: str, *, token: str | None = None, target: str | None = None) -> None:
        super().__init__(reason)
        self.token = token
        self.target = target


class BodyTooLarge(TelmonError):
    status = 413

    def __init__(self, limit: int, size: int | None = None) -> None:
        got = f"of {size} bytes " if size is not None else ""
        super().__init__(f"request body {got}exceeds the limit of {limit} bytes (setting push_max_body)")
        self.limit = limit
        self.size = size


class BadEvent(BadRequest):
    """An energy-sensor event that cannot be read: the message says which field and why."""


class UnknownHost(TelmonError):
    status = 404

    def __init__(self, host: str) -> None:
        super().__init__(f"no data for host {host!r}: it never posted (or its series were deleted)")
        self.host = host


class ShuttingDown(TelmonError):
    status = 503

    def __init__(self) -> None:
        super().__init__("the push writer is stopping; retry shortly")
