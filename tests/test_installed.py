"""engine.installed and ``engine plugins --all``: distributions, versions, modules,
hooks, records, load errors, and packages that look like plugins but are not."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine import PluginManager, PluginSettings, Strategy, hookimpl
from engine.installed import canonical_name, inventory

ROOT = Path(__file__).resolve().parents[1]
ENGINE = str(Path(sys.executable).with_name("engine"))

GOOD = """
from engine import Strategy, hookimpl

@hookimpl
def engine_strategies():
    return [Strategy(name="fine_hold", factory=lambda config: None)]
"""
RAISES = """
from engine import hookimpl

@hookimpl
def engine_guards():
    raise RuntimeError("the guard's config file is missing")
"""


def dist(
    site: Path,
    name: str,
    version: str,
    *,
    entry_points: str = "",
    requires: str = "",
    module: tuple[str, str] | None = None,
) -> None:
    """An installed distribution, as pip leaves it (a .dist-info folder and a module)."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires.split(",") if r)
    (info / "METADATA").write_text(meta)
    if entry_points:
        (info / "entry_points.txt").write_text(entry_points)
    if module:
        (site / f"{module[0]}.py").write_text(module[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    dist(
        site,
        "engine-plugin-fine",
        "1.2.0",
        entry_points="[engine]\nfine = fine_plugin\n",
        module=("fine_plugin", GOOD),
    )
    dist(
        site,
        "engine-plugin-broken",
        "0.1.0",
        entry_points="[engine]\nbroken = broken_plugin\n",
        module=("broken_plugin", "raise ImportError('needs the vendor SDK')\n"),
    )
    dist(
        site,
        "engine-plugin-raises",
        "0.2.0",
        entry_points="[engine]\nraises = raises_plugin\n",
        module=("raises_plugin", RAISES),
    )
    dist(site, "engine-plugin-typo", "0.1.0", entry_points="[engine_plugins]\ntypo = typo_plugin\n")
    dist(site, "quant-tools", "2.0", requires="engine>=0.1,numpy")  # depends on the engine
    dist(site, "unrelated", "1.0", requires="numpy")  # not an engine thing at all
    return site


def engine(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [ENGINE, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def test_plugins_all_shows_every_distribution_plugin_and_problem(site: Path) -> None:
    proc = engine(site, "plugins", "--all")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    lines = out.splitlines()
    assert lines[0].startswith("engine 0.1.0  (built-in, ")  # the core first
    assert "  sma_crossover    loaded     engine.builtins.strategy_sma" in lines
    assert "      strategies:       sma_crossover" in lines  # the records it returns

    fine = lines.index(f"engine-plugin-fine 1.2.0  ({site})")
    assert lines[fine + 1 : fine + 4] == [
        "  fine             loaded     fine_plugin",
        "      hooks:            engine_strategies",
        "      strategies:       fine_hold",
    ]
    broken = lines.index(f"engine-plugin-broken 0.1.0  ({site})")
    assert lines[broken + 1 : broken + 3] == [
        "  broken           failed     broken_plugin",
        "      error:            import failed: ImportError: needs the vendor SDK",
    ]
    raises = lines.index(f"engine-plugin-raises 0.2.0  ({site})")
    assert lines[raises + 1 : raises + 4] == [
        "  raises           loaded     raises_plugin",  # it imports, but its hook raises:
        "      hooks:            engine_guards",
        "      error:            engine_guards failed: RuntimeError: the guard's config file"
        " is missing",
    ]
    typo = lines.index(f"engine-plugin-typo 0.1.0  ({site})")
    assert lines[typo + 1] == (
        "  no plugin: declares no entry point in group 'engine', so it adds no plugin"
        " (it has 'engine_plugins': did you mean 'engine'?)"
    )
    tools = lines.index(f"quant-tools 2.0  ({site})")
    assert lines[tools + 1] == (
        "  no plugin: declares no entry point in group 'engine', so it adds no plugin"
    )
    assert "unrelated" not in out
    assert re.fullmatch(
        r"4 distribution\(s\) with \d+ plugin\(s\): 1 failed, \d+ loaded;"
        r" 2 package\(s\) without a plugin",
        lines[-1],
    ), lines[-1]
    assert "Traceback" not in proc.stderr


def test_plugins_all_json(site: Path) -> None:
    proc = engine(site, "plugins", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    dists = {d["name"]: d for d in json.loads(proc.stdout)}
    core = dists["engine"]
    assert core["builtin"] and core["version"] == "0.1.0" and core["problem"] is None
    assert core["editable"] and core["location"] == str(ROOT)  # the dev install
    (fine,) = dists["engine-plugin-fine"]["plugins"]
    assert fine == {
        "name": "fine",
        "status": "loaded",
        "module": "fine_plugin",
        "hooks": ["engine_strategies"],
        "records": {"engine_strategies": ["fine_hold"]},
        "error": None,
    }
    assert dists["engine-plugin-typo"]["plugins"] == []
    assert "did you mean 'engine'?" in dists["engine-plugin-typo"]["problem"]
    # the default listing is unchanged: one entry per plugin
    plain = json.loads(engine(site, "plugins", "--json").stdout)
    assert {p["name"] for p in plain} >= {"fine", "broken", "raises"}


def test_inventory_groups_ad_hoc_plugins_apart() -> None:
    class Notebook:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="cell", factory=lambda config: None)]

    manager = PluginManager(PluginSettings(builtin_only=True))
    manager.register(Notebook(), "notebook")
    dists = inventory(manager)
    assert dists[0].name == "engine" and dists[0].builtin
    adhoc = next(d for d in dists if d.name == "(registered in this process)")
    (plugin,) = adhoc.plugins
    assert (plugin.name, plugin.status, plugin.module) == ("notebook", "registered", None)
    assert plugin.records == {"engine_strategies": ("cell",)}
    assert adhoc.version is None and adhoc.location is None


def test_canonical_names() -> None:
    assert canonical_name("Engine_Plugin.Max--Loss") == "engine-plugin-max-loss"


def test_docstring_examples() -> None:
    import doctest

    import engine.installed

    outcome = doctest.testmod(engine.installed)
    assert outcome.attempted > 0 and outcome.failed == 0
