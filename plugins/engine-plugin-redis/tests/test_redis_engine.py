"""The plugin registered into engines as its entry point would be: two engine
processes sharing one Redis, failing open, secrets, config validation."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import engine_plugin_redis
import pytest
import redis
from engine_plugin_redis import read, sources
from loguru import logger

from engine import ConfigError, Engine, PluginSettings, RunResult
from engine.telemetry import secrets_of
from engine.testing.services import free_port

PLUGIN = Path(__file__).resolve().parents[1]
HOUR = 3_600_000_000_000
Config = Callable[..., dict[str, Any]]

#: one engine process: builds from the config in argv[1], backtests, prints figures
SCRIPT = r"""
import json, sys
import engine_plugin_redis
from engine import Engine, PluginSettings

cfg = json.loads(sys.argv[1])
eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
eng.register(engine_plugin_redis, "redis")
result = eng.backtest_sync()
ts = result.series["BTC-USD"].ts
print(json.dumps({
    "source": cfg["metrics_stores"][0]["source"],
    "bars": result.bars,
    "first_ts": int(ts[0]),
    "last_ts": int(ts[-1]),
    "fills": len(result.fill_records),
    "equity": float(result.final_equity),
    "orders": {state.value: n for state, n in result.order_counts.items()},
}))
"""


def make(cfg: dict[str, Any]) -> Engine:
    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    eng.register(engine_plugin_redis, "redis")
    return eng


def store_errors(result: RunResult) -> float:
    """``engine_plugin_errors_total{plugin="redis",kind="store"}`` in the result."""
    return sum(
        r.value
        for r in result.metrics
        if r.name == "engine_plugin_errors_total"
        and dict(r.labels) == {"plugin": "redis", "kind": "store"}
    )


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every loguru message during the test, formatted with its extras."""
    lines: list[str] = []
    sink = logger.add(
        lambda m: lines.append(str(m)),
        level="TRACE",
        format="{level} {name} {message} {extra} {exception}",
    )
    yield lines
    logger.remove(sink)


def failures(lines: list[str]) -> list[str]:
    return [line for line in lines if "metrics store redis failed" in line]


def hourly_buckets(first: int, last: int) -> list[int]:
    """Bucket starts written by a run with [metrics] interval and bucket both 1h: a
    collection at each hour boundary after the first bar (the first only aligns the
    schedule), then the final one at the last bar, which lands in the last hour's
    bucket and replaces its value."""
    collections = [*range(first - first % HOUR + HOUR, last + 1, HOUR), last]
    return sorted({t - t % HOUR for t in collections})


@pytest.mark.slow
def test_two_engine_processes_share_one_redis(redis_url: str, engine_config: Config) -> None:
    runs = {
        "backtest-a": engine_config(bars=3000, seed=11, source="backtest-a", bucket="1h"),
        "backtest-b": engine_config(bars=2400, seed=12, source="backtest-b", bucket="1h"),
    }
    for cfg in runs.values():
        cfg["metrics_stores"][0]["url"] = redis_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN), env.get("PYTHONPATH")]))
    procs = {  # both at once: two writers on one Redis
        source: subprocess.Popen(
            [sys.executable, "-c", SCRIPT, json.dumps(cfg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for source, cfg in runs.items()
    }
    printed = {}
    for source, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "failed" not in err, err
        printed[source] = json.loads(out.strip().splitlines()[-1])
    assert printed["backtest-a"]["bars"] == 3000 and printed["backtest-b"]["bars"] == 2400
    assert printed["backtest-a"]["equity"] != printed["backtest-b"]["equity"]

    assert sources(redis_url) == ["backtest-a", "backtest-b"]
    equity = {s.source: s for s in read(redis_url, "engine_equity")}
    fills = {s.source: s for s in read(redis_url, "engine_fills_total", {"instrument": "BTC-USD"})}
    orders: dict[str, dict[str, float]] = {}
    for s in read(redis_url, "engine_orders_total"):
        assert s.kind == "counter"
        buckets = hourly_buckets(printed[s.source]["first_ts"], printed[s.source]["last_ts"])
        assert [start for start, _ in s.points] == buckets
        orders.setdefault(s.source, {})[s.labels["state"]] = s.points[-1][1]
    assert set(equity) == set(fills) == set(orders) == set(runs)
    counts = {}
    for source, figures in printed.items():
        expected = hourly_buckets(figures["first_ts"], figures["last_ts"])
        assert [start for start, _ in equity[source].points] == expected
        assert [start for start, _ in fills[source].points] == expected
        assert equity[source].kind == "gauge" and fills[source].kind == "counter"
        assert equity[source].last == figures["equity"]
        assert fills[source].last == figures["fills"]
        assert orders[source] == figures["orders"]
        counts[source] = len(expected)
        print(
            f"{source}: printed fills={figures['fills']} equity={figures['equity']}"
            f" orders={figures['orders']}; read back {len(expected)} buckets,"
            f" fills={fills[source].last} equity={equity[source].last}"
            f" orders={orders[source]}"
        )
    # 3000 bars: collections at hours 1..49 (the final one in hour 49); 2400: 1..39
    assert counts == {"backtest-a": 49, "backtest-b": 39}


def test_an_engine_writes_what_its_result_says(redis_url: str, engine_config: Config) -> None:
    eng = make(engine_config(url=redis_url, source="inproc"))  # bucket 1m, interval 1h
    result = eng.backtest_sync()
    assert store_errors(result) == 0
    (equity,) = read(redis_url, "engine_equity")
    # 600 bars from 00:00: collections at 01:00 ... 09:00, then the final one at 09:59
    assert len(equity.points) == 10
    assert equity.points[-1] == (int(result.series["BTC-USD"].ts[-1]), float(result.final_equity))
    assert equity.key == "engine:series:engine_equity:inproc"


def test_nothing_listening_the_run_completes_and_errors_are_counted_per_collection(
    engine_config: Config, logged: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    eng = make(engine_config(bars=600, url=url))
    result = eng.backtest_sync()
    assert result.bars == 600
    # 9 collections (01:00 ... 09:00) failed before the final one's records were taken
    assert store_errors(result) == 9
    # the final one failed too: 10 in all, each counted and logged once, never per bar
    counted = eng.metrics.counter("engine_plugin_errors_total", plugin="redis", kind="store")
    assert counted.value == 10
    lines = failures(logged)
    assert len(lines) == 10
    assert all("ConnectionError" in line for line in lines), lines[0]
    assert not [r for r in caplog.records if r.name.startswith("redis")]


def test_a_server_that_never_answers_costs_the_timeout_not_the_run(
    engine_config: Config, logged: list[str]
) -> None:
    with socket.socket() as hung:  # accepts connections (backlog), never replies
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        url = f"redis://127.0.0.1:{hung.getsockname()[1]}/0"
        eng = make(engine_config(bars=600, url=url, timeout="50ms"))
        result = eng.backtest_sync()
    assert result.bars == 600
    assert store_errors(result) == 9
    lines = failures(logged)
    assert len(lines) == 10
    assert all("Timeout" in line for line in lines), lines[0]


def test_the_password_comes_from_the_environment_and_never_shows(
    password_redis: tuple[str, str],
    engine_config: Config,
    monkeypatch: pytest.MonkeyPatch,
    logged: list[str],
) -> None:
    url, password = password_redis
    monkeypatch.setenv("REDIS_TEST_PASSWORD", password)
    eng = make(engine_config(url=url, password={"env": "REDIS_TEST_PASSWORD"}, source="safe"))
    options = eng.check().components["metrics_stores"][0].options
    assert options.password.reveal() == password
    assert password not in repr(options) and password not in str(options)
    dumped = eng.config.dump()
    assert dumped["metrics_stores"][0]["password"] == "***"
    assert password not in json.dumps(dumped)
    assert password not in json.dumps(dict(eng.config.raw))  # holds {env = "..."} only
    assert secrets_of([options]) == [password]  # so the CLI redacts it from logs

    result = eng.backtest_sync()
    assert store_errors(result) == 0  # the store authenticated
    (equity,) = read(url, "engine_equity", password=password)
    assert equity.source == "safe" and equity.last == float(result.final_equity)
    with pytest.raises(redis.AuthenticationError):  # the server does require it
        read(url, "engine_equity")

    wrong = "wrong-" + password
    monkeypatch.setenv("REDIS_TEST_PASSWORD", wrong)
    result = make(engine_config(url=url, password={"env": "REDIS_TEST_PASSWORD"})).backtest_sync()
    assert store_errors(result) == 9  # fails open, like any other error
    assert len(failures(logged)) == 10
    assert all("AuthenticationError" in line for line in failures(logged))
    text = "\n".join(logged)
    assert password not in text and wrong not in text


INTERVALS = "expected an interval like 250ms, 1s, 1m, 4h or 1d"


def test_config_problems_name_their_path(engine_config: Config) -> None:
    cfg = engine_config(retention=0)
    cfg["metrics_stores"].insert(0, {"type": "memory"})
    cfg["metrics_stores"].append(
        {
            "type": "redis",
            "url": "http://127.0.0.1:6379",
            "bucket": "5x",
            "timeout": "0ms",
            "prefix": "",
            "retension": 3,
        }
    )
    cfg["metrics_stores"].append({"type": "redis", "url": "redis://:hunter2@127.0.0.1:6379/0"})
    cfg["metrics_stores"].append({"type": "redis", "url": "redis://127.0.0.1:63x79/0"})
    with pytest.raises(ConfigError) as err:
        make(cfg).check()
    problems = sorted(str(p) for p in err.value.problems)
    assert problems == sorted(
        [
            "config.metrics_stores[1].retention: must be > 0, got 0",
            "config.metrics_stores[2].url: expected a URL like redis://127.0.0.1:6379/0"
            " (schemes: redis://, rediss://, unix://), got 'http://127.0.0.1:6379'",
            f"config.metrics_stores[2].bucket: {INTERVALS}, got '5x'",
            f"config.metrics_stores[2].timeout: {INTERVALS}, got '0ms'",
            "config.metrics_stores[2].prefix: expected a non-empty prefix without spaces, got ''",
            "config.metrics_stores[2].retension: unknown key (did you mean 'retention'?)",
            "config.metrics_stores[3].url: the URL holds a password:"
            ' set password = { env = "NAME" } instead',
            "config.metrics_stores[4].url: Port could not be cast to integer value as '63x79'"
            " ('redis://127.0.0.1:63x79/0')",
        ]
    )
    assert "hunter2" not in str(err.value)


def test_the_store_is_listed_with_its_options() -> None:
    (record,) = engine_plugin_redis.engine_metrics_stores()
    assert record.name == "redis"
    assert record.config_type is engine_plugin_redis.RedisConfig
    assert record.factory is engine_plugin_redis.RedisStore
    assert logging.getLogger("redis").level == logging.NOTSET  # the plugin configures no logging
