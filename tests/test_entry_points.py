"""A third-party plugin package, pip-installed, is found through its entry point and used."""

from __future__ import annotations

import json
import os
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
    for package in ("tiny_plugin", "broken_plugin"):
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
                str(DATA / package),
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
