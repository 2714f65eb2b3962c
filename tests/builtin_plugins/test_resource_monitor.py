"""The resources plugin: process CPU and memory, event-loop lag, health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from engine import Engine, HealthStatus, Strategy, hookimpl


def values(result: Any) -> dict[str, float]:
    return {
        r.name: r.value
        for r in result.metrics
        if r.name.startswith("engine_process_") or r.name == "engine_loop_lag_seconds"
    }


def test_backtests_report_memory_and_cpu_not_lag(make_engine: Callable[..., Engine]) -> None:
    got = values(make_engine().backtest_sync())
    assert got["engine_process_rss_bytes"] > 10 * 2**20
    assert got["engine_process_cpu_seconds_total"] > 0
    assert "engine_loop_lag_seconds" not in got


def test_disabled(make_engine: Callable[..., Engine], base_config: dict[str, Any]) -> None:
    base_config["resources"] = {"enabled": False}
    assert values(make_engine(base_config).backtest_sync()) == {}


class Blocking:
    """Blocks the event loop for 150 ms on every 5th bar."""

    def __init__(self, config: Any) -> None:
        self.n = 0

    def on_bar(self, bar: Any) -> None:
        self.n += 1
        if self.n % 5 == 0:
            time.sleep(0.15)


class BlockingPlugin:
    @hookimpl
    def engine_strategies(self) -> list[Strategy]:
        return [Strategy(name="blocking", factory=Blocking)]


async def paper_health(eng: Engine, seconds: float) -> tuple[list[Any], Any]:
    stop = asyncio.Event()
    task = asyncio.create_task(eng.run(stop=stop, speed=10.0))
    await asyncio.sleep(seconds)
    reports = await eng.health()
    stop.set()
    return reports, await task


async def test_paper_runs_measure_loop_lag_and_report_health(
    make_engine: Callable[..., Engine], base_config: dict[str, Any]
) -> None:
    base_config["feed"] = {"type": "synthetic", "interval": "1s", "start_price": "100"}
    base_config["resources"] = {"interval": "20ms"}
    reports, result = await paper_health(make_engine(base_config), 0.4)
    report = next(r for r in reports if r.component == "resources")
    assert report.plugin == "resources" and report.status is HealthStatus.OK
    assert "rss " in report.detail and "loop lag " in report.detail
    got = values(result)
    assert 0 <= got["engine_loop_lag_seconds"] < 0.1


async def test_a_blocked_loop_degrades_health(
    make_engine: Callable[..., Engine], base_config: dict[str, Any]
) -> None:
    base_config["feed"] = {"type": "synthetic", "interval": "1s", "start_price": "100"}
    base_config["strategies"] = [{"type": "blocking"}]
    base_config["resources"] = {"interval": "20ms", "lag_degraded": "100ms", "lag_failing": "10s"}
    eng = make_engine(base_config)
    eng.register(BlockingPlugin(), "blocking")
    reports, _ = await paper_health(eng, 1.2)
    report = next(r for r in reports if r.component == "resources")
    assert report.status is HealthStatus.DEGRADED, report
    worst_ms = float(report.detail.split("loop lag ")[1].split(" ms")[0])
    assert worst_ms >= 100


def test_config_is_checked(make_engine: Callable[..., Engine], base_config: dict[str, Any]) -> None:
    import pytest

    from engine import ConfigError

    base_config["resources"] = {"interval": "soon"}
    with pytest.raises(ConfigError, match=r"config\.resources\.interval"):
        make_engine(base_config).check()
