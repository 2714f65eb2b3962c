"""Config: strict structuring, every problem reported with its path, plugin sections, secrets."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import ConfigError, ConfigSection, Engine, PluginSettings, Secret, hookimpl
from engine.config import converter, structure


def problems(config: dict[str, Any], **settings: Any) -> list[str]:
    eng = Engine.from_config(config, settings=PluginSettings(builtin_only=True, **settings))
    with pytest.raises(ConfigError) as err:
        eng.check()
    return [str(p) for p in err.value.problems]


def test_valid_config_resolves(base_config: dict[str, Any]) -> None:
    cfg = Engine.from_config(base_config, settings=PluginSettings(builtin_only=True)).check()
    assert cfg.instruments[0].tick_size == Decimal("0.01")
    spec = cfg.components["strategies"][0]
    assert (spec.type, spec.options.fast, spec.options.slow, spec.record.plugin) == (
        "sma_crossover",
        5,
        20,
        "sma_crossover",
    )
    assert cfg.component("broker").type == "simulated"


def test_typo_negative_window_and_string_number_are_all_reported(
    base_config: dict[str, Any],
) -> None:
    base_config["strategies"] = [{"type": "sma_crossover", "fats": 10, "slow": -30}]
    base_config["feed"]["bars"] = "many"
    assert sorted(problems(base_config)) == [
        "config.feed.bars: expected an integer, got a string ('many')",
        "config.strategies[0].fats: unknown key (did you mean 'fast'?)",
        "config.strategies[0].slow: must be > 0, got -30",
    ]


def test_the_bundled_bad_config_file_gives_three_lines() -> None:
    eng = Engine.from_config(Path(__file__).parent / "data" / "bad_config.toml")
    with pytest.raises(ConfigError) as err:
        eng.check()
    assert len(err.value.problems) == 3


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("strategies", 0, "fast"), "10", "expected an integer, got a string ('10')"),
        (("strategies", 0, "fast"), 1.9, "expected an integer, got a float (1.9)"),
        (("strategies", 0, "fast"), True, "expected an integer, got a boolean (True)"),
        (("feed", "volatility"), "0.1", "expected a number, got a string ('0.1')"),
        (("engine", "initial_cash"), "lots", "expected a decimal number, got 'lots'"),
        (("engine", "initial_cash"), "NaN", "expected a finite number, got 'NaN'"),
        (("engine", "initial_cash"), True, "expected a decimal number, got a boolean (True)"),
        (("engine", "name"), 5, "expected a string, got an integer (5)"),
        (("instruments", 0, "kind"), "future", "expected one of 'spot', 'perpetual', got 'future'"),
    ],
)
def test_no_silent_coercions(
    base_config: dict[str, Any], path: tuple[Any, ...], value: Any, message: str
) -> None:
    node: Any = base_config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    where = "config." + ".".join(f"{k}" for k in path).replace(".0", "[0]")
    assert problems(base_config) == [f"{where}: {message}"]


def test_cross_field_validation(base_config: dict[str, Any]) -> None:
    base_config["strategies"][0].update(fast=30, slow=10)
    assert problems(base_config) == [
        "config.strategies[0]: fast (30) must be smaller than slow (10)"
    ]


def test_missing_and_unknown_sections(base_config: dict[str, Any]) -> None:
    del base_config["feed"]
    base_config["prometheus"] = {"port": 9000}
    base_config["instrumetns"] = []
    assert sorted(problems(base_config)) == [
        "config.feed: required section is missing (feed)",
        "config.instrumetns: unknown section (did you mean [instruments]?)",
        "config.prometheus: unknown section; it belongs to a plugin: "
        "pip install engine-plugin-prometheus",
    ]


def test_unknown_component_type_lists_what_is_available(base_config: dict[str, Any]) -> None:
    base_config["strategies"][0]["type"] = "sma_cross"
    (line,) = problems(base_config)
    assert line.startswith("config.strategies[0].type: unknown strategy type 'sma_cross'")
    assert "did you mean 'sma_crossover'?" in line and "available: sma_crossover" in line


def test_strategy_instrument_must_exist(base_config: dict[str, Any]) -> None:
    base_config["strategies"][0]["instrument"] = "ETH-USD"
    assert problems(base_config) == [
        "config.strategies[0].instrument: unknown instrument 'ETH-USD'; configured: BTC-USD"
    ]


def test_duplicate_instruments(base_config: dict[str, Any]) -> None:
    base_config["instruments"].append(dict(base_config["instruments"][0]))
    assert problems(base_config) == ["config.instruments: duplicate symbol(s): BTC-USD"]


def test_toml_syntax_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine\nname = 1\n")
    with pytest.raises(ConfigError) as err:
        Engine.from_config(bad)
    assert str(err.value.problems[0]).startswith(f"{bad}: invalid TOML")


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        Engine.from_config("/nonexistent/config.toml")


@attrs.frozen
class VenueSettings:
    api_key: Secret
    port: int = 9464


class VenuePlugin:
    @hookimpl
    def engine_config_sections(self) -> list[ConfigSection]:
        return [ConfigSection(name="venue", config_type=VenueSettings)]


def test_plugin_sections_and_secrets_from_the_environment(
    base_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VENUE_KEY", "s3cr3t")
    base_config["venue"] = {"api_key": {"env": "VENUE_KEY"}}
    eng = Engine.from_config(base_config, settings=PluginSettings(builtin_only=True))
    eng.register(VenuePlugin(), "venue")
    section = eng.check().sections["venue"]
    assert section.api_key.reveal() == "s3cr3t" and section.port == 9464
    assert "s3cr3t" not in repr(section)
    assert eng.config.dump()["venue"]["api_key"] == "***"


def test_a_missing_secret_is_a_config_problem(
    base_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VENUE_KEY", raising=False)
    base_config["venue"] = {"api_key": {"env": "VENUE_KEY"}, "port": "x"}
    eng = Engine.from_config(base_config, settings=PluginSettings(builtin_only=True))
    eng.register(VenuePlugin(), "venue")
    with pytest.raises(ConfigError) as err:
        eng.check()
    assert sorted(str(p) for p in err.value.problems) == [
        "config.venue.api_key: environment variable VENUE_KEY is not set",
        "config.venue.port: expected an integer, got a string ('x')",
    ]


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=8, min_value=-(10**12), max_value=10**12
    )
)
def test_decimal_strings_round_trip_exactly(value: Decimal) -> None:
    assert converter.structure(str(value), Decimal) == value


@given(st.one_of(st.text(max_size=5), st.floats(), st.booleans(), st.none()))
def test_strict_int_accepts_only_ints(value: Any) -> None:
    _, found = structure(
        {"x": value}, attrs.make_class("X", {"x": attrs.field(type=int)}), "config"
    )
    assert [p.where for p in found] == ["config.x"]


def test_dump_round_trips_through_check(base_config: dict[str, Any]) -> None:
    cfg = Engine.from_config(base_config, settings=PluginSettings(builtin_only=True)).check()
    again = Engine.from_config(cfg.dump(), settings=PluginSettings(builtin_only=True)).check()
    assert again.dump() == cfg.dump()


@pytest.mark.parametrize(
    ("section", "label"), [("metrics_stores", "metrics store"), ("exporters", "exporter")]
)
def test_unknown_metrics_components_are_refused(
    base_config: dict[str, Any], section: str, label: str
) -> None:
    base_config[section] = [{"type": "kill_switch"}]
    (line,) = problems(base_config)
    assert line.startswith(f"config.{section}[0].type: unknown {label} type 'kill_switch'")


def test_synthetic_start_is_checked_at_config_time(base_config: dict[str, Any]) -> None:
    base_config["feed"]["start"] = "yesterday-ish"
    assert problems(base_config) == [
        "config.feed.start: expected an ISO-8601 time like 2024-01-01T00:00:00Z, got 'yesterday-ish'"
    ]


def test_dump_keeps_strategy_ids_and_instruments(base_config: dict[str, Any]) -> None:
    base_config["strategies"][0].update(id="trend", instrument="BTC-USD")
    dumped = (
        Engine.from_config(base_config, settings=PluginSettings(builtin_only=True)).check().dump()
    )
    assert (
        dumped["strategies"][0]["id"] == "trend"
        and dumped["strategies"][0]["instrument"] == "BTC-USD"
    )


def test_perpetual_margins_are_checked(base_config: dict[str, Any]) -> None:
    base_config["instruments"][0].update(
        kind="perpetual", initial_margin="0.05", maintenance_margin="0.1"
    )
    assert problems(base_config) == [
        "config.instruments[0]: a perpetual needs 0 < maintenance_margin (0.1) < initial_margin (0.05)"
    ]
    base_config["instruments"][0].update(initial_margin="1.5", funding_interval="often")
    assert sorted(problems(base_config)) == [
        "config.instruments[0].funding_interval: expected an interval like 250ms, 1s, 1m, 4h or 1d, got 'often'",
        "config.instruments[0].initial_margin: must be between 0 and 1, got 1.5",
    ]
