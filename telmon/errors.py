"""One exception base; leaf classes carry the data a caller needs to explain the failure.

The API turns a TelmonError into a JSON body with its ``status``; the CLI prints
``str(err)`` on one line and exits non-zero.  Nothing else should reach a user.
"""

from __future__ import annotations


class TelmonError(Exception):
    """Base of every error telmon raises on purpose."""

    status: int = 500

    def to_json(self) -> dict[str, object]:
        return {"error": str(self), "kind": type(self).__name__}


class BadRequest(TelmonError):
    """The caller asked for something malformed (bad time, bad parameter)."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_json(self) -> dict[str, object]:
        body = super().to_json()
        if self.field:
            body["field"] = self.field
        return body


class InvalidTime(BadRequest):
    def __init__(self, value: object, *, field: str | None = None) -> None:
        super().__init__(
            f"cannot read time {value!r}: use ISO 8601 (e.g. 2024-05-01T12:00:00Z; "
            "naive means UTC) or epoch seconds",
            field=field,
        )
        self.value = value


class NotFound(TelmonError):
    status = 404

    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"no {what} {key!r}")
        self.what = what
        self.key = key


class ConfigError(TelmonError):
    status = 500

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        where = ": ".join(p for p in (path, key) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.key = key


class FormatError(TelmonError):
    """A file (or part of one) that a parser could not read."""

    status = 422

    def __init__(
        self, reason: str, *, line: int | None = None, offset: int | None = None, format: str | None = None
    ) -> None:
        where = []
        if line is not None:
            where.append(f"line {line}")
        if offset is not None:
            where.append(f"byte {offset}")
        super().__init__(f"{reason} ({', '.join(where)})" if where else reason)
        self.reason = reason
        self.line = line
        self.offset = offset
        self.format = format


class StoreError(TelmonError):
    status = 503

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class SchemaTooNew(StoreError):
    def __init__(self, component: str, found: int, known: int, url: str | None = None) -> None:
        super().__init__(
            f"store schema {component!r} is at version {found}, this telmon knows {known}: upgrade telmon",
            url=url,
        )
        self.component = component
        self.found = found
        self.known = known
