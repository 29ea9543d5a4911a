"""The queues as the event log left them: what a restarting engine puts back.

An engine killed (SIGKILL) and started again, or a standby taking over (DESIGN 1b), knows of
its predecessor's queues only what the store's event log says.  ``load_restored`` reads the
part of the log that matters — every agent's latest state however old, and the lines' events
within a horizon — and ``replay`` folds events into a ``Restored``: each agent's state, who
waits in which line since when, who talks to which agent.  ``replay`` is pure (no clock, no
I/O): times are the log's, aware UTC datetimes.

Replay rules:

- An agent's last ``agent.state`` gives its state, its pause reason and since when (a state
  that was itself restored says how long the agent had been in it, so the time survives any
  number of restarts).  A ``agent.pause_after`` after it (a pause asked for during a call)
  is kept; ``called off`` clears it.
- RINGING comes back AVAILABLE (the ring died with the engine; the caller rung is still in
  line), or PAUSED when a pause was asked for during the ring — what ``Acd.ring_cancelled``
  does.
- ON_CALL stays ON_CALL with its call and queue, and that call is in ``talking``, connected
  since the state began.  A talk ends with the agent's next state, so a call is never both
  waiting and talking.
- A caller whose latest ``call.queued`` has no later ``call.left`` or ``call.connected`` is
  waiting, in that queue, with that priority, reason and language; ``arrived_at`` is the
  original place in line (the event says how long the caller had already waited: a place
  kept across an overflow, a declined callback or an earlier restart).
- A caller whose latest event is ``call.left`` with detail ``callback`` took a callback offer
  and was in the callback dialog (confirming the number) when the log ends: in ``booking``,
  with the place in line they left.  Whether the booking was finished is the reservations'
  to say (a reservation booked on that call), not the log's.
- An event that cannot be read (a detail of no known shape) changes nothing and is told in
  ``Restored.problems``.

What the log cannot say: the events the engine had not yet written when it died (see
``ivr.acd.recorder``: normally those of the last store round trip), and callers who queued
before the horizon.  Choose the horizon as the longest time a caller can stay in line (the
longest chain of ``max_wait`` through overflow queues, plus the time a callback offer
can take) with a margin.

``restore_agents`` puts the agents of a ``Restored`` into an ``Acd``; ``on_clock`` turns a
log time into the ``Acd``'s clock (for ``Acd.enqueue(arrived_at=…)``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
from collections.abc import Iterable, Mapping
from typing import Protocol

from ivr.acd.core import Acd
from ivr.acd.model import AcdError, AgentState, read_queued, read_state
from ivr.store.base import QueueEvent

__all__ = ["RestoredAgent", "RestoredWaiting", "RestoredTalk", "Restored", "replay",
           "load_restored", "restore_agents", "on_clock", "CALLBACK_DIALOG"]

CALLBACK_DIALOG = "callback"   # the detail of ``call.left`` when a caller takes a callback offer


@dataclasses.dataclass(frozen=True, slots=True)
class RestoredAgent:
    """An agent as the log left it.  ``since``: when it entered ``state``.  ``call_id`` and
    ``queue``: the call of an agent ON_CALL (``queue`` also for WRAP_UP: its wrap-up length).
    ``pause_after``: the reason of a pause asked for during the call."""

    agent_id: str
    state: AgentState
    reason: str | None
    since: dt.datetime
    call_id: str | None
    queue: str | None = None
    pause_after: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RestoredWaiting:
    """A caller in line.  ``arrived_at``: the original place in line (kept across overflow
    and callback-declined re-queues)."""

    call_id: str
    queue: str
    priority: str
    reason: str | None
    language: str | None
    arrived_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class RestoredTalk:
    """A caller talking to an agent since ``connected_at``."""

    call_id: str
    agent_id: str
    queue: str
    connected_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Restored:
    """The queues as the log left them, by agent id and by call id (``waiting`` in order of
    arrival).  ``booking``: callers who had left the line for the callback dialog, with the
    place they left.  ``problems``: the events that could not be read, one line each."""

    agents: Mapping[str, RestoredAgent]
    waiting: Mapping[str, RestoredWaiting]
    talking: Mapping[str, RestoredTalk]
    problems: tuple[str, ...] = ()
    booking: Mapping[str, RestoredWaiting] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({}))


class EventLog(Protocol):
    """What ``load_restored`` reads of the store (``ivr.store.base.Store``)."""

    async def latest_agent_events(self) -> list[QueueEvent]: ...

    async def line_events(self, since: dt.datetime) -> list[QueueEvent]: ...


@dataclasses.dataclass(slots=True)
class _Agent:
    state: AgentState
    reason: str | None
    since: dt.datetime
    call_id: str | None
    queue: str | None
    pause_after: str | None = None


def replay(events: Iterable[QueueEvent]) -> Restored:
    """Fold ``events`` (oldest first, as the store gives them) into the queues' state."""
    agents: dict[str, _Agent] = {}
    waiting: dict[str, RestoredWaiting] = {}
    booking: dict[str, RestoredWaiting] = {}
    problems: list[str] = []

    def problem(e: QueueEvent, message: str) -> None:
        who = e.agent_id if e.kind.startswith("agent.") else e.call_id
        problems.append(f"{e.at.isoformat()} {e.kind} {who}: {message}; event ignored")

    for e in events:
        if e.kind == "agent.state" and e.agent_id is not None:
            try:
                told = read_state(e.detail)
                since = _before(e.at, told.age)
            except ValueError as exc:
                problem(e, str(exc))
                continue
            with_call = told.state in (AgentState.RINGING, AgentState.ON_CALL)
            agents[e.agent_id] = _Agent(
                state=told.state, reason=told.reason, since=since,
                call_id=e.call_id if with_call else None,
                queue=e.queue if with_call or told.state is AgentState.WRAP_UP else None)
        elif e.kind == "agent.pause_after" and e.agent_id is not None:
            a = agents.get(e.agent_id)
            if a is not None and a.state in (AgentState.RINGING, AgentState.ON_CALL):
                a.pause_after = None if e.detail == "called off" else e.detail
        elif e.kind == "call.queued" and e.call_id is not None:
            if e.queue is None:
                problem(e, "the event names no queue")
                continue
            try:
                q = read_queued(e.detail)
                arrived_at = _before(e.at, q.waited)
            except ValueError as exc:
                problem(e, str(exc))
                continue
            booking.pop(e.call_id, None)               # not booked: back in line
            waiting[e.call_id] = RestoredWaiting(
                call_id=e.call_id, queue=e.queue, priority=q.priority, reason=q.reason,
                language=q.language, arrived_at=arrived_at)
        elif e.kind in ("call.left", "call.connected") and e.call_id is not None:
            left = waiting.pop(e.call_id, None)
            booking.pop(e.call_id, None)
            if e.kind == "call.left" and e.detail == CALLBACK_DIALOG and left is not None:
                booking[e.call_id] = left

    restored: dict[str, RestoredAgent] = {}
    talking: dict[str, RestoredTalk] = {}
    for agent_id, a in agents.items():
        state, reason, pause_after = a.state, a.reason, a.pause_after
        if state is AgentState.RINGING:           # the ring died with the engine
            state, reason = ((AgentState.PAUSED, pause_after) if pause_after is not None
                             else (AgentState.AVAILABLE, None))
            pause_after = None
        elif state is AgentState.ON_CALL:
            if a.call_id is None or a.queue is None:
                problems.append(f"agent {agent_id}: on a call the log does not name; "
                                "restored as available")
                state, pause_after = AgentState.AVAILABLE, None
            else:
                talking[a.call_id] = RestoredTalk(call_id=a.call_id, agent_id=agent_id,
                                                  queue=a.queue, connected_at=a.since)
                waiting.pop(a.call_id, None)
                booking.pop(a.call_id, None)
        on_call = state is AgentState.ON_CALL
        restored[agent_id] = RestoredAgent(
            agent_id=agent_id, state=state,
            reason=reason if state is AgentState.PAUSED else None, since=a.since,
            call_id=a.call_id if on_call else None,
            queue=a.queue if on_call or state is AgentState.WRAP_UP else None,
            pause_after=pause_after)
    line = sorted(waiting.values(), key=lambda w: w.arrived_at)
    return Restored(agents=types.MappingProxyType(restored),
                    waiting=types.MappingProxyType({w.call_id: w for w in line}),
                    talking=types.MappingProxyType(talking), problems=tuple(problems),
                    booking=types.MappingProxyType(booking))


def _before(at: dt.datetime, seconds: float) -> dt.datetime:
    try:
        return at - dt.timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{seconds:g} s before {at.isoformat()} is out of the calendar's "
                         "range") from None


async def load_restored(store: EventLog, now: dt.datetime, *, horizon: float) -> Restored:
    """Read what a restart needs from ``store`` and ``replay`` it: every agent's latest state
    however old, and the lines' events of the last ``horizon`` seconds before ``now``.

    Two indexed queries (``Store.latest_agent_events``, ``Store.line_events``); a store
    that is away raises ``StoreError``.  ``ValueError`` for a horizon that is not positive.
    """
    if not horizon > 0:
        raise ValueError(f"the horizon must be a positive number of seconds, not {horizon!r}")
    agents = await store.latest_agent_events()
    line = await store.line_events(now - dt.timedelta(seconds=horizon))
    # Agents' events and the lines' events change different things: merged by time, each
    # list keeping the store's order for events of one instant.
    return replay(sorted([*agents, *line], key=lambda e: e.at))


def on_clock(at: dt.datetime, *, wall_now: dt.datetime, now: float) -> float:
    """The log's time ``at`` on the ``Acd``'s clock, which reads ``now`` at ``wall_now``."""
    return now - (wall_now - at).total_seconds()


def restore_agents(acd: Acd, restored: Restored, *, wall_now: dt.datetime,
                   now: float) -> list[str]:
    """Give each agent of ``acd`` its restored state (``Acd.restore_agent``), before any call
    is offered; agents the log does not know are left as they are.  Returns what could not
    be restored, one line each (an agent no longer configured, a call's queue that is gone):
    those agents keep the state they have in ``acd``."""
    problems: list[str] = []
    for a in restored.agents.values():
        try:
            acd.restore_agent(a.agent_id, a.state, a.reason, now, call_id=a.call_id,
                              queue=a.queue, pause_after=a.pause_after,
                              since=on_clock(a.since, wall_now=wall_now, now=now))
        except AcdError as exc:
            problems.append(f"agent {a.agent_id} not restored ({a.state}): {exc}")
    return problems
