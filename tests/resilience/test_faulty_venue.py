"""A paper run against the `faulty` venue: 20% broker errors and 5% timeouts (and
2% dropped acks, 2% duplicated fills) over thousands of orders, then a 30-second
outage. Every intent ends in a terminal
state, nothing is duplicated at the venue, retries and breaker openings are
counted, and the outage halts trading until exactly one half-open trial succeeds."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from engine import Engine, OrderState, PluginSettings, Side, Strategy, TradingState, hookimpl

BARS = 7500
OUTAGE_START = 4000  # engine seconds after the first bar (bars are one second apart)


class PingPong:
    """An order every bar, buy and sell in turn, for ``BARS - 1000`` bars; then it
    waits for its last orders to settle (retries of a timed-out submit run on the
    wall clock, so how many bars that takes depends on the machine's load) and stops
    the run (``done``)."""

    def __init__(self, config: Any) -> None:
        self.n = 0
        self.intents = 0
        self.ctx: Any = None
        self.done = asyncio.Event()

    def on_start(self, ctx: Any) -> None:
        self.ctx = ctx

    def on_bar(self, bar: Any) -> None:
        self.n += 1
        if self.n > BARS - 1000:
            if self.n >= BARS and not self.ctx.open_order_count():
                self.done.set()
            return
        self.intents += 1
        self.ctx.order(Side.BUY if self.n % 2 else Side.SELL, 1)


class Plugin:
    def __init__(self) -> None:
        self.strategy: PingPong | None = None

    @hookimpl
    def engine_strategies(self) -> list[Strategy]:
        def build(config: Any) -> PingPong:
            self.strategy = PingPong(config)
            return self.strategy

        return [Strategy(name="ping_pong", factory=build)]


def config() -> dict[str, Any]:
    return {
        "engine": {"name": "faults", "initial_cash": "1000000", "seed": 3},
        "instruments": [{"symbol": "BTC-USD", "tick_size": "0.01", "lot_size": "0.001"}],
        "feed": {"type": "synthetic", "interval": "1s", "start_price": "100"},
        "broker": {
            "type": "faulty",
            "seed": 11,
            "error_rate": 0.2,
            "timeout_rate": 0.05,
            "drop_ack_rate": 0.02,
            "duplicate_fill_rate": 0.02,
            "outages": [{"start": f"{OUTAGE_START}s", "duration": "30s"}],
        },
        "strategies": [{"type": "ping_pong"}],
        "resilience": {
            "plugins": {
                "faulty": {
                    "timeout": "20ms",
                    "retries": 3,
                    "backoff_initial": "1ms",
                    "backoff_max": "4ms",
                    "jitter": "0s",
                    "breaker_failures": 3,
                    "breaker_reset": "45s",  # engine time: past the outage's end
                    "max_concurrent": 64,
                    "max_queue": 256,
                }
            }
        },
    }


def metric(result: Any, name: str, **labels: str) -> float:
    return sum(
        r.value
        for r in result.metrics
        if r.name == name and all(r.label(k) == v for k, v in labels.items())
    )


async def test_faults_and_an_outage_lose_and_duplicate_nothing() -> None:
    plugin = Plugin()
    eng = Engine.from_config(config(), settings=PluginSettings(builtin_only=True))
    eng.register(plugin, "ping-pong")
    venue_box: list[Any] = []

    async def watch() -> None:
        while eng.active_run is None:
            await asyncio.sleep(0.001)
        venue_box.append(eng.active_run.kernel.broker)

    async def stop_when_settled() -> None:
        while plugin.strategy is None:
            await asyncio.sleep(0.001)
        await plugin.strategy.done.wait()
        stop.set()

    stop = asyncio.Event()
    watcher = asyncio.create_task(watch())
    stopper = asyncio.create_task(stop_when_settled())
    # at most 3x the bars: a run whose orders never settle fails the checks below
    result = await eng.run(speed=4_000.0, max_bars=3 * BARS, stop=stop)
    await watcher
    stopper.cancel()
    guarded = venue_box[0]
    faulty = guarded.venue
    strategy = plugin.strategy
    assert strategy is not None

    states = Counter(o.state for o in result.orders.values())
    open_orders = [o for o in result.orders.values() if o.is_open]
    injected = dict(faulty.injected)
    print(
        f"intents {strategy.intents}; orders by state { {s.value: n for s, n in states.items()} }"
    )
    print(
        f"injected {injected}; probes {guarded.probes}; trials {guarded.policy.breaker.trial_calls}"
    )
    print(
        f"retries {metric(result, 'engine_retries_total')};"
        f" breaker opened {metric(result, 'engine_breaker_opened_total')}"
    )
    assert strategy.intents >= 5000
    assert len(result.orders) == strategy.intents  # every intent became one order
    assert not open_orders, [(o.client_id, o.state) for o in open_orders]
    assert set(states) <= {OrderState.FILLED, OrderState.REJECTED, OrderState.DENIED}
    # nothing duplicated at the venue, nothing lost: its books equal ours
    venue = faulty.venue
    snap = venue.snapshot()
    assert len({o.client_id for o in snap.orders}) == len(snap.orders)
    assert len({f.fill_id for f in snap.fills}) == len(snap.fills)
    assert sorted(f.fill_id for f in result.fill_records) == sorted(f.fill_id for f in snap.fills)
    assert venue.positions().get("BTC-USD", 0) == result.portfolio.positions["BTC-USD"].quantity
    assert injected["error"] > 800 and injected["timeout"] > 150 and injected["outage"] > 0
    assert injected["drop_ack"] > 50 and injected["duplicate_fill"] > 50
    assert (
        metric(result, "engine_ignored_fills_total", reason="duplicate")
        == injected["duplicate_fill"]
    )
    # counted in metrics
    assert metric(result, "engine_retries_total", policy="faulty") > 500
    assert metric(result, "engine_breaker_opened_total", policy="faulty") >= 1
    # the outage: breaker open -> halted; one trial closes it -> active again
    moves = [(c.state, c.reason) for c in result.state_changes]
    assert (TradingState.HALTED, "circuit breaker faulty is open") in moves
    assert moves[-1] == (TradingState.ACTIVE, "circuit breaker faulty closed")
    assert guarded.policy.breaker.trial_calls == 1
    denied = [d for d in result.denials if d.reason == "trading_state.halted"]
    assert denied  # intents during the outage were refused, not sent
