"""Fixtures of the sweep tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sweep_plugins import SWEEP_CONFIG


@pytest.fixture
def sweep_config() -> dict[str, Any]:
    """A deep copy of a small config for sweeps."""
    return copy.deepcopy(SWEEP_CONFIG)
