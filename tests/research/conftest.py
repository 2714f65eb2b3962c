"""Configs for sweep tests: small, so many runs stay cheap."""

from __future__ import annotations

import copy
from typing import Any

import pytest

SWEEP_CONFIG: dict[str, Any] = {
    "engine": {"name": "sweep-test", "initial_cash": "100000", "seed": 11},
    "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.001"}],
    "feed": {"type": "synthetic", "bars": 3000, "start_price": "100", "volatility": 0.003},
    "broker": {"type": "simulated", "fee_bps": "1"},
    "strategies": [{"type": "sma_crossover", "fast": 5, "slow": 20, "quantity": "1"}],
}

#: 60 runs: 4 x 15, every one valid (fast < slow)
GRID_60 = {"strategy.fast": "2..8:2", "strategy.slow": "10..38:2"}


@pytest.fixture
def sweep_config() -> dict[str, Any]:
    """A deep copy of a small config for sweeps."""
    return copy.deepcopy(SWEEP_CONFIG)
