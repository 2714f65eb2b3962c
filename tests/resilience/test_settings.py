"""The ``[resilience]`` table: defaults, per-plugin overrides merged over the
default, and every problem reported as ``path: problem``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ConfigError
from engine.resilience import ResilienceSection, ResilienceSettings, parse_resilience


def problems(raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_resilience(raw)
    return [str(p) for p in info.value.problems]


def test_defaults() -> None:
    s = ResilienceSettings()
    assert (s.timeout, s.retries, s.backoff_initial, s.backoff_max, s.jitter) == (
        "10s",
        3,
        "100ms",
        "5s",
        "100ms",
    )
    assert (s.breaker_failures, s.breaker_reset, s.rate, s.burst, s.max_wait) == (
        5,
        "30s",
        0.0,
        1,
        "1s",
    )
    assert (s.max_concurrent, s.max_queue, s.on_breaker_open) == (16, 64, "halted")
    assert s.attempts == 4
    assert (s.timeout_seconds, s.backoff_initial_seconds, s.backoff_max_seconds) == (10, 0.1, 5)
    assert (s.jitter_seconds, s.breaker_reset_seconds, s.max_wait_seconds) == (0.1, 30, 1)
    assert parse_resilience({}) == ResilienceSection()
    assert ResilienceSection().settings_for("anything") == s


def test_a_plugin_table_overrides_only_its_keys_over_the_default() -> None:
    section = parse_resilience(
        {
            "default": {"retries": 1, "timeout": "2s", "on_breaker_open": "reducing"},
            "plugins": {
                "myvenue": {"rate": 5, "burst": 10, "timeout": "500ms"},
                "quotes": {},
            },
        }
    )
    assert section.default == ResilienceSettings(
        retries=1, timeout="2s", on_breaker_open="reducing"
    )
    venue = section.settings_for("myvenue")
    assert venue == ResilienceSettings(
        retries=1, timeout="500ms", on_breaker_open="reducing", rate=5.0, burst=10
    )
    assert venue.timeout_seconds == 0.5
    assert section.settings_for("quotes") == section.default
    assert section.settings_for("not-configured") == section.default


def test_zero_is_allowed_where_it_means_something() -> None:
    s = parse_resilience(
        {"default": {"jitter": "0s", "backoff_initial": "0ms", "max_wait": "0s", "retries": 0}}
    ).default
    assert (s.jitter_seconds, s.backoff_initial_seconds, s.max_wait_seconds, s.attempts) == (
        0,
        0,
        0,
        1,
    )


def test_plugin_validation_errors_name_their_path() -> None:
    assert problems({"plugins": {"myvenue": {"retries": -1}}}) == [
        "config.resilience.plugins.myvenue.retries: must be >= 0, got -1"
    ]


def test_every_problem_is_reported_at_once_with_hints() -> None:
    assert problems(
        {
            "defualt": {},
            "default": {
                "timeout": "0s",
                "rate": "5",
                "on_breaker_open": "flatten",
                "breaker_failures": 0,
            },
            "plugins": {
                "myvenue": {"retires": 2, "max_concurrent": 0, "jitter": "soon"},
                "other": 3,
            },
        }
    ) == [
        "config.resilience.defualt: unknown key (did you mean 'default'?)",
        "config.resilience.default.timeout: expected an interval like 250ms, 1s, 1m, 4h or 1d, got '0s'",
        "config.resilience.default.breaker_failures: must be > 0, got 0",
        "config.resilience.default.on_breaker_open: expected 'halted' or 'reducing', got 'flatten'",
        "config.resilience.default.rate: expected a number, got a string ('5')",
        "config.resilience.plugins.myvenue.jitter: expected an interval like 0s, 250ms, 1s or 1m, got 'soon'",
        "config.resilience.plugins.myvenue.max_concurrent: must be > 0, got 0",
        "config.resilience.plugins.myvenue.retires: unknown key (did you mean 'retries'?)",
        "config.resilience.plugins.other: expected a table of settings to override",
    ]


def test_a_broken_default_is_reported_once_not_under_every_plugin() -> None:
    assert problems({"default": {"retries": -2}, "plugins": {"a": {"burst": 2}}}) == [
        "config.resilience.default.retries: must be >= 0, got -2"
    ]


def test_backoff_initial_may_not_exceed_backoff_max() -> None:
    assert problems({"plugins": {"v": {"backoff_initial": "10s"}}}) == [
        "config.resilience.plugins.v: backoff_initial (10s) must not exceed backoff_max (5s)"
    ]


def test_wrong_shapes() -> None:
    assert problems({"default": 3, "plugins": []}) == [
        "config.resilience.default: expected a table ([resilience.default])",
        "config.resilience.plugins: expected a table of plugin tables ([resilience.plugins.NAME])",
    ]
    with pytest.raises(ConfigError, match=r"config\.resilience: expected a table"):
        parse_resilience([])  # type: ignore[arg-type]
    assert problems({"bogus": 1}) == [
        "config.resilience.bogus: unknown key; known keys: default, plugins"
    ]


def test_custom_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_resilience({"default": {"burst": 0}}, path="cfg.res")
    assert str(info.value) == "cfg.res.default.burst: must be > 0, got 0"


IMPORT_WITHOUT_CONFIG = """
import importlib.abc, pathlib, sys, types

import engine  # noqa: F401  (the package, so its path is known)

root = pathlib.Path(engine.__file__).parent
for name in [m for m in sys.modules if m == "engine" or m.startswith("engine.")]:
    del sys.modules[name]
bare = types.ModuleType("engine")
bare.__path__ = [str(root)]
sys.modules["engine"] = bare  # the package without its __init__ (which imports config)


class NoConfig(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "engine.config":
            raise ImportError("engine.config imported while importing engine.resilience")


sys.meta_path.insert(0, NoConfig())
import engine.resilience

sys.meta_path.pop(0)
print(engine.resilience.parse_resilience({"plugins": {"v": {"retries": 1}}}).settings_for("v").retries)
"""


def test_engine_config_may_import_the_resilience_settings() -> None:
    """engine.resilience never imports engine.config at import time, so the config
    module can import ResilienceSection to declare the [resilience] section."""
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_WITHOUT_CONFIG],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"
