"""engine: a plugin-based trading engine with one event kernel for backtest, paper and live.

The public API is listed in ``__all__``. Names load lazily (PEP 562), so
``import engine`` and ``engine --help`` stay fast however many plugins exist.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine.hookspecs import hookimpl

if TYPE_CHECKING:
    from engine.aio import maybe_await, run_sync
    from engine.config import (
        EngineConfig,
        Secret,
        between,
        interval,
        non_negative,
        parse_interval,
        positive,
    )
    from engine.data import BarSeries, bars_from_table
    from engine.engine import Engine
    from engine.errors import (
        BulkheadFull,
        CircuitOpen,
        ConfigError,
        DataError,
        EngineError,
        ExecutionError,
        IllegalTransition,
        JournalError,
        MissingDependency,
        NetworkError,
        PluginError,
        Problem,
        RateLimited,
        Recovery,
        RiskLimitError,
        ValidationError,
    )
    from engine.feeds import FeedContext
    from engine.journal.sqlite import SqliteJournal, SqliteJournalConfig
    from engine.kernel import BarView, Denial, PipelineContext, StrategyContext, TradingState
    from engine.metrics import MetricBatch, MetricKind, MetricRecord, Metrics
    from engine.model import (
        Bar,
        Fill,
        Instrument,
        InstrumentKind,
        Order,
        OrderIntent,
        OrderState,
        OrderType,
        Portfolio,
        Position,
        Quote,
        Side,
        Trade,
    )
    from engine.plugins import PluginInfo, PluginManager, PluginSettings
    from engine.records import (
        Alert,
        AlertSink,
        Allow,
        Analyzer,
        Broker,
        CliCommand,
        ConfigSection,
        Coordinator,
        Deny,
        Executor,
        Exporter,
        Feed,
        Filter,
        Guard,
        HealthReport,
        HealthStatus,
        Journal,
        MetricsStore,
        ReconciliationPolicy,
        Reduce,
        RuntimeDecision,
        RuntimeGuard,
        Severity,
        Strategy,
        ValidationRule,
    )
    from engine.research.sweep import SweepResult
    from engine.research.tasks import (
        RunOutcome,
        SweepJob,
        SweepTask,
        WorkerPayload,
        prime_worker,
        run_task,
    )
    from engine.research.walkforward import WalkForwardResult
    from engine.results import RunResult, Stats
    from engine.spans import Span
    from engine.telemetry import log_operation
    from engine.venue import VenueFill, VenueOrder, VenueSnapshot

__version__ = "0.1.0"

_EXPORTS = {
    "engine.aio": ["maybe_await", "run_sync"],
    "engine.config": [
        "EngineConfig",
        "Secret",
        "between",
        "interval",
        "non_negative",
        "parse_interval",
        "positive",
    ],
    "engine.data": ["BarSeries", "bars_from_table"],
    "engine.engine": ["Engine"],
    "engine.feeds": ["FeedContext"],
    "engine.errors": [
        "BulkheadFull",
        "CircuitOpen",
        "ConfigError",
        "DataError",
        "EngineError",
        "ExecutionError",
        "IllegalTransition",
        "JournalError",
        "MissingDependency",
        "NetworkError",
        "PluginError",
        "Problem",
        "RateLimited",
        "Recovery",
        "RiskLimitError",
        "ValidationError",
    ],
    "engine.journal.sqlite": ["SqliteJournal", "SqliteJournalConfig"],
    "engine.kernel": ["BarView", "Denial", "PipelineContext", "StrategyContext", "TradingState"],
    "engine.metrics": ["MetricBatch", "MetricKind", "MetricRecord", "Metrics"],
    "engine.research.sweep": ["SweepResult"],
    "engine.research.tasks": [
        "RunOutcome",
        "SweepJob",
        "SweepTask",
        "WorkerPayload",
        "prime_worker",
        "run_task",
    ],
    "engine.research.walkforward": ["WalkForwardResult"],
    "engine.spans": ["Span"],
    "engine.telemetry": ["log_operation"],
    "engine.venue": ["VenueFill", "VenueOrder", "VenueSnapshot"],
    "engine.model": [
        "Bar",
        "Fill",
        "Instrument",
        "InstrumentKind",
        "Order",
        "OrderIntent",
        "OrderState",
        "OrderType",
        "Portfolio",
        "Position",
        "Quote",
        "Side",
        "Trade",
    ],
    "engine.plugins": ["PluginInfo", "PluginManager", "PluginSettings"],
    "engine.records": [
        "Alert",
        "AlertSink",
        "Allow",
        "Analyzer",
        "Broker",
        "CliCommand",
        "ConfigSection",
        "Coordinator",
        "Deny",
        "Executor",
        "Exporter",
        "Feed",
        "Filter",
        "Guard",
        "HealthReport",
        "HealthStatus",
        "Journal",
        "MetricsStore",
        "ReconciliationPolicy",
        "Reduce",
        "RuntimeDecision",
        "RuntimeGuard",
        "Severity",
        "Strategy",
        "ValidationRule",
    ],
    "engine.results": ["RunResult", "Stats"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "Alert",
    "AlertSink",
    "Allow",
    "Analyzer",
    "Bar",
    "BarSeries",
    "BarView",
    "Broker",
    "BulkheadFull",
    "CircuitOpen",
    "CliCommand",
    "ConfigError",
    "ConfigSection",
    "Coordinator",
    "DataError",
    "Denial",
    "Deny",
    "Engine",
    "EngineConfig",
    "EngineError",
    "ExecutionError",
    "Executor",
    "Exporter",
    "Feed",
    "FeedContext",
    "Fill",
    "Filter",
    "Guard",
    "HealthReport",
    "HealthStatus",
    "IllegalTransition",
    "Instrument",
    "InstrumentKind",
    "Journal",
    "JournalError",
    "MetricBatch",
    "MetricKind",
    "MetricRecord",
    "Metrics",
    "MetricsStore",
    "MissingDependency",
    "NetworkError",
    "Order",
    "OrderIntent",
    "OrderState",
    "OrderType",
    "PipelineContext",
    "PluginError",
    "PluginInfo",
    "PluginManager",
    "PluginSettings",
    "Portfolio",
    "Position",
    "Problem",
    "Quote",
    "RateLimited",
    "ReconciliationPolicy",
    "Recovery",
    "Reduce",
    "RiskLimitError",
    "RunOutcome",
    "RunResult",
    "RuntimeDecision",
    "RuntimeGuard",
    "Secret",
    "Severity",
    "Side",
    "Span",
    "SqliteJournal",
    "SqliteJournalConfig",
    "Stats",
    "Strategy",
    "StrategyContext",
    "SweepJob",
    "SweepResult",
    "SweepTask",
    "Trade",
    "TradingState",
    "ValidationError",
    "ValidationRule",
    "VenueFill",
    "VenueOrder",
    "VenueSnapshot",
    "WalkForwardResult",
    "WorkerPayload",
    "__version__",
    "bars_from_table",
    "between",
    "hookimpl",
    "interval",
    "log_operation",
    "maybe_await",
    "non_negative",
    "parse_interval",
    "positive",
    "prime_worker",
    "run_sync",
    "run_task",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
