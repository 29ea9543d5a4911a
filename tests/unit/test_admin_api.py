"""The operator API: bearer token, agents' states, callbacks — over real HTTP."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.acd.service import QueueService
from ivr.callbacks.model import Reservation
from ivr.prompts import load_catalogue
from ivr.testing.fake_switch import FakeSwitch
from ivr.testing.memory_store import MemoryStore
from ivr.web.api import admin_app

REPO = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_service() -> QueueService:
    specs = {"general": QueueSpec(name="general")}
    acd = Acd(specs, [AgentSpec(id="agent1", name="Kim", endpoint="PJSIP/agent1")])
    return QueueService(acd, specs, FakeSwitch({}), load_catalogue(REPO / "prompts" / "catalog.yaml"))


async def client_for(service) -> TestClient:
    client = TestClient(TestServer(admin_app(service, TOKEN)))
    await client.start_server()
    return client


async def test_without_the_token_nothing_is_answered():
    client = await client_for(make_service())
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            resp = await client.get("/api/agents", headers=headers)
            assert resp.status == 401
        resp = await client.post("/api/agents/agent1/login", headers={"Authorization": "Bearer x"})
        assert resp.status == 401
    finally:
        await client.close()


async def test_a_supervisor_logs_an_agent_in_pauses_and_resumes_them():
    service = make_service()
    client = await client_for(service)
    try:
        assert (await (await client.get("/api/agents", headers=AUTH)).json())[0]["state"] == "offline"
        assert (await (await client.post("/api/agents/agent1/login", headers=AUTH)).json())["state"] == "available"
        resp = await client.post("/api/agents/agent1/pause", headers=AUTH, json={"reason": "lunch"})
        body = await resp.json()
        assert (body["state"], body["reason"]) == ("paused", "lunch")
        assert (await (await client.post("/api/agents/agent1/resume", headers=AUTH)).json())["state"] == "available"
        assert (await client.post("/api/agents/nobody/login", headers=AUTH)).status == 404
        service.acd.enqueue("c1", "general", None, service.clock())
        service.acd.offers(service.clock())                       # agent1 rings
        resp = await client.post("/api/agents/agent1/logout", headers=AUTH)
        assert resp.status == 409 and "call" in (await resp.json())["error"]
    finally:
        await client.close()


async def test_callbacks_are_listed_masked_and_can_be_cancelled():
    service = make_service()
    store = MemoryStore()

    class Desk:
        pass

    desk = Desk()
    desk.store = store
    service.callbacks = desk
    now = dt.datetime.now(dt.timezone.utc)
    r = await store.put_reservation(Reservation.new("+821012345678", "general", language="ko",
                                                    arrived_at=now, now=now))
    client = await client_for(service)
    try:
        (listed,) = await (await client.get("/api/callbacks?status=pending", headers=AUTH)).json()
        assert listed["id"] == r.id and "12345678" not in listed["number"]
        assert (await client.post(f"/api/callbacks/{r.id}/cancel", headers=AUTH)).status == 200
        assert (await client.post(f"/api/callbacks/{r.id}/cancel", headers=AUTH)).status == 404
        assert (await store.get_reservation(r.id)).status == "cancelled"
    finally:
        await client.close()
