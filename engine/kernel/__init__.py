"""The event kernel: one path from bar to fill for backtest, paper and live.

Names load lazily (PEP 562): a plugin that imports :class:`BarView` or
:class:`StrategyContext` for its annotations does not import the kernel itself
(and numpy with it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_exports

if TYPE_CHECKING:
    from engine.kernel.context import BarView, StrategyContext
    from engine.kernel.core import Kernel
    from engine.kernel.pipeline import Denial, OrderPipeline, PipelineContext
    from engine.kernel.trading import TradingState

_WHERE = {
    "BarView": "engine.kernel.context",
    "StrategyContext": "engine.kernel.context",
    "Kernel": "engine.kernel.core",
    "Denial": "engine.kernel.pipeline",
    "OrderPipeline": "engine.kernel.pipeline",
    "PipelineContext": "engine.kernel.pipeline",
    "TradingState": "engine.kernel.trading",
}

__all__ = [
    "BarView",
    "Denial",
    "Kernel",
    "OrderPipeline",
    "PipelineContext",
    "StrategyContext",
    "TradingState",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(), __all__)
