"""Tracked background tasks: a set, a done-callback that forgets the task and logs its error."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class TaskSet:
    """Owns the tasks it spawns; nothing it starts is left running after ``cancel_all``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        return frozenset(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("ari.task_failed", tasks=self._name, task=task.get_name(),
                      exc_info=(type(exc), exc, exc.__traceback__))

    async def wait(self, timeout: float | None) -> set[asyncio.Task[Any]]:
        """Wait up to ``timeout`` seconds for every task to end; return those still running."""
        if not self._tasks:
            return set()
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return set(pending)

    async def cancel_all(self, timeout: float | None = None) -> None:
        """Cancel every task and wait (bounded) until they have all ended."""
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                log.warning("ari.tasks_not_ended", tasks=self._name, count=len(pending))
