"""Shared fixtures: small configs and engines with only what a test needs."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

import pytest
from loguru import logger

from engine import Engine, PluginSettings

# loguru's default sink prints DEBUG lines to stderr: tests that want log lines add
# their own sink; the default one shows warnings and worse only
logger.remove()
logger.add(sys.stderr, level="WARNING")

BASE_CONFIG: dict[str, Any] = {
    "engine": {"name": "test", "initial_cash": "100000", "seed": 1},
    "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.001"}],
    "feed": {"type": "synthetic", "bars": 2000, "start_price": "100"},
    "broker": {"type": "simulated"},
    "strategies": [{"type": "sma_crossover", "fast": 5, "slow": 20}],
}


@pytest.fixture(autouse=True)
def strict_transitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Illegal order-state transitions raise in tests (they are logged and counted
    in production)."""
    monkeypatch.setenv("ENGINE_STRICT_TRANSITIONS", "1")


@pytest.fixture
def base_config() -> dict[str, Any]:
    """A deep copy of a small, valid configuration dict."""
    return copy.deepcopy(BASE_CONFIG)


@pytest.fixture
def make_engine() -> Callable[..., Engine]:
    """Build an engine from a dict; built-in plugins only (isolated from the host)."""

    def build(config: dict[str, Any] | None = None, **settings: Any) -> Engine:
        opts = {"builtin_only": True, **settings}
        return Engine.from_config(
            copy.deepcopy(BASE_CONFIG) if config is None else config,
            settings=PluginSettings(**opts),
        )

    return build
