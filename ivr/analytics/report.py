"""The journey report: what the calls of one flow went through over a range of days.

``ReportBuilder`` is fed the flow's call records in time order (``started_at``) in batches,
as ``Store.iter_calls`` reads them, and gives a ``Report``.  It does no I/O and keeps no
record: its memory grows with the numbers that called within 24 hours, the flow's nodes and
the distinct paths (bounded, see below), never with the length of the range.

The range is [``since``, ``until``).  The builder must also be fed the 24 hours before
``since`` (to know who had called just before) and the 24 hours after ``until`` (to know who
called again); those calls are not counted themselves.  ``ivr report`` reads that far.
Only the calls of the report's flow count, everywhere (a call of another flow in the
stream is skipped).

What each figure means:

- **calls**: calls of the flow that started in the range, finished or not.
- **contained**: calls the IVR served to the end by itself: outcome ``completed`` (the flow
  reached a ``hangup`` node, or ``return`` from the top) and never handed to a queue
  (``CallRecord.queue`` is None) nor transferred.  Not contained: a caller who hung up in
  the menus (``caller_hangup``, whatever they had heard), a caller who ran out of tries
  (``retries_exhausted``), every call handed to a queue (agent, abandon, callback booked …)
  or transferred, and calls still in progress or lost.  ``outcomes`` shows them all.
- **contained, no recontact**: the contained calls whose number did not call the flow again
  less than 24 hours later (a recontact at exactly 24 h does not count).  A contained call
  without a number (withheld) cannot be followed and stays contained.
- **repeat contacts**: calls whose number had called the flow less than 24 hours before
  (again: exactly 24 h is not a repeat); the rate is over the calls with a number.
- **funnel**, per node: *reached*, the calls that visited it (once or more); then the calls
  that left it by each way that matters (``CallRecord.exits``, ``NodeExit``): *hang-up*,
  *timeout* (a menu or gather that ran out of tries without a key), *invalid* (ran out of
  tries on a wrong key), *queued* (handed to a queue here) and *agent* (handed to a queue
  here and the outcome ``agent_connected``).  A call is counted once per node and way, even
  when it left the node that way twice.  Records without exits (written before they were
  kept) count in *reached* only.  Nodes come in flow order when the flow is given (a
  breadth-first walk from ``bypass`` and the entry node, subflows in place), the others after
  them by reach.  A subflow's nodes are ``subflow/node``; ``bypass`` is the bypass rules.
- **paths**: the most common sequences of nodes.  Counted exactly while the range has at
  most twice ``PATHS_KEPT`` distinct paths (a month of the sample flow has about 7,000); past
  that the ``PATHS_KEPT`` most common are kept, each lowered by the next one's count
  (Misra-Gries): each count shown may then be short by at most ``paths_error`` calls.
- **bypasses**: calls routed by a bypass rule (``reason`` ``bypass: <why>``), by reason.
- **wait**: for the calls handed to a queue with a known wait (``CallRecord.waited``), by
  priority (None is ``(none)``) and by the hour of the day the call started, in the
  center's time zone: count, mean, median and 90th percentile (linear between the two
  nearest waits, as ``statistics.quantiles(method="inclusive")``), the waits taken to a tenth
  of a second for the median and percentile (the mean is exact).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import math
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ivr.call import CallRecord, NodeExit, Outcome

if TYPE_CHECKING:
    from ivr.flow.model import Flow, FlowSet

__all__ = ["WINDOW", "PATHS_KEPT", "WaitStats", "NodeStats", "Report", "ReportBuilder",
           "build_report", "split_range", "flow_order", "format_report", "csv_tables", "NO_PRIORITY"]

WINDOW = dt.timedelta(hours=24)
PATHS_KEPT = 50_000
NO_PRIORITY = "(none)"
_WINDOW_S = WINDOW.total_seconds()
_BYPASS = "bypass: "
# Index of each counted exit in a node's counters (0 is reached, 5 is agent).
_EXIT_SLOT = {NodeExit.HANGUP.value: 1, NodeExit.TIMEOUT.value: 2, NodeExit.INVALID.value: 3,
              NodeExit.QUEUE.value: 4}
_QUEUE_SLOT = 4
_AGENT_SLOT = 5
_COMPLETED = Outcome.COMPLETED.value
_AGENT = Outcome.AGENT_CONNECTED.value
# How a call went: its nodes, how it left each, its outcome and why it was routed so.
_Journey = tuple[tuple[str, ...], tuple[str, ...], str | None, str | None]


@dataclasses.dataclass(frozen=True, slots=True)
class WaitStats:
    """Waits in line, in seconds (None when no call waited)."""

    count: int
    mean: float | None
    median: float | None
    p90: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class NodeStats:
    """One node of the funnel (see the module docstring)."""

    node: str
    reached: int
    hangup: int
    timeout: int
    invalid: int
    queued: int
    agent: int


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    flow: str
    since: dt.datetime                # the range: [since, until), aware
    until: dt.datetime
    timezone: str                     # the center's, for the hours and the dates shown
    followed_until: dt.datetime       # recontacts were looked for up to here
    calls: int
    contained: int
    recontacted: int                  # contained calls whose number called again within 24 h
    with_number: int                  # calls with a known number
    repeats: int                      # calls whose number had called within the 24 h before
    outcomes: Mapping[str, int]       # by outcome ('in progress' for none yet), most first
    funnel: tuple[NodeStats, ...]
    paths: tuple[tuple[tuple[str, ...], int], ...]   # the top paths, most first
    paths_error: int                  # 0: path counts are exact
    bypasses: Mapping[str, int]       # by reason, most first
    wait_by_priority: Mapping[str, WaitStats]
    wait_by_hour: tuple[WaitStats, ...]              # 24, local hours 0..23

    @property
    def containment(self) -> float | None:
        return self.contained / self.calls if self.calls else None

    @property
    def contained_no_recontact(self) -> int:
        return self.contained - self.recontacted

    @property
    def containment_corrected(self) -> float | None:
        return self.contained_no_recontact / self.calls if self.calls else None

    @property
    def repeat_rate(self) -> float | None:
        return self.repeats / self.with_number if self.with_number else None

    @property
    def fully_followed(self) -> bool:
        """False when the 24 h after the range had not all passed (a report for today)."""
        return self.followed_until >= self.until + WINDOW


class _Waits:
    """Waits kept as counts per tenth of a second: exact mean, median and p90 to 0.1 s."""

    __slots__ = ("total", "tenths")

    def __init__(self) -> None:
        self.total = 0.0
        self.tenths: collections.Counter[int] = collections.Counter()

    def add(self, seconds: float) -> None:       # ReportBuilder.add does the same, inline
        self.total += seconds
        self.tenths[round(seconds * 10)] += 1

    def merge(self, other: _Waits) -> None:
        self.total += other.total
        self.tenths.update(other.tenths)

    def stats(self) -> WaitStats:
        count = sum(self.tenths.values())
        if not count:
            return WaitStats(0, None, None, None)
        values = sorted(self.tenths.items())
        return WaitStats(count, self.total / count, _quantile(values, count, 0.5),
                         _quantile(values, count, 0.9))


def _quantile(values: Sequence[tuple[int, int]], n: int, q: float) -> float:
    """The ``q`` quantile of ``n`` waits given as sorted (tenths, count): linear between the
    two nearest ranks (position q·(n-1), counting from 0)."""
    position = q * (n - 1)
    low_rank, frac = int(math.floor(position)), position - math.floor(position)

    def at(rank: int) -> float:
        seen = 0
        for tenths, count in values:
            seen += count
            if rank < seen:
                return tenths / 10
        return values[-1][0] / 10        # pragma: no cover - rank < n always

    low = at(low_rank)
    return low if frac == 0 else low + (at(low_rank + 1) - low) * frac


class ReportBuilder:
    """Feed it the flow's records in time order with ``add``; ``report`` gives the figures.

    ``since``/``until``: the range, aware datetimes; ``tz``: the center's time zone (hours of
    the day); ``order``: the flow's nodes in the order to show them (``flow_order``); ``top``:
    how many paths to keep in the report.  Records must come oldest first from at least
    24 hours before ``since`` to 24 hours after ``until`` (earlier and later ones are ignored);
    ``ValueError`` for a record older than one already added.
    """

    def __init__(self, flow: str, since: dt.datetime, until: dt.datetime, tz: dt.tzinfo, *,
                 order: Sequence[str] = (), top: int = 10, paths_kept: int = PATHS_KEPT) -> None:
        if since.tzinfo is None or until.tzinfo is None:
            raise ValueError("the report's range needs aware datetimes")
        self.flow, self.tz, self.order, self.top = flow, tz, tuple(order), top
        self.since, self.until = since, until
        self._lo, self._hi = since.timestamp(), until.timestamp()
        self._paths_kept = paths_kept
        self._last = -math.inf
        # number -> when it last called (s); (when, number) oldest first, to forget them
        self._seen: dict[str, float] = {}
        self._seen_line: collections.deque[tuple[float, str]] = collections.deque()
        # number -> when its latest contained call in the range started, not yet followed up
        self._pending: dict[str, float] = {}
        self.calls = self.contained = self.recontacted = self.with_number = self.repeats = 0
        # Calls that went the same way (nodes, exits, outcome, reason) are counted together and
        # folded into the figures below when there are many kinds, and at the end.
        self._journeys: collections.Counter[_Journey] = collections.Counter()
        self._outcomes: collections.Counter[str] = collections.Counter()
        self._nodes: dict[str, list[int]] = {}
        self._paths: collections.Counter[tuple[str, ...]] = collections.Counter()
        self._paths_error = 0
        self._bypasses: collections.Counter[str] = collections.Counter()
        self._by_priority: dict[str, _Waits] = {}
        self._by_hour = [_Waits() for _ in range(24)]
        self._hour_of: dict[int, int] = {}       # quarter-hours since the epoch -> local hour

    @property
    def numbers_held(self) -> int:
        """How many numbers the builder remembers now (those of the last 24 hours)."""
        return len(self._seen)

    def add(self, records: Iterable[CallRecord]) -> None:
        # One loop with everything at hand: a month of calls passes through here.
        flow, lo, hi, window = self.flow, self._lo, self._hi, _WINDOW_S
        seen, line, pending, journeys = self._seen, self._seen_line, self._pending, self._journeys
        by_priority, by_hour, hour_of = self._by_priority, self._by_hour, self._hour_of
        last, kept = self._last, self._paths_kept
        calls = contained = recontacted = with_number = repeats = 0
        try:
            for r in records:
                if r.flow != flow:
                    continue
                t = r.started_at.timestamp()
                if t < last:
                    raise ValueError(f"call {r.call_id} started before the call added before it: "
                                     "records must come oldest first")
                last = t
                while line and line[0][0] <= t - window:
                    when, old = line.popleft()
                    if seen.get(old) == when:
                        del seen[old]
                        pending.pop(old, None)
                number = r.number
                if t >= hi:
                    if number is not None:
                        before = pending.pop(number, None)
                        if before is not None and t - before < window:
                            recontacted += 1
                        # no need to remember it: nothing after the range is counted
                    continue
                if number is not None:
                    if t >= lo:
                        before = seen.get(number)
                        if before is not None and t - before < window:
                            repeats += 1
                        before = pending.pop(number, None)
                        if before is not None and t - before < window:
                            recontacted += 1
                    seen[number] = t
                    line.append((t, number))
                if t < lo:
                    continue
                calls += 1
                outcome, queue = r.outcome, r.queue
                if number is not None:
                    with_number += 1
                if outcome == _COMPLETED and queue is None:
                    contained += 1
                    if number is not None:
                        pending[number] = t
                journeys[(tuple(r.nodes), tuple(r.exits), outcome, r.reason)] += 1
                waited = r.waited
                if queue is not None and waited is not None:
                    key = r.priority or NO_PRIORITY
                    waits = by_priority.get(key)
                    if waits is None:
                        waits = by_priority[key] = _Waits()
                    tenths = round(waited * 10)
                    waits.total += waited
                    waits.tenths[tenths] += 1
                    quarter = int(t // 900)
                    hour = hour_of.get(quarter)
                    if hour is None:
                        hour = hour_of[quarter] = r.started_at.astimezone(self.tz).hour
                    waits = by_hour[hour]
                    waits.total += waited
                    waits.tenths[tenths] += 1
                if len(journeys) > kept:
                    self._fold()
        finally:
            self._last = last
            self.calls += calls
            self.contained += contained
            self.recontacted += recontacted
            self.with_number += with_number
            self.repeats += repeats

    def _fold(self) -> None:
        """Count the journeys kept into the outcomes, bypasses, funnel and paths."""
        outcomes, bypasses, stats, paths = self._outcomes, self._bypasses, self._nodes, self._paths
        for (nodes, exits, outcome, reason), count in self._journeys.items():
            outcomes[outcome or "in progress"] += count
            if reason is not None and reason.startswith(_BYPASS):
                bypasses[reason[len(_BYPASS):]] += count
            for name in set(nodes):
                counts = stats.get(name)
                if counts is None:
                    counts = stats[name] = [0, 0, 0, 0, 0, 0]
                counts[0] += count
            agent = outcome == _AGENT
            for name, slot in {(n, _EXIT_SLOT[e]) for n, e in zip(nodes, exits, strict=False)
                               if e in _EXIT_SLOT}:
                counts = stats[name]
                counts[slot] += count
                if agent and slot == _QUEUE_SLOT:
                    counts[_AGENT_SLOT] += count
            paths[nodes] += count
        self._journeys.clear()
        if len(paths) > 2 * self._paths_kept:
            self._thin_paths()

    def finished(self) -> ReportBuilder:
        """This builder once every record has been added: its figures folded, the numbers of
        the last 24 hours forgotten (small to send to another process).  Returns itself."""
        self._fold()
        self._seen.clear()
        self._seen_line.clear()
        self._pending.clear()
        return self

    def merge(self, other: ReportBuilder) -> None:
        """Add the figures of ``other``, a builder of another part of the range that was fed
        that part and the 24 hours on each side (``split_range``), to this one's."""
        other._fold()
        self._fold()
        self.calls += other.calls
        self.contained += other.contained
        self.recontacted += other.recontacted
        self.with_number += other.with_number
        self.repeats += other.repeats
        self._outcomes.update(other._outcomes)
        self._bypasses.update(other._bypasses)
        for name, counts in other._nodes.items():
            mine = self._nodes.setdefault(name, [0] * len(counts))
            for i, value in enumerate(counts):
                mine[i] += value
        self._paths.update(other._paths)
        self._paths_error += other._paths_error
        if len(self._paths) > 2 * self._paths_kept:
            self._thin_paths()
        for key, waits in other._by_priority.items():
            self._by_priority.setdefault(key, _Waits()).merge(waits)
        for mine_w, theirs in zip(self._by_hour, other._by_hour, strict=True):
            mine_w.merge(theirs)

    def _thin_paths(self) -> None:
        """Misra-Gries: keep the ``paths_kept`` most common, every count lowered by the next one."""
        cut = sorted(self._paths.values(), reverse=True)[self._paths_kept]
        self._paths_error += cut
        self._paths = collections.Counter({p: c - cut for p, c in self._paths.items() if c > cut})

    def report(self, followed_until: dt.datetime | None = None) -> Report:
        """The figures so far.  ``followed_until``: how far past ``until`` the records were read
        (default: the whole 24 hours)."""
        self._fold()
        rank = {name: i for i, name in enumerate(self.order)}
        names = sorted(self._nodes, key=lambda n: (rank.get(n, len(rank)), -self._nodes[n][0], n))
        funnel = tuple(NodeStats(n, *self._nodes[n]) for n in names)
        paths = tuple(sorted(self._paths.items(), key=lambda pc: (-pc[1], pc[0]))[:self.top])
        return Report(
            flow=self.flow, since=self.since, until=self.until, timezone=str(self.tz),
            followed_until=followed_until or self.until + WINDOW,
            calls=self.calls, contained=self.contained, recontacted=self.recontacted,
            with_number=self.with_number, repeats=self.repeats,
            outcomes=dict(sorted(self._outcomes.items(), key=lambda kv: (-kv[1], kv[0]))),
            funnel=funnel, paths=paths, paths_error=self._paths_error,
            bypasses=dict(sorted(self._bypasses.items(), key=lambda kv: (-kv[1], kv[0]))),
            wait_by_priority={k: self._by_priority[k].stats() for k in sorted(self._by_priority)},
            wait_by_hour=tuple(w.stats() for w in self._by_hour))


async def build_report(batches: AsyncIterable[Sequence[CallRecord]], builder: ReportBuilder,
                       followed_until: dt.datetime | None = None) -> Report:
    """Feed ``builder`` every batch (``Store.iter_calls(since - WINDOW, until + WINDOW)``)."""
    async for batch in batches:
        builder.add(batch)
    return builder.report(followed_until)


def split_range(since: dt.datetime, until: dt.datetime, parts: int,
                tz: dt.tzinfo) -> list[tuple[dt.datetime, dt.datetime]]:
    """[``since``, ``until``) in at most ``parts`` consecutive ranges of whole days (the
    center's days), as even as the days allow: each can be built apart and merged."""
    first, last = since.astimezone(tz).date(), (until - dt.timedelta(microseconds=1)).astimezone(tz).date()
    days = (last - first).days + 1
    parts = max(1, min(parts, days))
    cuts = [since]
    for i in range(1, parts):
        day = first + dt.timedelta(days=round(i * days / parts))
        cuts.append(max(since, dt.datetime.combine(day, dt.time(), tz)))
    cuts.append(until)
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if a < b]


def flow_order(flow: Flow, flows: FlowSet | None = None) -> list[str]:
    """The flow's node names as its records name them, breadth first from the bypass rules and
    the entry node; a subflow's nodes (``subflow/node``, when ``flows`` has it) come right after
    the node that calls it."""
    from ivr.flow.model import Subflow

    order: list[str] = ["bypass"] if flow.bypass else []
    seen: set[str] = set(order)

    def walk(f: Flow, prefix: str) -> None:
        todo = collections.deque([f.entry])
        while todo:
            name = todo.popleft()
            shown = prefix + name
            if shown in seen or name not in f.nodes:
                continue
            seen.add(shown)
            order.append(shown)
            node = f.nodes[name]
            if isinstance(node, Subflow) and flows is not None:
                sub = flows.get(node.flow)
                if sub is not None and sub.name != f.name:
                    walk(sub, f"{sub.name}/")
            todo.extend(target for _, target in node.targets())

    walk(flow, "")
    return order


# -- output -----------------------------------------------------------------------------------

def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _zone(report: Report) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(report.timezone)
    except (ValueError, LookupError):
        return dt.timezone.utc


def _local_range(report: Report) -> tuple[str, str]:
    """The range as the dates given: first day, last day (inclusive)."""
    tz = _zone(report)
    first = report.since.astimezone(tz)
    last = (report.until - dt.timedelta(microseconds=1)).astimezone(tz)
    return first.date().isoformat(), last.date().isoformat()


def format_report(report: Report) -> str:
    """The report as the terminal shows it."""
    first, last = _local_range(report)
    calls = report.calls
    out = [f"journey report: flow {report.flow}, {first} to {last} ({report.timezone})", ""]
    if not calls:
        out.append("no calls in this range")
        return "\n".join(out) + "\n"
    out += [
        f"{'calls':34} {calls:>10,}",
        f"{'contained (completed in the IVR)':34} {report.contained:>10,}  {_pct(report.contained, calls)}",
        f"{'  and no recontact within 24 h':34} {report.contained_no_recontact:>10,}  "
        f"{_pct(report.contained_no_recontact, calls)}"
        + ("" if report.fully_followed else
           f"  (recontacts seen up to {report.followed_until.astimezone(_zone(report)):%Y-%m-%d %H:%M} only)"),
        f"{'repeat contacts (within 24 h)':34} {report.repeats:>10,}  "
        f"{_pct(report.repeats, report.with_number)}  of {report.with_number:,} calls with a number",
        "", "outcomes"]
    out += [f"  {k:32} {v:>10,}  {_pct(v, calls)}" for k, v in report.outcomes.items()]
    width = max([28, *(len(s.node) for s in report.funnel)])
    out += ["", "funnel", f"  {'node':{width}} {'reached':>9} {'hang-up':>8} {'timeout':>8} "
            f"{'invalid':>8} {'queued':>8} {'agent':>8}"]
    out += [f"  {s.node:{width}} {s.reached:>9,} {s.hangup:>8,} {s.timeout:>8,} {s.invalid:>8,} "
            f"{s.queued:>8,} {s.agent:>8,}" for s in report.funnel]
    out += ["", f"top {len(report.paths)} paths"
            + (f" (counts may be short by up to {report.paths_error:,})" if report.paths_error else "")]
    out += [f"  {c:>10,}  {_pct(c, calls)}  {' > '.join(p) or '(no node)'}" for p, c in report.paths]
    if report.bypasses:
        out += ["", "bypasses"]
        out += [f"  {k:32} {v:>10,}  {_pct(v, calls)}" for k, v in report.bypasses.items()]
    out += ["", "wait in line (s)", f"  {'priority':14} {'calls':>9} {'mean':>7} {'median':>7} {'p90':>7}"]
    out += [f"  {k:14} {w.count:>9,} {_secs(w.mean):>7} {_secs(w.median):>7} {_secs(w.p90):>7}"
            for k, w in report.wait_by_priority.items()]
    out += ["", f"  {'hour':14} {'calls':>9} {'mean':>7} {'median':>7} {'p90':>7}"]
    out += [f"  {f'{h:02d}:00':14} {w.count:>9,} {_secs(w.mean):>7} {_secs(w.median):>7} {_secs(w.p90):>7}"
            for h, w in enumerate(report.wait_by_hour) if w.count]
    return "\n".join(out) + "\n"


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return buf.getvalue()


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def csv_tables(report: Report) -> dict[str, str]:
    """One CSV text per section, by file name (``summary.csv``, ``funnel.csv`` …)."""
    first, last = _local_range(report)

    def waits(key: str, items: Iterable[tuple[object, WaitStats]]) -> str:
        return _csv((key, "calls", "mean_s", "median_s", "p90_s"),
                    ((k, w.count, _fmt(w.mean), _fmt(w.median), _fmt(w.p90)) for k, w in items))

    return {
        "summary.csv": _csv(("figure", "value"), [
            ("flow", report.flow), ("first_day", first), ("last_day", last),
            ("timezone", report.timezone), ("calls", report.calls),
            ("contained", report.contained), ("containment", _ratio(report.containment)),
            ("contained_no_recontact", report.contained_no_recontact),
            ("containment_corrected", _ratio(report.containment_corrected)),
            ("recontacts_followed_until", report.followed_until.isoformat()),
            ("calls_with_number", report.with_number), ("repeat_contacts", report.repeats),
            ("repeat_rate", _ratio(report.repeat_rate)), ("paths_error", report.paths_error)]),
        "outcomes.csv": _csv(("outcome", "calls"), report.outcomes.items()),
        "funnel.csv": _csv(("node", "reached", "hangup", "timeout", "invalid", "queued", "agent"),
                           (dataclasses.astuple(s) for s in report.funnel)),
        "paths.csv": _csv(("calls", "path"), ((c, " > ".join(p)) for p, c in report.paths)),
        "bypasses.csv": _csv(("reason", "calls"), report.bypasses.items()),
        "wait_by_priority.csv": waits("priority", report.wait_by_priority.items()),
        "wait_by_hour.csv": waits("hour", enumerate(report.wait_by_hour)),
    }


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
