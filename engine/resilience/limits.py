"""Rate limit and bulkhead: how fast and how many calls at once.

* :class:`RateLimiter` is a token bucket over :class:`aiolimiter.AsyncLimiter`:
  ``burst`` calls pass at once, then ``rate`` a second; a call that would wait
  longer than ``max_wait`` is refused with :class:`~engine.errors.RateLimited`.
* :class:`Bulkhead` bounds concurrency: ``max_concurrent`` calls in flight,
  ``max_queue`` waiting for a slot; the next one is rejected at once with
  :class:`~engine.errors.BulkheadFull`, never queued without bound.

Both are bound to the event loop that first uses them: create them (or the policy
that owns them) per engine run.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from aiolimiter import AsyncLimiter

from engine.errors import BulkheadFull, RateLimited

__all__ = ["Bulkhead", "RateLimiter"]


class RateLimiter:
    """A token bucket: ``burst`` calls at once, then ``rate`` calls a second.

    ``rate == 0`` means unlimited. With ``max_wait`` set, a call that finds no
    capacity within ``max_wait`` seconds is refused with
    :class:`~engine.errors.RateLimited` (``max_wait=0``: refused at once);
    without it, calls wait as long as needed. Use ``await limiter.acquire()`` or
    ``async with limiter:``.
    """

    def __init__(
        self, rate: float, burst: int = 1, *, max_wait: float | None = None, name: str = ""
    ) -> None:
        if rate < 0:
            raise ValueError(f"rate must be >= 0, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        if max_wait is not None and max_wait < 0:
            raise ValueError(f"max_wait must be >= 0, got {max_wait}")
        self.rate = float(rate)
        self.burst = burst
        self.max_wait = max_wait
        self.name = name
        # capacity ``burst``, refilled at ``rate`` a second: burst per burst/rate seconds
        self._limiter = AsyncLimiter(burst, burst / rate) if rate > 0 else None

    @property
    def unlimited(self) -> bool:
        """True when ``rate`` is 0 (every call passes)."""
        return self._limiter is None

    def has_capacity(self) -> bool:
        """True when a call would pass now without waiting (needs a running loop)."""
        return self._limiter is None or self._limiter.has_capacity()

    async def acquire(self) -> None:
        """Take one token, waiting for one up to ``max_wait``; else raise
        :class:`~engine.errors.RateLimited`."""
        limiter = self._limiter
        if limiter is None:
            return
        if self.max_wait is None:
            await limiter.acquire()
            return
        if self.max_wait == 0 and not limiter.has_capacity():
            raise self._refused()
        try:
            async with asyncio.timeout(self.max_wait):
                await limiter.acquire()
        except TimeoutError:
            raise self._refused() from None

    def _refused(self) -> RateLimited:
        return RateLimited(
            f"rate limit of {self.name!r} ({self.rate:g}/s, burst {self.burst}):"
            f" no capacity within {self.max_wait:g}s",
            policy=self.name,
        )

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __repr__(self) -> str:
        if self._limiter is None:
            return f"<RateLimiter {self.name!r} unlimited>"
        return f"<RateLimiter {self.name!r} {self.rate:g}/s burst={self.burst}>"


class Bulkhead:
    """At most ``max_concurrent`` calls in flight and ``max_queue`` waiting.

    A call that finds every slot taken and the queue full is rejected at once with
    :class:`~engine.errors.BulkheadFull`. Use ``async with bulkhead:``.
    """

    def __init__(self, max_concurrent: int, max_queue: int = 0, *, name: str = "") -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be >= 0, got {max_queue}")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.name = name
        self._slots = asyncio.Semaphore(max_concurrent)
        self._in_flight = 0
        self._queued = 0

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now."""
        return self._in_flight

    @property
    def queued(self) -> int:
        """Calls waiting for a slot now."""
        return self._queued

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if there is room; else raise
        :class:`~engine.errors.BulkheadFull`. Pair with :meth:`release`."""
        if self._in_flight >= self.max_concurrent or self._queued:
            if self._queued >= self.max_queue:
                raise BulkheadFull(
                    f"bulkhead of {self.name!r} is full: {self._in_flight} calls in flight"
                    f" (max_concurrent={self.max_concurrent}) and {self._queued} waiting"
                    f" (max_queue={self.max_queue}); call rejected",
                    policy=self.name,
                )
            self._queued += 1
            try:
                await self._slots.acquire()
            finally:
                self._queued -= 1
        else:
            await self._slots.acquire()  # a free slot: returns at once
        self._in_flight += 1

    def release(self) -> None:
        """Give a slot back."""
        self._in_flight -= 1
        self._slots.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"<Bulkhead {self.name!r} in_flight={self._in_flight}/{self.max_concurrent}"
            f" queued={self._queued}/{self.max_queue}>"
        )
