"""Persistence behind one small interface.  SQLite is the embedded default."""

from __future__ import annotations

from contextlib import asynccontextmanager
from collections.abc import AsyncIterator

from ivr.errors import ConfigError
from ivr.store.base import Store


@asynccontextmanager
async def open_store(url: str) -> AsyncIterator[Store]:
    """Open the store named by ``url`` (``sqlite:///path``) and close it on exit."""
    if url.startswith("sqlite://"):
        from ivr.store.sqlite import SqliteStore

        store: Store = SqliteStore(_sqlite_path(url))
    else:
        raise ConfigError(f"store.url {url!r}: only sqlite:///PATH is supported")
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


__all__ = ["Store", "open_store"]
