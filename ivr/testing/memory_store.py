"""An in-memory ``Store`` for tests: the same contract as the SQLite and PostgreSQL stores.

``fail`` makes a method raise: ``store.fail["count_calls_since"] = StoreError("disk full")``.
``gate`` makes a method wait on an ``asyncio.Event`` before answering (a slow database):
``store.gate["get_caller"] = asyncio.Event()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Sequence

from ivr.call import CallRecord, utcnow
from ivr.store.base import SERVED_OUTCOMES, Caller, QueueEvent

__all__ = ["MemoryStore"]


class MemoryStore:
    def __init__(self) -> None:
        self.calls: dict[str, CallRecord] = {}
        self.callers: dict[str, Caller] = {}
        self.events: list[QueueEvent] = []   # in the order recorded
        self.fail: dict[str, BaseException] = {}
        self.gate: dict[str, asyncio.Event] = {}
        self.asked: list[str] = []        # names of the methods called, in order
        self.opened = False

    async def _enter(self, method: str) -> None:
        self.asked.append(method)
        gate = self.gate.get(method)
        if gate is not None:
            await gate.wait()
        exc = self.fail.get(method)
        if exc is not None:
            raise exc

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.opened = False

    # -- calls -----------------------------------------------------------------------------
    async def call_started(self, record: CallRecord) -> None:
        await self._enter("call_started")
        self.calls[record.call_id] = dataclasses.replace(record)

    async def record_call(self, record: CallRecord) -> None:
        await self._enter("record_call")
        self.calls[record.call_id] = dataclasses.replace(record)

    async def recent_calls(self, limit: int = 50) -> list[CallRecord]:
        await self._enter("recent_calls")
        return sorted(self.calls.values(), key=lambda r: r.started_at, reverse=True)[:limit]

    async def get_call(self, call_id: str) -> CallRecord | None:
        await self._enter("get_call")
        return self.calls.get(call_id)

    async def count_calls_since(self, number: str, since: dt.datetime, *,
                                unserved_only: bool = False, exclude_call: str | None = None) -> int:
        await self._enter("count_calls_since")
        return sum(1 for r in self.calls.values()
                   if r.number == number and r.started_at >= since and r.call_id != exclude_call
                   and not (unserved_only and r.outcome in SERVED_OUTCOMES))

    # -- the caller registry -----------------------------------------------------------------
    async def put_callers(self, callers: Sequence[Caller]) -> int:
        await self._enter("put_callers")
        now = utcnow()
        for c in callers:
            self.callers[c.number] = dataclasses.replace(c, updated_at=now)
        return len(callers)

    async def get_caller(self, number: str) -> Caller | None:
        await self._enter("get_caller")
        return self.callers.get(number)

    # -- the queue event log -----------------------------------------------------------------
    async def record_events(self, events: Sequence[QueueEvent]) -> None:
        if not events:                    # as the real stores: no database work, so no failure
            self.asked.append("record_events")
            return
        await self._enter("record_events")
        self.events.extend(dataclasses.replace(e, at=_utc(e.at)) for e in events)

    async def call_events(self, call_id: str) -> list[QueueEvent]:
        await self._enter("call_events")
        return sorted((e for e in self.events if e.call_id == call_id), key=lambda e: e.at)

    async def agent_events(self, agent_id: str, since: dt.datetime,
                           limit: int = 500) -> list[QueueEvent]:
        await self._enter("agent_events")
        if limit < 1:
            return []
        since = _utc(since)
        return sorted((e for e in self.events if e.agent_id == agent_id and e.at >= since),
                      key=lambda e: e.at)[:limit]


def _utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC, as the real stores do; read back in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)
