"""The ``Call`` port: everything a flow, a queue or a callback may do to a live call.

Flows, queues and callbacks speak only to this port.  The ARI adapter implements it for real
calls (``ivr.ari.call.AriCall``); tests and the simulator implement it too.  The port speaks
the caller's world: a call hears ``Prompt`` values (a prompt id in a language) and the
adapter alone knows how a switch finds the audio.  Its errors are its own: every method
raises ``ivr.errors.CallEnded`` (with the way the call ended) once the call is over, and
``ivr.errors.CallError`` when the switch cannot do what was asked.

This module also holds the other ports: ``Switch`` and ``Bridge`` (what the queues need of the
switch beyond one call), ``Queues`` (what a flow needs of the agent queues), ``Line`` and
``Booking`` (what the callback desk and the queues need of each other), and the one list of
call outcomes, ``Outcome``.

Digits: a call keeps a buffer of keys pressed and not yet consumed.  ``play`` with
``barge_in=True`` stops as soon as a key is pressed (or does not start when a key is already
waiting) and leaves the key in the buffer; ``gather`` consumes the buffer first, so a key that
interrupted a prompt is the first digit gathered.  ``flush_digits`` empties the buffer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ivr.flow.model import CallbackOffer

GatherEnd = Literal["max_digits", "terminator", "timeout"]


class Outcome(enum.StrEnum):
    """How a call ended, as ``ivr calls list`` shows it and the store keeps it (one list, here).

    ``completed``            the flow ended normally (a ``hangup`` node, ``return`` from the top)
    ``caller_hangup``        the caller hung up before the flow ended (not in a queue)
    ``retries_exhausted``    a menu or gather ran out of tries and the flow ended
    ``transferred``          handed back to the dialplan (``detail``: the target)
    ``queued``               handed to a queue when the engine runs none (``detail``: the queue)
    ``agent_connected``      talked to an agent (``detail``: who, and the wait)
    ``abandoned``            hung up while waiting in a queue (``detail``: the wait)
    ``queue_timeout``        nobody could take the call: polite message, hang-up
    ``callback_booked``      took a callback instead of waiting (``detail``: the reservation)
    ``busy``                 turned away at the door: the engine was full (``detail``: why)
    ``no_flow``              no flow answers the dialled number
    ``lost``                 the switch lost the call (Asterisk restarted, or the engine did
                             while the call was in a state it cannot be picked up from)
    ``error``                something went wrong (``detail`` says what); the caller heard
                             ``system_error`` when possible
    """

    COMPLETED = "completed"
    CALLER_HANGUP = "caller_hangup"
    RETRIES_EXHAUSTED = "retries_exhausted"
    TRANSFERRED = "transferred"
    QUEUED = "queued"
    AGENT_CONNECTED = "agent_connected"
    ABANDONED = "abandoned"
    QUEUE_TIMEOUT = "queue_timeout"
    CALLBACK_BOOKED = "callback_booked"
    BUSY = "busy"
    NO_FLOW = "no_flow"
    LOST = "lost"
    ERROR = "error"


class NodeExit(enum.StrEnum):
    """How a call left a node (``CallRecord.exits``, one per entry of ``nodes``).

    ``next``      went on to the node the flow names (a play, a set, a branch, a goto …)
    ``key``       a menu key or gathered digits that were accepted
    ``timeout``   a menu or gather ran out of tries, the last of them without a key
    ``invalid``   a menu or gather ran out of tries, the last of them a wrong key
    ``hangup``    the caller hung up at this node
    ``queue``     handed to a queue (the outcome says what came of it: agent, abandon …)
    ``transfer``  handed back to the dialplan
    ``end``       the flow ended here (a ``hangup`` node, ``return`` from the top)
    ``error``     the engine failed at this node (the outcome's detail says why)
    ``lost``      the switch lost the call at this node
    """

    NEXT = "next"
    KEY = "key"
    TIMEOUT = "timeout"
    INVALID = "invalid"
    HANGUP = "hangup"
    QUEUE = "queue"
    TRANSFER = "transfer"
    END = "end"
    ERROR = "error"
    LOST = "lost"


@dataclasses.dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt to play: its id in the catalogue and the language to say it in."""

    id: str
    language: str

    def __str__(self) -> str:
        return f"{self.language}/{self.id}"


@dataclasses.dataclass(frozen=True, slots=True)
class Gathered:
    """Keys collected by ``Call.gather``.

    ``digits`` never contains the terminator.  ``ended_by`` is ``"timeout"`` both when nothing
    was pressed (``digits == ""``) and when the caller stopped part-way.
    """

    digits: str
    ended_by: GatherEnd


@runtime_checkable
class Call(Protocol):
    """A live call as flows see it."""

    @property
    def id(self) -> str:
        """Stable id of the call (the ARI channel id for real calls)."""

    @property
    def caller_number(self) -> str:
        """Caller ID number exactly as presented ('' when withheld)."""

    @property
    def dialled(self) -> str:
        """The number the caller dialled (the dialplan extension)."""

    @property
    def hung_up(self) -> bool:
        """True once the call is over (whoever ended it)."""

    @property
    def switch(self) -> str:
        """The name of the media server the call is on (``switches:``)."""

    @property
    def center(self) -> str | None:
        """The center of that server: the caller's home center (None: not known)."""

    @property
    def ended_as(self) -> str | None:
        """How the call ended — ``hangup`` (the person), ``engine``, ``transferred``, ``lost``
        (the switch lost it) — as ``CallEnded.reason`` says; None while the call is live."""

    async def answer(self) -> None:
        """Answer the call (no-op when already answered)."""

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> None:
        """Play ``prompts`` in order and return when done.

        With ``barge_in`` a key press stops the playback at once; the key stays buffered.
        A prompt whose audio cannot be played is skipped (and logged), never fatal.
        """

    async def gather(self, *, max_digits: int, first_timeout: float, inter_timeout: float,
                     terminator: str = "#") -> Gathered:
        """Collect up to ``max_digits`` keys.

        Waits ``first_timeout`` seconds for the first key, then ``inter_timeout`` between keys;
        the terminator key (if any, '' for none) ends input early and is not returned.
        """

    def flush_digits(self) -> None:
        """Forget keys pressed but not yet consumed."""

    async def transfer(self, context: str, extension: str, priority: int = 1) -> None:
        """Hand the call back to the switch's dialplan at ``context,extension,priority``; later
        calls on the port raise ``CallEnded`` with reason ``transferred``."""

    async def hangup(self) -> None:
        """Hang up (no-op when already gone)."""

    async def wait_hangup(self, timeout: float | None = None) -> bool:
        """Wait until the call is gone; False when ``timeout`` seconds passed first."""


@runtime_checkable
class Bridge(Protocol):
    """Calls joined in Asterisk: a ``holding`` room (music, nobody hears anybody) or a
    ``mixing`` conversation."""

    id: str

    async def add(self, call: Call) -> None: ...

    async def remove(self, call: Call) -> None: ...

    async def start_moh(self, moh_class: str | None = None) -> None: ...

    async def destroy(self) -> None: ...


@runtime_checkable
class Switch(Protocol):
    """What queues need of the switch beyond one call: ring a phone, join calls."""

    async def dial(self, endpoint: str, *, timeout: float, caller_id: str | None = None,
                   args: Sequence[str] = ("dialled",),
                   variables: Mapping[str, str] | None = None,
                   near: Call | None = None, home: str | None = None,
                   channel_id: str | None = None, video: bool = False) -> Call:
        """Ring ``endpoint``; the answered call, or ``ivr.errors.DialFailed``.

        ``video``: offer video as well as audio (an interpreter's phone for a video caller).

        ``near``: place the leg on the server of that call (to bridge the two there).
        ``home``: the center the endpoint sits on (an agent's phone); from a server of another
        center the leg goes across the trunk to a server of ``home``.
        ``channel_id``: the new call's id (starting ``ivr-dial-``), for a call that must be found
        again after a restart by what it is for (a wellness attempt); None: a random one."""

    async def bridge(self, kind: str = "mixing", *, name: str | None = None,
                     near: Call | None = None) -> Bridge:
        """A new bridge, on the server of ``near`` when given."""

    async def sweep_bridges(self) -> int:
        """Destroy the bridges an earlier engine left behind that nobody is in now; how many."""


@runtime_checkable
class Queues(Protocol):
    """What a flow needs of the agent queues (``ivr.acd.service.QueueService`` in the engine,
    a stand-in in the simulator)."""

    async def queue_handoff(self, call: Call, record: CallRecord, queue: str, priority: str | None,
                            reason: str | None, language: str | None = None, *,
                            callback: CallbackOffer | None = None,
                            arrived_at: dt.datetime | None = None) -> None:
        """Carry ``call`` from the hand-off to its end; the outcome goes into ``record``.
        ``arrived_at`` keeps an earlier place in line (a customer called back, a caller
        picked up again after an engine restart)."""

    def queue_variable(self, name: str) -> Any:
        """``queue.<name>.estimated_wait`` / ``.waiting`` / ``.agents_available``; None when
        unknown."""

    async def cancel_callbacks(self, number: str, queue: str | None = None) -> int:
        """Cancel the open reservations of ``number`` (E.164); how many were cancelled."""


@dataclasses.dataclass(frozen=True, slots=True)
class Turn:
    """A held place whose turn came: ``agent_id`` is held for it (RINGING) until the holder
    calls ``Line.release`` or ``Line.take``."""

    entry: str
    queue: str
    agent_id: str


@runtime_checkable
class Line(Protocol):
    """What the callback desk needs of the queues: places held in a line for someone who is
    not on the phone yet (a reservation), told when their turn comes."""

    def has_queue(self, queue: str) -> bool: ...

    def hold_place(self, entry: str, queue: str, priority: str | None, arrived_at: dt.datetime,
                   on_turn: Callable[[Turn], None]) -> int | None:
        """Put ``entry`` in ``queue``'s line at the place of ``arrived_at``; its position (None
        when it is already in line).  ``on_turn`` is called (synchronously) when an agent is
        held for it."""

    def holds(self, entry: str) -> bool:
        """True while ``entry`` is in a line (waiting, or its turn has come)."""

    def withdraw(self, entry: str, why: str) -> bool:
        """Take ``entry`` out of its line; False when its turn has already come (an agent is
        held for it: the holder releases it)."""

    def release(self, turn: Turn, why: str) -> None:
        """The held agent is not needed after all: the entry leaves the line, the agent is free."""

    def take(self, turn: Turn) -> None:
        """The person is on the phone: the entry leaves the line and frees the held agent for
        the ``queue_handoff`` that follows (which takes them at once at the same place)."""

    def free_agents(self) -> int:
        """Agents available now (all queues)."""


@runtime_checkable
class Booking(Protocol):
    """What the queues need of the callback desk: book a callback for a waiting caller, and
    cancel a number's reservations."""

    async def book(self, call: Call, *, queue: str, priority: str | None, reason: str | None,
                   language: str, waited: float, call_id: str) -> str | None:
        """Confirm the number and store the reservation; its id, or None (stay in line)."""

    async def cancel_for(self, number: str, queue: str | None = None) -> int:
        """Cancel (and withdraw from the line) the open reservations of ``number``."""

    async def booked_on(self, call_id: str) -> str | None:
        """The id of the reservation booked on call ``call_id``, if one was (None also when
        the store cannot tell)."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# How a caller reached us (``CallRecord.channel``): a phone call, or the video entrance's web
# page (WebRTC, for callers who sign).
CHANNELS = ("voice", "video")
ChatSender = Literal["caller", "agent", "system"]
CHAT_SENDERS: tuple[ChatSender, ...] = ("caller", "agent", "system")
CHAT_TEXT_MAX = 1000        # characters a chat line keeps (the rest is cut off)
CHAT_LINES_MAX = 500        # lines a call keeps; later ones are dropped and counted


@dataclasses.dataclass(frozen=True, slots=True)
class ChatLine:
    """One line of a call's text chat (the video entrance's): when (aware, UTC), who —
    ``caller``, ``agent`` or ``system`` — and what."""

    at: dt.datetime
    sender: str
    text: str


@dataclasses.dataclass(slots=True)
class CallRecord:
    """What happened on one call: written by the runner, stored, listed by ``ivr calls list``.

    ``outcome`` is an ``Outcome`` (see there for each value and what ``detail`` holds).
    """

    call_id: str
    caller: str                      # caller ID as presented ('' when withheld)
    dialled: str
    started_at: dt.datetime = dataclasses.field(default_factory=utcnow)
    ended_at: dt.datetime | None = None
    flow: str | None = None
    flow_version: str | None = None
    language: str | None = None
    nodes: list[str] = dataclasses.field(default_factory=list)
    digits: list[str] = dataclasses.field(default_factory=list)
    outcome: Outcome | None = None
    detail: str = ""
    priority: str | None = None
    reason: str | None = None        # why it was routed so, e.g. "bypass: elderly"
    number: str | None = None        # the caller's number in E.164 (None: unknown/withheld)
    # How the call left each node of ``nodes`` (same length once the call has ended; see
    # ``NodeExit``): what the journey report's funnel and ``ivr_flow_node_exits_total`` count.
    exits: list[str] = dataclasses.field(default_factory=list)
    queue: str | None = None         # the queue the call was handed to (None: never queued)
    waited: float | None = None      # seconds in the queue (None: never queued)
    channel: str = "voice"           # how the caller reached us: one of ``CHANNELS``
    # The call's text chat, oldest first (``said``): at most ``CHAT_LINES_MAX`` lines, and
    # ``chat_dropped`` counts the lines said after those, which were not kept.
    chat: list[ChatLine] = dataclasses.field(default_factory=list)
    chat_dropped: int = 0

    def visit(self, node: str) -> None:
        self.nodes.append(node)

    def pressed(self, keys: str) -> None:
        if keys:
            self.digits.append(keys)

    def said(self, sender: ChatSender, text: str, at: dt.datetime | None = None) -> bool:
        """Note a chat line: ``text`` stripped and cut to ``CHAT_TEXT_MAX`` characters, said
        by ``sender`` at ``at`` (now when None; naive is taken as UTC).  False when it was not
        kept: blank (not counted), or the call already has ``CHAT_LINES_MAX`` lines (counted
        in ``chat_dropped``).  ``ValueError`` for a sender not in ``CHAT_SENDERS``."""
        if sender not in CHAT_SENDERS:
            raise ValueError(f"chat sender {sender!r}: one of {', '.join(CHAT_SENDERS)}")
        text = text.strip()[:CHAT_TEXT_MAX].rstrip()
        if not text:
            return False
        if len(self.chat) >= CHAT_LINES_MAX:
            self.chat_dropped += 1
            return False
        when = utcnow() if at is None else at
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        self.chat.append(ChatLine(when.astimezone(dt.timezone.utc), sender, text))
        return True

    def end(self, outcome: Outcome | str, detail: str = "") -> None:
        """Record how the call ended; the first ending wins.  ``outcome`` must be an
        ``Outcome`` value (a plain string is checked: ``ValueError`` for an unknown one)."""
        if self.outcome is None:
            self.outcome = Outcome(outcome)
            self.detail = detail
            self.ended_at = utcnow()
