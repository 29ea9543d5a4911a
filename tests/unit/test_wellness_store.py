"""Wellness calls in the store: people, claimed attempts, the home-visit list — the same
behaviour on SQLite, PostgreSQL and the in-memory store."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator

import pytest

from ivr.store import Store, open_store
from ivr.store.base import Caller
from ivr.store.sqlite import SCHEMA_VERSION
from ivr.testing.memory_store import MemoryStore
from ivr.wellness.model import Attempt, AttemptResult, Person, Visit

UTC = dt.timezone.utc
KST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 3, 10, 1, 0, tzinfo=UTC)          # a Tuesday, 10:00 in Seoul
KIM = "+821012345678"
LEE = "+821087654321"
PARK = "+82212345678"
# What version 10 added (calls' channel and chat, video consultations): undone to go back further.
UNDO_V10 = ("DROP TABLE video_bookings", "ALTER TABLE calls DROP COLUMN channel",
            "ALTER TABLE calls DROP COLUMN chat", "ALTER TABLE calls DROP COLUMN chat_dropped")


def person(number: str = KIM, campaign: str = "seoul", **kw) -> Person:
    return Person(number=number, campaign=campaign, name=kw.pop("name", "김순자"),
                  language=kw.pop("language", "ko"), contact=kw.pop("contact", "daughter +821099990000"),
                  address_ref=kw.pop("address_ref", "A-17"), **kw)


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path}/ivr.db" if request.param == "sqlite" else "memory"


@pytest.fixture
async def store(backend: str) -> AsyncIterator[Store]:
    if backend == "memory":
        yield MemoryStore()
        return
    async with open_store(backend) as s:
        yield s


async def test_people_are_upserted_by_number_keeping_added_at_and_opt_outs(store: Store) -> None:
    first = dt.datetime(2026, 1, 5, 9, 0, tzinfo=KST)
    assert await store.put_wellness_people([person(added_at=first, opt_out=True), person(LEE)]) == 2
    await store.put_wellness_people([person(name="김순자 할머니", language="en",
                                            added_at=NOW, opt_out=False)])
    got = await store.get_wellness_person(KIM)
    assert got is not None
    assert (got.name, got.language, got.opt_out) == ("김순자 할머니", "en", True)
    assert got.added_at == first.astimezone(UTC)
    assert got.contact == "daughter +821099990000" and got.address_ref == "A-17"
    assert await store.get_wellness_person(PARK) is None
    assert await store.put_wellness_people([]) == 0

    assert await store.set_wellness_opt_out(KIM, False) is True
    got = await store.get_wellness_person(KIM)
    assert got is not None and got.opt_out is False
    assert await store.set_wellness_opt_out(PARK, True) is False


async def test_people_list_by_campaign_in_pages(store: Store) -> None:
    await store.put_wellness_people([person(LEE), person(KIM), person(PARK, "busan")])
    assert [p.number for p in await store.list_wellness_people()] == [KIM, LEE, PARK]
    assert [p.number for p in await store.list_wellness_people("seoul", limit=1)] == [KIM]
    assert [p.number for p in await store.list_wellness_people("seoul", after=KIM)] == [LEE]
    assert [p.number for p in await store.list_wellness_people("busan")] == [PARK]
    assert await store.list_wellness_people(limit=0) == []


async def test_a_claimed_person_is_not_claimed_again_until_the_attempt_ends(store: Store) -> None:
    await store.put_wellness_people([person(), person(LEE, opt_out=True)])
    claim = await store.claim_wellness_attempt(KIM, "engine-a", NOW, 120)
    assert claim is not None
    assert (claim.number, claim.campaign, claim.claimed_by, claim.taken_over) == (KIM, "seoul", "engine-a", False)
    assert claim.claim_until == NOW + dt.timedelta(seconds=120)
    assert await store.claim_wellness_attempt(KIM, "engine-b", NOW + dt.timedelta(seconds=60), 120) is None
    assert await store.claim_wellness_attempt(LEE, "engine-a", NOW, 120) is None       # opted out
    assert await store.claim_wellness_attempt(PARK, "engine-a", NOW, 120) is None      # unknown
    assert await store.wellness_in_progress(NOW) == {"seoul": 1}

    assert await store.finish_wellness_attempt(claim.id, "engine-b", result=AttemptResult.WELL,
                                               at=NOW) is False
    assert await store.finish_wellness_attempt(claim.id, "engine-a", result=AttemptResult.NO_ANSWER,
                                               at=NOW, detail="rang 40 s") is True
    assert await store.finish_wellness_attempt(claim.id, "engine-a", result=AttemptResult.WELL,
                                               at=NOW) is False                       # final
    assert await store.wellness_in_progress(NOW) == {}
    assert await store.unfinished_wellness_attempts() == []

    later = NOW + dt.timedelta(minutes=30)
    again = await store.claim_wellness_attempt(KIM, "engine-b", later, 120)
    assert again is not None and again.id != claim.id
    assert await store.finish_wellness_attempt(again.id, "engine-b", result=AttemptResult.WELL, at=later)
    assert await store.wellness_attempts(NOW, number=KIM) == [
        Attempt(number=KIM, campaign="seoul", at=NOW, result=AttemptResult.NO_ANSWER, detail="rang 40 s"),
        Attempt(number=KIM, campaign="seoul", at=later, result=AttemptResult.WELL)]
    assert [a.at for a in await store.wellness_attempts(later)] == [later]
    assert await store.wellness_attempts(NOW, campaign="busan") == []


async def test_a_dead_engines_lapsed_claim_is_taken_over_not_doubled(store: Store) -> None:
    await store.put_wellness_people([person()])
    dead = await store.claim_wellness_attempt(KIM, "engine-a", NOW, 60)
    assert dead is not None
    assert await store.renew_wellness_claim(dead.id, "engine-a", NOW + dt.timedelta(seconds=90))
    assert await store.claim_wellness_attempt(KIM, "engine-b", NOW + dt.timedelta(seconds=80), 60) is None
    [unfinished] = await store.unfinished_wellness_attempts()
    assert (unfinished.id, unfinished.claimed_by) == (dead.id, "engine-a")

    later = NOW + dt.timedelta(seconds=91)
    assert await store.wellness_in_progress(later) == {}          # the lapsed claim holds nothing
    taken = await store.claim_wellness_attempt(KIM, "engine-b", later, 60)
    assert taken is not None
    assert (taken.id, taken.claimed_at, taken.claimed_by, taken.taken_over) == (dead.id, NOW, "engine-b", True)
    assert await store.renew_wellness_claim(dead.id, "engine-a", later) is False
    assert await store.finish_wellness_attempt(dead.id, "engine-a", result=AttemptResult.BUSY, at=NOW) is False
    assert await store.finish_wellness_attempt(dead.id, "engine-b", result=AttemptResult.BUSY, at=NOW) is True
    assert [a.result for a in await store.wellness_attempts(NOW)] == [AttemptResult.BUSY]


async def test_claims_at_once_take_a_person_once(store: Store) -> None:
    await store.put_wellness_people([person()])
    got = await asyncio.gather(*(store.claim_wellness_attempt(KIM, f"engine-{i}", NOW, 60)
                                 for i in range(8)))
    assert len([c for c in got if c is not None]) == 1


async def test_a_claim_made_on_an_outdated_look_is_refused(store: Store) -> None:
    """Engine A looks (nobody reached Kim yet) and decides Kim is due; engine B claims, rings
    and finishes meanwhile; A's claim, which says what A saw, is refused: Kim is not rung
    twice.  A claim that saw B's attempt is taken (the next try of the day)."""
    await store.put_wellness_people([person()])
    looked = NOW - dt.timedelta(days=90)
    b = await store.claim_wellness_attempt(KIM, "engine-b", NOW, 60, cap=3, newer_than=looked)
    assert b is not None
    assert await store.finish_wellness_attempt(b.id, "engine-b", result=AttemptResult.WELL, at=NOW)
    later = NOW + dt.timedelta(seconds=5)
    assert await store.claim_wellness_attempt(KIM, "engine-a", later, 60, cap=3, newer_than=looked) is None
    assert await store.claim_wellness_attempt(KIM, "engine-a", later, 60, newer_than=looked) is None
    assert await store.wellness_in_progress(later) == {}
    retry = NOW + dt.timedelta(minutes=30)
    again = await store.claim_wellness_attempt(KIM, "engine-a", retry, 60, cap=3, newer_than=NOW)
    assert again is not None and again.id != b.id


async def test_the_visit_list_one_open_visit_per_person_done_or_cleared(store: Store) -> None:
    day = dt.datetime(2026, 3, 6, 1, 0, tzinfo=UTC)
    history = (Attempt(number=KIM, campaign="seoul", at=day, result=AttemptResult.NO_ANSWER),
               Attempt(number=KIM, campaign="seoul", at=day + dt.timedelta(hours=1, minutes=30),
                       result=AttemptResult.NO_KEY, detail="답 없음"))
    opened = await store.open_wellness_visit(Visit(number=KIM, campaign="seoul", since=NOW,
                                                   history=history))
    assert opened.id is not None and opened.open and opened.history == history
    again = await store.open_wellness_visit(Visit(number=KIM, campaign="seoul",
                                                  since=NOW + dt.timedelta(days=3)))
    assert (again.id, again.since, again.history) == (opened.id, NOW, history)
    other = await store.open_wellness_visit(Visit(number=LEE, campaign="busan",
                                                  since=NOW - dt.timedelta(days=1)))
    assert [v.number for v in await store.list_wellness_visits()] == [LEE, KIM]
    assert [v.number for v in await store.list_wellness_visits(campaign="seoul")] == [KIM]

    assert other.id is not None
    done_at = NOW + dt.timedelta(hours=5)
    assert await store.mark_wellness_visit_done(other.id, done_at, "visited; fine, phone unplugged")
    assert await store.mark_wellness_visit_done(other.id, done_at, "again") is False
    assert await store.mark_wellness_visit_done(999, done_at, "no such") is False
    done = await store.get_wellness_visit(other.id)
    assert done is not None and (done.done_at, done.note, done.open) == (
        done_at, "visited; fine, phone unplugged", False)
    assert [v.number for v in await store.list_wellness_visits()] == [KIM]

    assert await store.clear_wellness_visits(KIM, done_at) == 1
    assert await store.clear_wellness_visits(KIM, done_at) == 0
    assert await store.list_wellness_visits() == []
    kept = await store.list_wellness_visits(open_only=False)
    assert [(v.number, v.open) for v in kept] == [(LEE, False), (KIM, False)]   # nothing deleted
    assert kept[1].cleared_at == done_at
    fresh = await store.open_wellness_visit(Visit(number=KIM, campaign="seoul", since=done_at))
    assert fresh.id != opened.id and fresh.open
    assert await store.get_wellness_visit(12345) is None


async def test_a_version_6_sqlite_database_is_migrated_to_7_keeping_its_calls(tmp_path) -> None:
    path = tmp_path / "ivr.db"
    async with open_store(f"sqlite:///{path}"):
        pass
    conn = sqlite3.connect(path)
    for statement in UNDO_V10:
        conn.execute(statement)
    conn.execute("ALTER TABLE callers DROP COLUMN wellness")        # version 8's
    for table in ("wellness_visits", "wellness_attempts", "wellness_people"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("UPDATE schema_version SET version = 6")
    conn.commit()
    conn.close()
    async with open_store(f"sqlite:///{path}") as s:
        await s.put_wellness_people([person()])
        assert await s.claim_wellness_attempt(KIM, "e", NOW, 60) is not None
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


async def test_a_version_6_postgresql_database_is_migrated_to_7(postgres_url: str) -> None:
    import asyncpg

    async with open_store(postgres_url):
        pass
    db = await asyncpg.connect(postgres_url)
    try:
        await db.execute("; ".join(UNDO_V10) + "; ALTER TABLE callers DROP COLUMN wellness; "
                         "DROP TABLE wellness_visits; DROP TABLE wellness_attempts; "
                         "DROP TABLE wellness_people; UPDATE schema_version SET version = 6")
    finally:
        await db.close()
    async with open_store(postgres_url) as s:
        await s.put_wellness_people([person()])
        assert await s.claim_wellness_attempt(KIM, "e", NOW, 60) is not None
    db = await asyncpg.connect(postgres_url)
    try:
        assert await db.fetchval("SELECT array_agg(version) FROM schema_version") == [SCHEMA_VERSION]
    finally:
        await db.close()


async def test_a_version_7_sqlite_database_is_migrated_to_8_keeping_its_callers(tmp_path) -> None:
    path = tmp_path / "ivr.db"
    async with open_store(f"sqlite:///{path}"):
        pass
    conn = sqlite3.connect(path)
    for statement in UNDO_V10:
        conn.execute(statement)
    conn.execute("ALTER TABLE callers DROP COLUMN wellness")
    conn.execute("INSERT INTO callers (number, birth_date, language, needs_assistance, name, "
                 "updated_at) VALUES (?, '1941-02-28', 'en', 1, '김순자', ?)",
                 (KIM, "2026-03-01T00:00:00.000000+00:00"))
    conn.execute("UPDATE schema_version SET version = 7")
    conn.commit()
    conn.close()
    async with open_store(f"sqlite:///{path}") as s:
        old = await s.get_caller(KIM)
        assert old == Caller(KIM, dt.date(1941, 2, 28), "en", True, "김순자", wellness=None,
                             updated_at=dt.datetime(2026, 3, 1, tzinfo=UTC))
        await s.put_callers([Caller(LEE, wellness="seoul")])
        assert (await s.get_caller(LEE)).wellness == "seoul"
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


async def test_a_version_7_postgresql_database_is_migrated_to_8_keeping_its_callers(postgres_url: str) -> None:
    import asyncpg

    async with open_store(postgres_url):
        pass
    db = await asyncpg.connect(postgres_url)
    try:
        await db.execute("; ".join(UNDO_V10) + "; ALTER TABLE callers DROP COLUMN wellness; "
                         "UPDATE schema_version SET version = 7")
        await db.execute("INSERT INTO callers (number, birth_date, language, needs_assistance, "
                         "name, updated_at) VALUES ($1, '1941-02-28', 'en', true, '김순자', $2)",
                         KIM, dt.datetime(2026, 3, 1, tzinfo=UTC))
    finally:
        await db.close()
    async with open_store(postgres_url) as s:
        old = await s.get_caller(KIM)
        assert old == Caller(KIM, dt.date(1941, 2, 28), "en", True, "김순자", wellness=None,
                             updated_at=dt.datetime(2026, 3, 1, tzinfo=UTC))
        await s.put_callers([Caller(LEE, wellness="seoul")])
        assert (await s.get_caller(LEE)).wellness == "seoul"
    db = await asyncpg.connect(postgres_url)
    try:
        assert await db.fetchval("SELECT array_agg(version) FROM schema_version") == [SCHEMA_VERSION]
    finally:
        await db.close()


async def test_callers_keep_their_wellness_campaign_and_are_listed_in_pages(store: Store) -> None:
    await store.put_callers([Caller(LEE, language="en", wellness="seoul"), Caller(KIM, name="김순자"),
                             Caller(PARK, wellness="")])
    assert (await store.get_caller(LEE)).wellness == "seoul"
    assert (await store.get_caller(PARK)).wellness is None          # blank: on none
    listed = await store.list_callers()
    assert [(c.number, c.name, c.wellness) for c in listed] == [
        (KIM, "김순자", None), (LEE, None, "seoul"), (PARK, None, None)]
    assert [c.number for c in await store.list_callers(2)] == [KIM, LEE]
    assert [c.number for c in await store.list_callers(2, after=LEE)] == [PARK]
    assert await store.list_callers(after=PARK) == []
    assert await store.list_callers(0) == []
    await store.put_callers([Caller(LEE, language="en")])            # an update replaces it
    assert (await store.get_caller(LEE)).wellness is None


def test_sqlite_reads_a_persons_history_and_the_visit_list_from_their_indexes(tmp_path) -> None:
    from ivr.store import statements

    path = tmp_path / "ivr.db"

    async def create() -> None:
        async with open_store(f"sqlite:///{path}"):
            pass

    asyncio.run(create())
    db = sqlite3.connect(path)
    try:
        def plan(sql: str, params: tuple) -> str:
            return " ".join(r[-1] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))

        history = plan(statements.wellness_attempts(number=True, campaign=False), ("", KIM, 10))
        visits = plan(statements.list_wellness_visits(open_only=True, campaign=False), (10,))
        claims = plan(statements.UNFINISHED_WELLNESS_ATTEMPTS, ())
    finally:
        db.close()
    assert "wellness_attempts_number_at" in history
    assert "wellness_visits_since" in visits or "wellness_visits_open" in visits
    assert "wellness_attempts_open" in claims


async def test_a_re_adopted_calls_attempt_is_taken_over_whoever_held_it(store: Store) -> None:
    await store.put_wellness_people([person()])
    claim = await store.claim_wellness_attempt(KIM, "engine-a", NOW, 60)
    assert claim is not None
    later = NOW + dt.timedelta(seconds=5)
    assert await store.take_over_wellness_claim(claim.id, "engine-b", later + dt.timedelta(seconds=60))
    assert not await store.renew_wellness_claim(claim.id, "engine-a", later)   # no longer a's
    (held,) = await store.unfinished_wellness_attempts()
    assert (held.id, held.claimed_by, held.claimed_at) == (claim.id, "engine-b", NOW)
    assert await store.finish_wellness_attempt(claim.id, "engine-b", result=AttemptResult.WELL, at=NOW)
    assert not await store.take_over_wellness_claim(claim.id, "engine-c", later)  # finished
    assert not await store.take_over_wellness_claim(claim.id + 100, "engine-c", later)


async def test_the_visit_list_of_one_number(store: Store) -> None:
    for number in (KIM, LEE):
        await store.open_wellness_visit(Visit(number=number, campaign="seoul", since=NOW))
    (kim,) = await store.list_wellness_visits(number=KIM)
    assert kim.number == KIM
    assert await store.mark_wellness_visit_done(kim.id, NOW + dt.timedelta(days=1), "visited, well")
    assert await store.list_wellness_visits(number=KIM) == []
    assert [v.number for v in await store.list_wellness_visits(number=KIM, open_only=False)] == [KIM]
    assert [v.number for v in await store.list_wellness_visits(number=LEE, campaign="seoul")] == [LEE]
    assert await store.list_wellness_visits(number=LEE, campaign="busan") == []


async def test_the_engines_own_wellness_calls_do_not_count_as_calls_from_the_person(store: Store) -> None:
    from ivr.call import CallRecord

    ours = CallRecord(call_id="ivr-dial-wellness-1", caller=KIM, dialled="wellness", number=KIM,
                      started_at=NOW)
    theirs = CallRecord(call_id="c-2", caller=KIM, dialled="15771000", number=KIM, started_at=NOW)
    for record in (ours, theirs):
        await store.record_call(record)
    assert await store.count_calls_since(KIM, NOW - dt.timedelta(days=1)) == 1


async def test_a_capped_claim_holds_the_campaigns_cap_across_engines_claiming_at_once(store: Store) -> None:
    numbers = [f"+8210333300{i:02d}" for i in range(6)]
    await store.put_wellness_people([person(n) for n in numbers] + [person(PARK, campaign="busan")])
    got = await asyncio.gather(*(store.claim_wellness_attempt(n, f"engine-{i % 2}", NOW, 60, cap=2)
                                 for i, n in enumerate(numbers)))
    assert sum(c is not None for c in got) == 2
    assert await store.claim_wellness_attempt(PARK, "engine-0", NOW, 60, cap=2) is not None  # its own
    held = next(c for c in got if c is not None)
    assert await store.finish_wellness_attempt(held.id, held.claimed_by, result=AttemptResult.WELL, at=NOW)
    free = [n for n, c in zip(numbers, got, strict=True) if c is None]
    assert await store.claim_wellness_attempt(free[0], "engine-0", NOW, 60, cap=2) is not None
    assert await store.claim_wellness_attempt(free[1], "engine-0", NOW, 60, cap=2) is None
    # Lapsed claims hold no line.
    later = NOW + dt.timedelta(seconds=61)
    assert await store.claim_wellness_attempt(free[1], "engine-0", later, 60, cap=2) is not None
