"""The store's reads for the people who run the center: calls by query and by page, streams of
calls and events for reports and exports, the audit log and the reservation figures.

Every test runs on the memory store the service tests use and on both databases (PostgreSQL:
a real server started for the session, ``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator

import pytest

from ivr.call import CallRecord, NodeExit
from ivr.callbacks.model import Reservation
from ivr.store import Store, open_store
from ivr.store.base import AuditEntry, CallQuery, QueueEvent
from ivr.store.sqlite import SCHEMA_VERSION
from ivr.testing.memory_store import MemoryStore

UTC = dt.timezone.utc
KST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2025, 3, 10, 9, 30, 0, 123456, tzinfo=UTC)
MOBILE = "+821012345678"
OTHER = "+82212345678"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ivr.db"
    return request.getfixturevalue("postgres_url")


@contextlib.asynccontextmanager
async def store_at(url: str) -> AsyncIterator[Store]:
    if url == "memory":
        yield MemoryStore()
        return
    async with open_store(url) as store:
        yield store


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def call(call_id: str, seconds: float = 0, *, number: str | None = MOBILE, flow: str = "main",
         outcome: str = "completed") -> CallRecord:
    rec = CallRecord(call_id, "01012345678" if number else "", "15771000", started_at=at(seconds),
                     flow=flow, number=number)
    rec.visit("welcome")
    rec.exits.append(NodeExit.NEXT)
    rec.end(outcome)
    rec.ended_at = at(seconds + 40)
    return rec


async def ids(store: Store, query: CallQuery, **kw) -> list[str]:
    return [r.call_id for r in await store.find_calls(query, **kw)]


# -- how each node was left, the queue and the wait ---------------------------------------------

async def test_a_call_s_exits_queue_and_wait_are_read_back(any_url):
    rec = CallRecord("ch-1", "01012345678", "15771000", started_at=NOW, flow="main",
                     number=MOBILE)
    async with store_at(any_url) as store:
        await store.call_started(rec)
        for node, left in (("welcome", NodeExit.NEXT), ("메인_메뉴", NodeExit.KEY)):
            rec.visit(node)
            rec.exits.append(left)
        rec.pressed("1")
        await store.call_progress(rec)
        live = await store.get_call("ch-1")
        assert live is not None
        so_far = (list(live.nodes), list(live.exits))          # as they were then
        rec.visit("to_agents")
        rec.exits.append(NodeExit.QUEUE)
        rec.queue, rec.waited = "general", 42.5
        rec.end("agent_connected", "agent1")
        await store.record_call(rec)
        back = await store.get_call("ch-1")
    assert so_far == (["welcome", "메인_메뉴"], ["next", "key"])
    assert back == rec
    assert back is not None and (back.exits, back.queue, back.waited) == (
        ["next", "key", "queue"], "general", 42.5)


# -- calls by query -------------------------------------------------------------------------------

async def test_calls_are_found_by_time_flow_outcome_and_number_newest_first(any_url):
    async with store_at(any_url) as store:
        for rec in (call("a", 0), call("b", 10, flow="sales"), call("c", 20, outcome="abandoned"),
                    call("d", 30, number=OTHER), call("e", 40, number=None),
                    call("f", 50, flow="sales", outcome="abandoned")):
            await store.record_call(rec)
        assert await ids(store, CallQuery()) == ["f", "e", "d", "c", "b", "a"]
        assert await ids(store, CallQuery(), limit=2) == ["f", "e"]
        assert await ids(store, CallQuery(), limit=0) == []
        # since inclusive, until exclusive, the same instant in any zone
        assert await ids(store, CallQuery(since=at(10), until=at(40))) == ["d", "c", "b"]
        assert await ids(store, CallQuery(since=at(10).astimezone(KST),
                                          until=at(40).astimezone(KST))) == ["d", "c", "b"]
        assert await ids(store, CallQuery(flow="sales")) == ["f", "b"]
        assert await ids(store, CallQuery(outcome="abandoned")) == ["f", "c"]
        assert await ids(store, CallQuery(number=MOBILE)) == ["f", "c", "b", "a"]
        assert await ids(store, CallQuery(number=OTHER)) == ["d"]
        assert await ids(store, CallQuery(flow="sales", outcome="abandoned", number=MOBILE,
                                          since=at(0), until=at(60))) == ["f"]
        assert await ids(store, CallQuery(flow="sales", outcome="completed")) == ["b"]
        assert await ids(store, CallQuery(flow="nope")) == []


async def test_pages_of_calls_miss_none_and_repeat_none_while_calls_arrive(any_url):
    async with store_at(any_url) as store:
        # 23 calls, several starting at one instant (the call id breaks the tie).
        for i in range(23):
            await store.record_call(call(f"c{i:02d}", i // 3, number=MOBILE if i % 2 else OTHER))
        seen: list[str] = []
        after = None
        arrived = 0
        while True:
            page = await store.find_calls(CallQuery(), limit=4, after=after)
            seen.extend(r.call_id for r in page)
            if len(page) < 4:
                break
            after = (page[-1].started_at, page[-1].call_id)
            arrived += 1              # a new call between pages: newer than any page read
            await store.record_call(call(f"new{arrived}", 100 + arrived, number=None))
        assert seen == sorted((f"c{i:02d}" for i in range(23)),
                              key=lambda c: (int(c[1:]) // 3, c), reverse=True)
        # Pages of one caller's calls, by the number's index.
        mine: list[str] = []
        after = None
        while page := await store.find_calls(CallQuery(number=MOBILE), limit=5, after=after):
            mine.extend(r.call_id for r in page)
            after = (page[-1].started_at, page[-1].call_id)
        assert mine == [c for c in seen if int(c[1:]) % 2]


# -- streams for reports and exports ---------------------------------------------------------------

async def collect(batches: AsyncIterator[list]) -> list[list]:
    return [b async for b in batches]


async def test_calls_stream_oldest_first_in_batches_within_the_range(any_url):
    async with store_at(any_url) as store:
        await store.record_call(call("before", -0.000001))
        for i in range(11):      # pairs of calls at one instant, some across batch edges
            await store.record_call(call(f"c{i:02d}", i // 2, flow="sales" if i % 3 == 0 else "main"))
        await store.record_call(call("at-until", 6))
        batches = await collect(store.iter_calls(at(0), at(6), batch=4))
        assert [len(b) for b in batches] == [4, 4, 3]
        assert [r.call_id for b in batches for r in b] == [f"c{i:02d}" for i in range(11)]
        assert batches[0][0] == call("c00", 0, flow="sales")
        exact = await collect(store.iter_calls(at(0), at(6), batch=11))   # a full last batch
        assert [len(b) for b in exact] == [11]
        sales = await collect(store.iter_calls(at(0), at(6), flow="sales", batch=2))
        assert [[r.call_id for r in b] for b in sales] == [["c00", "c03"], ["c06", "c09"]]
        assert await collect(store.iter_calls(at(100), at(200))) == []
        with pytest.raises(ValueError, match="batch"):
            await collect(store.iter_calls(at(0), at(6), batch=0))


def event(seconds: float, kind: str, call_id: str | None = None, agent_id: str | None = None,
          detail: str = "") -> QueueEvent:
    return QueueEvent(at(seconds), kind, call_id, agent_id, "general", detail)


async def test_events_stream_oldest_first_in_batches_in_the_order_recorded(any_url):
    async with store_at(any_url) as store:
        await store.record_events([event(i // 3, "agent.state", agent_id="agent1", detail=str(i))
                                   for i in range(10)])
        await store.record_events([event(1, "call.queued", "c1", detail="late"),
                                   event(-1, "call.queued", "c0"), event(4, "call.left", "c1")])
        batches = await collect(store.iter_events(at(0), at(4), batch=3))
        got = [e.detail for b in batches for e in b]
        assert got == ["0", "1", "2", "3", "4", "5", "late", "6", "7", "8", "9"]
        assert [len(b) for b in batches] == [3, 3, 3, 2]
        assert all(e.at.utcoffset() == dt.timedelta(0) for b in batches for e in b)
        assert await collect(store.iter_events(at(5), at(9))) == []


async def test_the_events_of_a_batch_of_calls_come_in_one_answer(any_url):
    async with store_at(any_url) as store:
        await store.record_events([event(2, "call.left", "c1"), event(0, "call.queued", "c1"),
                                   event(1, "call.queued", "c2"), event(1, "call.offered", "c1"),
                                   event(1, "call.connected", "c1"), event(0, "agent.state",
                                                                           agent_id="agent1")])
        found = await store.events_for_calls(["c1", "c2", "c3"])
        assert await store.events_for_calls([]) == {}
    assert list(found) == ["c1", "c2", "c3"]
    assert [e.kind for e in found["c1"]] == ["call.queued", "call.offered", "call.connected",
                                             "call.left"]
    assert [e.kind for e in found["c2"]] == ["call.queued"] and found["c3"] == []


# -- the supervisors' audit log ---------------------------------------------------------------------

async def test_the_audit_log_reads_back_newest_first_from_a_moment(any_url):
    entries = [AuditEntry(at(0), "kim", "supervisor", "login", source="10.0.0.7"),
               AuditEntry(at(5), "kim", "supervisor", "agent.pause", "agent1", "lunch", "10.0.0.7"),
               AuditEntry(at(5), "lee", "viewer", "caller.view", "ch-9"),
               AuditEntry(at(9).astimezone(KST), "park", "admin", "login_refused",
                          detail="bad password")]
    async with store_at(any_url) as store:
        for e in entries:
            await store.record_audit(e)
        newest = await store.audit_entries(at(0))
        assert [(e.user, e.action) for e in await store.audit_entries(at(5), limit=2)] == [
            ("park", "login_refused"), ("lee", "caller.view")]
        assert await store.audit_entries(at(10)) == []
        assert await store.audit_entries(at(0), limit=0) == []
    assert newest == [dataclasses.replace(entries[3], at=at(9)), entries[2], entries[1], entries[0]]
    assert newest[0].at.utcoffset() == dt.timedelta(0)


# -- the reservation figures and pages --------------------------------------------------------------

def booking(n: int, *, booked: float, due: float | None = None, **fields) -> Reservation:
    r = Reservation.new(f"+8210000000{n:02d}", "general", language="ko", arrived_at=at(0),
                        now=at(booked), due_at=at(due) if due is not None else None)
    return dataclasses.replace(r, **fields) if fields else r


async def test_the_wallboard_counts_reservations_by_what_is_to_be_done(any_url):
    async with store_at(any_url) as store:
        await store.put_reservation(booking(1, booked=0, due=100))          # pending
        await store.put_reservation(booking(2, booked=0, due=100))          # pending
        await store.put_reservation(booking(3, booked=0, due=50))           # due at 60
        await store.put_reservation(booking(4, booked=0))                   # due: at once
        await store.put_reservation(booking(5, booked=0, status="claimed", claimed_by="e1",
                                            claim_until=at(300)))
        await store.put_reservation(booking(6, booked=0, status="failed", updated_at=at(-10)))
        await store.put_reservation(booking(7, booked=0, status="failed", updated_at=at(10)))
        await store.put_reservation(booking(8, booked=0, status="done", updated_at=at(20)))
        await store.put_reservation(booking(9, booked=0, status="done", updated_at=at(0)))
        await store.put_reservation(booking(10, booked=0, status="cancelled", updated_at=at(5)))
        counts = await store.reservation_counts(at(60), at(0))
        assert await store.reservation_counts(at(100), at(30)) == {
            "pending": 0, "due": 4, "in_progress": 1, "failed": 0, "done": 0}
    assert counts == {"pending": 2, "due": 2, "in_progress": 1, "failed": 1, "done": 2}


async def test_pages_of_reservations_miss_none_and_repeat_none_while_bookings_arrive(any_url):
    async with store_at(any_url) as store:
        made = [await store.put_reservation(booking(i, booked=i // 2)) for i in range(9)]
        await store.cancel_reservation(made[4].id)
        seen: list[str] = []
        after = None
        while page := await store.list_reservations(limit=2, after=after):
            seen.extend(r.id for r in page)
            after = (page[-1].created_at, page[-1].id)
            await store.put_reservation(booking(50 + len(seen), booked=100 + len(seen)))
        pending = await store.list_reservations("pending", limit=3, after=(at(3), "~"))
    newest_first = sorted(made, key=lambda r: (r.created_at, r.id), reverse=True)
    assert seen == [r.id for r in newest_first]
    assert [r.id for r in pending] == [r.id for r in newest_first if r.created_at <= at(3)
                                       and r.id != made[4].id][:3]


# -- version 6: a version 5 database keeps its calls ------------------------------------------------

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
V5_CALL = ("INSERT INTO calls (call_id, caller, dialled, started_at, ended_at, flow, nodes, "
           "digits, outcome, number) VALUES ('old-1', '01012345678', '15771000', {}, {}, 'main', "
           "{}, {}, 'completed', '+821012345678')")


def plan(db: sqlite3.Connection, sql: str, n: int) -> str:
    return str(db.execute(f"EXPLAIN QUERY PLAN {sql}", ("x",) * n).fetchall())


async def test_a_version_5_database_gains_exits_and_the_audit_log_and_keeps_its_calls(tmp_path):
    from ivr.store import statements

    path = tmp_path / "ivr.db"
    async with open_store(f"sqlite:///{path}"):
        pass
    db = sqlite3.connect(path)            # as version 5 left it, with a call
    for statement in UNDO_V6:
        db.execute(statement)
    db.execute("UPDATE schema_version SET version = 5")
    db.execute(V5_CALL.format("'2025-03-10T09:30:00.123456+00:00'",
                              "'2025-03-10T09:31:00.000000+00:00'", """'["welcome"]'""",
                              """'["1"]'"""))
    db.commit()
    db.close()
    async with open_store(f"sqlite:///{path}") as store:
        (old,) = await store.find_calls(CallQuery(number=MOBILE))
        await store.record_call(call("new", 1))
        await store.record_audit(AuditEntry(NOW, "kim", "supervisor", "login"))
        streamed = await collect(store.iter_calls(at(0), at(2)))
    assert (old.call_id, old.nodes, old.exits, old.queue, old.waited) == (
        "old-1", ["welcome"], [], None, None)
    assert [r.call_id for b in streamed for r in b] == ["old-1", "new"]
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        # Streams and pages read an index in its order (no sort of the range); a number's
        # calls come from the number's index.
        first = statements.ITER_CALLS_FIRST + statements.ITER_CALLS_ORDER
        following = statements.ITER_CALLS_NEXT + statements.ITER_CALLS_ORDER
        for sql in (first, following):
            assert "calls_started_id" in plan(db, sql, sql.count("?"))
            assert "TEMP B-TREE" not in plan(db, sql, sql.count("?"))
        paged = statements.find_calls(since=True, until=False, flow=False, outcome=False,
                                      number=False, after=True)
        assert "calls_started_id" in plan(db, paged, 4) and "TEMP B-TREE" not in plan(db, paged, 4)
        by_number = statements.find_calls(since=False, until=False, flow=False, outcome=False,
                                          number=True, after=True)
        assert "calls_number_started" in plan(db, by_number, 4)
        for sql in (statements.ITER_EVENTS_FIRST, statements.ITER_EVENTS_NEXT):
            assert "events_at" in plan(db, sql, sql.count("?"))
            assert "TEMP B-TREE" not in plan(db, sql, sql.count("?"))
        assert "audit_at" in plan(db, statements.AUDIT_ENTRIES, 2)
        counts = plan(db, statements.RESERVATION_COUNTS, 4)
        assert "SCAN reservations" not in counts and "reservations_status_updated" in counts
    finally:
        db.close()


async def test_a_version_5_postgresql_database_gains_exits_and_the_audit_log(postgres_url):
    import asyncpg

    async with open_store(postgres_url):
        pass
    db = await asyncpg.connect(postgres_url)
    try:
        await db.execute("; ".join(UNDO_V6) + "; UPDATE schema_version SET version = 5")
        await db.execute(V5_CALL.format("$1", "$2", "'{welcome}'", "'{1}'"), NOW, at(60))
    finally:
        await db.close()
    async with open_store(postgres_url) as store:
        (old,) = await store.find_calls(CallQuery(since=NOW))
        await store.record_audit(AuditEntry(NOW, "kim", "supervisor", "login"))
        assert len(await store.audit_entries(NOW)) == 1
    assert (old.call_id, old.nodes, old.exits, old.queue, old.waited) == (
        "old-1", ["welcome"], [], None, None)
    db = await asyncpg.connect(postgres_url)
    try:
        assert await db.fetchval("SELECT array_agg(version) FROM schema_version") == [SCHEMA_VERSION]
        indexes = {r["indexname"] for r in await db.fetch("SELECT indexname FROM pg_indexes")}
    finally:
        await db.close()
    assert {"calls_started_id", "audit_at", "reservations_status_updated"} <= indexes
    assert "calls_started" not in indexes
