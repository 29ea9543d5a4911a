"""The operator API's unversioned paths of before (deprecated, still answering for old
scripts): bearer token, agents' states, callbacks — over real HTTP, mounted at /api."""

from __future__ import annotations

import datetime as dt
import types
from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.acd.service import QueueService
from ivr.callbacks.desk import CallbackDesk
from ivr.callbacks.model import Reservation
from ivr.prompts import load_catalogue
from ivr.testing.fake_switch import FakeSwitch
from ivr.testing.memory_store import MemoryStore
from ivr.web.api import api_app

REPO = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_service() -> QueueService:
    specs = {"general": QueueSpec(name="general")}
    acd = Acd(specs, [AgentSpec(id="agent1", name="Kim", endpoint="PJSIP/agent1")])
    return QueueService(acd, specs, FakeSwitch({}), load_catalogue(REPO / "prompts" / "catalog.yaml"))


async def client_for(service, desk=None) -> TestClient:
    root = web.Application()
    root.add_subapp("/api", api_app(token=TOKEN, queues=service, desk=desk,
                                    store=None if desk is None else desk.store))
    client = TestClient(TestServer(root))
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

    desk = CallbackDesk(types.SimpleNamespace(owner="test"), store, service, service,
                        service.switch, service.catalogue)
    now = dt.datetime.now(dt.timezone.utc)
    r = await store.put_reservation(Reservation.new("+821012345678", "general", language="ko",
                                                    arrived_at=now, now=now))
    client = await client_for(service, desk)
    try:
        (listed,) = await (await client.get("/api/callbacks?status=pending", headers=AUTH)).json()
        assert listed["id"] == r.id and "12345678" not in listed["number"]
        assert (await client.post(f"/api/callbacks/{r.id}/cancel", headers=AUTH)).status == 200
        assert (await client.post(f"/api/callbacks/{r.id}/cancel", headers=AUTH)).status == 404
        assert (await store.get_reservation(r.id)).status == "cancelled"
    finally:
        await client.close()


async def raw_request(client: TestClient, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (a client library would refuse some of them); answer status, body."""
    import asyncio

    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(head + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def json_object(body: bytes) -> dict:
    import json

    value = json.loads(body)
    assert isinstance(value, dict), value
    return value


async def test_a_token_that_is_not_ascii_is_refused_not_a_crash():
    client = await client_for(make_service())
    try:
        for token in ("Bearer 토큰".encode(), b"Bearer \xff\xfe", "Bearer t0ken-for-testsé".encode("latin-1")):
            status, body = await raw_request(client, b"GET /api/agents HTTP/1.1\r\nHost: x\r\n"
                                                     b"Authorization: " + token + b"\r\n")
            assert status == 401 and "token" in json_object(body)["error"]
    finally:
        await client.close()


async def test_a_pause_body_that_is_not_a_json_object_is_a_bad_request():
    client = await client_for(make_service())
    try:
        await client.post("/api/agents/agent1/login", headers=AUTH)
        for body in (b"[1, 2]", b"5", b"null", b'"lunch"', b"{not json", b"\xff\xfe", b'{"reason": [1]}'):
            resp = await client.post("/api/agents/agent1/pause", headers=AUTH, data=body)
            assert resp.status == 400, (body, resp.status)
            assert "error" in json_object(await resp.read())
        assert (await (await client.get("/api/agents", headers=AUTH)).json())[0]["state"] == "available"
        resp = await client.post("/api/agents/agent1/pause", headers=AUTH, data=b"")
        assert resp.status == 200 and (await resp.json())["reason"] == "paused"
    finally:
        await client.close()


async def test_an_id_cannot_inject_keys_into_an_error():
    client = await client_for(make_service())
    try:
        tricky = 'x", "a": "'
        resp = await client.post(f"/api/agents/{quote(tricky)}/login", headers=AUTH)
        assert resp.status == 404
        assert json_object(await resp.read()) == {"error": f"no agent {tricky!r}"}
        for path in ("/api/callbacks", f"/api/callbacks/{quote(tricky)}/cancel"):   # not configured
            resp = await (client.get(path, headers=AUTH) if path == "/api/callbacks"
                          else client.post(path, headers=AUTH))
            assert resp.status == 404 and list(json_object(await resp.read())) == ["error"]
    finally:
        await client.close()


async def test_an_agent_never_logged_in_has_no_time_in_its_state():
    client = await client_for(make_service())
    try:
        resp = await client.get("/api/agents", headers=AUTH)
        assert resp.status == 200
        (agent,) = await resp.json()
        assert agent["state"] == "offline"
        assert agent["for_seconds"] is None or agent["for_seconds"] >= 0
    finally:
        await client.close()


async def test_every_answer_is_a_json_object_even_for_unknown_paths_and_methods():
    client = await client_for(make_service())
    try:
        for method, path, status in (("GET", "/api/nowhere", 404), ("GET", "/api/v1/nowhere", 404),
                                     ("DELETE", "/api/agents", 405), ("DELETE", "/api/v1/agents", 405),
                                     ("GET", "/api/agents/agent1/login", 405)):
            resp = await client.request(method, path, headers=AUTH)
            assert resp.status == status
            assert resp.content_type == "application/json"
            assert "error" in json_object(await resp.read())
    finally:
        await client.close()
