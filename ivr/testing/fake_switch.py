"""A switch in memory for queue tests: live calls a test hangs up at will, agents' phones that
answer (after a delay) or ring out, and bridges that remember who is in them.

    switch = FakeSwitch({"PJSIP/agent1": Phone(answer_after=0.05),
                         "PJSIP/agent2": Phone(answers=False)})
    caller = LiveCall("c1", "01012345678")
    ... queue_handoff(caller, …) in a task …
    await switch.answered("PJSIP/agent1")       # the agent's leg, once answered
    caller.hang_up()                             # the caller hangs up
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence

from ivr.call import Call, Gathered, Prompt
from ivr.errors import CallEnded, DialFailed

__all__ = ["LiveCall", "Phone", "FakeSwitch", "FakeBridge"]


class LiveCall:
    """Implements ``ivr.call.Call``: a call that stays up until someone hangs it up."""

    def __init__(self, call_id: str, caller_number: str = "", dialled: str = "15771000", *,
                 play_time: float = 0.0, switch: str = "asterisk", center: str | None = None) -> None:
        self._id = call_id
        self.switch = switch
        self.center = center
        self._caller = caller_number
        self._dialled = dialled
        self.play_time = play_time
        self.played: list[str] = []            # "ko/welcome" for each prompt started
        self.hung_up_by_ivr = False
        self._gone = asyncio.get_running_loop().create_future()
        self._keys: list[str] = []
        self._key_pressed = asyncio.Event()
        self.variables: dict[str, str] = {}    # channel variables set when it was dialled

    def __repr__(self) -> str:
        return f"<LiveCall {self._id}>"

    @property
    def id(self) -> str:
        return self._id

    @property
    def caller_number(self) -> str:
        return self._caller

    @property
    def dialled(self) -> str:
        return self._dialled

    @property
    def hung_up(self) -> bool:
        return self._gone.done()

    @property
    def ended_as(self) -> str | None:
        if not self._gone.done():
            return None
        return "engine" if self.hung_up_by_ivr else self._gone.result()

    def hang_up(self) -> None:
        """The person on this call hangs up."""
        if not self._gone.done():
            self._gone.set_result("hangup")

    def lose(self) -> None:
        """The switch loses the call (Asterisk restarts)."""
        if not self._gone.done():
            self._gone.set_result("lost")

    def _check(self) -> None:
        if self.hung_up:
            raise CallEnded(f"{self._id} is over",
                            reason="engine" if self.hung_up_by_ivr else self._gone.result())

    async def answer(self) -> None:
        self._check()

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> None:
        for prompt in prompts:
            self._check()
            if barge_in and self._keys:
                return
            self.played.append(str(prompt))
            if self.play_time:
                await asyncio.wait({self._gone}, timeout=self.play_time)
        self._check()

    def press(self, keys: str) -> None:
        """The person on this call presses ``keys``."""
        self._keys.extend(keys)
        self._key_pressed.set()

    async def gather(self, *, max_digits: int, first_timeout: float, inter_timeout: float,
                     terminator: str = "#") -> Gathered:
        self._check()
        digits = ""
        timeout = first_timeout
        while True:
            while self._keys:
                key = self._keys.pop(0)
                if terminator and key == terminator:
                    return Gathered(digits, "terminator")
                digits += key
                if len(digits) >= max_digits:
                    return Gathered(digits, "max_digits")
            self._key_pressed.clear()
            pressed = asyncio.ensure_future(self._key_pressed.wait())
            done, _ = await asyncio.wait({pressed, self._gone}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            pressed.cancel()
            self._check()
            if not done:
                return Gathered(digits, "timeout")
            timeout = inter_timeout

    def flush_digits(self) -> None:
        self._keys.clear()

    async def transfer(self, context: str, extension: str, priority: int = 1) -> None:
        self._check()

    async def hangup(self) -> None:
        if not self._gone.done():
            self.hung_up_by_ivr = True
            self._gone.set_result("engine")

    async def wait_hangup(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(self._gone), timeout)
        except TimeoutError:
            return False
        return True


@dataclasses.dataclass
class Phone:
    """An agent's phone: answers after ``answer_after`` seconds, or rings out (``answers=False``)."""

    answers: bool = True
    answer_after: float = 0.0
    busy: bool = False
    keys: str = ""                   # pressed just after the call is answered
    talk: float | None = None        # hangs up this long after the answer (None: stays)
    rang: int = 0
    calls: list[LiveCall] = dataclasses.field(default_factory=list)


class FakeBridge:
    def __init__(self, switch: FakeSwitch, bridge_id: str, kind: str) -> None:
        self.switch = switch
        self.id = bridge_id
        self.kind = kind
        self.members: set[str] = set()
        self.moh: str | None = None
        self.destroyed = False
        self.switch_name = "asterisk"        # the server it is on (``near``)

    async def add(self, call) -> None:
        if call.hung_up:
            raise CallEnded(f"{call.id} is gone")
        self.members.add(call.id)
        self.switch.log.append(("add", self.kind, call.id))

    async def remove(self, call) -> None:
        self.members.discard(call.id)
        self.switch.log.append(("remove", self.kind, call.id))

    async def start_moh(self, moh_class: str | None = None) -> None:
        self.moh = moh_class or "default"

    async def destroy(self) -> None:
        self.destroyed = True
        self.members.clear()
        self.switch.log.append(("destroy", self.kind, self.id))


class FakeSwitch:
    """Implements ``ivr.call.Switch``."""

    def __init__(self, phones: Mapping[str, Phone]) -> None:
        self.phones = dict(phones)
        self.bridges: list[FakeBridge] = []
        self.log: list[tuple[str, ...]] = []          # ("ring", endpoint), ("answer", endpoint), …
        self.placed: list[tuple[str, str | None, str | None]] = []   # (endpoint, near's switch, home)
        self.video_rings: list[str] = []         # endpoints rung with video offered
        self.dialled_with: list[dict[str, object]] = []   # answered dials: endpoint, caller_id, args, channel_id
        self._answered: dict[str, asyncio.Queue[LiveCall]] = {}
        self.lines = 0                   # calls placed and not over: ringing or answered
        self.most_lines = 0

    def _line_taken(self) -> None:
        self.lines += 1
        self.most_lines = max(self.most_lines, self.lines)

    def _line_freed(self, _gone: object = None) -> None:
        self.lines -= 1

    def _queue(self, endpoint: str) -> asyncio.Queue[LiveCall]:
        return self._answered.setdefault(endpoint, asyncio.Queue())

    async def dial(self, endpoint: str, *, timeout: float, caller_id: str | None = None,
                   args: Sequence[str] = ("dialled",),
                   variables: Mapping[str, str] | None = None,
                   near: Call | None = None, home: str | None = None,
                   channel_id: str | None = None, video: bool = False) -> LiveCall:
        self.placed.append((endpoint, near.switch if near is not None else None, home))
        if video:
            self.video_rings.append(endpoint)
        phone = self.phones.get(endpoint)
        if phone is None:
            raise DialFailed(f"{endpoint}: no such endpoint", status=400)
        phone.rang += 1
        self.log.append(("ring", endpoint))
        self._line_taken()
        try:
            if phone.busy:
                self.log.append(("busy", endpoint))
                raise DialFailed(f"{endpoint}: busy", cause=17)
            if not phone.answers or phone.answer_after >= timeout:
                await asyncio.sleep(timeout)
                self.log.append(("no_answer", endpoint))
                raise DialFailed(f"{endpoint}: no answer", cause=19)
            await asyncio.sleep(phone.answer_after)
        except asyncio.CancelledError:
            self.log.append(("ring_stopped", endpoint))
            self._line_freed()
            raise
        except DialFailed:
            self._line_freed()
            raise
        self.dialled_with.append({"endpoint": endpoint, "caller_id": caller_id, "args": tuple(args),
                                  "channel_id": channel_id})
        leg = LiveCall(channel_id or f"{endpoint}#{phone.rang}", caller_id or "",
                       switch=near.switch if near is not None else "asterisk", center=home)
        leg.variables = dict(variables or {})
        leg._gone.add_done_callback(self._line_freed)
        if phone.keys:                  # a moment after the answer, as a person would
            asyncio.get_running_loop().call_later(0.02, leg.press, phone.keys)
        if phone.talk is not None:
            asyncio.get_running_loop().call_later(phone.talk, leg.hang_up)
        phone.calls.append(leg)
        self.log.append(("answer", endpoint))
        self._queue(endpoint).put_nowait(leg)
        return leg

    async def answered(self, endpoint: str, timeout: float = 5.0) -> LiveCall:
        """The next leg answered on ``endpoint``."""
        return await asyncio.wait_for(self._queue(endpoint).get(), timeout)

    async def bridge(self, kind: str = "mixing", *, name: str | None = None,
                     near: Call | None = None) -> FakeBridge:
        bridge = FakeBridge(self, f"{kind}-{len(self.bridges) + 1}", kind)
        bridge.switch_name = near.switch if near is not None else "asterisk"
        self.bridges.append(bridge)
        return bridge

    async def sweep_bridges(self) -> int:
        """Forget the bridges that were destroyed; how many (this switch has no earlier engine)."""
        before = len(self.bridges)
        self.bridges = [b for b in self.bridges if not b.destroyed]
        return before - len(self.bridges)

    def rings(self) -> list[str]:
        return [entry[1] for entry in self.log if entry[0] == "ring"]
