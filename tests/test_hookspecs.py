"""Hooks implemented by a test plugin and called by the engine on its public path:
a metrics store, a journal store, a reconciliation policy and a command of the
``engine`` CLI (the hooks no other test implemented in-process;
tests/test_hook_coverage.py requires a test for every hook)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import click
from click.testing import CliRunner

from engine import (
    Broker,
    CliCommand,
    Engine,
    Journal,
    MetricRecord,
    MetricsStore,
    PluginManager,
    PluginSettings,
    ReconciliationPolicy,
    Side,
    SqliteJournal,
    SqliteJournalConfig,
    VenueOrder,
    VenueSnapshot,
    hookimpl,
)
from engine.builtins.broker_simulated import SimulatedBroker, SimulatedConfig
from engine.cli import main as cli
from engine.journal import Entry, Recovered
from engine.journal.reconcile import Action, Finding


def config(**extra: Any) -> dict[str, Any]:
    return {
        "engine": {"name": "hooks"},
        "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.001"}],
        "feed": {"type": "synthetic", "bars": 120, "interval": "1m"},
        "strategies": [{"type": "sma_crossover", "fast": 2, "slow": 6, "quantity": "1"}],
        **extra,
    }


# -- engine_metrics_stores --------------------------------------------------------------


class ListStore:
    """Keeps every collection it is given."""

    def __init__(self, config: None) -> None:
        self.collections: list[list[MetricRecord]] = []

    def write(self, records: list[MetricRecord]) -> None:
        self.collections.append(list(records))


def test_a_plugin_metrics_store_receives_every_collection() -> None:
    stores: list[ListStore] = []

    def make(options: None) -> ListStore:
        stores.append(ListStore(options))
        return stores[-1]

    class Plugin:
        @hookimpl
        def engine_metrics_stores(self) -> list[MetricsStore]:
            return [MetricsStore(name="listing", factory=make)]

    eng = Engine.from_config(
        config(metrics={"interval": "10m"}, metrics_stores=[{"type": "listing"}]),
        settings=PluginSettings(builtin_only=True),
    )
    eng.register(Plugin())
    result = eng.backtest_sync()
    (store,) = stores
    # a collection every 10 minutes of the 120 one-minute bars, and one at the end
    assert len(store.collections) >= 12
    bars = [
        r.value
        for r in store.collections[-1]
        if r.name == "engine_bars_total" and dict(r.labels) == {"instrument": "BTC-USD"}
    ]
    assert bars == [120]
    assert result.bars == 120


# -- engine_journals and engine_reconciliation_policies ----------------------------------


@attrs.frozen
class CountingConfig:
    """``[journal] type = "counting"``."""

    path: str


class CountingJournal:
    """A plugin's journal store: SQLite underneath, counting what passes through."""

    opened: list[CountingJournal] = []

    def __init__(self, config: CountingConfig) -> None:
        self.inner = SqliteJournal(SqliteJournalConfig(path=config.path))
        self.appended = 0
        self.commits = 0
        CountingJournal.opened.append(self)

    @property
    def recovered(self) -> Recovered | None:
        return self.inner.recovered

    def append(self, ts: int, kind: str, ref: str, data: dict[str, Any]) -> int:
        self.appended += 1
        return self.inner.append(ts, kind, ref, data)

    def commit(self) -> None:
        self.commits += 1
        self.inner.commit()

    def entries(self, after: int = 0) -> Iterator[Entry]:
        return self.inner.entries(after)

    @property
    def last_seq(self) -> int:
        return self.inner.last_seq

    def close(self) -> None:
        self.inner.close()


class JournalPlugin:
    @hookimpl
    def engine_journals(self) -> list[Journal]:
        return [Journal(name="counting", factory=CountingJournal, config_type=CountingConfig)]


def paper(path: Path, *plugins: object, broker: str = "simulated", bars: int = 3) -> None:
    cfg = config(journal={"type": "counting", "path": str(path)}, broker={"type": broker})
    cfg["feed"] = {"type": "synthetic", "interval": "1s"}
    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    for plugin in (JournalPlugin(), *plugins):
        eng.register(plugin)
    asyncio.run(eng.run(max_bars=bars, speed=1000.0))


def test_a_plugin_journal_store_journals_a_run_and_resumes_it(tmp_path: Path) -> None:
    CountingJournal.opened.clear()
    paper(tmp_path / "journal.db")
    paper(tmp_path / "journal.db", bars=2)
    first, second = CountingJournal.opened
    assert first.appended > 0 and first.commits > 0
    with SqliteJournal(SqliteJournalConfig(path=str(tmp_path / "journal.db"))) as store:
        entries = list(store.entries())
    kinds = [e.kind for e in entries]
    assert kinds[0] == "config" and kinds.count("bar") == 5  # 3 bars, then 2 after resuming
    assert second.appended > 0 and len(entries) == first.appended + second.appended


EXTERNAL = VenueOrder("ext-1", "BTC-USD", Side.BUY, Decimal(1), Decimal(0), "accepted")


class ExternalOrderVenue(SimulatedBroker):
    """The simulated venue, holding one open order that no engine placed."""

    def snapshot(self) -> VenueSnapshot:
        snap = super().snapshot()
        return attrs.evolve(
            snap, open_orders=(*snap.open_orders, EXTERNAL), orders=(*snap.orders, EXTERNAL)
        )


class VenuePlugin:
    @hookimpl
    def engine_brokers(self) -> list[Broker]:
        return [
            Broker(
                name="external_order_venue",
                factory=ExternalOrderVenue,
                config_type=SimulatedConfig,
                deduplicates=True,
            )
        ]


def test_a_plugin_reconciliation_policy_decides_what_a_restart_finds(tmp_path: Path) -> None:
    seen: list[Finding] = []

    def ignore_external(finding: Finding) -> Action | None:
        seen.append(finding)
        return Action.IGNORE if finding.kind == "external_order" else None

    class PolicyPlugin:
        @hookimpl
        def engine_reconciliation_policies(self) -> list[ReconciliationPolicy]:
            return [ReconciliationPolicy(name="ignore_external", decide=ignore_external)]

    journal = tmp_path / "journal.db"
    venue = VenuePlugin()
    paper(journal, venue, broker="external_order_venue")  # no trade yet: slow = 6 bars
    assert not seen  # a new journal: nothing to reconcile
    paper(journal, venue, PolicyPlugin(), broker="external_order_venue", bars=1)
    assert [(f.kind, f.client_id) for f in seen] == [("external_order", "ext-1")]
    with SqliteJournal(SqliteJournalConfig(path=str(journal))) as store:
        (outcome,) = [e.data for e in store.entries() if e.kind == "reconcile"]
    # the engine's own policy would have adopted the order
    assert outcome["passed"] is True
    assert outcome["findings"] == ["external_order ext-1: buy 1 accepted -> ignore"]


# -- engine_cli_commands ------------------------------------------------------------------


def test_a_plugin_command_runs_as_an_engine_sub_command() -> None:
    @click.command()
    @click.argument("who")
    def hello(who: str) -> None:
        """Greet WHO."""
        click.echo(f"hello {who}")

    class Plugin:
        @hookimpl
        def engine_cli_commands(self) -> list[CliCommand]:
            return [CliCommand(name="hello", command=hello)]

    plugins = PluginManager(PluginSettings(builtin_only=True))
    plugins.register(Plugin())
    # the CLI uses the plugin manager it finds in its context object
    result = CliRunner().invoke(cli, ["hello", "world"], obj={"plugins": plugins})
    assert result.exit_code == 0, result.output
    assert result.output == "hello world\n"
    unknown = CliRunner().invoke(cli, ["goodbye"], obj={"plugins": plugins})
    assert unknown.exit_code == 2 and "No such command 'goodbye'" in unknown.output
