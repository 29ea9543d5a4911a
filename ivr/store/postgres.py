"""PostgreSQL store: several engine instances share one call history and caller registry.

``store.url: postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` (or ``postgres://``).  The query
string may set the connection pool's size, ``?min_size=1&max_size=10`` (the defaults); any other
parameter goes to asyncpg as it is (``sslmode=require``, ``host=/run/postgresql`` …).

A database that is briefly away has one outcome: every method raises ``StoreError`` within
its timeout (``StoreTimeouts.operation``: acquiring a connection and running the query), never
hangs.  The server is told the same bound (``statement_timeout``), so a statement the store gave
up on is cancelled there too, not applied late nor left holding a backend.  Connections the
server dropped are replaced by the pool on the next use, so once the server is back the same
store works again without a restart.  A method that finds its connection lost tries once more
on a fresh one: the calls and callers writes are idempotent upserts, and a batch of events is
tried again only when the connection was lost before its commit was sent (lost during the
commit, the batch may or may not be stored, and ``record_events`` says so instead of writing
it twice).

Schema versions follow the SQLite store's numbering.  A new database is created at version 2
(the first PostgreSQL schema) and then migrated like an old one, so new and upgraded databases
are the same; engines opening one database at once migrate it once (an advisory lock).

Callback reservations: booking is one ``INSERT … ON CONFLICT`` on the partial unique index of
open reservations, and claiming one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)``,
so engine instances claiming at once never take the same reservation.  Like every single
statement here they are tried once more when the connection is lost: booking again is
harmless (the same reservation is updated), a claim repeated after a lost commit leaves the
first claim to lapse (its reservations are dialled a lease later), and a finished attempt
repeated after a lost commit answers False although it was noted.

Wellness calls: claiming an attempt is one ``INSERT … ON CONFLICT`` on the partial unique index
of unfinished attempts (one per number); a claim whose engine died is taken over by the same
statement.  Tried again after a lost commit, a claim answers None (the first one holds): the
person is not rung now, and the claim lapses and is taken over a lease later — never rung
twice.  A finished attempt repeated after a lost commit answers False although it was noted;
opening a visit again is harmless (one open visit per number).

Video consultations: a booking takes an advisory lock of its slot, then counts the slot's
places and inserts in one statement, in one transaction, so engines booking the last place at
once never both get it.  Tried again after a lost connection, a booking finds itself stored
(the first try committed) and answers True, never takes a second place; using a booking again
is harmless (the same call and time), and a cancellation repeated after a lost commit answers
False although it was made.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import structlog

from ivr.call import CallRecord
from ivr.callbacks.model import Reservation, check_attempt_outcome, check_status
from ivr.errors import ConfigError, StoreError
from ivr.store import statements
from ivr.store.base import (OUTBOUND_DIALLED, SERVED_OUTCOMES, AuditEntry, Caller, CallQuery, QueueEvent,
                            VideoBooking, WellnessClaim)
from ivr.store.timeouts import StoreTimeouts
from ivr.wellness.model import Attempt, AttemptResult, Person, Visit

log = structlog.get_logger("ivr.store")

T = TypeVar("T")

SCHEMA_VERSION = 10         # the same numbering as the SQLite store
_FIRST_VERSION = 2          # PostgreSQL started at 2: what _CREATE makes
_SCHEMA_LOCK = 0x1F5_70_2E  # advisory lock key: engines starting together create the schema once

# Version 2, as the first PostgreSQL release created it.
_CREATE = """
CREATE TABLE calls (
    call_id      text PRIMARY KEY,
    caller       text NOT NULL,
    dialled      text NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    flow         text,
    flow_version text,
    language     text,
    nodes        text[] NOT NULL,
    digits       text[] NOT NULL,
    outcome      text,
    detail       text NOT NULL DEFAULT '',
    priority     text,
    reason       text,
    number       text
);
CREATE INDEX calls_started ON calls (started_at);
CREATE INDEX calls_number_started ON calls (number, started_at);
CREATE TABLE callers (
    number           text PRIMARY KEY,
    birth_date       date,
    language         text,
    needs_assistance boolean NOT NULL DEFAULT false,
    name             text,
    updated_at       timestamptz NOT NULL
);
"""

# The statements that take version N-1 to version N.
_MIGRATIONS: dict[int, str] = {
    3: """
CREATE TABLE events (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL,
    kind     text NOT NULL,
    call_id  text,
    agent_id text,
    queue    text,
    detail   text NOT NULL DEFAULT ''
);
CREATE INDEX events_call_at ON events (call_id, at);
CREATE INDEX events_agent_at ON events (agent_id, at);
""",
    4: """
CREATE TABLE reservations (
    id              text PRIMARY KEY,
    number          text NOT NULL,
    queue           text NOT NULL,
    priority        text,
    reason          text,
    language        text NOT NULL,
    waited          double precision NOT NULL DEFAULT 0,
    arrived_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    slot_end        timestamptz,
    status          text NOT NULL CHECK (status IN
                        ('pending', 'claimed', 'done', 'failed', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    last_result     text,
    claimed_by      text,
    claim_until     timestamptz,
    call_id         text,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX reservations_status_due ON reservations (status, due_at);
CREATE UNIQUE INDEX reservations_open ON reservations (number, queue)
    WHERE status IN ('pending', 'claimed');
""",
    5: ";\n".join(statements.EVENT_INDEXES),   # what a restarting engine reads
    6: """
ALTER TABLE calls ADD COLUMN exits text[] NOT NULL DEFAULT '{}';
ALTER TABLE calls ADD COLUMN queue text;
ALTER TABLE calls ADD COLUMN waited double precision;
CREATE TABLE audit (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL,
    "user" text NOT NULL,
    role   text NOT NULL,
    action text NOT NULL,
    target text,
    detail text NOT NULL DEFAULT '',
    source text
);
""" + ";\n".join(statements.V6_INDEXES),
    7: """
CREATE TABLE wellness_people (
    number      text PRIMARY KEY,
    campaign    text NOT NULL,
    name        text NOT NULL DEFAULT '',
    language    text NOT NULL,
    contact     text NOT NULL DEFAULT '',
    address_ref text NOT NULL DEFAULT '',
    opt_out     boolean NOT NULL DEFAULT false,
    added_at    timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE TABLE wellness_attempts (
    id          bigserial PRIMARY KEY,
    number      text NOT NULL,
    campaign    text NOT NULL,
    claimed_at  timestamptz NOT NULL,
    claimed_by  text NOT NULL,
    claim_until timestamptz,
    at          timestamptz,
    result      text,
    detail      text
);
CREATE TABLE wellness_visits (
    id         bigserial PRIMARY KEY,
    number     text NOT NULL,
    campaign   text NOT NULL,
    since      timestamptz NOT NULL,
    history    text NOT NULL DEFAULT '[]',
    done_at    timestamptz,
    note       text,
    cleared_at timestamptz
);
""" + ";\n".join(statements.V7_INDEXES),
    8: "ALTER TABLE callers ADD COLUMN wellness text",     # the caller's wellness campaign
    9: ";\n".join(statements.V9_REGISTRY_GENERATION),      # a cached registry's freshness
    10: ";\n".join((*statements.V10_CALL_COLUMNS, """CREATE TABLE video_bookings (
    code          text PRIMARY KEY,
    slot_start    timestamptz NOT NULL,
    slot_end      timestamptz NOT NULL,
    topic         text NOT NULL,
    sign_language text NOT NULL,
    language      text NOT NULL,
    number        text,
    created_at    timestamptz NOT NULL,
    status        text NOT NULL CHECK (status IN ('booked', 'used', 'cancelled')),
    call_id       text,
    used_at       timestamptz
)""", *statements.V10_VIDEO_INDEXES)),     # calls' channel and chat; video consultations
}

COLUMNS = statements.CALL_COLUMNS
_UPSERT_CALL = statements.numbered(statements.UPSERT_CALL)
_INSERT_STARTED = statements.numbered(statements.INSERT_STARTED)
_PROGRESS_CALL = statements.numbered(statements.PROGRESS_CALL)
_RECENT = f"{statements.SELECT_CALLS} ORDER BY started_at DESC LIMIT $1"
_GET_CALL = f"{statements.SELECT_CALLS} WHERE call_id = $1"

_UPSERT_CALLER = statements.numbered(statements.UPSERT_CALLER)
_GET_CALLER = statements.numbered(statements.GET_CALLER)
_BUMP_REGISTRY_GENERATION = statements.BUMP_REGISTRY_GENERATION
_GET_REGISTRY_GENERATION = statements.GET_REGISTRY_GENERATION

# The event log's statements are shared with SQLite (``ivr.store.statements``); events of one
# instant come back in the order they were recorded (the id).
_INSERT_EVENT = statements.numbered(statements.INSERT_EVENT)
_CALL_EVENTS = statements.numbered(statements.CALL_EVENTS)
_AGENT_EVENTS = statements.numbered(statements.AGENT_EVENTS)
_LATEST_AGENT_EVENTS = statements.numbered(statements.LATEST_AGENT_EVENTS)
_LINE_EVENTS = statements.numbered(statements.LINE_EVENTS)
_ITER_EVENTS_FIRST = statements.numbered(statements.ITER_EVENTS_FIRST)
_ITER_EVENTS_NEXT = statements.numbered(statements.ITER_EVENTS_NEXT)
_INSERT_AUDIT = statements.numbered(statements.INSERT_AUDIT)
_AUDIT_ENTRIES = statements.numbered(statements.AUDIT_ENTRIES)
_RESERVATION_COUNTS = statements.numbered(statements.RESERVATION_COUNTS)

_RES_COLUMNS = statements.RESERVATION_COLUMNS
_RES_TIMES = frozenset({"arrived_at", "created_at", "due_at", "slot_end", "last_attempt_at",
                        "claim_until", "updated_at"})
_RES_LIST = ", ".join(_RES_COLUMNS)
_RES_SELECT = f"SELECT {_RES_LIST} FROM reservations"
_OPEN = "status IN ('pending', 'claimed')"
# Booking again while one is open updates that one (the partial unique index is the arbiter).
_PUT_RESERVATION = (
    f"INSERT INTO reservations AS r ({_RES_LIST}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(_RES_COLUMNS) + 1))}) "
    f"ON CONFLICT (number, queue) WHERE {_OPEN} DO UPDATE SET "
    "arrived_at = LEAST(r.arrived_at, EXCLUDED.arrived_at), "
    "waited = GREATEST(r.waited, EXCLUDED.waited), "
    "language = EXCLUDED.language, priority = EXCLUDED.priority, reason = EXCLUDED.reason, "
    "due_at = EXCLUDED.due_at, slot_end = EXCLUDED.slot_end, call_id = EXCLUDED.call_id, "
    f"updated_at = EXCLUDED.updated_at RETURNING {_RES_LIST}")
_GET_RESERVATION = f"{_RES_SELECT} WHERE id = $1"
# The callers' order in line; reservations booked at one instant in the order booked.  Rows
# another instance is claiming right now are skipped, not waited for; a row it claimed and
# committed meanwhile is checked again by the locking read and no longer matches.
_LINE_ORDER = "ORDER BY arrived_at, created_at, id"
_CLAIM = (
    "UPDATE reservations SET status = 'claimed', claimed_by = $2, claim_until = $3, "
    "updated_at = $1 WHERE id IN ("
    "SELECT id FROM reservations WHERE (status = 'pending' AND due_at <= $1) "
    f"OR (status = 'claimed' AND claim_until < $1) {_LINE_ORDER} LIMIT $4 "
    f"FOR UPDATE SKIP LOCKED) RETURNING {_RES_LIST}")
_RENEW = ("UPDATE reservations SET claim_until = $3 "
          "WHERE id = $1 AND status = 'claimed' AND claimed_by = $2")
_RELEASE = ("UPDATE reservations SET status = 'pending', claimed_by = NULL, claim_until = NULL, "
            "updated_at = $2 WHERE status = 'claimed' AND claimed_by = $1")
_RELEASE_OTHERS = ("UPDATE reservations SET status = 'pending', claimed_by = NULL, claim_until = NULL, "
                   "updated_at = $2 WHERE status = 'claimed' AND claimed_by <> $1")
_FINISH_FINAL = ("UPDATE reservations SET attempts = attempts + 1, last_attempt_at = $3, "
                 "last_result = $4, status = $5, claim_until = NULL, updated_at = $3 "
                 "WHERE id = $1 AND status = 'claimed' AND claimed_by = $2")
_FINISH_AGAIN = ("UPDATE reservations SET attempts = attempts + 1, last_attempt_at = $3, "
                 "last_result = $4, status = 'pending', due_at = $5, claimed_by = NULL, "
                 "claim_until = NULL, updated_at = $3 "
                 "WHERE id = $1 AND status = 'claimed' AND claimed_by = $2")
_CANCEL = ("UPDATE reservations SET status = 'cancelled', claim_until = NULL, updated_at = $2 "
           f"WHERE id = $1 AND {_OPEN}")
_CANCEL_FOR = ("UPDATE reservations SET status = 'cancelled', claim_until = NULL, "
               f"updated_at = $2 WHERE number = $1 AND {_OPEN}")
_CANCEL_FOR_QUEUE = _CANCEL_FOR + " AND queue = $3"

_SERVED = sorted(SERVED_OUTCOMES)

# What a database that is away, slow or refusing looks like from here.
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError,
           asyncpg.exceptions.InternalClientError, OSError)
# A connection that died under us: worth one more try on a fresh connection.
_LOST = (asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.AdminShutdownError,
         ConnectionError)

_POOL_PARAMS = ("min_size", "max_size")


def count_query(*, unserved_only: bool, exclude_call: bool) -> str:
    """The repeat-caller query: parameters number, since[, served outcomes][, call id]."""
    sql = (f"SELECT count(*) FROM calls WHERE number = $1 AND started_at >= $2 "
           f"AND dialled <> '{OUTBOUND_DIALLED}'")
    n = 3
    if unserved_only:
        sql += f" AND (outcome IS NULL OR outcome <> ALL(${n}::text[]))"
        n += 1
    if exclude_call:
        sql += f" AND call_id <> ${n}"
    return sql


def mask_url(url: str) -> str:
    """The URL with its password (in the user part or the query) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs],
                          safe="/*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def parse_url(url: str) -> tuple[str, int, int]:
    """Split ``url`` into the DSN asyncpg gets and the pool's (min_size, max_size)."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    sizes = {"min_size": 1, "max_size": 10}
    rest = []
    for key, value in pairs:
        if key in _POOL_PARAMS:
            try:
                sizes[key] = int(value)
            except ValueError:
                raise ConfigError(f"store.url {mask_url(url)!r}: {key} must be a whole number, "
                                  f"not {value!r}") from None
        else:
            rest.append((key, value))
    if sizes["min_size"] < 0 or sizes["max_size"] < 1 or sizes["min_size"] > sizes["max_size"]:
        raise ConfigError(f"store.url {mask_url(url)!r}: the pool needs 0 <= min_size <= max_size "
                          f"and max_size >= 1 (got {sizes['min_size']} and {sizes['max_size']})")
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest, safe="/"),
                      parts.fragment))
    return dsn, sizes["min_size"], sizes["max_size"]


def _ms(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """Naive datetimes are taken as UTC, as the SQLite store does."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _call_row(record: CallRecord, *, started: bool = False) -> tuple[Any, ...]:
    return (record.call_id, record.caller, record.dialled, _aware(record.started_at),
            None if started else _aware(record.ended_at), record.flow, record.flow_version,
            record.language, list(record.nodes), list(record.digits),
            None if started else record.outcome, record.detail, record.priority, record.reason,
            record.number, [str(e) for e in record.exits], record.queue, record.waited,
            record.channel, statements.chat_json(record.chat), record.chat_dropped)


def _call_from_row(row: asyncpg.Record) -> CallRecord:
    # Positional (the order of CALL_COLUMNS): streams read millions of rows through here.
    (call_id, caller, dialled, started_at, ended_at, flow, flow_version, language, nodes,
     digits, outcome, detail, priority, reason, number, exits, queue, waited, channel, chat,
     chat_dropped) = row
    return CallRecord(call_id, caller, dialled, started_at, ended_at, flow, flow_version,
                      language, list(nodes), list(digits), outcome, detail, priority, reason,
                      number, list(exits), queue, waited, channel,
                      statements.chat_from_json(chat), chat_dropped)


def _event_from_row(row: asyncpg.Record) -> QueueEvent:
    return QueueEvent(at=row["at"], kind=row["kind"], call_id=row["call_id"],
                      agent_id=row["agent_id"], queue=row["queue"], detail=row["detail"])


def _audit_from_row(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(*row)


def _reservation_row(r: Reservation) -> tuple[Any, ...]:
    return tuple(_aware(getattr(r, c)) if c in _RES_TIMES else getattr(r, c)
                 for c in _RES_COLUMNS)


def _reservation_from_row(row: asyncpg.Record) -> Reservation:
    return Reservation(**{c: row[c] for c in _RES_COLUMNS})


def _caller_from_row(row: asyncpg.Record) -> Caller:
    return Caller(number=row["number"], birth_date=row["birth_date"], language=row["language"],
                  needs_assistance=row["needs_assistance"], name=row["name"],
                  wellness=row["wellness"] or None, updated_at=row["updated_at"])


def _person_from_row(row: asyncpg.Record) -> Person:
    number, campaign, name, language, contact, address_ref, opt_out, added_at = row
    return Person(number=number, campaign=campaign, name=name, language=language,
                  contact=contact, address_ref=address_ref, opt_out=opt_out, added_at=added_at)


def _claim_from_row(row: asyncpg.Record, now: dt.datetime | None = None) -> WellnessClaim:
    attempt_id, number, campaign, claimed_at, claimed_by, claim_until = row
    return WellnessClaim(attempt_id, number, campaign, claimed_at, claimed_by, claim_until,
                         taken_over=now is not None and claimed_at != now)


def _video_row(b: VideoBooking) -> tuple[Any, ...]:
    """A booking in the order of VIDEO_BOOKING_COLUMNS, its code upper-case."""
    return (b.code.upper(), _aware(b.slot_start), _aware(b.slot_end), b.topic, b.sign_language,
            b.language, b.number, _aware(b.created_at), b.status, b.call_id, _aware(b.used_at))


def _video_from_row(row: asyncpg.Record) -> VideoBooking:
    return VideoBooking(*row)


def _slot_lock(slot_start: dt.datetime) -> int:
    """The second key of a slot's advisory lock: its start in whole seconds, folded into an
    int4 (two slots that share a key only wait for each other)."""
    return int(slot_start.timestamp()) % 2**31


def _visit_from_row(row: asyncpg.Record) -> Visit:
    visit_id, number, campaign, since, history, done_at, note, cleared_at = row
    return Visit(id=visit_id, number=number, campaign=campaign, since=since,
                 history=statements.visit_history_from_json(history, number, campaign),
                 done_at=done_at, note=note, cleared_at=cleared_at)


_PUT_WELLNESS_PERSON = statements.numbered(statements.PUT_WELLNESS_PERSON)
_GET_WELLNESS_PERSON = statements.numbered(statements.GET_WELLNESS_PERSON)
_SET_WELLNESS_OPT_OUT = statements.numbered(statements.SET_WELLNESS_OPT_OUT)
_CLAIMS = {(capped, fresh): statements.numbered(statements.claim_wellness_attempt(capped=capped, fresh=fresh))
           for capped in (False, True) for fresh in (False, True)}
_WELLNESS_CAP_LOCK = 0x1F5_70_2F  # advisory lock key: capped wellness claims one at a time
_RENEW_WELLNESS_CLAIM = statements.numbered(statements.RENEW_WELLNESS_CLAIM)
_TAKE_OVER_WELLNESS_CLAIM = statements.numbered(statements.TAKE_OVER_WELLNESS_CLAIM)
_FINISH_WELLNESS_ATTEMPT = statements.numbered(statements.FINISH_WELLNESS_ATTEMPT)
_WELLNESS_IN_PROGRESS = statements.numbered(statements.WELLNESS_IN_PROGRESS)
_OPEN_WELLNESS_VISIT = statements.numbered(statements.OPEN_WELLNESS_VISIT)
_GET_OPEN_WELLNESS_VISIT = statements.numbered(statements.GET_OPEN_WELLNESS_VISIT)
_GET_WELLNESS_VISIT = statements.numbered(statements.GET_WELLNESS_VISIT)
_WELLNESS_VISIT_DONE = statements.numbered(statements.WELLNESS_VISIT_DONE)
_CLEAR_WELLNESS_VISITS = statements.numbered(statements.CLEAR_WELLNESS_VISITS)
_PUT_VIDEO_BOOKING = statements.numbered(statements.PUT_VIDEO_BOOKING)
_GET_VIDEO_BOOKING = statements.numbered(statements.GET_VIDEO_BOOKING)
_VIDEO_SLOT_COUNTS = statements.numbered(statements.VIDEO_SLOT_COUNTS)
_USE_VIDEO_BOOKING = statements.numbered(statements.USE_VIDEO_BOOKING)
_CANCEL_VIDEO_BOOKING = statements.numbered(statements.CANCEL_VIDEO_BOOKING)
_LIST_VIDEO_BOOKINGS = statements.numbered(statements.LIST_VIDEO_BOOKINGS)
_VIDEO_SLOT_LOCK = 0x1F5_70_30   # first key of a slot's advisory lock: its bookings one at a time


def _changed(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore:
    def __init__(self, url: str, *, timeouts: StoreTimeouts | None = None) -> None:
        self.dsn, self.min_size, self.max_size = parse_url(url)
        self.where = mask_url(url)
        self.timeouts = timeouts or StoreTimeouts()
        self._pool: asyncpg.Pool | None = None

    # -- lifetime ----------------------------------------------------------------------------
    async def open(self) -> None:
        pool: asyncpg.Pool | None = None
        try:
            async with asyncio.timeout(self.timeouts.open):
                pool = asyncpg.create_pool(
                    self.dsn, min_size=self.min_size, max_size=self.max_size,
                    command_timeout=self.timeouts.operation, timeout=self.timeouts.connect,
                    connection_class=_Connection,
                    server_settings={"statement_timeout": _ms(self.timeouts.operation),
                                     "application_name": "ivr"})
                await pool
                try:
                    await self._attempt(pool, self._create_schema)
                except _Lost as lost:
                    raise lost.cause from None
        except TimeoutError as exc:
            _terminate(pool)
            raise StoreError(f"cannot open PostgreSQL store {self.where}: no answer within "
                             f"{self.timeouts.open:g} s") from exc
        except StoreError:
            _terminate(pool)
            raise
        except _ERRORS as exc:
            _terminate(pool)
            raise StoreError(f"cannot open PostgreSQL store {self.where}: {_describe(exc)}") from exc
        except BaseException:
            _terminate(pool)
            raise
        self._pool = pool

    async def _create_schema(self, conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = {_ms(self.timeouts.open)}")
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK,
                               timeout=self.timeouts.open)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                               "(version integer NOT NULL)")
            version = await conn.fetchval("SELECT version FROM schema_version")
            if version is not None and version > SCHEMA_VERSION:
                raise StoreError(f"{self.where}: database schema {version} is newer than this "
                                 f"engine understands ({SCHEMA_VERSION}); upgrade the engine")
            if version == SCHEMA_VERSION:
                return
            if version is None:
                await conn.execute(_CREATE)
                await conn.execute("INSERT INTO schema_version VALUES ($1)", _FIRST_VERSION)
            for target in range(max(version or _FIRST_VERSION, _FIRST_VERSION) + 1,
                                SCHEMA_VERSION + 1):
                await conn.execute(_MIGRATIONS[target])
            await conn.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION)
            if version is None:
                log.info("store.created", store=self.where, version=SCHEMA_VERSION)
            else:
                log.info("store.migrated", store=self.where, from_version=version,
                         to_version=SCHEMA_VERSION)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(self.timeouts.close):
                await pool.close()
        except TimeoutError:
            log.warning("store.close_timeout", store=self.where)
            pool.terminate()

    async def _run(self, what: str, fn: Callable[[asyncpg.Connection], Awaitable[T]], *,
                   timeout: float) -> T:
        """Run ``fn`` on a pooled connection, all within ``timeout`` seconds."""
        pool = self._pool
        if pool is None:
            raise StoreError(f"{what}: PostgreSQL store {self.where} is not open")
        try:
            async with asyncio.timeout(timeout):
                try:
                    return await self._attempt(pool, fn)
                except _Lost as lost:
                    log.info("store.connection_lost", store=self.where, error=_describe(lost.cause))
                    try:
                        return await self._attempt(pool, fn)
                    except _Lost as again:
                        raise again.cause from None
        except TimeoutError as exc:
            raise StoreError(f"{what}: PostgreSQL {self.where} did not answer within "
                             f"{timeout:g} s") from exc
        except _ERRORS as exc:
            raise StoreError(f"{what}: PostgreSQL {self.where}: {_describe(exc)}") from exc

    async def _attempt(self, pool: asyncpg.Pool,
                       fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """One pooled connection, one ``fn``; ``_Lost`` when the connection died under ``fn``.

        Not ``async with pool.acquire()``: its release waits for the server to acknowledge a
        cancelled query, without bound.  A connection interrupted mid-query (timeout,
        cancellation, lost socket) is closed at once instead; the pool opens a new one.
        """
        conn = await pool.acquire()
        try:
            result = await fn(conn)
        except BaseException as exc:
            if not isinstance(exc, asyncpg.PostgresError) or isinstance(exc, _LOST):
                with contextlib.suppress(asyncpg.InterfaceError):   # already closed and released
                    conn.terminate()
            await pool.release(conn, timeout=self.timeouts.operation)
            if isinstance(exc, _LOST):
                raise _Lost(exc) from exc
            raise
        await pool.release(conn, timeout=self.timeouts.operation)
        return result

    # -- calls -------------------------------------------------------------------------------
    async def call_started(self, record: CallRecord) -> None:
        row = _call_row(record, started=True)
        await self._run(f"cannot note call {record.call_id}",
                        lambda conn: conn.execute(_INSERT_STARTED, *row),
                        timeout=self.timeouts.operation)

    async def call_progress(self, record: CallRecord) -> None:
        row = _call_row(record, started=True)
        await self._run(f"cannot note the progress of call {record.call_id}",
                        lambda conn: conn.execute(_PROGRESS_CALL, *row),
                        timeout=self.timeouts.operation)

    async def calls_progress(self, records: Sequence[CallRecord]) -> None:
        if not records:
            return
        rows = [_call_row(record, started=True) for record in records]

        async def write(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.executemany(_PROGRESS_CALL, rows)

        await self._run(f"cannot note the progress of {len(rows)} calls", write,
                        timeout=self.timeouts.operation)

    async def record_call(self, record: CallRecord) -> None:
        row = _call_row(record)
        await self._run(f"cannot record call {record.call_id}",
                        lambda conn: conn.execute(_UPSERT_CALL, *row),
                        timeout=self.timeouts.operation)

    async def recent_calls(self, limit: int = 50) -> list[CallRecord]:
        rows = await self._run("cannot read calls", lambda conn: conn.fetch(_RECENT, limit),
                               timeout=self.timeouts.operation)
        return [_call_from_row(r) for r in rows]

    async def get_call(self, call_id: str) -> CallRecord | None:
        row = await self._run(f"cannot read call {call_id}",
                              lambda conn: conn.fetchrow(_GET_CALL, call_id),
                              timeout=self.timeouts.operation)
        return _call_from_row(row) if row is not None else None

    async def find_calls(self, query: CallQuery, *, limit: int = 50,
                         after: tuple[dt.datetime, str] | None = None) -> list[CallRecord]:
        if limit < 1:
            return []
        sql = statements.numbered(statements.find_calls(
            since=query.since is not None, until=query.until is not None,
            flow=query.flow is not None, outcome=query.outcome is not None,
            number=query.number is not None, after=after is not None,
            channel=query.channel is not None))
        params: list[Any] = [v for v in (_aware(query.since), _aware(query.until), query.flow,
                                         query.outcome, query.number, query.channel)
                             if v is not None]
        if after is not None:
            params.extend((_aware(after[0]), after[1]))
        params.append(limit)
        rows = await self._run("cannot find calls", lambda conn: conn.fetch(sql, *params),
                               timeout=self.timeouts.operation)
        return [_call_from_row(r) for r in rows]

    async def iter_calls(self, since: dt.datetime, until: dt.datetime, *, flow: str | None = None,
                         batch: int = 5000) -> AsyncIterator[list[CallRecord]]:
        statements.check_batch(batch)
        tail = (statements.ITER_CALLS_FLOW if flow is not None else "") + statements.ITER_CALLS_ORDER
        rest: tuple[Any, ...] = (flow, batch) if flow is not None else (batch,)
        end = _aware(until)
        sql = statements.numbered(statements.ITER_CALLS_FIRST + tail)
        following = statements.numbered(statements.ITER_CALLS_NEXT + tail)
        params: tuple[Any, ...] = (_aware(since), end, *rest)
        while True:
            rows = await self._run("cannot read calls", self._page(sql, params),
                                   timeout=self.timeouts.bulk)
            page = [_call_from_row(r) for r in rows]
            if page:
                yield page
            if len(page) < batch:
                return
            last = page[-1]
            sql, params = following, (last.started_at, last.call_id, end, *rest)

    def _page(self, sql: str,
              params: tuple[Any, ...]) -> Callable[[asyncpg.Connection], Awaitable[list[Any]]]:
        """One page of a long read: it may take the bulk bound, not one operation's."""
        async def read(conn: asyncpg.Connection) -> list[Any]:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL statement_timeout = {_ms(self.timeouts.bulk)}")
                return await conn.fetch(sql, *params, timeout=self.timeouts.bulk)
        return read

    async def count_calls_since(self, number: str, since: dt.datetime, *,
                                unserved_only: bool = False, exclude_call: str | None = None) -> int:
        sql = count_query(unserved_only=unserved_only, exclude_call=exclude_call is not None)
        params: list[Any] = [number, _aware(since)]
        if unserved_only:
            params.append(_SERVED)
        if exclude_call is not None:
            params.append(exclude_call)
        count = await self._run("cannot count calls", lambda conn: conn.fetchval(sql, *params),
                                timeout=self.timeouts.operation)
        return int(count)

    # -- the caller registry -----------------------------------------------------------------
    async def put_callers(self, callers: Sequence[Caller]) -> int:
        if not callers:
            return 0
        now = dt.datetime.now(dt.timezone.utc)
        rows = [(c.number, c.birth_date, c.language, c.needs_assistance, c.name,
                 _aware(c.updated_at) or now, c.wellness or None) for c in callers]

        async def write(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL statement_timeout = {_ms(self.timeouts.bulk)}")
                await conn.executemany(_UPSERT_CALLER, rows, timeout=self.timeouts.bulk)
                await conn.execute(_BUMP_REGISTRY_GENERATION)

        await self._run("cannot write callers", write, timeout=self.timeouts.bulk)
        return len(rows)

    async def get_caller(self, number: str) -> Caller | None:
        row = await self._run("cannot read the caller registry",
                              lambda conn: conn.fetchrow(_GET_CALLER, number),
                              timeout=self.timeouts.operation)
        return _caller_from_row(row) if row is not None else None

    async def registry_generation(self) -> int:
        value = await self._run("cannot read the caller registry's generation",
                                lambda conn: conn.fetchval(_GET_REGISTRY_GENERATION),
                                timeout=self.timeouts.operation)
        return int(value)

    async def list_callers(self, limit: int = 500, *, after: str | None = None) -> list[Caller]:
        if limit < 1:
            return []
        sql = statements.numbered(statements.list_callers(after=after is not None))
        params = (after, limit) if after is not None else (limit,)
        rows = await self._run("cannot read the caller registry",
                               lambda conn: conn.fetch(sql, *params),
                               timeout=self.timeouts.operation)
        return [_caller_from_row(r) for r in rows]

    # -- the queue event log -----------------------------------------------------------------
    async def record_events(self, events: Sequence[QueueEvent]) -> None:
        if not events:
            return
        rows = [(_aware(e.at), e.kind, e.call_id, e.agent_id, e.queue, e.detail) for e in events]
        what = f"cannot record {len(rows)} queue event(s)"

        async def write(conn: asyncpg.Connection) -> None:
            # Not ``async with conn.transaction()``: a connection lost before the commit must
            # surface as lost (nothing was stored: ``_run`` tries again on a fresh connection),
            # one lost during the commit must not (it may have been stored).
            transaction = conn.transaction()
            await transaction.start()
            try:
                await conn.executemany(_INSERT_EVENT, rows)
            except asyncpg.PostgresError as exc:
                if not isinstance(exc, _LOST):
                    await transaction.rollback()
                raise
            try:
                await transaction.commit()
            except _LOST as exc:
                raise StoreError(f"{what}: PostgreSQL {self.where}: the connection was lost "
                                 f"while committing ({_describe(exc)}); the events may or may "
                                 "not have been stored") from exc

        await self._run(what, write, timeout=self.timeouts.operation)

    async def call_events(self, call_id: str) -> list[QueueEvent]:
        rows = await self._run(f"cannot read the events of call {call_id}",
                               lambda conn: conn.fetch(_CALL_EVENTS, call_id),
                               timeout=self.timeouts.operation)
        return [_event_from_row(r) for r in rows]

    async def agent_events(self, agent_id: str, since: dt.datetime,
                           limit: int = 500) -> list[QueueEvent]:
        if limit < 1:
            return []
        rows = await self._run(f"cannot read the events of agent {agent_id}",
                               lambda conn: conn.fetch(_AGENT_EVENTS, agent_id, _aware(since),
                                                       limit),
                               timeout=self.timeouts.operation)
        return [_event_from_row(r) for r in rows]

    async def latest_agent_events(self) -> list[QueueEvent]:
        rows = await self._run("cannot read the agents' latest states",
                               lambda conn: conn.fetch(_LATEST_AGENT_EVENTS),
                               timeout=self.timeouts.operation)
        return [_event_from_row(r) for r in rows]

    async def line_events(self, since: dt.datetime) -> list[QueueEvent]:
        rows = await self._run("cannot read the waiting lines' events",
                               lambda conn: conn.fetch(_LINE_EVENTS, _aware(since)),
                               timeout=self.timeouts.operation)
        return [_event_from_row(r) for r in rows]

    async def iter_events(self, since: dt.datetime, until: dt.datetime, *,
                          batch: int = 5000) -> AsyncIterator[list[QueueEvent]]:
        statements.check_batch(batch)
        end = _aware(until)
        sql = _ITER_EVENTS_FIRST
        params: tuple[Any, ...] = (_aware(since), end, batch)
        while True:
            rows = await self._run("cannot read queue events", self._page(sql, params),
                                   timeout=self.timeouts.bulk)
            if rows:
                yield [_event_from_row(r) for r in rows]
            if len(rows) < batch:
                return
            sql, params = _ITER_EVENTS_NEXT, (rows[-1]["at"], rows[-1]["id"], end, batch)

    async def events_for_calls(self, call_ids: Sequence[str]) -> dict[str, list[QueueEvent]]:
        found: dict[str, list[QueueEvent]] = {c: [] for c in call_ids}
        if not found:
            return found
        rows = await self._run(f"cannot read the events of {len(found)} call(s)",
                               self._page(statements.EVENTS_FOR_CALLS_POSTGRES, (list(found),)),
                               timeout=self.timeouts.bulk)
        for r in rows:
            found[r["call_id"]].append(_event_from_row(r))
        return found

    # -- the supervisors' audit log -------------------------------------------------------------
    async def record_audit(self, entry: AuditEntry) -> None:
        row = (_aware(entry.at), entry.user, entry.role, entry.action, entry.target,
               entry.detail, entry.source)
        await self._run(f"cannot record the audit entry {entry.action}",
                        lambda conn: conn.execute(_INSERT_AUDIT, *row),
                        timeout=self.timeouts.operation)

    async def audit_entries(self, since: dt.datetime, limit: int = 200) -> list[AuditEntry]:
        if limit < 1:
            return []
        rows = await self._run("cannot read the audit log",
                               lambda conn: conn.fetch(_AUDIT_ENTRIES, _aware(since), limit),
                               timeout=self.timeouts.operation)
        return [_audit_from_row(r) for r in rows]

    # -- callback reservations -----------------------------------------------------------------
    async def put_reservation(self, r: Reservation) -> Reservation:
        row = _reservation_row(r)
        got = await self._run(f"cannot book callback reservation {r.id}",
                              lambda conn: conn.fetchrow(_PUT_RESERVATION, *row),
                              timeout=self.timeouts.operation)
        return _reservation_from_row(got)

    async def get_reservation(self, reservation_id: str) -> Reservation | None:
        row = await self._run(f"cannot read callback reservation {reservation_id}",
                              lambda conn: conn.fetchrow(_GET_RESERVATION, reservation_id),
                              timeout=self.timeouts.operation)
        return _reservation_from_row(row) if row is not None else None

    async def list_reservations(self, status: str | None = None, limit: int = 200, *,
                                after: tuple[dt.datetime, str] | None = None) -> list[Reservation]:
        check_status(status)
        sql = statements.numbered(statements.list_reservations(status=status is not None,
                                                               after=after is not None))
        params = (*((status,) if status is not None else ()),
                  *((_aware(after[0]), after[1]) if after is not None else ()), limit)
        rows = await self._run("cannot read callback reservations",
                               lambda conn: conn.fetch(sql, *params),
                               timeout=self.timeouts.operation)
        return [_reservation_from_row(r) for r in rows]

    async def reservation_counts(self, now: dt.datetime, since: dt.datetime) -> dict[str, int]:
        at, start = _aware(now), _aware(since)
        row = await self._run("cannot count callback reservations",
                              lambda conn: conn.fetchrow(_RESERVATION_COUNTS, at, at, start, start),
                              timeout=self.timeouts.operation)
        return dict(zip(statements.RESERVATION_COUNT_KEYS, row, strict=True))

    async def cancel_reservation(self, reservation_id: str) -> bool:
        now = dt.datetime.now(dt.timezone.utc)
        status = await self._run(f"cannot cancel callback reservation {reservation_id}",
                                 lambda conn: conn.execute(_CANCEL, reservation_id, now),
                                 timeout=self.timeouts.operation)
        return _changed(status) == 1

    async def cancel_reservations_for(self, number: str, queue: str | None = None) -> int:
        now = dt.datetime.now(dt.timezone.utc)
        params: tuple[Any, ...]
        if queue is None:
            sql, params = _CANCEL_FOR, (number, now)
        else:
            sql, params = _CANCEL_FOR_QUEUE, (number, now, queue)
        status = await self._run("cannot cancel callback reservations",
                                 lambda conn: conn.execute(sql, *params),
                                 timeout=self.timeouts.operation)
        return _changed(status)

    async def claim_reservations(self, now: dt.datetime, owner: str, lease: float,
                                 limit: int) -> list[Reservation]:
        if limit < 1:
            return []
        at = _aware(now)
        assert at is not None
        until = at + dt.timedelta(seconds=lease)
        rows = await self._run("cannot claim callback reservations",
                               lambda conn: conn.fetch(_CLAIM, at, owner, until, limit),
                               timeout=self.timeouts.operation)
        got = [_reservation_from_row(r) for r in rows]
        got.sort(key=lambda r: (r.arrived_at, r.created_at, r.id))   # RETURNING has no order
        return got

    async def renew_claim(self, reservation_id: str, owner: str, until: dt.datetime) -> bool:
        status = await self._run(f"cannot renew the claim on reservation {reservation_id}",
                                 lambda conn: conn.execute(_RENEW, reservation_id, owner,
                                                           _aware(until)),
                                 timeout=self.timeouts.operation)
        return _changed(status) == 1

    async def release_claims(self, owner: str, *, others: bool = False) -> int:
        now = dt.datetime.now(dt.timezone.utc)
        sql = _RELEASE_OTHERS if others else _RELEASE
        status = await self._run(f"cannot release the reservations claimed by {owner}",
                                 lambda conn: conn.execute(sql, owner, now),
                                 timeout=self.timeouts.operation)
        return _changed(status)

    async def finish_attempt(self, reservation_id: str, owner: str, *, result: str,
                             at: dt.datetime, next_due: dt.datetime | None,
                             final_status: str | None) -> bool:
        check_attempt_outcome(next_due, final_status)
        params: tuple[Any, ...]
        if final_status is not None:
            sql, params = _FINISH_FINAL, (reservation_id, owner, _aware(at), result, final_status)
        else:
            sql, params = _FINISH_AGAIN, (reservation_id, owner, _aware(at), result,
                                          _aware(next_due))
        status = await self._run(f"cannot note the attempt on reservation {reservation_id}",
                                 lambda conn: conn.execute(sql, *params),
                                 timeout=self.timeouts.operation)
        return _changed(status) == 1

    # -- wellness calls --------------------------------------------------------------------------
    async def put_wellness_people(self, people: Sequence[Person]) -> int:
        if not people:
            return 0
        now = dt.datetime.now(dt.timezone.utc)
        rows = [(p.number, p.campaign, p.name, p.language, p.contact, p.address_ref, p.opt_out,
                 _aware(p.added_at) or now, now) for p in people]

        async def write(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.executemany(_PUT_WELLNESS_PERSON, rows)

        await self._run("cannot write wellness people", write, timeout=self.timeouts.bulk)
        return len(rows)

    async def get_wellness_person(self, number: str) -> Person | None:
        row = await self._run("cannot read a wellness person",
                              lambda conn: conn.fetchrow(_GET_WELLNESS_PERSON, number),
                              timeout=self.timeouts.operation)
        return _person_from_row(row) if row is not None else None

    async def list_wellness_people(self, campaign: str | None = None, limit: int = 200, *,
                                   after: str | None = None) -> list[Person]:
        if limit < 1:
            return []
        sql = statements.numbered(statements.list_wellness_people(campaign=campaign is not None,
                                                                  after=after is not None))
        params = tuple(v for v in (campaign, after) if v is not None) + (limit,)
        rows = await self._run("cannot read wellness people", lambda conn: conn.fetch(sql, *params),
                               timeout=self.timeouts.operation)
        return [_person_from_row(r) for r in rows]

    async def set_wellness_opt_out(self, number: str, opt_out: bool) -> bool:
        now = dt.datetime.now(dt.timezone.utc)
        status = await self._run("cannot change a wellness opt-out",
                                 lambda conn: conn.execute(_SET_WELLNESS_OPT_OUT, opt_out, now, number),
                                 timeout=self.timeouts.operation)
        return _changed(status) == 1

    async def claim_wellness_attempt(self, number: str, owner: str, now: dt.datetime,
                                     lease: float, *, cap: int | None = None,
                                     newer_than: dt.datetime | None = None) -> WellnessClaim | None:
        at = _aware(now)
        assert at is not None
        until = at + dt.timedelta(seconds=lease)
        fresh = () if newer_than is None else (_aware(newer_than),)
        sql = _CLAIMS[cap is not None, newer_than is not None]

        async def claim(conn: Any) -> Any:
            if cap is None:
                return await conn.fetchrow(sql, at, owner, until, number, False, *fresh)
            async with conn.transaction():      # engines counting at once would both see room
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _WELLNESS_CAP_LOCK)
                return await conn.fetchrow(sql, at, owner, until, number, False, at, cap, *fresh)

        row = await self._run("cannot claim a wellness attempt", claim, timeout=self.timeouts.operation)
        return _claim_from_row(row, at) if row is not None else None

    async def renew_wellness_claim(self, attempt_id: int, owner: str, until: dt.datetime) -> bool:
        status = await self._run(f"cannot renew the claim on wellness attempt {attempt_id}",
                                 lambda conn: conn.execute(_RENEW_WELLNESS_CLAIM, _aware(until),
                                                           attempt_id, owner),
                                 timeout=self.timeouts.operation)
        return _changed(status) == 1

    async def take_over_wellness_claim(self, attempt_id: int, owner: str,
                                       until: dt.datetime) -> bool:
        status = await self._run(f"cannot take over wellness attempt {attempt_id}",
                                 lambda conn: conn.execute(_TAKE_OVER_WELLNESS_CLAIM, owner,
                                                           _aware(until), attempt_id),
                                 timeout=self.timeouts.operation)
        return _changed(status) == 1

    async def finish_wellness_attempt(self, attempt_id: int, owner: str, *,
                                      result: AttemptResult, at: dt.datetime,
                                      detail: str | None = None) -> bool:
        params = (str(AttemptResult(result)), _aware(at), detail, attempt_id, owner)
        status = await self._run(f"cannot note wellness attempt {attempt_id}",
                                 lambda conn: conn.execute(_FINISH_WELLNESS_ATTEMPT, *params),
                                 timeout=self.timeouts.operation)
        return _changed(status) == 1

    async def unfinished_wellness_attempts(self) -> list[WellnessClaim]:
        rows = await self._run("cannot read unfinished wellness attempts",
                               lambda conn: conn.fetch(statements.UNFINISHED_WELLNESS_ATTEMPTS),
                               timeout=self.timeouts.operation)
        return [_claim_from_row(r) for r in rows]

    async def wellness_in_progress(self, now: dt.datetime) -> dict[str, int]:
        rows = await self._run("cannot count wellness calls in progress",
                               lambda conn: conn.fetch(_WELLNESS_IN_PROGRESS, _aware(now)),
                               timeout=self.timeouts.operation)
        return {r[0]: int(r[1]) for r in rows}

    async def wellness_attempts(self, since: dt.datetime, *, number: str | None = None,
                                campaign: str | None = None, limit: int = 10000) -> list[Attempt]:
        if limit < 1:
            return []
        sql = statements.numbered(statements.wellness_attempts(number=number is not None,
                                                               campaign=campaign is not None))
        params = (_aware(since), *(v for v in (number, campaign) if v is not None), limit)
        rows = await self._run("cannot read wellness attempts", lambda conn: conn.fetch(sql, *params),
                               timeout=self.timeouts.bulk)
        return [Attempt(number=n, campaign=c, at=at, result=AttemptResult(result), detail=detail)
                for n, c, at, result, detail in rows]

    async def open_wellness_visit(self, visit: Visit) -> Visit:
        params = (visit.number, visit.campaign, _aware(visit.since),
                  statements.visit_history_json(visit.history))

        async def put(conn: asyncpg.Connection) -> asyncpg.Record:
            async with conn.transaction():
                await conn.execute(_OPEN_WELLNESS_VISIT, *params)
                return await conn.fetchrow(_GET_OPEN_WELLNESS_VISIT, visit.number)

        row = await self._run("cannot put a person on the visit list", put,
                              timeout=self.timeouts.operation)
        return _visit_from_row(row)

    async def get_wellness_visit(self, visit_id: int) -> Visit | None:
        row = await self._run(f"cannot read visit {visit_id}",
                              lambda conn: conn.fetchrow(_GET_WELLNESS_VISIT, visit_id),
                              timeout=self.timeouts.operation)
        return _visit_from_row(row) if row is not None else None

    async def list_wellness_visits(self, *, open_only: bool = True, campaign: str | None = None,
                                   limit: int = 200, number: str | None = None) -> list[Visit]:
        if limit < 1:
            return []
        sql = statements.numbered(statements.list_wellness_visits(open_only=open_only,
                                                                  campaign=campaign is not None,
                                                                  number=number is not None))
        params = (*(v for v in (campaign, number) if v is not None), limit)
        rows = await self._run("cannot read the visit list", lambda conn: conn.fetch(sql, *params),
                               timeout=self.timeouts.operation)
        return [_visit_from_row(r) for r in rows]

    async def mark_wellness_visit_done(self, visit_id: int, at: dt.datetime, note: str) -> bool:
        status = await self._run(f"cannot mark visit {visit_id} done",
                                 lambda conn: conn.execute(_WELLNESS_VISIT_DONE, _aware(at), note,
                                                           visit_id),
                                 timeout=self.timeouts.operation)
        return _changed(status) == 1

    async def clear_wellness_visits(self, number: str, at: dt.datetime) -> int:
        status = await self._run("cannot clear a visit",
                                 lambda conn: conn.execute(_CLEAR_WELLNESS_VISITS, _aware(at), number),
                                 timeout=self.timeouts.operation)
        return _changed(status)

    # -- video consultations ---------------------------------------------------------------------
    async def put_video_booking(self, booking: VideoBooking, *, capacity: int) -> bool:
        row = _video_row(booking)
        code, slot_start = row[0], row[1]
        tries = 0

        async def put(conn: asyncpg.Connection) -> bool:
            nonlocal tries
            tries += 1
            # Not ``async with conn.transaction()``: on a lost connection its exit raises an
            # InterfaceError in place of the loss, and ``_run`` would not try again.
            transaction = conn.transaction()
            await transaction.start()
            try:
                # Bookings of one slot one at a time: the count below is taken after the lock,
                # so it sees every booking of the slot committed before (READ COMMITTED).
                await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _VIDEO_SLOT_LOCK,
                                   _slot_lock(slot_start))
                stored = None
                if tries > 1:
                    # Tried again on a fresh connection: the first try may have committed.
                    stored = await conn.fetchrow(_GET_VIDEO_BOOKING, code)
                if stored is not None and tuple(stored) == row:
                    booked = True
                else:
                    status = await conn.execute(_PUT_VIDEO_BOOKING, *row, slot_start, capacity)
                    booked = _changed(status) == 1
            except asyncpg.PostgresError as exc:
                if not isinstance(exc, _LOST):
                    await transaction.rollback()
                raise
            await transaction.commit()       # lost here: tried again, it finds itself if stored
            return booked

        return await self._run("cannot book a video consultation", put,
                               timeout=self.timeouts.operation)

    async def get_video_booking(self, code: str) -> VideoBooking | None:
        row = await self._run("cannot read a video booking",
                              lambda conn: conn.fetchrow(_GET_VIDEO_BOOKING, code.upper()),
                              timeout=self.timeouts.operation)
        return _video_from_row(row) if row is not None else None

    async def video_slot_counts(self, since: dt.datetime,
                                until: dt.datetime) -> dict[dt.datetime, int]:
        rows = await self._run("cannot count video bookings",
                               lambda conn: conn.fetch(_VIDEO_SLOT_COUNTS, _aware(since),
                                                       _aware(until)),
                               timeout=self.timeouts.operation)
        return {r[0]: int(r[1]) for r in rows}

    async def use_video_booking(self, code: str, call_id: str,
                                at: dt.datetime) -> VideoBooking | None:
        row = await self._run(f"cannot note call {call_id} on a video booking",
                              lambda conn: conn.fetchrow(_USE_VIDEO_BOOKING, call_id, _aware(at),
                                                         code.upper()),
                              timeout=self.timeouts.operation)
        return _video_from_row(row) if row is not None else None

    async def cancel_video_booking(self, code: str) -> bool:
        status = await self._run("cannot cancel a video booking",
                                 lambda conn: conn.execute(_CANCEL_VIDEO_BOOKING, code.upper()),
                                 timeout=self.timeouts.operation)
        return _changed(status) == 1

    async def list_video_bookings(self, since: dt.datetime, until: dt.datetime,
                                  limit: int = 200) -> list[VideoBooking]:
        if limit < 1:
            return []
        rows = await self._run("cannot read video bookings",
                               lambda conn: conn.fetch(_LIST_VIDEO_BOOKINGS, _aware(since),
                                                       _aware(until), limit),
                               timeout=self.timeouts.operation)
        return [_video_from_row(r) for r in rows]


class _Lost(Exception):
    """A pooled connection died while in use (not: the server refused a new one)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Connection(asyncpg.Connection):
    """A pooled connection handed back without a reset query (one round trip less per use).

    The store keeps no session state: no SET, LISTEN, cursors or session advisory locks, and
    an open transaction is still rolled back by the pool on release.
    """

    def get_reset_query(self) -> str:
        return ""


def _terminate(pool: asyncpg.Pool | None) -> None:
    if pool is not None:
        pool.terminate()
