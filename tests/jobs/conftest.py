"""Fixtures of the job-archive tests: a Redis key prefix and a RabbitMQ queue of their own,
removed afterwards (tests may run beside other engineers' on the same servers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.jobs.support import (
    amqp_connection,
    delete_queue,
    redis_cleanup,
    redis_client,
    register_jobarchive,
    unique,
)


@pytest.fixture(autouse=True)
def _jobarchive_format(monkeypatch: pytest.MonkeyPatch) -> None:
    register_jobarchive(monkeypatch)


@pytest.fixture
def redis_prefix() -> Iterator[tuple[Any, str]]:
    client = redis_client()
    prefix = unique("redis") + "/"
    yield client, prefix
    redis_cleanup(client, prefix)
    client.close()


@pytest.fixture
def amqp_queue() -> Iterator[str]:
    conn = amqp_connection()
    conn.close()
    name = unique("queue")
    yield name
    delete_queue(name)
