"""The wallboard: a live page of the queues, agents and reservations for supervisors.

Mounted at ``/wallboard/`` on the admin listener (``ivr.web.admin``).  The page (``static/``:
HTML, CSS and JavaScript, nothing fetched from elsewhere) logs in, then follows the live
figures (``LiveStats.snapshot()``) through server-sent events and draws them in place::

    GET  /wallboard/                           the page (log-in form until logged in)
    POST /wallboard/api/login                  {"name", "password"} → session cookie + CSRF token
    POST /wallboard/api/logout
    GET  /wallboard/api/me                     {"user", "role", "csrf"} (401: log in)
    GET  /wallboard/api/snapshot               the live figures once
    GET  /wallboard/api/events                 text/event-stream: "snapshot" events, each a whole
                                               snapshot: within PUSH_GAP s of a change (at
                                               most one per PUSH_GAP, or per COST_SHARE times
                                               what a snapshot costs when that is longer: one
                                               snapshot, encoded once, serves every page) and
                                               every TICK s anyway
    GET  /wallboard/api/callers/{call_id}      one waiting caller (full number for a supervisor,
                                               audited as caller.view; masked for a viewer)
    GET  /wallboard/api/reservations           open reservations, numbers masked (at most 100)
    GET  /wallboard/api/charts/{name}.svg      today's funnel / wait_by_hour (flow=NAME)
    POST /wallboard/api/agents/{id}/{pause|resume|logout}     supervisor; {"reason": …} for pause
    POST /wallboard/api/reservations/{id}/cancel               supervisor

Every ``/api`` request but the log-in needs the session cookie; every POST also the session's
CSRF token in ``X-CSRF-Token``.  Answers are JSON (``{"error": …}`` for errors): 401 not
logged in (or the session ended), 403 wrong CSRF token or a viewer acting, 404, 409 an action
the agent's state refuses, 429 too many refused log-ins (``Retry-After``).  Users, sessions,
the log-in limit and the audit log: ``ivr.web.auth``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from importlib import resources
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web

from ivr.acd.model import AgentStatus
from ivr.call import CallRecord, utcnow
from ivr.errors import IvrError
from ivr.flow.model import Flow, FlowSet
from ivr.logs import mask_number
from ivr.web.auth import Audit, LoginLimiter, Role, Session, Sessions, UserDirectory

log = structlog.get_logger("ivr.web.wallboard")

__all__ = ["wallboard_app", "LiveView", "AgentControl", "ReservationDesk", "ChartSource",
           "TodayCharts", "COOKIE", "PUSH_GAP", "TICK"]

COOKIE = "ivr_wallboard"
CSRF_HEADER = "X-CSRF-Token"
PUSH_GAP = 0.25          # seconds between two pushed snapshots, at least
TICK = 1.0               # a snapshot at least this often, changed or not (waits grow, callers flash)
COST_SHARE = 5           # the gap between two pushes is at least this many times a snapshot's cost
MAX_REASON = 200
MAX_RESERVATIONS = 100
STATIC = ("index.html", "wallboard.css", "wallboard.js")
CHARTS = ("funnel", "wait_by_hour")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LiveView(Protocol):
    """The live figures (``ivr.stats.live.LiveStats``)."""

    @property
    def version(self) -> int: ...

    def snapshot(self) -> dict[str, Any]: ...

    def waiting_caller(self, call_id: str) -> dict[str, Any] | None: ...

    async def wait_changed(self, version: int, timeout: float) -> int: ...


class AgentControl(Protocol):
    """The queues' supervisor actions (``QueueService.agent_action``): ``KeyError`` for an
    unknown agent, ``ValueError`` for an action the agent's state refuses."""

    def agent_action(self, agent_id: str, action: str, reason: str = "paused") -> AgentStatus: ...


class ReservationDesk(Protocol):
    """The callback desk (``CallbackDesk``)."""

    async def reservations(self, status: str | None = None) -> list[Any]: ...

    async def cancel(self, reservation_id: str) -> bool: ...


class ChartSource(Protocol):
    """Today's charts for a flow, as SVG bytes; None: no such chart or flow."""

    async def chart(self, name: str, flow: str | None) -> bytes | None: ...


_SESSION = web.RequestKey("wallboard.session", Session)
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _static_files() -> dict[str, tuple[bytes, str]]:
    kinds = {"html": "text/html", "css": "text/css", "js": "text/javascript"}
    folder = resources.files("ivr.web") / "static"
    return {name: ((folder / name).read_bytes(), kinds[name.rsplit(".", 1)[1]]) for name in STATIC}


async def json_body(request: web.Request, limit: int | None = None) -> dict[str, Any]:
    """The request's JSON object; 415 when it is not JSON, 413 past ``limit`` bytes, 400 when
    it is not an object."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(reason="send JSON (Content-Type: application/json)")
    if limit is not None and (request.content_length or 0) > limit:
        raise web.HTTPRequestEntityTooLarge(limit, request.content_length or 0)
    try:
        value = json.loads(await request.text())
    except (UnicodeDecodeError, ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise web.HTTPBadRequest(reason="the body must be a JSON object")
    return value


async def guarded(request: web.Request, handler: Handler, *, api: bool, headers: Mapping[str, str],
                  failed: str) -> web.StreamResponse:
    """``handler``'s answer, with ``headers`` (and ``Cache-Control: no-store`` unless it says
    otherwise) on every response not yet sent; for an ``api`` request, an HTTP error or a
    failure of the handler becomes a JSON ``{"error": …}`` (a failure logged as ``failed``)."""
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        if not api or exc.status < 400:
            raise
        resp = _error(exc.status, (exc.reason or "error").lower())
    except asyncio.CancelledError:
        raise
    except Exception:
        if not api:
            raise
        log.exception(failed, method=request.method, path=request.path)
        resp = _error(500, "internal error; the engine's log has the details")
    if not resp.prepared:
        resp.headers.update(headers)
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class _Feed:
    """The snapshot, encoded once for every open stream: again when the figures changed, or
    when it is older than ``max_age`` seconds (waits grow without any event)."""

    def __init__(self, stats: LiveView, max_age: float, clock: Callable[[], float]) -> None:
        self.stats, self.max_age, self.clock = stats, max_age, clock
        self._version = -1
        self._at = 0.0
        self._body = b""
        self.cost = 0.0            # seconds the last snapshot took (taken and encoded)

    def encoded(self) -> tuple[int, bytes]:
        version, now = self.stats.version, self.clock()
        if version != self._version or now - self._at >= self.max_age:
            self._body = json.dumps(self.stats.snapshot(), ensure_ascii=False,
                                    separators=(",", ":")).encode()
            self._version, self._at = version, now
            self.cost = self.clock() - now
        return self._version, self._body


def wallboard_app(*, users: UserDirectory, stats: LiveView, audit: Audit,
                  agents: AgentControl | None = None, desk: ReservationDesk | None = None,
                  charts: ChartSource | None = None, session_hours: float = 12.0,
                  clock: Callable[[], float] = time.monotonic,
                  limiter: LoginLimiter | None = None, push_gap: float = PUSH_GAP,
                  tick: float = TICK) -> web.Application:
    """The wallboard's sub-application (mount it at ``/wallboard``)."""
    sessions = Sessions(session_hours, clock=clock)
    limiter = limiter or LoginLimiter(clock=clock)
    feed = _Feed(stats, tick / 2, time.monotonic)
    files = _static_files()
    streams: set[asyncio.Task[Any]] = set()
    checking = asyncio.Semaphore(2)        # argon2 checks at once (each takes 64 MiB)

    def source(request: web.Request) -> str | None:
        return request.remote

    def current(request: web.Request) -> Session | None:
        s = sessions.get(request.cookies.get(COOKIE))
        if s is None:
            return None
        user = users.get(s.user)
        if user is None or user.role != s.role:      # removed, or the role changed
            sessions.close(s.id)
            return None
        return s

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Sessions, CSRF and JSON errors for ``/api``; security headers on everything."""
        api = "/api/" in request.path

        async def checked(request: web.Request) -> web.StreamResponse:
            if api and request.match_info.route.name != "api.login":
                s = current(request)
                if s is None:
                    return _error(401, "log in first (or the session has ended)")
                if request.method == "POST" and not s.csrf_ok(request.headers.get(CSRF_HEADER)):
                    return _error(403, f"missing or wrong {CSRF_HEADER}: reload the page")
                request[_SESSION] = s
            return await handler(request)

        return await guarded(request, checked, api=api, headers=_SECURITY_HEADERS,
                             failed="wallboard.request_failed")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info.get("name", "index.html")
        if name not in files:
            raise web.HTTPNotFound()
        body, kind = files[name]
        return web.Response(body=body, content_type=kind, charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    body_of = json_body

    async def login(request: web.Request) -> web.Response:
        body = await body_of(request)
        name, password = body.get("name"), body.get("password")
        if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
            return _error(400, "give a user name and a password")
        name = name.strip()[:64]
        where = source(request)
        wait = limiter.retry_after(name, where)
        if wait is not None:
            # The audit log has the refusal that locked the name or address ("now locked"); the
            # attempts while locked go to the engine's log only, so that a client trying again
            # and again cannot grow the audit log without bound.
            log.warning("audit.login_locked", user=name, source=where, retry_after=round(wait))
            return _error(429, "too many refused log-ins: try again later",
                          headers={"Retry-After": str(int(wait) + 1)})
        async with checking:
            user = await asyncio.to_thread(users.verify, name, password)
        if user is None:
            locked = limiter.failed(name, where)
            await audit.record(name, "-", "login_refused",
                               detail="wrong name or password" + ("; now locked" if locked else ""),
                               source=where)
            return _error(401, "wrong user name or password")
        if user.role == Role.INTERPRETER:
            await audit.record(name, user.role, "login_refused", detail="an interpreter: the video "
                               "agent page, not the wallboard", source=where)
            return _error(403, "interpreters log in on the video agent page (/video/agent/)")
        limiter.succeeded(name)
        s = sessions.open(user, where)
        await audit.record(user.name, user.role, "login", source=where)
        resp = web.json_response({"user": s.user, "role": str(s.role), "csrf": s.csrf})
        resp.set_cookie(COOKIE, s.id, path=str(request.app.router["page"].canonical),
                        max_age=int(sessions.lifetime), httponly=True, samesite="Strict")
        return resp

    async def logout(request: web.Request) -> web.Response:
        s = request[_SESSION]
        sessions.close(s.id)
        await audit.record(s.user, s.role, "logout", source=source(request))
        resp = web.json_response({"logged_out": s.user})
        resp.del_cookie(COOKIE, path=str(request.app.router["page"].canonical))
        return resp

    async def me(request: web.Request) -> web.Response:
        s = request[_SESSION]
        return web.json_response({"user": s.user, "role": str(s.role), "csrf": s.csrf,
                                  "actions": s.role == Role.SUPERVISOR and agents is not None,
                                  "reservations": desk is not None, "charts": charts is not None})

    async def snapshot(request: web.Request) -> web.Response:
        return web.Response(body=feed.encoded()[1], content_type="application/json")

    async def events(request: web.Request) -> web.StreamResponse:
        s = request[_SESSION]
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no", **_SECURITY_HEADERS})
        await resp.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        streams.add(task)
        loop = asyncio.get_running_loop()
        try:
            version = -1
            while current(request) is not None and sessions.get(s.id) is not None:
                sent_at = loop.time()
                version, body = feed.encoded()
                await resp.write(b"event: snapshot\ndata: " + body + b"\n\n")
                # At most one snapshot per push_gap (a busy center changes many times a second),
                # and the snapshots' own cost at most a fifth of the event loop's time.
                gap = max(push_gap, COST_SHARE * feed.cost)
                await asyncio.sleep(max(0.0, sent_at + gap - loop.time()))
                await stats.wait_changed(version, max(0.0, sent_at + tick - loop.time()))
            await resp.write(b"event: ended\ndata: {}\n\n")
        except (ConnectionResetError, ConnectionError):
            pass                                    # the page went away
        finally:
            streams.discard(task)
        return resp

    async def supervisor(request: web.Request, action: str, target: str) -> web.Response | None:
        """403 (audited) unless the session is a supervisor's."""
        s = request[_SESSION]
        if s.role != Role.SUPERVISOR:
            await audit.record(s.user, s.role, action, target=target, detail="refused: viewer",
                               source=source(request))
            return _error(403, "only a supervisor may do this")
        return None

    async def agent_action(request: web.Request) -> web.Response:
        agent_id, action = request.match_info["agent_id"], request.match_info["action"]
        refused = await supervisor(request, "agent." + action, agent_id)
        if refused is not None:
            return refused
        if agents is None:
            return _error(404, "no queues run on this engine")
        s = request[_SESSION]
        reason = "paused"
        if action == "pause":
            body = await body_of(request) if request.can_read_body else {}
            given = body.get("reason")
            if given not in (None, ""):
                if not isinstance(given, str) or len(given) > MAX_REASON or \
                        any(ch < " " or ch == "\x7f" for ch in given):
                    return _error(400, f"the reason is text on one line, at most {MAX_REASON} characters")
                reason = given.strip() or "paused"
        try:
            status = agents.agent_action(agent_id, action, reason)
        except KeyError:
            return _error(404, f"no agent {agent_id!r}")
        except ValueError as exc:
            await audit.record(s.user, s.role, "agent." + action, target=agent_id,
                               detail=f"refused: {exc}", source=source(request))
            return _error(409, str(exc))
        await audit.record(s.user, s.role, "agent." + action, target=agent_id,
                           detail=reason if action == "pause" else "", source=source(request))
        return web.json_response({"id": agent_id, "state": str(status.state), "reason": status.reason})

    async def cancel_reservation(request: web.Request) -> web.Response:
        rid = request.match_info["reservation_id"]
        refused = await supervisor(request, "callback.cancel", rid)
        if refused is not None:
            return refused
        if desk is None:
            return _error(404, "callbacks are not configured")
        s = request[_SESSION]
        if not await desk.cancel(rid):
            return _error(404, "no open reservation with that id")
        await audit.record(s.user, s.role, "callback.cancel", target=rid, source=source(request))
        return web.json_response({"cancelled": rid})

    async def reservations(request: web.Request) -> web.Response:
        if desk is None:
            return web.json_response([])
        found = await desk.reservations("pending")
        return web.json_response([{
            "id": r.id, "number": mask_number(r.number), "queue": r.queue,
            "due_at": r.due_at.isoformat(), "attempts": r.attempts, "reason": r.reason}
            for r in found[:MAX_RESERVATIONS]])

    async def caller(request: web.Request) -> web.Response:
        s = request[_SESSION]
        call_id = request.match_info["call_id"]
        found = stats.waiting_caller(call_id)
        if found is None:
            return _error(404, "that caller is no longer waiting")
        if s.role == Role.SUPERVISOR:
            await audit.record(s.user, s.role, "caller.view", target=call_id, source=source(request))
        else:
            found = {**found, "number": mask_number(found.get("number") or "")}
        return web.json_response(found)

    async def chart(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if charts is None or name not in CHARTS:
            return _error(404, "no such chart")
        flow = request.query.get("flow") or None
        try:
            svg = await charts.chart(name, flow)
        except IvrError as exc:
            log.warning("wallboard.chart_failed", chart=name, error=str(exc))
            return _error(503, "the chart cannot be drawn now")
        if svg is None:
            return _error(404, "no such chart or flow")
        return web.Response(body=svg, content_type="image/svg+xml", headers={"Cache-Control": "no-cache"})

    async def stop_streams(app: web.Application) -> None:
        for task in list(streams):
            task.cancel()

    app = web.Application(middlewares=[guard])
    app.router.add_get("/", static, name="page")
    app.router.add_get("/static/{name}", static)
    app.router.add_post("/api/login", login, name="api.login")
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/snapshot", snapshot)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/callers/{call_id}", caller)
    app.router.add_get("/api/reservations", reservations)
    app.router.add_get("/api/charts/{name}.svg", chart)
    app.router.add_post("/api/agents/{agent_id}/{action:pause|resume|logout}", agent_action)
    app.router.add_post("/api/reservations/{reservation_id}/cancel", cancel_reservation)
    app.on_shutdown.append(stop_streams)
    return app


class CallHistory(Protocol):
    def iter_calls(self, since: dt.datetime, until: dt.datetime, *, flow: str | None = None,
                   batch: int = 5000) -> AsyncIterator[list[CallRecord]]: ...


class TodayCharts:
    """Today's journey charts of a flow (``ivr.analytics``), for the wallboard: the calls since
    the center's midnight, read again and drawn (in a worker thread, off the event loop) at
    most once every ``every`` seconds per flow; pages asking meanwhile get the same bytes.
    Calls of the 24 hours before midnight are not read: a wall chart's funnel and waits do not
    need them (the report's repeat and containment figures would)."""

    def __init__(self, store: CallHistory, flows: Callable[[], FlowSet], tz: ZoneInfo, *,
                 clock: Callable[[], dt.datetime] = utcnow,
                 mono: Callable[[], float] = time.monotonic, every: float = 60.0) -> None:
        self.store, self.flows, self.tz = store, flows, tz
        self.clock, self.mono, self.every = clock, mono, every
        self._drawn: dict[str, tuple[float, dict[str, bytes]]] = {}
        self._lock = asyncio.Lock()

    def default_flow(self) -> str | None:
        """The flow shown when the page names none: ``main`` when there is one, else the first
        flow by name that answers a number."""
        flowset = self.flows()
        names = flowset.flow_names()
        if "main" in names:
            return "main"
        answering = sorted({f.name for f in flowset.by_number.values()})
        chosen = answering or sorted(names)
        return chosen[0] if chosen else None

    async def chart(self, name: str, flow: str | None) -> bytes | None:
        flow = flow or self.default_flow()
        found = self.flows().get(flow) if flow else None
        if found is None or name not in CHARTS:
            return None
        async with self._lock:
            drawn = self._drawn.get(found.name)
            if drawn is None or self.mono() - drawn[0] >= self.every:
                drawn = (self.mono(), await self._draw(found))
                self._drawn[found.name] = drawn
        return drawn[1][name]

    async def _draw(self, flow: Flow) -> dict[str, bytes]:
        from ivr.analytics.charts import funnel_chart, wait_by_hour_chart
        from ivr.analytics.report import ReportBuilder, flow_order

        now = self.clock()
        midnight = dt.datetime.combine(now.astimezone(self.tz).date(), dt.time(), self.tz)
        until = now + dt.timedelta(seconds=1)
        builder = ReportBuilder(flow.name, midnight, until, self.tz,
                                order=flow_order(flow, self.flows()))
        async for batch in self.store.iter_calls(midnight, until, flow=flow.name):
            builder.add(batch)
        report = builder.report(followed_until=until)

        def draw() -> dict[str, bytes]:
            return {"funnel": funnel_chart(report), "wait_by_hour": wait_by_hour_chart(report)}

        return await asyncio.to_thread(draw)
