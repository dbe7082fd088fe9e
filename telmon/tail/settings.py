"""The tail settings, declared once as data (same shape as telmon.config.SETTINGS).

Until they are appended to ``telmon.config.SETTINGS`` the defaults apply (and
:meth:`TailSettings.from_config` reads whatever the config object has); afterwards the TOML
file and TELMON_<NAME> environment variables set them like any other setting.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from typing import Any

try:  # the record lives apart from config.py, so config can gather these without a cycle
    from telmon.setting import Setting
except ImportError:  # pragma: no cover - a tree where config.py still defines it
    from telmon.setting import Setting  # type: ignore[no-redef]

DEFAULT_PATTERNS = ["tx_*.log*", "rx_*.log*"]

TAIL_SETTINGS: tuple[Setting, ...] = (
    Setting("tail_dirs", [], "Folders of MetPX Sundew logs that `telmon serve` tails (empty: none).", list),
    Setting("tail_patterns", list(DEFAULT_PATTERNS),
            "File-name patterns of the logs to tail; the client or source name comes from the name "
            "(tx_<client>.log*, rx_<source>.log*).", list),
    Setting("tail_machine", "", "Machine name recorded with the statistics (empty: this host's name)."),
    Setting("tail_zone", "UTC",
            "Zone of the log timestamps: UTC, an offset like -04:00 or an IANA name such as America/Montreal "
            "(Sundew writes local time; latency = log time - reception stamp, which is UTC).", str),
    Setting("tail_max_latency", 15.0, "Files whose latency exceeds this many seconds count as over the maximum.",
            float),
    Setting("tail_interval", 30.0,
            "Seconds between looks at the logs once caught up; each look commits what it read (statistics "
            "are per minute, so 30-60 s costs little and loses nothing).", float),
    Setting("tail_chunk_mb", 32.0, "Most megabytes of log read per commit while catching up a backlog.", float),
    Setting("tail_settle", 300.0,
            "Seconds a rotated log must stay unchanged before its last line without a newline is counted "
            "and the file is closed.", float),
    Setting("tail_keep_rejected", 20,
            "Unparseable lines kept per file for `telmon rejected` (all of them are counted).", int),
    Setting("tail_push_url", "", "Central telmon to push the statistics to (empty: keep them in this store)."),
    Setting("tail_push_token", "", "Token sent with each push to tail_push_url."),
    Setting("tail_keep_local", False, "With tail_push_url, also keep the statistics in this store.", bool),
    Setting("tail_accept_token", "",
            "On a central telmon: the token pushes must carry (empty: the push endpoint refuses every push).", str),
)


@dataclass(frozen=True, slots=True)
class TailSettings:
    dirs: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=lambda: list(DEFAULT_PATTERNS))
    machine: str = ""
    zone: str = "UTC"
    max_latency: float = 15.0
    interval: float = 30.0
    chunk_bytes: int = 32 << 20
    settle: float = 300.0
    keep_rejected: int = 20
    push_url: str = ""
    push_token: str = ""
    keep_local: bool = False
    accept_token: str = ""

    @property
    def machine_name(self) -> str:
        return self.machine or socket.gethostname().split(".")[0] or "localhost"

    def with_(self, **changes: Any) -> TailSettings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_config(cls, config: Any | None) -> TailSettings:
        """Read the tail_* settings from a telmon Config (or anything with those attributes)."""
        if config is None:
            return cls()

        def get(name: str, default: Any) -> Any:
            try:
                value = getattr(config, name)
            except AttributeError:
                return default
            return default if value is None else value

        def listing(value: Any) -> list[str]:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return [str(v) for v in value]

        return cls(
            dirs=listing(get("tail_dirs", [])),
            patterns=listing(get("tail_patterns", DEFAULT_PATTERNS)) or list(DEFAULT_PATTERNS),
            machine=str(get("tail_machine", "")),
            zone=str(get("tail_zone", "UTC")),
            max_latency=float(get("tail_max_latency", 15.0)),
            interval=float(get("tail_interval", 30.0)),
            chunk_bytes=int(float(get("tail_chunk_mb", 32.0)) * (1 << 20)),
            settle=float(get("tail_settle", 300.0)),
            keep_rejected=int(get("tail_keep_rejected", 20)),
            push_url=str(get("tail_push_url", "")),
            push_token=str(get("tail_push_token", "")),
            keep_local=bool(get("tail_keep_local", False)),
            accept_token=str(get("tail_accept_token", "")),
        )
