"""Paper-trading latency: a bar in to an order submitted at the simulated broker.

    python -m benchmarks.paper_latency [--quick] [--events N]

``engine.run()`` (asyncio, one process) as a user runs it, through plugins and
config: a live-style feed plugin yields one bar at a time as fast as the loop takes
them and notes when each bar leaves it; a strategy orders on every bar (buy, then
sell: the position stays within the guards' limits); five guards check every order;
a broker plugin, the simulated venue, notes when each order reaches it. Latency is
the time between the two, per order, over ``--events`` bars (default 100,000).

Target 5: p50 under 50 microseconds, p99 under 250 microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from benchmarks.common import CHECKS, config, row, scenario_main

#: bar timestamp -> when the feed handed the bar over (perf_counter_ns)
ARRIVED: dict[int, int] = {}
#: bar timestamp -> when the order made on that bar reached the broker
SUBMITTED: dict[int, int] = {}


class LiveStyleFeed:
    """One bar per chunk, as a live feed delivers them, stamped when handed over."""

    def __init__(self, config: Any) -> None:
        self.bars = 0

    def load(self, instrument: Any, ctx: Any) -> Any:  # pragma: no cover - paper only
        raise NotImplementedError

    async def stream(self, instrument: Any, ctx: Any) -> AsyncIterator[Any]:
        from engine.builtins.feed_synthetic import RandomWalk, SyntheticConfig

        source = RandomWalk(SyntheticConfig(), instrument, 42, 0)
        bars = source.next(self.bars)
        clock = time.perf_counter_ns
        for k in range(self.bars):
            one = bars.slice(k, k + 1)
            ARRIVED[int(bars.ts[k])] = clock()
            yield one


class EveryBar:
    """Buys on one bar, sells on the next."""

    def on_start(self, ctx: Any) -> None:
        self.ctx = ctx
        self.long = False

    def on_bar(self, bar: Any) -> None:
        if self.long:
            self.ctx.sell(Decimal(1))
        else:
            self.ctx.buy(Decimal(1))
        self.long = not self.long


def _plugin(events: int) -> Any:
    from engine import Broker, Feed, Strategy, hookimpl
    from engine.builtins.broker_simulated import SimulatedBroker, SimulatedConfig

    class TimedBroker(SimulatedBroker):
        """The simulated venue, noting when each order reaches it."""

        def submit(self, order: Any) -> Any:
            SUBMITTED[order.created_ts] = time.perf_counter_ns()
            return super().submit(order)

    def feed(config: Any) -> LiveStyleFeed:
        f = LiveStyleFeed(config)
        f.bars = events
        return f

    class Plugin:
        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="live_style", factory=feed, config_type=None)]

        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="every_bar", factory=lambda _: EveryBar(), config_type=None)]

        @hookimpl
        def engine_brokers(self) -> list[Broker]:
            return [Broker(name="timed", factory=TimedBroker, config_type=SimulatedConfig)]

    return Plugin()


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run the paper session; the latency percentiles."""
    import numpy as np

    from engine import Engine

    events = args.events or (10_000 if args.quick else 100_000)
    cfg = config(0) | {"guards": CHECKS["guards"]}
    cfg["feed"] = {"type": "live_style"}
    cfg["broker"] = {"type": "timed", "fee_bps": "1"}
    cfg["strategies"] = [{"type": "every_bar"}]
    cfg["paper"] = {"speed": 1e12}  # no pacing: as fast as the loop takes the bars
    cfg["guards"] = [dict(g) for g in CHECKS["guards"]]
    cfg["guards"][0]["limit"] = "10"
    engine = Engine.from_config(cfg)
    engine.register(_plugin(events), "latency-benchmark")
    gc.collect()
    started = time.perf_counter()
    result = asyncio.run(engine.run(max_bars=events))
    wall = time.perf_counter() - started
    lat = np.array([SUBMITTED[t] - ARRIVED[t] for t in SUBMITTED], dtype=np.float64) / 1e3
    p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
    scenario = f"paper loop, {events:,} bars, an order per bar, 5 guards"
    note = (
        f"{len(lat):,} orders, {len(result.fill_records):,} fills, {len(result.denials)} denials;"
        f" p99.9 {p999:.0f} us, max {lat.max():.0f} us; {events / wall:,.0f} bars/s end to end"
    )
    return [
        row("5", scenario, "bar in -> order at broker, p50", round(p50, 1), "us",
            limit="< 50 us", met=bool(p50 < 50), note=note),
        row("5", scenario, "bar in -> order at broker, p99", round(p99, 1), "us",
            limit="< 250 us", met=bool(p99 < 250)),
        row("5", scenario, "every bar gave an order", len(lat) == events, "",
            met=len(lat) == events and not result.denials),
    ]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's own options."""
    parser.add_argument("--events", type=int, help="bars (default 100,000)")


def main(argv: list[str] | None = None) -> int:
    """Run and print the rows."""
    return scenario_main(__doc__ or "", measure, add_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
