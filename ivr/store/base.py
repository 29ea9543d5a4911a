"""The store interface the services use, and the values it keeps."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from ivr.call import CallRecord

# Outcomes that mean a person served the caller ("unserved" calls are all the others).
SERVED_OUTCOMES = frozenset({"agent_connected"})


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """What the center knows about a phone number's owner (the caller registry)."""

    number: str                               # E.164, e.g. +821012345678
    birth_date: dt.date | None = None
    language: str | None = None               # preferred prompt language: ko, en, zh, vi
    needs_assistance: bool = False
    name: str | None = None
    updated_at: dt.datetime | None = None


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # -- calls -----------------------------------------------------------------------------
    async def call_started(self, record: CallRecord) -> None:
        """Note a call as it starts (so concurrent calls and crashed engines still count)."""

    async def record_call(self, record: CallRecord) -> None:
        """Store a finished call (insert or replace by call id)."""

    async def recent_calls(self, limit: int = 50) -> list[CallRecord]:
        """The most recent calls, newest first."""

    async def count_calls_since(self, number: str, since: dt.datetime, *,
                                unserved_only: bool = False, exclude_call: str | None = None) -> int:
        """Calls from ``number`` (E.164) that started at or after ``since``.

        ``unserved_only`` counts only calls whose outcome is not in ``SERVED_OUTCOMES``
        (calls still in progress count as unserved).  ``exclude_call`` leaves one call id out.
        """

    # -- the caller registry -----------------------------------------------------------------
    async def put_callers(self, callers: Sequence[Caller]) -> int:
        """Insert or update callers by number; returns how many were written."""

    async def get_caller(self, number: str) -> Caller | None:
        """The registered caller for an E.164 number, or None."""
