"""The ``engine`` fixture's object: an isolated plugin manager and a config builder.

A test describes a run in a few lines and the harness builds a fresh
:class:`~engine.Engine` on its own :class:`~engine.PluginManager` for each run::

    async def test_buys_the_dip(engine, register_plugin, scripted_market):
        register_plugin(my_plugin)
        scripted_market([100, 100, 90, 95, 101])
        engine.strategy("buy_the_dip", threshold="95")
        result = await engine.backtest()
        assert len(result.fill_records) == 2

Isolation: entry-point autoload is off, so nothing installed on the machine is
loaded behind the test's back. The essential built-ins (``performance`` and
``log_alerts``, which the engine never runs without) are always there; any other
installed plugin is loaded by name with :meth:`EngineHarness.use`. The manager is
strict: a plugin that fails to load, or a record hook that raises or returns
something invalid, raises :class:`~engine.PluginError` instead of being logged.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.plugins import ESSENTIAL_PLUGINS, PluginManager, PluginSettings

if TYPE_CHECKING:
    from engine.config import EngineConfig
    from engine.engine import Engine
    from engine.results import RunResult

__all__ = ["DEFAULT_INSTRUMENT", "EngineHarness"]

#: The instrument a run gets when the test configures none.
DEFAULT_INSTRUMENT: Mapping[str, Any] = {
    "symbol": "BTC-USD",
    "tick_size": "0.01",
    "lot_size": "0.001",
}
#: Paper runs in tests: bars stamped a minute apart are released about 60 us apart.
PAPER_SPEED = 1e6


def _plain(value: Any) -> Any:
    """Config values as the TOML parser would give them (Decimals as strings)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class EngineHarness:
    """An isolated plugin manager plus a config under construction.

    Builder methods return the harness, so they chain. :attr:`data` is the raw
    config dict (shaped like the TOML file) and may be edited directly.
    """

    def __init__(self, settings: PluginSettings | None = None) -> None:
        #: the plugin manager every engine of this harness shares
        self.plugins = PluginManager(
            settings if settings is not None else PluginSettings(autoload=False, strict=True)
        )
        #: the raw config, shaped like the TOML file
        self.data: dict[str, Any] = {
            "engine": {"name": "test", "initial_cash": "100000", "seed": 1},
        }
        #: the engine of the last run (or :meth:`build`)
        self.last: Engine | None = None
        #: names of the plugins registered through the harness (unregistered by :meth:`close`)
        self.registered: list[str] = []
        self.use(*sorted(ESSENTIAL_PLUGINS))

    # -- plugins --------------------------------------------------------------------

    def use(self, *names: str) -> EngineHarness:
        """Load installed plugins by entry-point name (``"synthetic"``, ``"guards"``,
        a third-party plugin's name...)."""
        self.plugins.load_entry_points(*names)
        return self

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register an ad-hoc plugin (module, class or object with ``@hookimpl``
        functions); returns its name. :meth:`close` unregisters it."""
        registered = self.plugins.register(plugin, name)
        self.registered.append(registered)
        return registered

    def unregister(self, name: str) -> None:
        """Unregister a plugin registered with :meth:`register`."""
        if name in self.registered:
            self.registered.remove(name)
        self.plugins.unregister(name)

    def close(self) -> None:
        """Unregister every plugin registered through the harness (fixture teardown)."""
        for name in reversed(self.registered):
            self.plugins.unregister(name)
        self.registered.clear()

    # -- config ---------------------------------------------------------------------

    def section(self, name: str, **values: Any) -> EngineHarness:
        """Set keys of a top-level table: ``section("engine", initial_cash="5000")``,
        ``section("paper", speed=10)`` or a plugin's own section."""
        table = self.data.setdefault(name, {})
        table.update(_plain(values))
        return self

    def instrument(
        self,
        symbol: str = DEFAULT_INSTRUMENT["symbol"],
        *,
        tick_size: Any = DEFAULT_INSTRUMENT["tick_size"],
        lot_size: Any = DEFAULT_INSTRUMENT["lot_size"],
        **options: Any,
    ) -> EngineHarness:
        """Add an instrument (or replace the one with the same symbol)."""
        entry = _plain({"symbol": symbol, "tick_size": tick_size, "lot_size": lot_size, **options})
        items = [i for i in self.data.get("instruments", []) if i.get("symbol") != symbol]
        self.data["instruments"] = [*items, entry]
        return self

    def has_instrument(self, symbol: str) -> bool:
        """True when the config has an instrument ``symbol``."""
        return any(i.get("symbol") == symbol for i in self.data.get("instruments", []))

    def _one(self, section: str, kind: Any, options: Mapping[str, Any]) -> EngineHarness:
        name = kind if isinstance(kind, str) else kind.name
        self.data[section] = {"type": name, **_plain(options)}
        if isinstance(kind, str) and kind in self._builtin_names():
            self.use(kind)
        return self

    def _many(self, section: str, kind: str, options: Mapping[str, Any]) -> EngineHarness:
        self.data.setdefault(section, []).append({"type": kind, **_plain(options)})
        return self

    def _builtin_names(self) -> set[str]:
        from importlib.metadata import entry_points

        return {
            ep.name
            for ep in entry_points(group="engine")
            if ep.dist is not None and ep.dist.name == "engine"
        }

    def feed(self, kind: Any, **options: Any) -> EngineHarness:
        """Set ``[feed]``: a record name (a built-in of that name is loaded) or a
        :class:`~engine.testing.market.ScriptedMarket`."""
        return self._one("feed", kind, options)

    def broker(self, kind: Any, **options: Any) -> EngineHarness:
        """Set ``[broker]``: a record name (a built-in of that name is loaded) or a
        :class:`~engine.testing.broker.FakeBroker`."""
        return self._one("broker", kind, options)

    def strategy(self, kind: str, **options: Any) -> EngineHarness:
        """Add a ``[[strategies]]`` entry (``id`` and ``instrument`` are the core's keys)."""
        return self._many("strategies", kind, options)

    def filter(self, kind: str, **options: Any) -> EngineHarness:
        """Add a ``[[filters]]`` entry."""
        return self._many("filters", kind, options)

    def validation_rule(self, kind: str, **options: Any) -> EngineHarness:
        """Add a ``[[validation_rules]]`` entry."""
        return self._many("validation_rules", kind, options)

    def guard(self, kind: str, **options: Any) -> EngineHarness:
        """Add a ``[[guards]]`` entry."""
        return self._many("guards", kind, options)

    def runtime_guard(self, kind: str, **options: Any) -> EngineHarness:
        """Add a ``[[runtime_guards]]`` entry."""
        return self._many("runtime_guards", kind, options)

    def component(self, section: str, kind: str, **options: Any) -> EngineHarness:
        """Add an entry to any array section (``alert_sinks``, ``metrics_stores``...)."""
        return self._many(section, kind, options)

    def config_dict(self) -> dict[str, Any]:
        """The config a run gets: :attr:`data` plus the defaults (one instrument, the
        ``simulated`` broker, loaded when the config relies on it)."""
        data = copy.deepcopy(self.data)
        if not data.get("instruments"):
            data["instruments"] = [dict(DEFAULT_INSTRUMENT)]
        broker = data.get("broker", {}).get("type", "simulated")
        if broker == "simulated" and "simulated" not in self.plugins.records("engine_brokers"):
            self.use("simulated")
        return data

    # -- runs -----------------------------------------------------------------------

    def build(self) -> Engine:
        """A fresh engine with this config on the harness's plugin manager."""
        from engine.engine import Engine

        self.last = Engine(self.config_dict(), plugins=self.plugins)
        return self.last

    def check(self) -> EngineConfig:
        """Resolve the config (raises :class:`~engine.ConfigError` listing problems)."""
        return self.build().check()

    async def backtest(self) -> RunResult:
        """Backtest a fresh engine built from the config."""
        return await self.build().backtest()

    def backtest_sync(self) -> RunResult:
        """:meth:`backtest` from synchronous code."""
        return self.build().backtest_sync()

    async def paper(
        self,
        *,
        max_bars: int | None = None,
        duration: float | None = None,
        speed: float = PAPER_SPEED,
    ) -> RunResult:
        """Paper-trade a fresh engine until the feed ends, ``max_bars`` bars or
        ``duration`` seconds. ``speed`` defaults to a million times real time."""
        return await self.build().run(speed=speed, duration=duration, max_bars=max_bars)

    def __repr__(self) -> str:
        names = [i.name for i in self.plugins.infos()]
        return f"EngineHarness(plugins={names})"
