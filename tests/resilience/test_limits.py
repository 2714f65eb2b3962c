"""Rate limiter (token bucket over aiolimiter) and bulkhead (bounded concurrency)."""

from __future__ import annotations

import asyncio

import pytest

from engine.errors import BulkheadFull, RateLimited
from engine.resilience import Bulkhead, RateLimiter


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


# -- rate limiter ----------------------------------------------------------------------


async def test_the_burst_passes_at_once_then_calls_wait() -> None:
    limiter = RateLimiter(rate=0.001, burst=3, name="venue")  # one token per 1000 s
    for _ in range(3):
        assert limiter.has_capacity()
        await asyncio.wait_for(limiter.acquire(), timeout=5)  # no waiting
    assert not limiter.has_capacity()

    waiting = asyncio.create_task(limiter.acquire())
    await settle()
    assert not waiting.done()  # the fourth call waits for a token
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_waiting_call_passes_when_a_token_is_refilled() -> None:
    limiter = RateLimiter(rate=500, burst=1)  # a token every 2 ms
    await limiter.acquire()
    assert not limiter.has_capacity()
    await asyncio.wait_for(limiter.acquire(), timeout=5)


async def test_refused_with_rate_limited_past_max_wait() -> None:
    limiter = RateLimiter(rate=0.001, burst=2, max_wait=0.01, name="venue")
    async with limiter:
        pass
    await limiter.acquire()
    with pytest.raises(RateLimited) as info:
        await limiter.acquire()
    assert str(info.value) == (
        "rate limit of 'venue' (0.001/s, burst 2): no capacity within 0.01s (policy=venue)"
    )
    assert info.value.context == {"policy": "venue"}


async def test_max_wait_zero_refuses_at_once_without_yielding() -> None:
    limiter = RateLimiter(rate=0.001, burst=1, max_wait=0, name="venue")
    await limiter.acquire()
    ran = False

    async def other() -> None:
        nonlocal ran
        ran = True

    task = asyncio.create_task(other())
    with pytest.raises(RateLimited):
        await limiter.acquire()
    assert not ran  # refused before the loop ran anything else
    await task


async def test_rate_zero_is_unlimited() -> None:
    limiter = RateLimiter(rate=0, burst=1, max_wait=0)
    assert limiter.unlimited
    for _ in range(1000):
        await limiter.acquire()


def test_rate_limiter_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="rate must be >= 0"):
        RateLimiter(-1)
    with pytest.raises(ValueError, match="burst must be >= 1"):
        RateLimiter(1, 0)
    with pytest.raises(ValueError, match="max_wait must be >= 0"):
        RateLimiter(1, max_wait=-1)


# -- bulkhead --------------------------------------------------------------------------


async def test_in_flight_limit_is_respected_and_the_queue_drains() -> None:
    bulkhead = Bulkhead(max_concurrent=3, max_queue=10, name="venue")
    release = asyncio.Event()
    running = peak = done = 0

    async def work() -> None:
        nonlocal running, peak, done
        async with bulkhead:
            running += 1
            peak = max(peak, running)
            await release.wait()
            await asyncio.sleep(0)
            running -= 1
            done += 1

    tasks = [asyncio.create_task(work()) for _ in range(13)]
    await settle()
    assert (bulkhead.in_flight, bulkhead.queued, running) == (3, 10, 3)
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 3
    assert done == 13
    assert (bulkhead.in_flight, bulkhead.queued) == (0, 0)


async def test_overflow_is_rejected_at_once_with_a_clear_message() -> None:
    bulkhead = Bulkhead(max_concurrent=2, max_queue=1, name="myvenue")
    release = asyncio.Event()

    async def hold() -> None:
        async with bulkhead:
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(3)]
    await settle()
    with pytest.raises(BulkheadFull) as info:
        await bulkhead.acquire()
    assert str(info.value) == (
        "bulkhead of 'myvenue' is full: 2 calls in flight (max_concurrent=2) and 1 waiting"
        " (max_queue=1); call rejected (policy=myvenue)"
    )
    release.set()
    await asyncio.gather(*tasks)
    async with bulkhead:  # room again
        assert bulkhead.in_flight == 1


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=1)
    await bulkhead.acquire()
    waiter = asyncio.create_task(bulkhead.acquire())
    await settle()
    assert bulkhead.queued == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bulkhead.queued == 0
    bulkhead.release()
    await bulkhead.acquire()
    assert bulkhead.in_flight == 1


async def test_no_queue_rejects_when_all_slots_are_busy() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=0)
    await bulkhead.acquire()
    with pytest.raises(BulkheadFull, match="max_queue=0"):
        await bulkhead.acquire()


def test_bulkhead_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_concurrent must be >= 1"):
        Bulkhead(0)
    with pytest.raises(ValueError, match="max_queue must be >= 0"):
        Bulkhead(1, -1)
