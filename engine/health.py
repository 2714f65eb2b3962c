"""Health: what the engine and its plugins say about themselves while running.

:meth:`engine.Engine.health` gathers the core's own reports (is a run going, its
trading state, failing metrics sinks) and every plugin's ``engine_health`` hook.
A plugin whose hook raises is reported ``failing``; it never hides the others.
``/health`` (the Prometheus plugin's HTTP server) and ``engine health`` show them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from engine.records import HealthReport, HealthStatus

if TYPE_CHECKING:
    from engine.engine import Engine

__all__ = ["gather_health", "overall", "report_document"]

OK, DEGRADED, FAILING = HealthStatus.OK, HealthStatus.DEGRADED, HealthStatus.FAILING


def overall(reports: Iterable[HealthReport]) -> HealthStatus:
    """The worst status among ``reports`` (``ok`` when there are none)."""
    return max((r.status for r in reports), key=lambda s: s.rank, default=OK)


def _plugin_reports(engine: Engine) -> list[HealthReport]:
    failed = engine.plugins.failed()
    if not failed:
        return []
    detail = "; ".join(f"{name}: {error}" for name, error in sorted(failed.items()))
    return [
        HealthReport(
            component="plugins",
            status=DEGRADED,
            detail=f"failed to load: {detail}",
            plugin="engine",
        )
    ]


def _core_reports(engine: Engine) -> list[HealthReport]:
    run = engine.active_run
    if run is None:
        idle = HealthReport(component="engine", status=OK, detail="no run", plugin="engine")
        return [idle, *_plugin_reports(engine)]
    kernel = run.kernel
    bars = sum(s.view.index + 1 for s in kernel.streams.values())
    reports = [
        HealthReport(
            component="engine",
            status=OK,
            detail=f"{engine.mode} run, {bars} bars, {len(kernel.open_orders())} open orders",
            plugin="engine",
        )
    ]
    state = kernel.trading.state
    last = kernel.trading.history[-1] if kernel.trading.history else None
    why = f": {last.reason}" if last is not None and last.state is state else ""
    status = (OK, DEGRADED, FAILING)[state.severity]
    reports.append(
        HealthReport(
            component="trading", status=status, detail=f"{state.value}{why}", plugin="engine"
        )
    )
    reports += _plugin_reports(engine)
    if run.publisher is not None and run.publisher.failures:
        detail = "; ".join(f"{name}: {error}" for name, error in run.publisher.failures.items())
        reports.append(
            HealthReport(component="metrics", status=DEGRADED, detail=detail, plugin="engine")
        )
    return reports


def _failing(component: str, plugin: str, detail: str) -> HealthReport:
    return HealthReport(component=component, status=FAILING, detail=detail, plugin=plugin)


def _stamped(value: Any, plugin: str, source: str) -> list[HealthReport]:
    """A hook's or coordinator's reports, stamped; anything else is a failing report."""
    from attrs import evolve

    out = []
    for item in value or ():
        if isinstance(item, HealthReport):
            out.append(evolve(item, plugin=plugin))
        else:
            out.append(
                _failing(
                    plugin, plugin, f"{source} returned {type(item).__name__}, not HealthReport"
                )
            )
    return out


async def gather_health(engine: Engine) -> list[HealthReport]:
    """The core's reports, then each started coordinator's ``health()``, then each
    plugin's ``engine_health``; every report stamped with its plugin."""
    from engine.aio import maybe_await

    reports = _core_reports(engine)
    run = engine.active_run
    for record, coordinator in run.started if run is not None else ():
        check = getattr(coordinator, "health", None)
        if check is None:
            continue
        try:
            reports += _stamped(await maybe_await(check()), record.plugin, "health()")
        except Exception as exc:
            reports.append(
                _failing(record.name, record.plugin, f"health() raised {type(exc).__name__}: {exc}")
            )
    async for plugin, value, error in engine.plugins.call_each("engine_health", engine=engine):
        if error is not None:
            reports.append(
                _failing(plugin, plugin, f"engine_health raised {type(error).__name__}: {error}")
            )
        else:
            reports += _stamped(value, plugin, "engine_health")
    return reports


def report_document(reports: list[HealthReport]) -> dict[str, Any]:
    """The JSON document of ``/health`` and ``engine health --json``."""
    return {
        "status": overall(reports).value,
        "time": time.time(),
        "components": [r.to_dict() for r in reports],
    }
