"""Shared set-up for the ARI adapter tests: a fake Asterisk and an adapter connected to it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ivr.ari import AriAdapter, AriCall, Timeouts
from ivr.testing.fake_ari import FakeAri, RecordedRequest

FAST = Timeouts(request=2.0, connect=1.0, ws_heartbeat=2.0, ws_close=0.5,
                reconnect_min=0.02, reconnect_max=0.1, shutdown_grace=0.5)

Flow = Callable[[AriCall, list[str]], Awaitable[Any]]


@dataclasses.dataclass
class Started:
    call: AriCall
    args: list[str]
    adopted: bool
    done: asyncio.Future[Any]      # the flow's result, or its exception


@dataclasses.dataclass
class Harness:
    fake: FakeAri
    adapter: AriAdapter
    started: asyncio.Queue[Started]

    async def next_call(self, timeout: float = 2.0) -> Started:
        async with asyncio.timeout(timeout):
            return await self.started.get()

    async def call_in(self, caller: str = "01012345678", exten: str = "15771000",
                      **kwargs: Any) -> Started:
        await self.fake.start_call(caller, exten, **kwargs)
        return await self.next_call()

    async def request(self, match: Callable[[RecordedRequest], bool],
                      timeout: float = 2.0, since: int = 0) -> RecordedRequest:
        return await self.fake.wait_for_request(match, timeout=timeout, since=since)

    async def answered(self, channel_id: str, timeout: float = 2.0) -> RecordedRequest:
        """The engine's answer to a channel, as it reached Asterisk (waits for it)."""
        path = f"/channels/{channel_id}/answer"
        return await self.request(lambda r: r.method == "POST" and r.path == path,
                                  timeout=timeout)


async def outcome(started: Started, timeout: float = 2.0) -> Any:
    """The flow's result; re-raises what the flow raised."""
    async with asyncio.timeout(timeout):
        return await asyncio.shield(started.done)


@contextlib.asynccontextmanager
async def harness(flow: Flow, *, timeouts: Timeouts = FAST, connect: bool = True,
                  requests: str = "http", **fake_options: Any) -> AsyncIterator[Harness]:
    """A fake Asterisk, and an adapter whose calls run ``flow(call, args)``."""
    started: asyncio.Queue[Started] = asyncio.Queue()

    async def on_new_call(call: AriCall, args: list[str], *, adopted: bool) -> None:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.add_done_callback(lambda f: f.cancelled() or f.exception())  # read: no warning
        started.put_nowait(Started(call, args, adopted, done))
        try:
            result = await flow(call, args)
        except BaseException as exc:
            done.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            raise
        done.set_result(result)

    async with FakeAri(**fake_options) as fake:
        async with AriAdapter(fake.base_url, fake.username, fake.password, fake.app,
                              on_new_call, timeouts=timeouts, requests=requests) as adapter:
            if connect:
                await adapter.wait_ready(2.0)
            yield Harness(fake, adapter, started)


def is_play(r: RecordedRequest) -> bool:
    return r.method == "POST" and "/play/" in r.path
