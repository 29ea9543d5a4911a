"""The operator API v1 over real HTTP, mounted at /api as on the admin listener; every answer
is checked against its schema in the API's own OpenAPI document."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from zoneinfo import ZoneInfo
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate as validate_spec

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.acd.service import QueueService
from ivr.call import CallRecord, NodeExit, Outcome
from ivr.callbacks.model import Reservation
from ivr.prompts import load_catalogue
from ivr.store import open_store
from ivr.store.base import QueueEvent, Store
from ivr.testing.fake_switch import FakeSwitch
from ivr.testing.memory_store import MemoryStore
from ivr.web.api import api_app
from ivr.web.openapi import MAX_LIMIT, openapi_document

REPO = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 10, 0, 0, tzinfo=UTC)          # 09:00 in Seoul
DOC = openapi_document()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_service(agents: list[AgentSpec] | None = None, clock: Clock | None = None) -> QueueService:
    specs = {"general": QueueSpec(name="general"), "sales": QueueSpec(name="sales", skills=frozenset({"sales"}))}
    acd = Acd(specs, agents or [AgentSpec(id="agent1", name="Kim", endpoint="PJSIP/agent1")],
              priorities=("emergency", "elderly", "normal"))
    return QueueService(acd, specs, FakeSwitch({}), load_catalogue(REPO / "prompts" / "catalog.yaml"),
                        clock=clock or Clock(1000.0))


class Api:
    """A client of the API mounted at /api; every answer validated against the document."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, *, status: int = 200, **kw: Any) -> Any:
        resp = await self.client.request(method, "/api" + path, headers=AUTH, **kw)
        body = await (resp.json() if resp.content_type == "application/json" else resp.text())
        assert resp.status == status, (path, resp.status, body)
        check(method, path, resp.status, resp.content_type, body)
        return body

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Any:
        return await self.call("POST", path, **kw)

    async def all_pages(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        joiner = "&" if "?" in path else "?"
        while True:
            page = await self.get(path if cursor is None else f"{path}{joiner}cursor={cursor}")
            items += page["items"]
            cursor = page["next"]
            if cursor is None:
                return items


def operation(method: str, path: str) -> dict[str, Any]:
    """The document's operation for a concrete request path (templates matched)."""
    bare = "/" + path.split("?", 1)[0].lstrip("/")
    for template, ops in DOC["paths"].items():
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, bare) and method.lower() in ops:
            return ops[method.lower()]
    raise AssertionError(f"{method} {bare} is not in the OpenAPI document")


def check(method: str, path: str, status: int, content_type: str, body: Any) -> None:
    answer = operation(method, path)["responses"].get(str(status))
    assert answer is not None, f"{method} {path}: {status} is not documented"
    if "$ref" in answer:
        answer = DOC["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    schema = answer["content"][content_type]["schema"]
    # The whole document as the root, so that its "#/components/..." references resolve.
    jsonschema.Draft202012Validator({**DOC, **schema},
                                    format_checker=jsonschema.FormatChecker()).validate(body)


async def started(*, queues: QueueService | None = None, store: Store | None = None,
                  desk: Any = None, wellness: Any = None) -> Api:
    root = web.Application()
    root.add_subapp("/api", api_app(token=TOKEN, queues=queues, desk=desk, store=store, region="KR",
                                    tz=ZoneInfo("Asia/Seoul"), clock=lambda: T0, wellness=wellness))
    client = TestClient(TestServer(root))
    await client.start_server()
    return Api(client)


def a_call(n: int, *, minutes: float | None = None, number: str | None = "+821012345678",
           outcome: Outcome = Outcome.COMPLETED, flow: str = "main") -> CallRecord:
    start = T0 + dt.timedelta(minutes=n if minutes is None else minutes)
    return CallRecord(call_id=f"call-{n:05d}", caller=number or "", dialled="1588", started_at=start,
                      ended_at=start + dt.timedelta(seconds=70), flow=flow, nodes=["welcome", "menu"],
                      exits=[str(NodeExit.NEXT), str(NodeExit.KEY)], digits=["1"], outcome=outcome,
                      number=number)


# -- the document ---------------------------------------------------------------------------

def test_the_document_is_valid_openapi_3_1_and_names_every_route():
    validate_spec(DOC)
    assert DOC["openapi"] == "3.1.0"
    app = api_app(token=TOKEN)
    routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    documented = {(m, p) for p, ops in DOC["paths"].items() for m in ops}
    assert routes == documented


async def test_docs_page_lists_every_operation_and_fetches_nothing():
    api = await started()
    try:
        page = await api.get("/v1/docs")
        for path, ops in DOC["paths"].items():
            for method in ops:
                assert f"<b>{method.upper()}</b></td><td><code>/api{path}</code>" in page
        assert "<script" not in page and "http://" not in page and "https://" not in page
        assert await api.get("/v1/openapi.json") == DOC
    finally:
        await api.client.close()


async def test_without_the_token_v1_answers_401_and_outside_api_the_token_does_not_apply():
    root = web.Application()
    async def elsewhere(request: web.Request) -> web.Response:
        return web.Response(text="open")

    root.router.add_get("/elsewhere", elsewhere)
    root.add_subapp("/api", api_app(token=TOKEN, store=MemoryStore()))
    client = TestClient(TestServer(root))
    await client.start_server()
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            resp = await client.get("/api/v1/calls", headers=headers)
            assert resp.status == 401
            check("GET", "/v1/calls", 401, resp.content_type, await resp.json())
        assert (await (await client.get("/elsewhere")).text()) == "open"
    finally:
        await client.close()


# -- calls ----------------------------------------------------------------------------------

async def test_calls_newest_first_masked_and_filtered():
    store = MemoryStore()
    await store.record_call(a_call(1, number="+821012345678"))
    await store.record_call(a_call(2, number="+821099998888", outcome=Outcome.ABANDONED))
    await store.record_call(a_call(3, number=None, flow="sales"))
    api = await started(store=store)
    try:
        page = await api.get("/v1/calls")
        assert [c["id"] for c in page["items"]] == ["call-00003", "call-00002", "call-00001"]
        assert page["next"] is None
        assert all("12345678" not in str(c) and "99998888" not in str(c) for c in page["items"])
        assert page["items"][0]["number"] is None and page["items"][0]["caller"] == ""
        assert [c["id"] for c in (await api.get("/v1/calls?outcome=abandoned"))["items"]] == ["call-00002"]
        assert [c["id"] for c in (await api.get("/v1/calls?flow=sales"))["items"]] == ["call-00003"]
        # since inclusive, until exclusive; a time with an offset (09:02 in Seoul is 00:02 UTC)
        found = await api.get("/v1/calls?since=2026-03-10T09:02%2B09:00&until=2026-03-10T00:03:00Z")
        assert [c["id"] for c in found["items"]] == ["call-00002"]
        # without an offset: the center's time (callers.timezone), as ivr report and ivr export read it
        found = await api.get("/v1/calls?since=2026-03-10T09:02&until=2026-03-10T09:03")
        assert [c["id"] for c in found["items"]] == ["call-00002"]
        assert (await api.get("/v1/calls?since=2026-03-11"))["items"] == []    # Seoul's 11 March
    finally:
        await api.client.close()


@pytest.mark.parametrize("spelling", ["010-1234-5678", "01012345678", "+82 10 1234 5678",
                                      "+82-10-1234-5678", "82-10-1234-5678", "(010) 1234.5678"])
async def test_a_number_in_any_spelling_finds_the_callers_calls(spelling):
    store = MemoryStore()
    await store.record_call(a_call(1, number="+821012345678"))
    await store.record_call(a_call(2, number="+821099998888"))
    api = await started(store=store)
    try:
        found = await api.get("/v1/calls", params={"number": spelling})
        assert [c["id"] for c in found["items"]] == ["call-00001"]
    finally:
        await api.client.close()


async def test_pages_are_stable_while_calls_arrive():
    """120 calls read 25 at a time while a new call arrives before every page (and one of
    the same instant as a page's last call, sorting before it): every old call once, in
    order, no new one past the first page."""
    url = "sqlite:///:memory:"
    async with open_store(url) as store:
        old = [a_call(n) for n in range(120)]
        for r in old:
            await store.record_call(r)
        api = await started(store=store)
        try:
            seen: list[str] = []
            cursor = None
            arriving = 1000
            while True:
                await store.record_call(a_call(arriving, minutes=500 + arriving))
                arriving += 1
                page = await api.get("/v1/calls?limit=25" + (f"&cursor={cursor}" if cursor else ""))
                assert len(page["items"]) <= 25
                seen += [c["id"] for c in page["items"]]
                cursor = page["next"]
                if cursor is None:
                    break
                if len(seen) == 50:           # the page ended at call-00071: one of the same
                    assert seen[-1] == "call-00071"           # instant that sorts before it
                    await store.record_call(dataclasses.replace(a_call(71), call_id="call-00071z"))
            first = seen[0]                   # the first page began with the then newest call
            assert first == "call-01000"
            assert seen[1:] == [r.call_id for r in reversed(old)]
        finally:
            await api.client.close()


async def test_every_page_of_a_filter_only_holds_matches_and_the_last_says_so():
    store = MemoryStore()
    for n in range(30):
        await store.record_call(a_call(n, outcome=Outcome.ABANDONED if n % 3 == 0 else Outcome.COMPLETED))
    api = await started(store=store)
    try:
        got = await api.all_pages("/v1/calls?outcome=abandoned&limit=4")
        assert [c["id"] for c in got] == [f"call-{n:05d}" for n in range(27, -1, -3)]
        exact = await api.get("/v1/calls?outcome=abandoned&limit=10")
        assert len(exact["items"]) == 10 and exact["next"] is None     # a full last page: no next
    finally:
        await api.client.close()


@pytest.mark.parametrize(("query", "says"), [
    ("since=yesterday", "since: 'yesterday' is not a date or time"),
    ("until=2026-13-01", "until: '2026-13-01' is not a date or time"),
    ("since=2026-03-10&until=2026-03-09", "since must be before until"),
    ("outcome=hungup", "outcome must be one of completed, caller_hangup, retries_exhausted"),
    ("limit=0", f"limit must be a whole number from 1 to {MAX_LIMIT}"),
    (f"limit={MAX_LIMIT + 1}", f"limit must be a whole number from 1 to {MAX_LIMIT}"),
    ("limit=ten", "limit must be a whole number"),
    ("limit=%EF%BC%95", "limit must be a whole number"),           # a full-width digit
    ("cursor=bm9wZQ", "cursor: not one this API gave"),
    ("cursor=%%%", "cursor: not one this API gave"),
    ("number=abc", "number: 'abc' is not a phone number"),
    ("number=010-1234", "is not a phone number"),
    ("flows=main", "unknown query parameter 'flows'; this path takes: channel, cursor, flow, limit"),
    ("flow=a&flow=b", "flow is given more than once"),
])
async def test_a_query_that_does_not_fit_is_a_clear_400(query, says):
    api = await started(store=MemoryStore())
    try:
        body = await api.get(f"/v1/calls?{query}", status=400)
        assert says in body["error"], body
    finally:
        await api.client.close()


async def test_a_bad_outcome_lists_every_valid_one():
    api = await started(store=MemoryStore())
    try:
        body = await api.get("/v1/calls?outcome=nope", status=400)
        assert all(str(o) in body["error"] for o in Outcome)
    finally:
        await api.client.close()


async def test_a_video_call_says_its_channel_and_carries_its_chat():
    store = MemoryStore()
    video = dataclasses.replace(a_call(3), channel="video", dialled="video")
    video.said("caller", "안녕하세요", at=T0 + dt.timedelta(minutes=3, seconds=5))
    video.said("agent", "무엇을 도와드릴까요?", at=T0 + dt.timedelta(minutes=3, seconds=9))
    video.chat_dropped = 2
    await store.record_call(video)
    await store.record_call(a_call(4))
    api = await started(store=store)
    try:
        got = await api.get("/v1/calls/call-00003")           # checked against the schema
        assert got["channel"] == "video" and got["chat_dropped"] == 2
        assert got["chat"] == [
            {"at": "2026-03-10T00:03:05+00:00", "sender": "caller", "text": "안녕하세요"},
            {"at": "2026-03-10T00:03:09+00:00", "sender": "agent", "text": "무엇을 도와드릴까요?"}]
        page = await api.get("/v1/calls")
        assert [(c["id"], c["channel"], len(c["chat"])) for c in page["items"]] == [
            ("call-00004", "voice", 0), ("call-00003", "video", 2)]
        only = await api.get("/v1/calls?channel=video")
        assert [c["id"] for c in only["items"]] == ["call-00003"]
        await api.get("/v1/calls?channel=fax", status=400)
    finally:
        await api.client.close()


async def test_one_call_with_its_path_keys_outcome_queue_and_events():
    store = MemoryStore()
    record = dataclasses.replace(
        a_call(7), nodes=["welcome", "menu", "to_agent"], exits=["next", "key", "queue"],
        digits=["3"], outcome=Outcome.AGENT_CONNECTED, detail="agent1 after 42s",
        queue="general", waited=42.0, priority="elderly", reason="bypass: elderly")
    await store.record_call(record)
    at = record.started_at + dt.timedelta(seconds=20)
    await store.record_events([
        QueueEvent(at, "call.queued", call_id=record.call_id, queue="general", detail="elderly"),
        QueueEvent(at + dt.timedelta(seconds=42), "call.connected", call_id=record.call_id,
                   agent_id="agent1", queue="general"),
        QueueEvent(at, "call.queued", call_id="another", queue="general")])
    api = await started(store=store)
    try:
        got = await api.get("/v1/calls/call-00007")
        assert got["path"] == [{"node": "welcome", "exit": "next"}, {"node": "menu", "exit": "key"},
                               {"node": "to_agent", "exit": "queue"}]
        assert (got["keys"], got["outcome"], got["queue"], got["waited"]) == (
            ["3"], "agent_connected", "general", 42.0)
        assert [(e["kind"], e["agent"]) for e in got["events"]] == [("call.queued", None),
                                                                   ("call.connected", "agent1")]
        assert "12345678" not in str(got)
        missing = await api.get("/v1/calls/nope", status=404)
        assert missing == {"error": "no call 'nope'"}
    finally:
        await api.client.close()


async def test_a_call_in_progress_has_no_outcome_and_exits_not_yet_recorded():
    store = MemoryStore()
    record = dataclasses.replace(a_call(8), ended_at=None, outcome=None, nodes=["welcome", "menu"],
                                 exits=["next"])
    await store.call_started(record)
    await store.call_progress(record)
    api = await started(store=store)
    try:
        got = await api.get("/v1/calls/call-00008")
        assert got["outcome"] is None and got["ended_at"] is None
        assert got["path"][-1] == {"node": "menu", "exit": None}
    finally:
        await api.client.close()


# -- queues and agents ----------------------------------------------------------------------

async def test_queues_live_waiting_by_priority_oldest_wait_estimate_and_staffing():
    clock = Clock(1000.0)
    service = make_service([AgentSpec(id="a1", name="A", endpoint="PJSIP/a1"),
                            AgentSpec(id="a2", name="B", endpoint="PJSIP/a2"),
                            AgentSpec(id="s1", name="S", endpoint="PJSIP/s1", skills=frozenset({"sales"}))],
                           clock)
    acd = service.acd
    acd.login("a1", 900.0)
    acd.login("a2", 900.0)
    acd.pause("a2", "lunch", 950.0)
    acd.enqueue("c1", "general", "normal", 940.0)
    acd.enqueue("c2", "general", "elderly", 970.0)
    acd.enqueue("c3", "general", "normal", 990.0)
    api = await started(queues=service)
    try:
        board = await api.get("/v1/queues")
        assert board["as_of"] == T0.isoformat()
        general = next(q for q in board["items"] if q["name"] == "general")
        assert general["waiting"] == 3
        assert general["by_priority"] == {"elderly": 1, "normal": 2}
        assert general["oldest_wait"] == 60.0
        assert (general["staffed"], general["paused"], general["available"]) == (1, 1, 1)
        assert isinstance(general["estimated_wait"], int) and general["estimated_wait"] >= 0
        sales = next(q for q in board["items"] if q["name"] == "sales")
        assert (sales["waiting"], sales["staffed"], sales["estimated_wait"]) == (0, 0, None)
        assert (await api.get("/v1/queues?x=1", status=400))["error"].startswith("unknown query parameter")
    finally:
        await api.client.close()


async def test_1562_agents_in_pages_filtered_by_center_and_state():
    centers = ("seoul", "busan", "daegu")
    agents = [AgentSpec(id=f"ag{n:04d}", name=f"Agent {n}", endpoint=f"PJSIP/ag{n:04d}",
                        center=centers[n % 3]) for n in range(1562)]
    service = make_service(agents)
    for spec in agents[:400]:
        service.acd.login(spec.id, 990.0)
    api = await started(queues=service)
    try:
        every = await api.all_pages("/v1/agents")
        assert [a["id"] for a in every] == sorted(a.id for a in agents)
        pages = await api.get("/v1/agents?limit=500")
        assert len(pages["items"]) == 500 and pages["next"] is not None
        busan = await api.all_pages("/v1/agents?center=busan&state=available&limit=37")
        assert {a["id"] for a in busan} == {a.id for a in agents[:400] if a.center == "busan"}
        assert all(a["state"] == "available" and a["for_seconds"] == 10.0 for a in busan)
        bad = await api.get("/v1/agents?state=asleep", status=400)
        assert "available" in bad["error"] and "wrap_up" in bad["error"]
    finally:
        await api.client.close()


async def test_a_supervisor_logs_an_agent_in_pauses_resumes_and_logs_out():
    service = make_service()
    api = await started(queues=service)
    try:
        assert (await api.post("/v1/agents/agent1/login"))["state"] == "available"
        paused = await api.post("/v1/agents/agent1/pause", json={"reason": "lunch"})
        assert (paused["state"], paused["reason"]) == ("paused", "lunch")
        assert (await api.post("/v1/agents/agent1/pause", data=b"[1]", status=400))["error"]
        assert (await api.post("/v1/agents/agent1/resume"))["state"] == "available"
        assert (await api.post("/v1/agents/nobody/login", status=404)) == {"error": "no agent 'nobody'"}
        service.acd.enqueue("c1", "general", None, service.clock())
        service.acd.offers(service.clock())                   # agent1's phone rings
        refused = await api.post("/v1/agents/agent1/logout", status=409)
        assert "call" in refused["error"]
        assert (await api.get("/v1/agents"))["items"][0]["state"] == "ringing"
    finally:
        await api.client.close()


async def test_without_queues_or_store_the_paths_say_what_is_missing():
    api = await started()
    try:
        assert "queues" in (await api.get("/v1/agents", status=404))["error"]
        assert "queues" in (await api.post("/v1/agents/a/login", status=404))["error"]
        assert "store" in (await api.get("/v1/calls", status=404))["error"]
        assert "store" in (await api.get("/v1/reservations", status=404))["error"]
    finally:
        await api.client.close()


# -- reservations ---------------------------------------------------------------------------

async def book(store: Store, count: int) -> list[Reservation]:
    out = []
    for n in range(count):
        at = T0 + dt.timedelta(minutes=n)
        out.append(await store.put_reservation(Reservation.new(
            f"+8210{5000_0000 + n}", "general", language="ko", arrived_at=at, now=at)))
    return out


async def test_reservations_in_pages_newest_first_masked_and_by_status():
    store = MemoryStore()
    booked = await book(store, 23)
    await store.cancel_reservation(booked[4].id)
    api = await started(store=store)
    try:
        every = await api.all_pages("/v1/reservations?limit=5")
        assert [r["id"] for r in every] == [r.id for r in reversed(booked)]
        assert all(r["number"].endswith(b.number[-4:]) and b.number[4:-4] not in r["number"]
                   for r, b in zip(every, reversed(booked), strict=True))
        cancelled = await api.get("/v1/reservations?status=cancelled")
        assert [r["id"] for r in cancelled["items"]] == [booked[4].id]
        bad = await api.get("/v1/reservations?status=open", status=400)
        assert "pending, claimed, done, failed, cancelled" in bad["error"]
    finally:
        await api.client.close()


async def test_a_reservation_is_cancelled_once_then_409_and_unknown_is_404():
    store = MemoryStore()
    (r,) = await book(store, 1)
    api = await started(store=store)
    try:
        assert (await api.post(f"/v1/reservations/{r.id}/cancel"))["status"] == "cancelled"
        again = await api.post(f"/v1/reservations/{r.id}/cancel", status=409)
        assert "already cancelled" in again["error"]
        unknown = await api.post("/v1/reservations/nope/cancel", status=404)
        assert unknown == {"error": "no callback reservation 'nope'"}
        assert (await store.get_reservation(r.id)).status == "cancelled"
    finally:
        await api.client.close()


async def test_cancelling_through_the_desk_withdraws_the_place_in_line():
    from ivr.callbacks.desk import PREFIX, CallbackDesk
    from ivr.config import CallbacksConfig

    service = make_service()
    store = MemoryStore()
    desk = CallbackDesk(CallbacksConfig(owner="test"), store, service, service, service.switch,
                        service.catalogue, wall_clock=lambda: T0 + dt.timedelta(hours=2))   # 11:00 in Seoul
    (r,) = await book(store, 1)
    await desk.poll()                              # due: claimed, a place held in the line
    assert service.holds(PREFIX + r.id)
    api = await started(queues=service, store=store, desk=desk)
    try:
        assert (await api.post(f"/v1/reservations/{r.id}/cancel"))["status"] == "cancelled"
        assert not service.holds(PREFIX + r.id)
    finally:
        await api.client.close()


def test_the_schema_check_refuses_an_answer_that_does_not_fit():
    with pytest.raises(jsonschema.ValidationError, match="'started_at' is a required property"):
        check("GET", "/v1/calls/x", 200, "application/json", {"id": "x"})
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        check("GET", "/v1/agents", 200, "application/json", {"items": [], "next": None, "more": 1})
    with pytest.raises(AssertionError, match="409 is not documented"):
        check("GET", "/v1/calls", 409, "application/json", {"error": "x"})


# -- wellness calls ---------------------------------------------------------------------------

class Dialler:
    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def status(self) -> dict[str, Any]:
        return {"campaigns": [{"name": "seniors", "open": False, "next_open": T0.isoformat(),
                               "paused": True, "flow_problem": None, "ringing": 0,
                               "max_concurrent": 2}],
                "visits_open": 1, "last_poll": T0.isoformat()}

    def run_now(self, number: str | None = None) -> None:
        self.asked.append(number)


async def test_wellness_status_run_now_and_the_visit_list():
    from ivr.wellness.model import Attempt, AttemptResult, Person, Visit

    store = MemoryStore()
    await store.put_wellness_people([Person(number="+821012345678", campaign="seniors")])
    tried = Attempt(number="+821012345678", campaign="seniors", at=T0, result=AttemptResult.NO_ANSWER,
                    detail="not answered (cause 19)")
    await store.open_wellness_visit(Visit(number="+821012345678", campaign="seniors", since=T0,
                                          history=(tried,)))
    dialler = Dialler()
    api = await started(store=store, wellness=dialler)
    try:
        status = await api.get("/v1/wellness")
        assert status["campaigns"][0]["paused"] is True and status["visits_open"] == 1
        assert await api.post("/v1/wellness/run-now", json={}) == {"looking": True, "number": None}
        answer = await api.post("/v1/wellness/run-now", json={"number": "010-1234-5678"})
        assert answer == {"looking": True, "number": "+821*****5678"}
        assert dialler.asked == [None, "+821012345678"]
        await api.post("/v1/wellness/run-now", json={"number": "010-9999-0000"}, status=404)
        await api.post("/v1/wellness/run-now", json={"number": "banana"}, status=400)
        (visit,) = (await api.get("/v1/wellness/visits"))["items"]
        assert visit["number"] == "+821*****5678" and visit["history"][0]["result"] == "no_answer"
        assert (await api.get("/v1/wellness/visits?campaign=other"))["items"] == []
        await api.get("/v1/wellness/visits?all=maybe", status=400)
    finally:
        await api.client.close()


async def test_wellness_paths_without_the_dialler_answer_404_but_the_visit_list_is_read():
    api = await started(store=MemoryStore())
    try:
        await api.get("/v1/wellness", status=404)
        await api.post("/v1/wellness/run-now", json={}, status=404)
        assert (await api.get("/v1/wellness/visits"))["items"] == []
    finally:
        await api.client.close()
