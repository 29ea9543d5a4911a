"""``LiveStats``: today's figures of the queues and the agents, for the wallboard.

Pure: no aiohttp, no ARI, no task of its own; the wall clock (``clock``), the queues' clock
(``mono``, the one ``Acd`` is driven with) and the center's time zone are passed in.  Two
sources:

- **the line as it is now**, read from the ``Acd`` (``LineView``) at each ``snapshot``: who
  waits where, in what order, for how long, with what estimate; each agent's state;
- **what happened today**, counted from the queues' events (``LiveStats`` is an ``on_event``
  of ``Acd``, beside the ``EventRecorder``) and the finished call records (``call_ended``).
  At start-up ``load_today`` replays the store's events since local midnight, so a restart
  does not zero the wallboard.  "Today" is the day in ``callers.timezone``: every count starts
  again at local midnight (callers in line then, and agents' states, carry over).

What is counted, per queue and per (queue, center) (a caller's center is the one of the
switch the call came in on):

- ``answered``: callers put through to an agent of the queue (``call.connected``); their wait,
  from the first arrival in line (kept across an overflow, a declined callback, a restart),
  gives the **average speed of answer** (``asa``, seconds).
- ``callbacks``: callers who left the line for a callback reservation (``call.left``
  ``callback``): neither answered nor abandoned.
- ``abandoned``: callers who left the line unserved for any other reason: hung up, told that
  nobody could take the call after ``max_wait`` (app_queue counts its EXITWITHTIMEOUT as
  abandoned too), lost with the server, gone during a restart.  A caller moved on by
  ``on_max_wait: overflow`` is not counted in the queue left (app_queue would count a
  timeout there): the caller is counted once, where the wait ends, with the whole wait.
- ``abandon_rate``: ``abandoned / (answered + abandoned + callbacks)``; None before the first.

**Service level** (``wallboard.service_level`` seconds, ``T``), one of app_queue's two
(``apps/app_queue.c``: ``QueueStatus``' ``ServicelevelPerf`` and ``ServicelevelPerf2``; a
wait counts as within when it is at most ``T``, as there), by ``service_level_formula``:

- ``answered`` (ServicelevelPerf): answered within T / answered;
- ``answered_and_abandoned`` (ServicelevelPerf2): (answered within T + abandoned within T)
  / (answered + abandoned): a caller who hangs up quickly counts for the queue.

Callbacks are in neither.  None before the first caller it counts.

**Occupancy** of a center's agents today: time on a call or wrapping up, over the time logged
in and not paused (available, ringing, on a call, wrapping up), from each agent's
``agent.state`` events since midnight (or since the agent was last seen before it).

Places held in line for callback reservations (line entries ``cb-…``) are not callers on
the phone: they are left out of the waiting counts, the list and the figures above (the agents
they take show in the agents' states).

The **waiting list** (``waiting_list``) is not every caller: the first ``wallboard.list_rows``
in line, then up to as many of those behind them who wait longer than ``flash_after``, the
longest first, each with its ``position`` in line; ``waiting_total`` counts them all.

``flash``: a caller waiting longer than ``wallboard.flash_after``.  ``levels``: ``ok``,
``warn`` or ``alert`` per figure from ``wallboard.levels`` (None where the figure is None).
Numbers are always masked in ``snapshot`` (``mask_number``); ``waiting_caller`` gives one
caller with the full number, for a supervisor's detail view (the web layer audits it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import heapq
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from math import inf
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from ivr.acd.model import AgentState, AgentStatus, Waiting, read_queued, read_state
from ivr.config import Levels, WallboardConfig
from ivr.logs import mask_number
from ivr.store.base import QueueEvent

__all__ = ["LineView", "EventHistory", "QueueOutcomes", "LiveStats", "load_today", "generated_state",
           "HELD_PREFIX", "RESERVATION_KEYS"]

HELD_PREFIX = "cb-"            # line entries of callback reservations (ivr.callbacks.desk.PREFIX)
RESERVATION_KEYS = ("pending", "due", "in_progress", "failed", "done")
ESTIMATE_BUDGET = 20          # callers whose wait is estimated again per snapshot, at most
ESTIMATE_EVERY = 5.0          # seconds an estimate is kept before it is worked out again
NOT_ABANDONED = frozenset({"callback", "overflow", "called back"})
_BUSY = frozenset({AgentState.ON_CALL, AgentState.WRAP_UP})
_STAFFED = frozenset({AgentState.AVAILABLE, AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP})
_CONNECTED_WAIT = re.compile(r"[0-9]+")


class LineView(Protocol):
    """What the statistics read of the queues (``ivr.acd.core.Acd``)."""

    @property
    def priorities(self) -> tuple[str, ...]: ...

    def queue_names(self) -> list[str]: ...

    def waiting(self, queue: str) -> list[Waiting]: ...

    def agents(self) -> list[AgentStatus]: ...

    def estimate_waits(self, call_ids: Iterable[str], now: float) -> dict[str, float | None]: ...


class QueueOutcomes(Protocol):
    """Told as each caller's wait ends (``LiveStats.watch``; ``ivr.stats.metrics.Metrics``):
    live events only, never the replay of the store's at start-up.  ``wait``: seconds from the
    first arrival in line, None when not known; ``how``: ``abandoned`` or ``callback``."""

    def answered(self, queue: str, center: str | None, wait: float | None) -> None: ...

    def left(self, queue: str, center: str | None, how: str, wait: float | None) -> None: ...


class EventHistory(Protocol):
    """What ``load_today`` reads of the store (``ivr.store.base.Store``)."""

    def iter_events(self, since: dt.datetime, until: dt.datetime, *,
                    batch: int = 5000) -> AsyncIterator[list[QueueEvent]]: ...


@dataclasses.dataclass(slots=True)
class _Tally:
    answered: int = 0
    abandoned: int = 0
    callbacks: int = 0
    answered_in_sl: int = 0
    abandoned_in_sl: int = 0
    wait_sum: float = 0.0


@dataclasses.dataclass(slots=True)
class _InLine:
    queue: str
    center: str | None
    arrived: float | None          # wall-clock epoch of the first arrival (None: before we knew)
    reason: str | None = None


@dataclasses.dataclass(slots=True)
class _AgentDay:
    state: AgentState
    since: float                    # wall-clock epoch the state is counted from (today)
    queue: str | None = None
    busy: float = 0.0               # today's seconds on a call or wrapping up
    staffed: float = 0.0            # today's seconds logged in and not paused

    def close(self, at: float) -> None:
        span = max(0.0, at - self.since)
        if self.state in _STAFFED:
            self.staffed += span
        if self.state in _BUSY:
            self.busy += span
        self.since = max(self.since, at)


class LiveStats:
    """Today's figures (see the module's docstring); call it with each ``Event`` of the Acd.

    ``clock``: the wall clock (aware datetimes); ``mono``: the Acd's clock (seconds);
    ``numbers``: a waiting caller's number (E.164) by call id, None when not known;
    ``channels``: how a waiting caller reached us (``voice``, ``video``) by call id."""

    def __init__(self, line: LineView, config: WallboardConfig, *, tz: ZoneInfo,
                 clock: Callable[[], dt.datetime], mono: Callable[[], float],
                 numbers: Callable[[str], str | None] = lambda call_id: None,
                 channels: Callable[[str], str | None] = lambda call_id: None,
                 queue_names: Sequence[str] | None = None) -> None:
        self.line = line
        self.config = config
        self.tz = tz
        self.clock = clock
        self.mono = mono
        self.numbers = numbers
        self.channels = channels
        self.queue_names = list(queue_names if queue_names is not None else line.queue_names())
        agents = line.agents()
        self._agent_spec = {a.spec.id: a.spec for a in agents}
        self.centers = sorted({a.spec.center for a in agents if a.spec.center})
        self.version = 0
        self._changed = asyncio.Event()
        self._last = 0.0
        self._day: dt.date | None = None
        self._midnight = 0.0
        self._tallies: dict[tuple[str, str | None], _Tally] = {}
        self._calls: dict[str, _InLine] = {}
        self._agents: dict[str, _AgentDay] = {}
        self._outcomes: dict[str, int] = {}
        self._estimated: dict[str, tuple[float, float | None]] = {}   # call id: (when, estimate)
        self.reservations: dict[str, int] = dict.fromkeys(RESERVATION_KEYS, 0)
        self.wellness: dict[str, Any] | None = None
        self._watchers: list[QueueOutcomes] = []
        self._live = False
        self._roll(self.clock().timestamp())

    def watch(self, watcher: QueueOutcomes) -> None:
        """``watcher`` is told of each wait that ends from now on (live events only)."""
        self._watchers.append(watcher)

    # -- feeding -------------------------------------------------------------------------------

    def __call__(self, event: Any) -> None:
        """``Acd(on_event=…)``: an ``ivr.acd.model.Event``, counted as of the wall clock now."""
        at = self.clock().timestamp()
        if at < self._last:
            at = self._last             # a clock stepped back: the order of events is kept
        self._live = True
        try:
            self._apply(at, event.kind, event.call_id, event.agent_id, event.queue, event.detail)
        finally:
            self._live = False
        self._bump()

    def seed(self, events: Iterable[QueueEvent]) -> int:
        """Replay stored events (oldest first): today's events count, older ones only say
        who was in line and where each agent stood.  How many events were read."""
        n = 0
        for e in events:
            at = e.at.timestamp() if e.at.tzinfo else e.at.replace(tzinfo=dt.timezone.utc).timestamp()
            self._apply(at, e.kind, e.call_id, e.agent_id, e.queue, e.detail)
            n += 1
        if n:
            self._bump()
        return n

    def call_ended(self, record: Any) -> None:
        """A finished call's record (``ivr.call.CallRecord``): today's calls by outcome."""
        if record.outcome is None:
            return
        self._roll(self.clock().timestamp())
        ended = record.ended_at or self.clock()
        if ended.timestamp() < self._midnight:
            return
        key = str(record.outcome)
        self._outcomes[key] = self._outcomes.get(key, 0) + 1
        self._bump()

    def set_wellness(self, figures: Mapping[str, Any] | None) -> None:
        """The wellness dialler's figures (``visits_open``, ``ringing``, ``paused`` campaign
        names); None: no campaign runs, and the snapshot has no ``wellness``."""
        fresh = None if figures is None else dict(figures)
        if fresh != self.wellness:
            self.wellness = fresh
            self._bump()

    def set_reservations(self, counts: Mapping[str, int]) -> None:
        """The store's reservation counts (``Store.reservation_counts(now, since=midnight)``)."""
        fresh = {k: int(counts.get(k, 0)) for k in RESERVATION_KEYS}
        if fresh != self.reservations:
            self.reservations = fresh
            self._bump()

    @property
    def midnight(self) -> dt.datetime:
        """The start of today in the center's time zone (aware, UTC)."""
        return dt.datetime.fromtimestamp(self._midnight, dt.timezone.utc)

    # -- waiting for a change --------------------------------------------------------------------

    async def wait_changed(self, version: int, timeout: float) -> int:
        """The version now, once it differs from ``version`` or after ``timeout`` seconds."""
        if self.version != version:
            return self.version
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await changed.wait()
        return self.version

    def _bump(self) -> None:
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- the day ---------------------------------------------------------------------------------

    def _roll(self, at: float) -> None:
        """A new local day: every count starts again (callers in line and agents' states stay)."""
        day = dt.datetime.fromtimestamp(at, self.tz).date()
        if day == self._day:
            return
        if self._day is not None and day < self._day:
            return                      # an event of yesterday replayed late: counted today
        self._day = day
        start = dt.datetime.combine(day, dt.time(0), self.tz)
        self._midnight = start.timestamp()
        self._tallies.clear()
        self._outcomes.clear()
        for a in self._agents.values():
            a.busy = a.staffed = 0.0
            a.since = max(a.since, self._midnight)

    def _apply(self, at: float, kind: str, call_id: str | None, agent_id: str | None,
               queue: str | None, detail: str) -> None:
        self._roll(at)
        self._last = max(self._last, at)
        today = at >= self._midnight
        if kind == "agent.state" and agent_id is not None:
            self._agent_state(at, agent_id, queue, detail)
            return
        if call_id is None or call_id.startswith(HELD_PREFIX):
            return
        if kind == "call.queued" and queue is not None:
            try:
                q = read_queued(detail)
            except ValueError:
                q = None
            waited = q.waited if q is not None else 0.0
            known = self._calls.get(call_id)
            arrived = at - waited
            if known is not None and known.arrived is not None:
                arrived = min(arrived, known.arrived)
            self._calls[call_id] = _InLine(queue=queue, center=q.center if q else None,
                                           arrived=arrived,
                                           reason=q.reason if q else None)
        elif kind == "call.connected":
            c = self._calls.pop(call_id, None)
            wait = self._wait(at, c, detail)
            where = queue or (c.queue if c else None)
            if self._live and where is not None:
                for w in self._watchers:
                    w.answered(where, c.center if c else None, wait)
            if not today:
                return
            for t in self._tally_of(where, c):
                t.answered += 1
                t.wait_sum += wait if wait is not None else 0.0
                if wait is not None and wait <= self.config.service_level:
                    t.answered_in_sl += 1
        elif kind == "call.left":
            c = self._calls.get(call_id)
            if detail == "overflow":
                return                      # counted where the caller's wait ends
            self._calls.pop(call_id, None)
            where = queue or (c.queue if c else None)
            if where is None:
                return
            wait = self._wait(at, c, "")
            if self._live and (detail == "callback" or detail not in NOT_ABANDONED):
                how = "callback" if detail == "callback" else "abandoned"
                for w in self._watchers:
                    w.left(where, c.center if c else None, how, wait)
            if not today:
                return
            for t in self._tally_of(where, c):
                if detail == "callback":
                    t.callbacks += 1
                elif detail not in NOT_ABANDONED:
                    t.abandoned += 1
                    if wait is not None and wait <= self.config.service_level:
                        t.abandoned_in_sl += 1

    @staticmethod
    def _wait(at: float, c: _InLine | None, detail: str) -> float | None:
        if c is not None and c.arrived is not None:
            return max(0.0, at - c.arrived)
        if _CONNECTED_WAIT.fullmatch(detail):
            return float(detail)            # the wait in whole seconds, as the event says
        return None

    def _tally_of(self, queue: str | None, c: _InLine | None) -> list[_Tally]:
        if queue is None:
            return []
        keys: list[tuple[str, str | None]] = [(queue, None)]
        if c is not None and c.center is not None:
            keys.append((queue, c.center))
        return [self._tallies.setdefault(k, _Tally()) for k in keys]

    def _agent_state(self, at: float, agent_id: str, queue: str | None, detail: str) -> None:
        try:
            d = read_state(detail)
        except ValueError:
            return
        a = self._agents.get(agent_id)
        if a is None:                       # a restored state is counted from when it began
            since = max(self._midnight, at - d.age if d.restored else at)
            self._agents[agent_id] = _AgentDay(state=d.state, since=min(since, at), queue=queue)
            return
        a.close(at)
        a.state, a.queue = d.state, queue

    # -- reading ---------------------------------------------------------------------------------

    def line_counts(self) -> tuple[dict[tuple[str, str | None, str], int],
                                   dict[tuple[str, str | None], float],
                                   dict[tuple[str | None, str], int]]:
        """The line and the agents now, for the metrics' gauges: callers waiting by (queue,
        center, priority) (every priority of every queue, 0 included), the oldest wait by
        (queue, center) (the queue's own row with center None; a center's only when it has
        callers), agents by (center, state) (every state of every center)."""
        now = self.mono()
        waiting: dict[tuple[str, str | None, str], int] = {}
        oldest: dict[tuple[str, str | None], float] = {}
        centers: list[str | None] = [*self.centers] if self.centers else [None]
        for name in self.queue_names:
            for c in centers:
                for p in self.line.priorities:
                    waiting[(name, c, p)] = 0
            # The earliest arrival per (queue, center): one walk, no per-caller allocation
            # (a scrape with thousands waiting would otherwise hold the loop for milliseconds).
            first: dict[str | None, float] = {}
            for w in self.line.waiting(name):
                if w.call_id.startswith(HELD_PREFIX):
                    continue
                key = (name, w.center if self.centers else None, w.priority)
                waiting[key] = waiting.get(key, 0) + 1
                arrived, center = w.arrived_at, w.center
                if arrived < first.get(center, inf):
                    first[center] = arrived
            oldest[(name, None)] = max(0.0, now - min(first.values())) if first else 0.0
            for center, arrived in first.items():
                if center is not None:
                    oldest[(name, center)] = max(0.0, now - arrived)
        agents: dict[tuple[str | None, str], int] = {
            (c, str(s)): 0 for c in centers for s in _ORDER}
        for a in self.line.agents():
            where = (a.spec.center if self.centers else None, str(a.state))
            agents[where] = agents.get(where, 0) + 1
        return waiting, oldest, agents

    def snapshot(self) -> dict[str, Any]:
        """The wallboard as of now: a JSON-ready dict with stable keys (see the module)."""
        wall = self.clock()
        now_at = max(wall.timestamp(), self._last)
        self._roll(now_at)
        now = self.mono()
        cfg = self.config
        waiting_all: list[Waiting] = []
        per_queue: dict[str, list[Waiting]] = {}
        for name in self.queue_names:
            ws = [w for w in self.line.waiting(name) if not w.call_id.startswith(HELD_PREFIX)]
            per_queue[name] = ws
            waiting_all.extend(ws)
        queues: list[dict[str, Any]] = []
        for name in self.queue_names:
            ws = per_queue[name]
            queues.append(self._queue_row(name, None, ws, now))
            if self.centers:
                by_center: dict[str, list[Waiting]] = {c: [] for c in self.centers}
                for w in ws:
                    if w.center is not None:
                        by_center.setdefault(w.center, []).append(w)
                for center in sorted(by_center):
                    queues.append(self._queue_row(name, center, by_center[center], now))
        statuses = self.line.agents()
        agents = self._agent_rows(statuses, now_at)
        agent_list = [{
            "id": s.spec.id, "name": s.spec.name, "center": s.spec.center, "state": str(s.state),
            "reason": s.reason,
            "for_seconds": None if s.since is None else round(max(0.0, now - s.since), 1),
            "queue": self._agent_queue(s),
        } for s in statuses]
        waiting_all.sort(key=lambda w: w.key)
        listed = self._listed(waiting_all, now)
        estimates = self._estimates_now([w for _, w in listed], now)
        waiting_list = [{"position": i + 1, **self._caller_row(w, now, estimates.get(w.call_id), masked=True)}
                        for i, w in listed]
        alerts = self._alerts(queues, agents)
        return {
            "as_of": wall.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
            "day": self._day.isoformat() if self._day else None,
            "timezone": self.tz.key,
            "service_level": {"seconds": cfg.service_level, "formula": cfg.service_level_formula},
            "priorities": list(self.line.priorities),
            "centers": list(self.centers),
            "queues": queues,
            "agents": agents,
            "agent_list": agent_list,
            "waiting_list": waiting_list,
            "waiting_total": len(waiting_all),
            "reservations": dict(self.reservations),
            **({"wellness": dict(self.wellness)} if self.wellness is not None else {}),
            "calls": {"total": sum(self._outcomes.values()), "by_outcome": dict(self._outcomes)},
            "alerts": alerts,
        }

    def _listed(self, waiting: list[Waiting], now: float) -> list[tuple[int, Waiting]]:
        """The callers a snapshot lists, with their index in line: the first ``list_rows``,
        then up to as many of those behind them who wait longer than ``flash_after``, the
        longest first (a low priority's caller waiting long is seen, not lost at place 3,000).
        At the insurer's peak (5,000 waiting) a row per caller made a snapshot of about 1 MiB."""
        rows = self.config.list_rows
        first = list(enumerate(waiting[:rows]))
        if len(waiting) <= rows:
            return first
        since = now - self.config.flash_after
        behind = heapq.nsmallest(rows, (i for i in range(rows, len(waiting)) if waiting[i].arrived_at < since),
                                 key=lambda i: (waiting[i].arrived_at, i))
        return first + [(i, waiting[i]) for i in behind]

    def _estimates_now(self, waiting: list[Waiting], now: float) -> dict[str, float | None]:
        """Each caller's estimate, worked out again at most ``ESTIMATE_BUDGET`` callers per
        snapshot (those never estimated first, then the stalest): an estimate costs about
        0.5 ms with 1,500 agents, and a snapshot must not hold up the event loop.  In between
        an estimate counts down with the time since it was made."""
        known = self._estimated
        fresh = {w.call_id for w in waiting}
        for gone in [c for c in known if c not in fresh]:
            del known[gone]
        stale = sorted(fresh, key=lambda c: known[c][0] if c in known else -1.0)
        redo = [c for c in stale[:ESTIMATE_BUDGET]
                if c not in known or now - known[c][0] >= ESTIMATE_EVERY]
        if redo:
            for c, value in self.line.estimate_waits(redo, now).items():
                known[c] = (now, value)
        out: dict[str, float | None] = {}
        for c in fresh:
            at, value = known.get(c, (now, None))
            out[c] = None if value is None else max(0.0, value - (now - at))
        return out

    def waiting_caller(self, call_id: str) -> dict[str, Any] | None:
        """One waiting caller as in ``waiting_list``, with the full number (E.164); None when
        the call is not waiting (or is a reservation's place)."""
        if call_id.startswith(HELD_PREFIX):
            return None
        for name in self.queue_names:
            for w in self.line.waiting(name):
                if w.call_id == call_id:
                    now = self.mono()
                    estimate = self.line.estimate_waits([call_id], now).get(call_id)
                    return self._caller_row(w, now, estimate, masked=False)
        return None

    def _caller_row(self, w: Waiting, now: float, estimate: float | None, *,
                    masked: bool) -> dict[str, Any]:
        waited = max(0.0, now - w.arrived_at)
        number = self.numbers(w.call_id)
        known = self._calls.get(w.call_id)
        return {
            "call_id": w.call_id, "queue": w.queue, "center": w.center, "priority": w.priority,
            "reason": known.reason if known is not None else None,
            "waited": round(waited, 1),
            "estimate": None if estimate is None else round(estimate),
            "number": (mask_number(number) if masked else number) if number else None,
            "flash": waited > self.config.flash_after,
            "channel": self.channels(w.call_id) or "voice",
        }

    def _queue_row(self, queue: str, center: str | None, ws: list[Waiting], now: float) -> dict[str, Any]:
        cfg = self.config
        by_priority = dict.fromkeys(self.line.priorities, 0)
        for w in ws:
            by_priority[w.priority] = by_priority.get(w.priority, 0) + 1
        longest = round(max((now - w.arrived_at for w in ws), default=0.0), 1)
        t = self._tallies.get((queue, center)) or _Tally()
        if cfg.service_level_formula == "answered":
            sl = t.answered_in_sl / t.answered if t.answered else None
        else:
            counted = t.answered + t.abandoned
            sl = (t.answered_in_sl + t.abandoned_in_sl) / counted if counted else None
        ended = t.answered + t.abandoned + t.callbacks
        rate = t.abandoned / ended if ended else None
        asa = t.wait_sum / t.answered if t.answered else None
        return {
            "queue": queue, "center": center, "waiting": len(ws),
            "waiting_by_priority": by_priority, "longest_wait": max(0.0, longest),
            "answered": t.answered, "abandoned": t.abandoned, "callbacks": t.callbacks,
            "service_level": None if sl is None else round(sl, 3),
            "asa": None if asa is None else round(asa, 1),
            "abandon_rate": None if rate is None else round(rate, 3),
            "levels": {
                "longest_wait": _level(longest, cfg.longest_wait, more_is_worse=True),
                "service_level": _level(sl, cfg.service_level_levels, more_is_worse=False),
                "abandon_rate": _level(rate, cfg.abandon_rate, more_is_worse=True),
            },
        }

    def _agent_rows(self, statuses: list[AgentStatus], now_at: float) -> list[dict[str, Any]]:
        groups: dict[str | None, dict[str, Any]] = {}
        keys = [None, *self.centers] if self.centers else [None]
        for key in keys:
            groups[key] = {"center": key, **{str(s): 0 for s in _ORDER}, "paused_by_reason": {},
                           "_busy": 0.0, "_staffed": 0.0}
        for s in statuses:
            targets = [groups[None]]
            if self.centers and s.spec.center in groups:
                targets.append(groups[s.spec.center])
            day = self._agents.get(s.spec.id)
            busy = staffed = 0.0
            if day is not None:
                busy, staffed = day.busy, day.staffed
                span = max(0.0, now_at - day.since)
                if day.state in _STAFFED:
                    staffed += span
                if day.state in _BUSY:
                    busy += span
            for g in targets:
                g[str(s.state)] += 1
                if s.state is AgentState.PAUSED:
                    reason = s.reason or "paused"
                    g["paused_by_reason"][reason] = g["paused_by_reason"].get(reason, 0) + 1
                g["_busy"] += busy
                g["_staffed"] += staffed
        rows = []
        for g in groups.values():
            busy, staffed = g.pop("_busy"), g.pop("_staffed")
            g["occupancy"] = round(busy / staffed, 3) if staffed > 0 else None
            rows.append(g)
        return rows

    def _agent_queue(self, s: AgentStatus) -> str | None:
        if s.state not in (AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP):
            return None
        day = self._agents.get(s.spec.id)
        return day.queue if day is not None else None

    def _alerts(self, queues: list[dict[str, Any]], agents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The figures at their ``alert`` level, each as ``{"kind", "queue", "center",
        "value", "text"}``: ``kind`` is ``longest_wait`` (seconds), ``service_level`` or
        ``abandon_rate`` (a share); the page words them in its language, ``text`` says it in
        English for scripts."""
        out: list[dict[str, Any]] = []
        for q in queues:
            where = q["queue"] if q["center"] is None else f"{q['queue']} ({q['center']})"
            if q["center"] is not None and not self.centers:
                continue
            levels = q["levels"]

            def alert(kind: str, value: float, text: str, q: dict[str, Any] = q) -> None:
                out.append({"kind": kind, "queue": q["queue"], "center": q["center"],
                            "value": value, "text": text})
            if levels["longest_wait"] == "alert":
                alert("longest_wait", q["longest_wait"],
                      f"a caller in {where} has waited {_said(q['longest_wait'])}")
            if levels["service_level"] == "alert":
                alert("service_level", q["service_level"],
                      f"service level in {where} is {q['service_level'] * 100:.0f} % "
                      f"(answered within {self.config.service_level:g} s)")
            if levels["abandon_rate"] == "alert":
                alert("abandon_rate", q["abandon_rate"],
                      f"{q['abandon_rate'] * 100:.0f} % of callers in {where} hung up unserved today")
        return out


_ORDER = (AgentState.AVAILABLE, AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP,
          AgentState.PAUSED, AgentState.OFFLINE)


def _level(value: float | None, levels: Levels, *, more_is_worse: bool) -> str | None:
    if value is None:
        return None
    if more_is_worse:
        return "alert" if value >= levels.alert else "warn" if value >= levels.warn else "ok"
    return "alert" if value <= levels.alert else "warn" if value <= levels.warn else "ok"


def _said(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


async def load_today(stats: LiveStats, store: EventHistory, *, batch: int = 5000) -> int:
    """Replay the store's events since local midnight into ``stats`` (a restart, a take-over),
    with the events of the hour before midnight for the callers then in line and the agents'
    states; how many events were read.  ``StoreError`` when the store cannot be read."""
    now = stats.clock()
    since = stats.midnight - dt.timedelta(hours=1)
    n = 0
    async for events in store.iter_events(since, now + dt.timedelta(seconds=1), batch=batch):
        n += stats.seed(events)
    return n


def generated_state(agents: int = 1562, centers: int = 7, waiting: int = 500, *,
                    queues: int = 3, seed: int = 13) -> tuple[Any, LiveStats]:
    """A busy center for size tests (and ``bench``): an ``Acd`` with ``agents`` agents over
    ``centers`` centers (in every state), ``waiting`` callers in line over ``queues`` queues
    and a morning of events, and a ``LiveStats`` over it.  Deterministic for a ``seed``."""
    import random

    from ivr.acd.core import Acd
    from ivr.acd.model import AgentSpec, CenterRouting, QueueSpec

    rng = random.Random(seed)
    tz = ZoneInfo("Asia/Seoul")
    start = dt.datetime(2026, 12, 2, 9, 0, tzinfo=tz).astimezone(dt.timezone.utc)
    mono = [0.0]
    wall = [start]

    def clock() -> dt.datetime:
        return wall[0]

    def mono_clock() -> float:
        return mono[0]

    names = ["seoul", "busan", "daegu", "incheon", "gwangju", "daejeon", "ulsan",
             "suwon", "jeju", "sejong"][:centers] or [f"c{i}" for i in range(centers)]
    while len(names) < centers:
        names.append(f"center{len(names) + 1}")
    qnames = ["general", "claims", "billing", "elderly", "english"][:queues]
    specs = {q: QueueSpec(name=q, skills=frozenset({q}), max_wait=3600.0, wrap_up=30.0)
             for q in qnames}
    agent_specs = [AgentSpec(id=f"a{i:04d}", name=f"Agent {i}", endpoint=f"PJSIP/a{i:04d}",
                             skills=frozenset(rng.sample(qnames, k=min(len(qnames), 2))),
                             center=names[i % centers]) for i in range(agents)]
    stats_box: list[LiveStats] = []

    def fan_out(event: Any) -> None:
        if stats_box:
            stats_box[0](event)

    acd = Acd(specs, agent_specs, on_event=fan_out, centers=CenterRouting())
    stats = LiveStats(acd, WallboardConfig(), tz=tz, clock=clock, mono=mono_clock,
                      numbers=lambda call_id: "+8210" + f"{abs(hash(call_id)) % 10**8:08d}")
    stats_box.append(stats)

    def advance(seconds: float) -> None:
        mono[0] += seconds
        wall[0] += dt.timedelta(seconds=seconds)

    for spec in agent_specs:
        acd.login(spec.id, mono[0])
    # A morning: callers come, are answered, hang up; agents pause and wrap up.
    n = 0
    for _ in range(6):
        advance(60)
        for _ in range(agents // 2):
            n += 1
            acd.enqueue(f"m{n}", rng.choice(qnames), rng.choice(acd.priorities), mono[0],
                        center=rng.choice(names))
        for offer in acd.offers(mono[0]):
            advance(0.01)
            acd.answered(offer.call_id, offer.agent_id, mono[0])
        for w in [w for q in qnames for w in acd.waiting(q)][: agents // 10]:
            acd.leave(w.call_id, mono[0], rng.choice(["caller_hangup", "callback"]))
        advance(120)
        for status in acd.agents():
            if status.state is AgentState.ON_CALL:
                acd.call_ended(status.spec.id, mono[0])
        advance(31)
        acd.tick(mono[0])
    for q in qnames:
        for w in acd.waiting(q):
            acd.leave(w.call_id, mono[0], "caller_hangup")
    for spec in agent_specs:
        roll = rng.random()
        if roll < 0.1:
            acd.pause(spec.id, rng.choice(["lunch", "training", "meeting"]), mono[0])
        elif roll < 0.15:
            acd.logout(spec.id, mono[0])
    acd.offers(mono[0])
    # The busy moment: every free agent on a call, callers waiting.
    for offer in acd.offers(mono[0]):
        acd.answered(offer.call_id, offer.agent_id, mono[0])
    for i in range(waiting + agents):
        advance(0.2)
        acd.enqueue(f"w{i}", rng.choice(qnames), rng.choice(acd.priorities), mono[0],
                    center=rng.choice(names), reason=rng.choice([None, "bypass: elderly"]))
        for offer in acd.offers(mono[0]):
            acd.answered(offer.call_id, offer.agent_id, mono[0])
    extra = sum(len(acd.waiting(q)) for q in qnames) - waiting
    for w in sorted((w for q in qnames for w in acd.waiting(q)), key=lambda w: -w.arrived_at)[:max(0, extra)]:
        acd.leave(w.call_id, mono[0], "caller_hangup")
    return acd, stats
