"""The agent queues' model: who serves, what a queue promises, what happens.

Values (``AgentSpec``, ``QueueSpec``, ``Event``, ``Offer``, ``Waiting``, ``AgentStatus``) are
frozen: what ``Acd`` hands out is a picture taken at that moment, never a handle on its state.
Times are plain floats in seconds on whatever clock the caller of ``Acd`` uses.
"""

from __future__ import annotations

import dataclasses
import enum

from ivr.errors import IvrError

__all__ = [
    "AgentState", "AgentSpec", "QueueSpec", "Event", "Offer", "Waiting", "AgentStatus",
    "AcdError", "NoSuchQueue", "NoSuchAgent", "NoSuchCall", "AcdStateError", "ON_MAX_WAIT",
]

ON_MAX_WAIT = ("overflow", "callback", "message")


class AgentState(enum.StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


@dataclasses.dataclass(frozen=True, slots=True)
class AgentSpec:
    """An agent as configured: ``endpoint`` is what the switch dials (``PJSIP/1001``)."""

    id: str
    name: str
    endpoint: str
    skills: frozenset[str] = frozenset()
    center: str | None = None

    def serves(self, queue: QueueSpec) -> bool:
        """An agent serves a queue when the agent's skills include all of the queue's."""
        return queue.skills <= self.skills


@dataclasses.dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue as configured.

    ``max_wait``: after this long in line (counted from the caller's arrival) the caller is
    taken out: to the ``overflow`` queue, offered a callback, or told politely and hung up
    (``on_max_wait``).  ``announce_every``: seconds between place-in-line announcements.
    ``ring_timeout``: how long an agent's phone rings before the agent is paused ("no answer").
    ``wrap_up``: seconds after a call before the agent is offered the next one.
    """

    name: str
    skills: frozenset[str] = frozenset()
    max_wait: float = 600.0
    overflow: str | None = None
    on_max_wait: str = "message"
    announce_every: float = 45.0
    ring_timeout: float = 15.0
    wrap_up: float = 10.0
    music: str = "default"

    def __post_init__(self) -> None:
        if self.on_max_wait not in ON_MAX_WAIT:
            raise ValueError(f"queue {self.name!r}: on_max_wait must be one of "
                             f"{', '.join(ON_MAX_WAIT)}, not {self.on_max_wait!r}")
        if self.on_max_wait == "overflow" and not self.overflow:
            raise ValueError(f"queue {self.name!r}: on_max_wait is 'overflow' but no overflow queue is named")


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """Something that happened in the queues.

    ``kind``: ``call.queued`` (detail: the priority), ``call.offered`` (an agent is rung),
    ``call.connected`` (detail: the wait in whole seconds), ``call.left`` (detail: why —
    ``caller_hangup``, ``max_wait``, ``overflow``, ``callback``, …), ``agent.state`` (detail:
    the new state, with the reason for a pause: ``paused: no answer``), ``agent.pause_after``
    (a pause asked for during a call, which starts when the call ends; detail: the reason, or
    ``called off``).
    """

    at: float
    kind: str
    call_id: str | None = None
    agent_id: str | None = None
    queue: str | None = None
    detail: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Offer:
    """Ring ``agent_id`` for the caller ``call_id`` of ``queue``."""

    call_id: str
    agent_id: str
    queue: str


@dataclasses.dataclass(frozen=True, slots=True)
class Waiting:
    """A caller in line.  Serving order: ``rank`` (0 is the highest priority), then
    ``arrived_at``, then ``seq`` (the order of ``enqueue`` calls).  ``offered_to``: the agent
    being rung for this caller, if any; the caller keeps the place while it rings."""

    call_id: str
    queue: str
    priority: str
    rank: int
    arrived_at: float
    seq: int
    offered_to: str | None = None

    @property
    def key(self) -> tuple[int, float, int]:
        return (self.rank, self.arrived_at, self.seq)


@dataclasses.dataclass(frozen=True, slots=True)
class AgentStatus:
    """An agent at one moment.  ``since``: when the agent entered ``state``.  ``reason``: why
    the agent is paused.  ``wrap_until``: when the wrap-up ends.  ``current_call``: the call
    ringing or connected.  ``handled``: calls answered since the start.  ``pause_after``: the
    reason of a pause asked for during a call, which starts when the call ends."""

    spec: AgentSpec
    state: AgentState
    since: float
    reason: str | None = None
    wrap_until: float | None = None
    current_call: str | None = None
    handled: int = 0
    pause_after: str | None = None


class AcdError(IvrError):
    """Root of the agent queues' errors."""


class _Missing(AcdError, KeyError):
    def __str__(self) -> str:          # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NoSuchQueue(_Missing):
    """No queue has that name (also a ``KeyError``)."""


class NoSuchAgent(_Missing):
    """No agent has that id (also a ``KeyError``)."""


class NoSuchCall(_Missing):
    """The call is not waiting in any queue (also a ``KeyError``)."""


class AcdStateError(AcdError, ValueError):
    """What was asked cannot happen now: a call already in line, an agent on a call logging
    out, an agent answering a call it was not rung for (also a ``ValueError``)."""
