"""A ``Call`` whose caller follows a script: for tests and for reading flows without Asterisk.

The script is an ordered list of what the caller does::

    call = ScriptedCall(
        press("1"),                       # at the next moment the IVR waits for a key
        press("9", during="main_menu"),   # while main_menu plays (stops it when barge-in is on)
        silence(),                        # lets the next wait time out
        hang_up(during="goodbye"),        # hangs up while goodbye plays
    )

Actions are used strictly in order.  When the IVR waits for a key and the next action is not
for that moment (or the script is over), the wait times out at once: no test ever sleeps.
``played`` (``"ko/welcome"``: language and prompt id) and ``prompts`` (ids only) tell what the
caller heard, ``events`` everything that happened.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

from ivr.call import Gathered, Prompt
from ivr.errors import CallEnded

__all__ = ["ScriptedCall", "Press", "Silence", "HangUp", "press", "silence", "hang_up"]


@dataclasses.dataclass(frozen=True, slots=True)
class Press:
    keys: str
    during: str | None = None      # a prompt id (or "ko/welcome"); None: when the IVR waits


@dataclasses.dataclass(frozen=True, slots=True)
class Silence:
    """The caller presses nothing until the wait times out."""


@dataclasses.dataclass(frozen=True, slots=True)
class HangUp:
    during: str | None = None


Action = Press | Silence | HangUp


def press(keys: str, *, during: str | None = None) -> Press:
    return Press(keys, during)


def silence() -> Silence:
    return Silence()


def hang_up(*, during: str | None = None) -> HangUp:
    return HangUp(during)


class ScriptedCall:
    """Implements ``ivr.call.Call``."""

    def __init__(self, *script: Action, caller_number: str = "01012345678", dialled: str = "15771000",
                 call_id: str = "call-1", switch: str = "asterisk", center: str | None = None) -> None:
        self.script: collections.deque[Action] = collections.deque(script)
        self._id = call_id
        self.switch = switch
        self.center = center
        self._caller_number = caller_number
        self._dialled = dialled
        self._hung_up = False
        self._ended_as = "hangup"
        self.buffer: collections.deque[str] = collections.deque()
        self.answered = False
        self.played: list[str] = []                # "ko/welcome" for each prompt started, in order
        self.heard: list[Prompt] = []              # the same, as Prompt values
        self.events: list[tuple] = []               # ("answer",), ("play", media, barged), ("gather", …) …
        self.transferred_to: tuple[str, str, int] | None = None
        self.hung_up_by_ivr = False

    # -- what the test reads -------------------------------------------------------------------
    @property
    def prompts(self) -> list[str]:
        """Prompt ids heard, in order (``welcome``)."""
        return [p.id for p in self.heard]

    @property
    def script_left(self) -> list[Action]:
        return list(self.script)

    # -- the Call port -------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._id

    @property
    def caller_number(self) -> str:
        return self._caller_number

    @property
    def dialled(self) -> str:
        return self._dialled

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    @property
    def ended_as(self) -> str | None:
        return self._ended_as if self._hung_up else None

    def _check(self) -> None:
        if self._hung_up:
            raise CallEnded("the call is over", reason=self._ended_as)

    def _caller_hangs_up(self) -> None:
        self._hung_up = True
        self.events.append(("caller_hangup",))
        raise CallEnded("the caller has hung up", reason="hangup")

    async def answer(self) -> None:
        self._check()
        if not self.answered:
            self.answered = True
            self.events.append(("answer",))

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> None:
        self._check()
        for prompt in prompts:
            item = str(prompt)
            if barge_in and self.buffer:
                self.events.append(("play_skipped", item))
                continue
            self.played.append(item)
            self.heard.append(prompt)
            head = self.script[0] if self.script else None
            if isinstance(head, (Press, HangUp)) and head.during in (item, prompt.id):
                self.script.popleft()
                if isinstance(head, HangUp):
                    self.events.append(("play", item, "hangup"))
                    self._caller_hangs_up()
                self.buffer.extend(head.keys)          # type: ignore[union-attr]
                self.events.append(("play", item, "barged" if barge_in else "keys"))
            else:
                self.events.append(("play", item, "done"))

    async def gather(self, *, max_digits: int, first_timeout: float, inter_timeout: float,
                     terminator: str = "#") -> Gathered:
        self._check()
        digits = ""
        while True:
            while self.buffer:
                key = self.buffer.popleft()
                if terminator and key == terminator:
                    return self._gathered(digits, "terminator")
                digits += key
                if len(digits) >= max_digits:
                    return self._gathered(digits, "max_digits")
            head = self.script[0] if self.script else None
            if isinstance(head, Press) and head.during is None:
                self.script.popleft()
                self.buffer.extend(head.keys)
                continue
            if isinstance(head, HangUp) and head.during is None:
                self.script.popleft()
                self._caller_hangs_up()
            if isinstance(head, Silence):
                self.script.popleft()
            return self._gathered(digits, "timeout")

    def _gathered(self, digits: str, ended_by: str) -> Gathered:
        self.events.append(("gather", digits, ended_by))
        return Gathered(digits, ended_by)  # type: ignore[arg-type]

    def flush_digits(self) -> None:
        if self.buffer:
            self.events.append(("flush", "".join(self.buffer)))
        self.buffer.clear()

    async def transfer(self, context: str, extension: str, priority: int = 1) -> None:
        self._check()
        self.transferred_to = (context, extension, priority)
        self.events.append(("transfer", context, extension, priority))
        self._hung_up, self._ended_as = True, "transferred"

    async def hangup(self) -> None:
        if not self._hung_up:
            self._hung_up, self._ended_as = True, "engine"
            self.hung_up_by_ivr = True
            self.events.append(("hangup",))

    async def wait_hangup(self, timeout: float | None = None) -> bool:
        # A scripted caller hangs up when the script says so at this moment; else the wait ends.
        head = self.script[0] if self.script else None
        if not self._hung_up and isinstance(head, HangUp) and head.during is None:
            self.script.popleft()
            self._hung_up = True
            self.events.append(("caller_hangup",))
        return self._hung_up
