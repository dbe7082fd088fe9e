"""Fixtures for the dashboard tests: the sample service (built once per module: the tests only
read it) and a fresh empty one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from telmon.service import Service
from tests.dashboard.sample import build


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = build(tmp_path_factory.mktemp("dashboard"))
    yield service
    service.close()


@pytest.fixture
def empty_service(tmp_path: Path) -> Iterator[Service]:
    from telmon.config import Config
    from tests.dashboard.sample import NOW

    service = Service(Config(values={**Config().values, "data_dir": str(tmp_path / "data")}), now=lambda: NOW)
    yield service
    service.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's chromium; skips without it (fails under CI=true)")
