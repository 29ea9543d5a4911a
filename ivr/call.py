"""The ``Call`` port: everything a flow, a queue or a callback may do to a live call.

Flows, queues and callbacks speak only to this port.  The ARI adapter implements it for real
calls (``ivr.ari.call.AriCall``); tests and the simulator implement it too.  Every method
raises ``ivr.errors.CallerHungUp`` once the caller has hung up.

Digits: a call keeps a buffer of keys pressed and not yet consumed.  ``play`` with
``barge_in=True`` stops as soon as a key is pressed (or does not start when a key is already
waiting) and leaves the key in the buffer; ``gather`` consumes the buffer first, so a key that
interrupted a prompt is the first digit gathered.  ``flush_digits`` empties the buffer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

GatherEnd = Literal["max_digits", "terminator", "timeout"]


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
        """True once the caller has hung up."""

    async def answer(self) -> None:
        """Answer the call (no-op when already answered)."""

    async def play(self, media: Sequence[str], *, barge_in: bool = False) -> None:
        """Play media URIs (``sound:ivr/ko/welcome``) in order and return when done.

        With ``barge_in`` a key press stops the playback at once; the key stays buffered.
        A media item that cannot be played is skipped (and logged), never fatal.
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
        """Hand the call back to the Asterisk dialplan at ``context,extension,priority``."""

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
                   variables: Mapping[str, str] | None = None) -> Call:
        """Ring ``endpoint``; the answered call, or ``ivr.errors.DialFailed``."""

    async def bridge(self, kind: str = "mixing", *, name: str | None = None) -> Bridge: ...


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass(slots=True)
class CallRecord:
    """What happened on one call: written by the runner, stored, listed by ``ivr calls list``.

    ``outcome`` is one of: ``completed`` (the flow hung up normally), ``caller_hangup``,
    ``queued`` (handed to a queue; ``detail`` names it), ``transferred`` (``detail`` names the
    target), ``retries_exhausted`` (a menu or gather ran out of retries and the flow ended),
    ``no_flow`` (nothing answers the dialled number), ``error`` (``detail`` says what),
    ``lost`` (Asterisk lost the call: restart or connection lost for good).
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
    outcome: str | None = None
    detail: str = ""
    priority: str | None = None
    reason: str | None = None        # why it was routed so, e.g. "bypass: elderly"
    number: str | None = None        # the caller's number in E.164 (None: unknown/withheld)

    def visit(self, node: str) -> None:
        self.nodes.append(node)

    def pressed(self, keys: str) -> None:
        if keys:
            self.digits.append(keys)

    def end(self, outcome: str, detail: str = "") -> None:
        """Record how the call ended; the first ending wins."""
        if self.outcome is None:
            self.outcome = outcome
            self.detail = detail
            self.ended_at = utcnow()
