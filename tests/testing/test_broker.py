"""The ``fake_broker`` fixture (engine/testing/broker.py): the simulated venue's fills,
rejects, partial fills, latency in engine time, injected network faults (through the
built-in ``faulty`` broker), and clear errors for impossible set-ups."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine import ConfigError, ExecutionError, OrderState, Side, Strategy, hookimpl
from engine.testing import EngineHarness, FakeBroker

D = Decimal
MIN = 60_000_000_000


class Script:
    """Places the orders of ``PLAN`` (bar index -> list of (method, kwargs)); records fills."""

    def __init__(self, config: Any) -> None:
        self.ctx: Any = None
        self.fills: list[Any] = []
        self.orders: list[Any] = []
        STRATEGIES.append(self)

    def on_start(self, ctx: Any) -> None:
        self.ctx = ctx

    def on_bar(self, bar: Any) -> None:
        for method, kwargs in PLAN.get(bar.index, []):
            if method == "cancel_open":
                for order in self.ctx.open_orders():
                    self.ctx.cancel(order)
            else:
                self.orders.append(getattr(self.ctx, method)(**kwargs))

    def on_fill(self, fill: Any) -> None:
        self.fills.append((fill.quantity, fill.price, self.ctx.position()))


PLAN: dict[int, list[tuple[str, dict[str, Any]]]] = {}
STRATEGIES: list[Script] = []


class ScriptPlugin:
    @hookimpl
    def engine_strategies(self) -> list[Strategy]:
        return [Strategy(name="script", factory=Script)]


PRICES = [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]


@pytest.fixture
def run(engine: EngineHarness, register_plugin: Any, scripted_market: Any) -> EngineHarness:
    PLAN.clear()
    STRATEGIES.clear()
    register_plugin(ScriptPlugin(), "script")
    scripted_market(PRICES)
    engine.strategy("script")
    return engine


def states(result: Any) -> dict[str, str]:
    return {cid: o.state.value for cid, o in result.orders.items()}


async def test_without_a_script_it_is_the_simulated_venue(
    run: EngineHarness, fake_broker: FakeBroker
) -> None:
    PLAN[1] = [("buy", {"quantity": 2})]
    PLAN[3] = [("sell", {"quantity": 2})]
    fake_broker.configure(fee_bps=D(10))
    result = await run.backtest()
    assert fake_broker.events == [
        ("accepted", "script-BTC-USD-1"),
        ("filled", "script-BTC-USD-1", D(2), D(102), D("0.204"), "script-BTC-USD-1:1"),
        ("accepted", "script-BTC-USD-2"),
        ("filled", "script-BTC-USD-2", D(2), D(104), D("0.208"), "script-BTC-USD-2:1"),
    ]
    assert [o.client_id for o in fake_broker.submitted] == ["script-BTC-USD-1", "script-BTC-USD-2"]
    assert fake_broker.venue.snapshot().positions == {}
    assert result.portfolio.fees == D("0.412")


async def test_rejects_the_orders_a_predicate_picks_the_next_n_times(
    run: EngineHarness, fake_broker: FakeBroker
) -> None:
    PLAN[1] = [("buy", {"quantity": 1})]
    PLAN[2] = [("buy", {"quantity": 1})]
    PLAN[3] = [("sell", {"quantity": 1})]
    PLAN[4] = [("sell", {"quantity": 1})]
    fake_broker.reject(times=1, reason="insufficient funds")
    fake_broker.reject(when=lambda order: order.intent.side is Side.SELL, reason="no shorts")
    result = await run.backtest()
    assert states(result) == {
        "script-BTC-USD-1": "rejected",
        "script-BTC-USD-2": "filled",
        "script-BTC-USD-3": "rejected",
        "script-BTC-USD-4": "rejected",
    }
    assert fake_broker.of("rejected") == [
        ("rejected", "script-BTC-USD-1", "insufficient funds"),
        ("rejected", "script-BTC-USD-3", "no shorts"),
        ("rejected", "script-BTC-USD-4", "no shorts"),
    ]
    assert result.orders["script-BTC-USD-1"].history[-1][2] == "insufficient funds"
    # each run starts the script afresh
    again = await run.backtest()
    assert states(again) == states(result)


async def test_partial_fills_one_part_per_bar(run: EngineHarness, fake_broker: FakeBroker) -> None:
    PLAN[1] = [("buy", {"quantity": "1"})]
    fake_broker.configure(fee_bps=D(10)).partial_fills(1, 1, 2)
    result = await run.backtest()
    (strategy,) = STRATEGIES
    # parts of 0.25, 0.25, 0.5 at the fill's price, on bars 2, 3 and 4
    assert strategy.fills == [
        (D("0.250"), D(102), D("0.250")),
        (D("0.250"), D(102), D("0.500")),
        (D("0.500"), D(102), D("1.000")),
    ]
    assert [f.ts // MIN - result.fill_records[0].ts // MIN for f in result.fill_records] == [
        0,
        1,
        2,
    ]
    assert [f.fill_id for f in result.fill_records] == [
        "script-BTC-USD-1:1.1",
        "script-BTC-USD-1:1.2",
        "script-BTC-USD-1:1.3",
    ]
    assert sum(f.fee for f in result.fill_records) == D("0.102")  # the venue's fee, whole
    order = result.orders["script-BTC-USD-1"]
    assert [s.value for _, s, _ in order.history] == [
        "submitted",
        "accepted",
        "partially_filled",
        "partially_filled",
        "filled",
    ]


async def test_the_rest_of_a_partial_fill_can_be_cancelled(
    run: EngineHarness, fake_broker: FakeBroker
) -> None:
    PLAN[1] = [("buy", {"quantity": "1"})]
    PLAN[2] = [("cancel_open", {})]
    fake_broker.partial_fills(0.5, 0.5, when=lambda order: order.intent.side is Side.BUY)
    result = await run.backtest()
    order = result.orders["script-BTC-USD-1"]
    assert order.state is OrderState.CANCELED and order.filled_quantity == D("0.500")
    assert fake_broker.kinds() == ["accepted", "filled", "canceled"]


async def test_latency_holds_orders_in_engine_time(
    run: EngineHarness, fake_broker: FakeBroker
) -> None:
    PLAN[1] = [("buy", {"quantity": 1})]
    PLAN[2] = [("buy", {"quantity": 1})]
    PLAN[4] = [("cancel_open", {})]
    fake_broker.latency("2m")
    result = await run.backtest()
    # decided at bar 1 (t=1m): the venue sees it after t=3m, so it fills at bar 4's open;
    # the second (bar 2, t=2m) is still held at bar 4 and is cancelled there
    (fill,) = result.fill_records
    assert (fill.client_id, fill.price) == ("script-BTC-USD-1", D(104))
    assert states(result) == {"script-BTC-USD-1": "filled", "script-BTC-USD-2": "canceled"}
    assert fake_broker.kinds() == ["accepted", "filled", "canceled"]


async def test_latency_works_the_same_in_a_paper_run(
    run: EngineHarness, fake_broker: FakeBroker
) -> None:
    PLAN[1] = [("buy", {"quantity": 1})]
    fake_broker.latency(3 * MIN)
    backtest = await run.backtest()
    paper = await run.paper()
    assert (
        [(f.price, f.ts) for f in paper.fill_records]
        == [(f.price, f.ts) for f in backtest.fill_records]
        == [(D(105), backtest.fill_records[0].ts)]
    )


async def test_network_faults_through_the_faulty_broker_in_a_paper_run(
    run: EngineHarness, fake_broker: FakeBroker
) -> None:
    PLAN[1] = [("buy", {"quantity": 1})]
    PLAN[3] = [("sell", {"quantity": 1})]
    fake_broker.faults(seed=1, duplicate_fill_rate=1.0, drop_ack_rate=1.0)
    result = await run.paper()
    # every fill was reported twice and no ack arrived: the engine applied each fill
    # once (the duplicate has the same fill id) and took the fill as the acceptance
    assert fake_broker.injected["duplicate_fill"] == 2 and fake_broker.injected["drop_ack"] == 2
    assert fake_broker.kinds() == ["filled", "filled", "filled", "filled"]
    assert len(result.fill_records) == 2 and result.portfolio.positions["BTC-USD"].quantity == 0
    assert states(result) == {"script-BTC-USD-1": "filled", "script-BTC-USD-2": "filled"}


async def test_submit_errors_are_retried_or_settled_by_the_engine(
    run: EngineHarness, fake_broker: FakeBroker
) -> None:
    PLAN[1] = [("buy", {"quantity": 1})]
    run.section("resilience", default={"retries": 0})
    fake_broker.faults(seed=3, error_rate=1.0)
    result = await run.paper()
    # the order never reached the venue: asked afterwards, the venue does not know it
    assert fake_broker.injected["error"] >= 1
    assert states(result) == {"script-BTC-USD-1": "rejected"}
    assert fake_broker.venue.venue.order_status("script-BTC-USD-1") is None


async def test_faults_cannot_run_in_a_backtest(run: EngineHarness, fake_broker: FakeBroker) -> None:
    PLAN[1] = [("buy", {"quantity": 1})]
    fake_broker.faults(error_rate=0.5)
    with pytest.raises(ExecutionError, match="an async broker cannot run in a backtest"):
        await run.backtest()


async def test_impossible_set_ups_are_config_errors(
    run: EngineHarness, fake_broker: FakeBroker
) -> None:
    fake_broker.configure(fee_bsp=1)
    with pytest.raises(
        ConfigError,
        match=r"fake_broker.simulated.fee_bsp: unknown key \(did you mean 'fee_bps'\?\)",
    ):
        await run.backtest()
    fake_broker._options.clear()
    fake_broker.latency("1m").faults(error_rate=0.1)
    with pytest.raises(ConfigError, match="latency\\(\\) holds orders in engine time"):
        await run.paper()
    with pytest.raises(ValueError, match="two or more positive weights"):
        fake_broker.partial_fills(1)
    with pytest.raises(ValueError, match="times must be >= 1"):
        fake_broker.reject(times=0)
