"""engine.health(): the core's reports, coordinators' and plugins' reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from engine import Coordinator, Engine, HealthReport, HealthStatus, hookimpl
from engine.health import overall, report_document
from engine.kernel.trading import TradingState


class Reporting:
    """Plugin: one healthy component, a coordinator with health(), a raising hook."""

    class Service:
        def __init__(self, config: Any) -> None:
            self.started = False

        async def start(self, engine: Any) -> None:
            self.started = True

        async def stop(self) -> None:
            self.started = False

        def health(self) -> list[HealthReport]:
            return [HealthReport(component="service", status=HealthStatus.DEGRADED, detail="slow")]

    @hookimpl
    def engine_coordinators(self) -> list[Coordinator]:
        return [Coordinator(name="service", factory=Reporting.Service)]

    @hookimpl
    def engine_health(self, engine: Any) -> list[Any]:
        return [HealthReport(component="feedlink", status=HealthStatus.OK), "not a report"]


class Broken:
    @hookimpl
    async def engine_health(self, engine: Any) -> list[HealthReport]:
        raise RuntimeError("cannot tell")


async def during_paper_run(eng: Engine, probe: Callable[[Engine], Any]) -> Any:
    """Call ``probe(eng)`` once the paper run has started; return its result."""
    stop = asyncio.Event()
    task = asyncio.create_task(eng.run(stop=stop, speed=1000.0))
    while eng.active_run is None or not eng.active_run.started_hooks:
        assert not task.done(), task.result()
        await asyncio.sleep(0.005)
    try:
        return await probe(eng)
    finally:
        stop.set()
        await task


def paper_config(base_config: dict[str, Any]) -> dict[str, Any]:
    base_config["feed"] = {"type": "synthetic", "interval": "1s", "start_price": "100"}
    return base_config


async def test_no_run_is_healthy(make_engine: Callable[..., Engine]) -> None:
    reports = await make_engine().health()
    assert [(r.component, r.status, r.detail, r.plugin) for r in reports] == [
        ("engine", HealthStatus.OK, "no run", "engine")
    ]
    assert overall(reports) is HealthStatus.OK


async def test_reports_from_core_coordinators_and_plugins(
    make_engine: Callable[..., Engine], base_config: dict[str, Any]
) -> None:
    eng = make_engine(paper_config(base_config))
    eng.register(Reporting(), "reporting")
    eng.register(Broken(), "broken")
    reports = await during_paper_run(eng, lambda e: e.health())
    by = {(r.plugin, r.component): r for r in reports}
    assert by["engine", "engine"].status is HealthStatus.OK
    assert by["engine", "engine"].detail.startswith("paper run, ")
    assert by["engine", "trading"].detail == "active"
    assert by["reporting", "service"].status is HealthStatus.DEGRADED
    assert by["reporting", "feedlink"].status is HealthStatus.OK
    bad = by["reporting", "reporting"]
    assert bad.status is HealthStatus.FAILING and "returned str" in bad.detail
    raised = by["broken", "broken"]
    assert raised.status is HealthStatus.FAILING
    assert raised.detail == "engine_health raised RuntimeError: cannot tell"
    assert overall(reports) is HealthStatus.FAILING
    document = report_document(reports)
    assert document["status"] == "failing"
    assert {
        "component": "service",
        "status": "degraded",
        "detail": "slow",
        "plugin": "reporting",
    } in document["components"]
    assert (await eng.health())[0].detail == "no run"  # after the run


async def test_trading_state_sets_the_status(
    make_engine: Callable[..., Engine], base_config: dict[str, Any]
) -> None:
    eng = make_engine(paper_config(base_config))

    async def probe(e: Engine) -> list[tuple[HealthStatus, str]]:
        assert e.active_run is not None
        trading = e.active_run.kernel.trading
        seen = []
        for state in (TradingState.REDUCING, TradingState.HALTED):
            trading.force(state, 0, "operator", "test")
            report = next(r for r in await e.health() if r.component == "trading")
            seen.append((report.status, report.detail))
        return seen

    assert await during_paper_run(eng, probe) == [
        (HealthStatus.DEGRADED, "reducing: operator"),
        (HealthStatus.FAILING, "halted: operator"),
    ]


async def test_a_failing_metrics_sink_degrades_health(
    make_engine: Callable[..., Engine], base_config: dict[str, Any]
) -> None:
    from engine import Exporter

    class Failing:
        def __init__(self, config: Any) -> None:
            pass

        def export(self, records: Any) -> None:
            raise OSError("collector down")

    class Plugin:
        @hookimpl
        def engine_exporters(self) -> list[Exporter]:
            return [Exporter(name="failing", factory=Failing)]

    base_config["exporters"] = [{"type": "failing"}]
    base_config["metrics"] = {"interval": "1s"}
    eng = make_engine(paper_config(base_config))
    eng.register(Plugin(), "failing_plugin")

    async def probe(e: Engine) -> HealthReport:
        while not e.active_run.publisher.failures:  # type: ignore[union-attr]
            await asyncio.sleep(0.005)
        return next(r for r in await e.health() if r.component == "metrics")

    report = await during_paper_run(eng, probe)
    assert report.status is HealthStatus.DEGRADED
    assert report.detail == "failing: OSError: collector down"
