"""Leadership among engines sharing one PostgreSQL store: one active engine, the others standby.

Only the active engine may connect to Asterisk: there is one WebSocket per Stasis application,
and a second connection with the same name takes the application over.  Engines on one
PostgreSQL store agree on which of them is active through one row of one table::

    engine_lease(name text primary key, holder text, expires_at timestamptz, acquired_at timestamptz)

The lease is taken and renewed by one statement that reads the database's clock (``now()``),
so the engines' own clocks never matter::

    INSERT … ON CONFLICT (name) DO UPDATE SET holder = me, expires_at = now() + ttl
        WHERE engine_lease.holder = me OR engine_lease.expires_at < now()
    RETURNING holder

and the same statement answers who holds the lease when it is not this engine.

- **Active.**  The holder renews every ``ttl / 4`` seconds.  A renewal that answers another
  holder means this engine was frozen or cut off for longer than ``ttl`` and another engine
  took over: it must not touch Asterisk again (fencing).  ``engine.lease_lost`` is logged and
  ``on_lost`` runs at once; the engine's is ``exit_now``, which ends the process with
  ``EXIT_LEASE_LOST`` (75) without the normal shutdown: no hang-up, no bridge destroyed, the
  calls belong to the new active engine.  A renewal never takes back a lease another engine
  held in between, even an expired one.
- **Database away.**  A renewal that fails because the database cannot be reached (or does not
  answer within ``ttl / 2``) is not a loss: nobody can take the lease while the database is
  away.  The holder keeps serving, says so once (``engine.lease_unreachable``), tries again
  every ``ttl / 4`` on a fresh connection and says how long it went unrenewed when a renewal
  passes again (``engine.lease_renewed``).
- **Standby.**  A standby tries to take the lease every ``poll`` seconds (0.25), and at once
  when the holder releases it (``NOTIFY engine_lease``).  ``engine.standby`` is logged once
  while it waits (once the database has answered, naming the active engine), ``engine.active``
  (with the seconds it waited) when it has the lease.  After
  a failed connection a standby takes an expired lease only once it has been connected again
  for ``ttl``: the database was away for the holder too, and the holder, which tries every
  ``ttl / 4``, renews it first instead of handing its calls over for nothing.  A missing row
  is taken at once.
- **Late statements.**  A statement carries the moment its engine stops waiting for the answer
  (on the database's clock, measured when connecting) and does nothing when the server runs it
  later: a take sent just before the database froze would otherwise be applied when it thaws,
  long after the engine decided it might take the lease.
- **Clean shutdown.**  ``release`` stops the renewals and deletes the row with a ``NOTIFY`` in
  the same statement, so a standby takes over at once instead of after ``ttl``.

From the death of the active engine to a standby holding the lease: at most ``ttl`` (the term
of the last renewal) plus one ``poll``; the standby then starts as a fresh engine does.

Each lease has a connection of its own (asyncpg), never the store's pool: a busy pool never
delays a renewal.  The table is created by the first engine that needs it (``CREATE TABLE IF
NOT EXISTS`` under an advisory lock); the store's schema versions do not know it.

What is guaranteed: the database never lets two engines hold the lease at once.  What is not:
an engine cut off from the database (not from Asterisk) for longer than ``ttl`` while a standby
still reaches the database goes on serving until a renewal reaches the database and fences it;
meanwhile Asterisk gives the application to the newer WebSocket, the standby's.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import structlog

from ivr.tasks import TaskSet

log = structlog.get_logger("ivr.lease")

__all__ = ["CHANNEL", "EXIT_LEASE_LOST", "EngineLease", "engine_lease", "exit_now", "holder_id"]

EXIT_LEASE_LOST = 75          # exit code of an engine that lost its lease (sysexits EX_TEMPFAIL)
CHANNEL = "engine_lease"      # NOTIFY channel: a lease was released (payload: its name)
_TABLE_LOCK = 0x1F5_70_2F     # advisory lock key: engines creating the table at once

_CREATE = """CREATE TABLE IF NOT EXISTS engine_lease (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    expires_at  timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL
)"""
# $1 name, $2 this engine, $3 ttl in seconds, $4 whether an expired lease of another engine may
# be taken, $5 the moment (database clock) this engine stops waiting for the answer: a statement
# the server runs later than that (it sat in a frozen server's socket, say) changes nothing, so
# a decision taken before an outage is never applied after it.  One row back: (holder, ours,
# in_time, the database's clock); the second SELECT reads the row as it was before the statement, and is the answer
# only when the INSERT did nothing.
_TAKE = """WITH taken AS (
    INSERT INTO engine_lease AS l (name, holder, expires_at, acquired_at)
    SELECT $1, $2, now() + make_interval(secs => $3), now() WHERE clock_timestamp() <= $5
    ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at,
        acquired_at = CASE WHEN l.holder = EXCLUDED.holder THEN l.acquired_at
                           ELSE EXCLUDED.acquired_at END
    WHERE (l.holder = EXCLUDED.holder OR ($4 AND l.expires_at < now())) AND clock_timestamp() <= $5
    RETURNING holder)
SELECT holder, true AS ours, true AS in_time, clock_timestamp() AS clock FROM taken
UNION ALL
SELECT holder, false AS ours, clock_timestamp() <= $5 AS in_time, clock_timestamp() AS clock
FROM engine_lease WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM taken)"""
_RELEASE = """WITH gone AS (DELETE FROM engine_lease WHERE name = $1 AND holder = $2 RETURNING name)
SELECT pg_notify($3, name) FROM gone"""

# What a database that is away, slow or refusing looks like from here.
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError,
           OSError, TimeoutError)


def holder_id() -> str:
    """This engine's name in the lease: host name, process id and a random suffix."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


def exit_now(taken_by: str | None) -> None:
    """What an engine that lost its lease does: end the process at once, no shutdown (the
    calls are another engine's now), with ``EXIT_LEASE_LOST``."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(EXIT_LEASE_LOST)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class EngineLease:
    """One engine's side of the lease ``name`` in the database ``dsn`` (an asyncpg DSN).

    ``acquire`` waits until this engine holds the lease and then renews it in the background
    until ``release`` (or ``async with``'s exit); ``on_lost(taken_by)`` runs when a renewal
    finds another holder.
    """

    def __init__(self, dsn: str, *, ttl: float = 3.0, name: str = "engine", holder: str | None = None,
                 poll: float = 0.25, on_lost: Callable[[str | None], None] = exit_now) -> None:
        if not ttl > 0 or not poll > 0:
            raise ValueError(f"lease ttl and poll must be positive, got {ttl!r} and {poll!r}")
        self.dsn = dsn
        self.ttl = ttl
        self.name = name
        self.holder = holder or holder_id()
        self.poll = poll
        self.on_lost = on_lost
        self.renew_every = ttl / 4
        self.attempt_timeout = ttl / 2      # one try: connecting (when needed) and the statement
        self._conn: Any = None              # asyncpg.Connection
        self._table_ready = False
        self._failed = False                # the last try failed (the connection was dropped)
        self._trusted_from = 0.0            # loop time from which an expired lease may be taken
        self._clock = (dt.datetime.now(dt.timezone.utc), 0.0)   # (database clock, loop time) at once
        self._wake = asyncio.Event()
        self._held = False
        self._tasks = TaskSet("engine.lease")

    @property
    def held(self) -> bool:
        """This engine holds the lease (as far as it knows: renewals have not answered otherwise)."""
        return self._held

    async def __aenter__(self) -> EngineLease:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.release()

    # -- standby -----------------------------------------------------------------------------
    async def acquire(self, stop: asyncio.Event | None = None) -> bool:
        """Wait until this engine holds the lease (True), or until ``stop`` is set (False);
        once held, it is renewed in the background."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        said_standby = failing = False
        while stop is None or not stop.is_set():
            self._wake.clear()
            try:
                holder, ours = await self._take(take_expired=True)
            except _ERRORS as exc:
                holder, ours = None, False
                if not failing:
                    log.warning("engine.lease_unreachable", holder=self.holder, role="standby",
                                error=_describe(exc))
                failing = True
            else:
                if failing:
                    log.info("engine.lease_reachable", holder=self.holder, role="standby")
                failing = False
            if ours:
                self._held = True
                self._tasks.spawn(self._renew(), name="engine.lease.renew")
                log.info("engine.active", holder=self.holder, waited=round(loop.time() - started, 3),
                         ttl=self.ttl)
                return True
            if not said_standby and not failing:    # said once the database has answered who is active
                log.info("engine.standby", holder=self.holder, active=holder, ttl=self.ttl,
                         poll=self.poll)
                said_standby = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll):
                    await self._wake.wait()          # a release wakes the standby at once
        return False

    # -- active ------------------------------------------------------------------------------
    async def _renew(self) -> None:
        try:
            await self._renewing()
        except Exception as exc:
            # Renewals that cannot go on let the lease expire under a serving engine: a standby
            # would then serve beside it.  Better to step down as if the lease were lost.
            self._held = False
            log.exception("engine.lease_lost", holder=self.holder, taken_by=None, error=repr(exc),
                          effect="the renewals failed: this engine stops touching Asterisk")
            self.on_lost(None)

    async def _renewing(self) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        due = renewed + self.renew_every
        failing = False
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            due = loop.time() + self.renew_every
            try:
                holder, ours = await self._take(take_expired=False)
            except _ERRORS as exc:
                if not failing:
                    log.warning("engine.lease_unreachable", holder=self.holder, role="active",
                                error=_describe(exc),
                                effect="still active: no engine can take the lease while the "
                                       "database is away")
                else:
                    log.debug("engine.lease_renew_failed", holder=self.holder, error=_describe(exc))
                failing = True
                continue
            if not ours:
                self._held = False
                log.error("engine.lease_lost", holder=self.holder, taken_by=holder,
                          unrenewed=round(loop.time() - renewed, 3),
                          effect="another engine is active: this one stops touching Asterisk")
                self.on_lost(holder)
                return
            if failing:
                log.info("engine.lease_renewed", holder=self.holder,
                         unrenewed=round(loop.time() - renewed, 3))
                failing = False
            renewed = loop.time()

    async def release(self) -> None:
        """Stop renewing, give the lease up at once (a standby is woken) and close the
        connection.  Never raises for a database that is away: the lease then expires."""
        await self._tasks.cancel_all(self.attempt_timeout)
        held, self._held = self._held, False
        try:
            if held:
                try:
                    async with asyncio.timeout(self.attempt_timeout):
                        conn = await self._connection()
                        await conn.fetch(_RELEASE, self.name, self.holder, CHANNEL)
                except _ERRORS as exc:
                    log.warning("engine.lease_release_failed", holder=self.holder, error=_describe(exc),
                                effect=f"a standby takes over when the lease expires (within {self.ttl:g} s)")
                else:
                    log.info("engine.lease_released", holder=self.holder)
        finally:
            await self._close()

    # -- the connection ----------------------------------------------------------------------
    async def _take(self, *, take_expired: bool) -> tuple[str | None, bool]:
        """One try at the statement: (the holder, whether it is this engine).  A failure drops
        the connection (the next try makes a fresh one) and raises."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.attempt_timeout
        try:
            async with asyncio.timeout_at(give_up):
                conn = await self._connection()
                may_take = take_expired and loop.time() >= self._trusted_from
                row = await conn.fetchrow(_TAKE, self.name, self.holder, self.ttl, may_take,
                                          self._database_time(give_up))
        except _ERRORS:
            self._failed = True
            self._drop()
            raise
        except asyncio.CancelledError:
            self._drop()            # a statement cut short leaves the connection in no known state
            raise
        if row is None:                     # no row, nothing inserted: only when run too late
            self._failed = True
            raise TimeoutError(f"the database ran the lease statement after {self.attempt_timeout:g} s")
        self._clock = (row["clock"], loop.time())   # kept fresh: no drift, a stepped clock followed
        if not row["in_time"]:              # nothing done: the server ran it too late
            self._failed = True
            raise TimeoutError(f"the database ran the lease statement after {self.attempt_timeout:g} s")
        return row["holder"], bool(row["ours"])

    def _database_time(self, at: float) -> dt.datetime:
        """The database's clock at the loop time ``at`` (as measured at the last answer; a
        little early rather than late, by up to one round trip)."""
        database, local = self._clock
        return database + dt.timedelta(seconds=at - local)

    async def _connection(self) -> Any:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._drop()
        timeout_ms = str(max(1, round(self.attempt_timeout * 1000)))
        conn = await asyncpg.connect(self.dsn, timeout=self.attempt_timeout,
                                     server_settings={"application_name": "ivr-lease",
                                                      "statement_timeout": timeout_ms})
        try:
            if not self._table_ready:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _TABLE_LOCK)
                    await conn.execute(_CREATE)
                self._table_ready = True
            await conn.add_listener(CHANNEL, self._notified)
            database = await conn.fetchval("SELECT clock_timestamp()")
        except BaseException:
            conn.terminate()
            raise
        now = asyncio.get_running_loop().time()
        self._clock = (database, now)
        # After a failure the holder gets ``ttl`` to renew before this engine takes it over.
        self._trusted_from = now + self.ttl if self._failed else now
        self._failed = False
        self._conn = conn
        return conn

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        if payload == self.name:
            self._wake.set()

    def _drop(self) -> None:
        """Forget the connection at once, without waiting on the server."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.close(timeout=self.attempt_timeout)
        except _ERRORS:
            conn.terminate()


@contextlib.asynccontextmanager
async def engine_lease(store_url: str, *, ttl: float) -> AsyncIterator[EngineLease | None]:
    """The lease of an engine on ``store_url``: an ``EngineLease`` for PostgreSQL, released on
    exit; None for SQLite, which serves one engine only (said once in the log)."""
    if not store_url.startswith(("postgresql://", "postgres://")):
        log.info("engine.lease_off", why="SQLite store: one engine only, no standby, no lease")
        yield None
        return
    from ivr.store.postgres import parse_url

    dsn, _, _ = parse_url(store_url)
    async with EngineLease(dsn, ttl=ttl) as lease:
        yield lease
