"""``EventRecorder``: every change of a call's or an agent's state in the queues goes to the
store's event log (``ivr calls show``, the wallboard, and what a restarting engine rebuilds
the queues from: ``ivr.acd.restore``), written off the call path.

Events are stamped with the wall-clock time they happen (never earlier than the event before:
a clock stepped back repeats the last stamp, so the log's time order is the order things
happened) and kept in memory.  The first event waiting wakes the writer, which writes
everything waiting in one batch, at once; events told while a batch is being written go in
the next one, so a busy engine writes bigger batches, not more of them, and a quiet one
writes each event a store round trip after it happens.  A store that refuses a batch keeps
it waiting (up to ``max_pending`` events, oldest dropped first and counted in ``dropped``),
tried again ``retry_after`` seconds later, then at the same pace until the store takes it.

What can be lost or doubled:

- Killed (SIGKILL, power cut): the events not yet committed are lost — normally those told
  during the last store round trip (the batch being written and those waiting behind it);
  while the store refuses writes, every event waiting (at most ``max_pending``).  Each event
  is stored at most once in that case.
- A batch whose outcome is unknown (SQLite: the write timed out but may still finish in the
  store's thread; PostgreSQL: the connection was lost during the commit) is kept and written
  again, so its events may be stored twice: at least once while the engine lives.  Replaying
  the log (``ivr.acd.restore``) gives the same state with an event repeated.
- Closed (``close``): the batch being written is finished, then what is waiting is written
  once more; what the store still refuses is lost and logged (``acd.events_lost``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from ivr.acd.model import Event
from ivr.call import utcnow
from ivr.errors import IvrError
from ivr.store.base import QueueEvent

log = structlog.get_logger(__name__)

__all__ = ["EventRecorder"]


class EventSink(Protocol):
    """What the recorder needs of the store (``ivr.store.base.Store``)."""

    async def record_events(self, events: Sequence[QueueEvent]) -> None: ...


class EventRecorder:
    def __init__(self, store: EventSink, *, retry_after: float = 1.0, max_pending: int = 100_000,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        if not retry_after > 0:
            raise ValueError("retry_after must be a positive number of seconds, "
                             f"not {retry_after!r}")
        self.store = store
        self.retry_after = retry_after
        self.max_pending = max_pending
        self.clock = clock
        self.pending: collections.deque[QueueEvent] = collections.deque()
        self.dropped = 0
        self.batches = 0                  # batches written
        self._last_at: dt.datetime | None = None
        self._wake = asyncio.Event()      # set when an event is waiting (and on close)
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def __call__(self, event: Event) -> None:
        """``Acd(on_event=…)``: synchronous, cheap; wakes the writer."""
        log.info("acd.event", kind=event.kind, call=event.call_id, agent=event.agent_id,
                 queue=event.queue, detail=event.detail)
        at = self.clock()
        if self._last_at is not None and at < self._last_at:
            at = self._last_at
        self._last_at = at
        self.pending.append(QueueEvent(at=at, kind=event.kind, call_id=event.call_id,
                                       agent_id=event.agent_id, queue=event.queue,
                                       detail=event.detail))
        while len(self.pending) > self.max_pending:
            self.pending.popleft()
            self.dropped += 1
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="acd.events")
        self._task.add_done_callback(_log_crash)

    async def _loop(self) -> None:
        while not self._closing:
            if not self.pending:
                await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            if not await self._write():
                # The store refused: wait before the next try (new events only join the batch).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.retry_after):
                        while not self._closing:
                            await self._wake.wait()
                            self._wake.clear()

    async def flush(self) -> bool:
        """Write what is pending in one batch; True when nothing is left."""
        return await self._write() and not self.pending

    async def _write(self) -> bool:
        """Write what is pending in one batch; False when the store refused it."""
        if not self.pending:
            return True
        batch = list(self.pending)
        try:
            await self.store.record_events(batch)
        except IvrError as exc:
            log.warning("acd.events_not_recorded", error=str(exc), pending=len(batch))
            return False
        self.batches += 1
        for event in batch:                    # (some may have been dropped meanwhile)
            if self.pending and self.pending[0] is event:
                self.pending.popleft()
        return True

    async def close(self) -> None:
        """Let the batch being written finish, write what is left, stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait({self._task})
        if not await self.flush():
            log.error("acd.events_lost", lost=len(self.pending) + self.dropped)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("acd.events_writer_crashed", exc_info=task.exception())
