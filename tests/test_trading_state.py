"""The trading-state machine (engine/kernel/trading.py): more severe states at
once, less severe ones only after being asked for without interruption for
``resume_after_ns``; and how the kernel's gate and runtime guards use it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scripted import Script, buy

from engine import BarSeries, Engine, Feed, Instrument, PluginSettings, Strategy, hookimpl
from engine.kernel.trading import (
    TRADING_TRANSITIONS,
    StateChange,
    TradingState,
    TradingStateMachine,
)

D = Decimal
MIN = 60_000_000_000
A, R, H = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED

# -- the state machine ------------------------------------------------------------------------


def test_starts_active_with_no_history_and_severities_order_the_states() -> None:
    sm = TradingStateMachine(10)
    assert sm.state is A and sm.history == []
    assert [s.severity for s in (A, R, H)] == [0, 1, 2]
    assert [s.value for s in TradingState] == ["active", "reducing", "halted"]


def test_every_move_between_distinct_states_is_legal() -> None:
    for a in TradingState:
        assert TRADING_TRANSITIONS.allowed(a) == frozenset(TradingState) - {a}
        for b in TradingState:
            if a is not b:
                TRADING_TRANSITIONS.check(a, b)


def test_more_severe_states_are_taken_at_once() -> None:
    sm = TradingStateMachine(10**12)
    first = sm.request(R, 5, "drawdown.reduce: 1%", "drawdown")
    assert first == StateChange(5, A, R, "drawdown.reduce: 1%", "drawdown")
    second = sm.request(H, 5, "daily_loss.limit", "daily_loss")
    assert second == StateChange(5, R, H, "daily_loss.limit", "daily_loss")
    assert sm.state is H and sm.history == [first, second]
    direct = TradingStateMachine(10)
    assert direct.request(H, 0, "x", "y") == StateChange(0, A, H, "x", "y")


def test_asking_for_the_current_state_changes_nothing() -> None:
    sm = TradingStateMachine(0)
    assert sm.request(A, 0, "fine", "engine") is None
    sm.request(R, 1, "r", "g")
    assert sm.request(R, 2, "r", "g") is None
    assert sm.state is R and len(sm.history) == 1


def test_less_severe_states_wait_for_resume_after() -> None:
    sm = TradingStateMachine(10)
    sm.request(R, 0, "r", "g")
    assert sm.request(A, 5, "calm", "engine") is None  # calm from 5
    assert sm.request(A, 14, "calm", "engine") is None  # 9 < 10
    assert sm.state is R
    change = sm.request(A, 15, "all runtime guards pass", "engine")
    assert change == StateChange(15, R, A, "all runtime guards pass", "engine")
    assert sm.state is A


def test_asking_for_the_current_state_again_restarts_the_wait() -> None:
    sm = TradingStateMachine(10)
    sm.request(R, 0, "r", "g")
    sm.request(A, 1, "", "")
    sm.request(R, 5, "r", "g")  # the condition is back: interrupted
    sm.request(A, 12, "", "")
    assert sm.request(A, 21, "", "") is None  # 9 since 12
    assert sm.request(A, 22, "", "") is not None
    assert [(c.ts, c.state) for c in sm.history] == [(0, R), (22, A)]


def test_a_more_severe_request_during_the_wait_moves_at_once_and_restarts_it() -> None:
    sm = TradingStateMachine(10)
    sm.request(R, 0, "", "")
    sm.request(A, 1, "", "")
    assert sm.request(H, 5, "h", "g") == StateChange(5, R, H, "h", "g")
    sm.request(A, 6, "", "")
    assert sm.request(A, 15, "", "") is None
    assert sm.request(A, 16, "", "") == StateChange(16, H, A, "", "")


def test_halted_back_to_reducing_then_active() -> None:
    sm = TradingStateMachine(10)
    sm.request(H, 0, "", "")
    sm.request(R, 1, "", "")
    assert sm.request(R, 11, "r", "g") == StateChange(11, H, R, "r", "g")
    sm.request(A, 12, "", "")
    assert sm.request(A, 21, "", "") is None
    assert sm.request(A, 22, "", "") == StateChange(22, R, A, "", "")


def test_zero_resume_after_moves_back_on_the_first_request() -> None:
    sm = TradingStateMachine(0)
    sm.request(H, 0, "", "")
    assert sm.request(A, 0, "ok", "engine") == StateChange(0, H, A, "ok", "engine")


def test_a_less_severe_state_needs_its_own_uninterrupted_period() -> None:
    # HALTED; from t=1 the guards ask for REDUCING, from t=6 for ACTIVE. At t=11
    # REDUCING-or-better has been asked for 10, but ACTIVE only for 5: trading
    # must not be ACTIVE yet (it may be REDUCING).
    sm = TradingStateMachine(10)
    sm.request(H, 0, "", "")
    sm.request(R, 1, "drawdown.reduce", "drawdown")
    sm.request(A, 6, "all runtime guards pass", "engine")
    sm.request(A, 11, "all runtime guards pass", "engine")
    assert sm.state is not A, sm.history
    for t in range(12, 27):
        sm.request(A, t, "all runtime guards pass", "engine")
    assert sm.state is A


def test_force_moves_at_once_both_ways_and_restarts_the_wait() -> None:
    sm = TradingStateMachine(10)
    assert sm.force(H, 3, "operator stop", "operator") == StateChange(
        3, A, H, "operator stop", "operator"
    )
    assert sm.force(H, 4, "again", "operator") is None
    assert sm.force(A, 5, "operator go", "operator") == StateChange(
        5, H, A, "operator go", "operator"
    )
    sm.request(R, 6, "", "")
    sm.request(A, 7, "", "")  # calm from 7
    sm.force(H, 8, "stop", "operator")
    sm.request(A, 9, "", "")  # calm again from 9, not 7
    assert sm.request(A, 17, "", "") is None
    assert sm.request(A, 19, "", "") is not None


STATES = st.sampled_from(list(TradingState))


@settings(max_examples=400, deadline=None)
@given(
    resume=st.integers(0, 12),
    requests=st.lists(st.tuples(st.integers(0, 6), STATES), min_size=1, max_size=40),
)
def test_transitions_respect_hysteresis(
    resume: int, requests: list[tuple[int, TradingState]]
) -> None:
    sm = TradingStateMachine(resume)
    log: list[tuple[int, TradingState]] = []
    t = 0
    for dt, desired in requests:
        t += dt
        before = sm.state
        change = sm.request(desired, t, f"want {desired.value}", "guard")
        log.append((t, desired))
        if desired.severity > before.severity:
            # more severe: at once
            assert change == StateChange(t, before, desired, f"want {desired.value}", "guard")
        elif desired is before:
            assert change is None
        elif change is not None:
            # less severe: only after that state (or a lower one) was asked for
            # without interruption for at least resume_after
            assert change.previous is before and change.ts == t
            assert change.state.severity < before.severity
            k = len(log)
            while k > 0 and log[k - 1][1].severity <= change.state.severity:
                k -= 1
            since = log[k][0]
            assert t - since >= resume, (change, log)
        assert sm.state is (before if change is None else change.state)
        assert sm.state.severity >= desired.severity
        assert sm.history[-1:] == ([change] if change is not None else sm.history[-1:])


# -- with the kernel: runtime guards and the order gate ---------------------------------------

Step = tuple[str, tuple[Any, ...], dict[str, Any]]


class Bars:
    def __init__(self, closes: list[float]) -> None:
        self.closes = closes

    def load(self, instrument: Instrument, ctx: Any) -> BarSeries:
        c = self.closes
        return BarSeries.from_arrays(
            instrument, [MIN * k for k in range(len(c))], c, c, c, c, [1.0] * len(c)
        )


def run(
    steps: dict[int, list[Step]], closes: list[float], config: dict[str, Any]
) -> tuple[Any, Script]:
    script = Script(steps)

    class Plugin:
        @hookimpl
        def engine_strategies(self) -> list[Strategy]:
            return [Strategy(name="script", factory=lambda _: script)]

        @hookimpl
        def engine_feeds(self) -> list[Feed]:
            return [Feed(name="bars", factory=lambda _: Bars(closes))]

    cfg = {
        "engine": {"initial_cash": "10000"},
        "instruments": [{"symbol": "X", "tick_size": "0.01"}],
        "feed": {"type": "bars"},
        "strategies": [{"type": "script"}],
        **config,
    }
    eng = Engine.from_config(cfg, settings=PluginSettings(builtin_only=True))
    eng.register(Plugin(), "test-plugin")
    return eng.backtest_sync(), script


def changes(result: Any) -> list[tuple[float, TradingState, TradingState, str]]:
    return [(c.ts / MIN, c.previous, c.state, c.reason) for c in result.state_changes]


DRAWDOWN_1PCT = "drawdown.reduce: drawdown 1.00% >= 1.00%"


def test_a_flickering_condition_restarts_the_wait_in_a_backtest() -> None:
    # long 10 at 100 on 10000: every close at 90 is a 1% drawdown (REDUCING), every
    # close at 100 none. The 90 at minute 6 interrupts the calm that began at
    # minute 3, so ACTIVE comes 5 minutes after minute 7, not after minute 3.
    closes = [100, 100, 90, 100, 100, 100, 90, *[100] * 8]
    result, script = run(
        {0: [buy(10)], 8: [buy()], 12: [buy()], 13: [buy()]},
        closes,
        {
            "runtime_guards": [{"type": "drawdown", "reduce_at": 0.01, "cadence": "1m"}],
            "trading": {"resume_after": "5m"},
        },
    )
    assert changes(result) == [
        (2, A, R, DRAWDOWN_1PCT),
        (12, R, A, "all runtime guards pass"),
    ]
    # strategies act before the runtime guards at each bar: minute 12's buy is denied
    assert [(d.ts / MIN, d.reason) for d in result.denials] == [
        (8, "trading_state.reducing"),
        (12, "trading_state.reducing"),
    ]
    assert [f.ts / MIN for f in result.fill_records] == [1, 14]
    assert [o is None for o in script.orders] == [False, True, True, False]


def test_resume_after_defaults_to_15_minutes() -> None:
    result, _ = run(
        {0: [buy(10)]},
        [100, 100, 90, *[100] * 17],
        {"runtime_guards": [{"type": "drawdown", "reduce_at": 0.01, "cadence": "1m"}]},
    )
    assert changes(result) == [
        (2, A, R, DRAWDOWN_1PCT),
        (18, R, A, "all runtime guards pass"),
    ]


def test_active_only_after_active_was_asked_for_resume_after_in_a_backtest() -> None:
    # long 100 at 100 on 10000: 96 is a 4% drawdown (HALTED at 3%), 98 is 2% (REDUCING).
    # ACTIVE is asked for from minute 3, REDUCING again at minute 5, ACTIVE from
    # minute 6: with resume_after 5m trading may not be ACTIVE before minute 11.
    closes = [100, 100, 96, 100, 100, 98, *[100] * 10]
    result, _ = run(
        {0: [buy(100)]},
        closes,
        {
            "runtime_guards": [
                {"type": "drawdown", "reduce_at": 0.01, "halt_at": 0.03, "cadence": "1m"}
            ],
            "trading": {"resume_after": "5m"},
        },
    )
    assert changes(result)[0] == (2, A, H, "drawdown.halt: drawdown 4.00% >= 3.00%")
    early = [c for c in result.state_changes if c.state is A and c.ts < 11 * MIN]
    assert early == [], early
    assert result.state_changes[-1].state is A


def test_an_operator_forces_the_state_without_hysteresis() -> None:
    def force(state: TradingState, reason: str) -> Step:
        return ("call", (lambda ctx: ctx._kernel.set_trading_state(state, reason),), {})

    result, script = run(
        {1: [force(H, "operator stop")], 2: [buy()], 3: [force(A, "operator go"), buy()]},
        [100] * 5,
        {"trading": {"resume_after": "1h"}},
    )
    assert [(c.ts / MIN, c.state, c.reason, c.source) for c in result.state_changes] == [
        (1, H, "operator stop", "operator"),
        (3, A, "operator go", "operator"),
    ]
    assert [(d.reason, d.message) for d in result.denials] == [
        ("trading_state.halted", "trading is halted (operator stop)")
    ]
    assert script.orders[0] is None and script.orders[1] is not None
    assert [f.quantity for f in result.fill_records] == [D(1)]
