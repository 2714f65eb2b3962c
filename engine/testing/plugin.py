"""The pytest plugin of :mod:`engine.testing` (entry point ``pytest11: engine``).

Installed with the engine, it gives every test session these fixtures:

``engine``
    An :class:`~engine.testing.harness.EngineHarness`: an isolated plugin manager
    (entry-point autoload off, strict, the essential built-ins only; ``use(name)``
    loads more) and a config builder that runs backtests and paper runs.
``register_plugin``
    ``register_plugin(obj, name=None)`` registers a plugin on that engine; it is
    unregistered when the test ends.
``scripted_market``
    ``scripted_market(data, symbol=..., start=..., interval=...)`` makes a
    :class:`~engine.testing.market.ScriptedMarket` from a list, a DataFrame or a
    generator, registers it and makes it the run's feed.
``fake_broker``
    A :class:`~engine.testing.broker.FakeBroker` (the simulated venue plus
    rejects, partial fills, latency and faults), registered and made the run's broker.
``hook_recorder``
    A :class:`~engine.testing.recorder.HookRecorder` attached to that engine: every
    hook call with its arguments and result.
``assert_conforms``
    :func:`~engine.testing.conformance.assert_conforms`.

Illegal order-state transitions raise during tests (``ENGINE_STRICT_TRANSITIONS=1``).

This module imports nothing heavy at import time (pytest loads it in every
session): each fixture imports what it needs when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from engine.testing.broker import FakeBroker
    from engine.testing.conformance import ConformanceReport
    from engine.testing.harness import EngineHarness
    from engine.testing.market import ScriptedMarket
    from engine.testing.recorder import HookRecorder


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineHarness]:
    """An isolated engine harness: plugin autoload off, built-ins on request."""
    from engine.testing.harness import EngineHarness

    monkeypatch.setenv("ENGINE_STRICT_TRANSITIONS", "1")
    harness = EngineHarness()
    yield harness
    harness.close()


@pytest.fixture
def register_plugin(engine: EngineHarness) -> Iterator[Callable[..., str]]:
    """``register_plugin(obj, name=None) -> name``: registered on the ``engine``
    fixture's manager, unregistered at teardown."""
    names: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        registered = engine.register(plugin, name)
        names.append(registered)
        return registered

    yield register
    for name in reversed(names):
        if name in engine.registered:
            engine.unregister(name)


class _Provides:
    """An ad-hoc plugin providing one record from a record hook."""

    def __init__(self, hook: str, record: Any) -> None:
        from engine.hookspecs import hookimpl

        def provide() -> list[Any]:
            return [record]

        setattr(self, hook, hookimpl(provide, specname=hook))


@pytest.fixture
def scripted_market(
    engine: EngineHarness, register_plugin: Callable[..., str]
) -> Callable[..., ScriptedMarket]:
    """``scripted_market(data, symbol="BTC-USD", start=..., interval="1m")``: a feed
    over scripted bars or quotes, made the run's feed; instruments it names are
    added to the config when missing."""
    from engine.testing.market import ScriptedMarket

    count = [0]

    def make(data: Any, **options: Any) -> ScriptedMarket:
        count[0] += 1
        name = "scripted" if count[0] == 1 else f"scripted-{count[0]}"
        market = ScriptedMarket(data, name=name, **options)
        register_plugin(_Provides("engine_feeds", market.record()), f"engine-testing-{name}")
        for symbol in market.symbols:
            if not engine.has_instrument(symbol):
                engine.instrument(symbol)
        engine.feed(market)
        return market

    return make


@pytest.fixture
def fake_broker(engine: EngineHarness, register_plugin: Callable[..., str]) -> FakeBroker:
    """A scriptable fake venue over the simulated one, made the run's broker."""
    from engine.testing.broker import FakeBroker

    broker = FakeBroker(engine)
    register_plugin(_Provides("engine_brokers", broker.record()), "engine-testing-fake-broker")
    engine.broker(broker)
    return broker


@pytest.fixture
def hook_recorder(engine: EngineHarness) -> Iterator[HookRecorder]:
    """Every hook call of the ``engine`` fixture's manager, with arguments and results."""
    from engine.testing.recorder import HookRecorder

    recorder = HookRecorder().attach(engine.plugins)
    yield recorder
    recorder.detach()


@pytest.fixture
def assert_conforms() -> Callable[..., ConformanceReport]:
    """:func:`engine.testing.conformance.assert_conforms`."""
    from engine.testing.conformance import assert_conforms as check

    return check
