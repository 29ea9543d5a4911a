"""SQLite store (the embedded default), through aiosqlite's worker thread."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import aiosqlite

from ivr.call import CallRecord
from ivr.errors import StoreError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
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
);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at);
"""

_COLUMNS = ("call_id", "caller", "dialled", "started_at", "ended_at", "flow", "flow_version",
            "language", "nodes", "digits", "outcome", "detail", "priority", "reason")


def _ts(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


class SqliteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = await aiosqlite.connect(self.path)
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self._db.executescript(_SCHEMA)
            async with self._db.execute("SELECT version FROM schema_version") as cur:
                row = await cur.fetchone()
            if row is None:
                await self._db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: database schema {row[0]} is newer than this "
                                 f"engine understands ({SCHEMA_VERSION}); upgrade the engine")
            await self._db.commit()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    async def record_call(self, record: CallRecord) -> None:
        row = (record.call_id, record.caller, record.dialled, _ts(record.started_at),
               _ts(record.ended_at), record.flow, record.flow_version, record.language,
               json.dumps(record.nodes, ensure_ascii=False), json.dumps(record.digits),
               record.outcome, record.detail, record.priority, record.reason)
        try:
            db = self._conn()
            await db.execute(f"INSERT OR REPLACE INTO calls ({', '.join(_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_COLUMNS))})", row)
            await db.commit()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record call {record.call_id}: {exc}") from exc

    async def recent_calls(self, limit: int = 50) -> list[CallRecord]:
        try:
            db = self._conn()
            async with db.execute(f"SELECT {', '.join(_COLUMNS)} FROM calls "
                                  "ORDER BY started_at DESC LIMIT ?", (limit,)) as cur:
                rows = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read calls: {exc}") from exc
        out = []
        for r in rows:
            d = dict(zip(_COLUMNS, r))
            out.append(CallRecord(
                call_id=d["call_id"], caller=d["caller"], dialled=d["dialled"],
                started_at=dt.datetime.fromisoformat(d["started_at"]),
                ended_at=dt.datetime.fromisoformat(d["ended_at"]) if d["ended_at"] else None,
                flow=d["flow"], flow_version=d["flow_version"], language=d["language"],
                nodes=json.loads(d["nodes"]), digits=json.loads(d["digits"]),
                outcome=d["outcome"], detail=d["detail"], priority=d["priority"], reason=d["reason"]))
        return out
