"""engine.testing.services: a missing server skips locally and fails in CI."""

from __future__ import annotations

import socket

import pytest

from engine.testing import services


@pytest.fixture
def nothing_installable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    monkeypatch.setattr(services.os, "geteuid", lambda: 1000)


def test_missing_binary_skips_with_the_install_command(
    nothing_installable: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENGINE_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y redis-server"):
        services.service_binary("redis-server", "redis-server")


def test_missing_binary_fails_when_services_are_required(
    nothing_installable: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINE_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="prometheus is not installed"):
        services.service_binary("prometheus", "prometheus")


def test_free_port_and_wait_for_port() -> None:
    port = services.free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        services.wait_for_port("127.0.0.1", port, timeout=5)
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}"):
        services.wait_for_port("127.0.0.1", port, timeout=0.2)
