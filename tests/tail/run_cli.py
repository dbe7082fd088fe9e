"""Run the telmon command with the tail commands registered (as telmon.cli will once wired):
``python tests/tail/run_cli.py tail --once ...`` -- used by the kill -9 test."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from telmon.cli import main  # noqa: E402
from telmon.tail.cli import register  # noqa: E402

if "tail" not in main.commands:
    register(main)

if __name__ == "__main__":
    main()
