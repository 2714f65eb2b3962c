"""Resilience: the policy applied to every broker and external call.

A :class:`ResiliencePolicy` puts a bulkhead, a rate limiter, a circuit breaker,
retries (idempotent calls only) and a per-attempt timeout around a call. The
``[resilience]`` config section (:class:`ResilienceSection`) gives each plugin its
settings; plugin authors use :func:`resilient` or :meth:`ResiliencePolicy.wrap` on
their own calls. See ``docs/resilience.md``.
"""

from __future__ import annotations

from engine.errors import BulkheadFull, CircuitOpen, RateLimited
from engine.resilience.breaker import (
    DEFAULT_FAILURES,
    NEVER_FAILURES,
    BreakerState,
    CircuitBreaker,
    StateListener,
)
from engine.resilience.limits import Bulkhead, RateLimiter
from engine.resilience.policy import (
    BREAKER_STATE_VALUES,
    OUTCOMES,
    PolicyRegistry,
    ResiliencePolicy,
    ResilientDecorator,
    get_registry,
    install_stamina_hooks,
    is_retryable,
    resilient,
    set_registry,
)
from engine.resilience.settings import (
    BREAKER_OPEN_ACTIONS,
    ResilienceSection,
    ResilienceSettings,
    parse_resilience,
)

__all__ = [
    "BREAKER_OPEN_ACTIONS",
    "BREAKER_STATE_VALUES",
    "DEFAULT_FAILURES",
    "NEVER_FAILURES",
    "OUTCOMES",
    "BreakerState",
    "Bulkhead",
    "BulkheadFull",
    "CircuitBreaker",
    "CircuitOpen",
    "PolicyRegistry",
    "RateLimited",
    "RateLimiter",
    "ResiliencePolicy",
    "ResilienceSection",
    "ResilienceSettings",
    "ResilientDecorator",
    "StateListener",
    "get_registry",
    "install_stamina_hooks",
    "is_retryable",
    "parse_resilience",
    "resilient",
    "set_registry",
]
