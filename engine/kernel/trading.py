"""Trading state: ACTIVE, REDUCING (only exposure-reducing orders), HALTED.

Runtime guards ask for a state on their cadence; the most severe request wins.
Moving to a more severe state happens at once. Moving back to a less severe one
happens only after it has been asked for without interruption for
``resume_after_ns`` (hysteresis), so a condition flickering around its threshold
does not flip trading on and off. Every change is kept with its reason.
"""

from __future__ import annotations

from enum import Enum

from attrs import frozen

from engine.statemachine import TransitionTable

__all__ = ["StateChange", "TradingState", "TradingStateMachine"]


class TradingState(Enum):
    """What the engine lets through the order pipeline."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"

    __hash__ = object.__hash__

    @property
    def severity(self) -> int:
        """0 for ACTIVE, 1 for REDUCING, 2 for HALTED."""
        return _SEVERITY[self]


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
_T = TradingState
TRADING_TRANSITIONS: TransitionTable[TradingState] = TransitionTable(
    "trading state",
    {
        _T.ACTIVE: [_T.REDUCING, _T.HALTED],
        _T.REDUCING: [_T.ACTIVE, _T.HALTED],
        _T.HALTED: [_T.ACTIVE, _T.REDUCING],
    },
)


@frozen
class StateChange:
    """One transition of the trading state, for the audit trail."""

    ts: int
    previous: TradingState
    state: TradingState
    reason: str
    source: str


class TradingStateMachine:
    """The trading state with hysteresis on the way back to less severe states."""

    def __init__(self, resume_after_ns: int) -> None:
        self.resume_after_ns = resume_after_ns
        self.state = TradingState.ACTIVE
        self.history: list[StateChange] = []
        #: for each state less severe than the current one: since when it (or a still
        #: less severe one) has been asked for without interruption
        self._calm_since: dict[TradingState, int] = {}

    def _move(self, state: TradingState, ts: int, reason: str, source: str) -> StateChange:
        TRADING_TRANSITIONS.check(self.state, state)
        change = StateChange(ts, self.state, state, reason, source)
        self.state = state
        self.history.append(change)
        if state.severity > change.previous.severity:
            self._calm_since.clear()  # worse again: every wait starts over
        else:  # calm periods of states less severe than the new one go on counting
            self._calm_since = {
                s: t for s, t in self._calm_since.items() if s.severity < state.severity
            }
        return change

    def request(
        self, desired: TradingState, ts: int, reason: str, source: str
    ) -> StateChange | None:
        """Ask for ``desired`` at time ``ts``; returns the change made, if any."""
        if desired.severity > self.state.severity:
            return self._move(desired, ts, reason, source)
        for state in TradingState:
            if state.severity >= self.state.severity:
                continue
            if desired.severity <= state.severity:
                self._calm_since.setdefault(state, ts)
            else:
                self._calm_since.pop(state, None)
        ready = [s for s, since in self._calm_since.items() if ts - since >= self.resume_after_ns]
        if not ready:
            return None
        target = min(ready, key=lambda s: s.severity)  # the least severe that has waited
        return self._move(target, ts, reason, source)

    def force(self, state: TradingState, ts: int, reason: str, source: str) -> StateChange | None:
        """Set the state now, without hysteresis (a manual kill switch, an operator)."""
        return None if state is self.state else self._move(state, ts, reason, source)
