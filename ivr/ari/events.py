"""The ARI event WebSocket: read, decode, hand over in order; reconnect when lost.

Each event is decoded and given to one synchronous callback on the reading task, in arrival
order: no task per event, and the callback must not block (Asterisk drops a consumer that
does not read for ``websocket_write_timeout``, 100 ms by default).  After every
(re)connection the async ``on_connected(first)`` hook runs as a tracked task: Asterisk
replays nothing after a reconnect, so the hook reconciles.

No frame can stop the reader.  A frame that is not an ARI event (binary, not JSON, JSON that
is not an object, no string ``type``), or that the callback refuses with ``BadEvent``, is
logged as ``ari.bad_event`` with a short excerpt (phone numbers masked) and skipped; any other
exception of the callback is logged as ``ari.event_handler_failed`` and the next event is read.
A fault in the reading loop itself is logged as ``ari.events_failed`` and the socket is opened
again with back-off: the engine never stops listening while it runs.

Requests over the socket.  With the client's ``requests`` at ``socket``, each new connection
sends one ``GET asterisk/ping`` as a ``RESTRequest`` frame.  When Asterisk answers it there
(20.14, 21.9, 22.4 and later), the client's requests go over this socket from then on
(``ari.requests_over_socket``); when not within ``PROBE_TIMEOUT`` (an older Asterisk ignores
the frame), they stay on HTTP (``ari.requests_over_http``).  ``RESTResponse`` frames go to
the client, never to the event callback.  Beside the event socket, ``REQUEST_SOCKETS`` − 1
sockets of their own carry requests (each for an application of its own, ``<app>-requests-N``,
that no channel enters), because Asterisk answers one socket's requests one at a time.  When
the event socket closes they are closed too, and the client goes back to HTTP until the next
connection's probe.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import structlog

from ivr.ari import jsondecode
from ivr.ari.client import AriClient
from ivr.errors import AriError, AriTimeout, IvrError
from ivr.logs import mask_numbers_in
from ivr.tasks import TaskSet

log = structlog.get_logger(__name__)

EventCallback = Callable[[dict[str, Any]], None]
ConnectedHook = Callable[[bool], Coroutine[Any, Any, None]]

EXCERPT_CHARS = 160                 # how much of a bad frame the log shows
PROBE_TIMEOUT = 2.0                 # seconds Asterisk gets to answer a request on the event socket
# Sockets the requests are spread over: the event socket and three of their own.  Asterisk
# serves the requests of one socket one after the other, on that socket's thread (an answer
# waits for the channel's own thread).  Measured at 200 calls/s on the 2-core machine
# (bench/asterisk_load.py, added call length, HTTP in the same run): one socket +1.26 s
# (HTTP +0.21 s), four +0.74 s (+0.34 s), sixteen +0.70 s (+0.51 s), and at 300 calls/s
# sixteen cost Asterisk 13.7 ms of CPU a call against 8.7 ms over HTTP.
REQUEST_SOCKETS = 4
class BadEvent(IvrError, ValueError):
    """A frame on the event socket that is not an event the engine can read.  The message
    says what is wrong with it (``StasisStart: 'channel.id' is a number, expected a string``)."""


def json_kind(value: object) -> str:
    """How a decoded JSON value is called in messages: ``a list``, ``null`` …"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def decode_event(data: str) -> dict[str, Any]:
    """One text frame as an ARI event: a JSON object with a non-empty string ``type``.

    Raises ``BadEvent`` saying what is wrong.
    """
    try:
        event = jsondecode.loads(data)
    except RecursionError as exc:
        raise BadEvent("not an event: JSON nested too deeply") from exc
    except ValueError as exc:
        raise BadEvent(f"not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise BadEvent(f"not an event: JSON {json_kind(event)}, expected an object")
    if "type" not in event:
        raise BadEvent("not an event: no 'type'")
    kind = event["type"]
    if not isinstance(kind, str) or not kind:
        raise BadEvent(f"not an event: 'type' is {json_kind(kind) if kind != '' else 'empty'}, "
                       f"expected the event's name")
    return event


def excerpt(data: str | bytes) -> str:
    """The start of a frame for the log, phone numbers masked."""
    if isinstance(data, bytes):
        head = repr(data[:EXCERPT_CHARS // 2])
        return head + ("…" if len(data) > EXCERPT_CHARS // 2 else "")
    head = mask_numbers_in(data[:EXCERPT_CHARS * 2])
    return head[:EXCERPT_CHARS] + ("…" if len(data) > EXCERPT_CHARS else "")


def backoff_delay(attempt: int, low: float, high: float, rand: Callable[[], float]) -> float:
    """Exponential back-off with jitter: attempt 0 waits about ``low``, never above ``high``."""
    ceiling = min(high, low * (2.0 ** min(attempt, 30)))
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
        self._request_tasks: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._ever_connected = False
        self._fatal: AriError | None = None
        self._ended = asyncio.Event()
        self.connections = 0      # successful connections so far: a generation number
        # The reader's back-off state, across connection attempts.
        self._attempt = 0                       # failed connection attempts in a row
        self._flaps = 0                         # connections in a row lost soon after opening
        self._outage_started: float | None = None
        self._outage_logged = False
        self._last_error: str | None = None     # why the socket is not up, for wait_connected

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
            why = f": {self._last_error}" if self._last_error else ""
            raise AriTimeout(f"the ARI event socket did not connect within {timeout}s "
                             f"({self._client.base_url}){why}") from exc
        finally:
            connected.cancel()
            ended.cancel()
        if self._fatal is not None:
            raise self._fatal
        if not self._connected.is_set():
            raise AriError("the ARI event stream was closed before it connected")

    async def close(self) -> None:
        """Stop reading, close the socket and cancel the hooks; cancellation is re-raised."""
        requests = list(self._request_tasks)
        for task in requests:
            task.cancel()
        if requests:
            await asyncio.gather(*requests, return_exceptions=True)
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
        failures = 0            # faults of the loop itself in a row (bugs, not network faults)
        try:
            while True:
                try:
                    if not await self._connect_and_read():
                        return
                    failures = 0
                except Exception as exc:
                    # A bug, not a network fault: say so loudly, and listen again.
                    delay = backoff_delay(failures, self._timeouts.reconnect_min,
                                          self._timeouts.reconnect_max, self._rand)
                    failures += 1
                    self._last_error = repr(exc)
                    log.exception("ari.events_failed", error=repr(exc), failures=failures,
                                  retry_in_s=round(delay, 3))
                    if self._ever_connected and self._outage_started is None:
                        self._outage_started = time.monotonic()
                    await asyncio.sleep(delay)
        finally:
            self._connected.clear()
            self._ended.set()

    async def _connect_and_read(self) -> bool:
        """One attempt to connect, and reading until the socket is lost; False: give up
        for good (Asterisk refused our user before we ever connected)."""
        timeouts = self._timeouts
        try:
            ws = await self._client.connect_events()
        except AriError as exc:
            if exc.status == 401 and not self._ever_connected:
                self._fatal = exc
                log.error("ari.auth_failed", error=str(exc))
                return False
            self._last_error = str(exc)
            if self._outage_started is None:
                self._outage_started = time.monotonic()
            if not self._outage_logged:
                self._outage_logged = True
                log.warning("ari.reconnecting" if self._ever_connected
                            else "ari.unreachable", error=str(exc))
            else:
                log.debug("ari.reconnect_failed", attempt=self._attempt, error=str(exc))
            delay = backoff_delay(self._attempt, timeouts.reconnect_min,
                                  timeouts.reconnect_max, self._rand)
            self._attempt += 1
            await asyncio.sleep(delay)
            return True

        try:
            first = not self._ever_connected
            self._ever_connected = True
            self.connections += 1
            if self._outage_started is None:
                log.info("ari.connected", app=self._client.app, first=first)
            else:
                log.info("ari.reconnected", app=self._client.app, attempts=self._attempt + 1,
                         outage_s=round(time.monotonic() - self._outage_started, 3))
            self._attempt = 0
            self._outage_started = None
            self._outage_logged = False
            self._last_error = None
            connected_at = time.monotonic()
            self._connected.set()
            if self._client.requests == "socket":
                self._tasks.spawn(self._probe(ws), name="ari.probe")
            if self._on_connected is not None:
                self._tasks.spawn(self._on_connected(first), name="ari.on_connected")
            await self._read(ws)
        finally:
            for task in self._request_tasks:
                task.cancel()
            self._request_tasks.clear()
            self._client.drop_socket()
            self._connected.clear()
            if not ws.closed:
                await asyncio.shield(ws.close())
        self._outage_started = time.monotonic()
        log.warning("ari.disconnected", close_code=ws.close_code)
        # Reconnect at once after a connection that lasted; back off when they flap.
        if self._outage_started - connected_at < timeouts.reconnect_max:
            await asyncio.sleep(backoff_delay(self._flaps, timeouts.reconnect_min,
                                              timeouts.reconnect_max, self._rand))
            self._flaps += 1
        else:
            self._flaps = 0
        return True

    async def _probe(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Ask once on the new socket; move the requests onto it when Asterisk answers there."""
        try:
            status = await self._client.ping_on(ws, PROBE_TIMEOUT)
        except AriError as exc:
            if not ws.closed:
                log.info("ari.requests_over_http", reason=str(exc))
            return
        if ws.closed:
            return
        if status != 200:
            log.info("ari.requests_over_http",
                     reason=f"GET asterisk/ping on the event socket answered {status}")
            return
        self._client.use_socket(ws)
        log.info("ari.requests_over_socket", app=self._client.app, sockets=REQUEST_SOCKETS)
        for number in range(1, REQUEST_SOCKETS):
            task = asyncio.get_running_loop().create_task(
                self._request_socket(ws, number), name=f"ari.requests-{number}")
            self._request_tasks.add(task)
            task.add_done_callback(self._request_tasks.discard)

    async def _request_socket(self, events: aiohttp.ClientWebSocketResponse, number: int) -> None:
        """One socket of requests beside the event socket ``events``, while that one is up."""
        name = f"{self._client.app}-requests-{number}"
        timeouts = self._timeouts
        attempt = 0
        while not events.closed:
            try:
                ws = await self._client.connect_request_socket(name)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.debug("ari.request_socket_failed", app=name, error=repr(exc))
                await asyncio.sleep(backoff_delay(attempt, timeouts.reconnect_min,
                                                  timeouts.reconnect_max, self._rand))
                attempt += 1
                continue
            attempt = 0
            try:
                if events.closed:
                    return
                self._client.use_socket(ws)
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        self._answer(msg.data)
                    elif msg.type is aiohttp.WSMsgType.ERROR:
                        break
            finally:
                self._client.drop_socket(ws)
                if not ws.closed:
                    await asyncio.shield(ws.close())
            if not events.closed:
                log.info("ari.request_socket_lost", app=name, close_code=ws.close_code)
                await asyncio.sleep(backoff_delay(0, timeouts.reconnect_min,
                                                  timeouts.reconnect_max, self._rand))

    def _answer(self, data: str) -> None:
        """A frame on a request socket: an answer for the client; anything else is skipped."""
        try:
            frame = decode_event(data)
        except BadEvent as exc:
            log.warning("ari.bad_event", problem=str(exc), excerpt=excerpt(data))
            return
        if frame["type"] == "RESTResponse":
            self._take_answer(frame)

    def _take_answer(self, frame: dict[str, Any]) -> None:
        """A ``RESTResponse`` frame, on any socket: to the request that waits for it."""
        if not self._client.answered(frame):
            log.debug("ari.late_answer", request_id=frame.get("request_id"))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self._handle(msg.data)
            elif msg.type is aiohttp.WSMsgType.BINARY:
                log.warning("ari.bad_event", problem="a binary frame (ARI sends JSON text)",
                            excerpt=excerpt(msg.data))
            elif msg.type is aiohttp.WSMsgType.ERROR:
                log.debug("ari.socket_error", error=str(ws.exception()))
                return

    def _handle(self, data: str) -> None:
        """Decode one text frame and hand it over.  No exception leaves this method."""
        kind: str | None = None
        try:
            event = decode_event(data)
            kind = event["type"]
            if kind == "RESTResponse":
                self._take_answer(event)
                return
            self._on_event(event)
        except BadEvent as exc:
            log.warning("ari.bad_event", problem=str(exc), excerpt=excerpt(data))
        except Exception:
            log.exception("ari.event_handler_failed", type=kind, excerpt=excerpt(data))
