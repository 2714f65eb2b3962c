"""``engine health``: reads a running engine's /health; exit code by status."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.testing.services import free_port

DOCUMENT: dict[str, Any] = {
    "status": "degraded",
    "time": 0,
    "components": [
        {"component": "engine", "status": "ok", "detail": "paper run, 5 bars", "plugin": "engine"},
        {
            "component": "trading",
            "status": "degraded",
            "detail": "reducing: drawdown",
            "plugin": "engine",
        },
    ],
}


@pytest.fixture
def health_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A stand-in engine: serves ``state['document']`` with ``state['code']``."""
    state: dict[str, Any] = {"document": DOCUMENT, "code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(state["document"]).encode()
            self.send_response(state["code"])
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health", state
    server.shutdown()
    server.server_close()


def test_degraded_prints_the_table_and_exits_1(health_server: tuple[str, dict[str, Any]]) -> None:
    url, _ = health_server
    result = CliRunner().invoke(main, ["health", "--url", url])
    assert result.exit_code == 1
    assert "health: degraded" in result.output
    assert "reducing: drawdown" in result.output


def test_failing_503_still_reads_the_document(health_server: tuple[str, dict[str, Any]]) -> None:
    url, state = health_server
    state["document"] = {**DOCUMENT, "status": "failing"}
    state["code"] = 503
    result = CliRunner().invoke(main, ["health", "--url", url, "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output)["status"] == "failing"


def test_ok_exits_0(health_server: tuple[str, dict[str, Any]]) -> None:
    url, state = health_server
    state["document"] = {**DOCUMENT, "status": "ok"}
    assert CliRunner().invoke(main, ["health", "--url", url]).exit_code == 0


def test_not_a_health_document(health_server: tuple[str, dict[str, Any]]) -> None:
    url, state = health_server
    state["document"] = ["nope"]
    result = CliRunner().invoke(main, ["health", "--url", url])
    assert result.exit_code == 3
    assert "did not return a health document" in result.output


def test_nothing_listening_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    result = CliRunner().invoke(main, ["health", "--url", url])
    assert result.exit_code == 3
    assert f"error: no engine answers at {url}" in result.output
    assert "Traceback" not in result.output
