"""The event kernel: one path from bar to fill for backtest, paper and live."""

from engine.kernel.context import BarView, StrategyContext
from engine.kernel.core import Kernel
from engine.kernel.pipeline import Denial, OrderPipeline, PipelineContext
from engine.kernel.trading import TradingState

__all__ = [
    "BarView",
    "Denial",
    "Kernel",
    "OrderPipeline",
    "PipelineContext",
    "StrategyContext",
    "TradingState",
]
