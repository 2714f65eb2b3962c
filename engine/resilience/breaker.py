"""The circuit breaker: the engine's interface over aiobreaker.

States are ``closed`` (calls pass; failures are counted), ``open`` (calls are
rejected at once with :class:`~engine.errors.CircuitOpen`) and ``half_open``
(exactly one trial call passes; its success closes the circuit, its failure opens
it again for a new reset period).

How aiobreaker is used, and what is driven here instead
-------------------------------------------------------
aiobreaker 1.2 (the library chosen for this) has three defects that matter to a
trading engine (see ``LIBRARIES.md``): its timing mixes ``datetime.utcnow()`` and
``datetime.now()``, so when an open breaker half-opens depends on the ``TZ``
environment variable, and ``utcnow()`` warns on Python 3.12+; in half-open state
it lets *every* concurrent call through, not one trial; and a listener that raises
leaves its state half-changed. So:

* **aiobreaker keeps:** the failure counter and ``fail_max``, the decision to open
  (closed -> open when the counter reaches ``fail_max``; half-open -> open when the
  trial fails), closing on a successful trial, the classification of errors (an
  ``exclude`` predicate built from ``failures``), and the state-change listener that
  this class turns into its own callbacks.
* **Driven here:** time and admission. aiobreaker gets a ``timeout_duration`` of a
  hundred years, so its own clock never decides anything; the moment the circuit
  opened is taken from an injectable monotonic clock (default
  :func:`time.monotonic`), and once ``reset_timeout`` has passed the next caller
  moves aiobreaker to half-open with its ``half_open()`` setter. The one-trial rule
  is a flag set and checked with no ``await`` in between (so it is atomic on the
  event loop): while the trial is in flight every other caller gets
  ``CircuitOpen`` without entering the function. Calls are never made *while*
  aiobreaker is on the stack: the function is awaited first, then its outcome is
  replayed synchronously through ``aiobreaker.CircuitBreaker.call`` (a function
  that returns, or re-raises the caught error). That keeps the
  ``warnings.catch_warnings()`` block that silences aiobreaker's ``utcnow``
  deprecation warning free of ``await``: ``catch_warnings`` saves and restores the
  process-wide filter list, and two tasks interleaving inside it would leave a
  filter installed for good. aiobreaker's ``CircuitBreakerError`` (raised when the
  replayed failure opens the circuit) is swallowed: the caller sees the original
  error, with its traceback restored.
* **Never used:** aiobreaker's time APIs (``opens_at``, ``time_until_open``,
  ``CircuitBreakerError.reopen_time``), its open-state ``before_call`` (the wrapped
  breaker is never called while open) and its async path.

Outcomes of calls that started before the latest state change (a call admitted
while closed that fails after the circuit has opened) are ignored, so a slow
failure cannot reopen a circuit whose trial has just closed it.
:class:`~engine.errors.CircuitOpen`, :class:`~engine.errors.BulkheadFull` and
:class:`~engine.errors.RateLimited` never count: the call was not made. Other
errors that are not failures (a ``ValueError``, a venue rejection) count as
aiobreaker counts them, as an answer from a working service: they reset the
consecutive-failure counter and a trial that ends with one closes the circuit.
Cancellation is no outcome at all (a cancelled trial frees the trial slot).
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar, overload

from loguru import logger

from engine.aio import maybe_await
from engine.errors import BulkheadFull, CircuitOpen, ExecutionError, RateLimited

__all__ = [
    "DEFAULT_FAILURES",
    "NEVER_FAILURES",
    "BreakerState",
    "CircuitBreaker",
    "StateListener",
]

T = TypeVar("T")


class BreakerState(StrEnum):
    """The state of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


#: Errors that count as failures by default.
DEFAULT_FAILURES: tuple[type[BaseException], ...] = (ExecutionError, TimeoutError, OSError)
#: Errors that never count (the call was not made), whatever ``failures`` says.
NEVER_FAILURES: tuple[type[BaseException], ...] = (CircuitOpen, BulkheadFull, RateLimited)

#: ``callback(breaker_name, old_state, new_state)``, called once per transition.
StateListener = Callable[[str, BreakerState, BreakerState], None]

#: aiobreaker's own open period: long enough that its datetime clock never ends one
_NEVER = timedelta(days=36_500)

_AIO_STATES = {
    "CLOSED": BreakerState.CLOSED,
    "OPEN": BreakerState.OPEN,
    "HALF_OPEN": BreakerState.HALF_OPEN,
}


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence aiobreaker's ``datetime.utcnow()`` deprecation warning, and only it.

    Used around synchronous aiobreaker calls only (never across an ``await``).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"datetime\.datetime\.utcnow\(\) is deprecated",
            category=DeprecationWarning,
            module=r"aiobreaker(\.|$)",
        )
        yield


def _aiobreaker() -> Any:
    """The aiobreaker module, imported when the first breaker is made (it imports
    redis: a run without a breaker does not pay for it)."""
    import aiobreaker  # type: ignore[import-untyped]

    return aiobreaker


class _Bridge:
    """aiobreaker listener forwarding state changes to the owning breaker."""

    def __init__(self, owner: CircuitBreaker) -> None:
        self._owner = owner

    def before_call(self, breaker: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        """Not used."""

    def success(self, breaker: Any) -> None:
        """Not used."""

    def failure(self, breaker: Any, exception: BaseException) -> None:
        """Not used."""

    def state_change(self, breaker: Any, old: Any, new: Any) -> None:
        """aiobreaker changed state (its storage still holds the old one here)."""
        self._owner._changed(_AIO_STATES[new.state.name])


class CircuitBreaker:
    """A circuit breaker on a monotonic clock, over aiobreaker (see the module doc).

    ``fail_max`` consecutive failures open it; ``reset_timeout`` seconds later
    (by ``clock``) exactly one trial call is let through; its success closes the
    circuit, its failure opens it again. ``failures`` are the error classes that
    count (``NEVER_FAILURES`` never do).
    """

    def __init__(
        self,
        name: str,
        *,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        failures: tuple[type[BaseException], ...] = DEFAULT_FAILURES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fail_max < 1:
            raise ValueError(f"fail_max must be >= 1, got {fail_max}")
        if reset_timeout < 0:
            raise ValueError(f"reset_timeout must be >= 0, got {reset_timeout}")
        self.name = name
        self.reset_timeout = float(reset_timeout)
        self.failures = tuple(failures)
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._generation = 0  # bumped on every transition
        self._trial_in_flight = False
        self._listeners: list[StateListener] = []
        #: times the circuit has opened
        self.opened_count = 0
        #: half-open trial calls let through so far
        self.trial_calls = 0
        with _quiet():
            self._breaker = _aiobreaker().CircuitBreaker(
                fail_max=fail_max,
                timeout_duration=_NEVER,
                exclude=[self._excluded],
                listeners=[_Bridge(self)],
                name=name,
            )

    # -- state ---------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The current state (an open circuit turns half-open at the next call after
        ``reset_timeout``, not by itself)."""
        return self._state

    @property
    def fail_max(self) -> int:
        """Consecutive failures that open the circuit."""
        return int(self._breaker.fail_max)

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted so far (reset when the circuit closes)."""
        return int(self._breaker.fail_counter)

    @property
    def retry_after(self) -> float:
        """Seconds until an open circuit lets a trial through (0 when not open)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.reset_timeout - (self._clock() - self._opened_at))

    def counts_as_failure(self, exc: BaseException) -> bool:
        """True when ``exc`` counts towards opening the circuit."""
        return isinstance(exc, self.failures) and not isinstance(exc, NEVER_FAILURES)

    def on_state_change(self, callback: StateListener) -> Callable[[], None]:
        """Call ``callback(name, old, new)`` on every transition (synchronously, once
        per transition; an error in it is logged, never raised). Returns a function
        that removes the callback."""
        self._listeners.append(callback)

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return remove

    # -- calls ---------------------------------------------------------------------

    @overload
    async def call(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T: ...

    @overload
    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...

    async def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` (sync or async) through the breaker.

        Raises :class:`~engine.errors.CircuitOpen` without calling ``fn`` while the
        circuit is open, or half-open with its trial call in flight; otherwise
        returns ``fn``'s result or raises its error.
        """
        generation, trial = self._admit()
        try:
            result = await maybe_await(fn(*args, **kwargs))
        except Exception as exc:
            self._record(generation, exc)
            raise
        finally:
            if trial:
                self._trial_in_flight = False
        self._record(generation, None)
        return result

    def _admit(self) -> tuple[int, bool]:
        """Let a call in or raise ``CircuitOpen``; ``(generation, is_trial)``.

        No ``await`` here: check and update are one step on the event loop.
        """
        if self._state is BreakerState.OPEN:
            wait = self.retry_after
            if wait > 0:
                raise CircuitOpen(
                    f"circuit {self.name!r} is open", breaker=self.name, retry_in=f"{wait:.3f}s"
                )
            with _quiet():
                self._breaker.half_open()
        if self._state is BreakerState.HALF_OPEN:
            if self._trial_in_flight:
                raise CircuitOpen(
                    f"circuit {self.name!r} is half-open and its trial call is in flight",
                    breaker=self.name,
                )
            self._trial_in_flight = True
            self.trial_calls += 1
            return self._generation, True
        return self._generation, False

    def _excluded(self, exc: BaseException) -> bool:
        """aiobreaker's ``exclude`` predicate: errors that are not failures."""
        return not self.counts_as_failure(exc)

    def _record(self, generation: int, exc: Exception | None) -> None:
        """Replay one call's outcome through aiobreaker (which counts and decides)."""
        if generation != self._generation or isinstance(exc, NEVER_FAILURES):
            return  # stale (the state changed while it ran) or the call was not made
        traceback = exc.__traceback__ if exc is not None else None

        def replay() -> None:
            if exc is not None:
                raise exc

        try:
            with _quiet():
                self._breaker.call(replay)
        except _aiobreaker().CircuitBreakerError:
            pass  # "this failure opened the circuit": the caller gets the original error
        except Exception as err:
            if err is not exc:
                raise
        finally:
            if exc is not None:
                exc.__traceback__ = traceback

    def _changed(self, new: BreakerState) -> None:
        """A transition (called by aiobreaker's listener): update, then notify."""
        old = self._state
        if new is old:
            return
        self._state = new
        self._generation += 1
        if new is BreakerState.OPEN:
            self._opened_at = self._clock()
            self.opened_count += 1
            logger.warning(
                "circuit {} opened ({} -> open); calls rejected for {:g}s",
                self.name,
                old.value,
                self.reset_timeout,
            )
        else:
            logger.info("circuit {}: {} -> {}", self.name, old.value, new.value)
        for callback in list(self._listeners):
            try:
                result: object = callback(self.name, old, new)
            except Exception:
                logger.exception("circuit {}: state listener {!r} failed", self.name, callback)
                continue
            if inspect.iscoroutine(result):  # listeners are synchronous: never left unawaited
                result.close()
                logger.error(
                    "circuit {}: state listener {!r} is async; listeners must be synchronous",
                    self.name,
                    callback,
                )

    def __repr__(self) -> str:
        return (
            f"<CircuitBreaker {self.name!r} {self._state.value}"
            f" failures={self.failure_count}/{self.fail_max}>"
        )
