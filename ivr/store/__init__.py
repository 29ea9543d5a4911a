"""Persistence behind one small interface.

SQLite (``sqlite:///PATH``) is the embedded default; PostgreSQL
(``postgresql://USER:PASSWORD@HOST:PORT/DATABASE``) lets several engine instances share one
call history and caller registry.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from collections.abc import AsyncIterator

from ivr.errors import ConfigError
from ivr.store.base import SERVED_OUTCOMES, Caller, Store
from ivr.store.timeouts import StoreTimeouts


@asynccontextmanager
async def open_store(url: str, *, timeouts: StoreTimeouts | None = None) -> AsyncIterator[Store]:
    """Open the store named by ``url`` and close it on exit.

    Raises ``ConfigError`` for a URL of no known kind and ``StoreError`` when the database
    cannot be opened (the message names the URL, password masked, and the cause).
    """
    store: Store
    if url.startswith("sqlite://"):
        from ivr.store.sqlite import SqliteStore

        store = SqliteStore(_sqlite_path(url), timeouts=timeouts)
    elif url.startswith(("postgresql://", "postgres://")):
        from ivr.store.postgres import PostgresStore

        store = PostgresStore(url, timeouts=timeouts)
    else:
        raise ConfigError(f"store.url {_scheme(url)!r}: use sqlite:///PATH or "
                          "postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _sqlite_path(url: str) -> str:
    # sqlite:///var/ivr.db → var/ivr.db ; sqlite:////abs/ivr.db → /abs/ivr.db ; sqlite:///:memory:
    rest = url[len("sqlite://"):]
    if rest.startswith("//"):
        return rest[1:]
    return rest[1:] if rest.startswith("/") else rest


def _scheme(url: str) -> str:
    # An unknown URL may carry a password: show only its kind.
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://…" if sep else url[:20]


__all__ = ["SERVED_OUTCOMES", "Caller", "Store", "StoreTimeouts", "open_store"]
