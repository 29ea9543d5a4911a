"""How fast is "is this a repeat caller?" with a large call history, on SQLite and PostgreSQL.

    .venv/bin/python bench/history_lookup.py                  # 1,000,000 calls, both backends
    .venv/bin/python bench/history_lookup.py --rows 200000 --only sqlite

For each backend: a fresh store (SQLite in a temporary folder; PostgreSQL on a temporary server
started like the tests start theirs, ``ivr.testing.postgres``) is filled with ``--rows`` calls
spread over ``--days`` days and ``--numbers`` phone numbers (a few numbers call very often, most
rarely; 5 % withheld), bulk-loaded (SQLite: executemany in transactions of 100,000 rows;
PostgreSQL: COPY).  Then ``--lookups`` repeat-caller lookups run one after the other through the
store, as the engine makes them: ``count_calls_since(number, now - 7 days)``, and the variant
the routing uses for unserved repeat callers (``unserved_only=True, exclude_call=…``).  Numbers
are drawn like callers arrive: a number that calls often is looked up often.

Figures: latency per lookup (p50, p90, p99, max) measured around the awaited store call; CPU per
lookup of this process (all threads: the SQLite worker thread, asyncpg) and, for PostgreSQL,
of the server's processes.  The query plan is printed once per backend.  Nothing is asserted.

``--rate N`` adds the engine's load (after the one-at-a-time lookups): for ``--duration``
seconds, N calls a second arrive; each one, as ``Engine._identify`` does, notes its start
(``call_started``, in the background) and asks the registry (``registry_for``: what the engine
asks, with its cache when it has one) and the history (``count_calls_since``) at once; then it
writes ``--checkpoints`` progress notes (``call_progress``) over ``--call-seconds`` and its
record (``record_call``).  So the lookups run beside a write load of the engine's shape:
``2 + checkpoints`` writes per call.  Figures: the time until both lookups answered (p50, p99,
max; a lookup the store failed counts as not answered), and how many took longer than the
budget (``callers.lookup_budget``, 1 s) or failed; the writes' own p50/p99.  ``--hold S``
(SQLite) adds another process's writer that takes the write lock for S seconds every
``--hold-every`` seconds (an import, a second engine on the file): a write then waits on the
lock for up to SQLite's busy timeout.  ``--hold 0,1.2`` runs the load twice, without and with.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.call import CallRecord  # noqa: E402
from ivr.config import CallersConfig  # noqa: E402
from ivr.routing.registry import registry_for  # noqa: E402
try:
    from ivr.routing.registry import CachedRegistry  # noqa: E402
except ImportError:                  # an engine from before the cache: measured all the same
    CachedRegistry = None  # type: ignore[assignment,misc]
from ivr.store import Caller, open_store  # noqa: E402
from ivr.store.base import SERVED_OUTCOMES  # noqa: E402

UTC = dt.timezone.utc
CHUNK = 100_000
OUTCOMES = (["completed"] * 30 + ["agent_connected"] * 40 + ["caller_hangup"] * 20
            + ["retries_exhausted"] * 5 + ["queued"] * 3 + ["error"] * 2)
WEEK = dt.timedelta(days=7)


class History:
    """The generated call history: deterministic for a seed."""

    def __init__(self, rows: int, numbers: int, days: int, seed: int = 7) -> None:
        self.rows, self.numbers, self.days, self.seed = rows, numbers, days, seed
        self.now = dt.datetime.now(UTC).replace(microsecond=0)

    def number(self, rng: random.Random) -> str:
        # P(index < k) = (k / numbers) ** (2/3): the most frequent caller makes ~0.05 % of calls.
        return f"+8210{int(self.numbers * rng.random() ** 1.5):08d}"

    def chunks(self) -> Iterator[list[tuple]]:
        rng = random.Random(self.seed)
        span = self.days * 86400
        chunk: list[tuple] = []
        for i in range(self.rows):
            number = None if rng.random() < 0.05 else self.number(rng)
            started = self.now - dt.timedelta(seconds=rng.random() * span)
            ended = started + dt.timedelta(seconds=rng.randint(20, 900))
            caller = "0" + number[3:] if number else ""
            chunk.append((f"h{i:08d}", caller, "15771000", started, ended, "main", "v1", "ko",
                          ["welcome", "main_menu"], ["1"], rng.choice(OUTCOMES), "", None, None,
                          number, ["next", "key"], None, None, "voice", "[]", 0))
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def lookups(self, n: int) -> list[str]:
        rng = random.Random(self.seed + 1)
        return [self.number(rng) for _ in range(n)]


def sqlite_rows(chunk: list[tuple]) -> Iterator[tuple]:
    from ivr.store.sqlite import _ts

    for r in chunk:
        yield (r[0], r[1], r[2], _ts(r[3]), _ts(r[4]), r[5], r[6], r[7], json.dumps(r[8]),
               json.dumps(r[9]), *r[10:15], json.dumps(r[15]), *r[16:])


# -- process and server CPU ------------------------------------------------------------------

def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(postmaster: int) -> float:
    total = proc_cpu(postmaster)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == str(postmaster):
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            continue
    return total


# -- measuring -------------------------------------------------------------------------------

async def measure(store, numbers: list[str], since: dt.datetime, *, unserved: bool,
                  postmaster: int | None) -> dict:
    warm = numbers[: max(1, len(numbers) // 10)]
    for n in warm:
        await store.count_calls_since(n, since, unserved_only=unserved,
                                      exclude_call="live-call" if unserved else None)
    latencies = []
    counts = []
    srv0 = server_cpu(postmaster) if postmaster else 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for n in numbers:
        t0 = time.perf_counter()
        c = await store.count_calls_since(n, since, unserved_only=unserved,
                                          exclude_call="live-call" if unserved else None)
        latencies.append(time.perf_counter() - t0)
        counts.append(c)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    srv = (server_cpu(postmaster) - srv0) if postmaster else None
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e6

    return {"n": len(numbers), "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99),
            "max": latencies[-1] * 1e6, "mean": statistics.fmean(latencies) * 1e6,
            "cpu": cpu / len(numbers) * 1e6,
            "server_cpu": srv / len(numbers) * 1e6 if srv is not None else None,
            "rate": len(numbers) / wall, "counts": counts}


def report(label: str, m: dict) -> None:
    counts = sorted(m["counts"])
    srv = f", server {m['server_cpu']:.0f} µs" if m["server_cpu"] is not None else ""
    print(f"  {label}: {m['n']} lookups, {m['rate']:,.0f}/s one at a time")
    print(f"    latency  p50 {m['p50']:.0f} µs   p90 {m['p90']:.0f} µs   p99 {m['p99']:.0f} µs   "
          f"max {m['max']:.0f} µs   mean {m['mean']:.0f} µs")
    print(f"    CPU per lookup: engine process {m['cpu']:.0f} µs{srv}")
    print(f"    calls counted per lookup: median {counts[len(counts) // 2]}, "
          f"p99 {counts[int(0.99 * (len(counts) - 1))]}, max {counts[-1]}")


# -- lookups beside the engine's writes -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Load:
    rate: float                 # calls arriving per second
    duration: float             # seconds of arrivals
    checkpoints: int            # call_progress writes per call
    call_seconds: float         # from call_started to record_call
    registered: float           # share of the numbers in the registry
    holds: tuple[float, ...] = (0.0,)   # one run per value: SQLite, seconds another process
                                        # holds the write lock (0: never) …
    hold_every: float = 2.0     # … every so many seconds (an import, a second engine)


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")


def hold_writes(path: Path, every: float, hold: float, stop: threading.Event) -> None:
    """Another process's writer: takes SQLite's write lock for ``hold`` s every ``every`` s."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        while not stop.wait(every):
            db.execute("BEGIN IMMEDIATE")
            stop.wait(hold)
            db.execute("ROLLBACK")
    finally:
        db.close()


async def under_load(store, history: History, lookups: list[str], load: Load,
                     path: Path | None = None) -> None:
    """The load once per value of ``load.holds`` (SQLite; PostgreSQL: once, no lock held)."""
    step = max(1, round(1 / load.registered)) if load.registered > 0 else 0
    registered = [f"+8210{k:08d}" for k in range(0, history.numbers, step)] if step else []
    for i in range(0, len(registered), 5000):
        await store.put_callers([Caller(n, dt.date(1950, 1, 1)) for n in registered[i:i + 5000]])
    for run, hold in enumerate(load.holds if path is not None else (0.0,)):
        registry = registry_for(CallersConfig(), store, None)       # a fresh cache each run
        await calls_arriving(store, registry, history, lookups, load, run, len(registered),
                             path if hold > 0 else None, hold)


async def calls_arriving(store, registry, history: History, lookups: list[str], load: Load,
                         run: int, registered: int, path: Path | None, hold: float) -> None:
    """Calls arriving at ``load.rate`` a second, each asking what ``Engine._identify`` asks
    while its start, progress and record are written as the engine writes them."""
    budget = CallersConfig().lookup_budget
    since = history.now - WEEK
    answered: list[float] = []          # seconds until both lookups answered
    failed = 0
    writes: list[float] = []
    write_errors = 0
    tasks: set[asyncio.Task] = set()

    async def write(fn, record: CallRecord) -> None:
        nonlocal write_errors
        t0 = time.perf_counter()
        try:
            await fn(record)
        except Exception:
            write_errors += 1
        writes.append(time.perf_counter() - t0)

    def background(coro) -> None:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def one_call(i: int, number: str) -> None:
        nonlocal failed
        record = CallRecord(f"load-{run}-{i:07d}", "0" + number[3:], "15771000", number=number)
        background(write(store.call_started, record))
        t0 = time.perf_counter()
        got = await asyncio.gather(
            registry.lookup(number),
            store.count_calls_since(number, since, exclude_call=record.call_id),
            return_exceptions=True)
        if any(isinstance(g, BaseException) for g in got):
            failed += 1
        else:
            answered.append(time.perf_counter() - t0)
        pause = load.call_seconds / (load.checkpoints + 1)
        for k in range(load.checkpoints):
            await asyncio.sleep(pause)        # the caller listening to a prompt
            record.visit(f"node{k}")
            await write(store.call_progress, record)
        await asyncio.sleep(pause)
        record.end("completed")
        await write(store.record_call, record)

    n = int(load.rate * load.duration)
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    holder = None
    if path is not None:
        holder = loop.run_in_executor(None, hold_writes, path, load.hold_every, hold, stop)
    start = loop.time()
    cpu0 = time.process_time()
    for i in range(n):
        delay = start + i / load.rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        background(one_call(i, lookups[i % len(lookups)]))
    stop.set()
    while tasks:
        await asyncio.wait(set(tasks))
    if holder is not None:
        await holder
    wall = loop.time() - start
    cpu = time.process_time() - cpu0
    answered.sort()
    writes.sort()
    late = sum(1 for a in answered if a > budget) + failed
    print(f"  under load: {n:,} calls at {load.rate:g}/s for {load.duration:g} s, each: call_started, "
          f"registry + history lookups, {load.checkpoints} call_progress over {load.call_seconds:g} s, "
          f"record_call ({registered:,} numbers registered; registry {type(registry).__name__})")
    if holder is not None:
        print(f"    another process holds the write lock {hold:g} s every {load.hold_every:g} s")
    if CachedRegistry is not None and isinstance(registry, CachedRegistry):
        asked = registry.hits + registry.misses
        print(f"    registry cache: {registry.hits:,} of {asked:,} lookups answered from memory "
              f"({registry.hits / max(asked, 1):.0%})")
    print(f"    both lookups answered  p50 {_pct(answered, 0.5) * 1e3:.1f} ms   "
          f"p99 {_pct(answered, 0.99) * 1e3:.1f} ms   max {(answered[-1] if answered else 0) * 1e3:.1f} ms")
    print(f"    past the {budget:g} s budget or failed: {late:,} of {n:,} ({late / max(n, 1):.1%}); "
          f"failed {failed:,}")
    print(f"    writes: {len(writes):,}, p50 {_pct(writes, 0.5) * 1e3:.1f} ms   "
          f"p99 {_pct(writes, 0.99) * 1e3:.1f} ms, {write_errors:,} failed; "
          f"CPU of this process {cpu / wall:.0%} of one core over {wall:.1f} s")


# -- backends ---------------------------------------------------------------------------------

async def bench_sqlite(history: History, lookups: list[str], calls: Load | None) -> None:
    from ivr.store.sqlite import _COLUMNS, _ts, count_query

    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        path = Path(tmp) / "ivr.db"
        async with open_store(f"sqlite:///{path}"):
            pass                                    # schema, as the engine creates it
        t0 = time.perf_counter()
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        sql = (f"INSERT INTO calls ({', '.join(_COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(_COLUMNS))})")
        for chunk in history.chunks():
            db.execute("BEGIN")
            db.executemany(sql, sqlite_rows(chunk))
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        load = time.perf_counter() - t0
        size = path.stat().st_size
        print(f"SQLite {sqlite3.sqlite_version} ({path.name} in a temporary folder)")
        print(f"  loaded {history.rows:,} calls in {load:.1f} s ({history.rows / load:,.0f} rows/s), "
              f"file {size / 2**20:.0f} MiB; no ANALYZE (the engine does not run one)")
        since = history.now - WEEK
        heavy = Counter(lookups).most_common(1)[0][0]
        for unserved in (False, True):
            q = count_query(unserved_only=unserved, exclude_call=unserved)
            params = [heavy, _ts(since)] + (sorted(SERVED_OUTCOMES) + ["live-call"] if unserved else [])
            plan = db.execute("EXPLAIN QUERY PLAN " + q, params).fetchall()
            print(f"  EXPLAIN QUERY PLAN {q}")
            for row in plan:
                print(f"    {row[-1]}")
        q = count_query(unserved_only=False, exclude_call=False)
        direct = []
        cpu0 = time.process_time()
        for n in lookups:
            t0 = time.perf_counter()
            db.execute(q, (n, _ts(since))).fetchone()
            direct.append(time.perf_counter() - t0)
        cpu = (time.process_time() - cpu0) / len(lookups)
        direct.sort()
        print(f"  the query alone (sqlite3 in this thread, no store): "
              f"p50 {direct[len(direct) // 2] * 1e6:.0f} µs   "
              f"p99 {direct[int(0.99 * len(direct))] * 1e6:.0f} µs   CPU {cpu * 1e6:.0f} µs")
        db.close()
        async with open_store(f"sqlite:///{path}") as store:
            report("count_calls_since(number, now - 7 d)",
                   await measure(store, lookups, since, unserved=False, postmaster=None))
            report("count_calls_since(number, now - 7 d, unserved_only, exclude_call)",
                   await measure(store, lookups, since, unserved=True, postmaster=None))
            if calls is not None:
                await under_load(store, history, lookups, calls, path)


async def bench_postgres(history: History, lookups: list[str], calls: Load | None) -> None:
    import asyncpg

    from ivr.store.postgres import COLUMNS, count_query
    from ivr.testing.postgres import running_postgres

    with running_postgres() as server:
        url = await server.create_database("bench")
        async with open_store(url):
            pass
        conn = await asyncpg.connect(url)
        version = await conn.fetchval("SHOW server_version")
        t0 = time.perf_counter()
        for chunk in history.chunks():
            await conn.copy_records_to_table("calls", records=chunk, columns=COLUMNS)
        await conn.execute("VACUUM ANALYZE calls")
        load = time.perf_counter() - t0
        size = await conn.fetchval("SELECT pg_total_relation_size('calls')")
        print(f"PostgreSQL {version} (temporary server on 127.0.0.1:{server.port}, fsync off)")
        print(f"  loaded {history.rows:,} calls in {load:.1f} s ({history.rows / load:,.0f} rows/s) "
              f"with COPY, then VACUUM ANALYZE (autovacuum's job in service); "
              f"table + indexes {size / 2**20:.0f} MiB")
        since = history.now - WEEK
        heavy = Counter(lookups).most_common(1)[0][0]
        for unserved in (False, True):
            q = count_query(unserved_only=unserved, exclude_call=unserved)
            params = [heavy, since] + ([sorted(SERVED_OUTCOMES), "live-call"] if unserved else [])
            plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + q, *params)
            print(f"  EXPLAIN ANALYZE {q}   (the most frequent caller)")
            for row in plan:
                print(f"    {row[0]}")
        await conn.close()
        postmaster = server.postmaster_pid()
        async with open_store(url) as store:
            report("count_calls_since(number, now - 7 d)",
                   await measure(store, lookups, since, unserved=False, postmaster=postmaster))
            report("count_calls_since(number, now - 7 d, unserved_only, exclude_call)",
                   await measure(store, lookups, since, unserved=True, postmaster=postmaster))
            if calls is not None:
                await under_load(store, history, lookups, calls)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="calls in the history")
    ap.add_argument("--numbers", type=int, default=100_000, help="distinct caller numbers")
    ap.add_argument("--days", type=int, default=90, help="days the history spans")
    ap.add_argument("--lookups", type=int, default=20_000, help="lookups measured per variant")
    ap.add_argument("--only", choices=("sqlite", "postgres"), help="one backend only")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="calls/s of the engine-shaped load the lookups then run beside (0: none)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of that load")
    ap.add_argument("--checkpoints", type=int, default=3, help="progress notes per call")
    ap.add_argument("--call-seconds", type=float, default=6.0, help="how long a call lasts")
    ap.add_argument("--registered", type=float, default=0.1,
                    help="share of the numbers in the caller registry")
    ap.add_argument("--hold", default="0",
                    help="SQLite: seconds another process holds the write lock, every --hold-every s "
                         "(0: never); several, comma-separated: one load run each")
    ap.add_argument("--hold-every", type=float, default=2.0)
    args = ap.parse_args()
    calls = (Load(args.rate, args.duration, args.checkpoints, args.call_seconds, args.registered,
                  tuple(float(h) for h in args.hold.split(",")), args.hold_every)
             if args.rate > 0 else None)

    import structlog
    import logging

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    history = History(args.rows, args.numbers, args.days)
    lookups = history.lookups(args.lookups)
    print(f"history: {args.rows:,} calls, {args.numbers:,} numbers, {args.days} days; "
          f"{args.lookups:,} lookups per variant; {os.cpu_count()} cores, Python "
          f"{sys.version.split()[0]}")
    if args.only in (None, "sqlite"):
        await bench_sqlite(history, lookups, calls)
    if args.only in (None, "postgres"):
        from ivr.testing.postgres import unavailable_reason

        reason = unavailable_reason()
        if reason:
            print(f"PostgreSQL: not measured: {reason}")
        else:
            await bench_postgres(history, lookups, calls)


if __name__ == "__main__":
    asyncio.run(main())
