"""The message brokers the Celery tests use on loopback: each test that needs one skips, naming what to install,
when it does not answer."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

REDIS_URL = "redis://127.0.0.1:6379/15"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def redis_or_skip() -> str:
    if not answers(6379):
        pytest.skip("no Redis on 127.0.0.1:6379 (install and start redis-server to run this)")
    return REDIS_URL


def amqp_or_skip() -> str:
    if not answers(5672):
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 (install and start rabbitmq-server to run this)")
    return AMQP_URL


def closed_port() -> int:
    """A loopback port nothing listens on (a broker that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def celery_home_with_expert(home: Path, expert_id: str, source: str) -> Path:
    """``home`` configured for Celery with a broker that is down, the expert ``source`` in its experts directory as
    ``<expert_id>.py`` and an empty ``marks`` directory for the expert's notes."""
    (home / "experts").mkdir()
    (home / "experts" / f"{expert_id}.py").write_text(source, encoding="utf-8")
    (home / "config.yaml").write_text(
        f"executor:\n  kind: celery\n  broker_url: redis://127.0.0.1:{closed_port()}/0\n", encoding="utf-8"
    )
    (home / "marks").mkdir()
    return home
