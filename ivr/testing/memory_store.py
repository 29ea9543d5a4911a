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
from ivr.store.base import SERVED_OUTCOMES, Caller

__all__ = ["MemoryStore"]


class MemoryStore:
    def __init__(self) -> None:
        self.calls: dict[str, CallRecord] = {}
        self.callers: dict[str, Caller] = {}
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
