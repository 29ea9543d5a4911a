"""The ARI event WebSocket: read, decode, hand over in order; reconnect when lost.

Each event is decoded and given to one synchronous callback on the reading task, in arrival
order: no task per event, and the callback must not block (Asterisk drops a consumer that
does not read for ``websocket_write_timeout``, 100 ms by default).  After every
(re)connection the async ``on_connected(first)`` hook runs as a tracked task: Asterisk
replays nothing after a reconnect, so the hook reconciles.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from ivr.errors import AriError, AriTimeout
from ivr.ari.client import AriClient
from ivr.tasks import TaskSet

log = structlog.get_logger(__name__)

EventCallback = Callable[[dict[str, Any]], None]
ConnectedHook = Callable[[bool], Awaitable[None]]


def backoff_delay(attempt: int, low: float, high: float, rand: Callable[[], float]) -> float:
    """Exponential back-off with jitter: attempt 0 waits about ``low``, never above ``high``."""
    ceiling = min(high, low * (2 ** min(attempt, 30)))
    return ceiling / 2 + rand() * ceiling / 2


class EventStream:
    """Owns the event socket's reading task; ``async with EventStream(...)`` or start/close."""

    def __init__(self, client: AriClient, on_event: EventCallback, *,
                 on_connected: ConnectedHook | None = None,
                 rand: Callable[[], float] = random.random) -> None:
        self._client = client
        self._on_event = on_event
        self._on_connected = on_connected
        self._timeouts = client.timeouts
        self._rand = rand
        self._tasks = TaskSet("ari.events")
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._ever_connected = False
        self._fatal: AriError | None = None
        self._ended = asyncio.Event()
        self.connections = 0      # successful connections so far: a generation number

    async def __aenter__(self) -> EventStream:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(
                self._run(), name="ari.events")

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once the socket is up.  Raises the auth error, or ``AriTimeout``."""
        if self._fatal is not None:
            raise self._fatal
        connected = asyncio.ensure_future(self._connected.wait())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            async with asyncio.timeout(timeout):
                await asyncio.wait({connected, ended}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError as exc:
            raise AriTimeout(f"the ARI event socket did not connect within {timeout}s "
                             f"({self._client.base_url})") from exc
        finally:
            connected.cancel()
            ended.cancel()
        if self._fatal is not None:
            raise self._fatal
        if not self._connected.is_set():
            raise AriError("the ARI event stream was closed before it connected")

    async def close(self) -> None:
        """Stop reading, close the socket and cancel the hooks; cancellation is re-raised."""
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise
        await self._tasks.cancel_all(self._timeouts.ws_close)
        self._ended.set()

    # -- the reading task --------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        outage_started: float | None = None
        outage_logged = False
        flaps = 0               # consecutive connections that were lost soon after opening
        try:
            while True:
                try:
                    ws = await self._client.connect_events()
                except AriError as exc:
                    if exc.status == 401 and not self._ever_connected:
                        self._fatal = exc
                        log.error("ari.auth_failed", error=str(exc))
                        return
                    if outage_started is None:
                        outage_started = time.monotonic()
                    if not outage_logged:
                        outage_logged = True
                        log.warning("ari.reconnecting" if self._ever_connected
                                    else "ari.unreachable", error=str(exc))
                    else:
                        log.debug("ari.reconnect_failed", attempt=attempt, error=str(exc))
                    delay = backoff_delay(attempt, self._timeouts.reconnect_min,
                                          self._timeouts.reconnect_max, self._rand)
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue

                first = not self._ever_connected
                self._ever_connected = True
                self.connections += 1
                if outage_started is None:
                    log.info("ari.connected", app=self._client.app, first=first)
                else:
                    log.info("ari.reconnected", app=self._client.app, attempts=attempt + 1,
                             outage_s=round(time.monotonic() - outage_started, 3))
                attempt = 0
                outage_started = None
                outage_logged = False
                connected_at = time.monotonic()
                self._connected.set()
                if self._on_connected is not None:
                    self._tasks.spawn(self._on_connected(first), name="ari.on_connected")
                try:
                    await self._read(ws)
                finally:
                    self._connected.clear()
                    if not ws.closed:
                        await asyncio.shield(ws.close())
                outage_started = time.monotonic()
                log.warning("ari.disconnected", close_code=ws.close_code)
                # Reconnect at once after a connection that lasted; back off when they flap.
                if outage_started - connected_at < self._timeouts.reconnect_max:
                    await asyncio.sleep(backoff_delay(flaps, self._timeouts.reconnect_min,
                                                      self._timeouts.reconnect_max, self._rand))
                    flaps += 1
                else:
                    flaps = 0
        except Exception as exc:
            # A bug, not a network fault: say so loudly and let wait_connected report it.
            log.exception("ari.events_failed")
            self._fatal = AriError(f"the ARI event stream stopped: {exc!r}")
        finally:
            self._connected.clear()
            self._ended.set()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        on_event = self._on_event
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                try:
                    event = json.loads(msg.data)
                except ValueError:
                    log.warning("ari.bad_event", data=msg.data[:200])
                    continue
                try:
                    on_event(event)
                except Exception:
                    log.exception("ari.event_handler_failed", type=event.get("type"))
            elif msg.type is aiohttp.WSMsgType.ERROR:
                log.debug("ari.socket_error", error=str(ws.exception()))
                return
