"""The ``hook_recorder`` fixture (engine/testing/recorder.py): every hook call of a run,
plugin by plugin, with its arguments, result and error, in order."""

from __future__ import annotations

from typing import Any

from engine import HealthReport, HealthStatus, Strategy, hookimpl
from engine.testing import EngineHarness, HookRecorder


class Hold:
    def __init__(self, config: Any) -> None:
        pass

    def on_bar(self, bar: Any) -> None:
        pass


class Lifecycle:
    @hookimpl
    def engine_strategies(self) -> list[Strategy]:
        return [Strategy(name="hold", factory=Hold)]

    @hookimpl
    async def engine_startup(self, engine: Any) -> str:
        return "up"

    @hookimpl
    def engine_health(self, engine: Any) -> list[HealthReport]:
        return [HealthReport(component="hold", status=HealthStatus.OK)]

    @hookimpl
    def engine_shutdown(self, engine: Any) -> None:
        raise RuntimeError("could not flush")


async def test_a_run_records_every_hook_call_in_order(
    engine: EngineHarness, register_plugin: Any, scripted_market: Any, hook_recorder: HookRecorder
) -> None:
    register_plugin(Lifecycle(), "life")
    scripted_market([100, 101, 102])
    engine.strategy("hold")
    eng = engine.build()
    result = await eng.backtest()
    assert result.bars == 3
    # records first (config resolution, then the run), lifecycle hooks around the run
    hooks = hook_recorder.hooks()
    assert hooks.index("engine_strategies") < hooks.index("engine_startup")
    assert hooks.index("engine_startup") < hooks.index("engine_shutdown") == len(hooks) - 1
    assert hook_recorder.plugins("engine_startup") == ["life"]
    (start,) = hook_recorder.of("engine_startup")
    assert start.kwargs == {"engine": eng} and start.result == "up" and start.error is None
    (stop,) = hook_recorder.of("engine_shutdown", "life")
    assert isinstance(stop.error, RuntimeError) and str(stop.error) == "could not flush"
    assert hook_recorder.errors() == [stop]
    # a record hook's result is the list of records the plugin returned
    (strategies,) = hook_recorder.results("engine_strategies", "life")
    assert [r.name for r in strategies] == ["hold"]
    assert "engine-testing-scripted" in hook_recorder.plugins("engine_feeds")
    assert "simulated" in hook_recorder.plugins("engine_brokers")
    assert all(c.seconds >= 0 for c in hook_recorder.calls)


async def test_health_calls_and_detaching(
    engine: EngineHarness, register_plugin: Any, hook_recorder: HookRecorder
) -> None:
    register_plugin(Lifecycle(), "life")
    engine.feed("synthetic", bars=5)
    engine.strategy("hold")
    eng = engine.build()
    reports = await eng.health()
    assert any(r.component == "hold" for r in reports)
    assert hook_recorder.called("engine_health", "life")
    hook_recorder.detach()
    hook_recorder.clear()
    await eng.health()
    assert len(hook_recorder) == 0 and not hook_recorder.called("engine_health")


def test_a_recorder_can_watch_any_manager() -> None:
    from engine import PluginManager, PluginSettings

    manager = PluginManager(PluginSettings(autoload=False))
    manager.register(Lifecycle(), "life")
    recorder = HookRecorder().attach(manager)
    manager.collect("engine_strategies")
    assert [(c.hook, c.plugin) for c in recorder.calls] == [("engine_strategies", "life")]
    recorder.detach()
