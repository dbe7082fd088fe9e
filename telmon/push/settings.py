"""Settings of pushed metrics, declared once as data (name, default, help, type).

They are meant to join ``telmon.config.SETTINGS``; until then (and in tests) ``PushSettings``
reads them from a Config, a plain mapping or keyword arguments, falling back to the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from telmon.setting import Setting

SETTINGS: tuple[Setting, ...] = (
    Setting("push_auth", "auto",
            "Writes to the push receivers: 'tokens' (a bearer token is required), 'open', or 'auto' "
            "(tokens, except under `serve --demo`)."),
    Setting("push_read_auth", False, "Reads of pushed data (Lizmon GET, /clusters/summary, /log/parse) need a "
            "valid token too.", bool),
    Setting("push_max_body", 4 * 1024 * 1024, "Largest request body the push receivers take, in bytes (413 beyond).",
            int),
    Setting("push_token_cache", 2.0, "Seconds a verified token is trusted before the store is asked again "
            "(how long a revocation from another process takes to apply).", float),
    Setting("push_group_max", 200_000, "Most samples the push writer commits in one transaction "
            "(requests queued meanwhile are grouped into it).", int),
    Setting("push_cluster_every", 1000, "Stored energy-sensor events between two clustering runs.", int),
    Setting("push_cluster_max_events", 20_000, "Clustering uses the newest this many sensor events.", int),
    Setting("push_cluster_process", True, "Run MeanShift in a separate process, so it never holds the server's "
            "interpreter lock (else a thread).", bool),
    Setting("agent_host", "", "When set, `telmon serve` runs the host agent for this host name, writing "
            "straight into its own store.", str),
    Setting("agent_interval", 10.0, "Seconds between two agent snapshots.", float),
)


@dataclass(frozen=True, slots=True)
class PushSettings:
    push_auth: str = "auto"
    push_read_auth: bool = False
    push_max_body: int = 4 * 1024 * 1024
    push_token_cache: float = 2.0
    push_group_max: int = 200_000
    push_cluster_every: int = 1000
    push_cluster_max_events: int = 20_000
    push_cluster_process: bool = True
    agent_host: str = ""
    agent_interval: float = 10.0

    @classmethod
    def from_config(cls, config: Any = None, **overrides: Any) -> PushSettings:
        """From a telmon Config (attribute access), a mapping, or nothing; then ``overrides``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if isinstance(config, Mapping):
                v = config.get(f.name)
            else:
                v = getattr(config, f.name, None) if config is not None else None
            if v is not None:
                values[f.name] = v
        values.update({k: v for k, v in overrides.items() if v is not None})
        out = {}
        for f in fields(cls):
            if f.name in values:
                out[f.name] = _coerce(f.name, values[f.name], type(f.default))
        s = cls(**out)
        if s.push_auth not in ("auto", "tokens", "open"):
            from telmon.errors import ConfigError

            raise ConfigError(f"expected 'auto', 'tokens' or 'open', got {s.push_auth!r}", key="push_auth")
        return s


def _coerce(name: str, value: Any, kind: type) -> Any:
    from telmon.errors import ConfigError

    try:
        if kind is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected {kind.__name__}, got {value!r}", key=name) from None
