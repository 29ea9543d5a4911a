"""A month of calls to the sample flow, and how long ``ivr report`` (and ``ivr export calls``) take on it.

    .venv/bin/python bench/analytics.py                         # 3,000,000 calls (November 2026)
    .venv/bin/python bench/analytics.py --calls 300000          # a tenth
    .venv/bin/python bench/analytics.py --keep /tmp/month.db    # keep the store; reused when it exists

What is generated (deterministic for a seed), in an SQLite store file whose schema the store
itself creates (``open_store``); the rows go in with the store's own statement
(``ivr.store.statements.INSERT_CALL``) and its own row shape (``ivr.store.sqlite``), by
``executemany`` in transactions of 100,000, the number index built after the load:

- **when**: November 2026 in Seoul, weekdays busier than Saturdays and Sundays; by the hour
  a night trough, a morning peak (9-11), a lunch dip and an afternoon plateau.
- **who**: 3 % withheld; otherwise 10 % of calls are a number that called in the last 24 hours,
  the others a number drawn from 2.5 million.  A number is elderly (registry age 65+) for
  12 % of numbers; a caller calling again within 24 h is on their third call in 7 days a third
  of the time.  Elderly and such repeat callers take the flow's bypass rules (``bypass``
  → ``general`` with priority elderly or repeat); 30 % of numbers have a registered language.
- **the journey**: every other call walks the real ``flows/main.yaml`` (and its subflow)
  node by node through the flow model, with per-menu key shares (main menu: 30 % certificates,
  25 % eligibility, 25 % agent …), per try 6 % timeouts, 3 % wrong keys and 2 % hang-ups
  (after the information 25 % hang up instead of pressing 1), the language menu left to time
  out by 84 % (Korean), the birth date entered right 85 % of the time; the node exits
  (``NodeExit``), keys and outcome as the runner writes them.  200,000 journeys are walked
  and each call takes one of them at random.
- **the queue**: the wait is exponential around a mean that follows the hour's load
  (20 s at night to about 4 min at the peak; a third of that for elderly and repeat callers);
  callers have an exponential patience (mean 6 min): shorter than the wait they abandon, past
  3 minutes 30 % take a callback, past 10 minutes nobody could take them; the others talk to
  an agent.

Then ``ivr report --flow main --since 2026-11-01 --until 2026-11-30 --csv --charts`` runs as
its own process on that file (and ``ivr export calls --format parquet`` when the command
exists); the figures: seconds, rows read per second, peak RSS of that process.  Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.flow.loader import load_flows  # noqa: E402
from ivr.flow.model import (Branch, CancelCallback, Flow, FlowSet, Gather, Goto, Hangup, Menu, Play,  # noqa: E402
                            Queue, Return, Say, Set, Subflow, Transfer)
from ivr.store import open_store  # noqa: E402
from ivr.store import statements  # noqa: E402

SEOUL = ZoneInfo("Asia/Seoul")
MONTH = dt.date(2026, 11, 1)
DAYS = 30
CHUNK = 100_000
JOURNEYS = 200_000
POPULATION = 2_500_000

# Calls by hour of the day (Seoul), weekdays; Saturdays 35 %, Sundays 20 % of that.
HOURLY = (2, 1, 1, 1, 1, 2, 4, 10, 45, 100, 110, 95, 60, 85, 90, 85, 75, 60, 30, 18, 12, 8, 5, 3)
DAY_WEIGHT = {5: 0.35, 6: 0.20}

# Keys by menu: (key, share); the rest of a try is timeout / wrong key / hang-up.
KEYS = {
    "choose_language": (("1", 4), ("2", 6), ("3", 3), ("4", 3)),
    "main_menu": (("1", 25), ("2", 30), ("3", 12), ("6", 2), ("8", 2), ("0", 25), ("*", 4)),
    "eligibility_menu": (("1", 45), ("2", 30), ("9", 5), ("0", 17), ("*", 3)),
    "certificates_menu": (("1", 55), ("2", 25), ("9", 5), ("0", 12), ("*", 3)),
    "after_info": (("1", 60), ("9", 20), ("0", 20)),
    "confirm_birth_date": (("1", 90), ("2", 10)),
    "premium_next_step": (("1", 70), ("2", 30)),
    "ltc_menu": (("1", 40), ("2", 35), ("9", 5), ("0", 17), ("*", 3)),
    "ltc_after": (("1", 10), ("9", 30), ("0", 60)),
}
# Per try: (timeout, wrong key, hang-up) shares of 100; a key otherwise.
TRY = {"choose_language": (84, 0, 1), "after_info": (6, 2, 25)}
TRY_DEFAULT = (6, 3, 2)
HANGUP_IN_PLAY = 1.5            # % of calls hanging up during a prompt
REGISTERED_LANGUAGE = 0.30
WITHHELD = 0.03
RECALL = 0.10
ELDERLY = 0.12
THIRD_CALL = 1 / 3


class Walker:
    """Walks the flow model the way callers do (the shares above); a journey is what the
    runner would write: nodes, exits, keys, language, and where it ended."""

    def __init__(self, flows: FlowSet, rng: random.Random) -> None:
        self.flows, self.rng = flows, rng

    def _try(self, node: Menu, name: str) -> tuple[str, str | None]:
        """One try of a menu: ('key', key) | ('invalid', key) | ('timeout', None) | ('hangup', None)."""
        timeout, wrong, hangup = TRY.get(name, TRY_DEFAULT)
        roll = self.rng.random() * 100
        if roll < hangup:
            return "hangup", None
        if roll < hangup + timeout:
            return "timeout", None
        if roll < hangup + timeout + wrong:
            return "invalid", self.rng.choice([k for k in "0123456789*#" if k not in node.options])
        keys = [(k, w) for k, w in KEYS.get(name, ()) if k in node.options] or [(k, 1) for k in node.options]
        return "key", self.rng.choices([k for k, _ in keys], [w for _, w in keys])[0]

    def walk(self, flow: Flow) -> tuple[list[str], list[str], list[str], str, str, Queue | None]:
        rng = self.rng
        nodes: list[str] = []
        exits: list[str] = []
        digits: list[str] = []
        lang = flow.language
        registered = rng.random() < REGISTERED_LANGUAGE
        if registered:
            lang = rng.choices(["ko", "en", "zh", "vi"], [85, 7, 5, 3])[0]
        stack: list[tuple[Flow, str]] = []
        current, name = flow, flow.entry
        exhausted = False
        for _ in range(80):
            node = current.nodes[name]
            nodes.append(f"{current.name}/{name}" if stack else name)
            target: str | None
            match node:
                case Play() | Say():
                    if rng.random() * 100 < HANGUP_IN_PLAY:
                        exits.append("hangup")
                        return nodes, exits, digits, lang, "caller_hangup", None
                    target = node.next
                case Set():
                    for var, expr in node.assignments:
                        if var == "lang":
                            lang = expr.source.strip("'\"")
                    target = node.next
                case Branch():
                    if name == "start":
                        target = node.cases[0][1] if registered else node.otherwise
                    else:                      # premium_route: a senior without a registry age is rare
                        target = node.cases[0][1] if rng.random() < 0.03 else node.otherwise
                case Goto():
                    target = node.target
                case CancelCallback():
                    target = node.next if rng.random() < 0.4 else node.none
                case Menu():
                    for _try in range(node.retries + 1):
                        how, key = self._try(node, name)
                        if key is not None:
                            digits.append(key)
                        if how in ("key", "hangup"):
                            break
                    if how == "hangup":
                        exits.append("hangup")
                        return nodes, exits, digits, lang, "caller_hangup", None
                    if how == "key":
                        exits.append("key")
                        exhausted = False
                        name = node.options[key or ""]
                        continue
                    exits.append(how)
                    exhausted = True
                    if node.on_fail is None:
                        return nodes, exits, digits, lang, "retries_exhausted", None
                    name = node.on_fail
                    continue
                case Gather():
                    how = "timeout"
                    for _try in range(node.retries + 1):
                        roll = rng.random() * 100
                        if roll < 3:
                            exits.append("hangup")
                            return nodes, exits, digits, lang, "caller_hangup", None
                        if roll < 8:
                            how = "timeout"
                            continue
                        digits.append("*" * node.max_digits if node.private else "850315")
                        if roll < 15:
                            how = "invalid"
                            continue
                        how = "key"
                        break
                    if how == "key":
                        exits.append("key")
                        exhausted = False
                        name = node.next
                        continue
                    exits.append(how)
                    exhausted = True
                    if node.on_fail is None:
                        return nodes, exits, digits, lang, "retries_exhausted", None
                    name = node.on_fail
                    continue
                case Subflow():
                    exits.append("next")
                    stack.append((current, node.next))
                    current = self.flows[node.flow]
                    name = current.entry
                    continue
                case Return():
                    if not stack:
                        exits.append("end")
                        return nodes, exits, digits, lang, "retries_exhausted" if exhausted else "completed", None
                    exits.append("next")
                    current, name = stack.pop()
                    continue
                case Queue():
                    exits.append("queue")
                    return nodes, exits, digits, lang, "queue", node
                case Transfer():
                    exits.append("transfer")
                    return nodes, exits, digits, lang, "transferred", None
                case Hangup():
                    exits.append("end")
                    return nodes, exits, digits, lang, "retries_exhausted" if exhausted else "completed", None
                case _:
                    raise TypeError(f"no walk for {type(node).__name__}")
            exits.append("next")
            name = target
        exits.append("hangup")                 # round in circles for too long: gives up
        return nodes, exits, digits, lang, "caller_hangup", None


def journeys(flows: FlowSet, count: int, seed: int) -> list[tuple]:
    """``count`` walks of the main flow, each as the row parts it gives: the nodes, keys and
    exits as the store keeps them (JSON text), language, end, queue, priority, reason, steps."""
    walker = Walker(flows, random.Random(seed))
    main = flows["main"]
    out = []
    for _ in range(count):
        nodes, exits, digits, lang, end, queue = walker.walk(main)
        out.append((json.dumps(nodes, ensure_ascii=False), json.dumps(digits), json.dumps(exits), lang, end,
                    queue.queue if queue else None, queue.priority if queue else None,
                    queue.reason if queue else None, len(nodes)))
    return out


def _ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")      # the store's shape (UTC)


def start_times(calls: int, rng: random.Random) -> Iterator[dt.datetime]:
    """``calls`` start times over the month, oldest first, following the day and hour shapes."""
    slots = []
    for day in range(DAYS):
        date = MONTH + dt.timedelta(days=day)
        for hour, w in enumerate(HOURLY):
            slots.append((dt.datetime.combine(date, dt.time(hour), SEOUL).astimezone(dt.timezone.utc),
                          w * DAY_WEIGHT.get(date.weekday(), 1.0)))
    total = sum(w for _, w in slots)
    counts = [int(calls * w / total) for _, w in slots]
    for i in sorted(range(len(slots)), key=lambda i: -slots[i][1])[:calls - sum(counts)]:
        counts[i] += 1
    for (start, _), n in zip(slots, counts, strict=True):
        for second in sorted(rng.random() * 3600 for _ in range(n)):
            yield start + dt.timedelta(seconds=second)


def rows(calls: int, flows: FlowSet, seed: int = 13) -> Iterator[tuple]:
    """The call rows, oldest first, in the order of ``statements.CALL_COLUMNS``."""
    rng = random.Random(seed)
    pool = journeys(flows, min(JOURNEYS, max(1000, calls // 10)), seed)
    version = flows["main"].version
    load_of = {h: w / max(HOURLY) for h, w in enumerate(HOURLY)}
    recent: deque[tuple[float, int]] = deque()          # (when, number) of the last 24 h
    expo, rand = rng.expovariate, rng.random
    for n, started in enumerate(start_times(calls, rng)):
        t = started.timestamp()
        while recent and recent[0][0] <= t - 86400:
            recent.popleft()
        third = False
        if rand() < WITHHELD:
            who = None
        elif recent and rand() < RECALL:
            who = recent[int(rand() * len(recent))][1]
            third = rand() < THIRD_CALL
        else:
            who = int(rand() * POPULATION)
        number = None if who is None else f"+8210{who:08d}"
        if who is not None:
            recent.append((t, who))
        elderly = who is not None and who % 100 < ELDERLY * 100
        hour = started.astimezone(SEOUL).hour
        if elderly or third:
            why = "elderly" if elderly else "repeat"
            nodes, digits, exits, lang = '["bypass"]', "[]", '["queue"]', "ko"
            end, queue, priority, reason, steps = "queue", "general", why, f"bypass: {why}", 1
        else:
            nodes, digits, exits, lang, end, queue, priority, reason, steps = pool[int(rand() * len(pool))]
        waited = None
        detail = ""
        ivr_time = 6.0 * steps
        if end == "queue":
            mean = 20 + 220 * load_of[hour] ** 2
            if priority is not None:
                mean /= 3
            wait, patience = expo(1 / mean), expo(1 / 360)
            if patience < wait:
                end, waited = "abandoned", patience
            elif wait > 180 and rand() < 0.3:
                end, waited = "callback_booked", 180 + rand() * 20
            elif wait > 600:
                end, waited = "queue_timeout", 600.0
            else:
                end, waited = "agent_connected", wait
                detail = f"agent{int(rand() * 120) + 1} after {round(wait)} s in line"
            ivr_time += waited + (expo(1 / 240) if end == "agent_connected" else 0)
            waited = round(waited, 1)
        ended = started + dt.timedelta(seconds=ivr_time)
        yield (f"bench-{n:08d}", number or "", "15771000", _ts(started), _ts(ended), "main", version,
               lang, nodes, digits, end, detail, priority, reason, number, exits, queue, waited,
               "voice", "[]", 0)


def generate(path: Path, calls: int, flows: FlowSet) -> float:
    """The store file at ``path`` with ``calls`` calls; the seconds it took."""
    t0 = time.perf_counter()

    async def create() -> None:
        async with open_store(f"sqlite:///{path}"):
            pass

    asyncio.run(create())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    # The number index goes in after the load (the same statement the store made it with).
    index_sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'calls_number_started'"
                             ).fetchone()
    if index_sql:
        conn.execute("DROP INDEX calls_number_started")
    it = rows(calls, flows)
    done = 0
    while chunk := list(itertools.islice(it, CHUNK)):
        conn.execute("BEGIN")
        conn.executemany(statements.INSERT_CALL, chunk)
        conn.execute("COMMIT")
        done += len(chunk)
        print(f"\r  {done:>10,} calls written, {time.perf_counter() - t0:6.1f} s", end="", file=sys.stderr)
    print(file=sys.stderr)
    if index_sql:
        conn.execute(index_sql[0])
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - t0


def run(cmd: list[str]) -> tuple[float, float, int, int, str]:
    """Run ``cmd``; its wall and CPU seconds, exit code, peak RSS in MiB and its output."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_utime + usage.ru_stime, proc.returncode, usage.ru_maxrss // 1024, out


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="the store file (kept; reused when it exists)")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="ivr-analytics-")
    work = Path(tmp.name)
    db = args.keep or work / "ivr.db"
    flows = load_flows([ROOT / "flows"], None)
    if db.exists():
        with sqlite3.connect(db) as conn:
            have = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        print(f"store: {db} (kept from before: {have:,} calls)")
    else:
        print(f"generating {args.calls:,} calls of November 2026 into {db} …")
        seconds = generate(db, args.calls, flows)
        have = args.calls
        print(f"generated: {have:,} calls in {seconds:.1f} s ({have / seconds:,.0f} rows/s), "
              f"{db.stat().st_size / 2**20:,.0f} MiB")
    config = work / "ivr.yaml"
    config.write_text(f"ari: {{username: ivr, password: x}}\nflows: {ROOT / 'flows'}\n"
                      f"store: {{url: 'sqlite:///{db}'}}\n", encoding="utf-8")
    ivr = [sys.executable, "-m", "ivr.cli", "--config", str(config)]
    before = load()
    seconds, cpu, code, rss, out = run([*ivr, "report", "--flow", "main", "--since", "2026-11-01",
                                        "--until", "2026-11-30", "--csv", str(work / "csv"),
                                        "--charts", str(work / "charts")])
    print(out[:out.find("\noutcomes")] if code == 0 else out[-2000:])
    print(f"ivr report: {seconds:.1f} s ({cpu:.1f} s CPU), exit {code}, {have / seconds:,.0f} calls/s, "
          f"peak RSS {rss:,} MiB; {before} before")
    probe = subprocess.run([*ivr, "export", "calls", "--help"], capture_output=True, text=True)
    if probe.returncode == 0:
        target = work / "calls.parquet"
        before = load()
        seconds, cpu, code, rss, out = run([*ivr, "export", "calls", "--format", "parquet",
                                            "--since", "2026-11-01", "--until", "2026-11-30",
                                            "--output", str(target)])
        size = f", {target.stat().st_size / 2**20:,.0f} MiB written" if target.exists() else ""
        print(out[-600:] if code else "", end="")
        print(f"ivr export calls --format parquet: {seconds:.1f} s ({cpu:.1f} s CPU), exit {code}, "
              f"{have / seconds:,.0f} calls/s, peak RSS {rss:,} MiB{size}; {before} before")
    else:
        print("ivr export calls: not in this version")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
