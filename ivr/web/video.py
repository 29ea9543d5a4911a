"""The video entrance's pages and their API (mount at ``/video``), on the admin listener.

    /video/                      the caller's page: large buttons, then a video call
    /video/agent/                the interpreter's page: log in, be ready, answer, chat
    /video/static/<file>         their scripts and style, and the vendored JsSIP
    GET  /video/api/settings     the buttons' choices in the page's four languages
    POST /video/api/visits       {topic, sign_language, language, number?, code?} → the visit:
                                 its token and how to place the call (SIP over WebSocket)
    GET  /video/api/visits/<token>/socket   the visit's messages (status, captions, chat, the
                                 call's end); the page sends {type: chat, text}, {type: slots},
                                 {type: book, start}
    POST /video/api/agent/login  {name, password}: an ``interpreter`` user (``ivr users add
                                 interp1 --role interpreter``), named as their agent
    GET  /video/api/agent/socket the interpreter's messages (the call ringing, talking, ended,
                                 chat); the page sends {type: ready | pause | chat}

The caller's page needs no log-in: it is the public's way in.  What protects the service is
that a call is served only with a visit made here (``ivr.video.service``), that visits are
limited in number and per address (``VISITS_PER_MINUTE``), and that a visit's token (128
random bits) is known only to its page.  The interpreter's page uses the wallboard's users,
sessions (a cookie on ``/video/``) and log-in limits; an interpreter may act on their own agent
only.  Every page carries the same security headers as the wallboard, with the Asterisk
WebSocket address added to ``connect-src``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import WSMsgType, web

from ivr.video.service import VideoRefused, VideoService
from ivr.web.auth import Audit, LoginLimiter, Role, Sessions, UserDirectory
from ivr.web.wallboard import guarded, json_body

log = structlog.get_logger("ivr.web.video")

__all__ = ["video_app", "VISITS_PER_MINUTE", "COOKIE"]

COOKIE = "ivr_video_session"
VISITS_PER_MINUTE = 20         # visits one address may open in a minute
MAX_MESSAGE = 4096             # bytes of one message a page sends
STATIC = {"caller.html": "text/html", "agent.html": "text/html", "caller.js": "text/javascript",
          "agent.js": "text/javascript", "common.js": "text/javascript", "video.css": "text/css",
          "vendor/jssip-3.10.0.min.js": "text/javascript"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("ivr.web") / "static" / "video"
    out = {}
    for name, kind in STATIC.items():
        path = folder / name if not name.startswith("vendor/") else resources.files("ivr.web") / "static" / name
        out[name] = (path.read_bytes(), kind)
    return out


def _headers(websocket: str) -> dict[str, str]:
    parts = urlsplit(websocket)
    socket_origin = f"{parts.scheme}://{parts.netloc}"
    return {
        "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                                   "img-src 'self' data:; media-src 'self' blob:; "
                                   f"connect-src 'self' {socket_origin}; form-action 'self'; "
                                   "frame-ancestors 'none'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(self), microphone=(self)",
    }


def _error(status: int, message: str, **more: Any) -> web.Response:
    return web.json_response({"error": message, **more}, status=status)


class _PerAddress:
    """At most ``limit`` events per address within ``window`` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._seen: dict[str, collections.deque[float]] = {}

    def allow(self, address: str | None) -> bool:
        now = self.clock()
        if len(self._seen) > 10_000:
            self._seen.clear()
        seen = self._seen.setdefault(address or "-", collections.deque())
        while seen and now - seen[0] > self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True


def video_app(service: VideoService, *, users: UserDirectory | None = None, audit: Audit | None = None,
              session_hours: float = 12.0, clock: Callable[[], float] = time.monotonic,
              limiter: LoginLimiter | None = None) -> web.Application:
    files = _files()
    headers = _headers(service.config.websocket)
    sessions = Sessions(session_hours, clock=clock)
    limiter = limiter or LoginLimiter(clock=clock)
    visits_limit = _PerAddress(VISITS_PER_MINUTE, 60.0, clock)
    checking = asyncio.Semaphore(2)
    sockets: set[web.WebSocketResponse] = set()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await guarded(request, handler, api="/api/" in request.path, headers=headers,
                             failed="video.request_failed")

    def page(name: str) -> Handler:
        async def serve(request: web.Request) -> web.Response:
            body, kind = files[name]
            return web.Response(body=body, content_type=kind, charset="utf-8",
                                headers={"Cache-Control": "no-cache"})
        return serve

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files or name.endswith(".html"):
            raise web.HTTPNotFound()
        body, kind = files[name]
        return web.Response(body=body, content_type=kind, charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    async def body_of(request: web.Request) -> dict[str, Any]:
        return await json_body(request, MAX_MESSAGE)

    async def message_of(ws: web.WebSocketResponse, data: str) -> dict[str, Any] | None:
        """A page's message as a JSON object; None (the page told why) when it is not one."""
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):
            message = None
        if not isinstance(message, dict):
            await ws.send_json({"type": "error", "reason": "message", "error": "send JSON objects"})
            return None
        return message

    def same_origin(request: web.Request) -> bool:
        """A socket opened by a page of this listener (browsers always send Origin on one)."""
        origin = request.headers.get("Origin")
        return origin is None or urlsplit(origin).netloc == request.host

    # -- the caller --------------------------------------------------------------------------
    async def settings(request: web.Request) -> web.Response:
        return web.json_response(service.page_settings())

    async def open_visit(request: web.Request) -> web.Response:
        if not visits_limit.allow(request.remote):
            return _error(429, "too many video calls started from here; wait a minute",
                          reason="busy")
        body = await body_of(request)
        try:
            visit, booking = await service.open_visit(
                topic=body.get("topic"), sign_language=body.get("sign_language"),
                language=body.get("language"), number=body.get("number"), code=body.get("code"))
        except VideoRefused as exc:
            return _error(400 if exc.reason not in ("busy", "store") else 503, str(exc),
                          reason=exc.reason, **exc.detail)
        return web.json_response({
            "token": visit.token, "sip": service.sip_settings(visit),
            "on_duty": service.on_duty(),
            "booking": None if booking is None else {
                "code": booking.code, "slot_start": booking.slot_start.isoformat(),
                "slot_end": booking.slot_end.isoformat()}})

    async def visit_socket(request: web.Request) -> web.StreamResponse:
        visit = service.visit(request.match_info["token"])
        if visit is None:
            return _error(404, "no such visit (it ended, or the engine restarted)")
        if not same_origin(request):
            return _error(403, "this page's own socket only")
        status = service.current_status(visit)

        async def received(ws: web.WebSocketResponse, data: str) -> bool:
            await _visit_message(ws, visit, data)
            return True
        return await pump(request, visit.key, [status] if status is not None else [], received)

    async def pump(request: web.Request, key: str, first: list[dict[str, Any]],
                   received: Callable[[web.WebSocketResponse, str], Awaitable[bool]]) -> web.WebSocketResponse:
        """A page's socket: ``first``, then every message published to ``key``, while each
        text the page sends goes to ``received`` (False: close the socket)."""
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        sockets.add(ws)
        sub = service.pages.subscribe(key)

        async def send() -> None:
            for message in first:
                await ws.send_json(message)
            while True:
                await ws.send_json(await sub.get())

        sender = asyncio.create_task(send(), name=f"video.send.{key.split(':', 1)[0]}")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and not await received(ws, msg.data):
                    break
        finally:
            sender.cancel()
            sub.close()
            sockets.discard(ws)
        return ws

    async def _visit_message(ws: web.WebSocketResponse, visit, data: str) -> None:
        message = await message_of(ws, data)
        if message is None:
            return
        kind = message.get("type")
        try:
            if kind == "chat":
                service.chat_from_caller(visit, message.get("text"))
            elif kind == "slots":
                slots = await service.free_slots()
                await ws.send_json({"type": "slots", "slots": [
                    {"start": s.start.isoformat(), "end": s.end.isoformat(), "free": s.free} for s in slots]})
            elif kind == "book":
                booking = await service.book(visit, message.get("start"))
                await ws.send_json({"type": "booked", "code": booking.code,
                                    "slot_start": booking.slot_start.astimezone(
                                        service.config.hours.tz).isoformat(),
                                    "slot_end": booking.slot_end.astimezone(service.config.hours.tz).isoformat()})
            else:
                await ws.send_json({"type": "error", "reason": "message",
                                    "error": "type is chat, slots or book"})
        except VideoRefused as exc:
            await ws.send_json({"type": "error", "reason": exc.reason, "error": str(exc), "for": kind})

    # -- the interpreter ---------------------------------------------------------------------
    def session_of(request: web.Request):
        s = sessions.get(request.cookies.get(COOKIE))
        if s is None or users is None:
            return None
        user = users.get(s.user)
        if user is None or user.role != Role.INTERPRETER:
            sessions.close(s.id)
            return None
        return s

    async def agent_login(request: web.Request) -> web.Response:
        if users is None:
            return _error(404, "no users file: interpreters cannot log in (admin.users_file)")
        body = await body_of(request)
        name, password = body.get("name"), body.get("password")
        if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
            return _error(400, "give your agent id and your password")
        name = name.strip()[:64]
        where = request.remote
        wait = limiter.retry_after(name, where)
        if wait is not None:
            return _error(429, "too many refused log-ins: try again later")
        async with checking:
            user = await asyncio.to_thread(users.verify, name, password)
        if user is None or user.role != Role.INTERPRETER:
            limiter.failed(name, where)
            if audit is not None:
                await audit.record(name, "-", "login_refused", detail="video agent page", source=where)
            return _error(401, "wrong agent id or password (an interpreter's log-in)")
        sip = service.agent_settings(user.name)
        if sip is None:
            return _error(403, f"{user.name} is not an agent of queue {service.config.queue} with a "
                               "SIP password (acd.agents, video.agent_passwords_file)")
        limiter.succeeded(name)
        s = sessions.open(user, where)
        if audit is not None:
            await audit.record(user.name, user.role, "login", detail="video agent page", source=where)
        resp = web.json_response({"agent": user.name, "sip": sip})
        resp.set_cookie(COOKIE, s.id, path="/video/", max_age=int(sessions.lifetime), httponly=True,
                        samesite="Strict")
        return resp

    async def agent_socket(request: web.Request) -> web.StreamResponse:
        s = session_of(request)
        if s is None:
            return _error(401, "log in first (or the session has ended)")
        if not same_origin(request):
            return _error(403, "this page's own socket only")
        agent_id = s.user

        async def received(ws: web.WebSocketResponse, data: str) -> bool:
            if session_of(request) is None:
                await ws.send_json({"type": "error", "reason": "session", "error": "log in again"})
                return False
            await _agent_message(ws, agent_id, data)
            return True
        return await pump(request, f"agent:{agent_id}", [{"type": "agent", **_agent_state(agent_id)}],
                          received)

    def _agent_state(agent_id: str) -> dict[str, Any]:
        queues = service.queues
        if queues is None:
            return {"state": "offline"}
        status = queues.agent_status(agent_id)
        return {"state": str(status.state), "call_id": service.agent_call(agent_id)}

    async def _agent_message(ws: web.WebSocketResponse, agent_id: str, data: str) -> None:
        message = await message_of(ws, data)
        if message is None:
            return
        kind = message.get("type")
        queues = service.queues
        try:
            if kind == "chat":
                service.chat_from_agent(agent_id, message.get("text"))
            elif kind in ("ready", "pause", "logout") and queues is not None:
                status = queues.agent_status(agent_id)
                state = str(status.state)
                if kind == "ready":
                    action = "login" if state == "offline" else "resume"
                else:
                    action = kind
                try:
                    queues.agent_action(agent_id, action, "paused on the video page")
                except ValueError as exc:
                    await ws.send_json({"type": "error", "reason": "state", "error": str(exc)})
                if audit is not None:
                    await audit.record(agent_id, Role.INTERPRETER, "agent." + action, target=agent_id,
                                       detail="video agent page")
                await ws.send_json({"type": "agent", **_agent_state(agent_id)})
            else:
                await ws.send_json({"type": "error", "reason": "message",
                                    "error": "type is chat, ready, pause or logout"})
        except VideoRefused as exc:
            await ws.send_json({"type": "error", "reason": exc.reason, "error": str(exc), "for": kind})

    async def closing(app: web.Application) -> None:
        for ws in list(sockets):
            await ws.close()

    app = web.Application(middlewares=[guard])
    app.on_shutdown.append(closing)
    app.router.add_get("/", page("caller.html"), name="page")
    app.router.add_get("/agent/", page("agent.html"), name="agent_page")
    app.router.add_get("/static/{name:.+}", static)
    app.router.add_get("/api/settings", settings)
    app.router.add_post("/api/visits", open_visit)
    app.router.add_get("/api/visits/{token}/socket", visit_socket)
    app.router.add_post("/api/agent/login", agent_login)
    app.router.add_get("/api/agent/socket", agent_socket)
    return app
