"""Tracked background tasks: nothing the engine starts runs unowned or fails unheard.

A ``TaskSet`` keeps a strong reference to every task it spawns (the event loop keeps only a
weak one), forgets the task when it ends, and logs ``task.failed`` with the task's name and
traceback when it ends with an exception, so no exception is ever lost or left "never
retrieved".  A cancelled task is not a failure.  Waiting is always bounded by the caller's
timeout, and a caller cancelled while it waits gets its ``CancelledError``.

    tasks = TaskSet("acd.offers")
    tasks.spawn(ring(agent), name=f"acd.offer.{agent.id}")
    ...
    await tasks.cancel_all(timeouts.ws_close)
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


def _default_name(owner: str, coro: Coroutine[Any, Any, Any]) -> str:
    what = coro.__qualname__ if isinstance(coro, types.CoroutineType) else type(coro).__name__
    return f"{owner}:{what}"


class TaskSet:
    """Owns the tasks it spawns; nothing it starts is left running after ``cancel_all``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"<TaskSet {self._name} running={len(self._tasks)}>"

    def __len__(self) -> int:
        """How many of its tasks are still running."""
        return len(self._tasks)

    @property
    def name(self) -> str:
        return self._name

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        return frozenset(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of this set.  ``name`` is what the logs call it."""
        task = asyncio.get_running_loop().create_task(
            coro, name=name or _default_name(self._name, coro))
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()            # retrieved here, so asyncio never reports it lost
        if exc is not None:
            log.error("task.failed", tasks=self._name, task=task.get_name(),
                      error=repr(exc), exc_info=(type(exc), exc, exc.__traceback__))

    async def wait(self, timeout: float | None) -> set[asyncio.Task[Any]]:
        """Wait up to ``timeout`` seconds for the tasks running now to end; return those
        still running.  Nothing is cancelled; a task's exception is logged, not raised."""
        if not self._tasks:
            return set()
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return set(pending)

    async def cancel_all(self, timeout: float | None = None) -> None:
        """Cancel every task and wait up to ``timeout`` seconds until they have all ended.

        Tasks that outlive the timeout (they ignore or delay their cancellation) are logged
        by name as ``tasks.not_ended``.
        """
        tasks = set(self._tasks)
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            log.warning("tasks.not_ended", tasks=self._name, count=len(pending),
                        names=sorted(task.get_name() for task in pending))


async def first_done(*futures: asyncio.Future[Any]) -> None:
    """Wait until one of ``futures`` is done; cancels none of them.  ``asyncio.wait``'s
    FIRST_COMPLETED without its two sets and per-future closures: what a waiting caller holds
    for minutes, thousands at once.  Cancelled while it waits: ``CancelledError``."""
    for future in futures:
        if future.done():
            return
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake(_: object) -> None:
        if not waiter.done():
            waiter.set_result(None)

    for future in futures:
        future.add_done_callback(wake)
    try:
        await waiter
    finally:
        for future in futures:
            future.remove_done_callback(wake)
