"""The resilience policy: one object per plugin (or external service) through which
every call to a broker or external service goes.

From the outside in, a call passes::

    bulkhead -> rate limiter -> circuit breaker -> retries -> per-attempt timeout -> fn

* the **bulkhead** (:class:`~engine.resilience.limits.Bulkhead`) rejects at once
  when ``max_concurrent`` calls are in flight and ``max_queue`` wait;
* the **rate limiter** (:class:`~engine.resilience.limits.RateLimiter`) waits for a
  token up to ``max_wait``, then refuses;
* the **circuit breaker** (:class:`~engine.resilience.breaker.CircuitBreaker`)
  counts one failure per call (after its retries), rejects while open and lets one
  trial through after ``breaker_reset``;
* **retries** (stamina) happen only for ``idempotent=True`` calls and only for
  errors whose class has ``recovery is Recovery.RETRY``
  (:class:`~engine.errors.NetworkError`, :class:`~engine.errors.RateLimited`) or
  that are ``TimeoutError``/``ConnectionError``; the last error is re-raised as it
  was;
* the **timeout** (``asyncio.timeout``) cancels each attempt that has not answered
  within ``timeout``. A synchronous ``fn`` runs on the event loop and cannot be
  interrupted: keep blocking work out of it.

Plugin authors decorate their own calls with :meth:`ResiliencePolicy.wrap` or
:func:`resilient`.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar, overload

import stamina
from loguru import logger
from stamina.instrumentation import (
    PrometheusOnRetryHook,
    RetryDetails,
    RetryHook,
    RetryHookFactory,
    set_on_retry_hooks,
)

from engine.aio import maybe_await
from engine.errors import BulkheadFull, CircuitOpen, EngineError, RateLimited, Recovery
from engine.metrics import CounterHandle, GaugeHandle, HistogramHandle, Metrics
from engine.resilience.breaker import (
    DEFAULT_FAILURES,
    BreakerState,
    CircuitBreaker,
    StateListener,
)
from engine.resilience.limits import Bulkhead, RateLimiter
from engine.resilience.settings import ResilienceSection, ResilienceSettings

__all__ = [
    "BREAKER_STATE_VALUES",
    "OUTCOMES",
    "PolicyRegistry",
    "ResiliencePolicy",
    "ResilientDecorator",
    "get_registry",
    "install_stamina_hooks",
    "is_retryable",
    "resilient",
    "set_registry",
]

P = ParamSpec("P")
T = TypeVar("T")

#: ``outcome`` label values of ``engine_resilience_calls_total``.
OUTCOMES = ("ok", "error", "timeout", "circuit_open", "rate_limited", "bulkhead_full")
#: ``engine_breaker_state`` gauge value per breaker state.
BREAKER_STATE_VALUES = {
    BreakerState.CLOSED: 0.0,
    BreakerState.HALF_OPEN: 1.0,
    BreakerState.OPEN: 2.0,
}
#: bucket upper bounds of ``engine_call_seconds``
_CALL_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

#: name of the policy whose retry loop is running (read by the stamina log hook)
_CURRENT_POLICY: ContextVar[str | None] = ContextVar("engine_resilience_policy", default=None)


def is_retryable(exc: BaseException) -> bool:
    """True for errors worth another attempt of an idempotent call: engine errors
    whose class has ``recovery is Recovery.RETRY``, ``TimeoutError`` and
    ``ConnectionError``."""
    if isinstance(exc, EngineError):
        return type(exc).recovery is Recovery.RETRY
    return isinstance(exc, TimeoutError | ConnectionError)


def _outcome(exc: BaseException) -> str | None:
    """The ``outcome`` label for a call that raised ``exc`` (None: not counted)."""
    if isinstance(exc, BulkheadFull):
        return "bulkhead_full"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, Exception):
        return "error"
    return None  # cancelled, interrupted: no outcome


class _PolicyMetrics:
    """The handles one policy updates."""

    def __init__(self, metrics: Metrics, name: str) -> None:
        self.calls: dict[str, CounterHandle] = {
            outcome: metrics.counter(
                "engine_resilience_calls_total",
                "calls through a resilience policy, by outcome",
                policy=name,
                outcome=outcome,
            )
            for outcome in OUTCOMES
        }
        self.retries = metrics.counter(
            "engine_retries_total", "retried attempts of idempotent calls", policy=name
        )
        self.state: GaugeHandle = metrics.gauge(
            "engine_breaker_state",
            "circuit breaker state: 0 closed, 1 half-open, 2 open",
            policy=name,
        )
        self.opened = metrics.counter(
            "engine_breaker_opened_total", "times the circuit breaker opened", policy=name
        )
        self.seconds: HistogramHandle = metrics.histogram(
            "engine_call_seconds",
            "duration of calls that were made (ok, error, timeout), retries included",
            buckets=_CALL_BUCKETS,
            policy=name,
        )


class ResiliencePolicy:
    """Bulkhead, rate limit, circuit breaker, retries and per-attempt timeout for
    the calls of one plugin or service (see the module doc for the order).

    ``clock`` is a monotonic clock in seconds (the breaker's reset period and the
    call durations); ``failures`` are the error classes the breaker counts.
    """

    def __init__(
        self,
        name: str,
        settings: ResilienceSettings | None = None,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        failures: tuple[type[BaseException], ...] = DEFAULT_FAILURES,
    ) -> None:
        self.name = name
        self.settings = settings if settings is not None else ResilienceSettings()
        s = self.settings
        self._clock = clock
        self.bulkhead = Bulkhead(s.max_concurrent, s.max_queue, name=name)
        self.limiter = RateLimiter(s.rate, s.burst, max_wait=s.max_wait_seconds, name=name)
        self.breaker = CircuitBreaker(
            name,
            fail_max=s.breaker_failures,
            reset_timeout=s.breaker_reset_seconds,
            failures=failures,
            clock=clock,
        )
        self._metrics = _PolicyMetrics(metrics, name) if metrics is not None else None
        if self._metrics is not None:
            self.breaker.on_state_change(self._count_transition)

    def on_breaker_change(self, callback: StateListener) -> Callable[[], None]:
        """Call ``callback(policy_name, old, new)`` on each breaker transition (the
        engine moves its trading state to ``settings.on_breaker_open`` when ``new``
        is open). Returns a function that removes the callback."""
        return self.breaker.on_state_change(callback)

    def _count_transition(self, _name: str, _old: BreakerState, new: BreakerState) -> None:
        assert self._metrics is not None
        self._metrics.state.set(BREAKER_STATE_VALUES[new])
        if new is BreakerState.OPEN:
            self._metrics.opened.inc()

    @overload
    async def call(
        self, fn: Callable[..., Awaitable[T]], /, *args: Any, idempotent: bool, **kwargs: Any
    ) -> T: ...

    @overload
    async def call(
        self, fn: Callable[..., T], /, *args: Any, idempotent: bool, **kwargs: Any
    ) -> T: ...

    async def call(
        self, fn: Callable[..., Any], /, *args: Any, idempotent: bool, **kwargs: Any
    ) -> Any:
        """Call ``fn(*args, **kwargs)`` (sync or async) under this policy.

        ``idempotent`` says whether the call may be repeated safely (an order
        submission is idempotent only with a client order id the venue
        deduplicates); only idempotent calls are retried. Raises ``fn``'s own
        error, ``TimeoutError``, :class:`~engine.errors.CircuitOpen`,
        :class:`~engine.errors.RateLimited` or :class:`~engine.errors.BulkheadFull`.
        """
        start = self._clock()
        try:
            async with self.bulkhead:
                await self.limiter.acquire()
                result = await self.breaker.call(self._attempts, fn, args, kwargs, idempotent)
        except BaseException as exc:
            self._count(_outcome(exc), start)
            raise
        self._count("ok", start)
        return result

    def _count(self, outcome: str | None, start: float) -> None:
        m = self._metrics
        if m is None or outcome is None:
            return
        m.calls[outcome].inc()
        if outcome in ("ok", "error", "timeout"):
            m.seconds.observe(max(0.0, self._clock() - start))

    async def _attempts(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        idempotent: bool,
    ) -> Any:
        s = self.settings
        if not idempotent or s.retries == 0:
            return await self._attempt(fn, args, kwargs)
        token = _CURRENT_POLICY.set(self.name)
        try:
            async for attempt in stamina.retry_context(
                on=is_retryable,
                attempts=s.attempts,
                timeout=None,  # no total budget: each attempt has its own timeout
                wait_initial=s.backoff_initial_seconds,
                wait_max=s.backoff_max_seconds,
                wait_jitter=s.jitter_seconds,
            ):
                with attempt:
                    if attempt.num > 1 and self._metrics is not None:
                        self._metrics.retries.inc()
                    return await self._attempt(fn, args, kwargs)
        finally:
            _CURRENT_POLICY.reset(token)
        raise AssertionError("unreachable: stamina re-raises the last error")

    async def _attempt(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            async with asyncio.timeout(self.settings.timeout_seconds) as scope:
                return await maybe_await(fn(*args, **kwargs))
        except TimeoutError as exc:
            if scope.expired():
                raise TimeoutError(
                    f"{self.name}: no answer within {self.settings.timeout}"
                ) from exc
            raise

    def wrap(self, *, idempotent: bool) -> ResilientDecorator:
        """Decorator: every call of the decorated function goes through this policy
        (a sync function becomes async)::

            @policy.wrap(idempotent=True)
            async def fetch_balance(client): ...
        """
        return ResilientDecorator(lambda: self, idempotent=idempotent)

    def __repr__(self) -> str:
        return f"<ResiliencePolicy {self.name!r} breaker={self.breaker.state.value}>"


class ResilientDecorator:
    """What :meth:`ResiliencePolicy.wrap` and :func:`resilient` return: applied to a
    function (sync or async), gives an async function calling it through the policy.
    The policy is looked up at each call."""

    def __init__(self, policy: Callable[[], ResiliencePolicy], *, idempotent: bool) -> None:
        self._policy = policy
        self.idempotent = idempotent

    @overload
    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``fn``."""
        idempotent = self.idempotent

        @functools.wraps(fn)
        async def call_resilient(*args: Any, **kwargs: Any) -> Any:
            return await self._policy().call(fn, *args, idempotent=idempotent, **kwargs)

        return call_resilient


class PolicyRegistry:
    """The policies of one engine by name, built on first use from the
    ``[resilience]`` section (``settings_for(name)``), sharing ``metrics``, ``clock``
    and breaker listeners."""

    def __init__(
        self,
        section: ResilienceSection | None = None,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.section = section if section is not None else ResilienceSection()
        self.metrics = metrics
        self._clock = clock
        self._policies: dict[str, ResiliencePolicy] = {}
        self._listeners: list[StateListener] = []

    def get(self, name: str) -> ResiliencePolicy:
        """The policy ``name`` (created with ``section.settings_for(name)`` on first use)."""
        policy = self._policies.get(name)
        if policy is None:
            policy = ResiliencePolicy(
                name, self.section.settings_for(name), metrics=self.metrics, clock=self._clock
            )
            for callback in self._listeners:
                policy.on_breaker_change(callback)
            self._policies[name] = policy
        return policy

    @property
    def policies(self) -> Mapping[str, ResiliencePolicy]:
        """The policies created so far, by name."""
        return dict(self._policies)

    def on_breaker_change(self, callback: StateListener) -> None:
        """Call ``callback(policy_name, old, new)`` on every transition of every
        policy's breaker, existing and future."""
        self._listeners.append(callback)
        for policy in self._policies.values():
            policy.on_breaker_change(callback)


_registry: PolicyRegistry | None = None


def set_registry(registry: PolicyRegistry | None) -> None:
    """Make ``registry`` the one :func:`resilient` resolves names in (the engine sets
    its own at start and ``None`` at shutdown)."""
    global _registry
    _registry = registry


def get_registry() -> PolicyRegistry:
    """The registry set by :func:`set_registry`; without one (scripts, a plugin's
    own tests) a process-wide registry with default settings, created on first use."""
    global _registry
    if _registry is None:
        _registry = PolicyRegistry()
    return _registry


def resilient(policy: ResiliencePolicy | str, *, idempotent: bool) -> ResilientDecorator:
    """Decorator for plugin authors: calls of the decorated function go through
    ``policy``, or through the policy of that name in the current registry (looked
    up at each call, so the engine's config applies)::

        @resilient("myvenue", idempotent=True)
        async def fetch_positions(session): ...
    """
    if isinstance(policy, ResiliencePolicy):
        found = policy
        return ResilientDecorator(lambda: found, idempotent=idempotent)
    name = policy
    return ResilientDecorator(lambda: get_registry().get(name), idempotent=idempotent)


def _log_retry(details: RetryDetails) -> None:
    """stamina retry hook: policy, attempt, wait and error type; never the call's
    arguments or the error's message (either may hold a secret)."""
    policy = _CURRENT_POLICY.get() or details.name
    logger.debug(  # retries are expected and counted (engine_retries_total)
        "retrying {}: attempt {} failed with {}, next attempt in {:.3f}s",
        policy,
        details.retry_num,
        type(details.caused_by).__name__,
        details.wait_for,
    )


def install_stamina_hooks() -> None:
    """Replace stamina's retry hooks (called once by the engine at start).

    stamina's default logging hook logs the reprs of the retried call's
    arguments, secrets included; this one logs only the policy name, the attempt,
    the wait and the error type, through loguru. stamina's Prometheus counter
    (``stamina_retries_total``) is kept when ``prometheus_client`` is importable.
    """
    hooks: list[RetryHook | RetryHookFactory] = []
    if importlib.util.find_spec("prometheus_client") is not None:
        hooks.append(PrometheusOnRetryHook)
    hooks.append(_log_retry)
    set_on_retry_hooks(hooks)
