"""examples/engine-plugin-meanrev, a third-party-style strategy package: ``pip install``
into a virtualenv, its own tests pass (they use only engine.testing fixtures), the
engine lists it, and its example config backtests with it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.testing.venv import overlay_venv

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "examples" / "engine-plugin-meanrev"

pytestmark = pytest.mark.slow


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    return subprocess.run(
        [str(python), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def test_installs_with_pip_passes_its_tests_and_backtests(tmp_path: Path) -> None:
    venv = overlay_venv(tmp_path / "venv")
    # a clean copy: a build leaves build/ and *.egg-info next to the sources
    source = tmp_path / "engine-plugin-meanrev"
    shutil.copytree(
        PACKAGE,
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".*_cache"),
    )
    for lint in (("check",), ("format", "--check")):  # with the package's own ruff settings
        linted = run(venv, "-m", "ruff", *lint, ".", cwd=source)
        assert linted.returncode == 0, linted.stdout + linted.stderr
    install = run(venv, "-m", "pip", "install", "--no-build-isolation", str(source), cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    assert "Successfully installed engine-plugin-meanrev-0.1.0" in install.stdout
    site = next((tmp_path / "venv").glob("lib/python3*/site-packages"))
    assert (site / "engine_plugin_meanrev" / "__init__.py").is_file()  # a real install

    # its tests, run against the installed copy (the sources are not importable from here)
    tests = run(
        venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests"), cwd=tmp_path
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    summary = tests.stdout.strip().splitlines()[-1]
    assert re.match(r"\d+ passed in ", summary), summary

    listed = run(venv, "-m", "engine", "plugins", "--json", cwd=tmp_path)
    info = {p["name"]: p for p in json.loads(listed.stdout)}["meanrev"]
    assert (info["status"], info["distribution"], info["hooks"]) == (
        "loaded",
        "engine-plugin-meanrev",
        ["engine_strategies"],
    )

    backtest = run(
        venv, "-m", "engine", "backtest", str(source / "meanrev.toml"), "--json", cwd=tmp_path
    )
    assert backtest.returncode == 0, backtest.stderr
    report = json.loads(backtest.stdout)
    assert report["bars"] == 10080 and report["orders"]["filled"] >= 10
