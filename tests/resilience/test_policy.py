"""The resilience policy: layer order, retries (idempotent and retryable only),
per-attempt timeouts, metrics, decorators, the registry and the stamina log hook."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import stamina
import stamina.instrumentation

from engine.errors import (
    BulkheadFull,
    CircuitOpen,
    ExecutionError,
    NetworkError,
    RateLimited,
    RiskLimitError,
)
from engine.metrics import Metrics
from engine.resilience import (
    BreakerState,
    PolicyRegistry,
    ResiliencePolicy,
    ResilienceSettings,
    get_registry,
    install_stamina_hooks,
    is_retryable,
    parse_resilience,
    resilient,
    set_registry,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class Flaky:
    """Fails with the given errors in turn, then returns ``"ok"``; records its calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.raised: list[BaseException] = []
        self.calls: list[tuple[Any, ...]] = []

    async def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append((args, kwargs))
        if self.errors:
            exc = self.errors.pop(0)
            self.raised.append(exc)
            raise exc
        return "ok"


def outcomes(metrics: Metrics, policy: str = "venue") -> dict[str, float]:
    return {
        r.label("outcome") or "": r.value
        for r in metrics.collect(0)
        if r.name == "engine_resilience_calls_total" and r.label("policy") == policy and r.value
    }


def value(metrics: Metrics, name: str, policy: str = "venue") -> float:
    (found,) = [r for r in metrics.collect(0) if r.name == name and r.label("policy") == policy]
    return found.count if name == "engine_call_seconds" else found.value


def make(clock: Any, metrics: Metrics | None = None, **settings: Any) -> ResiliencePolicy:
    return ResiliencePolicy("venue", ResilienceSettings(**settings), metrics=metrics, clock=clock)


# -- retries -----------------------------------------------------------------------------


async def test_idempotent_network_error_is_retried_up_to_the_limit_then_reraised(
    clock: Any,
) -> None:
    metrics = Metrics()
    policy = make(clock, metrics, retries=2)
    fn = Flaky(*(NetworkError(f"down {n}") for n in range(5)))
    with pytest.raises(NetworkError) as info:
        await policy.call(fn, "BTC-USD", idempotent=True)
    assert len(fn.calls) == 3  # retries + 1 attempts
    assert info.value is fn.raised[-1]  # the original error, not a wrapper
    assert value(metrics, "engine_retries_total") == 2
    assert outcomes(metrics) == {"error": 1}
    assert policy.breaker.failure_count == 1  # one call, one breaker failure


async def test_a_transient_failure_is_retried_and_the_call_succeeds(clock: Any) -> None:
    metrics = Metrics()
    policy = make(clock, metrics, retries=3)
    fn = Flaky(NetworkError("blip"), ConnectionResetError("reset"))
    assert await policy.call(fn, 1, side="buy", idempotent=True) == "ok"
    assert fn.calls == [((1,), {"side": "buy"})] * 3
    assert value(metrics, "engine_retries_total") == 2
    assert outcomes(metrics) == {"ok": 1}
    assert policy.breaker.failure_count == 0


async def test_retries_honour_attempts_outside_stamina_test_mode(clock: Any) -> None:
    policy = make(clock, retries=4, backoff_initial="0s", backoff_max="0s", jitter="0s")
    fn = Flaky(*(NetworkError("down") for _ in range(10)))
    with stamina.set_testing(False), pytest.raises(NetworkError):
        await policy.call(fn, idempotent=True)
    assert len(fn.calls) == 5


async def test_a_non_idempotent_call_is_not_retried(clock: Any) -> None:
    metrics = Metrics()
    policy = make(clock, metrics, retries=3)
    fn = Flaky(NetworkError("down"))
    with pytest.raises(NetworkError):
        await policy.call(fn, idempotent=False)
    assert len(fn.calls) == 1
    assert value(metrics, "engine_retries_total") == 0


@pytest.mark.parametrize(
    "error",
    [ValueError("bad price"), ExecutionError("rejected"), RiskLimitError("limit"), KeyError("k")],
    ids=lambda e: type(e).__name__,
)
async def test_a_non_retryable_error_is_not_retried(clock: Any, error: Exception) -> None:
    policy = make(clock, retries=3)
    fn = Flaky(error)
    with pytest.raises(type(error)) as info:
        await policy.call(fn, idempotent=True)
    assert info.value is error
    assert len(fn.calls) == 1


@pytest.mark.parametrize(
    "error",
    [NetworkError("5xx"), RateLimited("429"), TimeoutError(), ConnectionRefusedError()],
    ids=lambda e: type(e).__name__,
)
async def test_retryable_errors(clock: Any, error: Exception) -> None:
    assert is_retryable(error)
    policy = make(clock, retries=1)
    fn = Flaky(error)
    assert await policy.call(fn, idempotent=True) == "ok"
    assert len(fn.calls) == 2


def test_what_is_retryable() -> None:
    assert not is_retryable(CircuitOpen("open"))
    assert not is_retryable(BulkheadFull("full"))
    assert not is_retryable(ExecutionError("rejected"))
    assert not is_retryable(OSError("disk"))


# -- timeouts ----------------------------------------------------------------------------


async def test_a_hanging_attempt_is_interrupted_and_retried(clock: Any) -> None:
    metrics = Metrics()
    policy = make(clock, metrics, timeout="10ms", retries=1)
    started = cancelled = 0

    async def hang() -> None:
        nonlocal started, cancelled
        started += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise

    with pytest.raises(TimeoutError, match="venue: no answer within 10ms"):
        await asyncio.wait_for(policy.call(hang, idempotent=True), timeout=30)
    assert (started, cancelled) == (2, 2)
    assert value(metrics, "engine_retries_total") == 1
    assert outcomes(metrics) == {"timeout": 1}
    assert policy.breaker.failure_count == 1  # a timeout counts towards the breaker


async def test_a_timeout_of_a_non_idempotent_call_is_not_retried(clock: Any) -> None:
    policy = make(clock, timeout="10ms", retries=3)
    started = 0

    async def hang() -> None:
        nonlocal started
        started += 1
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(policy.call(hang, idempotent=False), timeout=30)
    assert started == 1


async def test_a_timeout_error_raised_by_the_function_is_its_own(clock: Any) -> None:
    policy = make(clock, retries=0)
    error = TimeoutError("venue says: timed out")
    with pytest.raises(TimeoutError) as info:
        await policy.call(Flaky(error), idempotent=True)
    assert info.value is error


# -- layers, breaker and metrics -----------------------------------------------------------


async def test_sync_functions_are_called_through_the_policy(clock: Any) -> None:
    policy = make(clock)
    assert await policy.call(lambda a, b: a * b, 6, b=7, idempotent=False) == 42


async def test_the_breaker_opens_on_failed_calls_and_moves_its_listeners(clock: Any) -> None:
    metrics = Metrics()
    policy = make(clock, metrics, retries=2, breaker_failures=2, breaker_reset="30s")
    changes: list[tuple[str, BreakerState, BreakerState]] = []
    policy.on_breaker_change(lambda name, old, new: changes.append((name, old, new)))
    gauge: list[float] = []
    policy.on_breaker_change(lambda *_: gauge.append(value(metrics, "engine_breaker_state")))
    fn = Flaky(*(NetworkError("down") for _ in range(6)))

    for _ in range(2):
        with pytest.raises(NetworkError):
            await policy.call(fn, idempotent=True)
    assert len(fn.calls) == 6  # 2 calls x 3 attempts: one breaker failure per call
    assert policy.breaker.state is OPEN
    with pytest.raises(CircuitOpen):
        await policy.call(fn, idempotent=True)
    assert len(fn.calls) == 6

    clock.advance(30)
    assert await policy.call(fn, idempotent=True) == "ok"
    assert changes == [
        ("venue", CLOSED, OPEN),
        ("venue", OPEN, HALF_OPEN),
        ("venue", HALF_OPEN, CLOSED),
    ]
    assert gauge == [2, 1, 0]
    assert value(metrics, "engine_breaker_opened_total") == 1
    assert outcomes(metrics) == {"error": 2, "circuit_open": 1, "ok": 1}
    assert value(metrics, "engine_call_seconds") == 3  # made calls only


async def test_one_trial_through_the_policy_while_others_are_rejected(clock: Any) -> None:
    policy = make(clock, breaker_failures=1, breaker_reset="5s", retries=0)
    with pytest.raises(NetworkError):
        await policy.call(Flaky(NetworkError("down")), idempotent=True)
    clock.advance(5)
    release = asyncio.Event()
    entered = 0

    async def trial() -> str:
        nonlocal entered
        entered += 1
        await release.wait()
        return "ok"

    tasks = [asyncio.create_task(policy.call(trial, idempotent=True)) for _ in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert entered == 1
    assert results.count("ok") == 1
    assert sum(isinstance(r, CircuitOpen) for r in results) == 9
    assert policy.breaker.state is CLOSED


async def test_the_rate_limiter_sits_outside_the_breaker(clock: Any) -> None:
    metrics = Metrics()
    policy = make(clock, metrics, breaker_failures=1, rate=0.001, burst=2, max_wait="0s")
    with pytest.raises(NetworkError):
        await policy.call(Flaky(NetworkError("down")), idempotent=False)
    with pytest.raises(CircuitOpen):  # takes the second token, then the breaker rejects
        await policy.call(Flaky(), idempotent=False)
    with pytest.raises(RateLimited):
        await policy.call(Flaky(), idempotent=False)
    assert outcomes(metrics) == {"error": 1, "circuit_open": 1, "rate_limited": 1}
    assert policy.breaker.failure_count == 1  # rejections are not breaker failures


async def test_the_bulkhead_sits_outside_the_rate_limiter(clock: Any) -> None:
    metrics = Metrics()
    policy = make(clock, metrics, max_concurrent=1, max_queue=0, rate=0.001, burst=2)
    release = asyncio.Event()

    async def hold() -> str:
        await release.wait()
        return "ok"

    first = asyncio.create_task(policy.call(hold, idempotent=False))
    await asyncio.sleep(0)
    for _ in range(3):  # rejected by the bulkhead before taking a token
        with pytest.raises(BulkheadFull, match="bulkhead of 'venue' is full"):
            await policy.call(hold, idempotent=False)
    release.set()
    assert await first == "ok"
    assert await policy.call(hold, idempotent=False) == "ok"  # the second token was left
    assert outcomes(metrics) == {"ok": 2, "bulkhead_full": 3}


async def test_metrics_are_optional_and_initialised_per_policy(clock: Any) -> None:
    assert await make(clock).call(Flaky(), idempotent=True) == "ok"
    metrics = Metrics()
    ResiliencePolicy("quotes", metrics=metrics, clock=clock)
    names = {(r.name, r.label("outcome")) for r in metrics.collect(0)}
    assert ("engine_resilience_calls_total", "bulkhead_full") in names
    assert ("engine_breaker_state", None) in names
    assert value(metrics, "engine_breaker_state", "quotes") == 0


# -- decorators and the registry --------------------------------------------------------


async def test_policy_wrap_decorates_async_and_sync_functions(clock: Any) -> None:
    policy = make(clock, retries=2)
    flaky = Flaky(NetworkError("blip"))

    @policy.wrap(idempotent=True)
    async def fetch_balance(account: str) -> str:
        """Balance of an account."""
        return await flaky(account)

    @policy.wrap(idempotent=False)
    def local(x: int) -> int:
        return x + 1

    assert fetch_balance.__name__ == "fetch_balance"
    assert fetch_balance.__doc__ == "Balance of an account."
    assert await fetch_balance("main") == "ok"
    assert len(flaky.calls) == 2
    assert await local(1) == 2


async def test_resilient_with_a_policy_or_a_name(clock: Any) -> None:
    policy = make(clock, retries=1)
    flaky = Flaky(NetworkError("a"), NetworkError("b"))

    @resilient(policy, idempotent=True)
    async def with_policy() -> str:
        return await flaky()

    with pytest.raises(NetworkError):
        await with_policy()
    assert len(flaky.calls) == 2

    @resilient("myvenue", idempotent=True)
    async def by_name() -> str:
        return await named()

    named = Flaky(*(NetworkError("down") for _ in range(10)))
    # resolved at call time: the registry set afterwards applies
    section = parse_resilience({"plugins": {"myvenue": {"retries": 4}}})
    registry = PolicyRegistry(section, clock=clock)
    set_registry(registry)
    with pytest.raises(NetworkError):
        await by_name()
    assert len(named.calls) == 5
    assert registry.policies["myvenue"].settings.retries == 4
    assert registry.get("myvenue") is registry.policies["myvenue"]
    assert registry.get("other").settings == section.default


async def test_without_a_registry_names_resolve_to_default_policies() -> None:
    @resilient("scratch", idempotent=False)
    def double(x: int) -> int:
        return 2 * x

    assert await double(4) == 8
    assert get_registry().policies["scratch"].settings == ResilienceSettings()


async def test_registry_breaker_listeners_reach_existing_and_future_policies(
    clock: Any,
) -> None:
    metrics = Metrics()
    section = parse_resilience({"default": {"breaker_failures": 1, "retries": 0}})
    registry = PolicyRegistry(section, metrics=metrics, clock=clock)
    early = registry.get("early")
    opened: list[str] = []
    registry.on_breaker_change(lambda name, _old, new: opened.append(name) if new is OPEN else None)
    late = registry.get("late")
    for policy in (early, late):
        with pytest.raises(NetworkError):
            await policy.call(Flaky(NetworkError("down")), idempotent=True)
    assert opened == ["early", "late"]
    assert value(metrics, "engine_breaker_opened_total", "late") == 1


# -- the stamina hook ------------------------------------------------------------------------

SECRET = "sk-live-9f8e7d6c5b4a"


@pytest.fixture
def stamina_hooks() -> Iterator[None]:
    """Restore stamina's default hooks after the test."""
    yield
    stamina.instrumentation.set_on_retry_hooks(None)


def test_stamina_default_hook_would_log_argument_values(
    stamina_hooks: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Why the hook is replaced: stamina's own logs the reprs of the arguments."""
    stamina.instrumentation.set_on_retry_hooks(None)
    flaky = Flaky(NetworkError("down"))

    @stamina.retry(on=NetworkError, attempts=2)
    async def fn(api_key: str) -> str:
        return await flaky(api_key)

    with caplog.at_level(logging.WARNING, logger="stamina"):
        assert asyncio.run(fn(api_key=SECRET)) == "ok"
    assert any(SECRET in repr(r.__dict__) for r in caplog.records)


async def test_the_installed_hook_logs_no_argument_values(
    clock: Any,
    stamina_hooks: None,
    log_lines: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_stamina_hooks()
    hooks = stamina.instrumentation.get_on_retry_hooks()
    assert len(hooks) == 2  # prometheus_client is installed: its counter is kept
    assert stamina.instrumentation.get_prometheus_counter() is not None

    policy = make(clock, retries=2)
    fn = Flaky(NetworkError(f"auth failed for {SECRET}"), NetworkError(f"again {SECRET}"))
    with caplog.at_level(logging.DEBUG):
        assert await policy.call(fn, SECRET, api_key=SECRET, idempotent=True) == "ok"
        # a plugin's own @stamina.retry goes through the same hook
        flaky = Flaky(NetworkError(SECRET))

        @stamina.retry(on=NetworkError, attempts=2)
        async def direct(key: str, token: str) -> str:
            return await flaky(key, token)

        assert await direct(SECRET, token=SECRET) == "ok"

    retries = [line for line in log_lines if "retrying" in line]
    assert retries[:2] == [
        "DEBUG retrying venue: attempt 1 failed with NetworkError, next attempt in 0.000s",
        "DEBUG retrying venue: attempt 2 failed with NetworkError, next attempt in 0.000s",
    ]
    assert len(retries) == 3
    assert retries[2].endswith(
        ".direct: attempt 1 failed with NetworkError, next attempt in 0.000s"
    )
    assert not [line for line in log_lines if SECRET in line]
    assert not [r for r in caplog.records if SECRET in repr(r.__dict__)]
