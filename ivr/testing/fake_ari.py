"""An in-process fake of Asterisk's ARI: real HTTP and a real event WebSocket.

It keeps a small model of channels, playbacks and bridges, records every request, and lets a
test push what a caller does (``start_call``, ``press``, ``caller_hangs_up``) or what a
network does (``drop_websocket``, ``fail``).  Playbacks end by themselves after a delay
(``playback_delay``, 0 allowed; ``durations`` per media); with ``finish_before_reply`` the
``PlaybackFinished`` event is written before the HTTP 201.

A comma-separated ``media`` list is one playback, as in Asterisk 22: its items play in turn,
each sends ``PlaybackStarted`` (``media_uri``: that item), each one followed by another ends
with ``PlaybackContinuing`` (state ``continuing``, ``next_media_uri``), and the list ends with
one ``PlaybackFinished`` after the sum of the items' durations; a DELETE stops the whole list.
An item listed in ``missing_media`` is skipped at once, reported like an item that played; the
list ends ``failed`` only when its last item is missing.  ``played`` lists the media items the
engine asked for (a list item by item), ``heard`` those that began playing.

Requests come over HTTP or, as Asterisk 22.4 and later allow, as ``RESTRequest`` frames on
the event socket, answered there with a ``RESTResponse`` frame (in order with the events);
both go through the same handlers, recording and faults.  With ``rest_over_socket=False``
the fake ignores such frames, as an older Asterisk does.

Built for unit tests and for the load benchmark: per-request work is O(1), nothing is logged
per request, events leave through one writer task per socket in the order they were made.

    async with FakeAri() as fake:
        adapter = AriAdapter(fake.base_url, fake.username, fake.password, fake.app, handler)
        channel_id = await fake.start_call(caller="01012345678", exten="15771000")
        await fake.press(channel_id, "1")
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import itertools
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote

from aiohttp import WSMsgType, web

Event = dict[str, Any]

_HANGUP_ORDER = ("ChannelHangupRequest", "StasisEnd", "ChannelDestroyed")


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it; ``path`` is relative to ``/ari``."""

    method: str
    path: str
    params: dict[str, str]
    json: Any
    at: float                     # loop.time() when received
    over_socket: bool = False     # came as a RESTRequest frame on the event socket

    @property
    def media(self) -> list[str]:
        """The media items of a play request (a list played as one playback: several)."""
        return [uri for uri in self.params.get("media", "").split(",") if uri]

    @property
    def play_channel(self) -> str | None:
        """The channel of a ``POST /channels/{id}/play[/{playback}]``; None for other requests."""
        parts = self.path.split("/")
        if self.method == "POST" and len(parts) in (4, 5) and parts[1] == "channels" and parts[3] == "play":
            return parts[2]
        return None


SLOW = -1                        # a Fault's status: no error, only a late answer
UNANSWERED = -2                  # a Fault's status: carried out, but the answer never goes out


@dataclasses.dataclass(slots=True)
class Fault:
    """Answer matching requests with ``status`` (after ``delay`` seconds), ``times`` times."""

    match: Callable[[RecordedRequest], bool]
    status: int
    times: float = 1
    delay: float = 0.0


@dataclasses.dataclass(slots=True)
class _PlayList:
    """The items of one playback, and which of them plays now."""

    items: tuple[str, ...]
    index: int = 0

    @property
    def last(self) -> bool:
        return self.index == len(self.items) - 1


class _Watch:
    """Futures waiting for a predicate to hold; checked after every change."""

    def __init__(self) -> None:
        self._waiters: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    def check(self) -> None:
        if not self._waiters:
            return
        still: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        for test, future in self._waiters:
            if future.done():
                continue
            value = test()
            if value is not None and value is not False:
                future.set_result(value)
            else:
                still.append((test, future))
        self._waiters = still

    async def wait(self, test: Callable[[], Any], timeout: float, what: str) -> Any:
        value = test()
        if value is not None and value is not False:
            return value
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append((test, future))
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError as exc:
            raise AssertionError(f"fake ARI: {what} did not happen within {timeout}s") from exc
        finally:
            future.cancel()


class _Subscriber:
    """One connected event socket and the task that writes to it, in order."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | bytes] = asyncio.Queue()
        self.writer = asyncio.get_running_loop().create_task(self._write(), name="fake-ari.ws")

    async def _write(self) -> None:
        ws, queue = self.ws, self.queue
        while True:
            data = await queue.get()
            try:
                if isinstance(data, bytes):
                    await ws.send_bytes(data)
                else:
                    await ws.send_str(data)
            except ConnectionError:
                pass
            finally:
                queue.task_done()


_stamp: list[Any] = [-1, ""]          # [millisecond, its text]: events share the text


def _now() -> str:
    """Asterisk's timestamp format, to the millisecond (formatted once per millisecond)."""
    ms = time.time_ns() // 1_000_000
    if ms != _stamp[0]:
        moment = dt.datetime.fromtimestamp(ms // 1000, dt.timezone.utc).replace(
            microsecond=ms % 1000 * 1000)
        _stamp[0], _stamp[1] = ms, moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return _stamp[1]


class _SocketRequest:
    """A ``RESTRequest`` frame dressed as the little of ``web.Request`` the handlers read."""

    __slots__ = ("method", "path", "query", "match_info", "_body")

    def __init__(self, method: str, path: str, query: dict[str, str],
                 match_info: dict[str, str], body: str | None) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.match_info = match_info
        self._body = body

    @property
    def body_exists(self) -> bool:
        return bool(self._body)

    async def read(self) -> bytes:
        return (self._body or "").encode()

    async def json(self) -> Any:
        return json.loads(self._body or "null")


Handler = Callable[[Any], Any]


def _not_found(what: str) -> web.Response:
    return web.json_response({"message": f"{what} not found"}, status=404)

T = TypeVar("T")


def _first_match(items: list[T], since: int, match: Callable[[T], bool]) -> Callable[[], T | None]:
    """A test for a watch: the first of ``items`` from index ``since`` that matches, looking
    only at the items added since the last look."""
    position = since

    def test() -> T | None:
        nonlocal position
        while position < len(items):
            item = items[position]
            position += 1
            if match(item):
                return item
        return None

    return test

class FakeAri:
    """The fake server.  ``async with FakeAri() as fake`` listens on 127.0.0.1:<free port>."""

    def __init__(self, *, username: str = "ivr", password: str = "secret", app: str = "ivr",
                 playback_delay: float = 0.0, missing_media: Iterable[str] = (),
                 durations: dict[str, float | None] | None = None,
                 finish_before_reply: bool = False, record: bool = True,
                 answer_originate: bool = True, rest_over_socket: bool = True) -> None:
        self.username = username
        self.password = password
        self.app = app
        self.playback_delay = playback_delay
        self.missing_media = set(missing_media)
        self.durations: dict[str, float | None] = dict(durations or {})   # None: never ends
        self.finish_before_reply = finish_before_reply
        self.record = record
        self.answer_originate = answer_originate
        self.rest_over_socket = rest_over_socket
        self.socket_requests = 0             # requests that came as frames on the event socket
        # (method, segment count) -> [(pattern, handler)]: the routes, for socket requests
        self._routes: dict[tuple[str, int], list[tuple[re.Pattern[str], Handler]]] = {}
        self._socket_tasks: set[asyncio.Task[None]] = set()
        self.channels: dict[str, dict[str, Any]] = {}
        self.playbacks: dict[str, dict[str, Any]] = {}
        self.bridges: dict[str, dict[str, Any]] = {}
        self.variables: dict[str, dict[str, str]] = {}
        self._playing: dict[str, set[str]] = {}       # channel id -> its playback ids
        self._lists: dict[str, _PlayList] = {}        # playback id -> its items
        self.requests: list[RecordedRequest] = []
        self.events_sent: list[Event] = []
        self.connections = 0                 # event sockets accepted so far
        self.refused = 0                     # event socket attempts refused so far
        self.faults: list[Fault] = []
        self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._subscribers: set[_Subscriber] = set()
        self._other_apps: set[_Subscriber] = set()   # sockets of other apps: answers, no events
        self.other_app_connections = 0       # e.g. the engine's request sockets
        self._refusing = False
        self._refuse_timer: asyncio.TimerHandle | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._request_watch = _Watch()
        self._event_watch = _Watch()
        self._connection_watch = _Watch()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifetime ----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        router = app.router
        self._routes.clear()

        def r(method: str, template: str, handler: Handler) -> None:
            router.add_route(method, "/ari" + template, handler)
            pattern = re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")
            key = (method, template.count("/"))
            self._routes.setdefault(key, []).append((pattern, handler))

        router.add_get("/ari/events", self._events)
        r("GET", "/asterisk/ping", self._ping)
        r("GET", "/channels", self._list_channels)
        r("POST", "/channels", self._originate)
        r("GET", "/channels/{id}", self._get_channel)
        r("DELETE", "/channels/{id}", self._hangup)
        r("POST", "/channels/{id}/answer", self._answer)
        r("POST", "/channels/{id}/continue", self._continue)
        r("POST", "/channels/{id}/play", self._play)
        r("POST", "/channels/{id}/play/{pb}", self._play)
        r("GET", "/channels/{id}/variable", self._get_variable)
        r("POST", "/channels/{id}/variable", self._set_variable)
        for name in ("ring", "moh"):
            r("POST", f"/channels/{{id}}/{name}", self._channel_noop)
            r("DELETE", f"/channels/{{id}}/{name}", self._channel_noop)
        r("GET", "/playbacks/{pb}", self._get_playback)
        r("DELETE", "/playbacks/{pb}", self._stop_playback)
        r("GET", "/bridges", self._list_bridges)
        r("POST", "/bridges", self._create_bridge)
        r("GET", "/bridges/{id}", self._get_bridge)
        r("DELETE", "/bridges/{id}", self._destroy_bridge)
        r("POST", "/bridges/{id}/addChannel", self._add_to_bridge)
        r("POST", "/bridges/{id}/removeChannel", self._remove_from_bridge)
        r("POST", "/bridges/{id}/moh", self._bridge_noop)
        r("DELETE", "/bridges/{id}/moh", self._bridge_noop)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.make_app(), access_log=None,
                                     handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        for task in list(self._socket_tasks):
            task.cancel()
        for timer in list(self._timers):
            timer.cancel()
        self._timers.clear()
        if self._refuse_timer is not None:
            self._refuse_timer.cancel()
        await self._close_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAri:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ari"

    # -- what a test does: callers ------------------------------------------------------------

    def add_channel(self, *, caller: str = "01012345678", exten: str = "15771000",
                    args: Sequence[str] = (), language: str = "ko", state: str = "Ring",
                    channel_id: str | None = None, context: str = "from-pstn",
                    in_stasis: bool = True) -> dict[str, Any]:
        """Put a channel in the model without telling anyone (e.g. one we should adopt)."""
        channel_id = channel_id or f"fake-{next(self._ids)}.{uuid.uuid4().hex[:6]}"
        app_data = ",".join([self.app, *args])
        channel = {
            "id": channel_id,
            "name": f"PJSIP/trunk-{channel_id}",
            "state": state,
            "protocol_id": "",
            "caller": {"name": "", "number": caller},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {"context": context, "exten": exten, "priority": 2,
                         "app_name": "Stasis" if in_stasis else "",
                         "app_data": app_data if in_stasis else ""},
            "creationtime": _now(),
            "language": language,
        }
        self.channels[channel_id] = channel
        return channel

    async def start_call(self, caller: str = "01012345678", exten: str = "15771000", *,
                         args: Sequence[str] = (), language: str = "ko", state: str = "Ring",
                         channel_id: str | None = None) -> str:
        """A caller dials in: the channel enters Stasis (``StasisStart``).  Returns its id."""
        channel = self.add_channel(caller=caller, exten=exten, args=args, language=language,
                                   state=state, channel_id=channel_id)
        self.emit(self.event("StasisStart", channel=channel, args=list(args)))
        return channel["id"]

    async def press(self, channel_id: str, keys: str, *, duration_ms: int = 100) -> None:
        """The caller presses ``keys``, one ``ChannelDtmfReceived`` each (repeats included)."""
        channel = self.channels[channel_id]
        for key in keys:
            self.emit(self.event("ChannelDtmfReceived", channel=channel, digit=key,
                                 duration_ms=duration_ms))

    async def caller_hangs_up(self, channel_id: str, *, cause: int = 16,
                              order: Sequence[str] = _HANGUP_ORDER) -> None:
        """The caller hangs up: the channel leaves the model; its events go out in ``order``."""
        channel = self.channels.pop(channel_id)
        self._end_playbacks_of(channel_id)
        for kind in order:
            if kind == "StasisEnd":
                self.emit(self.event("StasisEnd", channel=channel))
            else:
                self.emit(self.event(kind, channel=channel, cause=cause,
                                     cause_txt="Normal Clearing"))

    def remove_channel(self, channel_id: str) -> None:
        """The channel disappears without any event (it died while nobody listened)."""
        self.channels.pop(channel_id, None)
        self._end_playbacks_of(channel_id)

    def finish_playback(self, playback_id: str, state: str = "done", *,
                        announce: bool = True) -> None:
        """End a playback now (``announce=False``: silently, as during a lost socket)."""
        playback = self.playbacks.pop(playback_id, None)
        self._lists.pop(playback_id, None)
        if playback is None:
            return
        self._playing.get(playback["target_uri"][len("channel:"):], set()).discard(playback_id)
        playback["state"] = state
        if announce:
            self.emit(self.event("PlaybackFinished", playback=playback))

    def playbacks_of(self, channel_id: str) -> list[dict[str, Any]]:
        target = f"channel:{channel_id}"
        return [p for p in self.playbacks.values() if p["target_uri"] == target]

    def played(self, channel_id: str | None = None) -> list[str]:
        """The media items the engine asked to play (on ``channel_id``, or on any channel), in
        order; a list played as one playback counts item by item.  Needs ``record``."""
        return [uri for r in self.requests
                if (channel := r.play_channel) is not None and channel_id in (None, channel)
                for uri in r.media]

    def heard(self, channel_id: str) -> list[str]:
        """The media items that began playing on a channel, in order (one ``PlaybackStarted``
        each): a list stopped by a key lacks the items after it.  Needs ``record``."""
        target = f"channel:{channel_id}"
        return [e["playback"]["media_uri"] for e in self.events_sent
                if e["type"] == "PlaybackStarted" and e["playback"]["target_uri"] == target]

    # -- what a test does: the network ---------------------------------------------------------

    def event(self, kind: str, **fields: Any) -> Event:
        """Build an event as Asterisk would send it."""
        return {"type": kind, "timestamp": _now(), "application": self.app,
                "asterisk_id": "fa:ke:00:00:00:01", **fields}

    def emit(self, event: Event) -> None:
        """Send one event to every connected socket (lost when none is connected)."""
        if self.record:
            self.events_sent.append(event)
            self._event_watch.check()
        if not self._subscribers:
            return
        data = json.dumps(event)
        for subscriber in self._subscribers:
            subscriber.queue.put_nowait(data)

    async def send_events(self, events: Iterable[Event]) -> None:
        """Send events exactly in the order given (for out-of-order cases), then flush."""
        for event in events:
            self.emit(event)
        await self.flush()

    def emit_frame(self, frame: str | bytes) -> None:
        """Send one raw WebSocket frame, as is, to every connected socket: text for ``str``,
        binary for ``bytes`` (for frames Asterisk would never send: not JSON, not an object).
        Raw frames are not recorded in ``events_sent``."""
        for subscriber in self._subscribers:
            subscriber.queue.put_nowait(frame)

    async def send_frames(self, frames: Iterable[str | bytes]) -> None:
        """Send raw frames in the order given (see ``emit_frame``), then flush."""
        for frame in frames:
            self.emit_frame(frame)
        await self.flush()

    async def flush(self) -> None:
        """Return once every event emitted so far has been written to the sockets."""
        for subscriber in list(self._subscribers):
            await subscriber.queue.join()

    async def drop_websocket(self, *, refuse_for: float | None = None) -> None:
        """Close every event socket.  ``refuse_for``: refuse new ones for that long
        (``math.inf`` until ``allow_websocket``)."""
        if refuse_for is not None:
            self.refuse_websocket(refuse_for)
        await self._close_sockets()

    def refuse_websocket(self, seconds: float = math.inf) -> None:
        self._refusing = True
        if self._refuse_timer is not None:
            self._refuse_timer.cancel()
            self._refuse_timer = None
        if seconds != math.inf:
            self._refuse_timer = asyncio.get_running_loop().call_later(
                seconds, self.allow_websocket)

    def allow_websocket(self) -> None:
        self._refusing = False
        if self._refuse_timer is not None:
            self._refuse_timer.cancel()
            self._refuse_timer = None

    def fail(self, match: Callable[[RecordedRequest], bool], status: int, *,
             times: float = 1, delay: float = 0.0) -> Fault:
        """Answer the next ``times`` matching requests with ``status`` (0: never answer)."""
        fault = Fault(match, status, times, delay)
        self.faults.append(fault)
        return fault

    def slow(self, match: Callable[[RecordedRequest], bool], delay: float, *,
             times: float = 1) -> Fault:
        """Answer the next ``times`` matching requests as usual, but ``delay`` seconds late
        (what is asked happens when the answer goes out)."""
        fault = Fault(match, SLOW, times, delay)
        self.faults.append(fault)
        return fault

    def lose_answer(self, match: Callable[[RecordedRequest], bool], *,
                    times: float = 1) -> Fault:
        """Carry out the next ``times`` matching requests, and never answer them (an answer
        lost with its connection)."""
        fault = Fault(match, UNANSWERED, times, 0.0)
        self.faults.append(fault)
        return fault

    async def wait_for_request(self, match: Callable[[RecordedRequest], bool], *,
                               timeout: float = 2.0, since: int = 0) -> RecordedRequest:
        """The first request (from index ``since``) that matches; waits for it if needed."""
        return await self._request_watch.wait(_first_match(self.requests, since, match), timeout,
                                              "a matching request")

    async def wait_for_event(self, match: Callable[[Event], bool], *, timeout: float = 2.0,
                             since: int = 0) -> Event:
        """The first event sent (from index ``since`` of ``events_sent``) that matches; waits
        for it if needed.  Needs ``record``."""
        return await self._event_watch.wait(_first_match(self.events_sent, since, match), timeout,
                                            "a matching event")

    async def wait_for_connection(self, count: int = 1, *, timeout: float = 2.0) -> None:
        """Wait until ``count`` event sockets have been accepted in all (and one is open)."""
        await self._connection_watch.wait(
            lambda: self.connections >= count and bool(self._subscribers), timeout,
            f"event socket connection #{count}")

    async def wait_for_refused(self, count: int, *, timeout: float = 2.0) -> None:
        """Wait until ``count`` event socket attempts have been refused in all."""
        await self._connection_watch.wait(lambda: self.refused >= count, timeout,
                                          f"refused event socket attempt #{count}")

    @property
    def websocket_connected(self) -> bool:
        return bool(self._subscribers)

    # -- internals -------------------------------------------------------------------------------

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def run() -> None:
            self._timers.discard(handle)
            fn(*args)

        handle = loop.call_later(delay, run)
        self._timers.add(handle)

    async def _close_sockets(self) -> None:
        subscribers = self._subscribers | self._other_apps
        self._subscribers, self._other_apps = set(), set()
        for subscriber in subscribers:
            subscriber.writer.cancel()
        for subscriber in subscribers:
            await subscriber.ws.close()

    def _end_playbacks_of(self, channel_id: str) -> None:
        for playback_id in self._playing.pop(channel_id, ()):
            self.playbacks.pop(playback_id, None)
            self._lists.pop(playback_id, None)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != self._auth:
            return web.json_response({"message": "Authentication required"}, status=401)
        if request.path == "/ari/events":
            return await handler(request)
        return await self._serve(request, request.path[4:], handler)

    async def _serve(self, request: Any, path: str, handler: Handler, *,
                     over_socket: bool = False) -> web.StreamResponse:
        """Record one request (HTTP or socket), apply the faults, run its handler."""
        body = None
        if request.body_exists:
            raw = await request.read()
            if raw:
                body = json.loads(raw)
        recorded = RecordedRequest(request.method, path, dict(request.query), body,
                                   asyncio.get_running_loop().time(), over_socket)
        if self.record:
            self.requests.append(recorded)
            self._request_watch.check()
        if self.faults:
            for fault in self.faults:
                if fault.times > 0 and fault.match(recorded):
                    fault.times -= 1
                    if fault.delay:
                        await asyncio.sleep(fault.delay)
                    if fault.status == 0:
                        await asyncio.Event().wait()   # never answer
                    if fault.status == SLOW:
                        break                          # answered as usual, only late
                    if fault.status == UNANSWERED:
                        await handler(request)
                        await asyncio.Event().wait()   # done, and never answered
                    return web.json_response({"message": "injected fault"},
                                             status=fault.status)
        return await handler(request)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        app = request.query.get("app")
        if self._refusing:
            if app == self.app:          # the event socket's attempts (not request sockets')
                self.refused += 1
                self._connection_watch.check()
            return web.json_response({"message": "Service Unavailable"}, status=503)
        if not app:
            return web.json_response({"message": "Invalid application provided"}, status=400)
        ws = web.WebSocketResponse(compress=False, autoping=True)
        await ws.prepare(request)
        subscriber = _Subscriber(ws)
        mine = app == self.app
        if mine:
            self._subscribers.add(subscriber)
            self.connections += 1
            self._connection_watch.check()
        else:
            # An application no channel enters: its socket carries answers only.
            self._other_apps.add(subscriber)
            self.other_app_connections += 1
        try:
            async for msg in ws:
                if msg.type is WSMsgType.ERROR:
                    break
                if msg.type is WSMsgType.TEXT and self.rest_over_socket:
                    self._socket_request(subscriber, msg.data)
        finally:
            subscriber.writer.cancel()
            self._subscribers.discard(subscriber)
            self._other_apps.discard(subscriber)
        return ws

    def _socket_request(self, subscriber: _Subscriber, data: str) -> None:
        """A frame from the client: a ``RESTRequest`` is served like an HTTP request and
        answered on the same socket; anything else is ignored, as Asterisk does."""
        try:
            frame = json.loads(data)
        except ValueError:
            return
        if not isinstance(frame, dict) or frame.get("type") != "RESTRequest":
            return
        task = asyncio.get_running_loop().create_task(self._answer_frame(subscriber, frame))
        self._socket_tasks.add(task)
        task.add_done_callback(self._socket_tasks.discard)

    async def _answer_frame(self, subscriber: _Subscriber, frame: dict[str, Any]) -> None:
        self.socket_requests += 1
        method = str(frame.get("method", "")).upper()
        uri = str(frame.get("uri", ""))
        path, _, query_text = uri.partition("?")
        path = "/" + path.lstrip("/")
        query = dict(parse_qsl(query_text, keep_blank_values=True))
        for item in frame.get("query_strings") or ():
            if isinstance(item, dict):
                query[str(item.get("name"))] = str(item.get("value"))
        response: web.Response
        for pattern, handler in self._routes.get((method, path.count("/")), ()):
            match = pattern.match(path)
            if match is not None:
                request = _SocketRequest(method, path, query,
                                         {k: unquote(v) for k, v in match.groupdict().items()},
                                         frame.get("message_body"))
                response = await self._serve(request, path, handler,  # type: ignore[assignment]
                                             over_socket=True)
                break
        else:
            response = web.json_response({"message": "Not Found"}, status=404)
        answer: dict[str, Any] = {"type": "RESTResponse",
                                  "transaction_id": frame.get("transaction_id", ""),
                                  "request_id": frame.get("request_id", ""),
                                  "status_code": response.status,
                                  "reason_phrase": response.reason, "uri": path[1:]}
        body = response.body
        if body:
            answer["content_type"] = "application/json"
            answer["message_body"] = bytes(body).decode()  # type: ignore[arg-type]
        subscriber.queue.put_nowait(json.dumps(answer))

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({"ping": "pong", "timestamp": _now(),
                                  "asterisk_id": "fa:ke:00:00:00:01"})

    # channels

    def _channel(self, request: web.Request) -> dict[str, Any] | None:
        return self.channels.get(request.match_info["id"])

    async def _list_channels(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.channels.values()))

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _not_found("Channel")
        return web.json_response(channel)

    async def _answer(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _not_found("Channel")
        if channel["state"] != "Up":
            channel["state"] = "Up"
            self.emit(self.event("ChannelStateChange", channel=channel))
        return web.Response(status=204)

    async def _hangup(self, request: web.Request) -> web.Response:
        channel = self.channels.pop(request.match_info["id"], None)
        if channel is None:
            return _not_found("Channel")
        self._end_playbacks_of(channel["id"])
        self.emit(self.event("ChannelHangupRequest", channel=channel, cause=16))
        if channel["dialplan"]["app_name"] == "Stasis":
            self.emit(self.event("StasisEnd", channel=channel))
        self.emit(self.event("ChannelDestroyed", channel=channel, cause=16,
                             cause_txt="Normal Clearing"))
        return web.Response(status=204)

    async def _continue(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _not_found("Channel")
        if channel["dialplan"]["app_name"] != "Stasis":
            return web.json_response({"message": "Channel not in Stasis application"},
                                     status=409)
        query = request.query
        dialplan = channel["dialplan"]
        dialplan.update(app_name="", app_data="")
        if "context" in query:
            dialplan["context"] = query["context"]
        if "extension" in query:
            dialplan["exten"] = query["extension"]
        dialplan["priority"] = int(query.get("priority", dialplan["priority"] + 1))
        self._end_playbacks_of(channel["id"])
        self.emit(self.event("StasisEnd", channel=channel))
        return web.Response(status=204)

    async def _get_variable(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _not_found("Channel")
        name = request.query.get("variable", "")
        value = self.variables.get(channel["id"], {}).get(name)
        if value is None:
            return web.json_response({"message": "Provided variable was not found"},
                                     status=404)
        return web.json_response({"value": value})

    async def _set_variable(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _not_found("Channel")
        name = request.query.get("variable", "")
        self.variables.setdefault(channel["id"], {})[name] = request.query.get("value", "")
        return web.Response(status=204)

    async def _channel_noop(self, request: web.Request) -> web.Response:
        if self._channel(request) is None:
            return _not_found("Channel")
        return web.Response(status=204)

    async def _originate(self, request: web.Request) -> web.Response:
        query = request.query
        if "endpoint" not in query:
            return web.json_response({"message": "Endpoint must be specified"}, status=400)
        if query.get("channelId") in self.channels:
            return web.json_response({"message": "Channel with given unique ID already exists"},
                                     status=409)
        body = await request.json() if request.body_exists else {}
        args = [a for a in query.get("appArgs", "").split(",") if a]
        channel = self.add_channel(caller=query.get("callerId", ""),
                                   exten=query.get("extension", "s"), args=args,
                                   state="Down", channel_id=query.get("channelId"),
                                   context=query.get("context", "default"))
        channel["name"] = f"{query['endpoint']}-{channel['id']}"
        self.variables[channel["id"]] = dict((body or {}).get("variables") or {})
        if self.answer_originate and query.get("app"):
            channel["state"] = "Up"
            self._later(0, self._originated, channel["id"], args)
        return web.json_response(channel)

    def _originated(self, channel_id: str, args: list[str]) -> None:
        channel = self.channels.get(channel_id)
        if channel is not None:
            self.emit(self.event("StasisStart", channel=channel, args=args))

    # playbacks

    async def _play(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel is None:
            return _not_found("Channel")
        playback_id = request.match_info.get("pb") or uuid.uuid4().hex
        if playback_id in self.playbacks:
            return web.json_response({"message": "Playback id already in use"}, status=409)
        uris = tuple(request.query.get("media", "").split(","))
        if not all(uris):
            return web.json_response({"message": "media is required"}, status=400)
        playback = {"id": playback_id, "media_uri": uris[0], "target_uri": f"channel:{channel['id']}",
                    "language": request.query.get("lang", channel["language"]),
                    "state": "playing"}
        if len(uris) > 1:
            playback["next_media_uri"] = uris[1]
        self.playbacks[playback_id] = playback
        self._playing.setdefault(channel["id"], set()).add(playback_id)
        self._lists[playback_id] = playlist = _PlayList(uris)
        self.emit(self.event("PlaybackStarted", playback=dict(playback)))
        if self.finish_before_reply:
            # Every item that ends by itself ends now, before the answer.
            while (self._lists.get(playback_id) is playlist
                   and self._item_duration(playlist.items[playlist.index]) is not None):
                self._item_ended(playback_id, playlist.index)
            await self.flush()
        else:
            self._schedule_item(playback_id)
        return web.json_response(playback, status=201)

    def _item_duration(self, uri: str) -> float | None:
        """How long one item plays (None: until stopped); a missing one fails at once."""
        if uri in self.missing_media:
            return 0.0
        return self.durations.get(uri, self.playback_delay)

    def _schedule_item(self, playback_id: str) -> None:
        playlist = self._lists.get(playback_id)
        if playlist is None:
            return
        duration = self._item_duration(playlist.items[playlist.index])
        if duration is not None:
            self._later(duration, self._item_ended, playback_id, playlist.index)

    def _item_ended(self, playback_id: str, index: int) -> None:
        """Item ``index`` of a playback has ended: the list ends, or its next item starts."""
        playlist = self._lists.get(playback_id)
        playback = self.playbacks.get(playback_id)
        if playlist is None or playback is None or playlist.index != index:
            return                                  # stopped or ended meanwhile
        if playlist.last:
            failed = playlist.items[index] in self.missing_media
            self.finish_playback(playback_id, "failed" if failed else "done")
            return
        playback["state"] = "continuing"
        self.emit(self.event("PlaybackContinuing", playback=dict(playback)))
        playlist.index += 1
        playback.update(media_uri=playlist.items[playlist.index], state="playing")
        if playlist.last:
            playback.pop("next_media_uri", None)
        else:
            playback["next_media_uri"] = playlist.items[playlist.index + 1]
        self.emit(self.event("PlaybackStarted", playback=dict(playback)))
        if not self.finish_before_reply:
            self._schedule_item(playback_id)

    async def _get_playback(self, request: web.Request) -> web.Response:
        playback = self.playbacks.get(request.match_info["pb"])
        if playback is None:
            return _not_found("Playback")
        return web.json_response(playback)

    async def _stop_playback(self, request: web.Request) -> web.Response:
        playback_id = request.match_info["pb"]
        if playback_id not in self.playbacks:
            return _not_found("Playback")
        self.finish_playback(playback_id, "done")
        return web.Response(status=204)

    # bridges

    def _bridge(self, request: web.Request) -> dict[str, Any] | None:
        return self.bridges.get(request.match_info["id"])

    async def _list_bridges(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.bridges.values()))

    async def _create_bridge(self, request: web.Request) -> web.Response:
        bridge_id = request.query.get("bridgeId") or uuid.uuid4().hex
        if bridge_id in self.bridges:
            return web.json_response({"message": "Bridge with id already exists"}, status=409)
        bridge = {"id": bridge_id, "technology": "simple_bridge",
                  "bridge_type": request.query.get("type", "mixing"), "bridge_class": "stasis",
                  "name": request.query.get("name", ""), "channels": [], "creator": "Stasis",
                  "creationtime": _now()}
        self.bridges[bridge_id] = bridge
        self.emit(self.event("BridgeCreated", bridge=bridge))
        return web.json_response(bridge)

    async def _get_bridge(self, request: web.Request) -> web.Response:
        bridge = self._bridge(request)
        return _not_found("Bridge") if bridge is None else web.json_response(bridge)

    async def _destroy_bridge(self, request: web.Request) -> web.Response:
        bridge = self.bridges.pop(request.match_info["id"], None)
        if bridge is None:
            return _not_found("Bridge")
        for channel_id in bridge["channels"]:
            channel = self.channels.get(channel_id)
            if channel is not None:
                self.emit(self.event("ChannelLeftBridge", bridge=bridge, channel=channel))
        bridge["channels"] = []
        self.emit(self.event("BridgeDestroyed", bridge=bridge))
        return web.Response(status=204)

    async def _add_to_bridge(self, request: web.Request) -> web.Response:
        bridge = self._bridge(request)
        if bridge is None:
            return _not_found("Bridge")
        ids = request.query.get("channel", "").split(",")
        if any(channel_id not in self.channels for channel_id in ids):
            return web.json_response({"message": "Channel not found"}, status=400)
        for channel_id in ids:
            if channel_id not in bridge["channels"]:
                bridge["channels"].append(channel_id)
                self.emit(self.event("ChannelEnteredBridge", bridge=bridge,
                                     channel=self.channels[channel_id]))
        return web.Response(status=204)

    async def _remove_from_bridge(self, request: web.Request) -> web.Response:
        bridge = self._bridge(request)
        if bridge is None:
            return _not_found("Bridge")
        ids = request.query.get("channel", "").split(",")
        if any(channel_id not in bridge["channels"] for channel_id in ids):
            return web.json_response({"message": "Channel not in bridge"}, status=422)
        for channel_id in ids:
            bridge["channels"].remove(channel_id)
            channel = self.channels.get(channel_id)
            if channel is not None:
                self.emit(self.event("ChannelLeftBridge", bridge=bridge, channel=channel))
        return web.Response(status=204)

    async def _bridge_noop(self, request: web.Request) -> web.Response:
        if self._bridge(request) is None:
            return _not_found("Bridge")
        return web.Response(status=204)
