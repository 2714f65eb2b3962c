"""The event kernel: one path from bar to fill for backtest, paper and live.

Names load lazily (PEP 562): a plugin that imports :class:`BarView` or
:class:`StrategyContext` for its annotations does not import the kernel itself
(and numpy with it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.kernel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
