"""The store: call history and caller registry, the same behaviour on SQLite and PostgreSQL.

Tests taking ``store_url`` run once per backend (``[sqlite]``, ``[postgres]``); the PostgreSQL
runs use a real server started for the session (``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import contextlib
import datetime as dt
import re
import sqlite3
import time
from collections.abc import AsyncIterator

import pytest

from ivr.call import CallRecord
from ivr.errors import ConfigError, StoreError
from ivr.store import Caller, StoreTimeouts, open_store
from ivr.store.base import QueueEvent
from ivr.store.sqlite import SCHEMA_VERSION
from ivr.testing.memory_store import MemoryStore
from ivr.testing.postgres import free_port

UTC = dt.timezone.utc
KST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2025, 3, 10, 9, 30, 0, 123456, tzinfo=UTC)
MOBILE = "+821012345678"
OTHER = "+82212345678"

# Small bounds so that "promptly" is measured in a test, not in minutes.
QUICK = StoreTimeouts(operation=0.5, connect=0.5, open=10, close=2)


def call(call_id: str, *, number: str | None = MOBILE, at: dt.datetime = NOW,
         outcome: str | None = "completed") -> CallRecord:
    rec = CallRecord(call_id, "01012345678" if number else "", "15771000", started_at=at,
                     number=number)
    if outcome is not None:
        rec.outcome = outcome
        rec.ended_at = at + dt.timedelta(seconds=40)
    return rec


# -- call records -------------------------------------------------------------------------------

async def test_a_recorded_call_is_read_back_after_reopening(store_url):
    rec = CallRecord("ch-1", "010-1234-5678", "15771000", flow="main", flow_version="abc",
                     language="ko", priority="high", reason="bypass: elderly", number=MOBILE)
    rec.visit("welcome")
    rec.visit("메인_메뉴")
    rec.pressed("1")
    rec.pressed("19400101")
    rec.end("queued", "general")
    async with open_store(store_url) as store:
        await store.record_call(rec)
    async with open_store(store_url) as store:
        (back,) = await store.recent_calls()
    assert back == rec
    assert back.started_at.tzinfo is not None


async def test_newest_calls_come_first(store_url):
    async with open_store(store_url) as store:
        for i in range(3):
            await store.record_call(call(f"c{i}", at=NOW + dt.timedelta(seconds=i)))
        assert [r.call_id for r in await store.recent_calls(2)] == ["c2", "c1"]


async def test_a_call_noted_at_its_start_and_recorded_at_its_end_is_one_call(store_url):
    rec = CallRecord("ch-7", "01012345678", "15771000", started_at=NOW, number=MOBILE)
    async with open_store(store_url) as store:
        await store.call_started(rec)
        (live,) = await store.recent_calls()
        assert live.outcome is None and live.ended_at is None
        assert await store.count_calls_since(MOBILE, NOW, unserved_only=True) == 1
        await store.call_started(rec)            # noted twice (re-adopted): still one call
        rec.visit("welcome")
        rec.end("agent_connected", "general")
        await store.record_call(rec)
        (done,) = await store.recent_calls()
        assert await store.count_calls_since(MOBILE, NOW) == 1
        assert await store.count_calls_since(MOBILE, NOW, unserved_only=True) == 0
    assert (done.outcome, done.nodes) == ("agent_connected", ["welcome"])


async def test_a_withheld_number_is_stored_as_unknown(store_url):
    async with open_store(store_url) as store:
        await store.record_call(call("anon", number=None))
        (back,) = await store.recent_calls()
    assert back.number is None and back.caller == ""


# -- repeat callers ----------------------------------------------------------------------------

async def test_calls_are_counted_from_the_start_of_the_window(store_url):
    since = NOW - dt.timedelta(days=7)
    async with open_store(store_url) as store:
        await store.record_call(call("too-old", at=since - dt.timedelta(microseconds=1)))
        await store.record_call(call("on-the-edge", at=since))
        await store.record_call(call("yesterday", at=NOW - dt.timedelta(days=1)))
        await store.record_call(call("now", at=NOW))
        await store.record_call(call("someone-else", number=OTHER, at=NOW))
        await store.record_call(call("withheld", number=None, at=NOW))
        assert await store.count_calls_since(MOBILE, since) == 3
        assert await store.count_calls_since(OTHER, since) == 1
        assert await store.count_calls_since("+821099999999", since) == 0
        assert await store.count_calls_since(MOBILE, NOW + dt.timedelta(microseconds=1)) == 0


async def test_the_window_is_the_same_instant_in_any_time_zone(store_url):
    # 18:00 in Seoul is 09:00 UTC: a call at 09:00:00.5 UTC is inside a window from 18:00 KST.
    at = dt.datetime(2025, 3, 10, 9, 0, 0, 500000, tzinfo=UTC)
    async with open_store(store_url) as store:
        await store.record_call(call("c1", at=at))
        assert await store.count_calls_since(MOBILE, dt.datetime(2025, 3, 10, 18, tzinfo=KST)) == 1
        assert await store.count_calls_since(MOBILE, dt.datetime(2025, 3, 10, 18, 0, 1, tzinfo=KST)) == 0
        (back,) = await store.recent_calls()
    assert back.started_at == at


async def test_only_calls_that_did_not_reach_an_agent_count_as_unserved(store_url):
    async with open_store(store_url) as store:
        await store.record_call(call("served", outcome="agent_connected"))
        await store.record_call(call("hung-up", outcome="caller_hangup"))
        await store.record_call(call("gave-up", outcome="retries_exhausted"))
        await store.record_call(call("in-progress", outcome=None))
        since = NOW - dt.timedelta(days=7)
        assert await store.count_calls_since(MOBILE, since) == 4
        assert await store.count_calls_since(MOBILE, since, unserved_only=True) == 3


async def test_the_call_being_routed_can_be_left_out_of_the_count(store_url):
    async with open_store(store_url) as store:
        await store.record_call(call("earlier", at=NOW - dt.timedelta(hours=1)))
        await store.call_started(call("this-one", outcome=None))
        since = NOW - dt.timedelta(days=7)
        assert await store.count_calls_since(MOBILE, since, exclude_call="this-one") == 1
        assert await store.count_calls_since(MOBILE, since, unserved_only=True,
                                             exclude_call="this-one") == 1
        assert await store.count_calls_since(MOBILE, since, exclude_call="not-a-call") == 2


# -- the caller registry -----------------------------------------------------------------------

async def test_a_registered_caller_is_found_by_number(store_url):
    elderly = Caller(MOBILE, birth_date=dt.date(1941, 2, 28), language="ko",
                     needs_assistance=True, name="홍길동")
    async with open_store(store_url) as store:
        assert await store.put_callers([elderly, Caller(OTHER, language="vi")]) == 2
        back = await store.get_caller(MOBILE)
        other = await store.get_caller(OTHER)
        assert await store.get_caller("+821099999999") is None
    assert back is not None and other is not None
    assert (back.number, back.birth_date, back.language, back.needs_assistance, back.name) == (
        MOBILE, dt.date(1941, 2, 28), "ko", True, "홍길동")
    assert back.updated_at is not None and back.updated_at.tzinfo is not None
    assert (other.birth_date, other.needs_assistance, other.name) == (None, False, None)


async def test_importing_the_registry_again_updates_callers_instead_of_adding_them(store_url):
    stamp = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with open_store(store_url) as store:
        await store.put_callers([Caller(MOBILE, birth_date=dt.date(1950, 1, 1), language="ko",
                                        needs_assistance=True)])
        await store.put_callers([Caller(MOBILE, birth_date=dt.date(1951, 1, 1), language="en",
                                        updated_at=stamp)])
        back = await store.get_caller(MOBILE)
    assert back == Caller(MOBILE, birth_date=dt.date(1951, 1, 1), language="en",
                          needs_assistance=False, updated_at=stamp)


async def test_a_large_registry_file_is_written_in_one_go(store_url):
    callers = [Caller(f"+8210{i:08d}", birth_date=dt.date(1940 + i % 60, 1 + i % 12, 1))
               for i in range(5000)]
    async with open_store(store_url) as store:
        assert await store.put_callers(callers) == 5000
        assert await store.put_callers([]) == 0
        back = await store.get_caller("+821000004999")
    assert back is not None and back.birth_date == dt.date(1940 + 4999 % 60, 1 + 4999 % 12, 1)


# -- the queue event log ------------------------------------------------------------------------

def event(seconds: float, kind: str, call_id: str | None = None, agent_id: str | None = None,
          queue: str | None = "general", detail: str = "") -> QueueEvent:
    return QueueEvent(NOW + dt.timedelta(seconds=seconds), kind, call_id, agent_id, queue, detail)


# Two calls and two agents.  The second batch holds an event of agent2 older than its event in
# the first batch (events reach the store late), and some events share an instant (they come
# back in the order recorded).
FIRST_BATCH = [
    event(0, "call.queued", "c1"),
    event(0, "agent.state", agent_id="agent1", queue=None, detail="available"),
    event(1.5, "call.offered", "c1", "agent1"),
    event(1.5, "agent.state", agent_id="agent1", queue=None, detail="ringing"),
    event(2, "call.queued", "c2", detail="priority high"),
    event(3, "agent.state", agent_id="agent2", queue=None, detail="available"),
]
SECOND_BATCH = [
    event(4.25, "call.connected", "c1", "agent1"),
    event(4.25, "agent.state", agent_id="agent1", queue=None, detail="on_call"),
    event(1, "agent.state", agent_id="agent2", queue=None, detail="paused: lunch"),
    event(30, "call.left", "c2", detail="caller hung up"),
    event(61.000001, "call.left", "c1", "agent1", detail="completed"),
]


async def check_the_event_log(store) -> None:
    await store.record_events(FIRST_BATCH)
    await store.record_events(SECOND_BATCH)
    c1 = await store.call_events("c1")
    assert [(e.kind, e.at) for e in c1] == [
        ("call.queued", NOW), ("call.offered", NOW + dt.timedelta(seconds=1.5)),
        ("call.connected", NOW + dt.timedelta(seconds=4.25)),
        ("call.left", NOW + dt.timedelta(seconds=61.000001))]
    assert c1[1] == FIRST_BATCH[2] and c1[3] == SECOND_BATCH[4]
    assert all(e.at.utcoffset() == dt.timedelta(0) for e in c1)
    assert [e.kind for e in await store.call_events("c2")] == ["call.queued", "call.left"]
    assert await store.call_events("c3") == []
    agent1 = await store.agent_events("agent1", NOW)
    assert [(e.kind, e.detail) for e in agent1] == [
        ("agent.state", "available"), ("call.offered", ""), ("agent.state", "ringing"),
        ("call.connected", ""), ("agent.state", "on_call"), ("call.left", "completed")]
    assert await store.agent_events("agent2", NOW) == [SECOND_BATCH[2], FIRST_BATCH[5]]
    assert await store.agent_events("agent3", NOW) == []


async def test_queue_events_come_back_oldest_first_per_call_and_per_agent(store_url):
    async with open_store(store_url) as store:
        await check_the_event_log(store)
    async with open_store(store_url) as store:          # and are still there after reopening
        assert len(await store.call_events("c1")) == 4


async def test_the_memory_store_keeps_queue_events_as_the_databases_do():
    await check_the_event_log(MemoryStore())


async def test_agent_events_start_at_since_and_stop_at_the_limit(store_url):
    async with open_store(store_url) as store:
        await store.record_events([event(i, "agent.state", agent_id="agent1", detail=str(i))
                                   for i in range(10)])
        await store.record_events([event(5, "agent.state", agent_id="agent9")])
        since = NOW + dt.timedelta(seconds=3)
        assert [e.detail for e in await store.agent_events("agent1", since)] == [
            "3", "4", "5", "6", "7", "8", "9"]
        assert [e.detail for e in await store.agent_events("agent1", since, limit=2)] == ["3", "4"]
        assert await store.agent_events("agent1", since, limit=0) == []
        # The same instant in another time zone; a naive datetime is taken as UTC.
        assert len(await store.agent_events("agent1", since.astimezone(KST))) == 7
        assert len(await store.agent_events("agent1", since.replace(tzinfo=None))) == 7
        assert await store.agent_events("agent1", NOW + dt.timedelta(seconds=9, microseconds=1)) == []


async def test_an_empty_batch_of_events_does_nothing(store_url):
    async with open_store(store_url, timeouts=QUICK) as store:
        await store.record_events([])
        async with writes_locked(store_url):     # it does not even wait for the database
            await store.record_events([])
        assert await store.call_events("c1") == []
        assert await store.agent_events("agent1", NOW - dt.timedelta(days=1)) == []


async def test_a_batch_of_events_is_stored_whole_or_not_at_all(store_url):
    broken = QueueEvent(NOW, None, "c1")         # type: ignore[arg-type]  # kind is required
    async with open_store(store_url) as store:
        with pytest.raises(StoreError, match="queue event"):
            await store.record_events([event(0, "call.queued", "c1"), broken])
        assert await store.call_events("c1") == []
        await store.record_events([event(0, "call.queued", "c1")])   # the store goes on
        assert len(await store.call_events("c1")) == 1


async def test_one_call_is_found_by_its_id(store_url):
    async with open_store(store_url) as store:
        await store.record_call(call("done"))
        await store.call_started(call("live", outcome=None))
        done, live = await store.get_call("done"), await store.get_call("live")
        assert await store.get_call("nope") is None
    assert done == call("done")
    assert live is not None and live.outcome is None and live.ended_at is None


# -- a database that is briefly unavailable ------------------------------------------------------

@contextlib.asynccontextmanager
async def writes_locked(url: str) -> AsyncIterator[None]:
    """Another client holds the database so that writes wait (SQLite: a write lock; PostgreSQL:
    an exclusive lock on the calls table)."""
    if url.startswith("sqlite"):
        other = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.rollback()
            other.close()
    else:
        import asyncpg

        other = await asyncpg.connect(url)
        try:
            async with other.transaction():
                await other.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
                yield
        finally:
            await other.close()


async def test_a_locked_database_fails_the_write_promptly_and_serves_again_after(store_url):
    async with open_store(store_url, timeouts=QUICK) as store:
        await store.record_call(call("before"))
        async with writes_locked(store_url):
            t0 = time.monotonic()
            with pytest.raises(StoreError) as err:
                await store.record_call(call("during"))
            assert time.monotonic() - t0 < 2.0
        await store.record_call(call("after"))
        assert sorted(r.call_id for r in await store.recent_calls()) == ["after", "before"]
    assert "01012345678" not in str(err.value) and MOBILE not in str(err.value)


async def test_the_caller_reads_are_answered_while_a_write_waits_on_a_lock(tmp_path):
    # The write holds the worker thread for SQLite's busy timeout (1.6 s here); the reads that
    # identify a caller must not wait behind it.
    url = f"sqlite:///{tmp_path}/ivr.db"
    async with open_store(url, timeouts=StoreTimeouts(operation=2.0, open=10, close=5)) as store:
        await store.put_callers([Caller(MOBILE, dt.date(1950, 3, 15))])
        await store.record_call(call("before"))
        async with writes_locked(url):
            write = asyncio.ensure_future(store.record_call(call("during")))
            await asyncio.sleep(0)          # the write is handed to the worker thread first
            t0 = time.monotonic()
            caller = await store.get_caller(MOBILE)
            count = await store.count_calls_since(MOBILE, NOW - dt.timedelta(days=1))
            waited = time.monotonic() - t0
            assert waited < 1.0, f"the reads waited {waited:.2f} s behind the write"
            assert not write.done()         # still waiting on the lock
        await write                         # and written once the lock is let go
        assert caller is not None and caller.birth_date == dt.date(1950, 3, 15)
        assert count == 1
        assert await store.count_calls_since(MOBILE, NOW - dt.timedelta(days=1)) == 2


async def test_a_file_store_s_reads_say_it_is_closed(tmp_path):
    async with open_store(f"sqlite:///{tmp_path}/ivr.db") as store:
        assert await store.get_caller(MOBILE) is None       # a reader connection opened
    with pytest.raises(StoreError, match="not open"):
        await store.get_caller(MOBILE)
    with pytest.raises(StoreError, match="not open"):
        await store.count_calls_since(MOBILE, NOW)


async def test_every_write_to_the_registry_changes_its_generation(store_url):
    async with open_store(store_url) as engine, open_store(store_url) as cli:
        before = await engine.registry_generation()
        await cli.put_callers([Caller(MOBILE)])           # another process: ivr callers import
        after = await engine.registry_generation()
        assert after != before
        await cli.put_callers([])                          # nothing written
        await engine.record_call(call("c1"))               # not the registry
        assert await engine.registry_generation() == after


async def test_the_history_survives_a_postgresql_restart_and_the_store_recovers(postgres_server,
                                                                                postgres_url):
    since = NOW - dt.timedelta(days=7)
    async with open_store(postgres_url, timeouts=QUICK) as store:
        await store.record_call(call("before"))
        await asyncio.to_thread(postgres_server.stop)
        try:
            for attempt in (store.count_calls_since(MOBILE, since),
                            store.record_call(call("while-down")),
                            store.get_caller(MOBILE)):
                t0 = time.monotonic()
                with pytest.raises(StoreError) as err:
                    await attempt
                assert time.monotonic() - t0 < 2.0
                assert postgres_url.rsplit("/", 1)[1] in str(err.value)
        finally:
            await asyncio.to_thread(postgres_server.start)
        # The same store object, no reopening: the pool reconnects by itself.
        assert await store.count_calls_since(MOBILE, since) == 1
        await store.record_call(call("after"))
        assert await store.count_calls_since(MOBILE, since) == 2


async def test_a_postgresql_server_that_stops_answering_never_holds_a_caller(postgres_server,
                                                                              postgres_url):
    since = NOW - dt.timedelta(days=7)
    async with open_store(postgres_url, timeouts=QUICK) as store:
        await store.record_call(call("before"))
        postgres_server.pause()
        try:
            for attempt in (store.count_calls_since(MOBILE, since),
                            store.record_call(call("while-frozen"))):
                t0 = time.monotonic()
                with pytest.raises(StoreError, match="did not answer"):
                    await attempt
                assert time.monotonic() - t0 < 1.5
        finally:
            postgres_server.resume()
        assert await store.count_calls_since(MOBILE, since) >= 1
        await store.record_call(call("after"))
        assert {r.call_id for r in await store.recent_calls()} >= {"before", "after"}


async def test_a_session_the_server_ends_mid_query_is_retried_on_a_fresh_one(postgres_url):
    import asyncpg

    waiting = ("SELECT pid FROM pg_stat_activity "
               "WHERE application_name = 'ivr' AND wait_event_type = 'Lock'")
    async with open_store(postgres_url, timeouts=StoreTimeouts(operation=5)) as store:
        other = await asyncpg.connect(postgres_url)
        try:
            lock = other.transaction()
            await lock.start()
            await other.execute("LOCK TABLE calls IN ACCESS EXCLUSIVE MODE")
            write = asyncio.create_task(store.record_call(call("during")))
            async with asyncio.timeout(3):
                while not await other.fetch(waiting):
                    await asyncio.sleep(0.01)
            await other.execute(f"SELECT pg_terminate_backend(pid) FROM ({waiting}) AS w")
            await lock.rollback()
            await write
        finally:
            await other.close()
        assert [r.call_id for r in await store.recent_calls()] == ["during"]


async def test_a_batch_of_events_cut_off_before_its_commit_is_stored_once_on_a_fresh_session(
        postgres_url):
    import asyncpg

    waiting = ("SELECT pid FROM pg_stat_activity "
               "WHERE application_name = 'ivr' AND wait_event_type = 'Lock'")
    batch = [event(0, "call.queued", "c1"), event(1, "call.offered", "c1", "agent1")]
    async with open_store(postgres_url, timeouts=StoreTimeouts(operation=5)) as store:
        other = await asyncpg.connect(postgres_url)
        try:
            lock = other.transaction()
            await lock.start()
            await other.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            write = asyncio.create_task(store.record_events(batch))
            async with asyncio.timeout(3):
                while not await other.fetch(waiting):
                    await asyncio.sleep(0.01)
            await other.execute(f"SELECT pg_terminate_backend(pid) FROM ({waiting}) AS w")
            await lock.rollback()
            await write
        finally:
            await other.close()
        assert await store.call_events("c1") == batch


async def test_two_engines_on_one_postgresql_see_each_others_calls(postgres_url):
    since = NOW - dt.timedelta(days=7)
    async with contextlib.AsyncExitStack() as stack:
        # Both start at once on an empty database: the schema is created exactly once.
        first, second = await asyncio.gather(stack.enter_async_context(open_store(postgres_url)),
                                             stack.enter_async_context(open_store(postgres_url)))
        await first.record_call(call("via-first", at=NOW - dt.timedelta(hours=2)))
        await second.call_started(call("via-second", outcome=None))
        assert await first.count_calls_since(MOBILE, since) == 2
        assert await second.count_calls_since(MOBILE, since, exclude_call="via-second") == 1
        await second.put_callers([Caller(MOBILE, language="zh")])
        caller = await first.get_caller(MOBILE)
    assert caller is not None and caller.language == "zh"


async def test_an_unreachable_postgresql_is_named_in_the_error_without_its_password():
    url = f"postgresql://ivr:s3cret@127.0.0.1:{free_port()}/ivr?max_size=4"
    t0 = time.monotonic()
    with pytest.raises(StoreError) as err:
        async with open_store(url, timeouts=QUICK):
            pass
    assert time.monotonic() - t0 < 5
    message = str(err.value)
    assert "postgresql://ivr:***@127.0.0.1:" in message
    assert "s3cret" not in message
    assert "refused" in message.lower() or "connect call failed" in message.lower()


@pytest.mark.parametrize("query", ["min_size=x", "min_size=5&max_size=2", "max_size=0"])
async def test_a_pool_size_that_makes_no_sense_is_a_config_error(query):
    with pytest.raises(ConfigError, match="store.url") as err:
        async with open_store(f"postgres://ivr:s3cret@db.example/ivr?{query}"):
            pass
    assert "s3cret" not in str(err.value)


# -- SQLite files --------------------------------------------------------------------------------

V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE calls (
    call_id TEXT PRIMARY KEY, caller TEXT NOT NULL, dialled TEXT NOT NULL,
    started_at TEXT NOT NULL, ended_at TEXT, flow TEXT, flow_version TEXT, language TEXT,
    nodes TEXT NOT NULL, digits TEXT NOT NULL, outcome TEXT, detail TEXT NOT NULL DEFAULT '',
    priority TEXT, reason TEXT
);
CREATE INDEX calls_started ON calls (started_at);
INSERT INTO schema_version VALUES (1);
"""


async def test_a_database_from_the_first_release_is_upgraded_and_keeps_its_calls(tmp_path):
    path = tmp_path / "ivr.db"
    old = sqlite3.connect(path)
    old.executescript(V1_SCHEMA)
    # The first release wrote isoformat(): no microseconds when they are zero.
    old.executemany(
        "INSERT INTO calls (call_id, caller, dialled, started_at, ended_at, nodes, digits, "
        "outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '')",
        [("old-1", "01012345678", "15771000", "2025-03-01T09:00:00+00:00",
          "2025-03-01T09:01:00.250000+00:00", '["welcome"]', '["1"]', "completed"),
         ("old-2", "", "15771000", "2025-03-02T09:00:00.500000+00:00", None, "[]", "[]", None)])
    old.commit()
    old.close()

    async with open_store(f"sqlite:///{path}") as store:
        calls = {r.call_id: r for r in await store.recent_calls()}
        await store.record_call(call("new", at=dt.datetime(2025, 3, 3, tzinfo=UTC)))
        assert await store.count_calls_since(MOBILE, dt.datetime(2025, 3, 1, tzinfo=UTC)) == 1
        await store.put_callers([Caller(MOBILE, language="ko")])
    assert set(calls) == {"old-1", "old-2"}
    assert calls["old-1"].started_at == dt.datetime(2025, 3, 1, 9, tzinfo=UTC)
    assert calls["old-1"].nodes == ["welcome"] and calls["old-1"].number is None
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    plan = db.execute("EXPLAIN QUERY PLAN SELECT count(*) FROM calls "
                      "WHERE number = ? AND started_at >= ?", (MOBILE, "x")).fetchall()
    assert "calls_number_started" in str(plan)
    # Opening again changes nothing.
    async with open_store(f"sqlite:///{path}") as store:
        assert len(await store.recent_calls()) == 3


# Version 2 as its release created a new database.
V2_SCHEMA = V1_SCHEMA + """
ALTER TABLE calls ADD COLUMN number TEXT;
CREATE INDEX calls_number_started ON calls (number, started_at);
CREATE TABLE callers (
    number TEXT PRIMARY KEY, birth_date TEXT, language TEXT,
    needs_assistance INTEGER NOT NULL DEFAULT 0, name TEXT, updated_at TEXT NOT NULL
);
UPDATE schema_version SET version = 2;
"""


async def test_a_version_2_database_gains_the_event_log_and_keeps_its_calls(tmp_path):
    path = tmp_path / "ivr.db"
    old = sqlite3.connect(path)
    old.executescript(V2_SCHEMA)
    old.execute(
        "INSERT INTO calls (call_id, caller, dialled, started_at, ended_at, nodes, digits, "
        "outcome, detail, number) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?)",
        ("old-1", "01012345678", "15771000", "2025-03-01T09:00:00.000000+00:00",
         "2025-03-01T09:01:00.250000+00:00", '["welcome"]', '["1"]', "agent_connected", MOBILE))
    old.execute("INSERT INTO callers VALUES (?, '1941-02-28', 'ko', 1, NULL, ?)",
                (MOBILE, "2025-02-01T00:00:00.000000+00:00"))
    old.commit()
    old.close()

    async with open_store(f"sqlite:///{path}") as store:
        (kept,) = await store.recent_calls()
        caller = await store.get_caller(MOBILE)
        assert await store.count_calls_since(MOBILE, dt.datetime(2025, 3, 1, tzinfo=UTC)) == 1
        await store.record_events([event(0, "call.queued", "old-1")])
        assert [e.kind for e in await store.call_events("old-1")] == ["call.queued"]
    assert (kept.call_id, kept.outcome, kept.number, kept.nodes) == (
        "old-1", "agent_connected", MOBILE, ["welcome"])
    assert kept.ended_at == dt.datetime(2025, 3, 1, 9, 1, 0, 250000, tzinfo=UTC)
    assert caller is not None and caller.birth_date == dt.date(1941, 2, 28)
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    # Stored in the same text shape as the calls, and both lookups use their index.
    assert db.execute("SELECT at FROM events").fetchall() == [("2025-03-10T09:30:00.123456+00:00",)]
    for sql, index in (("SELECT * FROM events WHERE call_id = ? ORDER BY at, id", "events_call_at"),
                       ("SELECT * FROM events WHERE agent_id = ? AND at >= ? ORDER BY at, id",
                        "events_agent_at")):
        plan = str(db.execute(f"EXPLAIN QUERY PLAN {sql}", ("x",) * sql.count("?")).fetchall())
        assert index in plan and "TEMP B-TREE" not in plan
    db.close()
    async with open_store(f"sqlite:///{path}") as store:      # opening again changes nothing
        assert len(await store.recent_calls()) == 1
        assert len(await store.call_events("old-1")) == 1


# The schema the first PostgreSQL release created (version 2).
PG_V2_SCHEMA = """
CREATE TABLE schema_version (version integer NOT NULL);
INSERT INTO schema_version VALUES (2);
CREATE TABLE calls (
    call_id text PRIMARY KEY, caller text NOT NULL, dialled text NOT NULL,
    started_at timestamptz NOT NULL, ended_at timestamptz, flow text, flow_version text,
    language text, nodes text[] NOT NULL, digits text[] NOT NULL, outcome text,
    detail text NOT NULL DEFAULT '', priority text, reason text, number text
);
CREATE INDEX calls_started ON calls (started_at);
CREATE INDEX calls_number_started ON calls (number, started_at);
CREATE TABLE callers (
    number text PRIMARY KEY, birth_date date, language text,
    needs_assistance boolean NOT NULL DEFAULT false, name text, updated_at timestamptz NOT NULL
);
"""


async def test_a_version_2_postgresql_database_gains_the_event_log_and_keeps_its_calls(
        postgres_url):
    import asyncpg

    old = await asyncpg.connect(postgres_url)
    try:
        await old.execute(PG_V2_SCHEMA)
        await old.execute("INSERT INTO calls (call_id, caller, dialled, started_at, nodes, digits, "
                          "outcome, number) VALUES ('old-1', '01012345678', '15771000', $1, "
                          "'{welcome}', '{1}', 'completed', $2)", NOW, MOBILE)
    finally:
        await old.close()
    async with contextlib.AsyncExitStack() as stack:
        # Two engines of the new release start at once: the database is migrated once.
        first, second = await asyncio.gather(stack.enter_async_context(open_store(postgres_url)),
                                             stack.enter_async_context(open_store(postgres_url)))
        (kept,) = await first.recent_calls()
        await first.record_events([event(0, "call.queued", "old-1")])
        assert [e.kind for e in await second.call_events("old-1")] == ["call.queued"]
    assert (kept.call_id, kept.started_at, kept.nodes, kept.number) == (
        "old-1", NOW, ["welcome"], MOBILE)
    db = await asyncpg.connect(postgres_url)
    try:
        assert await db.fetchval("SELECT array_agg(version) FROM schema_version") == [SCHEMA_VERSION]
        indexes = {r["indexname"] for r in await db.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'events'")}
    finally:
        await db.close()
    assert {"events_call_at", "events_agent_at"} <= indexes


async def test_a_new_postgresql_database_is_the_same_as_an_upgraded_one(postgres_server):
    import asyncpg

    async def schema(url: str) -> list[tuple[str, ...]]:
        db = await asyncpg.connect(url)
        try:
            columns = await db.fetch(
                "SELECT table_name, column_name, data_type, is_nullable, "
                "coalesce(column_default, '') AS d FROM information_schema.columns "
                "WHERE table_schema = 'public' ORDER BY table_name, column_name")
            indexes = await db.fetch("SELECT indexname, indexdef FROM pg_indexes "
                                     "WHERE schemaname = 'public' ORDER BY indexname")
            return [tuple(r) for r in columns] + [tuple(r) for r in indexes]
        finally:
            await db.close()

    new_url = await postgres_server.create_database("test_schema_new")
    old_url = await postgres_server.create_database("test_schema_old")
    try:
        old = await asyncpg.connect(old_url)
        try:
            await old.execute(PG_V2_SCHEMA)
        finally:
            await old.close()
        for url in (new_url, old_url):
            async with open_store(url):
                pass
        assert await schema(new_url) == await schema(old_url)
    finally:
        await postgres_server.drop_database("test_schema_new")
        await postgres_server.drop_database("test_schema_old")


async def test_a_database_from_a_newer_engine_is_refused(tmp_path):
    path = tmp_path / "ivr.db"
    async with open_store(f"sqlite:///{path}"):
        pass
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer"):
        async with open_store(f"sqlite:///{path}"):
            pass


async def test_unknown_store_scheme_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        async with open_store("mysql://ivr:s3cret@x/ivr"):
            pass
    assert "s3cret" not in str(err.value)


async def test_unwritable_store_is_a_store_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError):
        async with open_store(f"sqlite:///{tmp_path}/file/sub/ivr.db"):
            pass


async def test_a_closed_store_says_so():
    async with open_store("sqlite:///:memory:") as store:
        pass
    with pytest.raises(StoreError, match="not open"):
        await store.recent_calls()


# -- callback reservations -----------------------------------------------------------------------
# The same tests run on the memory store the service tests use and on both databases.

from ivr.callbacks.model import Reservation  # noqa: E402


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def reservation_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ivr.db"
    return request.getfixturevalue("postgres_url")


@contextlib.asynccontextmanager
async def reservations_in(url: str) -> AsyncIterator:
    if url == "memory":
        yield MemoryStore()
        return
    async with open_store(url) as store:
        yield store


def booking(number: str = MOBILE, queue: str = "general", *, arrived: float = 0,
            booked: float = 60, due: float | None = None, **fields) -> Reservation:
    """A reservation of a caller who joined the line ``arrived`` seconds after NOW."""
    now = NOW + dt.timedelta(seconds=booked)
    r = Reservation.new(number, queue, language=fields.pop("language", "ko"),
                        arrived_at=NOW + dt.timedelta(seconds=arrived), now=now,
                        due_at=NOW + dt.timedelta(seconds=due) if due is not None else None,
                        waited=fields.pop("waited", booked - arrived), call_id=f"ch-{arrived}")
    return dataclasses.replace(r, **fields) if fields else r


def later(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


async def test_a_booked_reservation_is_read_back_as_it_was_made(reservation_url):
    r = booking(priority="elderly", reason="bypass: elderly", language="ko",
                slot_end=later(3600), due=1800)
    async with reservations_in(reservation_url) as store:
        stored = await store.put_reservation(r)
        back = await store.get_reservation(r.id)
        assert await store.get_reservation("no-such-id") is None
        assert await store.list_reservations() == [r]
    assert stored == back == r
    assert back.due_at.utcoffset() == dt.timedelta(0) and back.status == "pending"
    assert (back.attempts, back.claimed_by, back.claim_until) == (0, None, None)


async def test_times_given_in_another_zone_are_read_back_in_utc(reservation_url):
    r = booking()
    local = dataclasses.replace(r, due_at=r.due_at.astimezone(KST),
                                arrived_at=r.arrived_at.astimezone(KST))
    async with reservations_in(reservation_url) as store:
        back = await store.put_reservation(local)
    assert back.due_at == r.due_at and back.due_at.utcoffset() == dt.timedelta(0)
    assert back.arrived_at == r.arrived_at and back.arrived_at.tzinfo is not None


async def test_booking_again_updates_the_open_reservation_and_keeps_the_place_in_line(
        reservation_url):
    first = booking(arrived=0, booked=300, language="ko")
    again = booking(arrived=900, booked=1000, due=4000, language="en", priority="repeat",
                    reason="repeat caller")
    async with reservations_in(reservation_url) as store:
        await store.put_reservation(first)
        merged = await store.put_reservation(again)
        assert await store.list_reservations() == [merged]
        other_queue = await store.put_reservation(booking(queue="sales", arrived=900))
        # A later booking that joined the line earlier (another engine's clock) moves it up.
        earlier = await store.put_reservation(booking(arrived=-60, booked=1100))
        assert len(await store.list_reservations()) == 2
    assert merged.id == first.id
    assert merged.arrived_at == first.arrived_at            # the earlier of the two
    assert merged.waited == first.waited == 300             # the longer wait
    assert (merged.language, merged.priority, merged.reason) == ("en", "repeat", "repeat caller")
    assert merged.due_at == again.due_at and merged.call_id == again.call_id
    assert merged.created_at == first.created_at and merged.updated_at == again.updated_at
    assert other_queue.id != first.id
    assert earlier.id == first.id and earlier.arrived_at == later(-60)


async def test_booking_again_keeps_the_claim_and_the_attempts_of_a_reservation_being_dialled(
        reservation_url):
    async with reservations_in(reservation_url) as store:
        r = await store.put_reservation(booking())
        await store.claim_reservations(later(100), "engine-a", 60, 10)
        await store.finish_attempt(r.id, "engine-a", result="no answer", at=later(110),
                                   next_due=later(700), final_status=None)
        await store.claim_reservations(later(700), "engine-a", 60, 10)
        merged = await store.put_reservation(booking(arrived=650, booked=705, language="en"))
    assert merged.id == r.id and merged.language == "en"
    assert (merged.status, merged.claimed_by, merged.attempts) == ("claimed", "engine-a", 1)
    assert merged.claim_until == later(760) and merged.last_result == "no answer"


async def test_a_finished_reservation_does_not_stop_a_new_booking(reservation_url):
    async with reservations_in(reservation_url) as store:
        old = await store.put_reservation(booking())
        assert await store.cancel_reservation(old.id)
        new = await store.put_reservation(booking(arrived=5000, booked=5100))
        assert new.id != old.id and new.arrived_at == later(5000)
        assert {r.status for r in await store.list_reservations()} == {"pending", "cancelled"}


async def test_bookings_made_at_once_leave_one_open_reservation(reservation_url):
    async with reservations_in(reservation_url) as store:
        got = await asyncio.gather(*(store.put_reservation(booking(arrived=i, booked=100 + i))
                                     for i in range(12)))
        (only,) = await store.list_reservations()
    assert {r.id for r in got} == {only.id}
    assert only.arrived_at == NOW


async def test_due_reservations_are_claimed_in_the_order_the_callers_joined_the_line(
        reservation_url):
    # Booked in another order than the callers joined the line; one is due only later.
    plan = {"+821000000003": 30, "+821000000001": 10, "+821000000005": 50,
            "+821000000002": 20, "+821000000004": 40}
    async with reservations_in(reservation_url) as store:
        for i, (number, arrived) in enumerate(plan.items()):
            due = 5000 if number.endswith("2") else None
            await store.put_reservation(booking(number, arrived=arrived, booked=100 + i, due=due))
        assert await store.claim_reservations(later(50), "engine-a", 60, 10) == []  # none due
        first = await store.claim_reservations(later(200), "engine-a", 6000, 2)
        second = await store.claim_reservations(later(200), "engine-a", 6000, 10)
        assert await store.claim_reservations(later(200), "engine-a", 60, 10) == []
        assert await store.claim_reservations(later(200), "engine-a", 60, 0) == []
        last = await store.claim_reservations(later(5000), "engine-b", 60, 10)
        claimed = await store.list_reservations("claimed")
    assert [r.number[-1] for r in first] == ["1", "3"]
    assert [r.number[-1] for r in second] == ["4", "5"]
    assert [r.number[-1] for r in last] == ["2"]
    assert all(r.status == "claimed" for r in first + second + last)
    assert {(r.claimed_by, r.claim_until) for r in first + second} == {("engine-a", later(6200))}
    assert (last[0].claimed_by, last[0].claim_until) == ("engine-b", later(5060))
    assert len(claimed) == 5


async def test_a_claim_that_lapsed_is_taken_by_another_instance(reservation_url):
    async with reservations_in(reservation_url) as store:
        r = await store.put_reservation(booking())
        (mine,) = await store.claim_reservations(later(100), "engine-a", 60, 10)
        assert await store.claim_reservations(later(160), "engine-b", 60, 10) == []  # not before
        (taken,) = await store.claim_reservations(later(161), "engine-b", 60, 10)
        # engine-a comes back from a long pause: it holds nothing any more.
        assert not await store.renew_claim(r.id, "engine-a", later(300))
        assert not await store.finish_attempt(r.id, "engine-a", result="connected to agent1",
                                              at=later(170), next_due=None, final_status="done")
        assert await store.get_reservation(r.id) == taken
        assert await store.release_claims("engine-a") == 0
        assert await store.finish_attempt(r.id, "engine-b", result="connected to agent2",
                                          at=later(190), next_due=None, final_status="done")
        done = await store.get_reservation(r.id)
    assert mine.id == taken.id == r.id
    assert (taken.claimed_by, taken.claim_until) == ("engine-b", later(221))
    assert (done.status, done.attempts, done.last_result, done.claimed_by) == (
        "done", 1, "connected to agent2", "engine-b")


async def test_an_attempt_without_answer_makes_the_reservation_due_again(reservation_url):
    async with reservations_in(reservation_url) as store:
        r = await store.put_reservation(booking())
        await store.claim_reservations(later(100), "engine-a", 60, 10)
        assert await store.finish_attempt(r.id, "engine-a", result="no answer", at=later(130),
                                          next_due=later(730), final_status=None)
        again = await store.get_reservation(r.id)
        assert await store.claim_reservations(later(729), "engine-a", 60, 10) == []
        (claimed,) = await store.claim_reservations(later(730), "engine-a", 60, 10)
        assert await store.finish_attempt(r.id, "engine-a", result="busy", at=later(735),
                                          next_due=None, final_status="failed")
        failed = await store.get_reservation(r.id)
        # Finished: no second note, nothing more to claim.
        assert not await store.finish_attempt(r.id, "engine-a", result="busy", at=later(740),
                                              next_due=later(1400), final_status=None)
        assert await store.claim_reservations(later(9999), "engine-a", 60, 10) == []
    assert (again.status, again.attempts, again.due_at) == ("pending", 1, later(730))
    assert (again.last_attempt_at, again.last_result) == (later(130), "no answer")
    assert (again.claimed_by, again.claim_until) == (None, None)
    assert claimed.attempts == 1
    assert (failed.status, failed.attempts, failed.last_result) == ("failed", 2, "busy")
    assert failed.claim_until is None and failed.arrived_at == r.arrived_at


async def test_an_attempt_must_say_what_comes_next(reservation_url):
    async with reservations_in(reservation_url) as store:
        r = await store.put_reservation(booking())
        await store.claim_reservations(later(100), "engine-a", 60, 10)
        for next_due, final in ((None, None), (None, "cancelled"), (later(200), "pending")):
            with pytest.raises(ValueError):
                await store.finish_attempt(r.id, "engine-a", result="x", at=later(110),
                                           next_due=next_due, final_status=final)
        assert (await store.get_reservation(r.id)).attempts == 0


async def test_a_claim_is_renewed_by_its_holder_and_released_at_shutdown(reservation_url):
    async with reservations_in(reservation_url) as store:
        a = await store.put_reservation(booking("+821000000001"))
        b = await store.put_reservation(booking("+821000000002", arrived=1))
        c = await store.put_reservation(booking("+821000000003", arrived=2))
        await store.claim_reservations(later(100), "engine-a", 60, 2)
        await store.claim_reservations(later(100), "engine-b", 200, 2)
        assert await store.renew_claim(a.id, "engine-a", later(400))
        assert await store.renew_claim(b.id, "engine-a", later(400))
        assert not await store.renew_claim(a.id, "engine-b", later(500))
        assert not await store.renew_claim(c.id, "engine-a", later(500))
        assert not await store.renew_claim("no-such-id", "engine-a", later(500))
        # Renewed: not taken when the first lease would have lapsed.
        assert await store.claim_reservations(later(200), "engine-c", 60, 10) == []
        assert await store.release_claims("engine-a") == 2
        assert await store.release_claims("engine-a") == 0
        back = {r.id: r for r in await store.list_reservations()}
        retaken = await store.claim_reservations(later(201), "engine-c", 60, 10)
    assert (back[a.id].status, back[a.id].claimed_by, back[a.id].claim_until) == (
        "pending", None, None)
    assert back[b.id].status == "pending"
    assert (back[c.id].status, back[c.id].claimed_by) == ("claimed", "engine-b")
    assert [r.id for r in retaken] == [a.id, b.id]          # c is engine-b's until 300


async def test_the_engine_holding_the_lease_releases_every_other_owner_s_claims(reservation_url):
    """A standby that took over is the only one dialling: the dead engine's claims go back to
    pending at once, its own are kept."""
    async with reservations_in(reservation_url) as store:
        a = await store.put_reservation(booking("+821000000001"))
        b = await store.put_reservation(booking("+821000000002", arrived=1))
        c = await store.put_reservation(booking("+821000000003", arrived=2))
        await store.claim_reservations(later(100), "engine-a", 600, 2)
        await store.claim_reservations(later(100), "engine-b", 600, 1)
        assert await store.release_claims("engine-b", others=True) == 2
        assert await store.release_claims("engine-b", others=True) == 0
        back = {r.id: r for r in await store.list_reservations()}
    assert [back[x.id].status for x in (a, b)] == ["pending", "pending"]
    assert (back[c.id].status, back[c.id].claimed_by) == ("claimed", "engine-b")


async def test_cancelling_a_reservation(reservation_url):
    async with reservations_in(reservation_url) as store:
        pending = await store.put_reservation(booking("+821000000001"))
        dialled = await store.put_reservation(booking("+821000000002", arrived=1))
        await store.claim_reservations(later(100), "engine-a", 60, 10)
        await store.cancel_reservation(pending.id)   # claimed by then; still cancellable
        assert await store.cancel_reservation(dialled.id)
        assert not await store.cancel_reservation(dialled.id)        # already cancelled
        assert not await store.cancel_reservation("no-such-id")
        # The engine dialling it learns it was cancelled: its claim is gone.
        assert not await store.renew_claim(dialled.id, "engine-a", later(300))
        assert not await store.finish_attempt(dialled.id, "engine-a", result="no answer",
                                              at=later(120), next_due=later(700),
                                              final_status=None)
        gone = await store.get_reservation(dialled.id)
        done = await store.put_reservation(booking("+821000000003", arrived=2))
        await store.claim_reservations(later(100), "engine-a", 60, 10)
        await store.finish_attempt(done.id, "engine-a", result="connected to agent1",
                                   at=later(150), next_due=None, final_status="done")
        assert not await store.cancel_reservation(done.id)            # final: stays done
        assert (await store.get_reservation(done.id)).status == "done"
    assert (gone.status, gone.attempts, gone.claim_until) == ("cancelled", 0, None)


async def test_cancelling_every_open_reservation_of_a_number(reservation_url):
    async with reservations_in(reservation_url) as store:
        for queue in ("general", "sales", "support"):
            await store.put_reservation(booking(queue=queue))
        await store.put_reservation(booking(OTHER))
        assert await store.cancel_reservations_for(MOBILE, "sales") == 1
        assert await store.cancel_reservations_for(MOBILE, "sales") == 0
        assert await store.cancel_reservations_for(MOBILE) == 2
        assert await store.cancel_reservations_for("+821099999999") == 0
        open_ = await store.list_reservations("pending")
    assert [r.number for r in open_] == [OTHER]


async def test_reservations_are_listed_newest_first_by_status(reservation_url):
    async with reservations_in(reservation_url) as store:
        made = [await store.put_reservation(booking(f"+8210000000{i:02d}", arrived=i, booked=100 + i))
                for i in range(6)]
        await store.cancel_reservation(made[2].id)
        listed = await store.list_reservations()
        assert [r.id for r in await store.list_reservations(limit=2)] == [made[5].id, made[4].id]
        assert [r.id for r in await store.list_reservations("cancelled")] == [made[2].id]
        assert await store.list_reservations("failed") == []
        with pytest.raises(ValueError, match="status"):
            await store.list_reservations("open")
    assert [r.id for r in listed] == [r.id for r in reversed(made)]


async def test_two_engines_on_one_postgresql_claim_each_reservation_exactly_once(postgres_url):
    total = 200
    async with contextlib.AsyncExitStack() as stack:
        first, second = await asyncio.gather(stack.enter_async_context(open_store(postgres_url)),
                                             stack.enter_async_context(open_store(postgres_url)))
        for i in range(total):
            await first.put_reservation(booking(f"+8210{i:08d}", arrived=i % 37, booked=100))
        taken: dict[str, list[str]] = {}

        async def claim(store, owner: str) -> int:
            rounds = 0
            while got := await store.claim_reservations(later(200), owner, 60, 7):
                rounds += 1
                for r in got:
                    taken.setdefault(r.id, []).append(owner)
                    assert r.claimed_by == owner
                await asyncio.sleep(0)
            return rounds

        rounds = await asyncio.gather(*(claim(store, f"{name}-{n}")
                                        for name, store in (("first", first), ("second", second))
                                        for n in range(3)))
        claimed = await second.list_reservations("claimed", limit=1000)
    assert len(taken) == total
    assert all(len(owners) == 1 for owners in taken.values())
    assert {r.id: r.claimed_by for r in claimed} == {i: o[0] for i, o in taken.items()}
    assert sum(rounds) >= total // 7 and sum(1 for n in rounds if n) > 1   # they did share


# What version 6 added, taken away again (both databases): a database as version 5 left it.
# What version 8 added (the callers' wellness campaign) and version 7 (wellness calls): gone
# with their column and tables.
# What version 10 added (calls' channel and chat, video consultations).
UNDO_V10 = ("DROP TABLE video_bookings", "ALTER TABLE calls DROP COLUMN channel",
            "ALTER TABLE calls DROP COLUMN chat", "ALTER TABLE calls DROP COLUMN chat_dropped")
UNDO_V8 = (*UNDO_V10, "ALTER TABLE callers DROP COLUMN wellness")
UNDO_V7 = (*UNDO_V8, "DROP TABLE wellness_visits", "DROP TABLE wellness_attempts",
           "DROP TABLE wellness_people")
UNDO_V6 = (
    *UNDO_V7,
    "DROP TABLE audit", "DROP INDEX calls_started_id", "DROP INDEX reservations_status_updated",
    "DROP INDEX reservations_created", "CREATE INDEX calls_started ON calls (started_at)",
    "ALTER TABLE calls DROP COLUMN exits", "ALTER TABLE calls DROP COLUMN queue",
    "ALTER TABLE calls DROP COLUMN waited",
)


async def test_a_version_3_database_gains_reservations_and_keeps_its_events(tmp_path):
    path = tmp_path / "ivr.db"
    async with open_store(f"sqlite:///{path}") as store:
        await store.record_events([event(0, "call.queued", "old-1")])
    db = sqlite3.connect(path)      # back to version 3, as its release left it
    for statement in UNDO_V6:
        db.execute(statement)
    db.execute("DROP TABLE reservations")
    for index in V5_INDEXES:
        db.execute(f"DROP INDEX {index}")
    db.execute("UPDATE schema_version SET version = 3")
    db.commit()
    db.close()
    async with open_store(f"sqlite:///{path}") as store:
        assert len(await store.call_events("old-1")) == 1
        r = await store.put_reservation(booking())
        assert await store.get_reservation(r.id) == r
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        plan = str(db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM reservations WHERE status = 'pending' "
            "AND due_at <= ?", ("x",)).fetchall())
        assert "reservations_status_due" in plan
        # The database itself refuses a second open reservation of a number in a queue.
        columns = ("id, number, queue, language, arrived_at, created_at, due_at, status, "
                   "updated_at")
        row = ("other", r.number, r.queue, "ko", "t", "t", "t", "pending", "t")
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            db.execute(f"INSERT INTO reservations ({columns}) VALUES (?,?,?,?,?,?,?,?,?)", row)
        db.execute(f"INSERT INTO reservations ({columns}) VALUES (?,?,?,?,?,?,?,?,?)",
                   row[:7] + ("done", "t"))
    finally:
        db.close()


async def test_a_version_3_postgresql_database_gains_reservations(postgres_url):
    import asyncpg

    async with open_store(postgres_url):
        pass
    db = await asyncpg.connect(postgres_url)
    try:
        await db.execute("; ".join(UNDO_V6) + "; DROP TABLE reservations; "
                         "UPDATE schema_version SET version = 3; "
                         + "; ".join(f"DROP INDEX {index}" for index in V5_INDEXES))
    finally:
        await db.close()
    async with open_store(postgres_url) as store:
        r = await store.put_reservation(booking())
    db = await asyncpg.connect(postgres_url)
    try:
        assert await db.fetchval("SELECT array_agg(version) FROM schema_version") == [SCHEMA_VERSION]
        indexes = {r["indexname"]: r["indexdef"] for r in await db.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'reservations'")}
        with pytest.raises(asyncpg.UniqueViolationError):
            await db.execute("INSERT INTO reservations (id, number, queue, language, arrived_at, "
                             "created_at, due_at, status, updated_at) "
                             "VALUES ('other', $1, $2, 'ko', now(), now(), now(), 'claimed', now())",
                             r.number, r.queue)
    finally:
        await db.close()
    assert "reservations_status_due" in indexes
    assert "UNIQUE" in indexes["reservations_open"] and "WHERE" in indexes["reservations_open"]


# -- version 5: what a restarting engine reads, indexed ----------------------------------------

V5_INDEXES = ("events_at", "events_agent_state", "events_agent_pause")


def restart_queries(db: sqlite3.Connection) -> dict[str, str]:
    from ivr.store import statements

    return {name: str(db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
            for name, sql, params in (("latest", statements.LATEST_AGENT_EVENTS, ()),
                                      ("line", statements.LINE_EVENTS, ("x",)))}


async def test_a_version_4_database_gains_the_indexes_a_restart_reads_and_keeps_its_events(tmp_path):
    path = tmp_path / "ivr.db"
    async with open_store(f"sqlite:///{path}") as store:
        await store.record_events(FIRST_BATCH + SECOND_BATCH)
    db = sqlite3.connect(path)      # back to version 4, as its release left it
    for statement in UNDO_V6:
        db.execute(statement)
    for index in V5_INDEXES:
        db.execute(f"DROP INDEX {index}")
    db.execute("UPDATE schema_version SET version = 4")
    db.commit()
    plans = restart_queries(db)
    assert "SCAN events" in plans["line"]          # without the index: the whole log is read
    db.close()
    async with open_store(f"sqlite:///{path}") as store:
        # agent2's latest is "available" at 3 s (its "paused: lunch" at 1 s reached the store late)
        assert [e.detail for e in await store.latest_agent_events()] == ["available", "on_call"]
        assert len(await store.line_events(NOW)) == 5
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        after = restart_queries(db)
        for name, plan in after.items():     # no query reads the log, only its indexes
            assert not re.search(r"SCAN (?!agents|latest|found)", plan), (name, plan)
        assert "events_agent_state" in after["latest"] and "events_agent_pause" in after["latest"]
        assert "events_at" in after["line"]
    finally:
        db.close()


async def test_a_version_4_postgresql_database_gains_the_indexes_a_restart_reads(postgres_url):
    import asyncpg

    async with open_store(postgres_url) as store:
        await store.record_events(FIRST_BATCH)
    db = await asyncpg.connect(postgres_url)
    try:
        await db.execute("; ".join(UNDO_V6) + "; UPDATE schema_version SET version = 4; "
                         + "; ".join(f"DROP INDEX {index}" for index in V5_INDEXES))
    finally:
        await db.close()
    async with open_store(postgres_url) as store:
        assert [e.detail for e in await store.latest_agent_events()] == ["ringing", "available"]
    db = await asyncpg.connect(postgres_url)
    try:
        assert await db.fetchval("SELECT array_agg(version) FROM schema_version") == [SCHEMA_VERSION]
        indexes = {r["indexname"] for r in await db.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'events'")}
    finally:
        await db.close()
    assert set(V5_INDEXES) <= indexes


async def check_what_a_restart_reads(store) -> None:
    await store.record_events(FIRST_BATCH)
    await store.record_events(SECOND_BATCH)
    await store.record_events([
        event(70, "agent.pause_after", "c9", "agent2", detail="lunch"),   # before its last state
        event(80, "agent.state", "c9", "agent2", detail="on_call"),
        event(80, "agent.pause_after", "c9", "agent2", detail="end of shift"),   # same instant
        event(90, "agent.pause_after", "c9", "agent2", detail="called off"),
        event(95, "call.offered", "c9", "agent2"),
    ])
    latest = await store.latest_agent_events()
    assert [(e.agent_id, e.kind, e.detail) for e in latest] == [
        ("agent1", "agent.state", "on_call"),
        ("agent2", "agent.state", "on_call"),
        ("agent2", "agent.pause_after", "end of shift"),
        ("agent2", "agent.pause_after", "called off"),
    ]
    line = await store.line_events(NOW + dt.timedelta(seconds=1.5))
    assert [(e.kind, e.call_id) for e in line] == [
        ("call.queued", "c2"), ("call.connected", "c1"), ("call.left", "c2"), ("call.left", "c1")]
    assert await store.line_events(NOW + dt.timedelta(seconds=100)) == []


async def test_a_restart_reads_each_agents_latest_state_and_the_line_since_a_moment(store_url):
    async with open_store(store_url) as store:
        await check_what_a_restart_reads(store)


async def test_the_memory_store_reads_what_a_restart_needs_as_the_databases_do():
    await check_what_a_restart_reads(MemoryStore())


async def test_calls_written_at_once_share_transactions_and_a_refused_row_fails_alone(tmp_path):
    # SQLite writes the calls' starts, progress and records that queue up meanwhile in one
    # transaction (group commit); a row the database refuses must not take the others with it.
    url = f"sqlite:///{tmp_path}/ivr.db"
    async with open_store(url, timeouts=StoreTimeouts(operation=5.0, open=10, close=5)) as store:
        commits = 0
        real = store._flush_call_writes

        def counting(loop):
            nonlocal commits
            commits += 1
            real(loop)

        store._flush_call_writes = counting
        records = [call(f"c{i}") for i in range(200)]
        bad = store._write_call("cannot write the bad row", "INSERT INTO calls (call_id, caller) VALUES (?, NULL)",
                                ("bad",))
        results = await asyncio.gather(*(store.record_call(r) for r in records[:100]), bad,
                                       *(store.record_call(r) for r in records[100:]),
                                       return_exceptions=True)
        assert [type(r).__name__ for r in results if r is not None] == ["StoreError"]
        assert "NOT NULL" in str(results[100])
        assert len(await store.recent_calls(limit=500)) == 200
        assert commits < 50, f"{commits} transactions for 201 writes"
