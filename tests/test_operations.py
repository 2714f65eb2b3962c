"""Multi-step operations: brackets and batches placed as one, rolled back when a leg
is refused, one-cancels-other once placed, compensated after a crash."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from pathlib import Path
from typing import Any

from test_kernel import FLAT, run

from engine import Engine, OrderIntent, OrderState, PluginSettings, Side

D = Decimal
RISING = [
    (100.0, 101.0, 99.0, 100.0),
    (100.0, 101.0, 99.5, 100.5),
    (101.0, 106.0, 100.5, 105.0),
    (105.0, 105.5, 104.0, 104.5),
]


def bracket(**kw: Any) -> Any:
    return ("bracket", (Side.BUY, 1), {"take_profit": "105", "stop_loss": "96", **kw})


def states(script: Any, op: Any) -> list[str]:
    orders = {o.client_id: o for o in script.ctx._kernel.orders.values()}
    return [orders[cid].state.value for cid in op.legs]


def test_a_bracket_is_placed_and_the_take_profit_cancels_the_stop() -> None:
    result, script = run({0: [bracket()]}, {"X": RISING})
    (op,) = script.orders
    assert op.kind == "bracket" and op.state == "completed" and op.ok
    assert states(script, op) == ["filled", "filled", "canceled"]
    entry, take = result.fill_records
    assert (entry.price, take.price) == (D("100.00"), D("105.00"))
    assert result.portfolio.positions["X"].quantity == 0


def test_the_stop_loss_fills_first_on_a_fall() -> None:
    result, script = run({0: [bracket(stop_loss="97")]}, {"X": FLAT})
    (op,) = script.orders
    assert states(script, op) == ["filled", "canceled", "filled"]
    assert [f.price for f in result.fill_records] == [D("102.00"), D("97.00")]


def test_a_refused_leg_rolls_back_the_placed_ones() -> None:
    guard = {"guards": [{"type": "max_order_notional", "limit": "150"}]}
    # the entry (~100) passes; the take-profit at 300 is over the notional limit
    result, script = run({0: [bracket(take_profit="300")]}, {"X": FLAT}, config=guard)
    (op,) = script.orders
    assert op.state == "rolled_back" and op.reason == "leg 2 denied" and not op.ok
    assert states(script, op) == ["canceled"]  # the entry was cancelled: nothing left open
    assert not result.fill_records


def test_a_batch_is_all_or_nothing() -> None:
    def intents(second: str) -> list[OrderIntent]:
        return [
            OrderIntent("script", "X", Side.BUY, D(1)),
            OrderIntent("script", "X", Side.BUY, D(second)),
        ]

    guard = {"guards": [{"type": "max_position", "limit": "1.5"}]}
    result, script = run(
        {0: [("batch", (intents("0.25"),), {})], 1: [("batch", (intents("5"),), {})]},
        {"X": FLAT},
        config={**guard, "instruments": [{"symbol": "X", "tick_size": "0.01", "lot_size": "0.01"}]},
    )
    placed, refused = script.orders
    assert placed.state == "placed" and len(placed.legs) == 2
    assert refused.state == "rolled_back" and refused.reason == "leg 2 denied"
    assert result.portfolio.positions["X"].quantity == D("1.25")


def test_an_interrupted_operation_is_compensated_on_restart(tmp_path: Path) -> None:
    journal = {"type": "sqlite", "path": str(tmp_path / "j.db")}
    config: dict[str, Any] = {
        "instruments": [{"symbol": "X", "tick_size": "0.01"}],
        "feed": {"type": "synthetic", "bars": 50, "interval": "1s", "start_price": "100"},
        "strategies": [{"type": "sma_crossover"}],
        "broker": {"type": "simulated", "state": str(tmp_path / "venue.db")},
        "journal": journal,
    }

    async def crash_mid_bracket() -> None:
        eng = Engine.from_config(config, settings=PluginSettings(builtin_only=True))
        run_ = await eng._build("paper")
        eng._open_journal(run_, durable=True)
        kernel = run_.kernel
        ctx = kernel.contexts["sma_crossover"]
        legs = iter([True, False])  # the process dies before the second leg is placed

        def submit(intent: OrderIntent) -> Any:
            if not next(legs):
                kernel.journal.store.commit()
                raise SystemExit("killed")
            return kernel.submit(intent)

        with contextlib.suppress(SystemExit):  # no clean shutdown: only what was committed
            kernel.operations.place("bracket", "sma_crossover", ctx_bracket(ctx), submit)

    asyncio.run(crash_mid_bracket())
    eng = Engine.from_config(config, settings=PluginSettings(builtin_only=True))

    async def restart() -> Any:
        run_ = await eng._build("paper")
        eng._open_journal(run_, durable=True)
        await eng._resume(run_, {})
        return run_.kernel

    kernel = asyncio.run(restart())
    (op,) = kernel.operations.operations.values()
    assert op.state == "rolled_back" and op.reason == "interrupted by a restart: compensated"
    assert [kernel.orders[c].state for c in op.legs] == [OrderState.CANCELED]


def ctx_bracket(ctx: Any) -> list[OrderIntent]:
    from engine.kernel.operations import bracket_intents

    return bracket_intents(ctx.id, ctx.symbol, Side.BUY, D(1), D(200), D(50), D(90))
