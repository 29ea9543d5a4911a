"""A thin REST client for Asterisk's ARI, on one aiohttp session.

Requests go over HTTP, or (``ari.requests: socket``) over the sockets ``EventStream`` hands
over (``use_socket``: the event socket and request sockets of their own): Asterisk 20.14, 21.9,
22.4 and later answer a ``RESTRequest`` frame there with a ``RESTResponse`` frame carrying the
same ``request_id``.  That spares each request aiohttp's client machinery (a connection from
the pool, a request and a response object, headers written and parsed): 5-22 % of the
engine's CPU per call in bench/asterisk_load.py.  The answer is
read like an HTTP one (status, JSON body), so callers see no difference.  When the socket
closes, the next requests go over HTTP until it is back; a request that was sent on it and not
yet answered is sent again over HTTP (Asterisk may or may not have carried it out): repeating
a GET, an answer, a hangup or a variable is harmless, and the requests that create something
carry their own id (playback, channel, bridge), so a repeat that Asterisk answers 409 (that id
exists) means the first one was carried out, and counts as done.

Errors come out typed (``ivr.errors``): a 404 on a channel or playback is ``ChannelGone``
(normal in a call's life), other error answers are ``AriError`` with ``status``, a refused
connection is ``AriUnavailable`` and a slow answer ``AriTimeout``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import structlog
from yarl import URL

from ivr.ari import jsondecode
from ivr.errors import AriError, AriTimeout, AriUnavailable, ChannelGone
from ivr.ari.timeouts import Timeouts

log = structlog.get_logger(__name__)

Json = Any
Params = Mapping[str, str | int | float]

# Paths under these prefixes name a channel or a playback: a 404 there means "it is gone".
_GONE_PREFIXES = ("/channels/", "/playbacks/")

SWEEP_EVERY = 0.25                 # seconds between looks for overdue answers on the sockets
REQUEST_MODES = ("http", "socket")   # ari.requests: HTTP, or over the event socket when Asterisk can


def basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


# The words of ARI's paths; any other segment is a name or an id (``route`` puts ``{id}`` there).
_ROUTE_WORDS = frozenset({
    "channels", "bridges", "playbacks", "recordings", "endpoints", "applications", "asterisk",
    "sounds", "deviceStates", "mailboxes", "events", "play", "answer", "variable", "ring", "moh",
    "continue", "addChannel", "removeChannel", "hold", "mute", "silence", "dtmf", "redirect",
    "record", "snoop", "dial", "move", "externalMedia", "create", "control", "stored", "live",
    "info", "ping", "modules", "logging", "config", "user", "dynamic", "rtp_statistics", "videoSource",
})


def route(path: str) -> str:
    """A request's path as its template, for metrics: every name or id is ``{id}``
    (``/channels/1700000000.12/play/pb-3`` → ``/channels/{id}/play/{id}``)."""
    return "/".join(part if not part or part in _ROUTE_WORDS else "{id}"
                    for part in path.split("?", 1)[0].split("/"))


def _seg(value: str) -> str:
    """One path segment, escaped."""
    return quote(value, safe="")


class AriClient:
    """Owns one ``aiohttp.ClientSession``; use as ``async with AriClient(...) as client``."""

    def __init__(self, base_url: str, username: str, password: str, app: str,
                 timeouts: Timeouts = Timeouts(), *, max_connections: int = 100,
                 requests: str = "http") -> None:
        if requests not in REQUEST_MODES:
            raise ValueError(f"requests must be one of {', '.join(REQUEST_MODES)}, got {requests!r}")
        self.base_url = base_url.rstrip("/")
        # "socket": over the event socket once Asterisk has answered a request there; "http": never.
        self.requests = requests
        self.username = username
        self.app = app
        self.timeouts = timeouts
        self._auth = basic_auth_header(username, password)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # The sockets the requests are spread over (``use_socket``), and the requests sent on
        # them that wait for their answer, by request id, with the socket each went on.
        self._sockets: list[aiohttp.ClientWebSocketResponse] = []
        self._turn = 0
        self._waiting: dict[str, tuple[asyncio.Future[dict[str, Any]],
                                       aiohttp.ClientWebSocketResponse]] = {}
        # (deadline, request id) of the requests sent on a socket, oldest first (they share one
        # timeout), and the one timer that fails those past their deadline: cheaper than a
        # timer per request.
        self._deadlines: collections.deque[tuple[float, str]] = collections.deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._ids = itertools.count(1)
        # Told of every request once it is over, answered or not: (method, route(path), seconds).
        self.on_request: Callable[[str, str, float], None] | None = None

    async def __aenter__(self) -> AriClient:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": self._auth},
            timeout=aiohttp.ClientTimeout(total=self.timeouts.request,
                                          sock_connect=self.timeouts.connect),
            connector=aiohttp.TCPConnector(limit=self._max_connections),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        self.drop_socket()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._deadlines.clear()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("AriClient is not open: use it as 'async with AriClient(...)'")
        return self._session

    # -- requests over the event socket -------------------------------------------------------

    @property
    def over_socket(self) -> bool:
        """True while requests go over the event socket (or request sockets)."""
        return bool(self._sockets)

    @property
    def request_sockets(self) -> int:
        """How many sockets the requests are spread over now (0: HTTP)."""
        return len(self._sockets)

    def use_socket(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Spread the requests from now on over ``ws`` too (answers come back to
        ``answered``)."""
        if ws not in self._sockets:
            self._sockets.append(ws)

    def drop_socket(self, ws: aiohttp.ClientWebSocketResponse | None = None) -> None:
        """A socket (``ws``, or every one) is gone: requests stop going over it (over HTTP when
        none is left), and those that waited for an answer there fail with ``_SocketClosed``
        (``request`` sends them again over HTTP)."""
        if ws is None:
            self._sockets.clear()
        elif ws in self._sockets:
            self._sockets.remove(ws)
        for request_id, (future, on) in list(self._waiting.items()):
            if ws is None or on is ws:
                del self._waiting[request_id]
                if not future.done():
                    future.set_exception(_SocketClosed(
                        "ARI: the socket closed before Asterisk answered the request"))

    def answered(self, frame: dict[str, Any]) -> bool:
        """A ``RESTResponse`` frame from a socket; False when no request waits for it
        (it came too late, or it is not ours)."""
        waiting = self._waiting.pop(str(frame.get("request_id")), None)
        if waiting is None or waiting[0].done():
            return False
        waiting[0].set_result(frame)
        return True

    async def request_on(self, ws: aiohttp.ClientWebSocketResponse, method: str, uri: str,
                         body: Json = None, *, timeout: float | None = None) -> dict[str, Any]:
        """Send one ``RESTRequest`` frame on ``ws`` and wait for its ``RESTResponse`` frame
        (``uri`` without the leading ``/``, with its query).  ``AriTimeout`` when none comes
        within ``timeout`` (the request timeout by default), ``_SocketClosed`` (an
        ``AriUnavailable``) when the socket cannot be written or closes first."""
        request_id = str(next(self._ids))
        frame: dict[str, Any] = {"type": "RESTRequest", "request_id": request_id,
                                 "method": method, "uri": uri}
        if body is not None:
            frame["content_type"] = "application/json"
            frame["message_body"] = jsondecode.dumps(body)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiting[request_id] = (future, ws)
        try:
            await ws.send_str(jsondecode.dumps(frame))
            if timeout is not None:
                async with asyncio.timeout(timeout):
                    return await future
            self._deadlines.append((loop.time() + self.timeouts.request, request_id))
            if self._sweeper is None:
                self._sweeper = loop.call_at(self._deadlines[0][0], self._sweep)
            return await future
        except TimeoutError as exc:
            raise AriTimeout(f"ARI {method} /{uri}: no answer on the event socket within "
                             f"{self.timeouts.request if timeout is None else timeout}s") from exc
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise _SocketClosed(f"ARI {method} /{uri}: the event socket cannot be written: "
                                f"{exc}") from exc
        finally:
            self._waiting.pop(request_id, None)

    def _sweep(self) -> None:
        """Fail the requests on sockets whose answer is overdue (``AriTimeout``)."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        now, deadlines = loop.time(), self._deadlines
        while deadlines and deadlines[0][0] <= now:
            waiting = self._waiting.get(deadlines.popleft()[1])
            if waiting is not None and not waiting[0].done():
                waiting[0].set_exception(TimeoutError())
        if deadlines:      # at most a few times a second: a timeout is late by 0.25 s at most
            self._sweeper = loop.call_at(max(deadlines[0][0], now + SWEEP_EVERY), self._sweep)

    async def connect_request_socket(self, name: str) -> aiohttp.ClientWebSocketResponse:
        """Open one more socket for requests only: ``/events`` for an application of its own
        (``name``) that no channel ever enters, so it carries answers and no events."""
        return await self.session.ws_connect(
            self.base_url + "/events", params={"app": name, "subscribeAll": "false"},
            heartbeat=self.timeouts.ws_heartbeat,
            timeout=aiohttp.ClientWSTimeout(ws_close=self.timeouts.ws_close),
            max_msg_size=0, compress=0)

    async def ping_on(self, ws: aiohttp.ClientWebSocketResponse, timeout: float) -> int:
        """``GET asterisk/ping`` on ``ws``: the status Asterisk answered there (counted like
        any request), or ``AriTimeout`` when it answers nothing there within ``timeout``."""
        started = time.perf_counter()
        try:
            answer = await self.request_on(ws, "GET", "asterisk/ping", timeout=timeout)
        finally:
            if self.on_request is not None:
                self.on_request("GET", "/asterisk/ping", time.perf_counter() - started)
        status = answer.get("status_code")
        return status if isinstance(status, int) else 0

    async def _over_socket(self, ws: aiohttp.ClientWebSocketResponse, method: str, path: str,
                           query: str, json: Json) -> Json:
        started = time.perf_counter()
        try:
            answer = await self.request_on(ws, method, path[1:] + query, json)
        except _SocketClosed:
            log.debug("ari.request_repeated", method=method, path=path)
            try:
                return await self._over_http(method, path, query, json)
            except AriError as exc:
                if exc.status == 409:
                    return None      # the id exists: the request on the socket was carried out
                raise
        finally:
            if self.on_request is not None:
                self.on_request(method, route(path), time.perf_counter() - started)
        status = answer.get("status_code")
        if not isinstance(status, int):
            raise AriError(f"ARI {method} {path}: the answer on the event socket has no status")
        body = answer.get("message_body") or ""
        if not isinstance(body, str):
            raise AriError(f"ARI {method} {path}: the answer's body is not text", status=status)
        return self._answer(method, path, status, body)

    # -- the one generic request -------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: Params | None = None,
                      json: Json = None) -> Json:
        """Send one request to ``base_url + path``; return the decoded JSON body or None."""
        # One pre-encoded URL: yarl need not parse and re-quote it (a measurable cost per request).
        query = ("?" + urlencode(params, quote_via=quote, safe="")) if params else ""
        sockets = self._sockets
        if sockets:
            self._turn += 1
            return await self._over_socket(sockets[self._turn % len(sockets)], method, path,
                                           query, json)
        return await self._over_http(method, path, query, json)

    async def _over_http(self, method: str, path: str, query: str, json: Json) -> Json:
        url = URL(self.base_url + path + query, encoded=True)
        started = time.perf_counter()
        try:
            async with self.session.request(method, url, json=json) as resp:
                body = await resp.read()
                status = resp.status
        except TimeoutError as exc:
            raise AriTimeout(f"ARI {method} {path}: no answer within "
                             f"{self.timeouts.request}s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise AriUnavailable(f"ARI {method} {path}: cannot reach Asterisk at "
                                 f"{self.base_url}: {exc.os_error or exc}") from exc
        except aiohttp.ClientError as exc:
            raise AriError(f"ARI {method} {path}: {exc}") from exc
        finally:
            if self.on_request is not None:
                self.on_request(method, route(path), time.perf_counter() - started)
        return self._answer(method, path, status, body)

    def _answer(self, method: str, path: str, status: int, body: str | bytes) -> Json:
        """An answer, from HTTP (bytes) or a socket (text): the decoded JSON body, None, or
        the typed error."""
        if status >= 400:
            raise self._error(method, path, status,
                              body.encode() if isinstance(body, str) else body)
        if not body:
            return None
        try:
            return jsondecode.loads(body)
        except ValueError as exc:
            raise AriError(f"ARI {method} {path}: answer is not JSON", status=status) from exc

    def _error(self, method: str, path: str, status: int, body: bytes) -> AriError:
        message = _error_message(body)
        if status == 404 and path.startswith(_GONE_PREFIXES):
            log.debug("ari.gone", method=method, path=path, message=message)
            return ChannelGone(f"ARI {method} {path}: {message or 'not found'}", status=status)
        if status == 401:
            return AriError(f"Asterisk refused ARI user {self.username!r} (401): check the "
                            f"username and password against ari.conf", status=status)
        return AriError(f"ARI {method} {path} answered {status}: {message}", status=status)

    # -- channels ----------------------------------------------------------------------------

    async def list_channels(self) -> list[Any]:
        """Every channel Asterisk has (each should be an object: the caller checks)."""
        return await self._list("channels")

    async def _list(self, what: str) -> list[Any]:
        """``GET /<what>``: a list (its items unchecked), or ``AriError``."""
        answer = await self.request("GET", f"/{what}")
        if answer is None:
            return []
        if not isinstance(answer, list):
            raise AriError(f"ARI GET /{what}: answer is {type(answer).__name__}, "
                           f"expected a list of {what}")
        return answer

    async def get_channel(self, channel_id: str) -> dict[str, Any]:
        path = f"/channels/{_seg(channel_id)}"
        return _object(await self.request("GET", path), "GET", path)

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}", params={"reason": reason})

    async def continue_in_dialplan(self, channel_id: str, context: str | None = None,
                                   extension: str | None = None, priority: int | None = None,
                                   label: str | None = None) -> None:
        """Leave Stasis; with no target the dialplan goes on after the ``Stasis()`` line."""
        params = _drop_none(context=context, extension=extension, priority=priority, label=label)
        await self.request("POST", f"/channels/{_seg(channel_id)}/continue", params=params)

    async def play(self, channel_id: str, playback_id: str, media: str | Sequence[str], *,
                   lang: str | None = None) -> dict[str, Any]:
        """Start playing; Asterisk answers 201 at once and reports the end as an event.

        A list of URIs is one playback of its items in order (Asterisk 14+: ``media`` is
        comma-separated, so no URI may hold a comma; prompt ids and languages cannot)."""
        uris = media if isinstance(media, str) else ",".join(media)
        params = _drop_none(media=uris, lang=lang)
        path = f"/channels/{_seg(channel_id)}/play/{_seg(playback_id)}"
        return _object(await self.request("POST", path, params=params), "POST", path)

    async def get_playback(self, playback_id: str) -> dict[str, Any]:
        path = f"/playbacks/{_seg(playback_id)}"
        return _object(await self.request("GET", path), "GET", path)

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{_seg(playback_id)}")

    async def get_variable(self, channel_id: str, name: str) -> str:
        path = f"/channels/{_seg(channel_id)}/variable"
        answer = _object(await self.request("GET", path, params={"variable": name}), "GET", path)
        value = answer.get("value", "")
        return value if isinstance(value, str) else str(value)

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/variable",
                           params={"variable": name, "value": value})

    async def ring_start(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/ring")

    async def moh_start(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/moh",
                           params=_drop_none(mohClass=moh_class))

    async def moh_stop(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/moh")

    async def originate(self, endpoint: str, *, app: str | None = None,
                        app_args: Sequence[str] = (), caller_id: str | None = None,
                        timeout: int | None = None, channel_id: str | None = None,
                        variables: Mapping[str, str] | None = None,
                        originator: str | None = None, formats: str | None = None) -> dict[str, Any]:
        """Dial ``endpoint`` (``PJSIP/agent1``) into Stasis; variables travel in the JSON body.
        ``formats`` (``opus,ulaw,vp8``): what the new channel offers; without it (and without
        an ``originator``) Asterisk offers audio only."""
        params = _drop_none(endpoint=endpoint, app=app or self.app,
                            appArgs=",".join(app_args) if app_args else None,
                            callerId=caller_id, timeout=timeout, channelId=channel_id,
                            originator=originator, formats=formats)
        body = {"variables": dict(variables)} if variables else None
        return _object(await self.request("POST", "/channels", params=params, json=body),
                       "POST", "/channels")

    # -- bridges -----------------------------------------------------------------------------

    async def list_bridges(self) -> list[Any]:
        """Every bridge Asterisk has (each should be an object: the caller checks)."""
        return await self._list("bridges")

    async def create_bridge(self, bridge_type: str = "mixing", *, bridge_id: str | None = None,
                            name: str | None = None) -> dict[str, Any]:
        params = _drop_none(type=bridge_type, bridgeId=bridge_id, name=name)
        return _object(await self.request("POST", "/bridges", params=params), "POST", "/bridges")

    async def add_to_bridge(self, bridge_id: str, channel_ids: str | Sequence[str]) -> None:
        ids = channel_ids if isinstance(channel_ids, str) else ",".join(channel_ids)
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/addChannel",
                           params={"channel": ids})

    async def remove_from_bridge(self, bridge_id: str, channel_ids: str | Sequence[str]) -> None:
        ids = channel_ids if isinstance(channel_ids, str) else ",".join(channel_ids)
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/removeChannel",
                           params={"channel": ids})

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{_seg(bridge_id)}")

    async def bridge_moh_start(self, bridge_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/bridges/{_seg(bridge_id)}/moh",
                           params=_drop_none(mohClass=moh_class))

    async def bridge_moh_stop(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{_seg(bridge_id)}/moh")

    # -- the event socket --------------------------------------------------------------------

    async def connect_events(self) -> aiohttp.ClientWebSocketResponse:
        """Open ``/events?app=<app>``; the caller owns (and closes) the socket."""
        url = self.base_url + "/events"
        try:
            return await self.session.ws_connect(
                url, params={"app": self.app}, heartbeat=self.timeouts.ws_heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_close=self.timeouts.ws_close),
                max_msg_size=0, compress=0)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise AriError(f"Asterisk refused ARI user {self.username!r} on the event "
                               f"socket (401): check the username and password against "
                               f"ari.conf", status=401) from exc
            raise AriError(f"ARI event socket {url}: handshake answered {exc.status}",
                           status=exc.status) from exc
        except TimeoutError as exc:
            raise AriTimeout(f"ARI event socket {url}: no answer within "
                             f"{self.timeouts.request}s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise AriUnavailable(f"ARI event socket: cannot reach Asterisk at {url}: "
                                 f"{exc.os_error or exc}") from exc
        except aiohttp.ClientError as exc:
            raise AriError(f"ARI event socket {url}: {exc}") from exc


class _SocketClosed(AriUnavailable):
    """The event socket closed (or could not be written) before the request was answered."""


def _object(answer: Json, method: str, path: str) -> dict[str, Any]:
    """An answer that must be a JSON object (an empty answer counts as an empty one)."""
    if answer is None:
        return {}
    if not isinstance(answer, dict):
        raise AriError(f"ARI {method} {path}: answer is {type(answer).__name__}, "
                       f"expected an object")
    return answer


def _drop_none(**params: str | int | float | None) -> dict[str, str | int | float]:
    return {key: value for key, value in params.items() if value is not None}


def _error_message(body: bytes) -> str:
    try:
        decoded = jsondecode.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(decoded, dict) and "message" in decoded:
        return str(decoded["message"])
    return str(decoded)[:200]
