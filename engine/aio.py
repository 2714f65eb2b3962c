"""Sync/async bridging: the one helper that awaits what may be awaitable, and a
way to run engine coroutines from synchronous code, even under a running loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["maybe_await", "run_sync"]

T = TypeVar("T")


async def maybe_await(value: Any) -> Any:
    """Await ``value`` if it is awaitable, else return it: record callables may be
    sync or async and the core treats both alike."""
    if inspect.isawaitable(value):
        return await value
    return value


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    Without a running loop in this thread it uses ``asyncio.run``; inside one
    (a Jupyter cell calling a sync helper) it runs the coroutine on a fresh loop in
    a worker thread and waits, instead of failing with "loop already running".
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
