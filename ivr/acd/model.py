"""The agent queues' model: who serves, what a queue promises, what happens.

Values (``AgentSpec``, ``QueueSpec``, ``Event``, ``Offer``, ``Waiting``, ``AgentStatus``) are
frozen: what ``Acd`` hands out is a picture taken at that moment, never a handle on its state.
Times are plain floats in seconds on whatever clock the caller of ``Acd`` uses.

The details of ``call.queued`` and ``agent.state`` events are written for people
(``ivr calls show``) and read back by a restarting engine (``ivr.acd.restore``): both sides of
that grammar are here, ``queued_detail``/``read_queued`` and ``state_detail``/``read_state``.
"""

from __future__ import annotations

import dataclasses
import enum
import re

from ivr.errors import IvrError

__all__ = [
    "AgentState", "AgentSpec", "CenterRouting", "QueueSpec", "Event", "Offer", "Waiting", "AgentStatus",
    "AcdError", "NoSuchQueue", "NoSuchAgent", "NoSuchCall", "AcdStateError", "ON_MAX_WAIT",
    "QueuedDetail", "StateDetail", "queued_detail", "read_queued", "state_detail", "read_state",
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

    ``kind``:

    - ``call.queued``: the caller took a place in line.  Detail (``queued_detail``): the
      priority, then, when known, how long the caller had already waited (a place kept across
      an overflow, a declined callback or a restart), the language and the reason, e.g.
      ``elderly; waited 11.204 s; language ko; reason bypass: elderly``.
    - ``call.offered``: an agent is rung for the caller (``agent_id``).
    - ``call.connected``: the agent answered; detail: the wait in whole seconds.
    - ``call.left``: the caller left the line unserved; detail: why (``caller_hangup``,
      ``max_wait``, ``overflow``, ``callback``, ``gone during restart``, …).
    - ``agent.state``: the agent's new state (``state_detail``), with the reason of a pause
      (``paused: no answer``); ``call_id`` and ``queue`` name the call of ``ringing`` and
      ``on_call`` (and the queue of ``wrap_up``).  A state set by a restarting engine from the
      event log says so, with how long the agent had been in it:
      ``paused: lunch (restored, 1203.4 s in state)``.
    - ``agent.pause_after``: a pause asked for during a call, which starts when the call
      ends; detail: the reason, or ``called off``.
    """

    at: float
    kind: str
    call_id: str | None = None
    agent_id: str | None = None
    queue: str | None = None
    detail: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class CenterRouting:
    """How the centers share one nationwide line (``acd.centers`` in the config).

    Agents serve their own center's callers first (within a priority: priorities come first
    everywhere, so an elderly caller anywhere is served before a normal caller).  A caller
    becomes eligible for other centers' agents ``spill_after`` seconds after arriving, or at
    once when, on arrival, the own center's estimated wait is longer than another center's
    by more than ``spill_margin`` seconds (or nobody in the own center is on duty for the
    queue).  None turns a rule off; both None: each center serves only its own callers.
    Callers and agents without a center belong to every center."""

    spill_after: float | None = 60.0
    spill_margin: float | None = 120.0


@dataclasses.dataclass(frozen=True, slots=True)
class Offer:
    """Ring ``agent_id`` for the caller ``call_id`` of ``queue``.  ``note``: why the caller is
    served by another center's agent (``served by busan: seoul wait 6 min, busan 40 s``);
    None when served by the own center."""

    call_id: str
    agent_id: str
    queue: str
    note: str | None = None


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
    center: str | None = None          # the caller's home center (None: every center's)
    spill: str | None = None           # why eligible everywhere at once (the estimates compared)

    @property
    def key(self) -> tuple[int, float, int]:
        return (self.rank, self.arrived_at, self.seq)


@dataclasses.dataclass(frozen=True, slots=True)
class AgentStatus:
    """An agent at one moment.  ``since``: when the agent entered ``state``.  ``reason``: why
    the agent is paused.  ``wrap_until``: when the wrap-up ends.  ``current_call``: the call
    ringing or connected.  ``handled``: calls answered since the start.  ``pause_after``: the
    reason of a pause asked for during a call, which starts when the call ends.  ``since`` is
    None for an agent that has not logged in since the start (nor been restored)."""

    spec: AgentSpec
    state: AgentState
    since: float | None
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


# -- the details of events, written for people and read back on a restart ---------------------

_RESTORED = re.compile(r" \(restored, (?P<age>[0-9]+(?:\.[0-9]+)?) s in state\)$")


def _seconds(value: float) -> str:
    """Seconds to the millisecond, without trailing zeros: ``11.204``, ``11.2``, ``5``."""
    return f"{max(0.0, value):.3f}".rstrip("0").rstrip(".")


@dataclasses.dataclass(frozen=True, slots=True)
class QueuedDetail:
    """What a ``call.queued`` event says: ``waited`` is how long the caller had been in line
    before this place was taken (0 for a newcomer)."""

    priority: str
    waited: float = 0.0
    language: str | None = None
    reason: str | None = None
    center: str | None = None


def queued_detail(q: QueuedDetail) -> str:
    """``elderly; waited 11.204 s; language ko; center busan; reason bypass: elderly`` (parts left out
    when not known; the reason comes last, as it may hold anything)."""
    parts = [q.priority]
    if q.waited > 0:
        parts.append(f"waited {_seconds(q.waited)} s")
    if q.language:
        parts.append(f"language {q.language}")
    if q.center:
        parts.append(f"center {q.center}")
    if q.reason:
        parts.append(f"reason {q.reason}")
    return "; ".join(parts)


def read_queued(detail: str) -> QueuedDetail:
    """The inverse of ``queued_detail``.  A detail of an older engine (the priority alone)
    reads as a newcomer of that priority.  ``ValueError`` for a detail with no priority."""
    first, *rest = detail.split("; ")
    if not first:
        raise ValueError(f"call.queued detail {detail!r} names no priority")
    waited, language, reason, center = 0.0, None, None, None
    for i, part in enumerate(rest):
        word, _, value = part.partition(" ")
        if word == "reason":
            reason = "; ".join([value, *rest[i + 1:]])
            break
        if word == "waited" and re.fullmatch(r"[0-9]+(\.[0-9]+)? s", value):
            waited = float(value[:-2])
        elif word == "language" and value:
            language = value
        elif word == "center" and value:
            center = value
        else:
            raise ValueError(f"call.queued detail {detail!r}: cannot read {part!r}")
    return QueuedDetail(priority=first, waited=waited, language=language, reason=reason,
                        center=center)


@dataclasses.dataclass(frozen=True, slots=True)
class StateDetail:
    """What an ``agent.state`` event says.  ``age``: how long the agent had been in ``state``
    when the event was told (0 but for a restored state)."""

    state: AgentState
    reason: str | None = None
    restored: bool = False
    age: float = 0.0


def state_detail(d: StateDetail) -> str:
    """``available``, ``paused: no answer``, ``paused: lunch (restored, 1203.4 s in state)``."""
    text = f"{d.state}: {d.reason}" if d.reason else str(d.state)
    if d.restored:
        text += f" (restored, {_seconds(d.age)} s in state)"
    return text


def read_state(detail: str) -> StateDetail:
    """The inverse of ``state_detail``; ``ValueError`` for a state this engine does not know."""
    restored = _RESTORED.search(detail)
    age = 0.0
    if restored is not None:
        age = float(restored.group("age"))
        detail = detail[:restored.start()]
    name, sep, reason = detail.partition(": ")
    try:
        state = AgentState(name)
    except ValueError:
        raise ValueError(f"agent.state detail {detail!r}: no agent state is called {name!r} "
                         f"(states: {', '.join(AgentState)})") from None
    return StateDetail(state=state, reason=reason if sep and reason else None,
                       restored=restored is not None, age=age)
