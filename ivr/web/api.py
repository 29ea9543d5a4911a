"""The operator API: agents and queues of the running engine, over HTTP on loopback.

Every request needs ``Authorization: Bearer <admin token>`` (``admin.token`` /
``admin.token_file`` / ``IVR_ADMIN_TOKEN``); without a configured token the API does not start.

    GET  /api/agents                      every agent: state, since, reason, current call
    POST /api/agents/{id}/login
    POST /api/agents/{id}/logout          409 while the agent is on a call or ringing
    POST /api/agents/{id}/pause           body {"reason": "lunch"} (optional)
    POST /api/agents/{id}/resume
    GET  /api/queues                      waiting callers, oldest wait, agents staffed per queue
    GET  /api/callbacks[?status=pending]  reservations (numbers masked)
    POST /api/callbacks/{id}/cancel       404 unless the reservation is still open

Every answer is a JSON object (a list for the listings) built by ``json_response``, errors as
``{"error": "…"}``: 401 without the right token (compared in constant time, as bytes, whatever
characters the header holds), 400 for a body that is not a JSON object or a field of the wrong
kind, 404 for an unknown agent, reservation or path, 405 for a wrong method, 409 for an action
the agent's state does not allow.  An unexpected failure is logged and answered 500 as JSON.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from ivr.logs import mask_number

log = structlog.get_logger(__name__)

__all__ = ["admin_app", "AdminServer"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _agent_json(status: Any, now: float) -> dict[str, Any]:
    spec = status.spec
    return {
        "id": spec.id, "name": spec.name, "endpoint": spec.endpoint, "center": spec.center,
        "skills": sorted(spec.skills), "state": str(status.state),
        "for_seconds": None if status.since is None else round(max(0.0, now - status.since), 1),
        "reason": status.reason,
        "call": status.current_call, "handled": status.handled,
    }


def admin_app(service: Any, token: str, desk: Any = None) -> web.Application:
    """``service``: the running ``QueueService`` (its ``acd`` and ``clock``)."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Header bytes that are not UTF-8 arrive as surrogates: back to the same bytes.
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        return await handler(request)

    acd = service.acd

    def agent_or_404(request: web.Request) -> str:
        agent_id = request.match_info["agent_id"]
        try:
            acd.agent(agent_id)
        except KeyError:
            raise _json_error(web.HTTPNotFound, f"no agent {agent_id!r}") from None
        return agent_id

    async def list_agents(request: web.Request) -> web.Response:
        now = service.clock()
        return web.json_response([_agent_json(a, now) for a in acd.agents()])

    def action(name: str) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            agent_id = agent_or_404(request)
            now = service.clock()
            try:
                if name == "pause":
                    acd.pause(agent_id, _reason(await _json_object(request)), now)
                else:
                    getattr(acd, name)(agent_id, now)
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=409)
            log.info("agent." + name, agent=agent_id, by="admin api")
            service.tick()                      # a freed agent takes a waiting caller at once
            return web.json_response(_agent_json(acd.agent(agent_id), service.clock()))
        return handle

    async def queues(request: web.Request) -> web.Response:
        return web.json_response(service.snapshot())

    def desk_or_404():
        if desk is None:
            raise web.HTTPNotFound(text='{"error": "callbacks are not configured"}',
                                   content_type="application/json")
        return desk

    async def list_callbacks(request: web.Request) -> web.Response:
        desk = desk_or_404()
        status = request.query.get("status") or None
        try:
            found = await desk.reservations(status)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response([{
            "id": r.id, "number": mask_number(r.number), "queue": r.queue, "status": r.status,
            "due_at": r.due_at.isoformat(), "attempts": r.attempts, "last_result": r.last_result,
            "waited": r.waited, "reason": r.reason} for r in found])

    async def cancel_callback(request: web.Request) -> web.Response:
        desk = desk_or_404()
        # Stored as cancelled and withdrawn from the line at once (a call back ringing is stopped).
        if not await desk.cancel(request.match_info["reservation_id"]):
            return web.json_response({"error": "no open reservation with that id"}, status=404)
        log.info("callback.cancelled", reservation=request.match_info["reservation_id"], by="admin api")
        return web.json_response({"cancelled": request.match_info["reservation_id"]})

    app = web.Application(middlewares=[_answers_json, auth])
    app.router.add_get("/api/callbacks", list_callbacks)
    app.router.add_post("/api/callbacks/{reservation_id}/cancel", cancel_callback)
    app.router.add_get("/api/agents", list_agents)
    for name in ("login", "logout", "pause", "resume"):
        app.router.add_post(f"/api/agents/{{agent_id}}/{name}", action(name))
    app.router.add_get("/api/queues", queues)
    return app


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
        raise _json_error(web.HTTPBadRequest, 'the body is not JSON; send an object such as '
                                              '{"reason": "lunch"}') from None
    if not isinstance(value, dict):
        raise _json_error(web.HTTPBadRequest, f"the body must be a JSON object such as "
                                              f'{{"reason": "lunch"}}, not a JSON {_json_kind(value)}')
    return value


def _json_kind(value: Any) -> str:
    return ("array" if isinstance(value, list) else "string" if isinstance(value, str)
            else "null" if value is None else "boolean" if isinstance(value, bool) else "number")


MAX_REASON = 200


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if reason is None or reason == "":
        return "paused"
    if not isinstance(reason, str) or len(reason) > MAX_REASON \
            or any(ch < " " or ch == "\x7f" or "\ud800" <= ch <= "\udfff" for ch in reason):
        raise _json_error(web.HTTPBadRequest, f'"reason" must be text on one line, at most '
                                              f"{MAX_REASON} characters")
    return reason


class AdminServer:
    """``async with AdminServer(service, host, port, token):`` serves the API meanwhile."""

    def __init__(self, service: Any, host: str, port: int, token: str, *, desk: Any = None) -> None:
        self._app = admin_app(service, token, desk=desk)
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
