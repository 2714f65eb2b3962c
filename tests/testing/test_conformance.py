"""``assert_conforms`` (engine/testing/conformance.py): the four rejections the issue
asks for (misspelt hook, wrong argument name, wrong record type, a blocking call in an
async record callable), each naming plugin and hook; the other checks; a conforming
plugin's report; every built-in plugin conforms."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any

import attrs
import pytest
from constants import BUILTINS

from engine import (
    Coordinator,
    Deny,
    Guard,
    HealthReport,
    HealthStatus,
    Strategy,
    hookimpl,
)
from engine.testing import ConformanceError, ConformanceReport, assert_conforms

#: generous for plugins that must pass: a noisy machine never fails them
LENIENT = 5.0


class BuyOnce:
    def __init__(self, config: Any) -> None:
        self.ctx: Any = None

    def on_start(self, ctx: Any) -> None:
        self.ctx = ctx

    def on_bar(self, bar: Any) -> None:
        if bar.index == 5:
            self.ctx.buy(1)


@attrs.frozen
class CapConfig:
    limit: Decimal


def cap(config: CapConfig) -> Any:
    def check(intent: Any, ctx: Any) -> Any:
        return Deny("too_big") if intent.quantity > config.limit else None

    return check


def rejection(plugin: object, name: str, **kwargs: Any) -> str:
    with pytest.raises(ConformanceError) as caught:
        assert_conforms(plugin, name=name, **kwargs)
    return str(caught.value)


# -- the four rejections the issue names ---------------------------------------------------


def test_a_misspelt_hook_name_is_rejected_naming_plugin_and_hook() -> None:
    class Typo:
        @hookimpl
        def engine_strategys(self) -> list[Strategy]:
            return [Strategy(name="buy_once", factory=BuyOnce)]

    message = rejection(Typo(), "typo")
    assert (
        "plugin 'typo', hook engine_strategys: no such hook (did you mean engine_strategies?)"
        in message
    )


def test_a_wrong_argument_name_is_rejected_naming_plugin_and_hook() -> None:
    class WrongArg:
        @hookimpl
        def engine_startup(self, eng: Any) -> None:
            pass

    message = rejection(WrongArg(), "wrong-arg")
    assert (
        "plugin 'wrong-arg', hook engine_startup: argument(s) 'eng' not in the hook's spec"
        " engine_startup(engine)" in message
    )


def test_a_hook_returning_the_wrong_record_type_is_rejected_naming_plugin_and_hook() -> None:
    class WrongType:
        @hookimpl
        def engine_guards(self) -> list[Any]:
            return [Strategy(name="not_a_guard", factory=BuyOnce)]

    message = rejection(WrongType(), "wrong-type")
    assert (
        "plugin 'wrong-type', hook engine_guards: returned Strategy 'not_a_guard', expected Guard"
        in message
    )


def test_a_blocking_call_in_an_async_record_callable_is_caught_by_the_time_budget() -> None:
    class Blocking:
        def __init__(self, config: Any) -> None:
            pass

        async def start(self, engine: Any) -> None:
            await asyncio.sleep(0)
            time.sleep(1.0)  # blocks the event loop: every other task waits

        async def stop(self) -> None:
            pass

    class Plugin:
        @hookimpl
        def engine_coordinators(self) -> list[Coordinator]:
            return [Coordinator(name="blocker", factory=Blocking)]

    message = rejection(Plugin(), "blocky", budget=0.2)
    assert "plugin 'blocky', hook engine_coordinators: Coordinator 'blocker': start(engine)" in (
        message
    )
    assert "blocked the event loop for" in message and "(budget 0.20 s)" in message


def test_an_async_factory_that_blocks_is_caught_too() -> None:
    async def slow_factory(config: Any) -> BuyOnce:
        time.sleep(1.0)
        return BuyOnce(config)

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="slow", factory=slow_factory)]

    message = rejection(Plugin(), "slow-start", budget=0.2)
    assert "plugin 'slow-start', hook engine_strategies: Strategy 'slow': factory(config)" in (
        message
    )
    assert "blocked the event loop" in message


def test_awaiting_without_blocking_passes_however_long_it_waits() -> None:
    class Waits:
        def __init__(self, config: Any) -> None:
            pass

        async def start(self, engine: Any) -> None:
            await asyncio.sleep(0.5)  # yields: the loop runs other work meanwhile

        async def stop(self) -> None:
            await asyncio.sleep(0.5)

    class Plugin:
        @hookimpl
        def engine_coordinators(self) -> list[Coordinator]:
            return [Coordinator(name="waits", factory=Waits)]

    report = assert_conforms(Plugin(), name="waits", budget=0.2)
    assert report.lifecycle == ["Coordinator 'waits': start(engine)", "Coordinator 'waits': stop()"]


# -- the other checks ------------------------------------------------------------------------


def test_a_function_named_like_a_hook_but_not_marked_is_reported() -> None:
    class Unmarked:
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="buy_once", factory=BuyOnce)]

    message = rejection(Unmarked(), "unmarked")
    assert (
        "plugin 'unmarked', hook engine_strategies: is not marked @hookimpl: the engine never"
        " calls it" in message
    )


def test_an_async_record_hook_is_reported() -> None:
    class AsyncHook:
        @hookimpl
        async def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="buy_once", factory=BuyOnce)]

    message = rejection(AsyncHook(), "async-hook")
    assert "plugin 'async-hook', hook engine_strategies: is async: record hooks" in message


def test_per_event_callables_must_be_synchronous() -> None:
    class AsyncBar(BuyOnce):
        async def on_bar(self, bar: Any) -> None:  # type: ignore[override]
            pass

    def async_check(config: Any) -> Any:
        async def check(intent: Any, ctx: Any) -> None:
            return None

        return check

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="async_bar", factory=AsyncBar)]

        @hookimpl
        def engine_guards(self) -> list[Guard]:
            return [Guard(name="async_check", factory=async_check)]

    message = rejection(Plugin(), "async-events")
    assert (
        "plugin 'async-events', hook engine_strategies: Strategy 'async_bar': on_bar is async"
        in message
    )
    assert (
        "plugin 'async-events', hook engine_guards: Guard 'async_check': check(intent, ctx) is async"
        in message
    )


def test_invalid_record_fields_and_duplicate_names_are_reported() -> None:
    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [
                Strategy(name="a", factory="not callable"),  # type: ignore[arg-type]
                Strategy(name="b", factory=BuyOnce, config_type=dict),
                Strategy(name="c", factory=BuyOnce),
                Strategy(name="c", factory=BuyOnce),
            ]

    message = rejection(Plugin(), "fields")
    assert "hook engine_strategies: Strategy 'a': factory must be callable" in message
    assert "hook engine_strategies: Strategy 'b': config_type must be an attrs class" in message
    assert "hook engine_strategies: two Strategy records are named 'c'" in message


def test_before_after_cycles_are_reported() -> None:
    class Plugin:
        @hookimpl
        def engine_guards(self) -> list[Guard]:
            return [
                Guard(name="x", factory=cap, config_type=CapConfig, before=("y",)),
                Guard(name="y", factory=cap, config_type=CapConfig, before=("x",)),
            ]

    message = rejection(Plugin(), "cycle")
    assert "plugin 'cycle', hook engine_guards: before/after constraints cannot be met" in message


def test_a_component_needing_config_is_listed_and_built_when_given() -> None:
    class Plugin:
        @hookimpl
        def engine_guards(self) -> list[Guard]:
            return [Guard(name="cap", factory=cap, config_type=CapConfig)]

    report = assert_conforms(Plugin(), name="cap", budget=LENIENT)
    assert "engine_guards cap" in report.not_built
    assert "limit" in report.not_built["engine_guards cap"]
    report = assert_conforms(
        Plugin(), name="cap", configs={"cap": {"limit": "0.0005"}}, budget=LENIENT
    )
    assert report.built == ["engine_guards cap"] and not report.not_built
    # the guard ran in the smoke backtest: the probe's orders of one lot were denied
    assert report.result is not None
    assert report.result.denials and report.result.denials_by_reason == {
        "cap.too_big": len(report.result.denials)
    }


def test_bad_configs_are_reported_with_their_path() -> None:
    class Plugin:
        @hookimpl
        def engine_guards(self) -> list[Guard]:
            return [Guard(name="cap", factory=cap, config_type=CapConfig)]

    message = rejection(Plugin(), "cap", configs={"cap": {"limt": "1"}})
    assert "plugin 'cap', hook engine_guards: configs['cap']: cap.limt: unknown key" in message


def test_errors_during_the_backtest_name_the_hook() -> None:
    class Crashes(BuyOnce):
        def on_bar(self, bar: Any) -> None:
            if bar.index == 7:
                raise ZeroDivisionError("boom")

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="crashes", factory=Crashes)]

    message = rejection(Plugin(), "crashy")
    assert (
        "plugin 'crashy', hook engine_strategies: the backtest failed: ZeroDivisionError: boom"
        in message
    )


def test_lifecycle_hooks_that_raise_or_return_the_wrong_type_are_reported() -> None:
    class Plugin:
        @hookimpl
        def engine_health(self, engine: Any) -> list[Any]:
            return ["fine"]

        @hookimpl
        def engine_shutdown(self, engine: Any) -> None:
            raise RuntimeError("cannot stop")

    message = rejection(Plugin(), "lifecycle")
    assert "plugin 'lifecycle', hook engine_health: returned str, expected HealthReport" in message
    assert (
        "plugin 'lifecycle', hook engine_shutdown: engine_shutdown(engine) raised"
        " RuntimeError: cannot stop" in message
    )


# -- a conforming plugin -------------------------------------------------------------------


def test_a_conforming_plugin_gets_a_report_of_what_was_checked() -> None:
    calls: list[str] = []

    class Service:
        def __init__(self, config: Any) -> None:
            pass

        async def start(self, engine: Any) -> None:
            calls.append("start")
            await asyncio.sleep(0)

        async def stop(self) -> None:
            calls.append("stop")

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="buy_once", factory=BuyOnce)]

        @hookimpl
        def engine_guards(self) -> list[Guard]:
            return [Guard(name="cap", factory=cap, config_type=CapConfig)]

        @hookimpl
        def engine_coordinators(self) -> list[Coordinator]:
            return [Coordinator(name="service", factory=Service)]

        @hookimpl
        async def engine_startup(self, engine: Any) -> None:
            calls.append("engine_startup")

        @hookimpl
        def engine_health(self, engine: Any) -> list[HealthReport]:
            return [HealthReport(component="service", status=HealthStatus.OK)]

        @hookimpl
        def engine_shutdown(self, engine: Any) -> None:
            calls.append("engine_shutdown")

    report = assert_conforms(Plugin(), name="good", configs={"cap": {"limit": "5"}}, budget=LENIENT)
    assert isinstance(report, ConformanceReport)
    assert report.hooks == [
        "engine_coordinators",
        "engine_guards",
        "engine_health",
        "engine_shutdown",
        "engine_startup",
        "engine_strategies",
    ]
    assert sorted(report.built) == [
        "engine_coordinators service",
        "engine_guards cap",
        "engine_strategies buy_once",
    ]
    assert report.lifecycle == [
        "engine_startup(engine)",
        "Coordinator 'service': start(engine)",
        "engine_health(engine)",
        "Coordinator 'service': stop()",
        "engine_shutdown(engine)",
    ]
    # direct lifecycle calls, then the smoke backtest's, each in the engine's order
    assert calls == ["engine_startup", "start", "stop", "engine_shutdown"] * 2
    assert report.result is not None and len(report.result.fill_records) == 1


def test_a_module_plugin_is_named_after_the_module() -> None:
    import engine.builtins.strategy_sma as sma

    report = assert_conforms(sma, budget=LENIENT)
    assert report.plugin == "engine.builtins.strategy_sma"
    assert report.built == ["engine_strategies sma_crossover"]


def _builtins() -> dict[str, Any]:
    return {
        ep.name: ep
        for ep in entry_points(group="engine")
        if ep.dist is not None and ep.dist.name == "engine"
    }


def test_the_builtins_checked_below_are_all_installed() -> None:
    assert set(_builtins()) >= BUILTINS


@pytest.mark.parametrize("name", sorted(_builtins()))
def test_every_builtin_plugin_conforms(name: str) -> None:
    assert_conforms(_builtins()[name].load(), name=name, budget=LENIENT)
