"""The reference pages are generated and current; every hook and command is documented."""

from __future__ import annotations

from pathlib import Path

from engine import hookspecs
from engine.cli import main as cli
from engine.docs import main as generate

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_generated_pages_are_current() -> None:
    assert generate(["--check", "--docs", str(DOCS)]) == 0, "run: python -m engine.docs"


def test_every_hook_has_a_section_with_an_example() -> None:
    text = (DOCS / "hooks.md").read_text()
    for name in (n for n in dir(hookspecs) if n.startswith("engine_")):
        section = text.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert "Example::" in section, name


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    commands = ["engine " + n for n in cli.commands] + ["engine config check"]
    for command in commands:
        assert f"`{command}`" in text, command
