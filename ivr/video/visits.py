"""Visits of the video page, and the messages the engine sends the pages.

A visit is made when a caller presses "start a video call" (``POST /video/api/visits``): a
random token of 128 bits that the page's SIP INVITE carries (``X-IVR-Visit``) and that its
message socket is opened with.  A visit serves one call; a visit no call came for within
``UNUSED_TTL`` seconds, and a visit whose call ended ``ENDED_TTL`` seconds ago, are forgotten.

``Pages`` is a small hub: a page subscribes to a key (``visit:<token>``, ``agent:<id>``) and
gets every message published to it from then on, after the last ``BACKLOG`` messages sent
before (a page that reloads sees its chat again).  A page that does not read is not waited
for: past ``QUEUE_SIZE`` unread messages it loses the oldest, never the engine its pace.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Visit", "Visits", "Pages", "Subscription", "UNUSED_TTL", "ENDED_TTL", "BACKLOG"]

UNUSED_TTL = 600.0      # seconds a visit waits for its call
ENDED_TTL = 600.0       # seconds a visit is kept after its call ended (the page shows the end)
BACKLOG = 200           # messages kept per key for a page that (re)subscribes
QUEUE_SIZE = 500        # unread messages per subscriber, at most


@dataclasses.dataclass(eq=False, slots=True)
class Visit:
    token: str
    topic: str
    sign_language: str
    language: str
    number: str | None                 # E.164, when the caller gave one (priorities, history)
    booking: str | None                # the booking code, when this is the booked consultation
    created: float
    call_id: str | None = None
    state: str = "new"                 # new, waiting, ringing, talking, ended
    agent_id: str | None = None
    ended_at: float | None = None

    @property
    def key(self) -> str:
        return f"visit:{self.token}"


class Visits:
    """The open visits, at most ``limit`` (the oldest unused one goes first)."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._by_token: dict[str, Visit] = {}
        self._by_call: dict[str, Visit] = {}
        self.gone: list[Visit] = []          # forgotten by ``open`` since the last ``sweep``

    def __len__(self) -> int:
        return len(self._by_token)

    def __iter__(self) -> Iterator[Visit]:
        return iter(list(self._by_token.values()))

    def open(self, *, topic: str, sign_language: str, language: str, number: str | None,
             booking: str | None) -> Visit:
        self.gone.extend(self.sweep())
        if len(self._by_token) >= self.limit:
            unused = [v for v in self._by_token.values() if v.call_id is None]
            if not unused:
                raise OverflowError("too many video visits at once")
            oldest = min(unused, key=lambda v: v.created)
            self._drop(oldest)
            self.gone.append(oldest)
        visit = Visit(secrets.token_urlsafe(16), topic, sign_language, language, number, booking,
                      self.clock())
        self._by_token[visit.token] = visit
        return visit

    def get(self, token: str | None) -> Visit | None:
        if not token:
            return None
        return self._by_token.get(token)

    def of_call(self, call_id: str) -> Visit | None:
        return self._by_call.get(call_id)

    def attach(self, visit: Visit, call_id: str) -> bool:
        """The visit's call arrived; False when it already has another (a visit serves one
        call; the same call picked up again, after a lost event socket, is still its own)."""
        if visit.call_id == call_id:
            return True
        if visit.call_id is not None:
            return False
        visit.call_id, visit.state = call_id, "waiting"
        self._by_call[call_id] = visit
        return True

    def ended(self, visit: Visit) -> None:
        visit.state, visit.ended_at = "ended", self.clock()

    def sweep(self) -> list[Visit]:
        """Forget the visits whose time is up; those forgotten (and those ``open`` forgot)."""
        now = self.clock()
        gone, self.gone = self.gone, []
        for visit in list(self._by_token.values()):
            if (visit.call_id is None and now - visit.created > UNUSED_TTL
                    or visit.ended_at is not None and now - visit.ended_at > ENDED_TTL):
                self._drop(visit)
                gone.append(visit)
        return gone

    def _drop(self, visit: Visit) -> None:
        self._by_token.pop(visit.token, None)
        if visit.call_id is not None:
            self._by_call.pop(visit.call_id, None)


class Subscription:
    def __init__(self, pages: Pages, key: str) -> None:
        self.pages, self.key = pages, key
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)

    def put(self, message: dict[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()             # the oldest goes: a page that does not read
        self.queue.put_nowait(message)

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self.pages._subs.get(self.key, set()).discard(self)


class Pages:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self._backlog: dict[str, collections.deque[dict[str, Any]]] = {}

    def subscribe(self, key: str) -> Subscription:
        sub = Subscription(self, key)
        for message in self._backlog.get(key, ()):
            sub.put(message)
        self._subs.setdefault(key, set()).add(sub)
        return sub

    def publish(self, key: str, message: dict[str, Any], *, keep: bool = True) -> None:
        if keep:
            self._backlog.setdefault(key, collections.deque(maxlen=BACKLOG)).append(message)
        for sub in list(self._subs.get(key, ())):
            sub.put(message)

    def subscribers(self, key: str) -> int:
        return len(self._subs.get(key, ()))

    def forget(self, key: str) -> None:
        self._backlog.pop(key, None)
        if not self._subs.get(key):
            self._subs.pop(key, None)
