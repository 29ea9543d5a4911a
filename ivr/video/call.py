"""``VideoCall``: a video caller's live call as flows and queues see it (the ``Call`` port).

It is the switch's call, with three differences:

* ``caller_number`` is the number the caller gave on the page (a browser has no caller ID; a
  video phone's own caller ID stays), so the elderly and repeat-caller priorities and the
  call history work as for any caller;
* ``dialled`` is the video number (``video.number``), whatever the page's SIP request named;
* ``play`` also sends the page what is said, as text in the call's language (``caption``
  messages): the place in line, the expected wait, a flow's prompts.  The audio still plays
  (a hearing companion hears it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ivr.call import Call, Gathered, Prompt

__all__ = ["VideoCall"]


class VideoCall:
    __slots__ = ("inner", "number", "video_number", "caption")

    def __init__(self, inner: Call, *, number: str | None, video_number: str,
                 caption: Callable[[Sequence[Prompt]], None]) -> None:
        self.inner = inner
        self.number = number
        self.video_number = video_number
        self.caption = caption

    def __repr__(self) -> str:
        return f"<VideoCall {self.inner!r}>"

    # -- what differs ------------------------------------------------------------------------
    @property
    def caller_number(self) -> str:
        return self.number if self.number is not None else self.inner.caller_number

    @property
    def dialled(self) -> str:
        return self.video_number

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> None:
        try:
            self.caption(prompts)
        except Exception:       # the page's text is an extra: never the call's failure
            pass
        await self.inner.play(prompts, barge_in=barge_in)

    # -- the rest is the switch's call ----------------------------------------------------------
    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def hung_up(self) -> bool:
        return self.inner.hung_up

    @property
    def switch(self) -> str:
        return self.inner.switch

    @property
    def center(self) -> str | None:
        return self.inner.center

    @property
    def ended_as(self) -> str | None:
        return self.inner.ended_as

    async def answer(self) -> None:
        await self.inner.answer()

    async def gather(self, *, max_digits: int, first_timeout: float, inter_timeout: float,
                     terminator: str = "#") -> Gathered:
        return await self.inner.gather(max_digits=max_digits, first_timeout=first_timeout,
                                       inter_timeout=inter_timeout, terminator=terminator)

    def flush_digits(self) -> None:
        self.inner.flush_digits()

    async def transfer(self, context: str, extension: str, priority: int = 1) -> None:
        await self.inner.transfer(context, extension, priority)

    async def hangup(self) -> None:
        await self.inner.hangup()

    async def wait_hangup(self, timeout: float | None = None) -> bool:
        return await self.inner.wait_hangup(timeout)

    def __getattr__(self, name: str) -> Any:      # what the adapter offers beyond the port
        return getattr(self.inner, name)
