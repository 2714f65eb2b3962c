"""The ``engine`` and ``register_plugin`` fixtures (engine/testing/harness.py): isolation
from the host's plugins, built-ins on request, the config builder, strictness, and
registration undone at teardown."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine import ConfigError, PluginError, RunResult, Strategy, hookimpl
from engine.testing import EngineHarness


class Hold:
    def __init__(self, config: Any) -> None:
        pass

    def on_bar(self, bar: Any) -> None:
        pass


class HoldPlugin:
    @hookimpl
    def engine_strategies(self) -> list[Strategy]:
        return [Strategy(name="hold", factory=Hold)]


def test_autoload_is_off_only_the_essential_builtins_are_there(engine: EngineHarness) -> None:
    # the machine has every built-in installed (and maybe third-party plugins): none loads
    assert {i.name: i.status for i in engine.plugins.infos()} == {
        "log_alerts": "loaded",
        "performance": "loaded",
    }


def test_builtins_load_on_request_and_unknown_names_are_errors(engine: EngineHarness) -> None:
    engine.use("sma_crossover", "guards")
    assert "sma_crossover" in engine.plugins.records("engine_strategies")
    assert "max_position" in engine.plugins.records("engine_guards")
    with pytest.raises(PluginError, match="no installed plugin named 'sma_crosover'"):
        engine.use("sma_crosover")


async def test_a_builtin_run_in_four_lines(engine: EngineHarness) -> None:
    engine.use("sma_crossover")
    engine.feed("synthetic", bars=500, seed=3)  # a built-in named like the feed loads itself
    engine.strategy("sma_crossover", fast=5, slow=20, quantity=Decimal("0.5"))
    result = await engine.backtest()
    assert isinstance(result, RunResult) and result.bars == 500 and result.fill_records
    assert {f.quantity for f in result.fill_records} == {Decimal("0.5")}
    # the default broker (simulated) was loaded because the config relies on it
    assert "simulated" in {i.name for i in engine.plugins.infos()}


def test_the_config_builder(engine: EngineHarness) -> None:
    engine.section("engine", initial_cash=Decimal("5000"))
    engine.instrument("ETH-USD", tick_size="0.1", lot_size="0.01")
    engine.instrument("ETH-USD", tick_size="0.05")  # replaces the first one
    engine.feed("synthetic", bars=10)
    engine.broker("simulated", fee_bps=Decimal("2"))
    engine.use("sma_crossover", "guards", "filters", "validation", "runtime_guards")
    engine.strategy("sma_crossover", id="a", fast=2, slow=4)
    engine.guard("max_position", limit="3")
    engine.filter("min_volume", window=3, min_volume=0.5)
    engine.validation_rule("positive_values")
    engine.runtime_guard("drawdown", halt_at=0.5)
    engine.component("alert_sinks", "log")
    cfg = engine.check()
    assert cfg.engine.initial_cash == Decimal("5000")
    (inst,) = cfg.instruments
    assert (inst.symbol, inst.tick_size, inst.lot_size) == (
        "ETH-USD",
        Decimal("0.05"),
        Decimal("0.001"),
    )
    assert [s.type for s in cfg.components["guards"]] == ["max_position"]
    assert cfg.component("broker").options.fee_bps == Decimal("2")
    assert engine.last is not None and engine.last.config is cfg


def test_a_run_without_instruments_gets_the_default_one(engine: EngineHarness) -> None:
    engine.register(HoldPlugin(), "hold")
    engine.feed("synthetic", bars=5)
    engine.strategy("hold")
    assert [i.symbol for i in engine.check().instruments] == ["BTC-USD"]


def test_config_mistakes_are_reported_with_their_path(engine: EngineHarness) -> None:
    engine.feed("synthetic", bars=-1)
    engine.strategy("nope")
    with pytest.raises(ConfigError) as caught:
        engine.check()
    text = str(caught.value)
    assert "config.feed.bars: must be > 0, got -1" in text
    assert "config.strategies[0].type: unknown strategy type 'nope'" in text


def test_the_manager_is_strict_a_raising_record_hook_fails_the_test(
    engine: EngineHarness, register_plugin: Any
) -> None:
    class Raises:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            raise RuntimeError("cannot list")

    register_plugin(Raises(), "raises")
    engine.feed("synthetic", bars=5)
    engine.strategy("x")
    with pytest.raises(PluginError, match="engine_strategies failed: RuntimeError: cannot list"):
        engine.check()


def test_register_plugin_returns_the_name_and_registers_on_the_engine(
    engine: EngineHarness, register_plugin: Any
) -> None:
    assert register_plugin(HoldPlugin()) == "HoldPlugin"
    assert "hold" in engine.plugins.records("engine_strategies")
    assert "HoldPlugin" in engine.registered


def test_close_unregisters_what_the_harness_registered() -> None:
    harness = EngineHarness()
    harness.register(HoldPlugin(), "hold")
    assert "hold" in harness.plugins.records("engine_strategies")
    harness.close()
    assert "hold" not in harness.plugins.records("engine_strategies")
    assert harness.registered == []


async def test_paper_runs_use_the_same_builder(engine: EngineHarness) -> None:
    engine.use("sma_crossover")
    engine.feed("synthetic", bars=200, interval="1s")
    engine.strategy("sma_crossover", fast=3, slow=8)
    result = await engine.paper(max_bars=40)
    assert result.mode == "paper" and result.bars == 40
