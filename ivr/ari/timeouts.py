"""Every delay the ARI adapter waits on, in one frozen value passed in by the app."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds.  The defaults suit a loopback Asterisk; tests pass small values."""

    request: float = 10.0            # one REST request, from send to the whole body read
    connect: float = 3.0             # opening a TCP connection (REST or WebSocket)
    ws_heartbeat: float = 10.0       # ping the event socket this often; no pong in half of it = lost
    ws_close: float = 2.0            # waiting for the WebSocket close handshake
    reconnect_min: float = 0.5       # first back-off after the event socket is lost
    reconnect_max: float = 30.0      # back-off ceiling (doubles from reconnect_min, with jitter)
    reconcile_attempts: int = 3      # tries of GET /channels after each (re)connection
    shutdown_grace: float = 10.0     # calls in progress may finish within this on close()

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value <= 0:
                raise ValueError(f"Timeouts.{field.name} must be positive, got {value!r}")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError(
                f"Timeouts.reconnect_max ({self.reconnect_max}) is below "
                f"reconnect_min ({self.reconnect_min})")
