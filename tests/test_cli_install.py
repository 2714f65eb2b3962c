"""``engine install`` / ``engine uninstall``: pip in the engine's own interpreter, for
real, in a throwaway virtualenv layered over this one (engine.testing.venv)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.testing.venv import overlay_venv

ROOT = Path(__file__).resolve().parents[1]
GUARD_PLUGIN = ROOT / "examples" / "guard-plugin"

CONFIG = """
[[instruments]]
symbol = "BTC-USD"
tick_size = "0.01"
lot_size = "0.001"

[feed]
type = "synthetic"
bars = 400

[[strategies]]
type = "sma_crossover"
fast = 5
slow = 20

[[guards]]
type = "max_loss_per_trade"
limit = "250"
"""


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m engine ARGS`` without the caller's ENGINE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        [str(python), "-m", "engine", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def listed(python: Path, cwd: Path) -> dict[str, dict[str, object]]:
    proc = run(python, "plugins", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return {p["name"]: p for p in json.loads(proc.stdout)}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return overlay_venv(tmp_path_factory.mktemp("env") / "venv")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A clean copy of examples/guard-plugin (a build leaves files in its folder)."""
    copy = tmp_path / "guard-plugin"
    shutil.copytree(
        GUARD_PLUGIN, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    return copy


@pytest.mark.slow
def test_install_then_uninstall_a_plugin(venv: Path, source: Path, tmp_path: Path) -> None:
    site = next(venv.parents[1].glob("lib/python3*/site-packages"))
    assert "max_loss" not in listed(venv, tmp_path)

    proc = run(venv, "install", "--no-build-isolation", str(source), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Successfully installed engine-plugin-max-loss-0.1.0" in proc.stdout  # pip's own
    assert proc.stdout.rstrip().endswith(
        "engine: plugin max_loss (engine-plugin-max-loss 0.1.0): loaded"
    )
    assert (site / "engine_plugin_max_loss" / "__init__.py").is_file()  # in the venv only
    plugin = listed(venv, tmp_path)["max_loss"]
    assert (plugin["status"], plugin["distribution"]) == ("loaded", "engine-plugin-max-loss")
    config = tmp_path / "guarded.toml"
    config.write_text(CONFIG)
    backtest = run(venv, "backtest", str(config), "--json", cwd=tmp_path)
    assert backtest.returncode == 0, backtest.stderr
    assert json.loads(backtest.stdout)["bars"] == 400

    proc = run(venv, "uninstall", "--yes", "engine-plugin-max-loss", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Successfully uninstalled engine-plugin-max-loss-0.1.0" in proc.stdout
    assert proc.stdout.rstrip().endswith("engine: plugin max_loss (engine-plugin-max-loss) removed")
    assert not (site / "engine_plugin_max_loss").exists()
    assert "max_loss" not in listed(venv, tmp_path)
    gone = run(venv, "config", "check", str(config), cwd=tmp_path)
    assert gone.returncode == 2
    assert "config.guards[0].type: unknown guard type 'max_loss_per_trade'" in gone.stderr


@pytest.mark.slow
def test_pip_output_and_exit_code_pass_through(venv: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    proc = run(venv, "install", str(missing), cwd=tmp_path)
    assert proc.returncode == 1  # pip's
    assert "ERROR:" in proc.stderr and str(missing) in proc.stderr
    assert "engine:" not in proc.stdout  # no plugin report after a failed pip
    proc = run(venv, "uninstall", "--yes", "engine-plugin-not-installed", cwd=tmp_path)
    assert proc.returncode == 0
    assert "Skipping engine-plugin-not-installed as it is not installed" in proc.stderr
    assert proc.stdout.strip() == "engine: no plugin was added, changed or removed"


def test_the_engine_does_not_uninstall_itself(venv: Path, tmp_path: Path) -> None:
    for name in ("engine", "Engine"):
        proc = run(venv, "uninstall", "-y", name, cwd=tmp_path)
        assert proc.returncode == 2
        assert "the engine does not uninstall itself" in proc.stderr
    assert "performance" in listed(venv, tmp_path)


def test_without_pip_install_says_how_to_get_it(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    bare = overlay_venv(tmp_path_factory.mktemp("bare") / "venv", exclude=("pip",))
    check = subprocess.run(
        [str(bare), "-c", "import importlib.util as u; print(u.find_spec('pip'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip() == "None"  # really no pip in there
    for command in ("install", "uninstall"):
        proc = run(bare, command, "engine-plugin-anything", cwd=tmp_path)
        assert proc.returncode == 2
        assert proc.stderr.strip() == (
            f"pip is not installed for {bare}, the Python that runs the engine: run"
            f" `{bare} -m ensurepip --upgrade` first, or install the plugin with the tool"
            " that manages this environment"
        )
        assert "Traceback" not in proc.stderr
