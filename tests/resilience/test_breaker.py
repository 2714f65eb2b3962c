"""The circuit breaker: opening, one half-open trial, listeners, what counts, and
timing that depends on neither the time zone nor aiobreaker's datetime clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import aiobreaker.circuitbreaker
import aiobreaker.state
import pytest

from engine.errors import (
    BulkheadFull,
    CircuitOpen,
    ExecutionError,
    NetworkError,
    RateLimited,
)
from engine.resilience import BreakerState, CircuitBreaker

ROOT = Path(__file__).resolve().parents[2]
CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


async def fail(exc: BaseException | None = None) -> None:
    raise exc if exc is not None else NetworkError("venue down", plugin="venue")


async def ok() -> str:
    return "ok"


async def trip(breaker: CircuitBreaker) -> None:
    """Fail ``fail_max`` times: the circuit opens."""
    for _ in range(breaker.fail_max):
        with pytest.raises(NetworkError):
            await breaker.call(fail)
    assert breaker.state is OPEN


def recorder(breaker: CircuitBreaker) -> list[tuple[str, BreakerState, BreakerState]]:
    seen: list[tuple[str, BreakerState, BreakerState]] = []
    breaker.on_state_change(lambda name, old, new: seen.append((name, old, new)))
    return seen


async def test_opens_after_fail_max_consecutive_failures_and_rejects_while_open(
    clock: Any,
) -> None:
    breaker = CircuitBreaker("venue", fail_max=3, reset_timeout=30, clock=clock)
    entered = 0

    async def counted() -> None:
        nonlocal entered
        entered += 1
        raise NetworkError("venue down")

    for n in (1, 2):
        with pytest.raises(NetworkError):
            await breaker.call(counted)
        assert (breaker.state, breaker.failure_count) == (CLOSED, n)
    with pytest.raises(NetworkError):  # the third failure opens it and is raised as itself
        await breaker.call(counted)
    assert breaker.state is OPEN
    assert breaker.opened_count == 1

    clock.advance(29.9)
    for _ in range(5):
        with pytest.raises(CircuitOpen) as info:
            await breaker.call(counted)
    assert entered == 3  # rejected calls never reach the function
    assert str(info.value) == "circuit 'venue' is open (breaker=venue, retry_in=0.100s)"
    assert breaker.retry_after == pytest.approx(0.1)
    assert breaker.trial_calls == 0


async def test_a_success_resets_the_consecutive_failure_count(clock: Any) -> None:
    breaker = CircuitBreaker("venue", fail_max=3, clock=clock)
    for _ in range(5):
        for _ in range(2):
            with pytest.raises(NetworkError):
                await breaker.call(fail)
        assert await breaker.call(ok) == "ok"
        assert breaker.failure_count == 0
    assert breaker.state is CLOSED


async def test_exactly_one_trial_among_ten_concurrent_callers_and_its_success_closes(
    clock: Any,
) -> None:
    breaker = CircuitBreaker("venue", fail_max=2, reset_timeout=30, clock=clock)
    seen = recorder(breaker)
    await trip(breaker)
    clock.advance(30)

    release = asyncio.Event()
    entered = 0

    async def trial() -> str:
        nonlocal entered
        entered += 1
        await release.wait()
        return "filled"

    tasks = [asyncio.create_task(breaker.call(trial)) for _ in range(10)]
    await asyncio.sleep(0)  # every task has run up to its first suspension
    assert breaker.state is HALF_OPEN
    assert entered == 1
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert results.count("filled") == 1
    rejected = [r for r in results if isinstance(r, CircuitOpen)]
    assert len(rejected) == 9
    assert "half-open and its trial call is in flight" in str(rejected[0])
    assert entered == 1
    assert breaker.trial_calls == 1
    assert breaker.state is CLOSED
    assert breaker.failure_count == 0
    assert seen == [
        ("venue", CLOSED, OPEN),
        ("venue", OPEN, HALF_OPEN),
        ("venue", HALF_OPEN, CLOSED),
    ]


async def test_a_failed_trial_reopens_for_a_new_reset_period(clock: Any) -> None:
    breaker = CircuitBreaker("venue", fail_max=2, reset_timeout=10, clock=clock)
    seen = recorder(breaker)
    await trip(breaker)
    clock.advance(10)

    with pytest.raises(NetworkError):  # the trial's own error, not aiobreaker's
        await breaker.call(fail)
    assert breaker.state is OPEN
    assert (breaker.opened_count, breaker.trial_calls) == (2, 1)

    clock.advance(9.5)  # the new period counts from the failed trial
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    clock.advance(0.5)
    assert await breaker.call(ok) == "ok"
    assert breaker.state is CLOSED
    assert breaker.trial_calls == 2
    assert seen == [
        ("venue", CLOSED, OPEN),
        ("venue", OPEN, HALF_OPEN),
        ("venue", HALF_OPEN, OPEN),
        ("venue", OPEN, HALF_OPEN),
        ("venue", HALF_OPEN, CLOSED),
    ]


async def test_listeners_are_called_once_per_transition_and_can_be_removed(
    clock: Any, log_lines: list[str]
) -> None:
    breaker = CircuitBreaker("venue", fail_max=1, reset_timeout=1, clock=clock)
    first = recorder(breaker)
    second: list[BreakerState] = []
    remove = breaker.on_state_change(lambda _n, _o, new: second.append(new))

    def broken(_name: str, _old: BreakerState, _new: BreakerState) -> None:
        raise RuntimeError("listener bug")

    breaker.on_state_change(broken)
    await trip(breaker)
    remove()
    clock.advance(1)
    await breaker.call(ok)

    assert [new for _, _, new in first] == [OPEN, HALF_OPEN, CLOSED]
    assert second == [OPEN]
    # a failing listener is logged and never breaks the breaker
    assert sum("state listener" in line for line in log_lines) == 3
    assert breaker.state is CLOSED


async def test_an_async_listener_is_refused_and_never_left_unawaited(
    clock: Any, log_lines: list[str]
) -> None:
    breaker = CircuitBreaker("venue", fail_max=1, clock=clock)
    called = False

    async def listener(_name: str, _old: BreakerState, _new: BreakerState) -> None:
        nonlocal called
        called = True

    breaker.on_state_change(listener)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would be an error
        await trip(breaker)
    assert not called
    assert any("is async; listeners must be synchronous" in line for line in log_lines)


async def test_which_errors_count_as_failures(clock: Any) -> None:
    breaker = CircuitBreaker("venue", fail_max=2, clock=clock)
    for exc in (ExecutionError("rejected"), TimeoutError(), OSError("reset by peer")):
        with pytest.raises(type(exc)):
            await breaker.call(fail, exc)
        assert breaker.failure_count == 1
        await breaker.call(ok)

    # not a failure: the service answered (resets the count, like a success)
    with pytest.raises(NetworkError):
        await breaker.call(fail)
    with pytest.raises(ValueError):
        await breaker.call(fail, ValueError("bad price"))
    assert breaker.failure_count == 0

    # never counted, never resetting: the call was not made
    with pytest.raises(NetworkError):
        await breaker.call(fail)
    for exc in (CircuitOpen("nested"), BulkheadFull("full"), RateLimited("slow down")):
        with pytest.raises(type(exc)):
            await breaker.call(fail, exc)
    assert breaker.failure_count == 1
    assert breaker.state is CLOSED


async def test_failures_are_configurable(clock: Any) -> None:
    breaker = CircuitBreaker("svc", fail_max=1, failures=(KeyError,), clock=clock)
    with pytest.raises(NetworkError):
        await breaker.call(fail)
    assert breaker.state is CLOSED
    with pytest.raises(KeyError):
        await breaker.call(fail, KeyError("x"))
    assert breaker.state is OPEN
    # RateLimited never counts, even when configured
    never = CircuitBreaker("svc2", fail_max=1, failures=(ExecutionError,), clock=clock)
    with pytest.raises(RateLimited):
        await never.call(fail, RateLimited("429"))
    assert never.state is CLOSED


async def test_a_trial_that_was_not_made_or_was_cancelled_frees_the_trial_slot(
    clock: Any,
) -> None:
    breaker = CircuitBreaker("venue", fail_max=1, reset_timeout=5, clock=clock)
    await trip(breaker)
    clock.advance(5)

    with pytest.raises(BulkheadFull):  # no verdict: still half-open, slot free
        await breaker.call(fail, BulkheadFull("nested bulkhead"))
    assert breaker.state is HALF_OPEN

    hang = asyncio.create_task(breaker.call(asyncio.Event().wait))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    hang.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hang
    assert breaker.state is HALF_OPEN
    assert await breaker.call(ok) == "ok"
    assert breaker.state is CLOSED
    assert breaker.trial_calls == 3


async def test_an_outcome_from_before_a_state_change_is_ignored(clock: Any) -> None:
    breaker = CircuitBreaker("venue", fail_max=1, reset_timeout=5, clock=clock)
    release = asyncio.Event()

    async def slow_failure() -> None:
        await release.wait()
        raise NetworkError("late")

    slow = asyncio.create_task(breaker.call(slow_failure))  # admitted while closed
    await asyncio.sleep(0)
    await trip(breaker)
    clock.advance(5)
    await breaker.call(ok)  # the trial closes the circuit
    release.set()
    with pytest.raises(NetworkError):
        await slow
    assert breaker.state is CLOSED  # the stale failure did not reopen it
    assert breaker.failure_count == 0


async def test_sync_functions_and_arguments(clock: Any) -> None:
    breaker = CircuitBreaker("svc", fail_max=1, clock=clock)
    assert await breaker.call(lambda a, b=0: a + b, 1, b=2) == 3

    def boom() -> None:
        raise OSError("disk")

    with pytest.raises(OSError, match="disk"):
        await breaker.call(boom)
    assert breaker.state is OPEN


async def test_the_error_keeps_its_own_traceback(clock: Any) -> None:
    breaker = CircuitBreaker("venue", fail_max=1, clock=clock)
    with pytest.raises(NetworkError) as info:
        await breaker.call(fail)  # this failure opens the circuit inside aiobreaker
    frames = [f.filename for f in traceback.extract_tb(info.value.__traceback__)]
    assert not [f for f in frames if "aiobreaker" in f]
    assert frames[-1] == __file__  # raised in fail()
    assert not isinstance(info.value.__context__, aiobreaker.CircuitBreakerError)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="fail_max must be >= 1, got 0"):
        CircuitBreaker("x", fail_max=0)
    with pytest.raises(ValueError, match="reset_timeout must be >= 0"):
        CircuitBreaker("x", reset_timeout=-1)


# -- aiobreaker's datetime: deprecation warnings and time zones ------------------------

UTCNOW_WARNING = (
    "datetime.datetime.utcnow() is deprecated and scheduled for removal in a future"
    " version. Use timezone-aware objects to represent datetimes in UTC:"
    " datetime.datetime.now(datetime.UTC)."
)


class _Warning312Datetime(dt.datetime):
    """``datetime`` whose ``utcnow()`` warns as it does on Python 3.12+."""

    @classmethod
    def utcnow(cls) -> Any:
        warnings.warn(UTCNOW_WARNING, DeprecationWarning, stacklevel=2)
        return super().utcnow()


async def test_aiobreaker_utcnow_warning_is_silenced_only_around_its_calls(
    clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aiobreaker.circuitbreaker, "datetime", _Warning312Datetime)
    monkeypatch.setattr(aiobreaker.state, "datetime", _Warning312Datetime)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        # the emulation has teeth: aiobreaker's own open() now warns
        raw = aiobreaker.CircuitBreaker(fail_max=1)
        with pytest.raises(DeprecationWarning, match="utcnow"):
            raw.open()

        breaker = CircuitBreaker("venue", fail_max=1, reset_timeout=1, clock=clock)
        await trip(breaker)  # aiobreaker.open() -> utcnow(): filtered at the call site
        clock.advance(1)
        with pytest.raises(NetworkError):
            await breaker.call(fail)  # failed trial: open() again
        clock.advance(1)
        await breaker.call(ok)
        assert breaker.state is CLOSED

        # the filter did not outlive the breaker's calls
        with pytest.raises(DeprecationWarning):
            warnings.warn(UTCNOW_WARNING, DeprecationWarning, stacklevel=1)


#: The breaker scenario run in a subprocess: on Python < 3.12 it first makes
#: aiobreaker's ``utcnow()`` warn as 3.12+ does, so ``-W error`` has something to catch.
SCENARIO = """
import asyncio, datetime, json, sys, warnings

if sys.version_info < (3, 12):
    import aiobreaker.circuitbreaker, aiobreaker.state

    class Datetime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            warnings.warn("datetime.datetime.utcnow() is deprecated and scheduled for removal",
                          DeprecationWarning, stacklevel=2)
            return super().utcnow()

    aiobreaker.circuitbreaker.datetime = aiobreaker.state.datetime = Datetime

from engine.errors import CircuitOpen, NetworkError
from engine.resilience import CircuitBreaker


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


async def main():
    clock = Clock()
    breaker = CircuitBreaker("venue", fail_max=2, reset_timeout=30, clock=clock)
    transitions = []
    breaker.on_state_change(lambda n, o, new: transitions.append(f"{o}->{new}"))
    steps = []

    def step(label, result):
        steps.append([label, result, breaker.state.value, breaker.trial_calls,
                      breaker.failure_count, breaker.opened_count])

    async def down():
        raise NetworkError("down")

    async def up():
        await asyncio.sleep(0)
        return "ok"

    async def attempt(label, fn, n=1):
        results = await asyncio.gather(*(breaker.call(fn) for _ in range(n)),
                                       return_exceptions=True)
        step(label, sorted(r if isinstance(r, str) else type(r).__name__ for r in results))

    await attempt("fail-1", down)
    await attempt("fail-2", down)
    await attempt("open", up, 3)
    clock.now += 29.999
    await attempt("still-open", up)
    clock.now += 0.001
    await attempt("trial-fails", down, 10)
    clock.now += 15
    await attempt("reopened", up)
    clock.now += 15
    await attempt("trial-succeeds", up, 10)
    await attempt("closed", up, 2)
    print(json.dumps({"steps": steps, "transitions": transitions}))


asyncio.run(main())
"""


def run_scenario(tz: str) -> dict[str, Any]:
    env = {**os.environ, "TZ": tz}
    proc = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", SCENARIO],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_same_states_in_every_time_zone_with_deprecation_warnings_as_errors() -> None:
    runs = {tz: run_scenario(tz) for tz in ("UTC", "Asia/Tokyo", "America/New_York")}
    utc = runs["UTC"]
    assert runs["Asia/Tokyo"] == utc
    assert runs["America/New_York"] == utc
    assert utc["transitions"] == [
        "closed->open",
        "open->half_open",
        "half_open->open",
        "open->half_open",
        "half_open->closed",
    ]
    # [label, sorted results, state, trial calls, failure count, opened count]
    assert utc["steps"] == [
        ["fail-1", ["NetworkError"], "closed", 0, 1, 0],
        ["fail-2", ["NetworkError"], "open", 0, 2, 1],
        ["open", ["CircuitOpen"] * 3, "open", 0, 2, 1],
        ["still-open", ["CircuitOpen"], "open", 0, 2, 1],
        ["trial-fails", ["CircuitOpen"] * 9 + ["NetworkError"], "open", 1, 3, 2],
        ["reopened", ["CircuitOpen"], "open", 1, 3, 2],
        ["trial-succeeds", ["CircuitOpen"] * 9 + ["ok"], "closed", 2, 0, 2],
        ["closed", ["ok", "ok"], "closed", 2, 0, 2],
    ]
