"""The examples in docstrings and in docs/model.md run and print what they say."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

MODULES = ["engine.engine", "engine.model", "engine.ordering", "engine.statemachine"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_model_page_examples() -> None:
    path = Path(__file__).resolve().parents[1] / "docs" / "model.md"
    result = doctest.testfile(str(path), module_relative=False)
    assert result.attempted > 0 and result.failed == 0
