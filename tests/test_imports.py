"""Start-up stays light: ``import engine``, ``engine --help`` and listing the built-in
plugins (what ``engine plugins`` does) import none of the heavy libraries; they load
when a run needs them. Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Libraries that cost tens of milliseconds to import each.
HEAVY = ("numpy", "pandas", "pyarrow", "rich", "aiocache", "aiobreaker", "redis", "stamina")

LOADED = """
import json, sys
{code}
print(json.dumps(sorted(m.split(".")[0] for m in sys.modules)))
"""


def top_level_modules(code: str) -> set[str]:
    """The top-level packages imported after running ``code`` in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    proc = subprocess.run(
        [sys.executable, "-c", LOADED.format(code=code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_import_engine_imports_no_heavy_library() -> None:
    loaded = top_level_modules("import engine")
    assert "engine" in loaded
    heavy = loaded & {*HEAVY, "loguru", "attrs", "cattrs"}
    assert not heavy, sorted(heavy)


def test_engine_help_imports_no_heavy_library() -> None:
    code = """
from engine.cli import main
try:
    main(["--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
"""
    loaded = top_level_modules(code)
    assert "click" in loaded
    heavy = loaded & {*HEAVY, "loguru"}
    assert not heavy, sorted(heavy)


def test_listing_the_builtin_plugins_imports_no_heavy_library() -> None:
    code = """
from engine.plugins import PluginManager, PluginSettings
infos = PluginManager(PluginSettings(builtin_only=True)).infos()
bad = [(i.name, i.error) for i in infos if i.status != "loaded"]
assert not bad, bad
assert len(infos) > 10, infos
"""
    loaded = top_level_modules(code)
    assert "engine" in loaded
    heavy = loaded & set(HEAVY)
    assert not heavy, sorted(heavy)


@pytest.mark.parametrize("name", ["Engine", "BarSeries", "RunResult", "FeedContext", "BarView"])
def test_public_names_still_resolve_lazily(name: str) -> None:
    loaded = top_level_modules(f"import engine; assert engine.{name}.__doc__")
    assert "engine" in loaded
