"""Records: what hooks return, and what pipeline checks decide.

Hooks run at configuration time and return frozen records; the core validates
them, stamps their provenance (``plugin``), orders them deterministically
(``priority`` ascending, then ``before``/``after`` constraints, then name) and
compiles them into plain callables for the hot path.

Most records are *components*: a ``factory`` that takes the component's
structured config (an instance of ``config_type``, or ``None`` when the component
has no options) and returns the working object. In TOML a component is chosen by
its record name: ``[[strategies]] type = "sma_crossover"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Any

from attrs import field, frozen

__all__ = [
    "Alert",
    "AlertSink",
    "Allow",
    "Analyzer",
    "Broker",
    "CliCommand",
    "Component",
    "ConfigSection",
    "Coordinator",
    "Decision",
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
    "Record",
    "Reduce",
    "RuntimeDecision",
    "RuntimeGuard",
    "Severity",
    "Strategy",
    "ValidationRule",
]

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]*$")


def _check_name(_inst: object, _attr: object, value: str) -> None:
    if not NAME_PATTERN.match(value):
        raise ValueError(
            f"record name {value!r} must be lower case: letters, digits, '_', '-', '.'"
        )


@frozen(kw_only=True)
class Record:
    """Fields every record carries.

    ``plugin`` is stamped by the core with the name of the plugin that returned
    the record (provenance); a plugin leaves it empty. ``priority`` orders records
    of one kind (ascending: lower runs first); ``before``/``after`` name records
    of the same kind this one must precede or follow.
    """

    name: str = field(validator=_check_name)
    plugin: str = ""
    priority: int = 0
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    description: str = ""


@frozen(kw_only=True)
class Component(Record):
    """A configurable component: ``factory(config)`` builds the working object."""

    factory: Callable[[Any], Any]
    config_type: type | None = None


@frozen(kw_only=True)
class Strategy(Component):
    """A strategy. ``factory(config)`` returns an object with ``on_bar(bar)``.

    Optional methods: ``on_start(ctx)``, ``prepare(series)`` (backtests only: the
    instrument's whole :class:`~engine.BarSeries`, to compute indicators up front;
    paper and live runs never call it), ``on_fill(fill)``, ``on_order(order)``,
    ``on_stop()``. See :class:`engine.StrategyContext` for what ``ctx`` offers.

    ``prepare`` may return the bars where ``on_bar`` can act (a boolean mask over the
    series, or sorted bar indices); with ``[backtest] vectorised = true`` the event
    loop then visits only those bars, the bars after which orders rest at the venue
    and the bars where timed work is due, with results identical to the bar-by-bar
    run. Return ``None`` (or nothing) when every bar matters.

    Streamed backtests (``[backtest] stream = true``) never call ``prepare``; they call
    the optional ``prepare_chunk(series, first)`` with each chunk of the instrument's
    bars before it runs (``first``: the ``bar.index`` of its first bar). A strategy
    without it runs bar by bar there, as in paper trading.
    """


@frozen(kw_only=True)
class Feed(Component):
    """A market-data feed. ``factory(config)`` returns an object with
    ``load(instrument, ctx) -> BarSeries`` (whole history, for backtests) and
    optionally ``stream(instrument, ctx)`` yielding ``BarSeries`` chunks (paper/live).
    Without ``stream`` the engine replays ``load()`` at the requested speed.

    Streamed backtests (``[backtest] stream = true``) need the optional
    ``chunks(instrument, ctx, size)``: consecutive ``BarSeries`` chunks of about
    ``size`` bars covering the whole history, in time order (an iterator or async
    iterator); ``count(instrument, ctx) -> int``, if cheap, gives the progress total."""


@frozen(kw_only=True)
class Broker(Component):
    """An execution venue. ``factory(config)`` returns an object with
    ``bind(sink)``, ``submit(order)``, ``cancel(client_id)`` and, for simulated
    venues, ``on_bar(instrument, bar)``.

    ``live`` says whether it talks to a real venue; ``deduplicates`` whether the
    venue rejects a second order with the same client order id.
    """

    live: bool = False
    deduplicates: bool = False


@frozen(kw_only=True)
class Filter(Component):
    """Pipeline stage 1, may the strategy trade now? ``factory(config)`` returns
    ``check(intent, ctx) -> Decision | None`` (``None`` allows)."""


@frozen(kw_only=True)
class ValidationRule(Component):
    """Pipeline stage 2, is the intent well formed? Same shape as :class:`Filter`."""


@frozen(kw_only=True)
class Guard(Component):
    """Pipeline stage 3, is it within risk? Like :class:`Filter`, and may return
    :class:`Reduce` to shrink the quantity."""


@frozen(kw_only=True)
class RuntimeGuard(Component):
    """Evaluated on a cadence (engine time); asks for a trading state.

    ``factory(config)`` returns ``evaluate(ctx) -> RuntimeDecision | None``
    (``None``: nothing wrong, ACTIVE is fine). ``cadence_seconds`` is the default
    cadence; a config instance may set ``cadence = "1m"``.
    """

    cadence_seconds: float = 60.0


@frozen(kw_only=True)
class AlertSink(Component):
    """Delivers alerts: ``factory(config)`` returns ``deliver(alert)`` (log, webhook,
    e-mail, chat). A sink that raises is logged and counted; trading goes on."""


@frozen(kw_only=True)
class MetricsStore(Component):
    """Stores metric records (memory, SQLite, Redis...)."""


@frozen(kw_only=True)
class Exporter(Component):
    """Ships metrics somewhere (log, Prometheus, JSON)."""


@frozen(kw_only=True)
class Coordinator(Component):
    """A long-lived service with ``async start(engine)`` and ``async stop()``,
    started in order (priority, before/after) and stopped in reverse."""


@frozen(kw_only=True)
class Journal(Component):
    """An event journal store: ``factory(config)`` returns a
    :class:`~engine.journal.JournalStore` (append, commit, read back)."""


@frozen(kw_only=True)
class ReconciliationPolicy(Record):
    """What to do with what reconciliation finds: ``decide(finding)`` returns a
    :class:`~engine.journal.reconcile.Action` for each
    :class:`~engine.journal.reconcile.Finding` (an external order, a position
    mismatch...). The highest-priority policy that returns an action wins."""

    decide: Callable[[Any], Any]


@frozen(kw_only=True)
class Executor(Component):
    """Runs many backtests (sweeps): sequential, process pool, Dask..."""


@frozen(kw_only=True)
class Analyzer(Record):
    """Computes report statistics: ``compute(result) -> dict[str, object]``."""

    compute: Callable[[Any], dict[str, Any]]


@frozen(kw_only=True)
class ConfigSection(Record):
    """A top-level TOML section a plugin owns: ``[name]`` structured into ``config_type``."""

    config_type: type


@frozen(kw_only=True)
class CliCommand(Record):
    """A click command added to the ``engine`` CLI under ``name``."""

    command: Any


class Severity(Enum):
    """How urgent an alert is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@frozen(kw_only=True)
class Alert:
    """Something an operator should know: a trading-state change, a liquidation."""

    ts: int
    severity: Severity
    title: str
    message: str = ""
    source: str = ""


@frozen
class RuntimeDecision:
    """What a runtime guard asks for: a trading state and why.

    ``state`` is a :class:`~engine.kernel.trading.TradingState` (``"reducing"`` or
    ``"halted"`` also accepted). With ``flatten`` the engine also closes every
    position when the guard moves trading to a more severe state.
    """

    state: Any
    reason: str
    message: str = ""
    flatten: bool = False


class HealthStatus(Enum):
    """Health of a component, from best to worst."""

    OK = "ok"
    DEGRADED = "degraded"
    FAILING = "failing"

    @property
    def rank(self) -> int:
        """0 ok, 1 degraded, 2 failing (the worst of several reports wins)."""
        return ("ok", "degraded", "failing").index(self.value)


@frozen(kw_only=True)
class HealthReport:
    """What ``engine_health`` returns for one component."""

    component: str
    status: HealthStatus
    detail: str = ""
    #: stamped by the core: the plugin that reported (``engine`` for the core)
    plugin: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form (``/health``, ``engine health --json``)."""
        return {
            "component": self.component,
            "status": self.status.value,
            "detail": self.detail,
            "plugin": self.plugin,
        }


# -- pipeline decisions -----------------------------------------------------------


@frozen
class Deny:
    """Refuse the intent. ``reason`` is a short code; the core namespaces it with
    the check's registered name (``max_position.limit``) when it records the
    denial, and keeps the providing plugin in :attr:`Denial.plugin`."""

    reason: str
    message: str = ""


@frozen
class Reduce:
    """Guards only: let the intent through with a smaller positive ``quantity``."""

    quantity: Decimal
    reason: str
    message: str = ""


@frozen
class Allow:
    """Explicit allow (returning ``None`` means the same and costs less)."""


Decision = Allow | Deny | Reduce
