"""Helpers for testing plugins and the engine: a pytest plugin and what it builds on.

Installing the engine registers :mod:`engine.testing.plugin` with pytest (entry
point ``pytest11``), so every test session has the fixtures ``engine``,
``register_plugin``, ``scripted_market``, ``fake_broker``, ``hook_recorder`` and
``assert_conforms`` (see docs/testing-plugins.md). The objects behind them:

* :class:`~engine.testing.harness.EngineHarness`: an isolated plugin manager and
  a config builder that runs backtests and paper runs;
* :class:`~engine.testing.market.ScriptedMarket`: a feed over scripted bars or quotes;
* :class:`~engine.testing.broker.FakeBroker`: the simulated venue with rejects,
  partial fills, latency and injected faults;
* :class:`~engine.testing.recorder.HookRecorder`: every hook call, with its
  arguments and result;
* :func:`~engine.testing.conformance.assert_conforms`: the plugin contract, checked.

:mod:`engine.testing.services` starts real local servers (Redis, Prometheus...)
for integration tests.

Names load on first use, so importing this package (pytest does, at start-up)
costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_exports

if TYPE_CHECKING:
    from engine.testing.broker import FakeBroker
    from engine.testing.conformance import (
        ConformanceError,
        ConformanceReport,
        Finding,
        assert_conforms,
    )
    from engine.testing.harness import EngineHarness
    from engine.testing.market import ScriptedMarket
    from engine.testing.recorder import HookRecorder

_EXPORTS = {
    "FakeBroker": "engine.testing.broker",
    "ConformanceError": "engine.testing.conformance",
    "ConformanceReport": "engine.testing.conformance",
    "Finding": "engine.testing.conformance",
    "assert_conforms": "engine.testing.conformance",
    "EngineHarness": "engine.testing.harness",
    "ScriptedMarket": "engine.testing.market",
    "HookRecorder": "engine.testing.recorder",
}

__all__ = [
    "ConformanceError",
    "ConformanceReport",
    "EngineHarness",
    "FakeBroker",
    "Finding",
    "HookRecorder",
    "ScriptedMarket",
    "assert_conforms",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
