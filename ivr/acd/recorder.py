"""``EventRecorder``: every change of a call's or an agent's state in the queues goes to the
store's event log (``ivr calls show``, the wallboard), written in batches off the call path.

Events are stamped with the wall-clock time they happen, kept in memory and written once a
``interval`` seconds; a store that refuses them keeps them (up to ``max_pending``, oldest
dropped first and counted) until it takes them again.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

import structlog

from ivr.acd.model import Event
from ivr.call import utcnow
from ivr.errors import IvrError
from ivr.store.base import QueueEvent

log = structlog.get_logger(__name__)

__all__ = ["EventRecorder"]


class EventRecorder:
    def __init__(self, store, *, interval: float = 1.0, max_pending: int = 100_000,
                 clock: Callable = utcnow) -> None:
        self.store = store
        self.interval = interval
        self.max_pending = max_pending
        self.clock = clock
        self.pending: collections.deque[QueueEvent] = collections.deque()
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def __call__(self, event: Event) -> None:
        """``Acd(on_event=…)``: synchronous, cheap; the write happens later."""
        log.info("acd.event", kind=event.kind, call=event.call_id, agent=event.agent_id,
                 queue=event.queue, detail=event.detail)
        self.pending.append(QueueEvent(at=self.clock(), kind=event.kind, call_id=event.call_id,
                                       agent_id=event.agent_id, queue=event.queue,
                                       detail=event.detail))
        while len(self.pending) > self.max_pending:
            self.pending.popleft()
            self.dropped += 1

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="acd.events")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> bool:
        """Write what is pending; True when nothing is left."""
        if not self.pending:
            return True
        batch = list(self.pending)
        try:
            await self.store.record_events(batch)
        except IvrError as exc:
            log.warning("acd.events_not_recorded", error=str(exc), pending=len(batch))
            return False
        for event in batch:                    # (some may have been dropped meanwhile)
            if self.pending and self.pending[0] is event:
                self.pending.popleft()
        return not self.pending

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if not await self.flush():
            log.error("acd.events_lost", lost=len(self.pending) + self.dropped)
