"""A surge in one region across seven centers: without distribution between the centers, and with it.

    .venv/bin/python bench/surge.py                        # 1/4 scale: 390 agents; busan x3 11:00-12:30
    .venv/bin/python bench/surge.py --seed 7 --scale 0.1   # 156 agents, ~10 s
    .venv/bin/python bench/surge.py --scale 1              # the insurer's 1,560 agents (~7 minutes)
    .venv/bin/python bench/surge.py --spill-after 90 --spill-margin none
    .venv/bin/python bench/surge.py --region seoul --factor 2

One simulated day (08:00-20:00) of seven centers, replayed twice through the real
``ivr.acd.core.Acd`` in virtual time with the same seed, so the same callers arrive, with the same
patience and talk times: first without distribution (``CenterRouting(None, None)``: each center's
agents serve only their own center's callers), then with it (``CenterRouting(spill_after,
spill_margin)``, by default ``CenterRouting()``'s own defaults: agents serve their own center's
callers first within a priority; a caller is eligible for other centers' agents after
``spill_after`` seconds in line, or at once when on arrival the own center's estimated wait is
longer than another center's by more than ``spill_margin``).

The insurer's shape: about 1,560 agents in seven centers, staffed roughly by the population of
their regions (``ewt.CENTERS``); ``--scale`` takes that share of the agents and of the calls
(default 0.25: 390 agents, about 48,000 calls; the smallest center, hq, has 16 agents).  When
its agents take another region's callers whenever they are free, a center's own callers find
none free and wait for one to finish a call: the fewer the agents, the longer that is, so a
smaller scale makes the second check harder for the small centers (seed 1, hq: +32 s with its 6
agents at scale 0.1, +20 s with 16 at 0.25, +16 s with 62 at full scale).  Each agent at full staff gets
``CALLS_PER_AGENT_HOUR`` calls an hour times the hour's factor (``ewt.RATE_BY_HOUR``): about 85 %
of what an agent can take, so every center has some room to spare; staff follow ``STAFFING``
(lunch staggered from 12:00 to 14:00).  Callers, calls and agents are those of ``bench/ewt.py``
(15 % elderly and 8 % repeat callers served first; patience exponential with mean 8 minutes; taken
out after 20 minutes; 3 s ring, lognormal talk with mean 240 s, 10 s wrap-up).  One region's calls
come ``--factor`` times as fast from 11:00 to 12:30.

Printed for both runs: per center and per priority, the mean and p90 wait of answered callers
(arrival to the agent's answer), the mean time in line of every caller (answered or not), the
share who gave up or were taken out, the calls served by another center's agent, and each
center's agent occupancy (ringing, talking or wrapping up, over the time logged in); for the
callers who arrived in the surge and for the whole day.  Then the two checks, with their
figures: distribution cuts the surge region's mean wait by at least half; no other center's mean
wait rises by more than 30 s (both on the callers who arrived in the surge, 11:00-12:30).  The
exit status is 0 whether they pass or not: the lines say.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence

import ewt
from ewt import CENTERS, DAY_END, DAY_START, H, RATE_BY_HOUR, Caller, Day, hhmm, split

from ivr.acd.model import AgentState, CenterRouting, Event

FULL_AGENTS = 1560
CALLS_PER_AGENT_HOUR = 12.0          # at an hourly factor of 1 and full staff: ~85 % occupancy
# (from, share of the full staff): lunch staggered over 12:00-14:00, the evening shift from 18:00
STAFFING = [(8 * H, 0.7), (9 * H, 1.0), (12 * H, 0.88), (14 * H, 1.0), (18 * H, 0.6)]
SURGE = (11 * H, 12.5 * H)
BUSY = (AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP)
RISE_ALLOWED = 30.0                  # seconds: the most another center's mean wait may rise


class Occupancy:
    """Agent time per center, busy and logged in, over the day and within the surge, from the
    ``agent.state`` events."""

    def __init__(self, center_of: dict[str, str | None]) -> None:
        self.center_of = center_of
        self.state: dict[str, tuple[AgentState, float]] = {}
        self.busy: dict[tuple[str | None, bool], float] = {}
        self.on: dict[tuple[str | None, bool], float] = {}

    def event(self, e: Event) -> None:
        if e.kind != "agent.state" or e.agent_id is None:
            return
        state = AgentState(e.detail.partition(":")[0])
        self._close(e.agent_id, e.at)
        self.state[e.agent_id] = (state, e.at)

    def close(self, now: float) -> None:
        for agent_id in list(self.state):
            self._close(agent_id, now)
            self.state[agent_id] = (self.state[agent_id][0], now)

    def _close(self, agent_id: str, now: float) -> None:
        if agent_id not in self.state:
            return
        state, since = self.state[agent_id]
        if state is AgentState.OFFLINE or now <= since:
            return
        center = self.center_of[agent_id]
        inside = max(0.0, min(now, SURGE[1]) - max(since, SURGE[0]))
        for key, seconds in (((center, False), now - since), ((center, True), inside)):
            self.on[key] = self.on.get(key, 0.0) + seconds
            if state in BUSY:
                self.busy[key] = self.busy.get(key, 0.0) + seconds

    def share(self, center: str | None, in_surge: bool) -> float:
        on = self.on.get((center, in_surge), 0.0)
        return self.busy.get((center, in_surge), 0.0) / on if on else math.nan


@dataclasses.dataclass
class Run:
    name: str
    routing: CenterRouting
    callers: list[Caller]
    occupancy: Occupancy
    seconds: float


def replay(args: argparse.Namespace, name: str, routing: CenterRouting) -> Run:
    agents = round(FULL_AGENTS * args.scale)
    holder: list[Occupancy] = []
    started = time.perf_counter()
    day = Day(args.seed, agents, args.end, centers=CENTERS, routing=routing,
              calls=CALLS_PER_AGENT_HOUR * agents, surge=(*SURGE, args.factor),
              surge_centers=frozenset({args.region}), staffing=STAFFING,
              on_event=lambda e: holder[0].event(e), estimates=False)
    holder.append(Occupancy(day.center_of))
    callers = day.run()
    holder[0].close(day.now)
    return Run(name, routing, callers, holder[0], time.perf_counter() - started)


# -- figures -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Figures:
    calls: int
    mean: float                # wait of answered callers
    p90: float
    in_line: float             # time in line of every caller, answered or not
    lost: float                # share who gave up or were taken out
    elsewhere: int             # answered by another center's agent


def figures(group: Sequence[Caller]) -> Figures:
    waits = sorted(c.waited for c in group if c.waited is not None)
    lines = [c.waited if c.waited is not None else left_after(c) for c in group]
    n = len(waits)
    return Figures(
        calls=len(group),
        mean=sum(waits) / n if n else math.nan,
        p90=waits[min(n - 1, math.ceil(0.9 * n) - 1)] if n else math.nan,
        in_line=sum(lines) / len(lines) if lines else math.nan,
        lost=sum(1 for c in group if c.gone is not None) / len(group) if group else math.nan,
        elsewhere=sum(1 for c in group if c.waited is not None and c.agent_center != c.center))


def in_window(c: Caller) -> bool:
    """Arrived in the surge's hours (whichever center)."""
    return SURGE[0] <= c.arrived < SURGE[1]


def left_after(c: Caller) -> float:
    """How long a caller who left unserved stayed in line."""
    return min(c.patience, ewt.MAX_WAIT)


def seconds(x: float) -> str:
    return "   -" if math.isnan(x) else f"{x:4.0f}"


def table(title: str, rows: Sequence[tuple[str, Callable[[Caller], bool]]], runs: Sequence[Run],
          in_surge: bool, occupancy: Callable[[Run, str], float] | None) -> None:
    print(title)
    head = f"{'':<10} {'calls':>6}"
    for run in runs:
        head += f" | {run.name:<10} {'mean':>5} {'p90':>5} {'in line':>7} {'lost':>6} {'by other':>8}"
        if occupancy is not None:
            head += f" {'occupied':>8}"
    print(head)
    for label, pick in rows:
        line = ""
        for run in runs:
            group = [c for c in run.callers if pick(c) and (in_window(c) or not in_surge)]
            f = figures(group)
            if not line:
                line = f"{label:<10} {f.calls:>6}"
            line += (f" | {'':<10} {seconds(f.mean)} s {seconds(f.p90)} s {seconds(f.in_line):>5} s "
                     f"{f.lost:>6.1%} {f.elsewhere:>8}")
            if occupancy is not None:
                line += f" {occupancy(run, label):>8.1%}"
        print(line)
    print()


def mean_wait(run: Run, center: str) -> float:
    return figures([c for c in run.callers if c.center == center and in_window(c)]).mean


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=0.25,
                    help=f"share of the insurer's {FULL_AGENTS} agents and of its calls (default 0.25)")
    ap.add_argument("--region", choices=[c.name for c in CENTERS], default="busan",
                    help="the center whose region surges (default busan)")
    ap.add_argument("--factor", type=float, default=3.0, help="how many times the calls (default 3)")
    defaults = CenterRouting()
    ap.add_argument("--spill-after", type=optional, default=defaults.spill_after,
                    help=f"seconds, or none (default {defaults.spill_after:g}, CenterRouting's)")
    ap.add_argument("--spill-margin", type=optional, default=defaults.spill_margin,
                    help=f"seconds, or none (default {defaults.spill_margin:g}, CenterRouting's)")
    ap.add_argument("--quick", action="store_true", help="08:00-14:00 only")
    args = ap.parse_args(argv)
    args.end = 14 * H if args.quick else DAY_END
    with_it = CenterRouting(spill_after=args.spill_after, spill_margin=args.spill_margin)
    runs = [replay(args, "without", CenterRouting(None, None)), replay(args, "with", with_it)]

    agents = round(FULL_AGENTS * args.scale)
    sizes = split(agents, [c.share for c in CENTERS])
    staff = dict(zip((c.name for c in CENTERS), sizes, strict=True))
    print(f"seed {args.seed}, {hhmm(DAY_START)}-{hhmm(args.end)}, scale {args.scale:g} of {FULL_AGENTS} agents: "
          f"{agents} agents at full staff (" + ", ".join(f"{n} {k}" for n, k in staff.items()) + ")")
    print(f"calls {CALLS_PER_AGENT_HOUR:g}/h per agent at full staff x hourly factor ("
          + " ".join(f"{h}h:{f:g}" for h, f in RATE_BY_HOUR.items() if h * H < args.end)
          + f"), split by the same shares; {args.region} x{args.factor:g} {hhmm(SURGE[0])}-{hhmm(SURGE[1])}")
    print("staff on duty: " + ", ".join(f"{hhmm(t)} {s:.0%}" for t, s in STAFFING if t < args.end))
    print(f"without distribution: CenterRouting(spill_after=None, spill_margin=None); with distribution: "
          f"CenterRouting(spill_after={args.spill_after}, spill_margin={args.spill_margin})"
          + (" (the defaults)" if with_it == defaults else ""))
    print(f"calls {len(runs[0].callers)}; simulated in {runs[0].seconds:.1f} s and {runs[1].seconds:.1f} s")
    print()

    centers = [(c.name, lambda x, n=c.name: x.center == n) for c in CENTERS]
    nationwide = [("nationwide", lambda x: True)]
    priorities = [(p, lambda x, p=p: x.priority == p) for p in ("elderly", "repeat", "normal")]
    region = [(f"{args.region[:5]} {p[:4]}", lambda x, p=p: x.center == args.region and x.priority == p)
              for p in ("elderly", "repeat", "normal")]

    def occ(in_surge: bool) -> Callable[[Run, str], float]:
        def share(run: Run, label: str) -> float:
            if label == "nationwide":
                return nationwide_occupancy(run, in_surge)
            return run.occupancy.share(label, in_surge)
        return share

    when = f"callers who arrived in the surge ({hhmm(SURGE[0])}-{hhmm(SURGE[1])}); occupancy in it"
    table(f"per center, {when}:", centers + nationwide, runs, True, occ(True))
    table("per priority, the same callers:", priorities + region, runs, True, None)
    day = f"the whole day ({hhmm(DAY_START)}-{hhmm(args.end)})"
    table(f"per center, {day}:", centers + nationwide, runs, False, occ(False))
    table(f"per priority, {day}:", priorities + region, runs, False, None)
    print("mean, p90: wait of answered callers (arrival to the agent's answer); in line: every caller's "
          "time in line,\nanswered or not; lost: gave up or taken out at 20 minutes; by other: answered "
          "by another center's agent;\noccupied: agents ringing, talking or wrapping up, over their time "
          "logged in.")
    print()

    without, with_ = runs
    before, after = mean_wait(without, args.region), mean_wait(with_, args.region)
    cut = 1 - after / before if before else math.nan
    print(f"check: distribution cuts the surge region's mean wait by at least half: {args.region} "
          f"{before:.0f} s -> {after:.0f} s ({-cut:+.0%}): {'PASS' if cut >= 0.5 else 'FAIL'}")
    rises = [(c.name, mean_wait(with_, c.name) - mean_wait(without, c.name)) for c in CENTERS
             if c.name != args.region]
    worst = max(rises, key=lambda r: r[1])
    print(f"check: no other center's mean wait rises by more than {RISE_ALLOWED:.0f} s: "
          + ", ".join(f"{n} {r:+.0f} s" for n, r in rises)
          + f"; most {worst[0]} {worst[1]:+.0f} s: {'PASS' if worst[1] <= RISE_ALLOWED else 'FAIL'}")
    print("(both on the callers who arrived in the surge; mean wait of answered callers)")
    rises = [(c.name, day_mean(with_, c.name) - day_mean(without, c.name)) for c in CENTERS
             if c.name != args.region]
    most = max(rises, key=lambda r: r[1])
    print(f"{day}: {args.region} {day_mean(without, args.region):.0f} s -> "
          f"{day_mean(with_, args.region):.0f} s; the largest rise elsewhere {most[0]} {most[1]:+.0f} s")
    return 0


def day_mean(run: Run, center: str) -> float:
    return figures([c for c in run.callers if c.center == center]).mean


def nationwide_occupancy(run: Run, in_surge: bool) -> float:
    busy = sum(v for (c, s), v in run.occupancy.busy.items() if s == in_surge)
    on = sum(v for (c, s), v in run.occupancy.on.items() if s == in_surge)
    return busy / on if on else math.nan


def optional(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


if __name__ == "__main__":
    sys.exit(main())
