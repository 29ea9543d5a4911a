"""What one look at a wellness campaign costs the dialler, for campaigns of growing size.

    .venv/bin/python bench/wellness.py                      # 1,000, 10,000 and 50,000 people
    .venv/bin/python bench/wellness.py --people 20000

For each size an SQLite store gets that many people and 90 days
of history: two window days a week, each person tried once or twice a window day, one in five
tries unanswered.  Then, on a Tuesday at 11:00 Seoul time with every line taken (so nobody is
rung), the desk's look at the campaign (``WellnessDesk.poll``: people, attempts, the plan's
pick, the visit pass) is timed, against the baseline of the same run: only reading the people
and the attempts from the store.  Printed: people, attempts read, the baseline's and the look's
median and worst of 5 (ms), the plan's own share (look minus baseline), and the event
loop's longest stall during the looks (a 1 ms ticker's worst lateness: what calls in progress
would feel).  Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivr.callbacks.schedule import OpeningHours  # noqa: E402
from ivr.store import open_store  # noqa: E402
from ivr.store.sqlite import _ts  # noqa: E402
from ivr.wellness.desk import WellnessDesk  # noqa: E402
from ivr.wellness.model import AttemptResult, Campaign, Person  # noqa: E402

SEOUL = ZoneInfo("Asia/Seoul")
NOW = dt.datetime(2026, 12, 1, 11, 0, tzinfo=SEOUL)          # a Tuesday, inside the window
DAYS = 90


def campaign(people: int) -> Campaign:
    window = [(dt.time(10), dt.time(17))]
    return Campaign(name="seniors", hours=OpeningHours(SEOUL, {1: window, 4: window}),
                    max_concurrent=max(1, people // 1000))


class NoFlows:
    def outbound_flow(self, name):
        from ivr.flow.loader import load_flows
        from ivr.prompts import load_catalogue

        root = Path(__file__).resolve().parents[1]
        if not hasattr(self, "_flows"):
            self._flows = load_flows([root / "flows"], load_catalogue(root / "prompts" / "catalog.yaml"))
        return self._flows.get(name)

    async def run_outbound(self, *args, **kw):
        raise AssertionError("nobody is rung in this benchmark")


async def fill(store, path: str, n: int, rng: random.Random) -> int:
    """``n`` people through the store; their history straight into its table (the store's own
    time format), in one transaction."""
    numbers = [f"+8210{7000_0000 + i:08d}" for i in range(n)]
    for i in range(0, n, 5000):
        await store.put_wellness_people([Person(number=x, campaign="seniors") for x in numbers[i:i + 5000]])
    rows = []
    day = (NOW - dt.timedelta(days=DAYS)).date()
    while day < NOW.date():
        if day.weekday() in (1, 4):
            for number in numbers:
                for k in range(rng.choice((1, 1, 2))):
                    at = _ts(dt.datetime.combine(day, dt.time(10 + k, rng.randrange(60)), tzinfo=SEOUL))
                    result = AttemptResult.NO_ANSWER if rng.random() < 0.2 else AttemptResult.WELL
                    rows.append((number, "seniors", at, "bench", None, at, str(result), None))
        day += dt.timedelta(days=1)
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO wellness_attempts (number, campaign, claimed_at, claimed_by, "
                         "claim_until, at, result, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


stalls: list[float] = []


async def measure(path: str, n: int, repeat: int) -> tuple[int, list[float], list[float]]:
    rng = random.Random(n)
    async with open_store(f"sqlite:///{path}") as store:
        attempts = await fill(store, path, n, rng)
        c = campaign(n)
        # Every line taken: the look reads and decides, and rings nobody.
        for i in range(c.max_concurrent):
            await store.put_wellness_people([Person(number=f"+8210{6000_0000 + i:08d}", campaign="seniors")])
            await store.claim_wellness_attempt(f"+8210{6000_0000 + i:08d}", "other", NOW, 3600)
        config = types.SimpleNamespace(campaigns=(c,), ring_timeout=10, poll=5, lease=60, history_days=DAYS)
        desk = WellnessDesk(config, store, switch=None, flows=NoFlows(), endpoint="PJSIP/{digits}",
                            owner="bench", wall_clock=lambda: NOW)
        desk._recovered = True
        base, look = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            await desk._people("seniors")
            await store.wellness_attempts(NOW - dt.timedelta(days=DAYS), campaign="seniors", limit=10_000_000)
            base.append((time.perf_counter() - t0) * 1000)
            desk._last_visit_pass = -1e9          # the look includes the visit pass
            desk._next_look.clear()
            ticking = asyncio.create_task(tick(stalls))
            t0 = time.perf_counter()
            await desk.poll()
            look.append((time.perf_counter() - t0) * 1000)
            ticking.cancel()
        return attempts, base, look


async def tick(stalls: list[float]) -> None:
    """The loop's longest stall while a look runs: a 1 ms ticker's worst lateness (ms)."""
    last = time.perf_counter()
    while True:
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        stalls.append((now - last) * 1000 - 1)
        last = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, nargs="*", default=[1000, 10000, 50000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    print(f"{'people':>8} {'attempts':>9} {'read ms (med/max)':>19} {'look ms (med/max)':>19} "
          f"{'plan ms':>8} {'loop stall ms':>14}")
    for n in args.people:
        stalls.clear()
        with tempfile.TemporaryDirectory() as scratch:
            attempts, base, look = asyncio.run(measure(f"{scratch}/bench.db", n, args.repeat))
        b, lk = statistics.median(base), statistics.median(look)
        print(f"{n:>8} {attempts:>9} {b:>10.0f} /{max(base):>6.0f} {lk:>10.0f} /{max(look):>6.0f} "
              f"{lk - b:>8.0f} {max(stalls, default=0):>14.0f}")


if __name__ == "__main__":
    main()
