"""``GET /metrics``: the engine's metrics in Prometheus' text format (``ivr.stats.metrics``).

The handler only: the admin listener mounts it behind its bearer token, so a scraper sends
``Authorization: Bearer <admin token>`` (Prometheus: ``authorization: {credentials_file: …}``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ivr.stats.metrics import CONTENT_TYPE, Metrics

__all__ = ["metrics_handler"]


def metrics_handler(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler answering every metric of ``metrics`` as of the request."""
    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=metrics.text(), headers={"Content-Type": CONTENT_TYPE})
    return handle
