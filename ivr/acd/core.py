"""``Acd``: the waiting lines and the agents, as pure state.

No clock, no I/O, no tasks: every method takes ``now`` (seconds, on the caller's clock) and
changes the state at once; what happened is told through ``on_event`` in the order it
happened.  ``ivr.acd.service`` drives it from the switch; the wait benchmark drives it in
virtual time.

The line of a queue is kept sorted by ``(rank, arrived_at, seq)``: priority first (``rank``:
the index of the caller's priority in ``priorities``), then arrival, then the order of
``enqueue``.  A caller keeps the place while an agent is rung, and gets it back if the agent
does not answer.  A second list per queue, sorted by arrival, answers "who has waited too
long" and "the oldest wait" without walking the line.  Inserting and removing are a binary
search plus a move of pointers; places and offers are found without walking the line.

Agent states::

    OFFLINE --login--> AVAILABLE --offers()--> RINGING --answered--> ON_CALL --call_ended--> WRAP_UP
    RINGING --ring_failed--> PAUSED ("no answer")
    RINGING --ring_cancelled--> AVAILABLE
    WRAP_UP --tick (wrap-up over)--> AVAILABLE
    AVAILABLE/WRAP_UP --pause--> PAUSED --resume--> AVAILABLE
    any but RINGING/ON_CALL --logout--> OFFLINE

A pause asked for while ringing or on a call starts when the call ends (instead of the
wrap-up).  Logging out is refused while ringing or on a call.

A restarting engine sets each agent's state from the event log (``restore_agent``; see
``ivr.acd.restore``) before any call is offered: a ring does not outlive the engine, so a
ringing agent is restored as available; an agent on a call stays busy with it until
``call_ended``.  Each restored state is told as an ``agent.state`` event saying so, so the
log read by the next restart is complete.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ivr.acd.estimate import WaitEstimator
from ivr.acd.model import (
    AcdStateError, AgentSpec, CenterRouting, AgentState, AgentStatus, Event, NoSuchAgent, NoSuchCall, NoSuchQueue,
    Offer, QueuedDetail, QueueSpec, StateDetail, Waiting, queued_detail, state_detail,
)

__all__ = ["Acd", "DEFAULT_PRIORITIES"]

DEFAULT_PRIORITIES = ("elderly", "repeat", "normal")

_LineKey = tuple[int, float, int, str]          # rank, arrived_at, seq, call_id
_ArrivalKey = tuple[float, int, str]            # arrived_at, seq, call_id


@dataclasses.dataclass(eq=False, slots=True)
class _Agent:
    spec: AgentSpec
    state: AgentState = AgentState.OFFLINE
    since: float | None = None         # None: not logged in (nor restored) since the start
    idle_since: float = 0.0            # the order agents are offered calls in: longest idle first
    reason: str | None = None
    wrap_until: float | None = None
    current_call: str | None = None
    call_queue: str | None = None
    answered_at: float | None = None
    handled: int = 0
    pause_after: str | None = None
    idle_before_ring: float = 0.0

    def status(self) -> AgentStatus:
        return AgentStatus(spec=self.spec, state=self.state, since=self.since, reason=self.reason,
                           wrap_until=self.wrap_until, current_call=self.current_call,
                           handled=self.handled, pause_after=self.pause_after)


@dataclasses.dataclass(eq=False, slots=True)
class _Line:
    spec: QueueSpec
    order: list[_LineKey] = dataclasses.field(default_factory=list)
    by_arrival: list[_ArrivalKey] = dataclasses.field(default_factory=list)
    serving: tuple[str, ...] = ()      # agent ids whose skills cover the queue


class Acd:
    """The queues ``queues`` (by name) and the agents ``agents``; all agents start offline.

    ``priorities``: the priority names, highest first; any other priority (or None) ranks as
    ``normal`` (as the last one when ``normal`` is not listed).  ``on_event`` is called with
    each ``Event`` as it happens.  ``make_estimator`` builds each queue's ``WaitEstimator``.
    """

    def __init__(self, queues: Mapping[str, QueueSpec], agents: Iterable[AgentSpec], *,
                 priorities: Sequence[str] = DEFAULT_PRIORITIES,
                 on_event: Callable[[Event], None] | None = None,
                 make_estimator: Callable[[], WaitEstimator] = WaitEstimator,
                 centers: CenterRouting | None = None) -> None:
        if not priorities:
            raise ValueError("priorities must name at least one level, highest first")
        self.priorities = tuple(priorities)
        self._rank = {name: i for i, name in enumerate(self.priorities)}
        self._default_rank = self._rank.get("normal", len(self.priorities) - 1)
        self._on_event = on_event
        self._agents: dict[str, _Agent] = {}
        for spec in agents:
            if spec.id in self._agents:
                raise ValueError(f"agent id {spec.id!r} is used twice")
            self._agents[spec.id] = _Agent(spec)
        self._lines: dict[str, _Line] = {}
        for name, qspec in queues.items():
            serving = tuple(a.spec.id for a in self._agents.values() if a.spec.serves(qspec))
            self._lines[name] = _Line(qspec, serving=serving)
        self._estimators = {name: make_estimator() for name in self._lines}
        self._serving_in: dict[tuple[str, str], tuple[str, ...]] = {}   # (queue, center): agent ids
        self._waiting: dict[str, Waiting] = {}
        self._available: set[str] = set()
        self._wrapping: list[tuple[float, str]] = []   # heap of (wrap_until, agent id); stale entries skipped
        self._seq = 0
        self._now = 0.0
        self.centers = centers
        self._center_names = sorted({a.spec.center for a in self._agents.values() if a.spec.center})

    # -- callers -------------------------------------------------------------------------

    def enqueue(self, call_id: str, queue: str, priority: str | None, now: float, *,
                arrived_at: float | None = None, reason: str | None = None,
                language: str | None = None, center: str | None = None) -> Waiting:
        """Put the caller in line.  ``arrived_at`` (default ``now``) is the time the place is
        taken from: a caller coming back to the line (after declining a callback, moved from
        another queue, or re-adopted by a restarted engine) passes the original arrival to
        keep the place.  ``reason`` and ``language`` go into the ``call.queued`` event, with
        the priority and the wait so far, so that a restarted engine can put the caller back
        (``ivr.acd.restore``).

        ``center``: the caller's home center (the center of the switch the call came in on).
        With ``centers`` routing, the home center's agents serve the caller first; whether the
        caller is eligible everywhere at once (``spill_margin``) is decided here, against the
        centers' estimates for a newcomer, and kept in ``Waiting.spill``."""
        line = self._line(queue)
        if call_id in self._waiting:
            raise AcdStateError(f"call {call_id} is already waiting in queue "
                                f"{self._waiting[call_id].queue!r}")
        self._tell(now)
        rank = self._rank.get(priority, self._default_rank) if priority else self._default_rank
        self._seq += 1
        spill = self._spill_on_arrival(queue, rank, center, now) if center else None
        w = Waiting(call_id=call_id, queue=queue, priority=self.priorities[rank], rank=rank,
                    arrived_at=now if arrived_at is None else arrived_at, seq=self._seq,
                    center=center, spill=spill)
        self._waiting[call_id] = w
        bisect.insort(line.order, (w.rank, w.arrived_at, w.seq, call_id))
        bisect.insort(line.by_arrival, (w.arrived_at, w.seq, call_id))
        self._estimators[queue].record_arrival(rank, now, center)
        detail = queued_detail(QueuedDetail(priority=w.priority, waited=now - w.arrived_at,
                                            language=language, reason=reason, center=center))
        self._emit(now, "call.queued", call_id=call_id, queue=queue, detail=detail)
        return w

    def leave(self, call_id: str, now: float, why: str) -> Waiting | None:
        """Take the caller out of line (hung up, timed out, moved); None when not in line.

        Counts as a caller who left unserved, for the abandonment rate.  When an agent was
        being rung for the caller, the returned ``Waiting`` names it in ``offered_to`` and the
        agent stays RINGING: whoever rings the phone stops it and then calls
        ``ring_cancelled``, which makes the agent available again."""
        w = self._waiting.get(call_id)
        if w is None:
            return None
        self._tell(now)
        self._remove(w)
        self._estimators[w.queue].record_abandoned(now - w.arrived_at)
        self._emit(now, "call.left", call_id=call_id, queue=w.queue, agent_id=w.offered_to, detail=why)
        return w

    def position(self, call_id: str) -> int:
        """The caller's place in line (1 is next), in serving order within the queue; callers
        ahead whose agent is ringing count."""
        w = self._get_waiting(call_id)
        return bisect.bisect_left(self._lines[w.queue].order, self._line_key(w)) + 1

    def waiting(self, queue: str) -> list[Waiting]:
        """The callers of ``queue`` in serving order."""
        line = self._line(queue)
        return [self._waiting[key[3]] for key in line.order]

    def waiting_call(self, call_id: str) -> Waiting | None:
        """The caller's entry, or None when not in line."""
        return self._waiting.get(call_id)

    def expired(self, now: float) -> list[Waiting]:
        """Callers who have waited (since ``arrived_at``) at least their queue's ``max_wait``
        and whose agent is not being rung, longest wait first within each queue."""
        out: list[Waiting] = []
        for line in self._lines.values():
            cut = bisect.bisect_right(line.by_arrival, (now - line.spec.max_wait, float("inf"), ""))
            for _, _, call_id in line.by_arrival[:cut]:
                w = self._waiting[call_id]
                if w.offered_to is None:
                    out.append(w)
        return out

    # -- agents --------------------------------------------------------------------------

    def login(self, agent_id: str, now: float) -> None:
        """OFFLINE → AVAILABLE; an agent already logged in stays as it is."""
        a = self._agent(agent_id)
        if a.state is AgentState.OFFLINE:
            self._tell(now)
            self._set(a, AgentState.AVAILABLE, now)

    def logout(self, agent_id: str, now: float) -> None:
        """→ OFFLINE; refused (``AcdStateError``, a ``ValueError``) while ringing or on a call."""
        a = self._agent(agent_id)
        if a.state in (AgentState.ON_CALL, AgentState.RINGING):
            raise AcdStateError(f"agent {agent_id} is on a call; log out after it")
        if a.state is not AgentState.OFFLINE:
            self._tell(now)
            a.pause_after = None
            self._set(a, AgentState.OFFLINE, now)

    def pause(self, agent_id: str, reason: str, now: float) -> None:
        """AVAILABLE, WRAP_UP or PAUSED → PAUSED with ``reason``.  Ringing or on a call: the
        pause starts when the call ends, instead of the wrap-up.  Refused when logged out."""
        a = self._agent(agent_id)
        self._tell(now)
        if a.state is AgentState.OFFLINE:
            raise AcdStateError(f"agent {agent_id} is not logged in")
        if a.state in (AgentState.ON_CALL, AgentState.RINGING):
            a.pause_after = reason
            self._emit(now, "agent.pause_after", agent_id=agent_id, call_id=a.current_call,
                       detail=reason)
            return
        self._set(a, AgentState.PAUSED, now, reason=reason)

    def resume(self, agent_id: str, now: float) -> None:
        """PAUSED → AVAILABLE.  A pause waiting for the end of a call is called off; in any
        other state nothing changes."""
        a = self._agent(agent_id)
        self._tell(now)
        if a.state is AgentState.PAUSED:
            self._set(a, AgentState.AVAILABLE, now)
        elif a.pause_after is not None:
            a.pause_after = None
            self._emit(now, "agent.pause_after", agent_id=agent_id, call_id=a.current_call,
                       detail="called off")

    def restore_agent(self, agent_id: str, state: AgentState, reason: str | None, now: float, *,
                      call_id: str | None = None, queue: str | None = None,
                      pause_after: str | None = None, since: float | None = None) -> AgentStatus:
        """Set the agent's state as the event log of an engine that stopped left it, without
        offering the agent a call (``offers`` does that, as ever).  Told as an ``agent.state``
        event saying ``(restored, N s in state)``.

        ``since``: when the agent entered ``state`` (default and at most ``now``).  ``reason``:
        the pause's, for PAUSED (ignored otherwise).  ON_CALL needs ``call_id`` and ``queue``:
        the agent is busy with that call until ``call_ended`` (talk time counted from
        ``since``), and ``pause_after`` is the pause asked for during it.  WRAP_UP needs the
        ``queue`` of the call: the wrap-up ends ``wrap_up`` seconds after ``since`` (the agent
        is AVAILABLE at once when that is past, or when the queue is not known).  RINGING is
        refused (a ring does not outlive the engine: restore the agent as AVAILABLE), as is an
        agent ringing or on a call now.  Returns the agent's status."""
        a = self._agent(agent_id)
        if a.state in (AgentState.RINGING, AgentState.ON_CALL):
            raise AcdStateError(f"agent {agent_id} is {a.state} with call {a.current_call}; "
                                "restore agents before calls are offered")
        if state is AgentState.RINGING:
            raise AcdStateError(f"agent {agent_id}: a ring does not outlive the engine; "
                                "restore the agent as available")
        if pause_after is not None and state is not AgentState.ON_CALL:
            raise AcdStateError(f"agent {agent_id}: a pause after the call needs a call "
                                f"(state on_call, not {state})")
        self._tell(now)
        started = now if since is None else min(since, now)
        if state is AgentState.ON_CALL:
            if call_id is None or queue is None:
                raise AcdStateError(f"agent {agent_id}: restoring a call needs its call id and queue")
            self._line(queue)
            if call_id in self._waiting:
                raise AcdStateError(f"call {call_id} is waiting in queue "
                                    f"{self._waiting[call_id].queue!r}; it cannot also be on a "
                                    f"call with agent {agent_id}")
            other = next((x.spec.id for x in self._agents.values()
                          if x is not a and x.current_call == call_id), None)
            if other is not None:
                raise AcdStateError(f"call {call_id} is already with agent {other}")
            a.answered_at = started
            a.pause_after = pause_after
            self._set(a, state, now, call=call_id, call_queue=queue, since=started, restored=True)
            if pause_after is not None:
                self._emit(now, "agent.pause_after", agent_id=agent_id, call_id=call_id,
                           detail=pause_after)
            return a.status()
        a.pause_after = None
        a.answered_at = None
        if state is AgentState.WRAP_UP:
            line = self._lines.get(queue) if queue is not None else None
            until = started + (line.spec.wrap_up if line is not None else 0.0)
            if until > now:
                self._set(a, state, now, wrap_until=until, call_queue=queue, since=started,
                          restored=True)
                heapq.heappush(self._wrapping, (until, agent_id))
            else:
                self._set(a, AgentState.AVAILABLE, now, idle_since=until, since=until,
                          restored=True)
        elif state is AgentState.AVAILABLE:
            self._set(a, state, now, idle_since=started, since=started, restored=True)
        else:                              # PAUSED, OFFLINE
            self._set(a, state, now, reason=reason if state is AgentState.PAUSED else None,
                      since=started, restored=True)
        return a.status()

    def gone_during_restart(self, call_id: str, queue: str, now: float,
                            why: str = "gone during restart") -> None:
        """A caller the event log had in line whose call did not survive the restart: told as
        ``call.left`` (``why``), so the log no longer has the caller waiting.  The line is not
        touched; refused (``AcdStateError``) for a caller who is in it."""
        if call_id in self._waiting:
            raise AcdStateError(f"call {call_id} is waiting in queue "
                                f"{self._waiting[call_id].queue!r}; take it out with leave()")
        self._tell(now)
        self._emit(now, "call.left", call_id=call_id, queue=queue, detail=why)

    def agents(self) -> list[AgentStatus]:
        return [a.status() for a in self._agents.values()]

    def queue_names(self) -> list[str]:
        """The queues' names, in the order configured."""
        return list(self._lines)

    def agent(self, agent_id: str) -> AgentStatus:
        return self._agent(agent_id).status()

    def staffed(self, queue: str) -> tuple[int, int]:
        """Agents serving ``queue``: (logged in and not paused, paused)."""
        line = self._line(queue)
        on_duty = paused = 0
        for agent_id in line.serving:
            state = self._agents[agent_id].state
            if state is AgentState.PAUSED:
                paused += 1
            elif state is not AgentState.OFFLINE:
                on_duty += 1
        return on_duty, paused

    def serving_agents(self, queue: str) -> int:
        """Agents serving ``queue`` who are logged in, paused ones included."""
        return sum(self.staffed(queue))

    # -- matching and the calls' course ----------------------------------------------------

    def offers(self, now: float) -> list[Offer]:
        """Ring free agents for waiting callers, and say which.

        The caller with the best ``(rank, arrived_at)`` across all queues picks first, then the
        next best, and so on; each caller gets the agent serving its queue that has been free
        longest.  A queue whose best caller finds no free agent is passed over, so its other
        callers do not take agents from the queues behind it.  Each agent named goes RINGING
        and is not offered another call until the ring ends."""
        if not self._available or not self._waiting:
            return []
        self._tell(now)
        if self.centers is not None:
            return self._offers_by_center(now)
        free = sorted(self._available, key=lambda i: (self._agents[i].idle_since, i))
        heap: list[tuple[int, float, int, str, int]] = []     # rank, arrived_at, seq, queue, index
        for name, line in self._lines.items():
            i = self._next_unoffered(line, 0)
            if i is not None:
                rank, arrived, seq, _ = line.order[i]
                heapq.heappush(heap, (rank, arrived, seq, name, i))
        made: list[Offer] = []
        while heap and free:
            _, _, _, name, i = heapq.heappop(heap)
            line = self._lines[name]
            agent_id = next((x for x in free if line.spec.skills <= self._agents[x].spec.skills), None)
            if agent_id is None:
                continue
            free.remove(agent_id)
            call_id = line.order[i][3]
            self._ring(self._waiting[call_id], self._agents[agent_id], now)
            made.append(Offer(call_id=call_id, agent_id=agent_id, queue=name))
            j = self._next_unoffered(line, i + 1)
            if j is not None:
                rank, arrived, seq, _ = line.order[j]
                heapq.heappush(heap, (rank, arrived, seq, name, j))
        return made

    def _offers_by_center(self, now: float) -> list[Offer]:
        """``offers`` with centers: each free agent (longest free first within a center) may
        take the callers of its own center and the callers of other centers who are eligible
        everywhere (``_spilled``).  Of all the pairs possible, the best caller by
        ``(rank, from another center, arrival)`` is served first, again and again: priorities
        first everywhere, then the agent's own center, then the longest wait."""
        free = sorted(self._available, key=lambda i: (self._agents[i].idle_since, i))
        made: list[Offer] = []
        while free:
            best: tuple[tuple[int, int, float, int], Waiting, str] | None = None
            for line in self._lines.values():
                if not line.order:
                    continue
                seen: set[str | None] = set()
                for agent_id in free:               # the longest-free agent of each center
                    spec = self._agents[agent_id].spec
                    if spec.center in seen or not line.spec.skills <= spec.skills:
                        continue
                    seen.add(spec.center)
                    found = self._best_for(line, spec.center, now)
                    if found is None:
                        continue
                    w, foreign = found
                    key = (w.rank, int(foreign), w.arrived_at, w.seq)
                    if best is None or key < best[0]:
                        best = (key, w, agent_id)
            if best is None:
                break
            (_, other_center, _, _), w, agent_id = best
            free.remove(agent_id)
            a = self._agents[agent_id]
            note = self._spill_note(w, a.spec.center, now) if other_center else None
            self._ring(w, a, now)
            made.append(Offer(call_id=w.call_id, agent_id=agent_id, queue=w.queue, note=note))
        return made

    def _best_for(self, line: _Line, center: str | None, now: float) -> tuple[Waiting, bool] | None:
        """The caller of ``line`` an agent of ``center`` should take: within the best rank that
        has any, the first of the own center, else the first eligible from another center;
        with whether it is from another center."""
        foreign: Waiting | None = None
        for key in line.order:
            if foreign is not None and key[0] != foreign.rank:
                break
            w = self._waiting[key[3]]
            if w.offered_to is not None:
                continue
            if center is None or w.center is None or w.center == center:
                return w, False
            if foreign is None and self._spilled(w, now):
                foreign = w
        return (foreign, True) if foreign is not None else None

    def _spilled(self, w: Waiting, now: float) -> bool:
        """Eligible for other centers' agents: at once (``Waiting.spill``), or after
        ``spill_after`` seconds in line."""
        if w.spill is not None:
            return True
        after = self.centers.spill_after if self.centers is not None else None
        return after is not None and now - w.arrived_at >= after

    def _spill_note(self, w: Waiting, center: str | None, now: float) -> str:
        where = center or "another center"
        if w.spill is not None:
            return f"served by {where}: {w.spill}"
        return f"served by {where}: {w.center} caller after {now - w.arrived_at:.0f} s in line"

    def _spill_on_arrival(self, queue: str, rank: int, center: str, now: float) -> str | None:
        """Why a newcomer of ``center`` is eligible everywhere at once (its own center's wait
        against the best other center's, as said in the record), or None."""
        routing = self.centers
        if routing is None or routing.spill_margin is None:
            return None
        others = [c for c in self._center_names if c != center]
        if not others:
            return None
        home = self._newcomer(queue, rank, now, center)
        if home is not None and home <= routing.spill_margin:
            return None                     # no center can be shorter by more than the margin
        best: tuple[float, str] | None = None
        for other in others:
            e = self._newcomer(queue, rank, now, other)
            if e is not None and (best is None or e < best[0]):
                best = (e, other)
        if best is None:
            return None
        if home is None:
            return f"{center}: nobody on duty, {best[1]} wait {_said(best[0])}"
        if home - best[0] > routing.spill_margin:
            return f"{center} wait {_said(home)}, {best[1]} {_said(best[0])}"
        return None

    def ring_failed(self, call_id: str, agent_id: str, now: float) -> None:
        """The agent did not answer: the agent is PAUSED ("no answer"); the caller keeps the
        place and goes to the next free agent on the next ``offers``."""
        a = self._agent(agent_id)
        self._tell(now)
        w = self._waiting.get(call_id)
        if w is not None and w.offered_to == agent_id:
            self._waiting[call_id] = dataclasses.replace(w, offered_to=None)
        if a.state is AgentState.RINGING and a.current_call == call_id:
            a.pause_after = None
            self._set(a, AgentState.PAUSED, now, reason="no answer")

    def ring_cancelled(self, agent_id: str, now: float) -> None:
        """The ring was stopped (the caller left): RINGING → AVAILABLE, keeping the agent's
        turn among free agents (or PAUSED when a pause was asked for meanwhile).  Nothing
        happens when the agent is not ringing: a late or repeated notice is harmless."""
        a = self._agent(agent_id)
        if a.state is not AgentState.RINGING:
            return
        self._tell(now)
        w = self._waiting.get(a.current_call or "")
        if w is not None and w.offered_to == agent_id:
            self._waiting[w.call_id] = dataclasses.replace(w, offered_to=None)
        if a.pause_after is not None:
            reason, a.pause_after = a.pause_after, None
            self._set(a, AgentState.PAUSED, now, reason=reason)
        else:
            self._set(a, AgentState.AVAILABLE, now, idle_since=a.idle_before_ring)

    def answered(self, call_id: str, agent_id: str, now: float) -> None:
        """The agent rung for ``call_id`` answered: the caller leaves the line (the wait is a
        sample for the estimate), the agent is ON_CALL."""
        a = self._agent(agent_id)
        if a.state is not AgentState.RINGING or a.current_call != call_id:
            raise AcdStateError(f"agent {agent_id} was not rung for call {call_id} "
                                f"(state {a.state}, call {a.current_call})")
        w = self._waiting.get(call_id)
        if w is None:
            raise AcdStateError(f"call {call_id} is no longer waiting; stop the ring and call ring_cancelled")
        self._tell(now)
        self._remove(w)
        waited = now - w.arrived_at
        est = self._estimators[w.queue]
        est.record_answered(waited)
        assert a.since is not None                  # set on entering RINGING
        est.record_ring(now - a.since)
        a.handled += 1
        a.answered_at = now
        self._emit(now, "call.connected", call_id=call_id, agent_id=agent_id, queue=w.queue,
                   detail=str(round(waited)))
        self._set(a, AgentState.ON_CALL, now, call=call_id, call_queue=w.queue)

    def call_ended(self, agent_id: str, now: float) -> None:
        """The conversation is over: the agent wraps up for the queue's ``wrap_up`` (or is
        PAUSED when a pause was asked for during the call).  Talk time plus wrap-up is a handle
        time sample for the queue's estimate."""
        a = self._agent(agent_id)
        if a.state is not AgentState.ON_CALL:
            raise AcdStateError(f"agent {agent_id} is not on a call (state {a.state})")
        self._tell(now)
        queue = a.call_queue
        assert queue is not None and a.answered_at is not None
        wrap = self._lines[queue].spec.wrap_up
        self._estimators[queue].record_handle(now - a.answered_at + wrap)
        a.answered_at = None
        if a.pause_after is not None:
            reason, a.pause_after = a.pause_after, None
            self._set(a, AgentState.PAUSED, now, reason=reason)
        elif wrap > 0:
            self._set(a, AgentState.WRAP_UP, now, wrap_until=now + wrap, call_queue=queue)
            heapq.heappush(self._wrapping, (now + wrap, agent_id))
        else:
            self._set(a, AgentState.AVAILABLE, now)

    def tick(self, now: float) -> None:
        """Agents whose wrap-up is over become AVAILABLE (free since the wrap-up's end)."""
        self._tell(now)
        while self._wrapping and self._wrapping[0][0] <= now:
            until, agent_id = heapq.heappop(self._wrapping)
            a = self._agents[agent_id]
            if a.state is AgentState.WRAP_UP and a.wrap_until == until:
                self._set(a, AgentState.AVAILABLE, now, idle_since=until)

    def next_wrap_end(self) -> float | None:
        """When the next wrap-up ends (the time to ``tick`` next), or None."""
        while self._wrapping:
            until, agent_id = self._wrapping[0]
            a = self._agents[agent_id]
            if a.state is AgentState.WRAP_UP and a.wrap_until == until:
                return until
            heapq.heappop(self._wrapping)
        return None

    # -- estimates and the wallboard -----------------------------------------------------

    def estimator(self, queue: str) -> WaitEstimator:
        self._line(queue)
        return self._estimators[queue]

    def estimate_waits(self, call_ids: Iterable[str], now: float) -> dict[str, float | None]:
        """``estimate_wait`` of many callers at once (a wallboard): the agents' side of the
        estimate (who frees up when) is worked out once per queue and center, not per caller.
        Callers not in line are left out."""
        memo: dict[tuple[str, str | None], Any] = {}
        return {c: self.estimate_wait(c, now, memo=memo) for c in call_ids if c in self._waiting}

    def estimate_wait(self, call_id: str, now: float, *,
                      memo: dict[tuple[str, str | None], Any] | None = None) -> float | None:
        """Seconds the caller is expected to wait still; None when no agent serving the queue
        is on duty (logged in and neither paused nor due to pause after the call): nobody to
        serve, nothing to estimate.  A caller whose agent is ringing waits 0.

        With centers routing, a caller of a center is taken by the first of two: the own
        center's agents, counting the own center's callers ahead (and those of no center);
        or, once eligible everywhere (at once, after ``spill_after``, or never), the agents
        of every center, counting every caller ahead in the nationwide line and the callers
        of the same priority who will arrive at other centers (their agents take their own
        callers first).  The wait is ``min(home, max(until eligible, everywhere))``."""
        w = self._get_waiting(call_id)
        if w.offered_to is not None:
            return 0.0
        position = self.position(call_id)
        if self.centers is None or w.center is None:
            return self._estimate(w.queue, position, w.rank, now, memo=memo)
        line = self._lines[w.queue]
        mine = self._line_key(w)
        ahead = sum(1 for key in line.order[:bisect.bisect_left(line.order, mine)]
                    if self._waiting[key[3]].center in (w.center, None))
        home = self._estimate(w.queue, ahead + 1, w.rank, now, center=w.center, memo=memo)
        if self._spilled(w, now):
            until: float | None = 0.0
        else:
            after = self.centers.spill_after
            until = None if after is None else max(0.0, w.arrived_at + after - now)
        return self._routed(w.queue, home, until, position, w.rank, now, w.center, memo=memo)

    def _routed(self, queue: str, home: float | None, until: float | None, position: int,
                rank: int, now: float, center: str, *,
                memo: dict[tuple[str, str | None], Any] | None = None) -> float | None:
        """``min(home, max(until, everywhere))``: ``home`` the wait for the own center's agents,
        ``until`` the time until eligible everywhere (None: never), ``position`` the place in
        the nationwide line."""
        if until is None or home is not None and home <= until:
            return home
        everywhere = self._estimate(queue, position, rank, now, center=center, spilled=True,
                                    memo=memo)
        if everywhere is None:
            return home
        everywhere = max(until, everywhere)
        return everywhere if home is None else min(home, everywhere)

    def estimate_newcomer(self, queue: str, now: float, priority: str | None = None, *,
                          center: str | None = None) -> float | None:
        """Seconds a caller of ``priority`` joining ``queue`` now would be expected to wait
        (``queue.<name>.estimated_wait`` in flows); None when nobody is on duty for it.  With
        centers routing, for a caller of ``center``, as ``estimate_wait`` says: the own
        center's agents, or every center's once eligible (at once when the own center's wait
        is longer than another's by ``spill_margin``, else after ``spill_after``)."""
        line = self._line(queue)
        rank = self._rank.get(priority, self._default_rank) if priority else self._default_rank
        home = self._newcomer(queue, rank, now, center)
        if self.centers is None or center is None:
            return home
        if self._spill_on_arrival(queue, rank, center, now) is not None:
            until: float | None = 0.0
        else:
            until = self.centers.spill_after
        position = 1 + sum(1 for key in line.order if key[0] <= rank)
        return self._routed(queue, home, until, position, rank, now, center)

    def _newcomer(self, queue: str, rank: int, now: float, center: str | None) -> float | None:
        line = self._lines[queue]
        if center is None or self.centers is None:
            position = 1 + sum(1 for key in line.order if key[0] <= rank)
        else:
            position = 1 + sum(1 for key in line.order if key[0] <= rank
                               and self._waiting[key[3]].center in (center, None))
        return self._estimate(queue, position, rank, now, center=center)

    def _estimate(self, queue: str, position: int, rank: int, now: float, *,
                  center: str | None = None, spilled: bool = False,
                  memo: dict[tuple[str, str | None], Any] | None = None) -> float | None:
        """``center`` (with centers routing): the wait of a caller of that center, counting
        that center's agents only and the callers of a higher priority arriving there; with
        ``spilled``, every center's agents and the callers arriving ahead anywhere
        (``WaitEstimator.estimate``)."""
        line = self._lines[queue]
        est = self._estimators[queue]
        on_call: list[float] = []           # how long each agent on a call has been on it
        others: list[float] = []            # the known remaining time of the others
        if self.centers is None:
            center = None
        only = None if spilled else center
        known = memo.get((queue, only)) if memo is not None else None
        if known is not None:               # the same agents, the same moment: one reckoning
            free_now, count, remaining = known
            if count == 0:
                return None
            if position <= free_now:
                return min(est.horizon, est.mean_ring)
            return est.estimate(position, remaining, now, rank=rank, center=center, spilled=spilled)
        serving = line.serving
        if only is not None:                # that center's agents (and those of no center)
            mine = self._serving_in.get((queue, only))
            if mine is None:
                mine = self._serving_in[(queue, only)] = tuple(
                    i for i in line.serving if self._agents[i].spec.center in (only, None))
            serving = mine
        for agent_id in serving:
            a = self._agents[agent_id]
            if a.state in (AgentState.OFFLINE, AgentState.PAUSED) or a.pause_after is not None:
                continue
            if a.state is AgentState.ON_CALL:
                assert a.answered_at is not None
                on_call.append(now - a.answered_at)
            elif a.state is AgentState.WRAP_UP:
                others.append(max(0.0, (a.wrap_until or now) - now))
            else:                          # available, or ringing for a caller ahead
                others.append(0.0)
        if not on_call and not others:
            if memo is not None:
                memo[(queue, only)] = (0, 0, [])
            return None
        free_now = sum(1 for r in others if r <= 0)
        if memo is not None:
            memo[(queue, only)] = (free_now, len(on_call) + len(others),
                                   est.free_times(on_call, others))
        if position <= len(others) and free_now >= position:
            return min(est.horizon, est.mean_ring)   # an agent free now for each caller up to this one
        remaining = est.free_times(on_call, others) if memo is None else memo[(queue, only)][2]
        return est.estimate(position, remaining, now, rank=rank, center=center, spilled=spilled)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """A plain dict for a wallboard, as of ``now`` (default: the latest time the Acd was
        told): per queue the callers waiting, the oldest wait, agents on duty and paused, the
        recent handle time and abandonment; per agent the state."""
        now = self._now if now is None else now
        queues: dict[str, Any] = {}
        for name, line in self._lines.items():
            on_duty, paused = self.staffed(name)
            est = self._estimators[name]
            oldest = now - line.by_arrival[0][0] if line.by_arrival else 0.0
            queues[name] = {
                "waiting": len(line.order),
                "ringing": sum(1 for k in line.order if self._waiting[k[3]].offered_to is not None),
                "oldest_wait": round(max(0.0, oldest), 1),
                "staffed": on_duty, "paused": paused,
                "handle_time": round(est.mean_handle, 1),
                "abandon_rate": round(est.abandon_rate, 3),
            }
            if self._center_names:
                by_center: dict[str, int] = {}
                for key in line.order:
                    c = self._waiting[key[3]].center or "-"
                    by_center[c] = by_center.get(c, 0) + 1
                queues[name]["waiting_by_center"] = by_center
        agents = {
            a.spec.id: {"state": str(a.state),
                        "for_seconds": None if a.since is None else round(max(0.0, now - a.since), 1),
                        "reason": a.reason, "call": a.current_call, "handled": a.handled,
                        "center": a.spec.center}
            for a in self._agents.values()
        }
        return {"as_of": now, "queues": queues, "agents": agents}

    # -- inside --------------------------------------------------------------------------

    def _line(self, queue: str) -> _Line:
        try:
            return self._lines[queue]
        except KeyError:
            known = ", ".join(self._lines) or "none"
            raise NoSuchQueue(f"no queue named {queue!r} (queues: {known})") from None

    def _agent(self, agent_id: str) -> _Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise NoSuchAgent(f"no agent {agent_id!r}") from None

    def _get_waiting(self, call_id: str) -> Waiting:
        try:
            return self._waiting[call_id]
        except KeyError:
            raise NoSuchCall(f"call {call_id} is not waiting in any queue") from None

    @staticmethod
    def _line_key(w: Waiting) -> _LineKey:
        return (w.rank, w.arrived_at, w.seq, w.call_id)

    def _remove(self, w: Waiting) -> None:
        line = self._lines[w.queue]
        key = self._line_key(w)
        del line.order[bisect.bisect_left(line.order, key)]
        akey = (w.arrived_at, w.seq, w.call_id)
        del line.by_arrival[bisect.bisect_left(line.by_arrival, akey)]
        del self._waiting[w.call_id]

    def _next_unoffered(self, line: _Line, start: int) -> int | None:
        """Index of the first caller from ``start`` whose agent is not ringing (at most one
        skipped per ringing agent)."""
        order = line.order
        for i in range(start, len(order)):
            if self._waiting[order[i][3]].offered_to is None:
                return i
        return None

    def _ring(self, w: Waiting, a: _Agent, now: float) -> None:
        self._waiting[w.call_id] = dataclasses.replace(w, offered_to=a.spec.id)
        a.idle_before_ring = a.idle_since
        self._emit(now, "call.offered", call_id=w.call_id, agent_id=a.spec.id, queue=w.queue)
        self._set(a, AgentState.RINGING, now, call=w.call_id, call_queue=w.queue)

    def _set(self, a: _Agent, state: AgentState, now: float, *, reason: str | None = None,
             wrap_until: float | None = None, call: str | None = None, call_queue: str | None = None,
             idle_since: float | None = None, since: float | None = None,
             restored: bool = False) -> None:
        a.state, a.reason, a.wrap_until = state, reason, wrap_until
        a.since = now if since is None else since
        a.current_call, a.call_queue = call, call_queue
        if state is AgentState.AVAILABLE:
            a.idle_since = now if idle_since is None else idle_since
            self._available.add(a.spec.id)
        else:
            self._available.discard(a.spec.id)
        detail = state_detail(StateDetail(state=state, reason=reason, restored=restored,
                                          age=now - a.since))
        self._emit(now, "agent.state", agent_id=a.spec.id, call_id=call, queue=call_queue, detail=detail)

    def _tell(self, now: float) -> None:
        if now > self._now:
            self._now = now

    def _emit(self, now: float, kind: str, **fields: Any) -> None:
        if self._on_event is not None:
            self._on_event(Event(at=now, kind=kind, **fields))


def _said(seconds: float) -> str:
    """A wait as a person says it in a record: ``40 s``, ``6 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
