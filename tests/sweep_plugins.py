"""Configs for the sweep tests, and a plugin they register on an engine. The plugin
travels to worker processes cloudpickled by reference: this module is importable
there (``tests`` is on the path of pytest and of the worker processes it starts)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from engine import BarView, Strategy, StrategyContext, hookimpl

#: a small config for sweeps: many runs stay cheap
SWEEP_CONFIG: dict[str, Any] = {
    "engine": {"name": "sweep-test", "initial_cash": "100000", "seed": 11},
    "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.001"}],
    "feed": {"type": "synthetic", "bars": 3000, "start_price": "100", "volatility": 0.003},
    "broker": {"type": "simulated", "fee_bps": "1"},
    "strategies": [{"type": "sma_crossover", "fast": 5, "slow": 20, "quantity": "1"}],
}

#: 60 runs: 4 x 15, every one valid (fast < slow)
GRID_60 = {"strategy.fast": "2..8:2", "strategy.slow": "10..38:2"}


@attrs.frozen
class FragileConfig:
    """An SMA crossover that raises on bar ``at_bar`` for the listed ``(fast, slow)``."""

    fast: int = 5
    slow: int = 20
    quantity: Decimal = Decimal(1)
    #: "fast:slow" pairs that raise
    fail: tuple[str, ...] = ()
    at_bar: int = 100


class Fragile:
    """Rolling-sum SMA crossover (bar by bar) that fails on purpose for some params."""

    def __init__(self, config: FragileConfig) -> None:
        self.config = config
        self.closes: list[int] = []
        self.ctx: Any = None
        self.prev = 0
        self.explodes = f"{config.fast}:{config.slow}" in config.fail

    def on_start(self, ctx: StrategyContext) -> None:
        self.ctx = ctx

    def on_bar(self, bar: BarView) -> None:
        cfg = self.config
        if self.explodes and bar.index == cfg.at_bar:
            raise RuntimeError(f"fragile strategy gave up at bar {bar.index}")
        self.closes.append(bar.close)
        if len(self.closes) < cfg.slow:
            return
        fast = sum(self.closes[-cfg.fast :]) * cfg.slow
        slow = sum(self.closes[-cfg.slow :]) * cfg.fast
        diff = fast - slow
        held = self.ctx.position()
        if self.prev <= 0 < diff and not held:
            self.ctx.buy(cfg.quantity)
        elif self.prev >= 0 > diff and held > 0:
            self.ctx.sell(held)
        self.prev = diff


class FragilePlugin:
    """Provides the ``fragile`` strategy."""

    @hookimpl
    def engine_strategies(self) -> list[Strategy]:
        return [Strategy(name="fragile", factory=Fragile, config_type=FragileConfig)]
