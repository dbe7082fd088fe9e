"""The Setting record: kept apart from config.py so a capability can declare its settings
without importing the config (which gathers them all)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str
