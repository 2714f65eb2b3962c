"""Built-in plugin ``resources``: the engine process's CPU, memory and event-loop lag.

A coordinator started with every run. It adds, at each metrics collection,
``engine_process_rss_bytes``, ``engine_process_cpu_seconds_total`` (read at most
once per ``interval`` of wall time) and, in paper
and live runs, ``engine_loop_lag_seconds`` (how late a timer of ``interval``
fired: the time the loop was blocked). It reports health: ``degraded`` past
``lag_degraded``, ``failing`` past ``lag_failing``, with the figures as detail.
Backtests keep the loop busy by design, so their lag is not measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import attrs

from engine import (
    ConfigSection,
    Coordinator,
    HealthReport,
    HealthStatus,
    MetricKind,
    hookimpl,
    parse_interval,
)
from engine import interval as is_interval

Sample = tuple[str, MetricKind, tuple[tuple[str, str], ...], float]


@attrs.frozen
class ResourcesConfig:
    """``[resources]`` (optional): how often the loop lag is sampled and when it
    makes health degraded or failing."""

    enabled: bool = True
    interval: str = attrs.field(default="500ms", validator=is_interval)
    lag_degraded: str = attrs.field(default="100ms", validator=is_interval)
    lag_failing: str = attrs.field(default="1s", validator=is_interval)


class ResourceMonitor:
    """Samples the process and the event loop while a run goes on."""

    def __init__(self, config: ResourcesConfig | None) -> None:
        import psutil  # here, not at import: listing plugins stays fast

        self.config = config or ResourcesConfig()
        self.process = psutil.Process()
        self.lag: float | None = None  # seconds, last sample (paper and live only)
        self.worst_lag = 0.0  # since the last health report
        self._task: asyncio.Task[None] | None = None
        self._period = parse_interval(self.config.interval) / 1e9
        self._sampled_at = -float("inf")
        self._rss = self._cpu = 0.0

    async def start(self, engine: Any) -> None:
        """Add the collector; watch the loop outside backtests."""
        if not self.config.enabled:
            return
        engine.metrics.help.update(
            {
                "engine_process_rss_bytes": "resident memory of the engine process, bytes",
                "engine_process_cpu_seconds_total": "CPU time of the engine process, seconds",
                "engine_loop_lag_seconds": "how late the event loop ran a timer, seconds",
            }
        )
        engine.metrics.add_collector(self._collect)
        self.process.cpu_percent(None)  # start the CPU-percent window
        if engine.mode != "backtest":
            self._task = asyncio.create_task(self._watch(), name="resource-monitor")

    async def stop(self) -> None:
        """Stop watching the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        period = self._period
        while True:
            due = loop.time() + period
            await asyncio.sleep(period)
            self.lag = max(loop.time() - due, 0.0)
            self.worst_lag = max(self.worst_lag, self.lag)

    def _collect(self) -> Iterator[Sample]:
        # reading /proc costs tens of microseconds: at most once per interval of wall
        # time (a backtest collects every hour of engine time, thousands of times a second)
        now = time.monotonic()
        if now - self._sampled_at >= self._period:
            with self.process.oneshot():
                self._rss = float(self.process.memory_info().rss)
                cpu = self.process.cpu_times()
            self._cpu = cpu.user + cpu.system
            self._sampled_at = now
        yield "engine_process_rss_bytes", MetricKind.GAUGE, (), self._rss
        yield "engine_process_cpu_seconds_total", MetricKind.COUNTER, (), self._cpu
        if self.lag is not None:
            yield "engine_loop_lag_seconds", MetricKind.GAUGE, (), self.lag

    def health(self) -> list[HealthReport]:
        """The worst loop lag since the last report against the thresholds."""
        if not self.config.enabled:
            return [HealthReport(component="resources", status=HealthStatus.OK, detail="disabled")]
        rss_mb = self.process.memory_info().rss / 2**20
        detail = f"rss {rss_mb:.0f} MB, cpu {self.process.cpu_percent(None):.0f}%"
        status = HealthStatus.OK
        if self.lag is not None:
            worst, self.worst_lag = self.worst_lag, 0.0
            detail += f", loop lag {worst * 1e3:.1f} ms (worst since last report)"
            if worst * 1e9 >= parse_interval(self.config.lag_failing):
                status = HealthStatus.FAILING
            elif worst * 1e9 >= parse_interval(self.config.lag_degraded):
                status = HealthStatus.DEGRADED
        return [HealthReport(component="resources", status=status, detail=detail)]


@hookimpl
def engine_config_sections() -> list[ConfigSection]:
    """``[resources]``."""
    return [ConfigSection(name="resources", config_type=ResourcesConfig)]


@hookimpl
def engine_coordinators() -> list[Coordinator]:
    """The resource monitor."""
    return [
        Coordinator(
            name="resources",
            factory=ResourceMonitor,
            description="Process CPU and memory, event-loop lag; health by lag.",
        )
    ]
