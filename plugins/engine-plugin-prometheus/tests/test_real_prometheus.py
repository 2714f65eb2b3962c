"""A real Prometheus server scrapes a paper-trading engine; its HTTP API returns
the engine's own order counts and equity."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import engine_plugin_prometheus
import pytest
from engine_plugin_prometheus import PrometheusEndpoint

from engine import Engine, PluginSettings, Side, Strategy, hookimpl
from engine.testing.services import free_port, service_binary, wait_for_http


class RoundTrip:
    """Buys on the 3rd bar, sells on the 6th, then holds nothing: the order counts
    and the equity (all cash) stop moving while bars keep coming."""

    def __init__(self, config: None) -> None:
        self.ctx: Any = None
        self.seen = 0

    def on_start(self, ctx: Any) -> None:
        self.ctx = ctx

    def on_bar(self, bar: Any) -> None:
        self.seen += 1
        if self.seen in (3, 6):
            side = Side.BUY if self.seen == 3 else Side.SELL
            self.ctx.order(side, "0.5")


class RoundTripPlugin:
    @hookimpl
    def engine_strategies(self) -> list[Strategy]:
        return [Strategy(name="round_trip", factory=RoundTrip)]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Prometheus server scraping 127.0.0.1:<engine port> every second."""
    binary = service_binary("prometheus", "prometheus")
    engine_port, web_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: engine\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{engine_port}']\n"
    )
    url = f"http://127.0.0.1:{web_port}"
    server = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(url + "/-/ready", timeout=60)
        yield url, engine_port
    finally:
        server.terminate()
        server.wait(timeout=30)


def query(url: str, promql: str) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as reply:
        document = json.loads(reply.read())
    assert document["status"] == "success", document
    return document["data"]["result"]  # type: ignore[no-any-return]


async def test_prometheus_scrapes_the_engines_counts(prometheus: tuple[str, int]) -> None:
    url, port = prometheus
    eng = Engine.from_config(
        {
            "engine": {"name": "scraped", "initial_cash": "10000", "seed": 5},
            "instruments": [{"symbol": "ETH-USD", "tick_size": "0.01", "lot_size": "0.001"}],
            "feed": {"type": "synthetic", "interval": "1s", "start_price": "2000"},
            "broker": {"type": "simulated", "fee_bps": "2"},
            "strategies": [{"type": "round_trip"}],
            "prometheus": {"port": port},
        },
        settings=PluginSettings(builtin_only=True),
    )
    eng.register(engine_plugin_prometheus, "prometheus")
    eng.register(RoundTripPlugin(), "round_trip")
    stop = asyncio.Event()
    task = asyncio.create_task(eng.run(stop=stop, speed=20.0))
    try:
        while eng.active_run is None or len(eng.active_run.kernel.fills) < 2:
            assert not task.done(), task
            await asyncio.sleep(0.05)
        kernel = eng.active_run.kernel
        assert any(isinstance(c, PrometheusEndpoint) for _r, c in eng.active_run.started)
        expected_orders = {state.value: float(n) for state, n in kernel.order_counts.items()}
        expected_equity = float(kernel.portfolio.cash)  # flat: equity is cash
        assert expected_orders["filled"] == 2.0
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            orders = await asyncio.to_thread(query, url, "engine_orders_total")
            equity = await asyncio.to_thread(query, url, "engine_equity")
            got = {r["metric"]["state"]: float(r["value"][1]) for r in orders}
            if got == expected_orders and equity:
                break
            assert asyncio.get_running_loop().time() < deadline, (got, expected_orders)
            await asyncio.sleep(0.5)
        print(f"prometheus: engine_orders_total {got}, engine_equity {equity[0]['value'][1]}")
        print(f"engine:     orders {expected_orders}, equity {expected_equity}")
        assert {r["metric"]["job"] for r in orders} == {"engine"}
        assert float(equity[0]["value"][1]) == pytest.approx(expected_equity, abs=1e-6)
    finally:
        stop.set()
        await task
