"""The store interface the services use."""

from __future__ import annotations

from typing import Protocol

from ivr.call import CallRecord


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def record_call(self, record: CallRecord) -> None:
        """Store a finished call (insert or replace by call id)."""

    async def recent_calls(self, limit: int = 50) -> list[CallRecord]:
        """The most recent calls, newest first."""
