"""examples/plugin-template (copier): a rendered plugin package, in a temporary folder,
``pip install -e`` into a virtualenv, passes its own tests, is listed by ``engine
plugins``, and trades in a backtest; its CI script passes too.

The virtualenv is layered over this interpreter's packages (engine.testing.venv), so
nothing is downloaded: the engine, pytest and ruff come from the test environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.testing.venv import overlay_venv

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "examples" / "plugin-template"

pytestmark = pytest.mark.slow

STRATEGY_CONFIG = """
[[instruments]]
symbol = "BTC-USD"
tick_size = "0.01"
lot_size = "0.001"

[feed]
type = "synthetic"
bars = 3000

[[strategies]]
type = "{name}"
lookback = 20
quantity = "1"
"""

GUARD_CONFIG = """
[[instruments]]
symbol = "BTC-USD"
tick_size = "0.01"
lot_size = "0.001"

[feed]
type = "synthetic"
bars = 3000

[[strategies]]
type = "sma_crossover"
fast = 5
slow = 20
quantity = "5"

[[guards]]
type = "{name}"
max_quantity = "2"
max_position = "3"
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return overlay_venv(tmp_path_factory.mktemp("env") / "venv")


def render(destination: Path, **answers: str) -> Path:
    from copier import run_copy

    run_copy(str(TEMPLATE), str(destination), data=answers, defaults=True, quiet=True, unsafe=False)
    return destination


def run(
    python: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    return subprocess.run(
        [str(python), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, **(env or {})},
        timeout=300,
        check=False,
    )


def files(project: Path) -> list[str]:
    return sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())


def check_listed(venv: Path, cwd: Path, name: str, distribution: str, hook: str) -> None:
    listed = run(venv, "-m", "engine", "plugins", "--json", cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    info = {p["name"]: p for p in json.loads(listed.stdout)}[name]
    assert (info["status"], info["distribution"], info["version"], info["hooks"]) == (
        "loaded",
        distribution,
        "0.1.0",
        [hook],
    )


def backtest(venv: Path, tmp_path: Path, config: str) -> dict[str, Any]:
    path = tmp_path / "run.toml"
    path.write_text(config)
    done = run(venv, "-m", "engine", "backtest", str(path), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["bars"] == 3000
    return report


def test_a_strategy_plugin_rendered_installed_tested_listed_and_backtested(
    venv: Path, tmp_path: Path
) -> None:
    project = render(tmp_path / "engine-plugin-breakout", plugin_name="breakout", kind="strategy")
    assert files(project) == [
        ".copier-answers.yml",
        ".github/workflows/ci.yml",
        ".gitignore",
        "README.md",
        "ci/run",
        "engine_plugin_breakout/__init__.py",
        "pyproject.toml",
        "tests/test_breakout.py",
    ]

    install = run(
        venv, "-m", "pip", "install", "--no-build-isolation", "-e", str(project), cwd=tmp_path
    )
    assert install.returncode == 0, install.stderr
    assert "Successfully installed engine-plugin-breakout-0.1.0" in install.stdout

    tests = run(venv, "-m", "pytest", "-q", cwd=project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    summary = tests.stdout.strip().splitlines()[-1]
    assert re.match(r"\d+ passed in ", summary), summary  # nothing skipped or failed

    check_listed(venv, tmp_path, "breakout", "engine-plugin-breakout", "engine_strategies")
    report = backtest(venv, tmp_path, STRATEGY_CONFIG.format(name="breakout"))
    assert report["orders"]["filled"] >= 10  # the plugin's strategy traded


def test_a_guard_plugin_through_its_ci_script_then_backtested(venv: Path, tmp_path: Path) -> None:
    project = render(tmp_path / "engine-plugin-size-cap", plugin_name="size_cap", kind="guard")
    assert "engine_plugin_size_cap/__init__.py" in files(project)
    assert os.access(project / "ci" / "run", os.X_OK)
    # the CI script: pip install -e, lint, the plugin's tests, the engine lists it
    ci = run(
        Path("/bin/bash"),
        "ci/run",
        cwd=project,
        env={
            "VENV": str(venv.parents[1]),  # reuse the test virtualenv: the engine is there
            "ENGINE_SPEC": "",
            "PIP_OPTIONS": "--no-build-isolation",
        },
    )
    assert ci.returncode == 0, ci.stdout + ci.stderr
    assert "--- lint" in ci.stdout and "--- tests" in ci.stdout
    assert re.search(r"^\d+ passed in ", ci.stdout, re.MULTILINE), ci.stdout
    assert ci.stdout.rstrip().endswith("size_cap: loaded")

    check_listed(venv, tmp_path, "size_cap", "engine-plugin-size-cap", "engine_guards")
    report = backtest(venv, tmp_path, GUARD_CONFIG.format(name="size_cap"))
    assert report["orders_reduced"] >= 1  # the buys of 5 were cut to 2
    assert report["orders"]["filled"] >= 10


def test_a_bad_plugin_name_is_refused_when_rendering(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lower case letters, digits and _"):
        render(tmp_path / "bad", plugin_name="Bad-Name", kind="strategy")
