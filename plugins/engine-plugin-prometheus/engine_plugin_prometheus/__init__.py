"""engine-plugin-prometheus: ``/metrics`` and ``/health`` over HTTP.

Install it into the engine's environment and every paper or live run serves the
engine's metric catalogue (and any plugin's metrics, and stamina's
``stamina_retries_total``) at ``http://127.0.0.1:9464/metrics`` and its health
at ``/health``; no config needed. The optional ``[prometheus]`` section sets the
address, port, the scrape timeout and whether backtests serve too.

Values are read when Prometheus scrapes, on the engine's event loop; when the
loop is busy longer than ``timeout`` the last values are served (and ``/health``
says the loop did not answer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import attrs
from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from engine import (
    ConfigSection,
    Coordinator,
    HealthReport,
    HealthStatus,
    MetricRecord,
    between,
    hookimpl,
    interval,
    parse_interval,
)
from engine.health import report_document
from engine_plugin_prometheus.exposition import families
from engine_plugin_prometheus.server import HttpEndpoint, LoopBridge

__all__ = ["PrometheusConfig", "PrometheusEndpoint"]


@attrs.frozen
class PrometheusConfig:
    """``[prometheus]`` (optional): where ``/metrics`` and ``/health`` are served."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = attrs.field(default=9464, validator=between(0, 65535))
    #: how long a scrape waits for the engine's event loop before serving the last values
    timeout: str = attrs.field(default="2s", validator=interval)
    #: serve during backtests too (off: backtests are short, and sweeps run many at once)
    backtests: bool = False


class _EngineCollector:
    """A prometheus_client collector over the engine's metrics, read on its loop."""

    def __init__(self, engine: Any, bridge: LoopBridge) -> None:
        self.engine = engine
        self.bridge = bridge
        self.last: list[MetricRecord] = []

    def collect(self) -> Iterator[Metric]:
        async def read() -> list[MetricRecord]:
            return self.engine.metrics.collect(time.time_ns())  # type: ignore[no-any-return]

        try:
            self.last = self.bridge.call(read)
        except TimeoutError as exc:
            logger.warning("prometheus: serving the last values: {}", exc)
        yield from families(self.last, self.engine.metrics.help)
        from stamina.instrumentation import get_prometheus_counter

        retries = get_prometheus_counter()  # stamina's, when its Prometheus hook is on
        if retries is not None:
            yield from retries.collect()


class PrometheusEndpoint:
    """The coordinator: starts the HTTP endpoint with the run, stops it after."""

    def __init__(self, config: PrometheusConfig | None) -> None:
        self.config = config or PrometheusConfig()
        self.endpoint: HttpEndpoint | None = None
        self.error = ""
        self._bridge: LoopBridge | None = None

    async def start(self, engine: Any) -> None:
        """Serve, unless disabled or (by default) in a backtest."""
        cfg = self.config
        if not cfg.enabled or (engine.mode == "backtest" and not cfg.backtests):
            return
        self._bridge = bridge = LoopBridge(
            asyncio.get_running_loop(), parse_interval(cfg.timeout) / 1e9
        )
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_EngineCollector(engine, bridge))

        def health() -> tuple[int, dict[str, Any]]:
            try:
                document = bridge.call(lambda: _health_document(engine))
            except TimeoutError as exc:
                return 503, {"status": "failing", "time": time.time(), "detail": str(exc)}
            return (503 if document["status"] == "failing" else 200), document

        try:
            self.endpoint = HttpEndpoint(cfg.host, cfg.port, registry, health)
        except OSError as exc:
            # observability must not stop trading: say so loudly, report failing health
            self.error = f"cannot serve on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
            logger.error("prometheus: {}; set [prometheus] port (0 picks a free one)", self.error)
            return
        self.endpoint.start()
        logger.info("prometheus: serving {}/metrics and /health", self.endpoint.url)

    async def stop(self) -> None:
        """Stop the HTTP endpoint (in a thread: shutting down waits for a poll)."""
        if self.endpoint is not None:
            await asyncio.to_thread(self.endpoint.stop)
            self.endpoint = None

    def health(self) -> list[HealthReport]:
        """``ok`` while serving, ``failing`` if the port could not be bound."""
        if self.error:
            return [
                HealthReport(component="prometheus", status=HealthStatus.FAILING, detail=self.error)
            ]
        if self.endpoint is None:
            detail = "disabled" if not self.config.enabled else "not serving in backtests"
            return [HealthReport(component="prometheus", status=HealthStatus.OK, detail=detail)]
        return [
            HealthReport(
                component="prometheus",
                status=HealthStatus.OK,
                detail=f"serving {self.endpoint.url}/metrics",
            )
        ]


async def _health_document(engine: Any) -> dict[str, Any]:
    return report_document(await engine.health())


@hookimpl
def engine_config_sections() -> list[ConfigSection]:
    """``[prometheus]``."""
    return [ConfigSection(name="prometheus", config_type=PrometheusConfig)]


@hookimpl
def engine_coordinators() -> list[Coordinator]:
    """The HTTP endpoint, as a coordinator named like its config section."""
    return [
        Coordinator(
            name="prometheus",
            factory=PrometheusEndpoint,
            description="Serves /metrics (Prometheus) and /health (JSON) during runs.",
        )
    ]
