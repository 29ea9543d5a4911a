"""The store side of the sign-language video entrance: a call's channel and text chat, and
booked video consultations — the same behaviour on SQLite, PostgreSQL and the in-memory store."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator

import pytest

from ivr.call import CHAT_LINES_MAX, CHAT_TEXT_MAX, CallRecord, ChatLine
from ivr.errors import StoreError
from ivr.store import Store, StoreTimeouts, open_store
from ivr.store.base import CallQuery, VideoBooking
from ivr.store.sqlite import SCHEMA_VERSION
from ivr.testing.memory_store import MemoryStore

UTC = dt.timezone.utc
KST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 3, 10, 1, 0, 0, 250000, tzinfo=UTC)      # 10:00 in Seoul
SLOT = dt.datetime(2026, 3, 11, 5, 0, tzinfo=UTC)                 # 14:00 in Seoul, tomorrow
NEXT_SLOT = SLOT + dt.timedelta(minutes=30)
KIM = "+821012345678"

# What version 10 added, taken away again: a database as version 9 left it.
UNDO_V10 = ("DROP TABLE video_bookings", "ALTER TABLE calls DROP COLUMN channel",
            "ALTER TABLE calls DROP COLUMN chat", "ALTER TABLE calls DROP COLUMN chat_dropped")


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path}/ivr.db" if request.param == "sqlite" else "memory"


@contextlib.asynccontextmanager
async def opened(backend: str) -> AsyncIterator[Store]:
    if backend == "memory":
        yield MemoryStore()
        return
    async with open_store(backend) as s:
        yield s


@pytest.fixture
async def store(backend: str) -> AsyncIterator[Store]:
    async with opened(backend) as s:
        yield s


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def video_call(call_id: str = "web-1", *, start: dt.datetime = NOW) -> CallRecord:
    return CallRecord(call_id, "", "video", started_at=start, flow="sign", language="ko",
                      number=KIM, channel="video")


def booking(code: str = "K7Q2MX", slot: dt.datetime = SLOT, **fields) -> VideoBooking:
    b = VideoBooking(code=code, slot_start=slot, slot_end=slot + dt.timedelta(minutes=30),
                     topic="주민등록 등본", sign_language="KSL", language="ko", number=KIM,
                     created_at=NOW)
    return dataclasses.replace(b, **fields) if fields else b


# -- a call's chat, as the record keeps it ---------------------------------------------------------

def test_a_chat_line_is_stripped_cut_and_kept_in_utc():
    r = video_call()
    assert r.said("caller", "  안녕하세요\n", at=dt.datetime(2026, 3, 10, 10, 0, tzinfo=KST))
    assert r.said("agent", "x" * (CHAT_TEXT_MAX + 50))
    assert not r.said("caller", " \n\t ")                      # blank: not kept, not counted
    assert r.chat[0] == ChatLine(NOW.replace(microsecond=0), "caller", "안녕하세요")
    assert r.chat[1].text == "x" * CHAT_TEXT_MAX and r.chat[1].at.tzinfo is not None
    assert r.said("system", "naive", at=dt.datetime(2026, 3, 10, 1, 0))
    assert r.chat[2].at == dt.datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
    assert (len(r.chat), r.chat_dropped) == (3, 0)
    with pytest.raises(ValueError, match="chat sender"):
        r.said("operator", "hello")       # type: ignore[arg-type]


def test_a_call_keeps_500_chat_lines_and_counts_the_ones_it_drops():
    r = video_call()
    for i in range(CHAT_LINES_MAX):
        assert r.said("caller" if i % 2 else "agent", f"line {i}", at=at(i))
    assert not r.said("caller", "one too many", at=at(9999))
    assert not r.said("agent", "and another")
    assert len(r.chat) == CHAT_LINES_MAX and r.chat[-1].text == f"line {CHAT_LINES_MAX - 1}"
    assert r.chat_dropped == 2


# -- channel and chat in the store -------------------------------------------------------------------

async def test_a_video_call_and_its_chat_are_read_back_everywhere(store: Store):
    rec = video_call()
    rec.visit("welcome")
    rec.said("system", "통역사를 연결하고 있습니다", at=at(1))
    rec.said("caller", "등본 발급\n문의합니다", at=at(5))
    rec.said("agent", "네, 말씀하세요 — \"quoted\" {json}", at=at(9))
    rec.end("agent_connected", "interpreter1")
    voice = CallRecord("ch-1", "01012345678", "15771000", started_at=at(60), number=KIM)
    voice.end("completed")
    await store.record_call(rec)
    await store.record_call(voice)

    got = await store.get_call("web-1")
    assert got == rec
    assert got is not None and got.chat[1].text == "등본 발급\n문의합니다"
    assert all(line.at.utcoffset() == dt.timedelta(0) for line in got.chat)
    (back_voice,) = [r for r in await store.recent_calls() if r.call_id == "ch-1"]
    assert (back_voice.channel, back_voice.chat, back_voice.chat_dropped) == ("voice", [], 0)
    assert [r.call_id for r in await store.find_calls(CallQuery(channel="video"))] == ["web-1"]
    assert [r.call_id for r in await store.find_calls(CallQuery(channel="voice", number=KIM))] == ["ch-1"]
    assert await store.find_calls(CallQuery(channel="video", since=at(30))) == []
    batches = [b async for b in store.iter_calls(NOW, at(3600))]
    assert [(r.call_id, r.channel, len(r.chat)) for b in batches for r in b] == [
        ("web-1", "video", 3), ("ch-1", "voice", 0)]


async def test_a_chat_grows_with_the_calls_progress_and_ends_with_its_record(store: Store):
    rec = video_call()
    await store.call_started(rec)
    started = await store.get_call(rec.call_id)
    assert started is not None and (started.channel, started.chat) == ("video", [])

    rec.said("caller", "안녕하세요", at=at(3))
    assert (await store.get_call(rec.call_id)).chat == []       # not written yet
    await store.call_progress(rec)
    assert [line.text for line in (await store.get_call(rec.call_id)).chat] == ["안녕하세요"]

    rec.said("agent", "무엇을 도와드릴까요?", at=at(8))
    other = video_call("web-2", start=at(1))
    other.said("caller", "hello", at=at(2))
    await store.calls_progress([rec, other])
    progressed = await store.get_call(rec.call_id)
    assert [line.sender for line in progressed.chat] == ["caller", "agent"]
    assert (await store.get_call("web-2")).chat == other.chat

    rec.chat.pop()
    rec.chat_dropped = 4
    rec.end("agent_connected", "interpreter1")
    await store.record_call(rec)
    late = dataclasses.replace(rec, chat=[], chat_dropped=0, outcome=None, ended_at=None)
    await store.call_progress(late)                   # a late progress note: the record stands
    done = await store.get_call(rec.call_id)
    assert done == rec
    assert (len(done.chat), done.chat_dropped, done.outcome) == (1, 4, "agent_connected")


async def test_a_full_chat_is_stored_whole(store: Store):
    rec = video_call()
    for i in range(CHAT_LINES_MAX + 3):
        rec.said("caller", f"{i:03d} " + "가" * 200, at=at(i))
    rec.end("caller_hangup")
    await store.record_call(rec)
    back = await store.get_call(rec.call_id)
    assert back is not None and back.chat == rec.chat and back.chat_dropped == 3


async def test_a_version_9_sqlite_database_keeps_its_calls_as_voice_calls_without_chat(tmp_path):
    path = tmp_path / "ivr.db"
    async with open_store(f"sqlite:///{path}"):
        pass
    db = sqlite3.connect(path)             # back to version 9, as its release left it
    for statement in UNDO_V10:
        db.execute(statement)
    db.execute("UPDATE schema_version SET version = 9")
    db.execute("INSERT INTO calls (call_id, caller, dialled, started_at, ended_at, nodes, digits, "
               "outcome, detail, number, exits, queue, waited) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?)",
               ("old-1", "01012345678", "15771000", "2026-03-01T09:00:00.000000+00:00",
                "2026-03-01T09:01:00.000000+00:00", '["welcome","queue"]', '["1"]',
                "agent_connected", KIM, '["next","queue"]', "general", 12.5))
    db.commit()
    db.close()
    async with open_store(f"sqlite:///{path}") as s:
        old = await s.get_call("old-1")
        assert old is not None
        assert (old.channel, old.chat, old.chat_dropped) == ("voice", [], 0)
        assert (old.nodes, old.exits, old.queue, old.waited) == (
            ["welcome", "queue"], ["next", "queue"], "general", 12.5)
        assert [r.call_id for r in await s.find_calls(CallQuery(channel="voice"))] == ["old-1"]
        assert await s.put_video_booking(booking(), capacity=1)
        new = video_call()
        new.said("caller", "hi", at=at(1))
        await s.record_call(new)
        assert (await s.get_call("web-1")).chat == new.chat
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert SCHEMA_VERSION == 10
        from ivr.store import statements

        plan = str(db.execute(f"EXPLAIN QUERY PLAN {statements.VIDEO_SLOT_COUNTS}",
                              ("a", "b")).fetchall())
        assert "video_bookings_slot" in plan
    finally:
        db.close()
    async with open_store(f"sqlite:///{path}") as s:     # opening again changes nothing
        assert len(await s.recent_calls()) == 2


async def test_a_version_9_postgresql_database_keeps_its_calls_as_voice_calls_without_chat(
        postgres_url):
    import asyncpg

    async with open_store(postgres_url):
        pass
    db = await asyncpg.connect(postgres_url)
    try:
        await db.execute("; ".join(UNDO_V10) + "; UPDATE schema_version SET version = 9")
        await db.execute("INSERT INTO calls (call_id, caller, dialled, started_at, nodes, digits, "
                         "outcome, number) VALUES ('old-1', '01012345678', '15771000', $1, "
                         "'{welcome}', '{1}', 'completed', $2)", NOW, KIM)
    finally:
        await db.close()
    async with open_store(postgres_url) as s:
        old = await s.get_call("old-1")
        assert old is not None and (old.channel, old.chat, old.chat_dropped) == ("voice", [], 0)
        assert await s.put_video_booking(booking(), capacity=1)
    db = await asyncpg.connect(postgres_url)
    try:
        assert await db.fetchval("SELECT array_agg(version) FROM schema_version") == [SCHEMA_VERSION]
    finally:
        await db.close()


# -- booked video consultations ---------------------------------------------------------------------

async def test_a_booking_is_read_back_as_made_whatever_the_case_of_its_code(store: Store):
    b = booking("k7q2mx", slot=SLOT.astimezone(KST), created_at=NOW.astimezone(KST))
    assert await store.put_video_booking(b, capacity=3)
    got = await store.get_video_booking("K7Q2MX")
    assert got == dataclasses.replace(b, code="K7Q2MX", slot_start=SLOT, created_at=NOW)
    assert got.slot_start.utcoffset() == dt.timedelta(0) and got.status == "booked"
    assert await store.get_video_booking("k7Q2mx") == got
    assert await store.get_video_booking("NOPE00") is None
    anonymous = booking("ANON01", number=None)
    assert await store.put_video_booking(anonymous, capacity=3)
    assert (await store.get_video_booking("anon01")).number is None


async def test_a_slot_takes_its_capacity_and_a_cancellation_frees_a_place(store: Store):
    assert await store.put_video_booking(booking("AAAA01"), capacity=2)
    assert await store.put_video_booking(booking("AAAA02"), capacity=2)
    assert not await store.put_video_booking(booking("AAAA03"), capacity=2)      # full
    assert await store.get_video_booking("AAAA03") is None                       # not written
    assert await store.put_video_booking(booking("BBBB01", NEXT_SLOT), capacity=2)   # another slot
    assert await store.video_slot_counts(SLOT, NEXT_SLOT + dt.timedelta(minutes=30)) == {
        SLOT: 2, NEXT_SLOT: 1}

    assert await store.use_video_booking("aaaa01", "web-1", at(86400)) is not None
    assert not await store.put_video_booking(booking("AAAA03"), capacity=2)      # used holds too
    assert await store.cancel_video_booking("aaaa02")
    assert await store.video_slot_counts(SLOT, NEXT_SLOT) == {SLOT: 1}
    assert await store.put_video_booking(booking("AAAA03"), capacity=2)
    assert not await store.put_video_booking(booking("AAAA04"), capacity=2)
    assert await store.put_video_booking(booking("AAAA04"), capacity=3)          # a larger capacity


async def test_a_code_already_stored_is_refused_in_any_case(store: Store):
    assert await store.put_video_booking(booking("K7Q2MX"), capacity=5)
    with pytest.raises(StoreError):
        await store.put_video_booking(booking("k7q2mx", NEXT_SLOT, topic="다른 용건"), capacity=5)
    assert (await store.get_video_booking("K7Q2MX")).topic == "주민등록 등본"
    assert await store.video_slot_counts(SLOT, NEXT_SLOT + dt.timedelta(hours=1)) == {SLOT: 1}
    assert not await store.put_video_booking(booking("K7Q2MX"), capacity=1)      # full comes first


async def test_a_booking_is_used_again_by_a_caller_who_comes_back_but_not_once_cancelled(store: Store):
    assert await store.put_video_booking(booking(), capacity=1)
    first = await store.use_video_booking("k7q2mx", "web-1", SLOT.astimezone(KST))
    assert first is not None
    assert (first.code, first.status, first.call_id, first.used_at) == ("K7Q2MX", "used", "web-1", SLOT)
    assert await store.get_video_booking("K7Q2MX") == first
    back = SLOT + dt.timedelta(minutes=4)                     # the call dropped; the caller is back
    again = await store.use_video_booking("K7Q2MX", "web-2", back)
    assert again == dataclasses.replace(first, call_id="web-2", used_at=back)
    assert await store.use_video_booking("NOPE00", "web-3", back) is None

    assert await store.cancel_video_booking("K7Q2MX")
    assert not await store.cancel_video_booking("K7Q2MX")              # already cancelled
    assert not await store.cancel_video_booking("NOPE00")
    assert await store.use_video_booking("K7Q2MX", "web-3", back) is None
    cancelled = await store.get_video_booking("K7Q2MX")
    assert (cancelled.status, cancelled.call_id, cancelled.used_at) == ("cancelled", "web-2", back)


async def test_bookings_are_listed_and_counted_by_slot_in_a_range(store: Store):
    late = NOW + dt.timedelta(minutes=5)
    for code, slot, created in (("CCCC01", NEXT_SLOT, NOW), ("CCCC02", SLOT, late),
                                ("CCCC03", SLOT, NOW), ("CCCC04", SLOT - dt.timedelta(minutes=30), NOW),
                                ("CCCC05", NEXT_SLOT + dt.timedelta(minutes=30), NOW)):
        assert await store.put_video_booking(booking(code, slot, created_at=created), capacity=5)
    assert await store.cancel_video_booking("CCCC01")
    until = NEXT_SLOT + dt.timedelta(minutes=30)            # excluded
    listed = await store.list_video_bookings(SLOT, until)
    assert [(b.code, b.status) for b in listed] == [
        ("CCCC03", "booked"), ("CCCC02", "booked"), ("CCCC01", "cancelled")]
    assert [b.code for b in await store.list_video_bookings(SLOT, until, limit=2)] == ["CCCC03", "CCCC02"]
    assert await store.list_video_bookings(SLOT, until, limit=0) == []
    assert await store.video_slot_counts(SLOT, until) == {SLOT: 2}
    counts = await store.video_slot_counts(SLOT - dt.timedelta(hours=1), until + dt.timedelta(hours=1))
    assert counts == {SLOT - dt.timedelta(minutes=30): 1, SLOT: 2, until: 1}
    assert all(k.utcoffset() == dt.timedelta(0) for k in counts)
    assert await store.video_slot_counts(SLOT.astimezone(KST), NEXT_SLOT.astimezone(KST)) == {SLOT: 2}


async def test_bookings_made_at_once_never_exceed_a_slots_capacity(store: Store):
    got = await asyncio.gather(*(store.put_video_booking(booking(f"DDDD{i:02d}"), capacity=3)
                                 for i in range(10)))
    assert sum(got) == 3
    assert await store.video_slot_counts(SLOT, NEXT_SLOT) == {SLOT: 3}


async def test_two_engines_booking_a_slots_last_place_at_once_one_gets_it(store_url):
    """Two engines share one database (PostgreSQL; or one SQLite file); each of 25 slots has
    one place left and both engines, several bookings each, ask for it at the same moment.
    (Without the slot's lock, PostgreSQL gives the place twice within a few slots.)"""
    async with contextlib.AsyncExitStack() as stack:
        first, second = await asyncio.gather(stack.enter_async_context(open_store(store_url)),
                                             stack.enter_async_context(open_store(store_url)))
        slots = [SLOT + dt.timedelta(minutes=30 * n) for n in range(25)]
        for n, slot in enumerate(slots):
            assert await first.put_video_booking(booking(f"HELD{n:02d}", slot), capacity=2)
        for n, slot in enumerate(slots):
            got = await asyncio.gather(*(engine.put_video_booking(
                booking(f"E{e}{n:02d}{i}", slot), capacity=2)
                for e, engine in enumerate((first, second, first, second)) for i in range(2)))
            assert sum(got) == 1, (n, got)
        counts = await second.video_slot_counts(slots[0], slots[-1] + dt.timedelta(minutes=30))
    assert counts == {slot: 2 for slot in slots}


# -- PostgreSQL: a booking whose session the server ends is tried once more, never twice ----------------

_WAITING = ("SELECT pid FROM pg_stat_activity "
            "WHERE application_name = 'ivr' AND wait_event_type = 'Lock'")


async def _cut_off_while_booking(postgres_url: str, b: VideoBooking, *, stored_meanwhile: bool) -> bool:
    """Book ``b`` while another session locks the table; end the store's session as it waits;
    ``stored_meanwhile``: the other session writes ``b`` itself, as if the cut-off try had
    committed before its session was lost.  What the booking answered."""
    import asyncpg

    from ivr.store.postgres import _video_row

    async with open_store(postgres_url, timeouts=StoreTimeouts(operation=5)) as s:
        other = await asyncpg.connect(postgres_url)
        try:
            lock = other.transaction()
            await lock.start()
            await other.execute("LOCK TABLE video_bookings IN ACCESS EXCLUSIVE MODE")
            if stored_meanwhile:
                await other.execute("INSERT INTO video_bookings VALUES "
                                    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", *_video_row(b))
            put = asyncio.create_task(s.put_video_booking(b, capacity=1))
            async with asyncio.timeout(3):
                while not await other.fetch(_WAITING):
                    await asyncio.sleep(0.01)
            await other.execute(f"SELECT pg_terminate_backend(pid) FROM ({_WAITING}) AS w")
            await lock.commit()
            answer = await put
        finally:
            await other.close()
        assert await s.video_slot_counts(SLOT, NEXT_SLOT) == {SLOT: 1}
        assert await s.get_video_booking(b.code) == b
    return answer


async def test_a_booking_cut_off_before_its_commit_is_made_on_a_fresh_session(postgres_url):
    assert await _cut_off_while_booking(postgres_url, booking(), stored_meanwhile=False) is True


async def test_a_booking_cut_off_after_its_commit_finds_itself_and_takes_no_second_place(postgres_url):
    assert await _cut_off_while_booking(postgres_url, booking(), stored_meanwhile=True) is True
