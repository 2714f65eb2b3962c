"""Resilience: the policy applied to every broker and external call.

A :class:`ResiliencePolicy` puts a bulkhead, a rate limiter, a circuit breaker,
retries (idempotent calls only) and a per-attempt timeout around a call. The
``[resilience]`` config section (:class:`ResilienceSection`) gives each plugin its
settings; plugin authors use :func:`resilient` or :meth:`ResiliencePolicy.wrap` on
their own calls. See ``docs/resilience.md``.

Names load lazily (PEP 562): reading the ``[resilience]`` settings (as
:mod:`engine.config` does) does not import the breaker, retry and rate-limit
libraries (aiobreaker, stamina, aiolimiter), which a run imports when it builds
its policies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine._lazy import lazy_exports

if TYPE_CHECKING:
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

_EXPORTS = {
    "engine.errors": ["BulkheadFull", "CircuitOpen", "RateLimited"],
    "engine.resilience.breaker": [
        "DEFAULT_FAILURES",
        "NEVER_FAILURES",
        "BreakerState",
        "CircuitBreaker",
        "StateListener",
    ],
    "engine.resilience.limits": ["Bulkhead", "RateLimiter"],
    "engine.resilience.policy": [
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
    ],
    "engine.resilience.settings": [
        "BREAKER_OPEN_ACTIONS",
        "ResilienceSection",
        "ResilienceSettings",
        "parse_resilience",
    ],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

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


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(), __all__)
