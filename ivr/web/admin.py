"""The admin listener's application: the API, ``/metrics`` and the wallboard on one port.

    /api/…         the operator API (``ivr.web.api.api_app``; its own bearer-token check)
    /metrics       Prometheus metrics (``ivr.web.metrics``); the same bearer token as the API
    /wallboard/    the supervisors' wallboard (``ivr.web.wallboard``; users and sessions)
    /video/        the sign-language video entrance (``ivr.web.video``; ``video.enabled``)
    /              redirects to /wallboard/ (when the wallboard is on)

Each part is on when what it needs is there: the API and ``/metrics`` need ``admin.token``,
the wallboard needs ``admin.users_file`` and the queues' live figures.  What is off is said
once in the log at start (``admin.off``, ``wallboard.off``) with the setting that turns it on.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

log = structlog.get_logger("ivr.web.admin")

__all__ = ["admin_app", "bearer_only"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer_only(token: str, handler: Handler) -> Handler:
    """``handler`` behind ``Authorization: Bearer <token>`` (401 otherwise, compared in
    constant time as bytes)."""
    expected = f"Bearer {token}".encode()

    async def guarded(request: web.Request) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)
    return guarded


def admin_app(*, api: web.Application | None = None, metrics: Handler | None = None,
              token: str | None = None, wallboard: web.Application | None = None,
              video: web.Application | None = None) -> web.Application:
    """The root application of the admin listener from the parts that are on.  ``metrics`` is
    served only with a ``token``."""
    app = web.Application()
    if api is not None:
        app.add_subapp("/api", api)
    if metrics is not None and token:
        app.router.add_get("/metrics", bearer_only(token, metrics))
    if wallboard is not None:
        async def to_wallboard(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound("/wallboard/")

        app.router.add_get("/", to_wallboard)
        app.router.add_get("/wallboard", to_wallboard)
        app.add_subapp("/wallboard", wallboard)
    if video is not None:
        async def to_video(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound("/video/")

        app.router.add_get("/video", to_video)
        app.add_subapp("/video", video)
    return app
