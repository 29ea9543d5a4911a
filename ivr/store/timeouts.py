"""Every delay the store waits on, in one frozen value passed in by whoever opens the store."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class StoreTimeouts:
    """Seconds.  A store method that cannot finish within its bound raises ``StoreError``.

    The defaults keep a caller from waiting on a database that is away: a history lookup or a
    call record gets ``operation`` seconds, then the call goes on without it.
    """

    operation: float = 2.0      # one read or write made while a caller waits (acquire + query)
    bulk: float = 300.0         # one ``put_callers`` batch (a registry import)
    connect: float = 3.0        # opening one database connection (PostgreSQL)
    open: float = 60.0          # opening the store: connect, create or migrate the schema
    close: float = 10.0         # closing: connections in use get this long to come back

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value <= 0:
                raise ValueError(f"StoreTimeouts.{field.name} must be positive, got {value!r}")
