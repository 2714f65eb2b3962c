"""A real redis-server per test session (and one with a password on demand)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from engine.testing.services import free_port, service_binary, wait_for_port


@contextmanager
def redis_server(directory: Path, *args: str) -> Iterator[int]:
    """Start ``redis-server`` on a free port (no persistence); yields the port."""
    binary = service_binary("redis-server", "redis-server")
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One redis-server for the session."""
    with redis_server(tmp_path_factory.mktemp("redis")) as port:
        yield port


@pytest.fixture
def redis_url(redis_port: int) -> Iterator[str]:
    """The session's server, emptied for this test: ``redis://127.0.0.1:PORT/0``."""
    url = f"redis://127.0.0.1:{redis_port}/0"
    with redis.Redis.from_url(url) as client:
        client.flushall()
    yield url


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A redis-server of its own with ``requirepass``: (url without password, password)."""
    password = f"pw-{secrets.token_hex(8)}"
    with redis_server(tmp_path / "redis", "--requirepass", password) as port:
        yield f"redis://127.0.0.1:{port}/0", password


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on the test's server (replies as ``str``)."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        yield client


@pytest.fixture
def engine_config() -> Callable[..., dict[str, Any]]:
    """A config dict: synthetic 1-minute bars, the SMA strategy, one redis store."""

    def make(bars: int = 600, seed: int = 3, interval: str = "1h", **store: Any) -> dict[str, Any]:
        return {
            "engine": {"name": "redis-test", "initial_cash": "10000", "seed": seed},
            "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.001"}],
            "feed": {"type": "synthetic", "bars": bars, "interval": "1m"},
            "strategies": [{"type": "sma_crossover", "fast": 5, "slow": 20, "quantity": "0.1"}],
            "metrics_stores": [{"type": "redis", **store}],
            "metrics": {"interval": interval},
        }

    return make
