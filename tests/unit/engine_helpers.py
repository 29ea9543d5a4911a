"""The real engine (``ivr.app.serve``) in the test's event loop, for tests over the fake ARI:
its config file, running it, and the calls it recorded."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from ivr.app import serve
from ivr.call import CallRecord
from ivr.config import Config, load_config
from ivr.store import open_store
from ivr.testing.fake_ari import FakeAri

REPO = Path(__file__).resolve().parents[2]

# Number 100 puts the caller straight in the queue ``general``.
QUEUE_FLOW = """\
flow: straight
numbers: ["100"]
entry: to_agents
nodes:
  to_agents:
    queue: general
"""


def write_engine_config(tmp_path: Path, fake: FakeAri, *, flow: str | None = None,
                        engine: str = "shutdown_grace: 1, reload_interval: 0", extra: str = "") -> Path:
    """``tmp_path/ivr.yaml``: the engine on ``fake``, the repository's prompts, a SQLite store in
    ``tmp_path``, these ``engine`` settings, then the ``extra`` YAML (``acd:``, ``admin:`` …).

    The flows are ``tmp_path/flows``: one file, ``straight.yaml``, holding ``flow``; with no
    ``flow``, a copy of the repository's flows (made the first time only)."""
    flows = tmp_path / "flows"
    if flow is not None:
        flows.mkdir(exist_ok=True)
        (flows / "straight.yaml").write_text(flow, encoding="utf-8")
    elif not flows.exists():
        shutil.copytree(REPO / "flows", flows)
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(
        f"ari: {{url: '{fake.base_url}', username: {fake.username}, password: {fake.password}}}\n"
        f"flows: flows\nprompts: {REPO / 'prompts'}\n"
        "store: {url: 'sqlite:///ivr.db'}\n"
        f"engine: {{{engine}}}\n" + extra, encoding="utf-8")
    return cfg


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


@contextlib.asynccontextmanager
async def serving_file(path: Path) -> AsyncIterator[Config]:
    """The engine of the config file ``path`` (read without the environment) until the block ends."""
    config = load_config(path, env={})
    async with serving(config):
        yield config


async def recorded_calls(config: Config) -> list[CallRecord]:
    """The most recent calls in the config's store (up to 50), newest first."""
    async with open_store(config.store_url) as store:
        return await store.recent_calls()
