"""The schedule settings, declared once as data (same shape as telmon.config.SETTINGS).

Until they are appended to ``telmon.config.SETTINGS`` the defaults apply; afterwards the TOML
file and TELMON_<NAME> environment variables set them like any other setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telmon.setting import Setting

SCHEDULE_SETTINGS: tuple[Setting, ...] = (
    Setting("schedule_grace", 60.0,
            "Seconds after a transmit window ends before its slot counts as missing (LRGS waits a minute).", float),
    Setting("status_active_within", 172800.0,
            "A station heard within this many seconds is A (active), else D; U if never heard (NOAA: 2 days).",
            float),
    Setting("schedule_default_window", 60.0,
            "Transmit window in seconds assumed when a registry gives none (HADS lists, a CSV without one).", float),
    Setting("schedule_infer_min", 8,
            "Reports a station without a schedule needs before one is inferred from its history (0: never).", int),
)


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    grace: float = 60.0
    active_within: float = 172800.0
    default_window: float = 60.0
    infer_min: int = 8

    @classmethod
    def from_config(cls, config: Any | None) -> ScheduleSettings:
        if config is None:
            return cls()

        def get(name: str, default: Any) -> Any:
            try:
                return getattr(config, name)
            except AttributeError:
                return default

        return cls(
            grace=float(get("schedule_grace", 60.0)),
            active_within=float(get("status_active_within", 172800.0)),
            default_window=float(get("schedule_default_window", 60.0)),
            infer_min=int(get("schedule_infer_min", 8)),
        )
