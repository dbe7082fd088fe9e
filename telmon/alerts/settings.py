"""The alert settings, declared once as data: ``(name, default, help, type)`` rows that
``telmon.config`` turns into ``Setting(*row)`` (the same shape as ``telmon.sinks.SETTINGS``).

Until they are gathered into ``telmon.config.SETTINGS`` the defaults apply, and
:meth:`AlertSettings.from_config` also reads ``TELMON_<NAME>`` from the environment, so SMTP
credentials can come from there either way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from telmon.errors import ConfigError

SETTINGS: tuple[tuple[str, Any, str, type], ...] = (
    ("alert_interval", 30.0, "Seconds between two evaluations of the [[rules]] inside `telmon serve` (0: never).",
     float),
    ("alert_reminder", 14400.0, "Seconds after which a rule still firing is announced again (0: never remind); "
     "a rule's own `reminder` overrides it.", float),
    ("alert_smtp_host", "", "SMTP server alerts and the daily digest are mailed through (empty: no e-mail).", str),
    ("alert_smtp_port", 587, "Port of alert_smtp_host (587 for STARTTLS, 465 for SSL, 25 for plain).", int),
    ("alert_smtp_tls", "starttls", "How the SMTP connection is protected: starttls, ssl or none.", str),
    ("alert_smtp_user", "", "SMTP login (empty: no login).", str),
    ("alert_smtp_password", "", "SMTP password; better given as TELMON_ALERT_SMTP_PASSWORD in the environment.",
     str),
    ("alert_smtp_ca_file", "", "PEM file of the certificate authorities trusted for the SMTP server "
     "(empty: the system's).", str),
    ("alert_smtp_timeout", 30.0, "Seconds an SMTP conversation may take before it counts as failed.", float),
    ("alert_mail_from", "telmon@localhost", "Sender address of alert and digest e-mail.", str),
    ("alert_mail_to", [], "Recipients of alert e-mail (a rule's `email_to` overrides them).", list),
    ("alert_webhooks", [], "Webhook URLs alerts are POSTed to as JSON, each `name=URL` or a bare URL "
     "(then named webhook1, webhook2, ...).", list),
    ("alert_webhook_token", "", "When set, webhooks carry `Authorization: Bearer <token>`.", str),
    ("alert_webhook_timeout", 10.0, "Seconds a webhook endpoint has to answer.", float),
    ("alert_retry_attempts", 6, "Attempts per notification before it is marked failed (and shown as such).", int),
    ("alert_retry_backoff", 5.0, "Seconds before the first retry of a failed notification; doubled each time.",
     float),
    ("alert_retry_max", 600.0, "Longest pause, in seconds, between two attempts of one notification.", float),
    ("alert_digest_at", "07:00", "UTC time of day (HH:MM) the daily digest is mailed (empty: no digest).", str),
    ("alert_digest_to", [], "Recipients of the daily digest (empty: alert_mail_to).", list),
    ("alert_keep", 2592000.0, "Seconds resolved alerts, events and sent notifications are kept.", float),
)

_TYPES = {name: typ for name, _d, _h, typ in SETTINGS}
_DEFAULTS = {name: default for name, default, _h, _t in SETTINGS}


@dataclass(frozen=True, slots=True)
class AlertSettings:
    alert_interval: float = 30.0
    alert_reminder: float = 14400.0
    alert_smtp_host: str = ""
    alert_smtp_port: int = 587
    alert_smtp_tls: str = "starttls"
    alert_smtp_user: str = ""
    alert_smtp_password: str = ""
    alert_smtp_ca_file: str = ""
    alert_smtp_timeout: float = 30.0
    alert_mail_from: str = "telmon@localhost"
    alert_mail_to: list[str] = field(default_factory=list)
    alert_webhooks: list[str] = field(default_factory=list)
    alert_webhook_token: str = ""
    alert_webhook_timeout: float = 10.0
    alert_retry_attempts: int = 6
    alert_retry_backoff: float = 5.0
    alert_retry_max: float = 600.0
    alert_digest_at: str = "07:00"
    alert_digest_to: list[str] = field(default_factory=list)
    alert_keep: float = 2592000.0

    @classmethod
    def from_config(cls, config: Any = None, *, env: Mapping[str, str] | None = None,
                    **overrides: Any) -> AlertSettings:
        """From a telmon Config (its ``values``), a mapping or nothing, then ``overrides``.
        A setting the config does not hold (not yet gathered into telmon.config) is read from
        ``TELMON_<NAME>`` in ``env`` (default: the process environment), else its default."""
        env = os.environ if env is None else env
        values: Mapping[str, Any] = {}
        if isinstance(config, Mapping):
            values = config
        elif config is not None:
            values = getattr(config, "values", {}) or {}
        kw: dict[str, Any] = {}
        for f in fields(cls):
            name = f.name
            if name in overrides:
                kw[name] = _coerce(name, overrides[name])
            elif name in values:
                kw[name] = _coerce(name, values[name])
            elif f"TELMON_{name.upper()}" in env:
                kw[name] = _coerce(name, env[f"TELMON_{name.upper()}"])
        s = cls(**kw)
        s.check()
        return s

    def check(self) -> None:
        if self.alert_smtp_tls not in ("starttls", "ssl", "none"):
            raise ConfigError(f"must be starttls, ssl or none, not {self.alert_smtp_tls!r}", key="alert_smtp_tls")
        if self.alert_retry_attempts < 1:
            raise ConfigError("must be >= 1", key="alert_retry_attempts")
        if self.alert_interval < 0:
            raise ConfigError("must be >= 0", key="alert_interval")
        if self.alert_digest_at:
            digest_minute(self.alert_digest_at)
        webhooks(self.alert_webhooks)

    @property
    def email_enabled(self) -> bool:
        return bool(self.alert_smtp_host)


def _coerce(name: str, value: Any) -> Any:
    typ = _TYPES[name]
    try:
        if typ is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return [str(v) for v in value]
        if typ is bool and isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        return typ(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected {typ.__name__}, got {value!r}", key=name) from None


def digest_minute(text: str) -> int:
    """Minutes after midnight UTC from ``HH:MM``; raises ConfigError."""
    try:
        hh, mm = str(text).strip().split(":")
        h, m = int(hh), int(mm)
        if not (0 <= h < 24 and 0 <= m < 60):
            raise ValueError
    except ValueError:
        raise ConfigError(f"must be HH:MM (UTC), not {text!r}", key="alert_digest_at") from None
    return h * 60 + m


def webhooks(entries: list[str]) -> list[tuple[str, str]]:
    """``[(name, url)]`` from ``name=URL`` or bare URLs; raises ConfigError on a bad entry."""
    out: list[tuple[str, str]] = []
    for i, entry in enumerate(entries, 1):
        name, sep, url = entry.partition("=")
        if not sep or name.startswith(("http:", "https:")):
            name, url = f"webhook{i}", entry
        name, url = name.strip(), url.strip()
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook {i} must be an http(s) URL, got {entry!r}", key="alert_webhooks")
        if any(n == name for n, _ in out):
            raise ConfigError(f"two webhooks are named {name!r}", key="alert_webhooks")
        out.append((name, url))
    return out
