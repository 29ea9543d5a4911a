"""SQLite store (the embedded default).

One connection lives in one worker thread; every store method is one function run there, so
an operation is atomic (its own transaction, committed or rolled back in the thread) and
operations never interleave.  The event loop only waits for the result, at most for the
operation's timeout: past it the method raises ``StoreError`` (a write that timed out may
still complete in the thread).  SQLite's own busy timeout is shorter than the operation's, so
a database locked by another process frees the thread with an error instead of holding it.

The reads that identify a caller before the first prompt (``get_caller``,
``count_calls_since``, ``registry_generation``) do not queue behind the writes: they run on
read-only connections of their own, in their own threads (``readers``, 2 by default; a
database in WAL mode lets them read beside the writer, and a write waiting on another
process's lock holds only the worker thread).  Each such read sees every write committed
before it starts, so every write awaited before it, not a write still in the worker's queue
(a call noted at its start a moment earlier may not be counted yet).  A ``:memory:`` database
is one connection's own: there every read runs in the worker thread.

Timestamps are stored as UTC text of one fixed shape (``2025-01-31T09:00:00.000000+00:00``),
so text order is time order and ``started_at >= ?`` (``at >= ?`` for events, ``due_at <= ?``
for reservations) can use the indexes.

Callback reservations: booking (an upsert on the partial unique index of open reservations)
and claiming (``BEGIN IMMEDIATE``: select the due ones in line order, mark them claimed) are
each one transaction in the worker thread, so engines sharing one SQLite file (one host)
never claim the same reservation.

Wellness calls: claiming an attempt is one ``INSERT … ON CONFLICT`` on the partial unique
index of unfinished attempts (one per number), so engines sharing the file never ring one
person at once; a claim that lapsed (its engine died) is taken over by the same statement,
the same attempt row, never a second one.  Opening a visit is one transaction (insert unless
open, read back).

Video consultations: booking is one ``INSERT … SELECT … WHERE`` the slot's places held are
fewer than the capacity, in one transaction under the write lock, so engines sharing the file
never both take a slot's last place.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from ivr.call import CallRecord
from ivr.callbacks.model import OPEN_STATUSES, Reservation, check_attempt_outcome, check_status
from ivr.errors import StoreError
from ivr.store import statements
from ivr.store.base import (OUTBOUND_DIALLED, SERVED_OUTCOMES, AuditEntry, Caller, CallQuery, QueueEvent,
                            VideoBooking, WellnessClaim)
from ivr.store.timeouts import StoreTimeouts
from ivr.wellness.model import Attempt, AttemptResult, Person, Visit

log = structlog.get_logger("ivr.store")

T = TypeVar("T")

SCHEMA_VERSION = 10

# Version 1, as the first release created it.  A new database is created at version 1 and then
# migrated like an old one, so new and upgraded databases are the same.
_BASE = (
    """CREATE TABLE calls (
        call_id      TEXT PRIMARY KEY,
        caller       TEXT NOT NULL,
        dialled      TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        ended_at     TEXT,
        flow         TEXT,
        flow_version TEXT,
        language     TEXT,
        nodes        TEXT NOT NULL,
        digits       TEXT NOT NULL,
        outcome      TEXT,
        detail       TEXT NOT NULL DEFAULT '',
        priority     TEXT,
        reason       TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at)",
)

# Statements that take version N-1 to version N.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE calls ADD COLUMN number TEXT",
        "CREATE INDEX calls_number_started ON calls (number, started_at)",
        """CREATE TABLE callers (
            number           TEXT PRIMARY KEY,
            birth_date       TEXT,
            language         TEXT,
            needs_assistance INTEGER NOT NULL DEFAULT 0,
            name             TEXT,
            updated_at       TEXT NOT NULL
        )""",
    ),
    3: (
        """CREATE TABLE events (
            id       INTEGER PRIMARY KEY,
            at       TEXT NOT NULL,
            kind     TEXT NOT NULL,
            call_id  TEXT,
            agent_id TEXT,
            queue    TEXT,
            detail   TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX events_call_at ON events (call_id, at)",
        "CREATE INDEX events_agent_at ON events (agent_id, at)",
    ),
    4: (
        """CREATE TABLE reservations (
            id              TEXT PRIMARY KEY,
            number          TEXT NOT NULL,
            queue           TEXT NOT NULL,
            priority        TEXT,
            reason          TEXT,
            language        TEXT NOT NULL,
            waited          REAL NOT NULL DEFAULT 0,
            arrived_at      TEXT NOT NULL,
            created_at      TEXT NOT NULL,
            due_at          TEXT NOT NULL,
            slot_end        TEXT,
            status          TEXT NOT NULL CHECK (status IN
                                ('pending', 'claimed', 'done', 'failed', 'cancelled')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            last_attempt_at TEXT,
            last_result     TEXT,
            claimed_by      TEXT,
            claim_until     TEXT,
            call_id         TEXT,
            updated_at      TEXT NOT NULL
        )""",
        "CREATE INDEX reservations_status_due ON reservations (status, due_at)",
        "CREATE UNIQUE INDEX reservations_open ON reservations (number, queue) "
        "WHERE status IN ('pending', 'claimed')",
    ),
    5: statements.EVENT_INDEXES,       # what a restarting engine reads: the line, agents' states
    6: (
        "ALTER TABLE calls ADD COLUMN exits TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE calls ADD COLUMN queue TEXT",
        "ALTER TABLE calls ADD COLUMN waited REAL",
        """CREATE TABLE audit (
            id     INTEGER PRIMARY KEY,
            at     TEXT NOT NULL,
            "user" TEXT NOT NULL,
            role   TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT,
            detail TEXT NOT NULL DEFAULT '',
            source TEXT
        )""",
        *statements.V6_INDEXES,
    ),
    7: (
        """CREATE TABLE wellness_people (
            number      TEXT PRIMARY KEY,
            campaign    TEXT NOT NULL,
            name        TEXT NOT NULL DEFAULT '',
            language    TEXT NOT NULL,
            contact     TEXT NOT NULL DEFAULT '',
            address_ref TEXT NOT NULL DEFAULT '',
            opt_out     INTEGER NOT NULL DEFAULT 0,
            added_at    TEXT NOT NULL,
            updated_at  TEXT NOT NULL
        )""",
        """CREATE TABLE wellness_attempts (
            id          INTEGER PRIMARY KEY,
            number      TEXT NOT NULL,
            campaign    TEXT NOT NULL,
            claimed_at  TEXT NOT NULL,
            claimed_by  TEXT NOT NULL,
            claim_until TEXT,
            at          TEXT,
            result      TEXT,
            detail      TEXT
        )""",
        """CREATE TABLE wellness_visits (
            id         INTEGER PRIMARY KEY,
            number     TEXT NOT NULL,
            campaign   TEXT NOT NULL,
            since      TEXT NOT NULL,
            history    TEXT NOT NULL DEFAULT '[]',
            done_at    TEXT,
            note       TEXT,
            cleared_at TEXT
        )""",
        *statements.V7_INDEXES,
    ),
    8: ("ALTER TABLE callers ADD COLUMN wellness TEXT",),    # the caller's wellness campaign
    9: statements.V9_REGISTRY_GENERATION,                     # a cached registry's freshness
    10: (                               # calls' channel and chat; booked video consultations
        *statements.V10_CALL_COLUMNS,
        """CREATE TABLE video_bookings (
            code          TEXT PRIMARY KEY,
            slot_start    TEXT NOT NULL,
            slot_end      TEXT NOT NULL,
            topic         TEXT NOT NULL,
            sign_language TEXT NOT NULL,
            language      TEXT NOT NULL,
            number        TEXT,
            created_at    TEXT NOT NULL,
            status        TEXT NOT NULL CHECK (status IN ('booked', 'used', 'cancelled')),
            call_id       TEXT,
            used_at       TEXT
        )""",
        *statements.V10_VIDEO_INDEXES,
    ),
}

_COLUMNS = statements.CALL_COLUMNS
_UPSERT_CALL = statements.UPSERT_CALL
_INSERT_STARTED = statements.INSERT_STARTED
_PROGRESS_CALL = statements.PROGRESS_CALL
_RECENT = f"{statements.SELECT_CALLS} ORDER BY started_at DESC LIMIT ?"
_GET_CALL = f"{statements.SELECT_CALLS} WHERE call_id = ?"

# The event log's statements are shared with PostgreSQL (``ivr.store.statements``).  Here
# every index ends in the row id, so events of one instant need no sort.

_RES_COLUMNS = statements.RESERVATION_COLUMNS
_RES_TIMES = frozenset({"arrived_at", "created_at", "due_at", "slot_end", "last_attempt_at",
                        "claim_until", "updated_at"})
_RES_SELECT = f"SELECT {', '.join(_RES_COLUMNS)} FROM reservations"
_OPEN = "status IN ('pending', 'claimed')"
# Booking again while one is open updates that one (the partial unique index is the arbiter).
_PUT_RESERVATION = (
    f"INSERT INTO reservations ({', '.join(_RES_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_RES_COLUMNS))}) "
    f"ON CONFLICT (number, queue) WHERE {_OPEN} DO UPDATE SET "
    "arrived_at = min(reservations.arrived_at, excluded.arrived_at), "
    "waited = max(reservations.waited, excluded.waited), "
    "language = excluded.language, priority = excluded.priority, reason = excluded.reason, "
    "due_at = excluded.due_at, slot_end = excluded.slot_end, call_id = excluded.call_id, "
    "updated_at = excluded.updated_at")
_GET_OPEN_RESERVATION = f"{_RES_SELECT} WHERE number = ? AND queue = ? AND {_OPEN}"
_GET_RESERVATION = f"{_RES_SELECT} WHERE id = ?"
# The callers' order in line; reservations booked at one instant in the order booked.
_LINE_ORDER = "ORDER BY arrived_at, created_at, id"
_CLAIMABLE = ("SELECT id FROM reservations WHERE (status = 'pending' AND due_at <= ?) "
              f"OR (status = 'claimed' AND claim_until < ?) {_LINE_ORDER} LIMIT ?")
_CLAIM = ("UPDATE reservations SET status = 'claimed', claimed_by = ?, claim_until = ?, "
          "updated_at = ? WHERE id = ?")
_RENEW = ("UPDATE reservations SET claim_until = ? "
          "WHERE id = ? AND status = 'claimed' AND claimed_by = ?")
_RELEASE = ("UPDATE reservations SET status = 'pending', claimed_by = NULL, claim_until = NULL, "
            "updated_at = ? WHERE status = 'claimed' AND claimed_by = ?")
_RELEASE_OTHERS = ("UPDATE reservations SET status = 'pending', claimed_by = NULL, claim_until = NULL, "
                   "updated_at = ? WHERE status = 'claimed' AND claimed_by <> ?")
_FINISH_FINAL = ("UPDATE reservations SET attempts = attempts + 1, last_attempt_at = ?, "
                 "last_result = ?, status = ?, claim_until = NULL, updated_at = ? "
                 "WHERE id = ? AND status = 'claimed' AND claimed_by = ?")
_FINISH_AGAIN = ("UPDATE reservations SET attempts = attempts + 1, last_attempt_at = ?, "
                 "last_result = ?, status = 'pending', due_at = ?, claimed_by = NULL, "
                 "claim_until = NULL, updated_at = ? "
                 "WHERE id = ? AND status = 'claimed' AND claimed_by = ?")
_CANCEL = (f"UPDATE reservations SET status = 'cancelled', claim_until = NULL, updated_at = ? "
           f"WHERE id = ? AND {_OPEN}")
_CANCEL_FOR = (f"UPDATE reservations SET status = 'cancelled', claim_until = NULL, "
               f"updated_at = ? WHERE number = ? AND {_OPEN}")

_SERVED = tuple(sorted(SERVED_OUTCOMES))
_TS_SHAPE = "____-__-__T__:__:__.______+00:00"


def count_query(*, unserved_only: bool, exclude_call: bool) -> str:
    """The repeat-caller query: parameters number, since[, served outcomes…][, call id]."""
    sql = (f"SELECT count(*) FROM calls WHERE number = ? AND started_at >= ? "
           f"AND dialled <> '{OUTBOUND_DIALLED}'")
    if unserved_only:
        sql += f" AND (outcome IS NULL OR outcome NOT IN ({', '.join('?' * len(_SERVED))}))"
    if exclude_call:
        sql += " AND call_id <> ?"
    return sql


def _ts(value: dt.datetime | None) -> str | None:
    """UTC text of one shape (naive datetimes are taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _from_ts(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _call_row(record: CallRecord, *, started: bool = False) -> tuple[Any, ...]:
    return (record.call_id, record.caller, record.dialled, _ts(record.started_at),
            None if started else _ts(record.ended_at), record.flow, record.flow_version,
            record.language, json.dumps(record.nodes, ensure_ascii=False),
            json.dumps(record.digits), None if started else record.outcome, record.detail,
            record.priority, record.reason, record.number, json.dumps(record.exits),
            record.queue, record.waited, record.channel, statements.chat_json(record.chat),
            record.chat_dropped)


_fromiso = dt.datetime.fromisoformat
_loads = json.loads


def _call_from_row(row: Sequence[Any]) -> CallRecord:
    return _calls_from_rows([row])[0]


def _calls_from_rows(rows: Iterable[Sequence[Any]]) -> list[CallRecord]:
    """Records from rows in the order of CALL_COLUMNS.  Streams read millions of rows through
    here: the JSON lists (paths, keys, exits) repeat from call to call, so each text is decoded
    once per page and every record gets its own copy."""
    decoded: dict[str, list[str]] = {}

    def listed(text: str) -> list[str]:
        got = decoded.get(text)
        if got is None:
            got = decoded[text] = _loads(text)
        return got.copy()

    return [CallRecord(call_id, caller, dialled, _fromiso(started_at),
                       _fromiso(ended_at) if ended_at else None, flow, flow_version, language,
                       listed(nodes), listed(digits), outcome, detail, priority, reason, number,
                       listed(exits), queue, waited, channel, statements.chat_from_json(chat),
                       chat_dropped)
            for (call_id, caller, dialled, started_at, ended_at, flow, flow_version, language,
                 nodes, digits, outcome, detail, priority, reason, number, exits, queue,
                 waited, channel, chat, chat_dropped) in rows]


def _event_row(event: QueueEvent) -> tuple[Any, ...]:
    return (_ts(event.at), event.kind, event.call_id, event.agent_id, event.queue, event.detail)


def _event_from_row(row: Sequence[Any]) -> QueueEvent:
    at, kind, call_id, agent_id, queue, detail = row
    return QueueEvent(_fromiso(at), kind, call_id, agent_id, queue, detail)


def _audit_from_row(row: Sequence[Any]) -> AuditEntry:
    at, user, role, action, target, detail, source = row
    return AuditEntry(_fromiso(at), user, role, action, target, detail, source)


def _reservation_row(r: Reservation) -> tuple[Any, ...]:
    return tuple(_ts(getattr(r, c)) if c in _RES_TIMES else getattr(r, c) for c in _RES_COLUMNS)


def _reservation_from_row(row: Sequence[Any]) -> Reservation:
    d = dict(zip(_RES_COLUMNS, row, strict=True))
    for c in _RES_TIMES:
        d[c] = _from_ts(d[c])
    d["waited"] = float(d["waited"])
    return Reservation(**d)


def _caller_from_row(row: Sequence[Any]) -> Caller:
    number, birth_date, language, needs_assistance, name, updated_at, wellness = row
    return Caller(number=number,
                  birth_date=dt.date.fromisoformat(birth_date) if birth_date else None,
                  language=language, needs_assistance=bool(needs_assistance), name=name,
                  wellness=wellness or None, updated_at=_from_ts(updated_at))


def _person_from_row(row: Sequence[Any]) -> Person:
    number, campaign, name, language, contact, address_ref, opt_out, added_at = row
    return Person(number=number, campaign=campaign, name=name, language=language,
                  contact=contact, address_ref=address_ref, opt_out=bool(opt_out),
                  added_at=_from_ts(added_at))


def _claim_from_row(row: Sequence[Any], now: str | None = None) -> WellnessClaim:
    attempt_id, number, campaign, claimed_at, claimed_by, claim_until = row
    return WellnessClaim(attempt_id, number, campaign, _fromiso(claimed_at), claimed_by,
                         _from_ts(claim_until), taken_over=now is not None and claimed_at != now)


def _video_row(b: VideoBooking) -> tuple[Any, ...]:
    """A booking in the order of VIDEO_BOOKING_COLUMNS, its code upper-case."""
    return (b.code.upper(), _ts(b.slot_start), _ts(b.slot_end), b.topic, b.sign_language,
            b.language, b.number, _ts(b.created_at), b.status, b.call_id, _ts(b.used_at))


def _video_from_row(row: Sequence[Any]) -> VideoBooking:
    code, slot_start, slot_end, topic, sign_language, language, number, created_at, status, \
        call_id, used_at = row
    return VideoBooking(code=code, slot_start=_fromiso(slot_start), slot_end=_fromiso(slot_end),
                        topic=topic, sign_language=sign_language, language=language,
                        number=number, created_at=_fromiso(created_at), status=status,
                        call_id=call_id, used_at=_from_ts(used_at))


def _visit_from_row(row: Sequence[Any]) -> Visit:
    visit_id, number, campaign, since, history, done_at, note, cleared_at = row
    return Visit(id=visit_id, number=number, campaign=campaign, since=_fromiso(since),
                 history=statements.visit_history_from_json(history, number, campaign),
                 done_at=_from_ts(done_at), note=note, cleared_at=_from_ts(cleared_at))


def _settle(waiters: list[asyncio.Future[None]], outcomes: list[BaseException | None]) -> None:
    """On the loop: the waiters of a flush of call writes learn how theirs went (a waiter of
    several rows, the first of its rows refused)."""
    failed: dict[asyncio.Future[None], BaseException] = {}
    for waiter, outcome in zip(waiters, outcomes, strict=True):
        if outcome is not None:
            failed.setdefault(waiter, outcome)
    for waiter in dict.fromkeys(waiters):
        if waiter.done():                   # timed out, or its task was cancelled
            continue
        if (exc := failed.get(waiter)) is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.execute("COMMIT")


class _ReaderConnection(threading.local):
    """Each reader thread's own read-only connection (opened on its first read)."""

    conn: sqlite3.Connection | None = None


class SqliteStore:
    def __init__(self, path: str, *, timeouts: StoreTimeouts | None = None, readers: int = 2) -> None:
        if readers < 0:
            raise ValueError(f"readers must be 0 or more, got {readers}")
        self.path = path
        self.timeouts = timeouts or StoreTimeouts()
        self.readers = 0 if path in (":memory:", "") else readers     # 0: reads in the worker thread
        self._worker: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None     # used in the worker thread only
        self._reader: ThreadPoolExecutor | None = None
        self._read_uri = ""
        self._reader_conn = _ReaderConnection()
        self._reader_conns: list[sqlite3.Connection] = []   # every reader's, to close them
        self._reader_lock = threading.Lock()
        # Calls' writes waiting for the worker (``_write_call``): one transaction takes them all.
        self._call_writes: list[tuple[str, tuple[Any, ...], asyncio.Future[None]]] = []
        self._call_writes_lock = threading.Lock()
        self._call_writes_due = False           # a flush is queued in the worker

    # -- lifetime ----------------------------------------------------------------------------
    async def open(self) -> None:
        """The worker thread and its connection (schema created or migrated, WAL mode set),
        then the reader threads, whose connections open on their first read."""
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-sqlite")
        try:
            before = await self._run(f"cannot open SQLite store {self.path}",
                                     self._open_in_thread, timeout=self.timeouts.open)
        except BaseException:
            await self.close()
            raise
        if self.readers:
            self._reader = ThreadPoolExecutor(max_workers=self.readers,
                                              thread_name_prefix="ivr-sqlite-read")
        if before not in (0, SCHEMA_VERSION):
            log.info("store.migrated", store=self.path, from_version=before, to_version=SCHEMA_VERSION)

    async def close(self) -> None:
        """The readers first (the reads in progress finish, their connections close), then the
        worker's connection (after the writes queued before): the reverse of ``open``, all
        within ``timeouts.close``."""
        reader, self._reader = self._reader, None
        worker, self._worker = self._worker, None
        if worker is None:
            return
        try:
            async with asyncio.timeout(self.timeouts.close):
                if reader is not None:
                    await asyncio.to_thread(self._close_readers, reader)
                await asyncio.get_running_loop().run_in_executor(worker, self._close_in_thread)
        except (TimeoutError, sqlite3.Error) as exc:
            log.warning("store.close_failed", store=self.path, error=str(exc) or type(exc).__name__)
        finally:
            worker.shutdown(wait=False)

    def _busy_timeout(self) -> float:
        return max(0.05, self.timeouts.operation * 0.8)

    def _open_in_thread(self) -> int:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if self.readers:
            # The file the worker opens, wherever the working directory is later.
            self._read_uri = f"{Path(self.path).resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout(), isolation_level=None)
        self._conn = conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        with _transaction(conn):
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is not None:
                version = row[0]
            elif conn.execute("SELECT 1 FROM sqlite_master "
                              "WHERE type = 'table' AND name = 'calls'").fetchone():
                version = 1     # the first release created its tables before the version row
                conn.execute("INSERT INTO schema_version VALUES (1)")
            else:
                version = 0
                for statement in _BASE:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (1)")
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: database schema {version} is newer than this "
                                 f"engine understands ({SCHEMA_VERSION}); upgrade the engine")
            for target in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    conn.execute(statement)
                if target == 2:
                    _normalise_timestamps(conn)
            conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        return version

    def _close_in_thread(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _close_readers(self, reader: ThreadPoolExecutor) -> None:
        # Not in a reader thread: after every read handed to them has finished.
        reader.shutdown(wait=True)
        with self._reader_lock:
            conns, self._reader_conns = self._reader_conns, []
        for conn in conns:
            conn.close()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"SQLite store {self.path} is not open")
        return self._conn

    def _reader_db(self) -> sqlite3.Connection:
        """This reader thread's read-only connection (the worker's where there are no readers)."""
        if not self.readers:
            return self._db()
        conn = self._reader_conn.conn
        if conn is None:
            # Closed by ``_close_readers`` from another thread, once this one is idle.
            conn = sqlite3.connect(self._read_uri, uri=True, timeout=self._busy_timeout(),
                                   isolation_level=None, check_same_thread=False)
            with self._reader_lock:
                self._reader_conns.append(conn)
            self._reader_conn.conn = conn
        return conn

    async def _run(self, what: str, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        """Run ``fn(*args)`` in the worker thread within ``timeout`` seconds."""
        return await self._in(self._worker, what, fn, *args, timeout=timeout)

    async def _read(self, what: str, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        """Run the read ``fn(*args)`` in a reader thread within ``timeout`` seconds; ``fn``
        reads through ``_reader_db``.  Without readers, in the worker thread."""
        return await self._in(self._reader if self.readers else self._worker, what, fn, *args,
                              timeout=timeout)

    async def _in(self, pool: ThreadPoolExecutor | None, what: str, fn: Callable[..., T],
                  *args: Any, timeout: float) -> T:
        if pool is None:
            raise StoreError(f"{what}: SQLite store {self.path} is not open")
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.get_running_loop().run_in_executor(
                    pool, functools.partial(fn, *args))
        except TimeoutError as exc:
            raise StoreError(f"{what}: SQLite store {self.path} did not answer "
                             f"within {timeout:g} s") from exc
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{what}: {exc}") from exc

    # -- calls -------------------------------------------------------------------------------
    async def call_started(self, record: CallRecord) -> None:
        await self._write_call(f"cannot note call {record.call_id}", _INSERT_STARTED,
                               _call_row(record, started=True))

    async def call_progress(self, record: CallRecord) -> None:
        await self._write_call(f"cannot note the progress of call {record.call_id}", _PROGRESS_CALL,
                               _call_row(record, started=True))

    async def calls_progress(self, records: Sequence[CallRecord]) -> None:
        if records:
            await self._write_calls(f"cannot note the progress of {len(records)} calls",
                                    [(_PROGRESS_CALL, _call_row(r, started=True)) for r in records])

    async def record_call(self, record: CallRecord) -> None:
        await self._write_call(f"cannot record call {record.call_id}", _UPSERT_CALL, _call_row(record))

    async def _write_call(self, what: str, sql: str, row: tuple[Any, ...]) -> None:
        await self._write_calls(what, [(sql, row)])

    async def _write_calls(self, what: str, writes: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Calls' writes (one call's start, progress or record, or several calls' progress), in
        the worker thread with every other call write queued meanwhile, in one transaction (group commit: a busy engine
        writes hundreds a second, and a transaction each cost more than the rows).  Answers
        within ``timeouts.operation``; a write that timed out may still be written later (each
        is an idempotent upsert of the call's row as it was)."""
        worker = self._worker
        if worker is None:
            raise StoreError(f"{what}: SQLite store {self.path} is not open")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._call_writes_lock:
            self._call_writes.extend((sql, row, done) for sql, row in writes)
            flush, self._call_writes_due = not self._call_writes_due, True
        if flush:
            try:
                worker.submit(self._flush_call_writes, loop)
            except RuntimeError as exc:          # shut down meanwhile
                with self._call_writes_lock:
                    self._call_writes_due = False
                raise StoreError(f"{what}: SQLite store {self.path} is not open") from exc
        try:
            async with asyncio.timeout(self.timeouts.operation):
                await done
        except TimeoutError as exc:
            raise StoreError(f"{what}: SQLite store {self.path} did not answer "
                             f"within {self.timeouts.operation:g} s") from exc
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{what}: {exc}") from exc

    def _flush_call_writes(self, loop: asyncio.AbstractEventLoop) -> None:
        """In the worker: every call write queued so far, in one transaction; when a row is
        refused, each in its own, so that the bad one fails alone."""
        with self._call_writes_lock:
            batch, self._call_writes = self._call_writes, []
            self._call_writes_due = False
        outcomes: list[BaseException | None]
        try:
            conn = self._db()
            with _transaction(conn):
                for sql, row, _ in batch:
                    conn.execute(sql, row)
            outcomes = [None] * len(batch)
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            # A row the database refuses: each on its own, so that it fails alone.
            outcomes = [self._write_one(sql, row) for sql, row, _ in batch]
        except (sqlite3.Error, OSError, StoreError) as exc:
            # The database itself (locked past the busy timeout, the disk, closed): all of them.
            outcomes = [exc] * len(batch)
        with contextlib.suppress(RuntimeError):          # the loop is closed: nobody waits
            loop.call_soon_threadsafe(_settle, [done for _, _, done in batch], outcomes)

    def _write_one_or_raise(self, sql: str, row: tuple[Any, ...]) -> None:
        if (exc := self._write_one(sql, row)) is not None:
            raise exc

    def _write_one(self, sql: str, row: tuple[Any, ...]) -> BaseException | None:
        try:
            conn = self._db()
            with _transaction(conn):
                conn.execute(sql, row)
        except (sqlite3.Error, OSError, StoreError) as exc:
            return exc
        return None

    async def recent_calls(self, limit: int = 50) -> list[CallRecord]:
        rows = await self._run("cannot read calls", self._fetchall, _RECENT, (limit,),
                               timeout=self.timeouts.operation)
        return [_call_from_row(r) for r in rows]

    async def get_call(self, call_id: str) -> CallRecord | None:
        rows = await self._run(f"cannot read call {call_id}", self._fetchall, _GET_CALL,
                               (call_id,), timeout=self.timeouts.operation)
        return _call_from_row(rows[0]) if rows else None

    async def find_calls(self, query: CallQuery, *, limit: int = 50,
                         after: tuple[dt.datetime, str] | None = None) -> list[CallRecord]:
        if limit < 1:
            return []
        sql = statements.find_calls(since=query.since is not None, until=query.until is not None,
                                    flow=query.flow is not None, outcome=query.outcome is not None,
                                    number=query.number is not None, after=after is not None,
                                    channel=query.channel is not None)
        params: list[Any] = [v for v in (_ts(query.since), _ts(query.until), query.flow,
                                         query.outcome, query.number, query.channel)
                             if v is not None]
        if after is not None:
            params.extend((_ts(after[0]), after[1]))
        params.append(limit)
        return await self._run("cannot find calls", self._read_calls, sql, tuple(params),
                               timeout=self.timeouts.operation)

    async def iter_calls(self, since: dt.datetime, until: dt.datetime, *, flow: str | None = None,
                         batch: int = 5000) -> AsyncIterator[list[CallRecord]]:
        statements.check_batch(batch)
        tail = (statements.ITER_CALLS_FLOW if flow is not None else "") + statements.ITER_CALLS_ORDER
        rest: tuple[Any, ...] = (flow, batch) if flow is not None else (batch,)
        end = _ts(until)
        sql, params = statements.ITER_CALLS_FIRST + tail, (_ts(since), end, *rest)
        following = statements.ITER_CALLS_NEXT + tail
        while True:
            page = await self._run("cannot read calls", self._read_calls, sql, params,
                                   timeout=self.timeouts.bulk)
            if page:
                yield page
            if len(page) < batch:
                return
            last = page[-1]
            sql, params = following, (_ts(last.started_at), last.call_id, end, *rest)

    def _read_calls(self, sql: str, params: tuple[Any, ...]) -> list[CallRecord]:
        # Rows become records here, in the worker thread, not on the event loop.
        return _calls_from_rows(self._db().execute(sql, params))

    async def count_calls_since(self, number: str, since: dt.datetime, *,
                                unserved_only: bool = False, exclude_call: str | None = None) -> int:
        sql = count_query(unserved_only=unserved_only, exclude_call=exclude_call is not None)
        params: list[Any] = [number, _ts(since)]
        if unserved_only:
            params.extend(_SERVED)
        if exclude_call is not None:
            params.append(exclude_call)
        rows = await self._read("cannot count calls", self._read_all, sql, tuple(params),
                                timeout=self.timeouts.operation)
        return int(rows[0][0])

    def _fetchall(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self._db().execute(sql, params).fetchall()

    def _read_all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        # fetchall: the statement runs to its end, so no read transaction stays open.
        return self._reader_db().execute(sql, params).fetchall()

    # -- the caller registry -----------------------------------------------------------------
    async def put_callers(self, callers: Sequence[Caller]) -> int:
        if not callers:
            return 0
        now = dt.datetime.now(dt.timezone.utc)
        rows = [(c.number, c.birth_date.isoformat() if c.birth_date else None, c.language,
                 int(c.needs_assistance), c.name, _ts(c.updated_at or now), c.wellness or None)
                for c in callers]
        await self._run("cannot write callers", self._write_callers, rows,
                        timeout=self.timeouts.bulk)
        return len(rows)

    def _write_callers(self, rows: list[tuple[Any, ...]]) -> None:
        conn = self._db()
        with _transaction(conn):
            conn.executemany(statements.UPSERT_CALLER, rows)
            conn.execute(statements.BUMP_REGISTRY_GENERATION)

    def _write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        conn = self._db()
        with _transaction(conn):
            conn.executemany(sql, rows)

    async def get_caller(self, number: str) -> Caller | None:
        rows = await self._read("cannot read the caller registry", self._read_all,
                                statements.GET_CALLER, (number,), timeout=self.timeouts.operation)
        return _caller_from_row(rows[0]) if rows else None

    async def registry_generation(self) -> int:
        rows = await self._read("cannot read the caller registry's generation", self._read_all,
                                statements.GET_REGISTRY_GENERATION, (),
                                timeout=self.timeouts.operation)
        return int(rows[0][0])

    async def list_callers(self, limit: int = 500, *, after: str | None = None) -> list[Caller]:
        if limit < 1:
            return []
        sql = statements.list_callers(after=after is not None)
        params = (after, limit) if after is not None else (limit,)
        rows = await self._run("cannot read the caller registry", self._fetchall, sql, params,
                               timeout=self.timeouts.operation)
        return [_caller_from_row(r) for r in rows]

    # -- the queue event log -----------------------------------------------------------------
    async def record_events(self, events: Sequence[QueueEvent]) -> None:
        if not events:
            return
        rows = [_event_row(e) for e in events]
        await self._run(f"cannot record {len(rows)} queue event(s)", self._write_many,
                        statements.INSERT_EVENT, rows, timeout=self.timeouts.operation)

    async def call_events(self, call_id: str) -> list[QueueEvent]:
        rows = await self._run(f"cannot read the events of call {call_id}", self._fetchall,
                               statements.CALL_EVENTS, (call_id,), timeout=self.timeouts.operation)
        return [_event_from_row(r) for r in rows]

    async def agent_events(self, agent_id: str, since: dt.datetime,
                           limit: int = 500) -> list[QueueEvent]:
        if limit < 1:
            return []
        rows = await self._run(f"cannot read the events of agent {agent_id}", self._fetchall,
                               statements.AGENT_EVENTS, (agent_id, _ts(since), limit),
                               timeout=self.timeouts.operation)
        return [_event_from_row(r) for r in rows]

    async def latest_agent_events(self) -> list[QueueEvent]:
        rows = await self._run("cannot read the agents' latest states", self._fetchall,
                               statements.LATEST_AGENT_EVENTS, (), timeout=self.timeouts.operation)
        return [_event_from_row(r) for r in rows]

    async def line_events(self, since: dt.datetime) -> list[QueueEvent]:
        rows = await self._run("cannot read the waiting lines' events", self._fetchall,
                               statements.LINE_EVENTS, (_ts(since),), timeout=self.timeouts.operation)
        return [_event_from_row(r) for r in rows]

    async def iter_events(self, since: dt.datetime, until: dt.datetime, *,
                          batch: int = 5000) -> AsyncIterator[list[QueueEvent]]:
        statements.check_batch(batch)
        end = _ts(until)
        sql, params = statements.ITER_EVENTS_FIRST, (_ts(since), end, batch)
        while True:
            page, key = await self._run("cannot read queue events", self._read_events, sql,
                                        params, timeout=self.timeouts.bulk)
            if page:
                yield page
            if len(page) < batch:
                return
            sql, params = statements.ITER_EVENTS_NEXT, (*key, end, batch)

    def _read_events(self, sql: str,
                     params: tuple[Any, ...]) -> tuple[list[QueueEvent], tuple[Any, ...]]:
        """A page of events and the key (at, id) of its last one (``()`` for none)."""
        rows = self._db().execute(sql, params).fetchall()
        key = (rows[-1][1], rows[-1][0]) if rows else ()
        return [_event_from_row(r[1:]) for r in rows], key

    async def events_for_calls(self, call_ids: Sequence[str]) -> dict[str, list[QueueEvent]]:
        found: dict[str, list[QueueEvent]] = {c: [] for c in call_ids}
        if not found:
            return found
        rows = await self._run(f"cannot read the events of {len(found)} call(s)", self._fetchall,
                               statements.EVENTS_FOR_CALLS_SQLITE, (json.dumps(list(found)),),
                               timeout=self.timeouts.bulk)
        for r in rows:
            found[r[2]].append(_event_from_row(r))
        return found

    # -- the supervisors' audit log -------------------------------------------------------------
    async def record_audit(self, entry: AuditEntry) -> None:
        row = (_ts(entry.at), entry.user, entry.role, entry.action, entry.target, entry.detail,
               entry.source)
        await self._run(f"cannot record the audit entry {entry.action}", self._write_one_or_raise,
                        statements.INSERT_AUDIT, row, timeout=self.timeouts.operation)

    async def audit_entries(self, since: dt.datetime, limit: int = 200) -> list[AuditEntry]:
        if limit < 1:
            return []
        rows = await self._run("cannot read the audit log", self._fetchall,
                               statements.AUDIT_ENTRIES, (_ts(since), limit),
                               timeout=self.timeouts.operation)
        return [_audit_from_row(r) for r in rows]

    # -- callback reservations -----------------------------------------------------------------
    async def put_reservation(self, r: Reservation) -> Reservation:
        row = await self._run(f"cannot book callback reservation {r.id}",
                              self._put_reservation, r, timeout=self.timeouts.operation)
        return _reservation_from_row(row)

    def _put_reservation(self, r: Reservation) -> tuple[Any, ...]:
        conn = self._db()
        with _transaction(conn):
            conn.execute(_PUT_RESERVATION, _reservation_row(r))
            if r.status in OPEN_STATUSES:
                return conn.execute(_GET_OPEN_RESERVATION, (r.number, r.queue)).fetchone()
            return conn.execute(_GET_RESERVATION, (r.id,)).fetchone()

    async def get_reservation(self, reservation_id: str) -> Reservation | None:
        rows = await self._run(f"cannot read callback reservation {reservation_id}",
                               self._fetchall, _GET_RESERVATION, (reservation_id,),
                               timeout=self.timeouts.operation)
        return _reservation_from_row(rows[0]) if rows else None

    async def list_reservations(self, status: str | None = None, limit: int = 200, *,
                                after: tuple[dt.datetime, str] | None = None) -> list[Reservation]:
        check_status(status)
        sql = statements.list_reservations(status=status is not None, after=after is not None)
        params = (*((status,) if status is not None else ()),
                  *((_ts(after[0]), after[1]) if after is not None else ()), limit)
        rows = await self._run("cannot read callback reservations", self._fetchall, sql, params,
                               timeout=self.timeouts.operation)
        return [_reservation_from_row(r) for r in rows]

    async def reservation_counts(self, now: dt.datetime, since: dt.datetime) -> dict[str, int]:
        at, start = _ts(now), _ts(since)
        rows = await self._run("cannot count callback reservations", self._fetchall,
                               statements.RESERVATION_COUNTS, (at, at, start, start),
                               timeout=self.timeouts.operation)
        return dict(zip(statements.RESERVATION_COUNT_KEYS, rows[0], strict=True))

    async def cancel_reservation(self, reservation_id: str) -> bool:
        now = _ts(dt.datetime.now(dt.timezone.utc))
        changed = await self._run(f"cannot cancel callback reservation {reservation_id}",
                                  self._update, _CANCEL, (now, reservation_id),
                                  timeout=self.timeouts.operation)
        return changed == 1

    async def cancel_reservations_for(self, number: str, queue: str | None = None) -> int:
        now = _ts(dt.datetime.now(dt.timezone.utc))
        params: tuple[Any, ...]
        sql, params = _CANCEL_FOR, (now, number)
        if queue is not None:
            sql, params = sql + " AND queue = ?", (now, number, queue)
        return await self._run("cannot cancel callback reservations", self._update, sql, params,
                               timeout=self.timeouts.operation)

    async def claim_reservations(self, now: dt.datetime, owner: str, lease: float,
                                 limit: int) -> list[Reservation]:
        if limit < 1:
            return []
        until = now + dt.timedelta(seconds=lease)
        rows = await self._run("cannot claim callback reservations", self._claim,
                               _ts(now), owner, _ts(until), limit,
                               timeout=self.timeouts.operation)
        return [_reservation_from_row(r) for r in rows]

    def _claim(self, now: str, owner: str, until: str, limit: int) -> list[Any]:
        conn = self._db()
        with _transaction(conn):
            ids = [row[0] for row in conn.execute(_CLAIMABLE, (now, now, limit))]
            if not ids:
                return []
            conn.executemany(_CLAIM, [(owner, until, now, i) for i in ids])
            return conn.execute(f"{_RES_SELECT} WHERE id IN ({', '.join('?' * len(ids))}) "
                                f"{_LINE_ORDER}", ids).fetchall()

    async def renew_claim(self, reservation_id: str, owner: str, until: dt.datetime) -> bool:
        changed = await self._run(f"cannot renew the claim on reservation {reservation_id}",
                                  self._update, _RENEW, (_ts(until), reservation_id, owner),
                                  timeout=self.timeouts.operation)
        return changed == 1

    async def release_claims(self, owner: str, *, others: bool = False) -> int:
        now = _ts(dt.datetime.now(dt.timezone.utc))
        return await self._run(f"cannot release the reservations claimed by {owner}",
                               self._update, _RELEASE_OTHERS if others else _RELEASE, (now, owner),
                               timeout=self.timeouts.operation)

    async def finish_attempt(self, reservation_id: str, owner: str, *, result: str,
                             at: dt.datetime, next_due: dt.datetime | None,
                             final_status: str | None) -> bool:
        check_attempt_outcome(next_due, final_status)
        if final_status is not None:
            sql = _FINISH_FINAL
            params: tuple[Any, ...] = (_ts(at), result, final_status, _ts(at), reservation_id,
                                       owner)
        else:
            sql = _FINISH_AGAIN
            params = (_ts(at), result, _ts(next_due), _ts(at), reservation_id, owner)
        changed = await self._run(f"cannot note the attempt on reservation {reservation_id}",
                                  self._update, sql, params, timeout=self.timeouts.operation)
        return changed == 1

    def _update(self, sql: str, params: tuple[Any, ...]) -> int:
        conn = self._db()
        with _transaction(conn):
            return conn.execute(sql, params).rowcount

    # -- wellness calls --------------------------------------------------------------------------
    async def put_wellness_people(self, people: Sequence[Person]) -> int:
        if not people:
            return 0
        now = _ts(dt.datetime.now(dt.timezone.utc))
        rows = [(p.number, p.campaign, p.name, p.language, p.contact, p.address_ref,
                 int(p.opt_out), _ts(p.added_at) or now, now) for p in people]
        await self._run("cannot write wellness people", self._write_many,
                        statements.PUT_WELLNESS_PERSON, rows, timeout=self.timeouts.bulk)
        return len(rows)

    async def get_wellness_person(self, number: str) -> Person | None:
        rows = await self._run("cannot read a wellness person", self._fetchall,
                               statements.GET_WELLNESS_PERSON, (number,),
                               timeout=self.timeouts.operation)
        return _person_from_row(rows[0]) if rows else None

    async def list_wellness_people(self, campaign: str | None = None, limit: int = 200, *,
                                   after: str | None = None) -> list[Person]:
        if limit < 1:
            return []
        sql = statements.list_wellness_people(campaign=campaign is not None, after=after is not None)
        params = tuple(v for v in (campaign, after) if v is not None) + (limit,)
        rows = await self._run("cannot read wellness people", self._fetchall, sql, params,
                               timeout=self.timeouts.operation)
        return [_person_from_row(r) for r in rows]

    async def set_wellness_opt_out(self, number: str, opt_out: bool) -> bool:
        now = _ts(dt.datetime.now(dt.timezone.utc))
        changed = await self._run("cannot change a wellness opt-out", self._update,
                                  statements.SET_WELLNESS_OPT_OUT, (int(opt_out), now, number),
                                  timeout=self.timeouts.operation)
        return changed == 1

    async def claim_wellness_attempt(self, number: str, owner: str, now: dt.datetime,
                                     lease: float, *, cap: int | None = None,
                                     newer_than: dt.datetime | None = None) -> WellnessClaim | None:
        at = _ts(now)
        until = _ts(now + dt.timedelta(seconds=lease))
        params: tuple[Any, ...] = (at, owner, until, number, 0)
        if cap is not None:
            params += (at, cap)
        if newer_than is not None:
            params += (_ts(newer_than),)
        sql = statements.claim_wellness_attempt(capped=cap is not None, fresh=newer_than is not None)
        rows = await self._run("cannot claim a wellness attempt", self._write_returning,
                               sql, params, timeout=self.timeouts.operation)
        return _claim_from_row(rows[0], at) if rows else None

    def _write_returning(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        conn = self._db()
        with _transaction(conn):
            return conn.execute(sql, params).fetchall()

    async def renew_wellness_claim(self, attempt_id: int, owner: str, until: dt.datetime) -> bool:
        changed = await self._run(f"cannot renew the claim on wellness attempt {attempt_id}",
                                  self._update, statements.RENEW_WELLNESS_CLAIM,
                                  (_ts(until), attempt_id, owner), timeout=self.timeouts.operation)
        return changed == 1

    async def take_over_wellness_claim(self, attempt_id: int, owner: str,
                                       until: dt.datetime) -> bool:
        changed = await self._run(f"cannot take over wellness attempt {attempt_id}", self._update,
                                  statements.TAKE_OVER_WELLNESS_CLAIM,
                                  (owner, _ts(until), attempt_id), timeout=self.timeouts.operation)
        return changed == 1

    async def finish_wellness_attempt(self, attempt_id: int, owner: str, *,
                                      result: AttemptResult, at: dt.datetime,
                                      detail: str | None = None) -> bool:
        changed = await self._run(f"cannot note wellness attempt {attempt_id}", self._update,
                                  statements.FINISH_WELLNESS_ATTEMPT,
                                  (str(AttemptResult(result)), _ts(at), detail, attempt_id, owner),
                                  timeout=self.timeouts.operation)
        return changed == 1

    async def unfinished_wellness_attempts(self) -> list[WellnessClaim]:
        rows = await self._run("cannot read unfinished wellness attempts", self._fetchall,
                               statements.UNFINISHED_WELLNESS_ATTEMPTS, (),
                               timeout=self.timeouts.operation)
        return [_claim_from_row(r) for r in rows]

    async def wellness_in_progress(self, now: dt.datetime) -> dict[str, int]:
        rows = await self._run("cannot count wellness calls in progress", self._fetchall,
                               statements.WELLNESS_IN_PROGRESS, (_ts(now),),
                               timeout=self.timeouts.operation)
        return {campaign: int(n) for campaign, n in rows}

    async def wellness_attempts(self, since: dt.datetime, *, number: str | None = None,
                                campaign: str | None = None, limit: int = 10000) -> list[Attempt]:
        if limit < 1:
            return []
        sql = statements.wellness_attempts(number=number is not None, campaign=campaign is not None)
        params = (_ts(since), *(v for v in (number, campaign) if v is not None), limit)
        def read(sql: str, params: tuple[Any, ...]) -> list[Attempt]:
            # Built in the store's thread, and fetched in batches: a campaign's history is
            # 100,000s of rows, and one fetchall holds the interpreter for all of them, which
            # would stall the event loop (and the calls) as long.
            cursor = self._db().execute(sql, params)
            out: list[Attempt] = []
            while rows := cursor.fetchmany(2000):
                out += [Attempt(number=n, campaign=c, at=_fromiso(at), result=AttemptResult(result),
                                detail=detail) for n, c, at, result, detail in rows]
            return out

        return await self._run("cannot read wellness attempts", read, sql, params,
                               timeout=self.timeouts.bulk)

    async def open_wellness_visit(self, visit: Visit) -> Visit:
        row = await self._run("cannot put a person on the visit list", self._open_visit, visit,
                              timeout=self.timeouts.operation)
        return _visit_from_row(row)

    def _open_visit(self, visit: Visit) -> tuple[Any, ...]:
        conn = self._db()
        with _transaction(conn):
            conn.execute(statements.OPEN_WELLNESS_VISIT,
                         (visit.number, visit.campaign, _ts(visit.since),
                          statements.visit_history_json(visit.history)))
            return conn.execute(statements.GET_OPEN_WELLNESS_VISIT, (visit.number,)).fetchone()

    async def get_wellness_visit(self, visit_id: int) -> Visit | None:
        rows = await self._run(f"cannot read visit {visit_id}", self._fetchall,
                               statements.GET_WELLNESS_VISIT, (visit_id,),
                               timeout=self.timeouts.operation)
        return _visit_from_row(rows[0]) if rows else None

    async def list_wellness_visits(self, *, open_only: bool = True, campaign: str | None = None,
                                   limit: int = 200, number: str | None = None) -> list[Visit]:
        if limit < 1:
            return []
        sql = statements.list_wellness_visits(open_only=open_only, campaign=campaign is not None,
                                              number=number is not None)
        params = (*(v for v in (campaign, number) if v is not None), limit)
        rows = await self._run("cannot read the visit list", self._fetchall, sql, params,
                               timeout=self.timeouts.operation)
        return [_visit_from_row(r) for r in rows]

    async def mark_wellness_visit_done(self, visit_id: int, at: dt.datetime, note: str) -> bool:
        changed = await self._run(f"cannot mark visit {visit_id} done", self._update,
                                  statements.WELLNESS_VISIT_DONE, (_ts(at), note, visit_id),
                                  timeout=self.timeouts.operation)
        return changed == 1

    async def clear_wellness_visits(self, number: str, at: dt.datetime) -> int:
        return await self._run("cannot clear a visit", self._update,
                               statements.CLEAR_WELLNESS_VISITS, (_ts(at), number),
                               timeout=self.timeouts.operation)

    # -- video consultations ---------------------------------------------------------------------
    async def put_video_booking(self, booking: VideoBooking, *, capacity: int) -> bool:
        row = _video_row(booking)
        # One statement in one transaction in the worker thread, under SQLite's write lock:
        # engines sharing the file count and insert one after another.
        changed = await self._run("cannot book a video consultation", self._update,
                                  statements.PUT_VIDEO_BOOKING, (*row, row[1], capacity),
                                  timeout=self.timeouts.operation)
        return changed == 1

    async def get_video_booking(self, code: str) -> VideoBooking | None:
        rows = await self._run("cannot read a video booking", self._fetchall,
                               statements.GET_VIDEO_BOOKING, (code.upper(),),
                               timeout=self.timeouts.operation)
        return _video_from_row(rows[0]) if rows else None

    async def video_slot_counts(self, since: dt.datetime,
                                until: dt.datetime) -> dict[dt.datetime, int]:
        rows = await self._run("cannot count video bookings", self._fetchall,
                               statements.VIDEO_SLOT_COUNTS, (_ts(since), _ts(until)),
                               timeout=self.timeouts.operation)
        return {_fromiso(slot): int(n) for slot, n in rows}

    async def use_video_booking(self, code: str, call_id: str,
                                at: dt.datetime) -> VideoBooking | None:
        rows = await self._run(f"cannot note call {call_id} on a video booking",
                               self._write_returning, statements.USE_VIDEO_BOOKING,
                               (call_id, _ts(at), code.upper()), timeout=self.timeouts.operation)
        return _video_from_row(rows[0]) if rows else None

    async def cancel_video_booking(self, code: str) -> bool:
        changed = await self._run("cannot cancel a video booking", self._update,
                                  statements.CANCEL_VIDEO_BOOKING, (code.upper(),),
                                  timeout=self.timeouts.operation)
        return changed == 1

    async def list_video_bookings(self, since: dt.datetime, until: dt.datetime,
                                  limit: int = 200) -> list[VideoBooking]:
        if limit < 1:
            return []
        rows = await self._run("cannot read video bookings", self._fetchall,
                               statements.LIST_VIDEO_BOOKINGS, (_ts(since), _ts(until), limit),
                               timeout=self.timeouts.operation)
        return [_video_from_row(r) for r in rows]


def _normalise_timestamps(conn: sqlite3.Connection) -> None:
    """Version 1 wrote ``isoformat()``: rewrite any timestamp not in the one sortable shape."""
    rows = conn.execute("SELECT call_id, started_at, ended_at FROM calls "
                        "WHERE started_at NOT LIKE ? OR ended_at NOT LIKE ?",
                        (_TS_SHAPE, _TS_SHAPE)).fetchall()
    conn.executemany("UPDATE calls SET started_at = ?, ended_at = ? WHERE call_id = ?",
                     [(_ts(_from_ts(s)), _ts(_from_ts(e)), call_id) for call_id, s, e in rows])
