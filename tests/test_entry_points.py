"""A third-party plugin package, pip-installed, is found through its entry point and used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
ENGINE = str(Path(sys.executable).with_name("engine"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip install the tiny and the broken plugin packages into a private folder."""
    target = tmp_path_factory.mktemp("site")
    sources = tmp_path_factory.mktemp("sources")
    for folder in (
        DATA / "tiny_plugin",
        DATA / "broken_plugin",
        ROOT / "examples" / "guard-plugin",
    ):
        # a clean copy: building in place would leave build/ and *.egg-info in the checkout
        package = sources / folder.name
        shutil.copytree(
            folder, package, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--target",
                str(target),
                str(package),
            ],
            check=True,
            capture_output=True,
            cwd=target,
        )
    return target


def engine(site: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [ENGINE, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False
    )


def test_installed_plugin_is_listed_and_the_broken_one_reported(site: Path) -> None:
    proc = engine(site, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    infos = {i["name"]: i for i in json.loads(proc.stdout)}
    tiny = infos["tiny"]
    assert (tiny["status"], tiny["distribution"], tiny["version"], tiny["builtin"]) == (
        "loaded",
        "engine-plugin-tiny",
        "0.3.0",
        False,
    )
    assert tiny["hooks"] == ["engine_strategies"]
    broken = infos["broken"]
    assert broken["status"] == "failed"
    assert "ImportError: engine_plugin_broken needs a library" in broken["error"]


def config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(
        '[[instruments]]\nsymbol = "BTC-USD"\ntick_size = "0.01"\n'
        '[feed]\ntype = "synthetic"\nbars = 500\n'
        '[[strategies]]\ntype = "tiny_buy_hold"\nquantity = "2"\n'
    )
    return path


def test_its_strategy_runs_in_a_backtest(site: Path, tmp_path: Path) -> None:
    proc = engine(site, "backtest", str(config(tmp_path)), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["positions"] == {"BTC-USD": "2"}
    assert summary["orders"]["filled"] == 1


def test_strict_mode_refuses_to_run_with_a_broken_plugin(site: Path, tmp_path: Path) -> None:
    proc = engine(site, "--strict-plugins", "backtest", str(config(tmp_path)))
    assert proc.returncode == 3
    assert "plugin 'broken' failed to load: import failed: ImportError" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_plugins_leaves_third_party_plugins_out(site: Path, tmp_path: Path) -> None:
    proc = engine(site, "--no-plugins", "config", "check", str(config(tmp_path)))
    assert proc.returncode == 2
    assert "unknown strategy type 'tiny_buy_hold'" in proc.stderr


def test_the_example_guard_plugin_installs_and_guards(site: Path, tmp_path: Path) -> None:
    infos = {i["name"]: i for i in json.loads(engine(site, "plugins", "--json").stdout)}
    assert infos["max_loss"]["distribution"] == "engine-plugin-max-loss"
    assert infos["max_loss"]["hooks"] == ["engine_guards"]
    bad = tmp_path / "bad.toml"
    bad.write_text(
        config(tmp_path).read_text() + '[[guards]]\ntype = "max_loss_per_trade"\nlimit = "-1"\n'
    )
    proc = engine(site, "config", "check", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "config.guards[0].limit: must be > 0, got -1"
    script = (
        "from decimal import Decimal as D\n"
        "from engine import Instrument, OrderIntent, Side, Reduce\n"
        "from engine_plugin_max_loss import MaxLossConfig, max_loss_per_trade\n"
        "check = max_loss_per_trade(MaxLossConfig(limit=D('250')))\n"
        "class Ctx:\n"
        "    def last_price(self, s): return D('100')\n"
        "    def instrument(self, s): return Instrument('X', D('0.01'), D('0.1'))\n"
        "big = OrderIntent('s', 'X', Side.BUY, D('60'), stop_price=D('95'))\n"
        "print(check(big, Ctx()))\n"
        "print(check(OrderIntent('s', 'X', Side.BUY, D('60')), Ctx()))\n"
        "print(check(OrderIntent('s', 'X', Side.BUY, D('1'), stop_price=D('-5000')), Ctx()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
        check=True,
    ).stdout.splitlines()
    # 60 units risk 60 * 5 = 300 > 250: reduced to 250 / 5 = 50 (whole lots of 0.1)
    assert (
        out[0]
        == "Reduce(quantity=Decimal('50.0'), reason='too_risky', message='60 would risk more than 250')"
    )
    assert out[1] == "None"
    assert out[2].startswith("Deny(reason='too_risky'")
