"""The per-engine plugin manager: entry points, isolation, lists, strictness, validation."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from constants import BUILTINS
from loguru import logger

from engine import (
    Analyzer,
    Engine,
    PluginError,
    PluginManager,
    PluginSettings,
    Strategy,
    hookimpl,
)
from engine.plugins import ESSENTIAL_PLUGINS


def install_fake_distribution(root: Path, dist: str, plugins: dict[str, str]) -> None:
    """Write modules plus a .dist-info with entry points, as pip would."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = ["[engine]"]
    for name, source in plugins.items():
        module = f"{dist}_{name}"
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        lines.append(f"{name} = {module}")
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


GOOD = """
from engine import Strategy, hookimpl

class Hold:
    def __init__(self, config):
        pass
    def on_bar(self, bar):
        pass

@hookimpl
def engine_strategies():
    return [Strategy(name="hold", factory=Hold)]
"""
BROKEN = """
raise RuntimeError("boom at import")
"""
TYPO = """
from engine import hookimpl

@hookimpl
def engine_strategy():
    return []
"""


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    for var in (
        "ENGINE_LOAD_PLUGINS",
        "ENGINE_DISABLE_PLUGINS",
        "ENGINE_STRICT_PLUGINS",
        "ENGINE_TRACE_PLUGINS",
    ):
        monkeypatch.delenv(var, raising=False)
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("fakedist")]:
        del sys.modules[mod]


def statuses(pm: PluginManager) -> dict[str, str]:
    return {i.name: i.status for i in pm.infos()}


def test_builtins_are_loaded_through_entry_points(fake_site: Path) -> None:
    infos = {i.name: i for i in PluginManager(PluginSettings()).infos()}
    assert set(infos) >= BUILTINS
    for name in BUILTINS:
        assert infos[name].status == "loaded"
        assert infos[name].builtin and infos[name].distribution == "engine"
        assert infos[name].hooks
    assert infos["sma_crossover"].hooks == ("engine_strategies",)


def test_a_broken_plugin_is_reported_and_skipped(fake_site: Path) -> None:
    install_fake_distribution(fake_site, "fakedist", {"good": GOOD, "broken": BROKEN})
    pm = PluginManager(PluginSettings())
    infos = {i.name: i for i in pm.infos()}
    assert infos["broken"].status == "failed"
    assert "RuntimeError: boom at import" in (infos["broken"].error or "")
    assert infos["good"].status == "loaded" and infos["good"].distribution == "fakedist"
    assert "hold" in pm.records("engine_strategies")
    assert pm.failed() == {"broken": infos["broken"].error}


def test_strict_mode_makes_a_broken_plugin_fatal(fake_site: Path) -> None:
    install_fake_distribution(fake_site, "fakedist", {"broken": BROKEN})
    with pytest.raises(PluginError, match="'broken' failed to load: import failed: RuntimeError"):
        PluginManager(PluginSettings(strict=True)).load()


def test_strict_mode_from_the_environment(fake_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_STRICT_PLUGINS", "1")
    assert PluginSettings.from_env().strict


def test_misspelt_hook_is_reported_with_a_suggestion(fake_site: Path) -> None:
    install_fake_distribution(fake_site, "fakedist", {"typo": TYPO})
    info = {i.name: i for i in PluginManager(PluginSettings()).infos()}["typo"]
    assert info.status == "failed"
    assert "engine_strategy (did you mean engine_strategies?)" in (info.error or "")


def test_disable_and_allow_lists(fake_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_distribution(fake_site, "fakedist", {"good": GOOD})
    monkeypatch.setenv("ENGINE_DISABLE_PLUGINS", "good, csv")
    s = statuses(PluginManager(PluginSettings.from_env()))
    assert s["good"] == "disabled" and s["csv"] == "disabled" and s["parquet"] == "loaded"

    monkeypatch.delenv("ENGINE_DISABLE_PLUGINS")
    monkeypatch.setenv("ENGINE_LOAD_PLUGINS", "synthetic,sma_crossover")
    s = statuses(PluginManager(PluginSettings.from_env()))
    loaded = {n for n, st in s.items() if st == "loaded"}
    assert loaded == {"synthetic", "sma_crossover"} | ESSENTIAL_PLUGINS


def test_cli_flags_add_to_the_environment_blocklist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_DISABLE_PLUGINS", "csv")
    s = PluginSettings.from_env(disable=frozenset({"parquet"}))
    assert s.disable == {"csv", "parquet"}


def test_essential_plugins_cannot_be_disabled() -> None:
    with pytest.raises(PluginError, match="essential plugin"):
        PluginManager(PluginSettings(disable=frozenset({"performance"})))


def test_builtin_only_skips_third_party_plugins(fake_site: Path) -> None:
    install_fake_distribution(fake_site, "fakedist", {"good": GOOD})
    s = statuses(PluginManager(PluginSettings(builtin_only=True)))
    assert s["good"] == "disabled" and s["sma_crossover"] == "loaded"


def test_loading_is_lazy(fake_site: Path) -> None:
    install_fake_distribution(fake_site, "fakedist", {"good": GOOD})
    eng = Engine.from_config({})
    assert "fakedist_good" not in sys.modules
    eng.plugins.infos()
    assert "fakedist_good" in sys.modules


def manager() -> PluginManager:
    return PluginManager(PluginSettings(autoload=False))


def test_records_are_stamped_with_their_plugin_and_ordered() -> None:
    pm = manager()

    class A:
        @hookimpl
        def engine_analyzers(self) -> list[Analyzer]:
            return [
                Analyzer(name="zeta", compute=dict, priority=1),
                Analyzer(name="alpha", compute=dict, priority=1),
            ]

    class B:
        @hookimpl
        def engine_analyzers(self) -> list[Analyzer]:
            return [Analyzer(name="first", compute=dict, priority=-5)]

    pm.register(A(), "a")
    pm.register(B(), "b")
    got = [(r.name, r.plugin) for r in pm.collect("engine_analyzers")]
    assert got == [("first", "b"), ("alpha", "a"), ("zeta", "a")]


def test_a_raising_plugin_loses_only_its_own_records() -> None:
    pm = manager()

    class Bad:
        @hookimpl
        def engine_analyzers(self) -> list[Analyzer]:
            raise ValueError("nope")

    class Good:
        @hookimpl
        def engine_analyzers(self) -> list[Analyzer]:
            return [Analyzer(name="ok", compute=dict)]

    pm.register(Bad(), "bad")
    pm.register(Good(), "good")
    assert [r.name for r in pm.collect("engine_analyzers")] == ["ok"]
    assert "engine_analyzers failed: ValueError: nope" in (
        {i.name: i for i in pm.infos()}["bad"].error or ""
    )


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ([Strategy(name="s", factory=dict)], "returned Strategy, expected Analyzer"),
        (["text"], "returned str, expected Analyzer"),
    ],
)
def test_records_of_the_wrong_type_are_rejected(returned: list[Any], message: str) -> None:
    pm = PluginManager(PluginSettings(autoload=False, strict=True))

    class Wrong:
        @hookimpl
        def engine_analyzers(self) -> list[Any]:
            return returned

    pm.register(Wrong(), "wrong")
    with pytest.raises(PluginError, match=message):
        pm.collect("engine_analyzers")


def test_async_record_hooks_are_rejected() -> None:
    pm = PluginManager(PluginSettings(autoload=False, strict=True))

    class Async:
        @hookimpl
        async def engine_analyzers(self) -> list[Analyzer]:
            return []

    pm.register(Async(), "async")
    with pytest.raises(PluginError, match="must be plain functions, not async"):
        pm.collect("engine_analyzers")


def test_duplicate_names_across_plugins_are_fatal() -> None:
    pm = manager()

    class One:
        @hookimpl
        def engine_analyzers(self) -> list[Analyzer]:
            return [Analyzer(name="same", compute=dict)]

    pm.register(One(), "one")
    pm.register(One(), "two")
    with pytest.raises(
        PluginError, match="'same' is provided by both plugin 'one' and plugin 'two'"
    ):
        pm.collect("engine_analyzers")


def test_record_names_are_validated() -> None:
    with pytest.raises(ValueError, match="must be lower case"):
        Analyzer(name="Bad Name", compute=dict)


def test_register_twice_and_unregister() -> None:
    pm = manager()

    class P:
        @hookimpl
        def engine_analyzers(self) -> list[Analyzer]:
            return [Analyzer(name="p", compute=dict)]

    pm.register(P(), "p")
    with pytest.raises(PluginError, match="already registered"):
        pm.register(P(), "p")
    assert "p" in pm.records("engine_analyzers")
    pm.unregister("p")
    assert "p" not in pm.records("engine_analyzers")


def test_wrong_argument_names_fail_at_registration() -> None:
    class Bad:
        @hookimpl
        def engine_startup(self, engin: Any) -> None:
            pass

    with pytest.raises(PluginError, match="invalid hook implementation"):
        manager().register(Bad(), "bad")


def test_tracing_logs_every_hook_call() -> None:
    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG", format="{message}")
    try:
        pm = PluginManager(PluginSettings(trace=True))
        pm.collect("engine_strategies")
    finally:
        logger.remove(sink)
    assert any("hook engine_strategies plugin=sma_crossover" in line for line in lines)


async def test_lifecycle_hooks_await_async_impls_start_in_order_stop_in_reverse() -> None:
    calls: list[str] = []

    class Sync:
        @hookimpl
        def engine_startup(self, engine: Any) -> None:
            calls.append("start sync")

        @hookimpl
        def engine_shutdown(self, engine: Any) -> None:
            calls.append("stop sync")

    class Async:
        @hookimpl
        async def engine_startup(self, engine: Any) -> None:
            calls.append("start async")

        @hookimpl
        async def engine_shutdown(self, engine: Any) -> None:
            raise RuntimeError("shutdown errors are logged, the others still run")

    pm = manager()
    pm.register(Sync(), "sync")
    pm.register(Async(), "async")
    await pm.call_lifecycle("engine_startup", fail_fast=True, engine=None)
    await pm.call_lifecycle("engine_shutdown", fail_fast=False, reverse=True, engine=None)
    assert calls == ["start sync", "start async", "stop sync"]


async def test_a_failing_startup_hook_is_fatal() -> None:
    class Bad:
        @hookimpl
        def engine_startup(self, engine: Any) -> None:
            raise RuntimeError("no")

    pm = manager()
    pm.register(Bad(), "bad")
    with pytest.raises(PluginError, match="engine_startup failed: RuntimeError: no"):
        await pm.call_lifecycle("engine_startup", fail_fast=True, engine=None)


def test_hook_docs_cover_every_spec() -> None:
    docs = manager().hook_docs()
    assert "engine_strategies" in docs and "engine_guards" in docs
    assert all("Example" in doc for doc in docs.values())


def test_named_entry_points_load_even_with_autoload_off(fake_site: Path) -> None:
    install_fake_distribution(fake_site, "fakedist", {"good": GOOD, "broken": BROKEN})
    pm = PluginManager(PluginSettings(autoload=False))
    assert statuses(pm) == {}
    pm.load_entry_points("sma_crossover", "good")
    pm.load_entry_points("good")  # already loaded: nothing happens
    assert statuses(pm) == {"good": "loaded", "sma_crossover": "loaded"}
    assert list(pm.records("engine_strategies")) == ["hold", "sma_crossover"]
    with pytest.raises(PluginError, match=r"no installed plugin named 'nope'; installed: .*good"):
        pm.load_entry_points("nope")
    pm.load_entry_points("broken")  # reported like any failed plugin
    assert statuses(pm)["broken"] == "failed"
    strict = PluginManager(PluginSettings(autoload=False, strict=True))
    with pytest.raises(PluginError, match="plugin 'broken' failed to load"):
        strict.load_entry_points("broken")


async def test_hook_call_monitoring_sees_each_plugin_call_with_arguments_and_results() -> None:
    before: list[tuple[str, str, dict[str, Any]]] = []
    after: list[Any] = []

    class Extra:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="extra", factory=lambda _: None)]

        @hookimpl
        async def engine_startup(self, engine: Any) -> str:
            return "started"

        @hookimpl
        def engine_shutdown(self, engine: Any) -> None:
            raise RuntimeError("stuck")

    pm = manager()
    pm.register(Extra(), "extra")
    undo = pm.add_hookcall_monitoring(
        lambda hook, plugin, kwargs: before.append((hook, plugin, dict(kwargs))), after.append
    )
    pm.add_hookcall_monitoring(after=lambda call: 1 / 0)  # a broken monitor is only logged
    pm.collect("engine_strategies")
    pm.collect("engine_strategies")  # cached: no second call
    await pm.call_lifecycle("engine_startup", fail_fast=True, engine="E")
    await pm.call_lifecycle("engine_shutdown", fail_fast=False, engine="E")
    calls = [(c.hook, c.plugin) for c in after]
    assert calls == [
        ("engine_strategies", "extra"),  # once: the records are cached
        ("engine_startup", "extra"),
        ("engine_shutdown", "extra"),
    ]
    (start,) = [c for c in after if c.hook == "engine_startup"]
    assert (start.plugin, dict(start.kwargs), start.result, start.error) == (
        "extra",
        {"engine": "E"},
        "started",
        None,
    )
    (stop,) = [c for c in after if c.hook == "engine_shutdown"]
    assert isinstance(stop.error, RuntimeError) and stop.result is None
    (strategies,) = [c for c in after if c.plugin == "extra" and c.hook == "engine_strategies"]
    assert [r.name for r in strategies.result] == ["extra"]
    assert ("engine_startup", "extra", {"engine": "E"}) in before
    undo()
    await pm.call_lifecycle("engine_startup", fail_fast=True, engine="E")
    assert len([c for c in after if c.hook == "engine_startup"]) == 1
