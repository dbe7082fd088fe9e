"""Settings, declared once as data: name, default, type, help.

They drive the TOML config file, TELMON_* environment overrides, ``telmon settings`` and
docs/settings.md (a test checks every setting is documented there).
Precedence: defaults < config file < environment < command-line options.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telmon.errors import ConfigError
from telmon.setting import Setting


CORE_SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "telmon-data", "Folder for the SQLite store, quarantine and spool files."),
    Setting("store", "", "Store URL or path; empty means <data_dir>/telmon.db (SQLite)."),
    Setting("host", "127.0.0.1", "Address the HTTP server listens on."),
    Setting("port", 8321, "Port the HTTP server listens on.", int),
    Setting("quarantine", False, "Move rejected files into <data_dir>/quarantine (else leave them in place).", bool),
    Setting("poll_interval", 5.0, "Seconds between scans for folders that are polled (NFS, or --poll).", float),
    Setting("settle", 1.0, "Seconds a polled file's size and mtime must stay unchanged before it is read.", float),
    Setting("reconcile_interval", 300.0, "Seconds between safety-net rescans of watched folders (0 disables).", float),
    Setting("batch_max", 500, "Most files committed in one transaction by the ingest worker.", int),
    Setting("gap_tolerance", 0.5, "A spacing above interval x (1 + tolerance) is a gap.", float),
    Setting("default_tz", "UTC", "Zone of formats whose times carry none (TOA5), unless set per station."),
    Setting("ignore", [".*", "*.tmp", "*.part", "*.swp", "*~"], "Base-name patterns the watcher ignores.", list),
    Setting("log_level", "INFO", "Logging level: DEBUG, INFO, WARNING, ERROR."),
    Setting("prune_interval", 3600.0, "Seconds between retention passes over the series tiers (0 disables).", float),
    Setting("demo_interval", 5.0, "Seconds between files dropped by the demo feed (serve --demo).", float),
)



def _capability_settings() -> tuple[Setting, ...]:
    """Each capability declares its own settings beside its code; they are gathered here."""
    from telmon.push.settings import SETTINGS as PUSH_SETTINGS
    from telmon.sinks import SETTINGS as SINK_SETTINGS

    rows: list[Setting] = []
    rows += [Setting(*row) for row in SINK_SETTINGS]
    rows += list(PUSH_SETTINGS)
    from telmon.tail.settings import TAIL_SETTINGS

    rows += list(TAIL_SETTINGS)
    from telmon.schedule.settings import SCHEDULE_SETTINGS

    rows += list(SCHEDULE_SETTINGS)
    from telmon.alerts import SETTINGS as ALERT_SETTINGS
    from telmon.health import SETTINGS as HEALTH_SETTINGS

    rows += [Setting(*row) for row in ALERT_SETTINGS]
    rows += [Setting(*row) for row in HEALTH_SETTINGS]
    return tuple(rows)


SETTINGS: tuple[Setting, ...] = CORE_SETTINGS + _capability_settings()
_BY_NAME = {s.name: s for s in SETTINGS}
if len(_BY_NAME) != len(SETTINGS):  # pragma: no cover - a programming error, caught by any test
    raise RuntimeError("two settings share a name")


@dataclass(slots=True)
class WatchSpec:
    """One watched folder: ``[[watch]] path = "...", feed = "GOES", poll = 0, recursive = true``."""

    path: str
    feed: str = "files"
    poll: float | None = None
    recursive: bool = True


@dataclass(slots=True)
class Config:
    values: dict[str, Any] = field(default_factory=lambda: {s.name: s.default for s in SETTINGS})
    watch: list[WatchSpec] = field(default_factory=list)
    # station id -> {interval, name, lat, lon, tz}
    stations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # OpenDCS platform XML files whose decoding scripts and schedules telmon loads
    platforms: list[str] = field(default_factory=list)
    # alert rules from [[rules]] tables (telmon.alerts.rules.Rule)
    rules: list[Any] = field(default_factory=list)
    path: str | None = None

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def set(self, name: str, value: Any) -> None:
        self.values[name] = _coerce(_BY_NAME[name], value, self.path)

    @property
    def store_url(self) -> str:
        return self.values["store"] or str(Path(self.values["data_dir"]) / "telmon.db")

    @property
    def quarantine_dir(self) -> Path | None:
        return Path(self.values["data_dir"]) / "quarantine" if self.values["quarantine"] else None


def _coerce(setting: Setting, value: Any, path: str | None) -> Any:
    try:
        if setting.type is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        if setting.type is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return list(value)
        return setting.type(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected {setting.type.__name__}, got {value!r}", path=path, key=setting.name) from None


def load_config(path: str | Path | None = None, *, env: dict[str, str] | None = None) -> Config:
    """Defaults, then the TOML file (if given), then TELMON_<NAME> environment variables."""
    cfg = Config()
    env = os.environ if env is None else env
    if path is None and env.get("TELMON_CONFIG"):
        path = env["TELMON_CONFIG"]
    if path is not None:
        cfg.path = str(path)
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError("config file not found", path=str(path)) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from None
        _apply(cfg, data)
    for s in SETTINGS:
        key = f"TELMON_{s.name.upper()}"
        if key in env:
            cfg.set(s.name, env[key])
    return cfg


def _apply(cfg: Config, data: dict[str, Any]) -> None:
    for key, value in data.items():
        if key == "watch":
            if not isinstance(value, list):
                raise ConfigError("[[watch]] must be an array of tables", path=cfg.path, key="watch")
            for i, item in enumerate(value):
                if not isinstance(item, dict) or "path" not in item:
                    raise ConfigError(f"watch entry {i + 1} needs a path", path=cfg.path, key="watch")
                unknown = set(item) - {"path", "feed", "poll", "recursive"}
                if unknown:
                    raise ConfigError(f"unknown keys {sorted(unknown)} in watch entry {i + 1}", path=cfg.path, key="watch")
                cfg.watch.append(WatchSpec(str(item["path"]), str(item.get("feed", "files")),
                                           float(item["poll"]) if item.get("poll") else None,
                                           bool(item.get("recursive", True))))
        elif key == "stations":
            if not isinstance(value, dict):
                raise ConfigError("[stations.<id>] tables expected", path=cfg.path, key="stations")
            cfg.stations.update({str(k): dict(v) for k, v in value.items()})
        elif key == "platforms":
            cfg.platforms.extend(str(p) for p in value)
        elif key == "rules":
            from telmon.alerts.rules import parse_rules

            cfg.rules.extend(parse_rules(value, cfg.path))
        elif key in _BY_NAME:
            cfg.set(key, value)
        else:
            raise ConfigError(f"unknown setting {key!r} (see `telmon settings`)", path=cfg.path, key=key)


def settings_markdown() -> str:
    lines = ["| setting | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        lines.append(f"| `{s.name}` | `{s.default!r}` | {s.help} |")
    return "\n".join(lines) + "\n"
