"""How long a caller in line will wait, and what to promise them.

``AppQueueAverage`` is Asterisk app_queue's estimate, kept as the reference: one moving
average of the waits of answered callers, ``holdtime = (3 * old + sample) / 4``, the same
figure for every caller whatever the place in line.

``WaitEstimator`` (one per queue) looks at the line as it is now.

- **When the agents free up.**  Each agent serving the queue (logged in, not paused) is free
  after its remaining time: 0 when available or ringing (a ringing agent is the free agent of
  the caller it rings, who is counted among the places ahead), the rest of the wrap-up, or for
  an agent on a call the rest of the call.  Once free, an agent is busy again for
  ``mean_handle`` plus ``mean_ring``, the time its phone rings before it is answered: the
  agents' real round, so a line of ``N`` callers goes at ``agents / (handle + ring)``.  With
  nothing else, the caller at place ``p`` is taken at the ``p``-th agent-free event, plus
  the ring.
- **The rest of a call** ``elapsed`` seconds in is drawn from the recent handle times (the
  last ``window``) longer than ``elapsed``, less ``elapsed``: handle times are spread, and a
  call already long is more likely a long one.  The first agents to free up are not the ones
  with the shortest *expected* rest — among many agents some call ends sooner than any
  single agent's mean — so the agents' next free times are the quantiles at ``k / (n + 1)``
  (``k`` = 1 … ``n`` agents) of the agents' rests taken together, which is close to the
  expected ``k``-th first end.  With fewer than ``min_longer`` recent handle times as long as
  the call so far (and before any call is handled), the rest is
  ``max(mean_handle - elapsed, floor)``.
- **Callers ahead who give up** need no agent.  Each caller still ahead gives up at the
  queue's abandonment hazard: callers who left the line unserved, per second spent in line by
  all who left it (answered or not) — the estimate of exponential patience (Erlang-A).  A
  hazard per second, rather than the share of callers who give up (``p_eff = 1 + (p - 1) *
  (1 - share)``), because the callers ahead have only the rest of their wait left to give up
  in: the share, measured over whole waits, discounts them about twice over and promises too
  short a wait when the line is long (``bench/ewt.py`` shows it).  The share is kept for the
  wallboard (``abandon_rate``).
- **Callers who will arrive with a higher priority** go ahead: for a caller of priority rank
  ``r``, callers of ranks below ``r`` join the places ahead, and give up at the hazard as
  the others ahead do.  They arrive at their recent rate (half-life ``arrival_half_life``,
  15 minutes) now, fading back to their usual rate (half-life ``usual_half_life``, 4 hours)
  with the time constant ``fade`` (by default the recent rate's own, ``arrival_half_life /
  ln 2``, 22 minutes): the recent rate is an average over about that long, and is trusted
  about as far ahead as it looks back.  Nothing in the line says when a surge ends; taking
  its rate as going on for good says that a normal caller is never served once the callers
  of higher priority alone keep every agent busy (seen at lunch in a surge in
  ``bench/ewt.py``: an hour promised, about 13 minutes waited), while a surge that fades
  lets the backlog be served.  A lull fades back up the same way.

Between two agent-free events the expected number of callers ahead ``A`` follows
``dA/dt = usual + surplus * exp(-t / fade) - hazard * A`` (``surplus``: the recent rate less
the usual one, below 0 in a lull); each free event takes one (``A -= 1``); the caller is taken
at the first free event with nobody ahead, interpolating between two events when ``A`` is a
fraction.  Once the agents' free times come round regularly (every ``mean_handle``), whole
rounds are stepped at once, so a long line costs O(agents), not O(place).  An estimate beyond
``horizon`` (1 hour: twice the longest range announced, and well past the time the current
arrival rates can be trusted), or for a line that does not move (callers of higher priority
alone keep every agent busy at their usual rate), is ``horizon``.

Recent figures weigh more: the handle time (talk time plus wrap-up), the ring time and the
abandonment figures are exponentially weighted, with a half-life counted in samples — handled
calls, or callers leaving the line — so a quiet hour keeps its figures instead of forgetting
them; the arrival rates of each priority age with a half-life in seconds
(``arrival_half_life``), since a rate is per second.

Not modelled: agents who will log in or out, agents shared with other queues' callers, when
a surge will end (it fades, as said above, whatever its cause).

``announce_range`` turns an estimate into what the caller hears: "less than N minutes".
"""

from __future__ import annotations

import bisect
import collections
import heapq
import math
from collections.abc import Iterable, Sequence

__all__ = ["AppQueueAverage", "WaitEstimator", "Ewma", "DecayingRate", "RecentDurations",
           "announce_range", "nth_free", "wait_for", "RANGES_MINUTES", "SAFETY_MARGIN", "HORIZON"]

RANGES_MINUTES = (1, 2, 3, 5, 10, 15, 20, 30)
SAFETY_MARGIN = 1.25
HORIZON = 3600.0


def announce_range(seconds: float) -> int:
    """The minutes to say in "less than N minutes": the smallest of 1, 2, 3, 5, 10, 15, 20, 30
    that is at least ``seconds`` × 1.25, so the promise holds when the wait runs a little
    long; 0 means "more than 30 minutes".  The figure said is never below the estimate."""
    wanted = max(0.0, seconds) * SAFETY_MARGIN / 60.0
    for minutes in RANGES_MINUTES:
        if minutes >= wanted:
            return minutes
    return 0


class AppQueueAverage:
    """app_queue's hold time: ``holdtime = (3 * holdtime + wait) / 4`` on each answered call,
    starting at 0; the estimate is the hold time, whatever the caller's place."""

    def __init__(self) -> None:
        self.holdtime = 0.0

    def record_answered(self, waited: float) -> None:
        self.holdtime = (3 * self.holdtime + waited) / 4

    def estimate(self, position: int = 1) -> float:
        return self.holdtime


class Ewma:
    """Exponentially weighted sum and mean whose weights halve every ``half_life`` samples.

    Until a sample arrives the mean is ``prior``; after, the prior has no weight (the weights
    are normalised), so the first sample is taken as it is."""

    __slots__ = ("prior", "_decay", "total", "weight", "count")

    def __init__(self, half_life: float, prior: float = 0.0) -> None:
        if half_life <= 0:
            raise ValueError("half_life must be positive")
        self.prior = prior
        self._decay = 0.5 ** (1.0 / half_life)
        self.total = 0.0
        self.weight = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        self.total = self.total * self._decay + value
        self.weight = self.weight * self._decay + 1.0
        self.count += 1

    @property
    def value(self) -> float:
        return self.total / self.weight if self.weight else self.prior


class DecayingRate:
    """Events per second, each event's weight halving every ``half_life`` seconds.

    Soon after the first event the rate is corrected for the time not yet observed, so a fresh
    start does not read as a quiet line; at most as if ``observed`` seconds had been (default
    one half-life, twofold), so that a first event alone does not read as a flood."""

    __slots__ = ("_tau", "_value", "_last", "_first", "_least_seen")

    def __init__(self, half_life: float, observed: float | None = None) -> None:
        if half_life <= 0:
            raise ValueError("half_life must be positive")
        self._tau = half_life / math.log(2)
        self._value = 0.0
        self._last: float | None = None
        self._first: float | None = None
        self._least_seen = -math.expm1(-(half_life if observed is None else observed) / self._tau)

    def add(self, now: float) -> None:
        if self._last is None:
            self._first = self._last = now
        self._value = self._value * math.exp(-max(0.0, now - self._last) / self._tau) + 1.0
        self._last = max(self._last, now)

    def rate(self, now: float) -> float:
        if self._last is None or self._first is None:
            return 0.0
        value = self._value * math.exp(-max(0.0, now - self._last) / self._tau)
        seen = -math.expm1(-max(0.0, now - self._first) / self._tau)
        return value / (self._tau * max(seen, self._least_seen))


class RecentDurations:
    """The last ``size`` durations, kept in arrival order and sorted."""

    __slots__ = ("size", "_fifo", "_sorted", "_rows")

    def __init__(self, size: int = 200) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._fifo: collections.deque[float] = collections.deque()
        self._sorted: list[float] = []
        self._rows: dict[tuple[int, int], list[float]] = {}   # quantiles above each cut, until add()

    def __len__(self) -> int:
        return len(self._fifo)

    def add(self, seconds: float) -> None:
        self._fifo.append(seconds)
        bisect.insort(self._sorted, seconds)
        if len(self._fifo) > self.size:
            del self._sorted[bisect.bisect_left(self._sorted, self._fifo.popleft())]
        self._rows.clear()

    def rest(self, elapsed: float, points: int, at_least: int) -> list[float] | None:
        """``points`` evenly spaced quantiles of ``d - elapsed`` over the recent durations
        ``d`` longer than ``elapsed``; None when fewer than ``at_least`` are."""
        first = bisect.bisect_right(self._sorted, elapsed)
        longer = len(self._sorted) - first
        if longer < max(1, at_least):
            return None
        row = self._rows.get((first, points))
        if row is None:
            row = self._rows[(first, points)] = [self._sorted[first + int((j + 0.5) * longer / points)]
                                                 for j in range(points)]
        return [d - elapsed for d in row]


class WaitEstimator:
    """The wait of a caller at a given place in line, from the agents' state and the recent
    handle time, abandonment and arrivals of one queue (see the module's description).

    ``prior_handle``: handle time assumed before any call is handled.  ``floor``: the least
    time an agent on a call is expected to need still, when too few recent calls ran that
    long.  ``window`` / ``min_longer``: how many recent handle times give the rest of a call,
    and how many of them must be longer than the call so far; ``points``: values taken per
    call in progress.  ``handle_half_life`` / ``abandon_half_life``: in handled calls / in
    callers leaving the line; ``arrival_half_life``: in seconds, the recent arrival rates;
    ``usual_half_life``: in seconds, the usual rates a surge or a lull fades back to, with the
    time constant ``fade`` (seconds; default ``arrival_half_life / ln 2``; ``math.inf``: the
    recent rates go on).  ``horizon``: the longest estimate."""

    def __init__(self, *, prior_handle: float = 180.0, floor: float = 15.0, window: int = 200,
                 min_longer: int = 5, points: int = 8, handle_half_life: float = 50.0,
                 abandon_half_life: float = 100.0, arrival_half_life: float = 900.0,
                 usual_half_life: float = 14400.0, fade: float | None = None,
                 horizon: float = HORIZON) -> None:
        if prior_handle <= 0:
            raise ValueError("prior_handle must be positive")
        if fade is not None and not fade > 0:
            raise ValueError("fade must be positive (math.inf: the recent arrival rates go on)")
        self.floor = floor
        self.horizon = horizon
        self.min_longer = min_longer
        self._handle = Ewma(handle_half_life, prior_handle)
        self._recent = RecentDurations(window)
        self._rests: dict[float, list[float]] = {}     # rest_of_call by call so far, until a handle
        self.points = points
        self._ring = Ewma(handle_half_life, 0.0)
        self._left_unserved = Ewma(abandon_half_life)      # 1 per caller who gave up, 0 if answered
        self._time_in_line = Ewma(abandon_half_life)       # the seconds each of them waited
        self._arrival_half_life = arrival_half_life
        self._usual_half_life = usual_half_life
        self.fade = arrival_half_life / math.log(2) if fade is None else fade
        # (center, rank) -> the recent and the usual arrival rate; center None: no center
        self._arrivals: dict[tuple[str | None, int], tuple[DecayingRate, DecayingRate]] = {}

    # -- what happened -------------------------------------------------------------------

    def record_handle(self, seconds: float) -> None:
        """An agent finished a call of the queue: talk time plus wrap-up."""
        self._handle.add(max(0.0, seconds))
        self._recent.add(max(0.0, seconds))
        self._rests.clear()

    def record_ring(self, seconds: float) -> None:
        """An agent answered after its phone rang ``seconds``."""
        self._ring.add(max(0.0, seconds))

    def record_arrival(self, rank: int, now: float, center: str | None = None) -> None:
        """A caller of priority ``rank`` (0 is the highest) joined the line; ``center``: the
        caller's home center (None: none, or centers not used)."""
        rates = self._arrivals.get((center, rank))
        if rates is None:
            rates = self._arrivals[(center, rank)] = (
                DecayingRate(self._arrival_half_life),
                DecayingRate(self._usual_half_life, observed=self._arrival_half_life))
        rates[0].add(now)
        rates[1].add(now)

    def record_answered(self, waited: float) -> None:
        """A caller left the line to an agent after ``waited`` seconds."""
        self._left_unserved.add(0.0)
        self._time_in_line.add(max(0.0, waited))

    def record_abandoned(self, waited: float) -> None:
        """A caller left the line unserved (hung up, timed out, moved) after ``waited`` seconds."""
        self._left_unserved.add(1.0)
        self._time_in_line.add(max(0.0, waited))

    # -- the figures ---------------------------------------------------------------------

    @property
    def mean_handle(self) -> float:
        return self._handle.value

    @property
    def abandon_rate(self) -> float:
        """The share of recent callers leaving the line who left unserved."""
        return self._left_unserved.value

    @property
    def abandon_hazard(self) -> float:
        """Callers giving up per second each spends in line (0 before anyone has waited)."""
        seconds = self._time_in_line.total
        return self._left_unserved.total / seconds if seconds > 0 else 0.0

    def arrival_rate(self, now: float, *, above_rank: int | None = None,
                     center: str | None = None) -> float:
        """Callers joining per second; with ``above_rank``, only those of a higher priority
        (a lower rank), who will go ahead of a caller of that rank; with ``center``, only
        those of that center and those of no center."""
        return self._rate(now, 0, self._ahead(above_rank, center, False))

    def usual_arrival_rate(self, now: float, *, above_rank: int | None = None,
                           center: str | None = None) -> float:
        """As ``arrival_rate``, over the last hours (half-life ``usual_half_life``): the rate
        a surge or a lull fades back to."""
        return self._rate(now, 1, self._ahead(above_rank, center, False))

    def _rate(self, now: float, which: int, keys: Iterable[tuple[str | None, int]]) -> float:
        return sum(self._arrivals[key][which].rate(now) for key in keys)

    def _ahead(self, above_rank: int | None, center: str | None,
               spilled: bool) -> list[tuple[str | None, int]]:
        """The arrivals who go ahead of a caller of rank ``above_rank`` (None: every arrival)
        and of ``center``: callers of a higher priority of that center and of no center (of
        every center when ``center`` is None or ``spilled``); when ``spilled``, the callers of
        the same priority of other centers too, whom their own centers' agents take first."""
        out = []
        for key in self._arrivals:
            c, r = key
            here = spilled or center is None or c is None or c == center
            if above_rank is None or r < above_rank:
                if here:
                    out.append(key)
            elif spilled and r == above_rank and c is not None and c != center:
                out.append(key)
        return out

    @property
    def mean_ring(self) -> float:
        """How long an agent's phone rings before it is answered (0 until one is)."""
        return self._ring.value

    def rest_of_call(self, elapsed_on_call: float) -> list[float]:
        """The rest of a call ``elapsed_on_call`` seconds in, as equally likely values (kept
        until the next handle time: the estimates of one moment ask for the same calls)."""
        rest = self._rests.get(elapsed_on_call)
        if rest is None:
            if len(self._rests) > 4096:
                self._rests.clear()
            rest = self._recent.rest(elapsed_on_call, self.points, self.min_longer)
            if rest is None:
                rest = [max(self.mean_handle - elapsed_on_call, self.floor)]
            self._rests[elapsed_on_call] = rest
        return rest

    def busy_remaining(self, elapsed_on_call: float) -> float:
        """Expected time until an agent ``elapsed_on_call`` seconds into a call is free."""
        rest = self.rest_of_call(elapsed_on_call)
        return sum(rest) / len(rest)

    def free_times(self, on_call: Sequence[float], others: Sequence[float]) -> list[float]:
        """When the agents are expected to free up, soonest first: ``on_call`` holds how long
        each agent on a call has been on it, ``others`` the known remaining time of every other
        agent (0: free or ringing; the rest of a wrap-up).  The ``k``-th of ``n`` is the
        quantile ``k / (n + 1)`` of all the agents' rests taken together."""
        n = len(on_call) + len(others)
        # Each agent weighs ``points`` atoms: a known rest is one value said ``points`` times,
        # a call's rest its ``points`` equally likely values (or its one value, repeated).
        per = self.points
        atoms: list[float] = []
        for r in others:
            atoms += [max(0.0, r)] * per
        for elapsed in on_call:
            rest = self.rest_of_call(elapsed)
            atoms += rest if len(rest) == per else [x for x in rest for _ in range(per // len(rest))]
        atoms.sort()
        last = len(atoms)
        return [atoms[min(last, max(1, math.ceil(k * n * per / (n + 1) - 1e-9))) - 1]
                for k in range(1, n + 1)]

    # -- the question --------------------------------------------------------------------

    def estimate(self, position: int, agent_busy_remaining: Sequence[float], now: float, *,
                 rank: int | None = None, center: str | None = None,
                 spilled: bool = False) -> float:
        """Seconds until the caller at ``position`` (1-based, in serving order) is taken,
        given for each agent serving the queue (and not paused) the seconds until it is
        expected free (0: free now; ``free_times`` makes them from the agents' state).
        ``rank``: the caller's priority rank, for the callers of a higher priority who will
        arrive meanwhile and go ahead (None: nobody will).  ``center``: the caller's home
        center, whose agents alone are counted: the callers of a higher priority arriving
        there go ahead; ``spilled``: every center's agents are counted, and the callers
        arriving anywhere with a higher priority, or with the same one at another center
        (whose agents take their own callers first), go ahead."""
        if position < 1:
            raise ValueError(f"position is 1-based, not {position}")
        if not agent_busy_remaining:
            raise ValueError("cannot estimate: nobody to serve")
        inflow = surplus = 0.0
        if rank is not None:
            keys = self._ahead(rank, center, spilled)
            usual = self._rate(now, 1, keys)
            inflow, surplus = usual, self._rate(now, 0, keys) - usual
        wait = wait_for(position - 1, agent_busy_remaining, self.mean_handle + self.mean_ring,
                        hazard=self.abandon_hazard, inflow=inflow, surplus=surplus,
                        fade=self.fade, horizon=self.horizon)
        return min(self.horizon, wait + self.mean_ring)


def _flow(ahead: float, t0: float, t1: float, hazard: float, inflow: float,
          surplus: float = 0.0, fade: float = math.inf) -> float:
    """Callers ahead at ``t1`` given ``ahead`` at ``t0``, without a free agent between: each
    gives up at ``hazard`` per second; callers who go ahead arrive at ``inflow + surplus *
    exp(-t / fade)`` per second (``t``: seconds from now)."""
    dt = t1 - t0
    if dt <= 0:
        return ahead
    kept = math.exp(-hazard * dt)
    base = inflow * -math.expm1(-hazard * dt) / hazard if hazard > 0 else inflow * dt
    out = ahead * kept + base
    if surplus and math.isfinite(fade):
        # the integral over s in [0, dt] of exp(-(t0 + s) / fade) * exp(-hazard * (dt - s))
        x = hazard - 1.0 / fade
        if abs(x * dt) > 1e-9:
            g = (math.exp(-dt / fade) - kept) / x
        else:
            g = dt * kept
        out += surplus * math.exp(-t0 / fade) * g
    return out


def wait_for(ahead: float, remaining: Sequence[float], handle: float, *, hazard: float = 0.0,
             inflow: float = 0.0, surplus: float = 0.0, fade: float = math.inf,
             horizon: float = HORIZON) -> float:
    """Seconds until a caller with ``ahead`` callers ahead is taken: agent ``i`` is free at
    ``remaining[i]`` and every ``handle`` seconds after; each caller ahead gives up at
    ``hazard`` per second; callers who go ahead arrive at ``inflow + surplus * exp(-t /
    fade)`` per second, ``t`` seconds from now (``surplus``: how far the present rate is
    above the usual one, fading as a surge ends; ``inflow + surplus`` is never below 0).
    At most ``horizon``.  With no hazard and no inflow this is the ``ahead + 1``-th free
    event."""
    if not remaining:
        raise ValueError("cannot estimate: nobody to serve")
    fading = surplus != 0.0 and 0.0 < fade < math.inf
    if not fading:                              # the present rate goes on
        inflow, surplus, fade = inflow + surplus, 0.0, math.inf
    if (inflow > 0 or surplus > 0) and not math.isfinite(horizon):
        raise ValueError("with callers going ahead the line may never move: give a finite horizon")
    handle = max(handle, 1e-9)
    heap = [max(0.0, r) for r in remaining]
    heapq.heapify(heap)
    top = max(heap)
    a, t_prev = float(ahead), 0.0

    def reached(t: float, next_t: float) -> float | None:
        """The free event at ``t``: the caller's time if it is the caller's, else None."""
        nonlocal a, t_prev
        a = _flow(a, t_prev, t, hazard, inflow, surplus, fade)
        t_prev = t
        if a < 1.0:
            return min(horizon, t + max(a, 0.0) * (next_t - t))
        a -= 1.0
        return horizon if t >= horizon else None

    # The first free events one by one, until the agents' next free times lie within one
    # handle time of each other ...
    while top - heap[0] > handle:
        t = heapq.heappop(heap)
        heapq.heappush(heap, t + handle)
        top = max(top, t + handle)
        if (done := reached(t, heap[0])) is not None:
            return done
    # ... from then on they come round in the same order every ``handle`` seconds.
    ring = sorted(heap)
    n = len(ring)
    # Rounds started with at least this many ahead end without reaching the caller.
    safe = (n + 1) * math.exp(min(hazard * handle, 50.0))
    offset = 0.0
    k = c = d = None
    while True:
        for i, t in enumerate(ring):
            nxt = ring[i + 1] if i + 1 < n else ring[0] + handle
            if (done := reached(t + offset, nxt + offset)) is not None:
                return done
        offset += handle
        if a < safe:
            continue
        if k is None or c is None or d is None:
            k, c, d = _round(ring, handle, hazard, inflow, surplus, fade)
        if surplus >= 0.0 and (k >= 1.0 and c >= 0.0 or k < 1.0 and c / (1.0 - k) >= safe):
            return horizon                      # the line never moves for this caller
        while a >= safe and t_prev + handle < horizon:
            a = k * a + c + (d * math.exp(-t_prev / fade) if d else 0.0)
            t_prev, offset = t_prev + handle, offset + handle
        if t_prev + handle >= horizon and a >= safe:
            return horizon


def _round(ring: Sequence[float], handle: float, hazard: float, inflow: float, surplus: float,
           fade: float) -> tuple[float, float, float]:
    """One round of free events (at ``ring``, sorted, then every ``handle``) as a map of the
    callers ahead: ``a`` before it (at the last event of the round before, ``start``) is
    ``k * a + c + d * exp(-start / fade)`` after it; ``d`` is the fading part of the
    arrivals, as if the round started now."""
    k, c, d, prev = 1.0, 0.0, 0.0, ring[-1] - handle
    origin = prev
    for t in ring:
        k = k * _flow(1.0, prev, t, hazard, 0.0)
        c = _flow(c, prev, t, hazard, inflow) - 1.0
        if surplus:
            d = _flow(d, prev - origin, t - origin, hazard, 0.0, surplus, fade)
        prev = t
    return k, c, d


def nth_free(n: int, remaining: Sequence[float], handle: float) -> float:
    """When the ``n``-th (1-based) agent-free event happens: agent ``i`` is free at
    ``remaining[i]``, then every ``handle`` seconds after."""
    if n < 1:
        raise ValueError("n is 1-based")
    return wait_for(n - 1, remaining, handle, horizon=math.inf)
