"""The store: call history and caller registry, the same behaviour on SQLite and PostgreSQL.

Tests taking ``store_url`` run once per backend (``[sqlite]``, ``[postgres]``); the PostgreSQL
runs use a real server started for the session (``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
import time
from collections.abc import AsyncIterator

import pytest

from ivr.call import CallRecord
from ivr.errors import ConfigError, StoreError
from ivr.store import Caller, StoreTimeouts, open_store
from ivr.store.base import QueueEvent
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
    rec.visit("welcome"); rec.visit("메인_메뉴"); rec.pressed("1"); rec.pressed("19400101")
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
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(3,)]
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
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(3,)]
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
        assert await db.fetchval("SELECT array_agg(version) FROM schema_version") == [3]
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
