"""The real engine (``ivr.app.serve``) in the test's event loop, for tests over the fake ARI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ivr.app import serve
from ivr.config import Config


@contextlib.asynccontextmanager
async def serving(config: Config, *, start_timeout: float = 5, stop_timeout: float = 10) -> AsyncIterator[None]:
    """Run the engine until the block ends; a start-up failure is raised at once."""
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(config, ready=ready, stop=stop))
    waiter = asyncio.create_task(ready.wait())
    try:
        async with asyncio.timeout(start_timeout):
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        task.result()
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(stop_timeout):
            await task
