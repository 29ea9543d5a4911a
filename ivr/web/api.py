"""The operator API: calls, queues, agents and callback reservations, over HTTP.

``api_app(...)`` is a sub-application, mounted at ``/api`` on the admin listener; every request
to it needs ``Authorization: Bearer <admin token>`` (``admin.token`` / ``admin.token_file`` /
``IVR_ADMIN_TOKEN``).  ``AdminServer(app, host, port)`` serves any aiohttp application.

Version 1, described by ``GET /api/v1/openapi.json`` (OpenAPI 3.1, ``ivr.web.openapi``) and
listed for people at ``GET /api/v1/docs``:

    GET  /api/v1/calls?since&until&flow&outcome&number&limit&cursor   newest first, paged
    GET  /api/v1/calls/{id}                      one call: path, keys, outcome, queue events
    GET  /api/v1/queues                          live: waiting by priority, oldest wait, estimate
    GET  /api/v1/agents?center&state&limit&cursor
    POST /api/v1/agents/{id}/login|logout|pause|resume
    GET  /api/v1/reservations?status&limit&cursor
    POST /api/v1/reservations/{id}/cancel

Listings are pages ``{"items": [...], "next": cursor|null}``: ``next`` is opaque; passed back
as ``cursor`` it gives the page after, stable while calls arrive (keyset pages: a call that
arrives meanwhile is not on a later page, no call is on two).  Phone numbers are masked.

The unversioned paths of before answer as they did, deprecated (lists as bare arrays):
``GET /api/agents``, ``POST /api/agents/{id}/login|logout|pause|resume``, ``GET /api/queues``,
``GET /api/callbacks[?status]``, ``POST /api/callbacks/{id}/cancel``.

Errors are ``{"error": "…"}``: 400 for a query parameter or body that does not fit (saying
what would), 401 without the right token (compared in constant time, as bytes, whatever
characters the header holds), 404 for an unknown call, agent, reservation or path, 405 for a
wrong method, 409 for an action the agent's state does not allow.  An unexpected failure is
logged and answered 500 as JSON.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from aiohttp import web

from ivr.acd.model import AgentState, AgentStatus
from ivr.acd.service import QueueBoard
from ivr.call import CHANNELS, CallRecord, Outcome, utcnow
from ivr.callbacks.model import STATUSES, Reservation
from ivr.logs import mask_number
from ivr.routing.numbers import normalize
from ivr.store.base import CallQuery, QueueEvent, Store
from ivr.web.openapi import MAX_LIMIT, docs_page, openapi_document
from ivr.wellness.model import Visit

log = structlog.get_logger(__name__)

__all__ = ["AdminServer", "Desk", "Operators", "api_app", "MAX_LIMIT"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CALLS_LIMIT, AGENTS_LIMIT, RESERVATIONS_LIMIT = 50, 200, 100       # items per page by default
MAX_REASON = 200
AGENT_ACTIONS = ("login", "logout", "pause", "resume")


class Operators(Protocol):
    """What the API asks of the running queues (``QueueService``)."""

    clock: Callable[[], float]

    def snapshot(self) -> dict[str, Any]: ...

    def agent_statuses(self) -> list[AgentStatus]: ...

    def agent_status(self, agent_id: str) -> AgentStatus: ...

    def agent_action(self, agent_id: str, action: str, reason: str = "paused") -> AgentStatus: ...

    def queue_board(self) -> list[QueueBoard]: ...


class Dialler(Protocol):
    """What the API asks of the wellness dialler (``WellnessDesk``)."""

    def status(self) -> dict[str, Any]: ...

    def run_now(self, number: str | None = None) -> None: ...


class Desk(Protocol):
    """What the API asks of the callback desk (``CallbackDesk``)."""

    async def reservations(self, status: str | None = None) -> list[Reservation]: ...

    async def cancel(self, reservation_id: str) -> bool: ...


def api_app(*, token: str, queues: Operators | None = None, desk: Desk | None = None,
            store: Store | None = None, region: str = "KR", tz: dt.tzinfo = dt.timezone.utc,
            clock: Callable[[], dt.datetime] = utcnow,
            wellness: Dialler | None = None) -> web.Application:
    """The API as a sub-application to mount at ``/api``.  ``queues``: the running queues
    (None: the agent and queue paths answer 404); ``desk``: the callback desk (None:
    callbacks are not on; the reservations the store holds are still listed); ``store``: where
    calls and reservations are read (None: those paths answer 404); ``region``: how a number
    without ``+`` is read (``callers.region``); ``tz``: the center's time zone, in which a
    ``since``/``until`` without an offset is read (``callers.timezone``); ``clock``: the wall
    clock (``as_of``); ``wellness``: the wellness dialler (None: its status and run-now answer
    404; the visit list the store holds is still listed)."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Header bytes that are not UTF-8 arrive as surrogates: back to the same bytes.
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        return await handler(request)

    def need_queues() -> Operators:
        if queues is None:
            raise _json_error(web.HTTPNotFound, "the queues are not configured (acd)")
        return queues

    def need_store() -> Store:
        if store is None:
            raise _json_error(web.HTTPNotFound, "no store is configured")
        return store

    def agent_or_404(request: web.Request) -> AgentStatus:
        agent_id = request.match_info["agent_id"]
        try:
            return need_queues().agent_status(agent_id)
        except KeyError:
            raise _json_error(web.HTTPNotFound, f"no agent {agent_id!r}") from None

    async def act(request: web.Request, name: str) -> dict[str, Any]:
        service = need_queues()
        agent_id = agent_or_404(request).spec.id
        reason = _reason(await _json_object(request)) if name == "pause" else "paused"
        try:
            status = service.agent_action(agent_id, name, reason)
        except ValueError as exc:
            raise _json_error(web.HTTPConflict, str(exc)) from None
        log.info("agent." + name, agent=agent_id, by="admin api")
        return _agent_json(status, service.clock())

    # -- version 1 -------------------------------------------------------------------------

    async def v1_calls(request: web.Request) -> web.Response:
        q = _Query(request, {"since", "until", "flow", "outcome", "number", "channel", "limit", "cursor"}, tz)
        since, until = q.moment("since"), q.moment("until")
        if since is not None and until is not None and since >= until:
            raise _bad("since must be before until")
        outcome = q.choice("outcome", [str(o) for o in Outcome])
        number = q.text("number")
        if number is not None:
            parsed = normalize(number, region)
            if not parsed.ok:
                raise _bad(f"number: {mask_number(number)!r} is not a phone number "
                           f"({parsed.reason}); give it as dialled, e.g. 010-1234-5678 or "
                           f"+82 10 1234 5678")
            number = parsed.e164
        limit = q.limit(CALLS_LIMIT)
        after = q.cursor(2)
        query = CallQuery(since=since, until=until, flow=q.text("flow"), outcome=outcome,
                          number=number, channel=q.choice("channel", list(CHANNELS)))
        found = await need_store().find_calls(
            query, limit=limit + 1,
            after=None if after is None else (_moment(after[0]), after[1]))
        more = len(found) > limit
        page = found[:limit]
        last = page[-1] if more else None
        return _page([_call_json(r) for r in page],
                     None if last is None else [last.started_at.isoformat(), last.call_id])

    async def v1_call(request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        db = need_store()
        record = await db.get_call(call_id)
        if record is None:
            raise _json_error(web.HTTPNotFound, f"no call {call_id!r}")
        body = _call_json(record)
        body["path"] = [{"node": node, "exit": record.exits[i] if i < len(record.exits) else None}
                        for i, node in enumerate(record.nodes)]
        body["keys"] = list(record.digits)
        body["events"] = [_event_json(e) for e in await db.call_events(call_id)]
        return web.json_response(body)

    async def v1_queues(request: web.Request) -> web.Response:
        _Query(request, set())
        board = need_queues().queue_board()
        return web.json_response({"as_of": clock().isoformat(),
                                  "items": [_queue_json(b) for b in board]})

    async def v1_agents(request: web.Request) -> web.Response:
        q = _Query(request, {"center", "state", "limit", "cursor"})
        state = q.choice("state", [str(s) for s in AgentState])
        center = q.text("center")
        limit = q.limit(AGENTS_LIMIT)
        after = q.cursor(1)
        service = need_queues()
        now = service.clock()
        chosen = sorted((a for a in service.agent_statuses()
                         if (state is None or a.state == state)
                         and (center is None or a.spec.center == center)
                         and (after is None or a.spec.id > after[0])),
                        key=lambda a: a.spec.id)
        page = chosen[:limit]
        return _page([_agent_json(a, now) for a in page],
                     [page[-1].spec.id] if len(chosen) > limit else None)

    def v1_action(name: str) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            return web.json_response(await act(request, name))
        return handle

    async def v1_reservations(request: web.Request) -> web.Response:
        q = _Query(request, {"status", "limit", "cursor"})
        status = q.choice("status", list(STATUSES))
        limit = q.limit(RESERVATIONS_LIMIT)
        after = q.cursor(2)
        found = await need_store().list_reservations(
            status, limit + 1, after=None if after is None else (_moment(after[0]), after[1]))
        page = found[:limit]
        last = page[-1] if len(found) > limit else None
        return _page([_reservation_json(r) for r in page],
                     None if last is None else [last.created_at.isoformat(), last.id])

    async def v1_cancel(request: web.Request) -> web.Response:
        reservation_id = request.match_info["reservation_id"]
        db = need_store()
        # Through the desk: stored as cancelled and withdrawn from the line at once (a call
        # back ringing is stopped).  Without callbacks on, nothing holds a place: the store.
        cancelled = await (desk.cancel(reservation_id) if desk is not None
                           else db.cancel_reservation(reservation_id))
        if not cancelled:
            found = await db.get_reservation(reservation_id)
            if found is None:
                raise _json_error(web.HTTPNotFound, f"no callback reservation {reservation_id!r}")
            raise _json_error(web.HTTPConflict, f"callback reservation {reservation_id} is "
                                                f"already {found.status}; only pending "
                                                f"reservations (or ones being dialled) can be "
                                                f"cancelled")
        log.info("callback.cancelled", reservation=reservation_id, by="admin api")
        found = await db.get_reservation(reservation_id)
        assert found is not None                 # cancelled just now; reservations are kept
        return web.json_response(_reservation_json(found))

    def dialler_or_404() -> Dialler:
        if wellness is None:
            raise _json_error(web.HTTPNotFound, "wellness calls are not on (wellness.campaigns)")
        return wellness

    async def v1_wellness(request: web.Request) -> web.Response:
        status = dialler_or_404().status()
        return web.json_response({"as_of": clock().isoformat(), **status})

    async def v1_wellness_run_now(request: web.Request) -> web.Response:
        dialler = dialler_or_404()
        body = await _json_object(request)
        number = body.get("number")
        if number is not None:
            if not isinstance(number, str):
                raise _bad("number must be a phone number as text")
            parsed = normalize(number, region)
            if not parsed.ok or parsed.e164 is None:
                raise _bad(f"number: {mask_number(number)!r} is not a phone number")
            person = await need_store().get_wellness_person(parsed.e164)
            if person is None:
                raise _json_error(web.HTTPNotFound, f"{mask_number(parsed.e164)} is on no wellness campaign")
            number = parsed.e164
        dialler.run_now(number)
        log.info("wellness.run_now", number=None if number is None else mask_number(number), by="admin api")
        return web.json_response({"looking": True, "number": None if number is None else mask_number(number)})

    async def v1_wellness_visits(request: web.Request) -> web.Response:
        q = _Query(request, {"campaign", "all", "limit"}, tz)
        everything = q.choice("all", ["true", "false"]) == "true"
        visits = await need_store().list_wellness_visits(open_only=not everything,
                                                         campaign=q.text("campaign"),
                                                         limit=q.limit(200))
        return web.json_response({"items": [_visit_json(v) for v in visits]})

    async def v1_openapi(request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    async def v1_docs(request: web.Request) -> web.Response:
        return web.Response(text=docs_page(), content_type="text/html", charset="utf-8")

    # -- the unversioned paths of before (deprecated) ---------------------------------------

    async def list_agents(request: web.Request) -> web.Response:
        service = need_queues()
        now = service.clock()
        return web.json_response([_agent_json(a, now) for a in service.agent_statuses()])

    def action(name: str) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            return web.json_response(await act(request, name))
        return handle

    async def snapshot(request: web.Request) -> web.Response:
        return web.json_response(need_queues().snapshot())

    def desk_or_404() -> Desk:
        if desk is None:
            raise _json_error(web.HTTPNotFound, "callbacks are not configured")
        return desk

    async def list_callbacks(request: web.Request) -> web.Response:
        status = request.query.get("status") or None
        try:
            found = await desk_or_404().reservations(status)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return web.json_response([{
            "id": r.id, "number": mask_number(r.number), "queue": r.queue, "status": r.status,
            "due_at": r.due_at.isoformat(), "attempts": r.attempts, "last_result": r.last_result,
            "waited": r.waited, "reason": r.reason} for r in found])

    async def cancel_callback(request: web.Request) -> web.Response:
        reservation_id = request.match_info["reservation_id"]
        if not await desk_or_404().cancel(reservation_id):
            raise _json_error(web.HTTPNotFound, "no open reservation with that id")
        log.info("callback.cancelled", reservation=reservation_id, by="admin api")
        return web.json_response({"cancelled": reservation_id})

    app = web.Application(middlewares=[_answers_json, auth])
    r = app.router
    r.add_get("/v1/calls", v1_calls)
    r.add_get("/v1/calls/{call_id}", v1_call)
    r.add_get("/v1/queues", v1_queues)
    r.add_get("/v1/agents", v1_agents)
    r.add_get("/v1/reservations", v1_reservations)
    r.add_post("/v1/reservations/{reservation_id}/cancel", v1_cancel)
    r.add_get("/v1/wellness", v1_wellness)
    r.add_post("/v1/wellness/run-now", v1_wellness_run_now)
    r.add_get("/v1/wellness/visits", v1_wellness_visits)
    r.add_get("/v1/openapi.json", v1_openapi)
    r.add_get("/v1/docs", v1_docs)
    r.add_get("/agents", list_agents)
    r.add_get("/queues", snapshot)
    r.add_get("/callbacks", list_callbacks)
    r.add_post("/callbacks/{reservation_id}/cancel", cancel_callback)
    for name in AGENT_ACTIONS:
        r.add_post(f"/v1/agents/{{agent_id}}/{name}", v1_action(name))
        r.add_post(f"/agents/{{agent_id}}/{name}", action(name))
    return app


# -- what the answers hold ------------------------------------------------------------------

def _agent_json(status: AgentStatus, now: float) -> dict[str, Any]:
    spec = status.spec
    return {
        "id": spec.id, "name": spec.name, "endpoint": spec.endpoint, "center": spec.center,
        "skills": sorted(spec.skills), "state": str(status.state),
        "for_seconds": None if status.since is None else round(max(0.0, now - status.since), 1),
        "reason": status.reason,
        "call": status.current_call, "handled": status.handled,
    }


def _call_json(r: CallRecord) -> dict[str, Any]:
    return {
        "id": r.call_id, "started_at": r.started_at.isoformat(),
        "ended_at": None if r.ended_at is None else r.ended_at.isoformat(),
        "caller": mask_number(r.caller) if r.caller else "",
        "number": None if r.number is None else mask_number(r.number),
        "dialled": r.dialled, "flow": r.flow, "flow_version": r.flow_version,
        "language": r.language, "priority": r.priority, "reason": r.reason,
        "outcome": None if r.outcome is None else str(r.outcome), "detail": r.detail,
        "queue": r.queue, "waited": r.waited, "channel": r.channel,
        "chat": [{"at": line.at.isoformat(), "sender": line.sender, "text": line.text}
                 for line in r.chat],
        "chat_dropped": r.chat_dropped,
    }


def _event_json(e: QueueEvent) -> dict[str, Any]:
    return {"at": e.at.isoformat(), "kind": e.kind, "agent": e.agent_id, "queue": e.queue,
            "detail": e.detail}


def _queue_json(b: QueueBoard) -> dict[str, Any]:
    return {"name": b.name, "waiting": b.waiting, "by_priority": dict(b.by_priority),
            "ringing": b.ringing, "oldest_wait": b.oldest_wait,
            "estimated_wait": b.estimated_wait, "staffed": b.staffed, "paused": b.paused,
            "available": b.available}


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _visit_json(v: Visit) -> dict[str, Any]:
    def iso(at: dt.datetime | None) -> str | None:
        return None if at is None else at.isoformat()
    return {"id": v.id, "number": mask_number(v.number), "campaign": v.campaign,
            "since": v.since.isoformat(), "open": v.open, "done_at": iso(v.done_at),
            "note": v.note, "cleared_at": iso(v.cleared_at),
            "history": [{"at": a.at.isoformat(), "result": str(a.result), "detail": a.detail}
                        for a in v.history]}


def _reservation_json(r: Reservation) -> dict[str, Any]:
    return {"id": r.id, "number": mask_number(r.number), "queue": r.queue,
            "status": r.status, "priority": r.priority, "reason": r.reason,
            "language": r.language, "waited": r.waited, "arrived_at": _iso(r.arrived_at),
            "created_at": _iso(r.created_at), "due_at": _iso(r.due_at),
            "slot_end": _iso(r.slot_end), "attempts": r.attempts,
            "last_attempt_at": _iso(r.last_attempt_at), "last_result": r.last_result,
            "claimed_by": r.claimed_by, "claim_until": _iso(r.claim_until),
            "call_id": r.call_id, "updated_at": _iso(r.updated_at)}


def _page(items: list[dict[str, Any]], last: list[str] | None) -> web.Response:
    return web.json_response({"items": items, "next": None if last is None else _cursor(last)})


def _cursor(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _moment(text: str) -> dt.datetime:
    """A moment kept in a cursor (written by ``_cursor`` from an aware datetime)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _bad("cursor: not one this API gave; start again without it") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


# -- query parameters -----------------------------------------------------------------------

class _Query:
    """The query parameters of a request, checked one by one: a clear 400 for each mistake."""

    def __init__(self, request: web.Request, known: set[str], tz: dt.tzinfo = dt.timezone.utc) -> None:
        self.params = request.query
        self.tz = tz
        unknown = sorted(set(self.params) - known)
        if unknown:
            allowed = ", ".join(sorted(known)) if known else "none"
            raise _bad(f"unknown query parameter {unknown[0]!r}; this path takes: {allowed}")
        for name in self.params:
            if len(self.params.getall(name)) > 1:
                raise _bad(f"{name} is given more than once")

    def text(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value else None

    def choice(self, name: str, valid: list[str]) -> str | None:
        value = self.text(name)
        if value is not None and value not in valid:
            raise _bad(f"{name} must be one of {', '.join(valid)}, not {value!r}")
        return value

    def moment(self, name: str) -> dt.datetime | None:
        """An ISO 8601 date or time; without an offset, in the center's time zone (a date alone:
        its midnight there)."""
        value = self.text(name)
        if value is None:
            return None
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _bad(f"{name}: {value!r} is not a date or time; give ISO 8601, e.g. "
                       f"2026-03-10 or 2026-03-10T09:00:00+09:00") from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=self.tz)

    def limit(self, default: int) -> int:
        value = self.text("limit")
        if value is None:
            return default
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
            raise _bad(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {value!r}")
        return int(value)

    def cursor(self, size: int) -> list[str] | None:
        value = self.text("cursor")
        if value is None:
            return None
        try:
            key = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
            key = None
        if not (isinstance(key, list) and len(key) == size and all(isinstance(k, str) for k in key)):
            raise _bad("cursor: not one this API gave; start again without it")
        return key


def _bad(message: str) -> web.HTTPException:
    return _json_error(web.HTTPBadRequest, message)


def _json_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")


@web.middleware
async def _answers_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is JSON: aiohttp's own (404 for an unknown path, 405, 413) too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return web.json_response({"error": (exc.reason or "error").lower()}, status=exc.status,
                                 headers=headers)
    except Exception:                   # a defect: logged with its traceback, answered as JSON
        log.exception("admin.request_failed", method=request.method, path=request.path)
        return web.json_response({"error": "internal error; the engine's log has the details"},
                                 status=500)


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request's body as a JSON object; no body is ``{}``; else 400."""
    data = await request.read()
    if not data.strip():
        return {}
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad('the body is not JSON; send an object such as {"reason": "lunch"}') from None
    if not isinstance(value, dict):
        raise _bad(f'the body must be a JSON object such as {{"reason": "lunch"}}, not a JSON '
                   f"{_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    return ("array" if isinstance(value, list) else "string" if isinstance(value, str)
            else "null" if value is None else "boolean" if isinstance(value, bool) else "number")


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if reason is None or reason == "":
        return "paused"
    if not isinstance(reason, str) or len(reason) > MAX_REASON \
            or any(ch < " " or ch == "\x7f" or "\ud800" <= ch <= "\udfff" for ch in reason):
        raise _bad(f'"reason" must be text on one line, at most {MAX_REASON} characters')
    return reason


class AdminServer:
    """``async with AdminServer(app, host, port):`` serves ``app`` meanwhile (port 0: any
    free port; ``port`` then says which)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._app = app
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> AdminServer:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses         # port 0 asks for any free port: which one
        if addresses:
            self.port = addresses[0][1]
        log.info("admin.listening", host=self.host, port=self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
