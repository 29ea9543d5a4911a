"""How close is the wait a caller is told to the wait the caller gets?

    .venv/bin/python bench/ewt.py                      # one day, 08:00-20:00, 18 agents at full staff
    .venv/bin/python bench/ewt.py --seed 7 --agents 20
    .venv/bin/python bench/ewt.py --quick              # the morning only, 08:00-13:00
    .venv/bin/python bench/ewt.py --days 10            # ten days (seeds N .. N+9), pooled and day by day
    .venv/bin/python bench/ewt.py --horizon 14400      # ours says at most 4 hours instead of 1
    .venv/bin/python bench/ewt.py --centers 7          # 100 agents over seven centers, per center
    .venv/bin/python bench/ewt.py --centers 7 --routing own

A discrete-event simulation in virtual time (a heap of timed events, no sleeping) of one queue,
``general``, driven through the real ``ivr.acd.core.Acd``.  Callers arrive as a Poisson stream
whose rate follows the day (``BASE_RATE`` per hour times the hour's factor), three times as fast
in the surge (11:00-12:30); 15 % are elderly and 8 % repeat callers (served first, in that
order).  Each caller gives up after a patience drawn from an exponential distribution (mean
8 minutes) and is taken out after the queue's ``max_wait`` (20 minutes).  Agents log in and out
on a staffing schedule (fewer at lunch and in the evening; an agent due off finishes the call
first), answer after 3 s of ringing, talk for a lognormal time (mean 240 s) and wrap up 10 s.

At each arrival two estimates of the caller's wait are taken: ours (``Acd.estimate_wait``) and
app_queue's (``AppQueueAverage``, fed the waits of answered callers as app_queue does).  Two
waits are compared with them:

- **answered callers, their wait** (arrival to the agent's answer).  Callers who give up are
  left out, and they are the ones who would have waited longest: this favours an estimate that
  runs short, such as an average of answered waits.
- **every caller, the wait had they stayed**: for a caller who gave up or timed out, the moment
  an agent went to someone behind them in line (or was left free), plus the ring.  Each such
  caller is followed alone, everyone else doing what they did; the simulation is not changed.

Printed: the parameters; calls, answered, abandoned, timed out; for each comparison the mean
absolute error of each estimate (all day, in the surge, outside it; answered callers also by
priority), the mean signed error (positive: the wait was longer than said) and the share of
callers whose wait was within the range they would hear ("less than N minutes",
``announce_range``); then how ours came about: the estimate as first laid out (places
discounted by the share of callers giving up), and each change that made ours, scored on the
same callers.  ``--horizon`` sets the longest estimate of ours (default 1 hour).  With
``--days`` above 1, a line per day.  Nothing is asserted.

``--centers N`` splits the agents (default 100 at full staff) and the callers over the first N
of seven centers of different sizes (``CENTERS``), each center's staff following the same
schedule, with as many calls per agent as the default day; the line is routed by
``CenterRouting()`` (``--routing spill``, the default: own center first, other centers after
``spill_after`` or at once past ``spill_margin``), ``own`` (each center alone) or ``pool`` (one
nationwide pool, as without centers).  app_queue is then one moving average per center, as
each center's own queue would keep it; the wait had they stayed follows the routing (an agent
takes its own center's callers first within a priority, another center's only once eligible).
The tables add a row per center and the nationwide one; the steps of ours are not printed.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import functools
import heapq
import itertools
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.acd.core import Acd  # noqa: E402
from ivr.acd.estimate import HORIZON, AppQueueAverage, WaitEstimator, announce_range, wait_for  # noqa: E402
from ivr.acd.model import AgentSpec, AgentState, CenterRouting, Event, Offer, QueueSpec, Waiting  # noqa: E402

H = 3600.0
DAY_START, DAY_END = 8 * H, 20 * H
QUICK_END = 13 * H
SURGE = (11 * H, 12.5 * H)
SURGE_FACTOR = 3.0
BASE_RATE = 300.0                   # calls per hour at a factor of 1.0
RATE_BY_HOUR = {8: 0.6, 9: 0.9, 10: 1.0, 11: 1.0, 12: 0.9, 13: 0.9, 14: 1.0, 15: 1.0,
                16: 0.8, 17: 0.8, 18: 0.6, 19: 0.4}
# (from, share of the full staff): lunch at 12:00-13:30, the evening shift from 18:00
STAFFING = [(8 * H, 0.67), (9 * H, 1.0), (12 * H, 0.72), (13.5 * H, 1.0), (18 * H, 0.56)]
PRIORITY_SHARES = (("elderly", 0.15), ("repeat", 0.08))
HANDLE_MEAN, HANDLE_SIGMA = 240.0, 0.6      # lognormal talk time
PATIENCE_MEAN = 480.0
RING = 3.0
WRAP_UP = 10.0
MAX_WAIT = 1200.0


@dataclasses.dataclass(frozen=True)
class Center:
    """A center: its share of the agents at full staff and of the calls."""

    name: str
    share: float


# Seven centers, staffed and called roughly by the population of their regions (assumed shares:
# Gyeonggi and Incheon, Seoul, Busan with Ulsan and Gyeongnam, Daejeon with Sejong, Chungcheong
# and Gangwon, Gwangju with Jeolla and Jeju, Daegu with Gyeongbuk) and a small one at the head
# office.
CENTERS = (Center("gyeongin", 0.30), Center("seoul", 0.18), Center("busan", 0.15), Center("daejeon", 0.13),
           Center("gwangju", 0.11), Center("daegu", 0.09), Center("hq", 0.04))
CENTER_AGENTS = 100                 # agents at full staff with --centers (calls scaled to match)
DEFAULT_AGENTS = 18


def split(total: int, shares: Sequence[float]) -> list[int]:
    """``total`` split by ``shares`` in whole numbers (largest remainders), each at least 1."""
    whole = sum(shares)
    exact = [total * x / whole for x in shares]
    out = [max(1, math.floor(x)) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: exact[i] - math.floor(exact[i]), reverse=True):
        if sum(out) >= total:
            break
        out[i] += 1
    return out


@dataclasses.dataclass(eq=False)
class Caller:
    id: str
    priority: str
    arrived: float
    patience: float
    talk: float
    center: str | None = None
    in_surge: bool = False
    ours: float | None = None
    app_queue: float = 0.0
    steps: dict[str, float | None] = dataclasses.field(default_factory=dict)
    waited: float | None = None      # set when answered
    gone: str | None = None           # why the caller left unserved
    offered: float | None = None      # wait had the caller stayed (callers who left unserved)
    agent_center: str | None = None   # the center of the agent who answered

    @property
    def wait_if_stayed(self) -> float | None:
        return self.waited if self.waited is not None else self.offered


def hhmm(t: float) -> str:
    return f"{int(t // H):02d}:{int(t % H // 60):02d}"


# Events that free no agent and bring no caller: unless a wrap-up ended meanwhile (the tick after
# every event), nothing new can be offered (a caller becoming eligible elsewhere has its own event).
QUIET = frozenset({"answer", "hang_up"})


class Day:
    """One simulated day; ``run()`` returns its callers.

    ``centers``: agents and callers split over these centers (None: one pool, no centers),
    routed by ``routing`` (see ``CenterRouting``); ``calls``: calls per hour at an hourly
    factor of 1; ``surge``: the window and factor of the surge, and ``surge_centers`` the
    centers it hits (None: every caller's); ``rates`` the hourly factors, ``staffing`` the
    share of the full staff on duty from each time on.  ``on_event`` sees every ``Acd`` event;
    ``estimates``: whether ours and app_queue's are taken at each arrival, and the wait had they
    stayed followed for the callers who left unserved."""

    def __init__(self, seed: int, agents: int, end: float, horizon: float = HORIZON, *,
                 centers: Sequence[Center] | None = None, routing: CenterRouting | None = None,
                 calls: float = BASE_RATE, surge: tuple[float, float, float] = (*SURGE, SURGE_FACTOR),
                 surge_centers: frozenset[str] | None = None,
                 rates: Mapping[int, float] = RATE_BY_HOUR,
                 staffing: Sequence[tuple[float, float]] = STAFFING,
                 on_event: Callable[[Event], None] | None = None, estimates: bool = True) -> None:
        self.rng = random.Random(seed)
        self.end = end
        self.now = DAY_START
        self.calls = calls
        self.rates = rates
        self.staffing = staffing
        self.estimates = estimates
        self.surge = surge
        self.surge_centers = surge_centers
        self.queue = QueueSpec(name="general", skills=frozenset({"general"}), max_wait=MAX_WAIT,
                               wrap_up=WRAP_UP, ring_timeout=15.0)
        self.centers = tuple(centers) if centers else None
        if self.centers is None:
            self.staff = {None: agents}
            self.specs = [AgentSpec(id=f"a{i:02d}", name=f"Agent {i}", endpoint=f"PJSIP/a{i:02d}",
                                    skills=frozenset({"general"})) for i in range(1, agents + 1)]
        else:
            sizes = split(agents, [c.share for c in self.centers])
            self.staff = {c.name: n for c, n in zip(self.centers, sizes, strict=True)}
            self.specs = [AgentSpec(id=f"{c.name}-{i:03d}", name=f"{c.name} {i}",
                                    endpoint=f"PJSIP/{c.name}-{i:03d}", skills=frozenset({"general"}),
                                    center=c.name)
                          for c, n in zip(self.centers, sizes, strict=True) for i in range(1, n + 1)]
        self.routing = routing if self.centers is not None else None
        self.free: set[str] = set()             # agents available, from the agent.state events
        self.freed = False                      # an agent became available during this event
        self._on_event = on_event
        self.acd = Acd({"general": self.queue}, self.specs,
                       make_estimator=functools.partial(WaitEstimator, horizon=horizon),
                       centers=self.routing, on_event=self._event)
        self.center_of = {spec.id: spec.center for spec in self.specs}
        self.app_queue = {name: AppQueueAverage() for name in self.staff}   # one per center's switch
        self.callers: dict[str, Caller] = {}
        self.leaving: set[str] = set()          # agents due off after their call
        self.ghosts: list[tuple[tuple[int, float, int], str, Waiting]] = []    # sorted by place in line
        self.rung_at: dict[str, float] = {}
        self.events: list[tuple[float, int, str, object]] = []
        self._seq = itertools.count()

    # -- the trace -----------------------------------------------------------------------

    def surging(self, t: float, center: str | None) -> bool:
        start, stop, _ = self.surge
        return start <= t < stop and (self.surge_centers is None or center in self.surge_centers)

    def rate(self, t: float, center: Center | None = None) -> float:
        factor = self.rates[int(t // H)]
        if self.surging(t, center.name if center else None):
            factor *= self.surge[2]
        return self.calls * factor * (center.share if center else 1.0) / H

    def arrivals(self, center: Center | None = None) -> list[float]:
        """Poisson arrivals with a piecewise-constant rate (the rate changes on the half hour)."""
        out, t = [], DAY_START
        while t < self.end:
            segment_end = min(self.end, (math.floor(t / 1800) + 1) * 1800)
            gap = self.rng.expovariate(self.rate(t, center))
            if t + gap >= segment_end:
                t = segment_end                 # memoryless: start afresh at the new rate
                continue
            t += gap
            out.append(t)
        return out

    def priority(self) -> str:
        x = self.rng.random()
        for name, share in PRIORITY_SHARES:
            if x < share:
                return name
            x -= share
        return "normal"

    def patience(self) -> float:
        return self.rng.expovariate(1 / PATIENCE_MEAN)

    def talk_time(self) -> float:
        mu = math.log(HANDLE_MEAN) - HANDLE_SIGMA ** 2 / 2
        return self.rng.lognormvariate(mu, HANDLE_SIGMA)

    # -- the event loop ------------------------------------------------------------------

    def at(self, t: float, kind: str, what: object = None) -> None:
        heapq.heappush(self.events, (t, next(self._seq), kind, what))

    def run(self) -> list[Caller]:
        if self.centers is None:
            times: list[tuple[float, str | None]] = [(t, None) for t in self.arrivals()]
        else:
            times = sorted((t, c.name) for c in self.centers for t in self.arrivals(c))
        for n, (t, center) in enumerate(times):
            c = Caller(id=f"c{n}", priority=self.priority(), arrived=t,
                       patience=self.patience(), talk=self.talk_time(), center=center,
                       in_surge=self.surging(t, center))
            self.at(t, "arrive", c)
        for t, share in self.staffing:
            if t < self.end:
                for name, staff in self.staff.items():
                    self.at(t, "staff", (name, round(share * staff)))
        while self.events:
            t, _, kind, what = heapq.heappop(self.events)
            self.now = t
            self.freed = False
            getattr(self, "_" + kind)(what)
            self.acd.tick(t)
            if kind in QUIET and not self.freed:
                continue
            for offer in self.acd.offers(t):
                self.rung_at[offer.call_id] = t
                if self.ghosts:
                    self._ghosts_served(offer)
                self.at(t + RING, "answer", (offer.call_id, offer.agent_id))
            if self.ghosts and self.free:
                self._ghosts_left_free(self.free)
        return list(self.callers.values())

    def _event(self, e: Event) -> None:
        if e.kind == "agent.state" and e.agent_id is not None:
            if e.detail == AgentState.AVAILABLE:
                self.free.add(e.agent_id)
                self.freed = True
            else:
                self.free.discard(e.agent_id)
        if self._on_event is not None:
            self._on_event(e)

    # -- the wait had they stayed ----------------------------------------------------------

    def _ghosts_served(self, offer: Offer) -> None:
        """A caller who left unserved would have been taken (3 s of ringing later) when an
        agent who could serve them went to someone they would have gone before, or was left
        free: the wait had they stayed.  Each is followed alone, as if the others left as they
        did.  Without centers that is anyone behind them in line; with centers, an agent's
        own center's callers go first within a priority, and another center's caller only once
        eligible there (spilled)."""
        taken = self.acd.waiting_call(offer.call_id)
        assert taken is not None
        if self.routing is None:
            cut = bisect.bisect_left(self.ghosts, (taken.key, ""))
            self._ghosts_done(range(cut))
            return
        center = self.center_of[offer.agent_id]
        mine = (taken.rank, int(not self._home(taken, center)), taken.arrived_at, taken.seq)
        self._ghosts_done([i for i, (_, _, g) in enumerate(self.ghosts)
                           if self._eligible(g, center)
                           and (g.rank, int(not self._home(g, center)), g.arrived_at, g.seq) < mine])

    def _ghosts_left_free(self, free: Iterable[str]) -> None:
        if self.routing is None:
            self._ghosts_done(range(len(self.ghosts)))
            return
        centers = {self.center_of[a] for a in free}
        self._ghosts_done([i for i, (_, _, g) in enumerate(self.ghosts)
                           if any(self._eligible(g, c) for c in centers)])

    @staticmethod
    def _home(w: Waiting, center: str | None) -> bool:
        return center is None or w.center is None or w.center == center

    def _eligible(self, w: Waiting, center: str | None) -> bool:
        if self._home(w, center):
            return True
        after = self.routing.spill_after if self.routing is not None else None
        return w.spill is not None or after is not None and self.now - w.arrived_at >= after

    def _ghosts_done(self, indexes: Iterable[int]) -> None:
        done = set(indexes)
        if not done:
            return
        for i in done:
            c = self.callers[self.ghosts[i][1]]
            c.offered = self.now + RING - c.arrived
        self.ghosts = [g for i, g in enumerate(self.ghosts) if i not in done]

    # -- what happens ----------------------------------------------------------------------

    def _arrive(self, c: Caller) -> None:
        self.callers[c.id] = c
        self.acd.enqueue(c.id, "general", c.priority, self.now, center=c.center)
        if self.estimates:
            c.ours = self.acd.estimate_wait(c.id, self.now)
            c.app_queue = self.app_queue[c.center].estimate()
            if self.centers is None:
                c.steps = self.steps(c.id)
        self.at(self.now + c.patience, "give_up", c)
        self.at(self.now + MAX_WAIT, "max_wait", c)
        if self.routing is not None and self.routing.spill_after is not None:
            self.at(self.now + self.routing.spill_after, "spill", c)

    def _spill(self, c: Caller) -> None:
        pass                                    # eligible everywhere now: the loop offers

    def _give_up(self, c: Caller) -> None:
        self._take_out(c, "caller_hangup")

    def _max_wait(self, c: Caller) -> None:
        if any(w.call_id == c.id for w in self.acd.expired(self.now)):
            self._take_out(c, "max_wait")

    def _take_out(self, c: Caller, why: str) -> None:
        left = self.acd.leave(c.id, self.now, why)
        if left is None:
            return
        c.gone = why
        if left.offered_to is not None:        # the phone was ringing: stop it
            c.offered = self.rung_at[c.id] + RING - c.arrived
            self.acd.ring_cancelled(left.offered_to, self.now)
            self._maybe_off(left.offered_to)
        elif self.estimates:
            bisect.insort(self.ghosts, (left.key, c.id, left))

    def _answer(self, what: tuple[str, str]) -> None:
        call_id, agent_id = what
        status = self.acd.agent(agent_id)
        if status.state is not AgentState.RINGING or status.current_call != call_id:
            return                              # the caller left while it rang
        self.acd.answered(call_id, agent_id, self.now)
        c = self.callers[call_id]
        c.waited = self.now - c.arrived
        c.agent_center = self.center_of[agent_id]
        self.app_queue[c.center].record_answered(c.waited)
        self.at(self.now + c.talk, "hang_up", agent_id)

    def _hang_up(self, agent_id: str) -> None:
        self.acd.call_ended(agent_id, self.now)
        wrap = self.acd.next_wrap_end()
        if wrap is not None:
            self.at(wrap, "wrap_end")
        self._maybe_off(agent_id)

    def _wrap_end(self, _: object) -> None:
        pass                                    # the loop ticks after every event

    def _staff(self, what: tuple[str | None, int]) -> None:
        center, target = what
        mine = [s for s in self.acd.agents() if s.spec.center == center]
        on = [s for s in mine if s.state is not AgentState.OFFLINE and s.spec.id not in self.leaving]
        if len(on) < target:
            for agent_id in sorted(a for a in self.leaving if self.center_of[a] == center)[: target - len(on)]:
                self.leaving.discard(agent_id)
                on.append(self.acd.agent(agent_id))
            off = [s for s in mine if s.state is AgentState.OFFLINE]
            for s in off[: target - len(on)]:
                self.acd.login(s.spec.id, self.now)
        else:
            # free agents go first, then those wrapping up; the others after their call
            order = {AgentState.AVAILABLE: 0, AgentState.WRAP_UP: 1}
            for s in sorted(on, key=lambda s: order.get(s.state, 2))[: len(on) - target]:
                self.leaving.add(s.spec.id)
                self._maybe_off(s.spec.id)

    def _maybe_off(self, agent_id: str) -> None:
        if agent_id in self.leaving and self.acd.agent(agent_id).state not in (AgentState.ON_CALL,
                                                                             AgentState.RINGING):
            self.acd.logout(agent_id, self.now)
            self.leaving.discard(agent_id)

    def steps(self, call_id: str) -> dict[str, float | None]:
        """The estimate as it was first laid out, then with each change that made ours but
        the last, all from the same line, agents and learnt figures (the simulation does not
        depend on them)."""
        est = self.acd.estimator("general")
        handle, now = est.mean_handle, self.now
        mean_rest: list[float] = []                 # agents on a call: max(mean - elapsed, floor)
        on_call: list[float] = []
        others: list[float] = []
        for s in self.acd.agents():
            if s.state in (AgentState.OFFLINE, AgentState.PAUSED) or s.pause_after is not None:
                continue
            if s.state is AgentState.ON_CALL:
                on_call.append(now - s.since)
                mean_rest.append(max(handle - (now - s.since), est.floor))
            elif s.state is AgentState.WRAP_UP:
                others.append(max(0.0, (s.wrap_until or now) - now))
            else:
                others.append(0.0)
        if not on_call and not others:
            return dict.fromkeys(STEPS)
        ahead = self.acd.position(call_id) - 1
        hazard, horizon, ring = est.abandon_hazard, est.horizon, est.mean_ring
        free = est.free_times(on_call, others)
        inflow = est.arrival_rate(now, above_rank=self.acd.waiting_call(call_id).rank)
        return {
            STEPS[0]: wait_for(ahead * (1 - est.abandon_rate), mean_rest + others, handle, horizon=horizon),
            STEPS[1]: wait_for(ahead, mean_rest + others, handle, hazard=hazard, horizon=horizon),
            STEPS[2]: min(horizon, wait_for(ahead, free, handle, hazard=hazard, horizon=horizon) + ring),
            STEPS[3]: min(horizon, wait_for(ahead, free, handle, hazard=hazard, inflow=inflow,
                                            horizon=horizon) + ring),
            STEPS[4]: min(horizon, wait_for(ahead, free, handle + ring, hazard=hazard, inflow=inflow,
                                            horizon=horizon) + ring),
        }


STEPS = ("p_eff = 1+(p-1)(1-share)", "+ abandonment hazard", "+ ring time, rest of calls",
         "+ higher priorities ahead", "+ the ring in each agent's round")


# -- figures -----------------------------------------------------------------------------------

Estimate = Callable[[Caller], "float | None"]
Wait = Callable[[Caller], "float | None"]


def kept(estimate: float | None, waited: float) -> bool:
    """Was the range the caller heard ("less than N minutes", or "more than 30") true?"""
    if estimate is None:
        return False
    minutes = announce_range(estimate)
    return waited > 30 * 60 if minutes == 0 else waited <= minutes * 60


def signed(x: float) -> str:
    return "nan" if math.isnan(x) else f"{round(x):+d}"


def scores(group: list[Caller], estimate: Estimate, wait: Wait) -> tuple[float, float, float]:
    """Mean absolute error, mean (wait - estimate), share in the announced range."""
    pairs = [(e, w) for c in group if (e := estimate(c)) is not None and (w := wait(c)) is not None]
    if not pairs:
        return math.nan, math.nan, math.nan
    n = len(pairs)
    return (sum(abs(e - w) for e, w in pairs) / n, sum(w - e for e, w in pairs) / n,
            sum(kept(e, w) for e, w in pairs) / n)


def ours(c: Caller) -> float | None:
    return c.ours


def app_queue(c: Caller) -> float | None:
    return c.app_queue


def had(c: Caller) -> float | None:
    return c.waited


def if_stayed(c: Caller) -> float | None:
    return c.wait_if_stayed


def groups(callers: list[Caller], by_priority: bool) -> list[tuple[str, list[Caller]]]:
    out = [("all day", callers),
           (f"in the surge ({hhmm(SURGE[0])}-{hhmm(SURGE[1])})", [c for c in callers if c.in_surge]),
           ("outside the surge", [c for c in callers if not c.in_surge])]
    if by_priority:
        out += [(f"  {p} callers", [c for c in callers if c.priority == p])
                for p in ("elderly", "repeat", "normal")]
    return out


def comparison(title: str, callers: list[Caller], wait: Wait, by_priority: bool) -> None:
    print(f"{title:<36} {'n':>5} | {'MAE ours':>8} {'app_queue':>9} | {'bias ours':>9} {'app_queue':>9} | "
          f"{'in range ours':>13} {'app_queue':>9}")
    for name, group in groups(callers, by_priority):
        m, b, k = scores(group, ours, wait)
        m2, b2, k2 = scores(group, app_queue, wait)
        print(f"{name:<36} {len(group):>5} | {m:>6.0f} s {m2:>7.0f} s | {signed(b):>7} s {signed(b2):>7} s | "
              f"{k:>13.1%} {k2:>9.1%}")


def per_center(callers: list[Caller], centers: Sequence[Center]) -> None:
    """Ours against app_queue (each center's own average) center by center, and nationwide."""
    answered = [c for c in callers if c.waited is not None]
    print(f"{'per center':<12} {'calls':>6} | answered: {'n':>5} {'MAE ours':>8} {'app_queue':>9} "
          f"{'bias ours':>9} {'in range ours':>13} {'app_queue':>9} | every caller: {'MAE ours':>8} "
          f"{'app_queue':>9} {'in range ours':>13} {'app_queue':>9}")
    rows = [(c.name, [x for x in callers if x.center == c.name]) for c in centers] + [("nationwide", callers)]
    for name, group in rows:
        mine = [x for x in answered if x.center == name] if name != "nationwide" else answered
        m, b, k = scores(mine, ours, had)
        m2, _, k2 = scores(mine, app_queue, had)
        e, _, ke = scores(group, ours, if_stayed)
        e2, _, ke2 = scores(group, app_queue, if_stayed)
        print(f"{name:<12} {len(group):>6} |           {len(mine):>5} {m:>6.0f} s {m2:>7.0f} s {signed(b):>7} s "
              f"{k:>13.1%} {k2:>9.1%} |               {e:>6.0f} s {e2:>7.0f} s {ke:>13.1%} {ke2:>9.1%}")


def report(callers: list[Caller], args: argparse.Namespace, end: float, elapsed: float) -> None:
    answered = [c for c in callers if c.waited is not None]
    abandoned = [c for c in callers if c.gone == "caller_hangup"]
    timed_out = [c for c in callers if c.gone == "max_wait"]
    no_estimate = [c for c in callers if c.ours is None]

    schedule = ", ".join(f"{hhmm(t)} {round(s * args.agents)}" for t, s in STAFFING if t < end)
    print(f"seed {args.seed}, days {args.days}, {hhmm(DAY_START)}-{hhmm(end)}, agents at full staff "
          f"{args.agents} ({schedule})")
    if args.centers > 1:
        centers = CENTERS[:args.centers]
        sizes = split(args.agents, [c.share for c in centers])
        print(f"centers {args.centers}: " + ", ".join(f"{c.name} {n}" for c, n in zip(centers, sizes, strict=True))
              + f" agents, calls in the same shares; routing {routing_said(args.routing)}")
    print(f"arrivals {args.calls:.0f}/h x hourly factor ("
          + " ".join(f"{h}h:{f:g}" for h, f in RATE_BY_HOUR.items() if h * H < end)
          + f"), surge {hhmm(SURGE[0])}-{hhmm(SURGE[1])} x{SURGE_FACTOR:g}; "
          + ", ".join(f"{name} {share:.0%}" for name, share in PRIORITY_SHARES))
    print(f"talk lognormal mean {HANDLE_MEAN:.0f} s sigma {HANDLE_SIGMA}, wrap-up {WRAP_UP:.0f} s, "
          f"ring {RING:.0f} s, patience exponential mean {PATIENCE_MEAN:.0f} s, max_wait {MAX_WAIT:.0f} s; "
          f"horizon of ours {args.horizon:.0f} s")
    print()
    print(f"calls {len(callers)}, answered {len(answered)}, abandoned {len(abandoned)} "
          f"({len(abandoned) / max(1, len(callers)):.1%}), timed out {len(timed_out)}, "
          f"no estimate (nobody on duty) {len(no_estimate)}")
    waits = sorted(c.waited for c in answered if c.waited is not None)
    if waits:
        print(f"wait of answered callers: mean {sum(waits) / len(waits):.0f} s, "
              f"median {waits[len(waits) // 2]:.0f} s, p90 {waits[int(len(waits) * 0.9)]:.0f} s, "
              f"max {waits[-1]:.0f} s")
    print()
    comparison("answered callers: their wait", answered, had, by_priority=True)
    print()
    comparison("every caller: wait had they stayed", callers, if_stayed, by_priority=False)
    print()
    if args.centers > 1:
        per_center(callers, CENTERS[:args.centers])
        print()
        print("app_queue per center: the moving average of that center's answered callers, as each "
              "center's own queue would keep it.")
        print(f"simulated in {elapsed:.1f} s")
        return
    print("how ours came about (the same callers; each line adds one change to the line above):")
    print(f"{'':<34} | {'answered: MAE':>13} {'surge':>6} {'outside':>7} {'bias':>6} {'in range':>8} | "
          f"{'every caller: MAE':>17} {'surge':>6} {'bias':>6} {'in range':>8}")
    steps: list[tuple[str, Estimate]] = [(name, lambda c, name=name: c.steps.get(name)) for name in STEPS]
    steps.append(("+ a surge fades = ours", ours))
    surge = [c for c in callers if c.in_surge]
    for name, estimate in steps:
        a, ba, ka = scores(answered, estimate, had)
        a_s, _, _ = scores([c for c in surge if c.waited is not None], estimate, had)
        a_o, _, _ = scores([c for c in answered if not c.in_surge], estimate, had)
        e, be, ke = scores(callers, estimate, if_stayed)
        e_s, _, _ = scores(surge, estimate, if_stayed)
        print(f"{name:<34} | {a:>11.0f} s {a_s:>4.0f} s {a_o:>5.0f} s {signed(ba):>4} s {ka:>8.1%} | "
              f"{e:>15.0f} s {e_s:>4.0f} s {signed(be):>4} s {ke:>8.1%}")
    print()
    print("MAE: mean |estimate - wait|; bias: mean (wait - estimate), positive when the wait ran longer "
          "than the estimate;\nin range: the wait within the range announced for the estimate (\"less "
          "than N minutes\").  Wait had they stayed:\nfor a caller who gave up or timed out, when an agent "
          "went to someone behind them in line or was left free, plus the ring.")
    print(f"simulated in {elapsed:.1f} s")


def by_day(days: list[list[Caller]], seed: int) -> None:
    print()
    print(f"{'each day: seed':<15} {'calls':>6} {'answered':>8} | answered: {'MAE ours':>8} {'app_queue':>9} "
          f"{'surge ours':>10} {'app_queue':>9} | every caller: {'MAE ours':>8} {'app_queue':>9}")
    for n, callers in enumerate(days):
        answered = [c for c in callers if c.waited is not None]
        surge = [c for c in answered if c.in_surge]
        a, a2 = scores(answered, ours, had)[0], scores(answered, app_queue, had)[0]
        s, s2 = scores(surge, ours, had)[0], scores(surge, app_queue, had)[0]
        e, e2 = scores(callers, ours, if_stayed)[0], scores(callers, app_queue, if_stayed)[0]
        print(f"{seed + n:<15} {len(callers):>6} {len(answered):>8} |           {a:>6.0f} s {a2:>7.0f} s "
              f"{s:>8.0f} s {s2:>7.0f} s |               {e:>6.0f} s {e2:>7.0f} s")


ROUTINGS = {"spill": CenterRouting(), "own": CenterRouting(None, None), "pool": None}


def routing_said(name: str) -> str:
    r = ROUTINGS[name]
    if r is None:
        return "pool (one nationwide pool, centers ignored)"
    if r.spill_after is None and r.spill_margin is None:
        return "own (each center serves its own callers only)"
    return f"spill (spill_after {r.spill_after:g} s, spill_margin {r.spill_margin:g} s)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1, help="random seed of the (first) day")
    ap.add_argument("--agents", type=int, default=None,
                    help=f"agents at full staff (default {DEFAULT_AGENTS}, with --centers {CENTER_AGENTS})")
    ap.add_argument("--days", type=int, default=1, help="days simulated, seeds seed .. seed+days-1")
    ap.add_argument("--quick", action="store_true", help="the morning only (08:00-13:00, surge included)")
    ap.add_argument("--horizon", type=float, default=HORIZON,
                    help=f"the longest estimate of ours, seconds (default {HORIZON:.0f})")
    ap.add_argument("--centers", type=int, default=1, choices=range(1, len(CENTERS) + 1),
                    help="agents and callers split over this many centers of different sizes "
                         f"({', '.join(c.name for c in CENTERS)}); the calls grow with the agents")
    ap.add_argument("--routing", choices=sorted(ROUTINGS), default="spill",
                    help="with --centers: spill (CenterRouting's defaults, the default), own (each "
                         "center alone) or pool (one nationwide pool)")
    args = ap.parse_args(argv)
    if args.agents is None:
        args.agents = CENTER_AGENTS if args.centers > 1 else DEFAULT_AGENTS
    # the calls grow with the agents in centers mode, so that each agent has the default day's load
    args.calls = BASE_RATE * args.agents / DEFAULT_AGENTS if args.centers > 1 else BASE_RATE
    end = QUICK_END if args.quick else DAY_END
    centers = CENTERS[:args.centers] if args.centers > 1 else None
    started = time.perf_counter()
    days = [Day(args.seed + day, args.agents, end, args.horizon, centers=centers,
                routing=ROUTINGS[args.routing], calls=args.calls).run() for day in range(args.days)]
    report([c for day in days for c in day], args, end, time.perf_counter() - started)
    if len(days) > 1:
        by_day(days, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
