"""A small threaded HTTP server: ``/metrics`` (Prometheus text or OpenMetrics)
and ``/health`` (JSON), answering from a daemon thread while the engine trades.

Everything the handlers read from the engine is computed on the engine's event
loop (:class:`LoopBridge`), never on the HTTP thread, so a scrape cannot see a
half-updated portfolio.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Coroutine, Iterable
from socketserver import ThreadingMixIn
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from loguru import logger
from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["HttpEndpoint", "LoopBridge"]

T = TypeVar("T")
StartResponse = Callable[..., Any]


class LoopBridge:
    """Runs a coroutine on the engine's loop from another thread, with a timeout."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout

    def call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The coroutine's result; ``TimeoutError`` if the loop is busy or gone."""
        if self.loop.is_closed():
            raise TimeoutError("the engine's event loop is closed")
        future = asyncio.run_coroutine_threadsafe(make(), self.loop)
        try:
            return future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"the engine's event loop did not answer within {self.timeout:g}s"
            ) from None


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("prometheus http: " + format, *args)


class HttpEndpoint:
    """``/metrics`` from ``registry`` and ``/health`` from ``health()`` -> (HTTP
    status, JSON document), served on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Callable[[], tuple[int, dict[str, Any]]],
    ) -> None:
        metrics_app = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "/")
            if path == "/metrics":
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            if path == "/health":
                code, document = health()
                return _reply(start_response, code, "application/json", json.dumps(document))
            if path == "/":
                return _reply(start_response, 200, "text/plain", "engine: /metrics /health\n")
            return _reply(start_response, 404, "text/plain", f"no such path: {path}\n")

        server_class = _Server6 if ":" in host else _Server
        self.server = make_server(
            host, port, app, server_class=server_class, handler_class=_QuietHandler
        )
        self.host = host
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"prometheus-http-{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:9464``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Serve from a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (blocks up to one poll interval)."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


def _reply(start_response: StartResponse, code: int, ctype: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        f"{code} {_REASONS.get(code, '')}".strip(),
        [("Content-Type", f"{ctype}; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
