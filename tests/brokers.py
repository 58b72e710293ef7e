"""The message brokers the Celery tests use on loopback: each test that needs one skips, naming what to install,
when it does not answer."""

from __future__ import annotations

import socket

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
