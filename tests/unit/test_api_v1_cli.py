"""'ivr agents' and 'ivr callbacks' through the operator API v1 (every page), against the real
API over HTTP: what a supervisor reads is the same as before."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ivr import cli
from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.acd.service import QueueService
from ivr.callbacks.model import Reservation
from ivr.prompts import load_catalogue
from ivr.store import open_store
from ivr.store.base import Store
from ivr.testing.fake_switch import FakeSwitch
from ivr.web.api import api_app

REPO = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-for-tests"
UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 10, 5, 0, tzinfo=UTC)          # 14:00 in Seoul


@pytest.fixture(autouse=True)
def no_environment(monkeypatch) -> None:
    for name in ("IVR_ADMIN_TOKEN", "IVR_ADMIN_LISTEN", "IVR_CONFIG", "IVR_STORE_URL"):
        monkeypatch.delenv(name, raising=False)


def write_config(tmp_path: Path, host: str, port: int, *, token: bool = True) -> Path:
    config = tmp_path / "ivr.yaml"
    admin = f"admin: {{listen: '{host}:{port}', token: {TOKEN}}}\n" if token else ""
    config.write_text(f"ari: {{username: ivr, password: x}}\n"
                      f"store: {{url: 'sqlite:///{tmp_path}/ivr.db'}}\n" + admin, encoding="utf-8")
    return config


@contextlib.asynccontextmanager
async def engine_api(tmp_path: Path, service: QueueService | None = None) -> AsyncIterator[tuple[Path, Store]]:
    """The API of a running engine on a free loopback port, over the SQLite store the
    config names; yields the config and the store."""
    async with open_store(f"sqlite:///{tmp_path}/ivr.db") as store:
        root = web.Application()
        root.add_subapp("/api", api_app(token=TOKEN, queues=service, store=store))
        runner = web.AppRunner(root)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            host, port = runner.addresses[0][:2]
            yield write_config(tmp_path, host, port), store
        finally:
            await runner.cleanup()


async def run(config: Path, *argv: str) -> int:
    return await asyncio.to_thread(cli.main, ["--config", str(config), *argv])


async def book(store: Store, count: int) -> list[Reservation]:
    out = []
    for n in range(count):
        at = T0 + dt.timedelta(minutes=n)
        out.append(await store.put_reservation(Reservation.new(
            f"+8210{5000_0000 + n}", "general", language="ko", arrived_at=at - dt.timedelta(seconds=75),
            now=at, waited=75, due_at=at + dt.timedelta(hours=1))))
    return out


async def test_agents_list_reads_every_page(tmp_path, capsys):
    specs = {"general": QueueSpec(name="general")}
    agents = [AgentSpec(id=f"ag{n:04d}", name=f"Agent {n}", endpoint=f"PJSIP/ag{n:04d}",
                        center=("seoul", "busan")[n % 2]) for n in range(1562)]
    service = QueueService(Acd(specs, agents), specs, FakeSwitch({}),
                           load_catalogue(REPO / "prompts" / "catalog.yaml"), clock=lambda: 500.0)
    service.acd.login("ag0007", 470.0)
    async with engine_api(tmp_path, service) as (config, _):
        assert await run(config, "agents", "list") == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split()[:4] == ["agent", "name", "center", "state"]
        assert [line.split()[0] for line in lines[1:]] == [a.id for a in agents]
        assert "available" in lines[8] and "30s" in lines[8] and "busan" in lines[8]
        assert await run(config, "agents", "list", "--json") == 0
        assert len(json.loads(capsys.readouterr().out)) == 1562
        assert await run(config, "agents", "pause", "ag0007", "--reason", "lunch") == 0
        assert "lunch" in capsys.readouterr().out
        assert await run(config, "agents", "login", "nobody") == 1
        assert "no agent 'nobody'" in capsys.readouterr().err


async def test_callbacks_list_through_the_api_is_what_the_store_path_prints(tmp_path, capsys):
    async with engine_api(tmp_path) as (config, store):
        booked = await book(store, 260)
        await store.cancel_reservation(booked[3].id)
        for argv in (["callbacks", "list"], ["callbacks", "list", "--json"],
                     ["callbacks", "list", "--limit", "230"], ["callbacks", "list", "--status", "cancelled"],
                     ["callbacks", "list", "--status", "failed"]):
            assert await run(config, *argv) == 0
            through_api = capsys.readouterr()
            assert await run(write_config(tmp_path, "127.0.0.1", 9, token=False), *argv) == 0
            from_store = capsys.readouterr()
            assert through_api.out == from_store.out, argv
            assert through_api.err == "", through_api.err
        assert await run(config, "callbacks", "list", "--limit", "230") == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1 + 230 and lines[1].split()[0] == booked[-1].id
        assert "+821*****0259" in lines[1] and "2025-03-10 19:19" in lines[1] and "1m15s" in lines[1]


async def test_callbacks_cancel_through_the_api(tmp_path, capsys):
    async with engine_api(tmp_path) as (config, store):
        (r,) = await book(store, 1)
        assert await run(config, "callbacks", "cancel", r.id) == 0
        # (the engine's own log line goes to this test's output too)
        assert (f"cancelled callback reservation {r.id} (+821*****0000, queue general)"
                in capsys.readouterr().out.splitlines())
        assert (await store.get_reservation(r.id)).status == "cancelled"
        assert await run(config, "callbacks", "cancel", r.id) == 1
        assert "is already cancelled; only pending reservations" in capsys.readouterr().err
        assert await run(config, "callbacks", "cancel", "0123abcd") == 1
        assert "no callback reservation '0123abcd'" in capsys.readouterr().err


async def test_with_the_engine_down_callbacks_read_the_store_and_say_so(tmp_path, capsys):
    with socket.socket() as s:                        # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = write_config(tmp_path, "127.0.0.1", port)
    async with open_store(f"sqlite:///{tmp_path}/ivr.db") as store:
        (r,) = await book(store, 1)
    assert await run(config, "callbacks", "list") == 0
    got = capsys.readouterr()
    assert r.id in got.out and "does not answer" in got.err and "reading the store" in got.err
    assert await run(config, "agents", "list") == 2
    assert "is 'ivr run' running?" in capsys.readouterr().err
