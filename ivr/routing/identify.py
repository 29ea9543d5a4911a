"""Who is calling: the facts a flow reads as ``caller.*`` before it plays a single prompt.

``identify`` normalises the caller ID, then asks the caller registry and the call history at the
same time, under one time budget.  Whatever does not answer in time, or fails, is left unknown
and logged as a warning; the call always goes on.  A withheld or invalid number asks nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog

from ivr.errors import IvrError
from ivr.routing.numbers import CallerNumber, normalize
from ivr.routing.registry import CallerRegistry, age_on
from ivr.store.base import Caller

__all__ = ["RepeatPolicy", "CallerFacts", "CallHistory", "identify", "DEFAULT_TIMEZONE"]

log = structlog.get_logger(__name__)

DEFAULT_TIMEZONE = ZoneInfo("Asia/Seoul")


@dataclasses.dataclass(frozen=True, slots=True)
class RepeatPolicy:
    """Who counts as a repeat caller (a flow's ``caller: repeat:``): ``calls`` or more calls
    within ``window`` seconds, this call included; with ``unserved_only`` only calls that did
    not reach an agent count (this call always counts)."""

    calls: int = 3
    window: float = 7 * 86400.0
    unserved_only: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class CallerFacts:
    """What the engine knows about the caller of one call."""

    number: str | None = None            # E.164; None when withheld or invalid
    anonymous: bool = False              # the caller withheld the number
    known: bool = False                  # found in the caller registry
    age: int | None = None               # international age on the day of the call (center's zone)
    recent_calls: int | None = None      # calls within the repeat window, this call included
    is_repeat: bool = False
    language: str | None = None          # preferred prompt language from the registry
    needs_assistance: bool = False

    def variables(self) -> dict[str, Any]:
        """The ``caller.*`` variables a flow reads."""
        return {
            "caller.known": self.known,
            "caller.age": self.age,
            "caller.recent_calls": self.recent_calls,
            "caller.is_repeat": self.is_repeat,
            "caller.language": self.language,
            "caller.needs_assistance": self.needs_assistance,
            "caller.number": self.number,
            "caller.anonymous": self.anonymous,
        }


class CallHistory(Protocol):
    """The part of the store ``identify`` reads (``ivr.store.base.Store`` has it)."""

    async def count_calls_since(self, number: str, since: dt.datetime, *,
                                unserved_only: bool = False, exclude_call: str | None = None) -> int: ...


async def identify(raw_caller_id: str | None, *, now: dt.datetime, tz: dt.tzinfo = DEFAULT_TIMEZONE,
                   registry: CallerRegistry, store: CallHistory, repeat: RepeatPolicy = RepeatPolicy(),
                   budget: float = 1.0, call_id: str | None = None, region: str = "KR",
                   number: CallerNumber | None = None) -> CallerFacts:
    """The facts about the caller of call ``call_id`` presenting ``raw_caller_id`` at ``now``.

    Returns within ``budget`` seconds (plus scheduling noise) whatever the registry and the store
    do; never raises but for cancellation.  ``now`` should be aware (a naive time is read as UTC);
    the caller's age is taken on ``now``'s date in ``tz``.  The history count leaves ``call_id``
    out and adds one: this call is always included.  ``number``: the caller ID already
    normalised (``normalize(raw_caller_id, region)``), so it is not done twice per call.
    """
    if number is None:
        number = normalize(raw_caller_id, region)
    if not number.ok:
        return CallerFacts(anonymous=number.anonymous)
    e164 = number.e164
    assert e164 is not None
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)

    lookup = asyncio.ensure_future(_ask(registry.lookup, e164))
    history = asyncio.ensure_future(_ask(store.count_calls_since, e164, now - dt.timedelta(seconds=repeat.window),
                                         unserved_only=repeat.unserved_only, exclude_call=call_id))
    try:
        await asyncio.wait((lookup, history), timeout=max(0.0, budget))
    finally:
        _abandon(lookup, history)       # cancels what is left (also when we are cancelled)

    caller: Caller | None = None
    if not lookup.done() or lookup.cancelled():
        log.warning("caller.registry_timeout", number=e164, budget=budget)
    elif (exc := lookup.exception()) is not None:
        log.warning("caller.registry_unavailable", number=e164, error=_describe(exc))
    else:
        caller = lookup.result()

    recent: int | None = None
    if not history.done() or history.cancelled():
        log.warning("caller.history_unavailable", number=e164, error=f"no answer within {budget:g} s")
    elif (exc := history.exception()) is not None:
        log.warning("caller.history_unavailable", number=e164, error=_describe(exc))
    else:
        recent = history.result() + 1

    day = now.astimezone(tz).date()
    return CallerFacts(
        number=e164,
        anonymous=False,
        known=caller is not None,
        age=age_on(caller.birth_date, day) if caller and caller.birth_date else None,
        recent_calls=recent,
        is_repeat=recent is not None and recent >= repeat.calls,
        language=caller.language if caller else None,
        needs_assistance=caller.needs_assistance if caller else False,
    )


async def _ask(method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    # Inside the task, so that even a method that fails before awaiting fails there.
    return await method(*args, **kwargs)


def _describe(exc: BaseException) -> str:
    # Our errors say what failed without the number; others are named by class only, since
    # their text may hold a URL or a query with the number in clear.
    return str(exc) if isinstance(exc, IvrError) else type(exc).__name__


def _abandon(*tasks: asyncio.Future[Any]) -> None:
    """Cancel the lookups still running; never wait for them (the budget is spent)."""
    for task in tasks:
        if task.done():
            _consume(task)
        else:
            task.cancel()
            task.add_done_callback(_consume)


def _consume(task: asyncio.Future[Any]) -> None:
    # Read the outcome so that asyncio never reports it as "never retrieved"; the result itself
    # has been handled (or given up) by ``identify``.
    if not task.cancelled():
        task.exception()
