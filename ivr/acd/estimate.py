"""How long a caller in line will wait, and what to promise them.

``AppQueueAverage`` is Asterisk app_queue's estimate, kept as the reference: one moving
average of the waits of answered callers, ``holdtime = (3 * old + sample) / 4``, the same
figure for every caller whatever the place in line.

``WaitEstimator`` (one per queue) looks at the line as it is now.  The caller at place ``p``
(1-based, in serving order) is taken when the ``p``-th agent frees up.  Each agent serving
the queue frees up after its remaining time: 0 when available or ringing (a ringing agent is
the free agent of the caller it rings, who is counted in the places ahead), the rest of the
wrap-up, or for an agent on a call ``max(mean_handle - elapsed, floor)``; once free, an agent
is busy again for ``mean_handle``.  Callers ahead who give up do not need an agent, so the
place is discounted by the share of recent callers who left the line unserved:
``p_eff = 1 + (p - 1) * (1 - abandon_rate)``.

Recent figures weigh more: the handle time (talk time plus wrap-up) and the abandonment rate
are exponentially weighted moving averages whose half-life is counted in samples — handled
calls for the handle time, callers leaving the line for the abandonment rate.  Counting in
samples rather than seconds makes a quiet hour keep its figures instead of forgetting them.
Until the first call is handled the handle time is ``prior_handle``.

``announce_range`` turns an estimate into what the caller hears: "less than N minutes".
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

__all__ = ["AppQueueAverage", "WaitEstimator", "Ewma", "announce_range", "RANGES_MINUTES",
           "SAFETY_MARGIN"]

RANGES_MINUTES = (1, 2, 3, 5, 10, 15, 20, 30)
SAFETY_MARGIN = 1.25


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
    """Exponentially weighted mean whose weights halve every ``half_life`` samples.

    Until a sample arrives the mean is ``prior``; after, the prior has no weight (the weights
    are normalised), so the first sample is taken as it is."""

    __slots__ = ("prior", "_decay", "_sum", "_weight", "count")

    def __init__(self, half_life: float, prior: float) -> None:
        if half_life <= 0:
            raise ValueError("half_life must be positive")
        self.prior = prior
        self._decay = 0.5 ** (1.0 / half_life)
        self._sum = 0.0
        self._weight = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        self._sum = self._sum * self._decay + value
        self._weight = self._weight * self._decay + 1.0
        self.count += 1

    @property
    def value(self) -> float:
        return self._sum / self._weight if self._weight else self.prior


class WaitEstimator:
    """The wait of a caller at a given place in line, from the agents' state and the recent
    handle time and abandonment of one queue (see the module's description).

    ``prior_handle``: handle time assumed before any call is handled.  ``floor``: the least
    time an agent on a call is expected to need still, when the call already runs longer than
    the mean.  ``handle_half_life`` / ``abandon_half_life``: in handled calls / in callers
    leaving the line."""

    def __init__(self, *, prior_handle: float = 180.0, floor: float = 15.0,
                 handle_half_life: float = 50.0, abandon_half_life: float = 100.0) -> None:
        if prior_handle <= 0:
            raise ValueError("prior_handle must be positive")
        self.floor = floor
        self._handle = Ewma(handle_half_life, prior_handle)
        self._abandon = Ewma(abandon_half_life, 0.0)

    # -- what happened -------------------------------------------------------------------

    def record_handle(self, seconds: float) -> None:
        """An agent finished a call of the queue: talk time plus wrap-up."""
        self._handle.add(max(0.0, seconds))

    def record_answered(self, waited: float) -> None:
        """A caller left the line to an agent."""
        self._abandon.add(0.0)

    def record_abandoned(self, waited: float) -> None:
        """A caller left the line unserved: hung up, timed out, moved elsewhere."""
        self._abandon.add(1.0)

    @property
    def mean_handle(self) -> float:
        return self._handle.value

    @property
    def abandon_rate(self) -> float:
        return self._abandon.value

    def busy_remaining(self, elapsed_on_call: float) -> float:
        """Expected time until an agent ``elapsed_on_call`` seconds into a call is free."""
        return max(self.mean_handle - elapsed_on_call, self.floor)

    # -- the question --------------------------------------------------------------------

    def estimate(self, position: int, agent_busy_remaining: Sequence[float], now: float) -> float:
        """Seconds until the caller at ``position`` (1-based) is taken, given for each agent
        serving the queue (and not paused) the seconds until it is free (0: free now).

        ``now`` is the time of the question; the figures here age by samples, not by time,
        so it does not change the answer."""
        if position < 1:
            raise ValueError(f"position is 1-based, not {position}")
        if not agent_busy_remaining:
            raise ValueError("cannot estimate: nobody to serve")
        p_eff = 1.0 + (position - 1) * (1.0 - self.abandon_rate)
        below = math.floor(p_eff)
        t = nth_free(below, agent_busy_remaining, self.mean_handle)
        frac = p_eff - below
        if frac > 1e-9:
            t += frac * (nth_free(below + 1, agent_busy_remaining, self.mean_handle) - t)
        return t


def nth_free(n: int, remaining: Sequence[float], handle: float) -> float:
    """When the ``n``-th (1-based) agent-free event happens: agent ``i`` is free at
    ``remaining[i]``, then at every ``handle`` seconds after.

    The first events are drawn one by one until the agents' next free times lie within one
    handle time of each other; from then on they come round in the same order every
    ``handle`` seconds, and the ``n``-th is computed at once: O(agents log agents) whatever n.
    """
    if n < 1:
        raise ValueError("n is 1-based")
    handle = max(handle, 1e-9)
    heap = [max(0.0, r) for r in remaining]
    heapq.heapify(heap)
    top = max(heap)
    drawn = 0
    while top - heap[0] > handle:
        t = heapq.heappop(heap)
        drawn += 1
        if drawn == n:
            return t
        heapq.heappush(heap, t + handle)
        top = max(top, t + handle)
    ring = sorted(heap)
    rounds, i = divmod(n - drawn - 1, len(ring))
    return ring[i] + rounds * handle
