"""engine.testing as a pytest plugin (engine/testing/plugin.py): registered through the
``pytest11`` entry point, imported without loading anything heavy, and its fixtures
work in a plain pytest session of a plugin author (no conftest of ours)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

HEAVY = (
    "numpy",
    "pandas",
    "pyarrow",
    "attrs",
    "cattrs",
    "loguru",
    "engine.engine",
    "engine.config",
)


def test_the_pytest11_entry_point_names_the_plugin_module() -> None:
    (ep,) = [ep for ep in entry_points(group="pytest11") if ep.value == "engine.testing.plugin"]
    assert ep.name == "engine" and ep.dist is not None and ep.dist.name == "engine"


def test_importing_the_plugin_loads_nothing_heavy() -> None:
    code = (
        "import sys, engine.testing.plugin\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


AUTHOR_TESTS = """
from decimal import Decimal

from engine import Deny, Guard, Strategy, hookimpl

STATE = {}


class BuyTwice:
    def __init__(self, config):
        self.ctx = None

    def on_start(self, ctx):
        self.ctx = ctx

    def on_bar(self, bar):
        if bar.index in (1, 2):
            self.ctx.buy(1)


def no_second(config):
    def check(intent, ctx):
        return Deny("second") if ctx.position(intent.instrument) else None
    return check


class Plugin:
    @hookimpl
    def engine_strategies(self):
        return [Strategy(name="buy_twice", factory=BuyTwice)]

    @hookimpl
    def engine_guards(self):
        return [Guard(name="no_second", factory=no_second)]


def test_conforms(assert_conforms):
    assert_conforms(Plugin(), name="author", budget=5.0)


async def test_a_run(engine, register_plugin, scripted_market, fake_broker, hook_recorder):
    import os

    assert os.environ["ENGINE_STRICT_TRANSITIONS"] == "1"
    STATE["engine"] = engine
    register_plugin(Plugin(), "author")
    scripted_market([100, 101, 102, 103, 104])
    fake_broker.partial_fills(1, 1)
    engine.strategy("buy_twice")
    engine.guard("no_second")
    result = await engine.backtest()
    assert [f.quantity for f in result.fill_records] == [Decimal("0.5"), Decimal("0.5")]
    assert result.denials_by_reason == {"no_second.second": 1}
    assert hook_recorder.called("engine_guards", "author")


def test_the_plugin_was_unregistered_after_the_test():
    engine = STATE["engine"]
    assert "author" not in [i.name for i in engine.plugins.infos()]
    assert "buy_twice" not in engine.plugins.records("engine_strategies")
"""


def test_a_plugin_authors_session_gets_the_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_author.py").write_text(AUTHOR_TESTS)
    (tmp_path / "pytest.ini").write_text(
        textwrap.dedent(
            """\
            [pytest]
            asyncio_mode = auto
            asyncio_default_fixture_loop_scope = function
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
        check=False,
    ).stdout
    for fixture in (
        "engine",
        "register_plugin",
        "scripted_market",
        "fake_broker",
        "hook_recorder",
        "assert_conforms",
    ):
        assert f"\n{fixture} -- " in listed or f"\n{fixture}\n" in listed, fixture
