"""The Prometheus plugin, registered into an engine as its entry point would."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from typing import Any

import engine_plugin_prometheus
import pytest
from engine_plugin_prometheus import PrometheusEndpoint
from engine_plugin_prometheus.exposition import families
from prometheus_client import CollectorRegistry, generate_latest

from engine import ConfigError, Engine, MetricKind, MetricRecord, PluginSettings


def config(**prometheus: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "engine": {"name": "prom", "initial_cash": "10000", "seed": 3},
        "instruments": [{"symbol": "ETH-USD", "tick_size": "0.01", "lot_size": "0.001"}],
        "feed": {"type": "synthetic", "interval": "1s", "start_price": "2000"},
        "strategies": [{"type": "sma_crossover", "fast": 2, "slow": 4, "quantity": "1"}],
        "prometheus": {"port": 0, **prometheus},
    }
    return cfg


def make(cfg: dict[str, Any]) -> Engine:
    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    eng.register(engine_plugin_prometheus, "prometheus")
    return eng


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def endpoint_of(eng: Engine) -> PrometheusEndpoint:
    assert eng.active_run is not None
    return next(c for _r, c in eng.active_run.started if isinstance(c, PrometheusEndpoint))


async def running(eng: Engine, **run: Any) -> tuple[asyncio.Task[Any], asyncio.Event]:
    """Start a paper run at 100x real time and wait until it is serving."""
    stop = asyncio.Event()
    task = asyncio.create_task(eng.run(stop=stop, speed=100.0, **run))
    for _ in range(500):
        if eng.active_run is not None and eng.active_run.started:
            break
        await asyncio.sleep(0.01)
    return task, stop


def test_records_become_typed_families() -> None:
    labels = (("state", "filled"),)
    records = [
        MetricRecord("engine_orders_total", MetricKind.COUNTER, labels, 3, 0),
        MetricRecord("engine_equity", MetricKind.GAUGE, (), 1234.5, 0),
        MetricRecord(
            "engine_op_seconds", MetricKind.HISTOGRAM, (), 0.5, 0, 4, ((0.1, 1), (1.0, 3))
        ),
    ]

    class Fixed:
        def collect(self) -> Any:
            return families(records, {"engine_equity": "equity, quote currency"})

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    assert "# TYPE engine_orders_total counter" in text
    assert 'engine_orders_total{state="filled"} 3.0' in text
    assert "# HELP engine_equity equity, quote currency" in text
    assert "# TYPE engine_equity gauge" in text
    assert 'engine_op_seconds_bucket{le="0.1"} 1.0' in text
    assert 'engine_op_seconds_bucket{le="1.0"} 3.0' in text
    assert 'engine_op_seconds_bucket{le="+Inf"} 4.0' in text
    assert "engine_op_seconds_count 4.0" in text
    assert "engine_op_seconds_sum 0.5" in text


async def test_paper_run_serves_metrics_and_health_then_stops_serving() -> None:
    eng = make(config())
    task, stop = await running(eng)
    url = endpoint_of(eng).endpoint.url  # type: ignore[union-attr]
    while eng.active_run.kernel.order_counts == {}:  # type: ignore[union-attr]
        await asyncio.sleep(0.01)
    status, text = await asyncio.to_thread(get, url + "/metrics")
    assert status == 200
    assert "# TYPE engine_orders_total counter" in text
    assert 'engine_orders_total{state="submitted"}' in text
    assert "# TYPE engine_equity gauge" in text
    assert 'engine_bars_total{instrument="ETH-USD"}' in text
    status, body = await asyncio.to_thread(get, url + "/health")
    document = json.loads(body)
    assert status == 200 and document["status"] == "ok"
    components = {c["component"]: c for c in document["components"]}
    assert components["trading"]["detail"] == "active"
    assert components["prometheus"]["plugin"] == "prometheus"
    assert (await asyncio.to_thread(get, url + "/nope"))[0] == 404
    stop.set()
    await task
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(get, url + "/metrics")


async def test_scrape_values_equal_the_engines_own() -> None:
    eng = make(config())
    task, stop = await running(eng, max_bars=60)
    url = endpoint_of(eng).endpoint.url  # type: ignore[union-attr]
    stop_at = asyncio.get_running_loop().time() + 30
    while eng.active_run is not None and asyncio.get_running_loop().time() < stop_at:
        kernel = eng.active_run.kernel
        _, text = await asyncio.to_thread(get, url + "/metrics")
        # read on the loop, as the scrape was: both see the same state unless a bar
        # arrived in between, so compare when the bar count did not move
        bars = kernel.streams["ETH-USD"].view.index + 1
        if f'engine_bars_total{{instrument="ETH-USD"}} {float(bars)}' in text:
            for state, n in kernel.order_counts.items():
                assert f'engine_orders_total{{state="{state.value}"}} {float(n)}' in text
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("no scrape matched a stable bar count")
    stop.set()
    await task


async def test_a_busy_port_degrades_health_but_trading_goes_on() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        eng = make(config(port=port))
        task, _stop = await running(eng, max_bars=20)
        reports = {r.component: r for r in await eng.health()}
        assert reports["prometheus"].status.value == "failing"
        assert f"127.0.0.1:{port}" in reports["prometheus"].detail
        result = await task
    assert result.bars == 20


async def test_backtests_do_not_serve_unless_asked() -> None:
    class FakeEngine:
        mode = "backtest"

    endpoint = PrometheusEndpoint(engine_plugin_prometheus.PrometheusConfig(port=0))
    await endpoint.start(FakeEngine())
    assert endpoint.endpoint is None
    assert endpoint.health()[0].detail == "not serving in backtests"
    serving = PrometheusEndpoint(engine_plugin_prometheus.PrometheusConfig(port=0, backtests=True))
    FakeEngine.metrics = None  # type: ignore[attr-defined]
    await serving.start(FakeEngine())
    assert serving.endpoint is not None
    await serving.stop()


async def test_stamina_retries_are_exposed() -> None:
    import stamina

    stamina.set_testing(True, attempts=2)
    calls = []

    @stamina.retry(on=ValueError, attempts=2)
    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("once")

    try:
        flaky()
    finally:
        stamina.set_testing(False)
    eng = make(config())
    task, stop = await running(eng)
    url = endpoint_of(eng).endpoint.url  # type: ignore[union-attr]
    _, text = await asyncio.to_thread(get, url + "/metrics")
    stop.set()
    await task
    assert "# TYPE stamina_retries_total counter" in text
    assert "flaky" in text


def test_config_section_is_validated() -> None:
    eng = make(config(port=70000, hots="x"))
    with pytest.raises(ConfigError) as err:
        eng.check()
    text = str(err.value)
    assert "config.prometheus.port: must be between 0 and 65535, got 70000" in text
    assert "config.prometheus.hots: unknown key (did you mean 'host'?)" in text


async def test_engine_health_command_reads_the_running_engine() -> None:
    from click.testing import CliRunner

    from engine.cli import main

    eng = make(config())
    task, stop = await running(eng)
    url = endpoint_of(eng).endpoint.url  # type: ignore[union-attr]
    try:
        result = await asyncio.to_thread(
            CliRunner().invoke, main, ["health", "--url", url + "/health", "--json"]
        )
    finally:
        stop.set()
        await task
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["status"] == "ok"
    assert {"engine", "trading", "prometheus"} <= {c["component"] for c in document["components"]}


def test_the_grafana_dashboard_uses_only_documented_metrics() -> None:
    import re
    from pathlib import Path

    from engine.kernel.catalogue import CATALOGUE, EMITTED

    path = Path(engine_plugin_prometheus.__file__).parents[1] / "grafana" / "engine-dashboard.json"
    dashboard = json.loads(path.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    names = {
        re.sub(r"_(bucket|sum|count)$", "", n)
        for e in exprs
        for n in re.findall(r"\b(?:engine|stamina)_[a-z_]+", e)
    }
    assert names and names <= set(CATALOGUE) | set(EMITTED), names - set(CATALOGUE) - set(EMITTED)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
