"""The wallboard over real HTTP: log-in, sessions, CSRF, roles, the live stream, the audit log.

The queues are real (``Acd``, ``QueueService`` on a fake switch) and so are the live figures
(``LiveStats``); the admin listener's root application (``admin_app``) serves them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import types
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.acd.service import QueueService
from ivr.call import utcnow
from ivr.callbacks.desk import CallbackDesk
from ivr.callbacks.model import Reservation
from ivr.config import WallboardConfig
from ivr.logs import mask_number
from ivr.prompts import load_catalogue
from ivr.stats.live import LiveStats
from ivr.testing.fake_switch import FakeSwitch
from ivr.testing.memory_store import MemoryStore
from ivr.web.admin import admin_app
from ivr.web.auth import Audit, LoginLimiter, Role, User, UserDirectory, hash_password, write_users
from ivr.web.wallboard import COOKIE, wallboard_app

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"kim": "supervisor-pass", "wall": "viewer-pass-1"}
TOKEN = "metrics-token-for-tests"
MASKED = mask_number("+821012345678")


class Board:
    """A running wallboard over two agents and one queue."""

    def __init__(self, tmp_path: Path, *, clock=None, session_hours: float = 12.0) -> None:
        self.users_file = tmp_path / "users.yaml"
        write_users(self.users_file, [User("kim", Role.SUPERVISOR, hash_password(PASSWORDS["kim"])),
                                      User("wall", Role.VIEWER, hash_password(PASSWORDS["wall"]))])
        specs = {"general": QueueSpec(name="general")}
        box: list[LiveStats] = []
        self.acd = Acd(specs, [AgentSpec(id="agent1", name="Kim Minji", endpoint="PJSIP/agent1"),
                               AgentSpec(id="agent2", name="Lee Jun", endpoint="PJSIP/agent2")],
                       on_event=lambda e: box[0](e) if box else None)
        self.service = QueueService(self.acd, specs, FakeSwitch({}),
                                    load_catalogue(REPO / "prompts" / "catalog.yaml"))
        self.numbers = {"c1": "+821012345678"}
        self.stats = LiveStats(self.acd, WallboardConfig(), tz=ZoneInfo("Asia/Seoul"), clock=utcnow,
                               mono=self.service.clock, numbers=self.numbers.get)
        box.append(self.stats)
        self.store = MemoryStore()
        self.desk = CallbackDesk(types.SimpleNamespace(owner="test"), self.store, self.service,
                                 self.service, self.service.switch, self.service.catalogue)
        self.clock = clock or time.monotonic
        self.charts = FakeCharts()
        self.app = admin_app(metrics=metrics_page, token=TOKEN, wallboard=wallboard_app(
            users=UserDirectory(self.users_file), stats=self.stats, audit=Audit(self.store),
            agents=self.service, desk=self.desk, charts=self.charts, session_hours=session_hours,
            clock=self.clock, limiter=LoginLimiter(clock=self.clock)))

    async def __aenter__(self) -> Board:
        self.client = TestClient(TestServer(self.app))
        await self.client.start_server()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.close()

    async def login(self, name: str, password: str | None = None) -> dict:
        resp = await self.client.post("/wallboard/api/login",
                                      json={"name": name, "password": password or PASSWORDS[name]})
        assert resp.status == 200, await resp.text()
        return await resp.json()

    def actions(self) -> list[tuple[str, str, str | None, str]]:
        return [(e.user, e.action, e.target, e.detail) for e in self.store.audit]


class FakeCharts:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None]] = []

    async def chart(self, name: str, flow: str | None) -> bytes | None:
        self.asked.append((name, flow))
        return b"<svg xmlns='http://www.w3.org/2000/svg'/>" if flow in (None, "main") else None


async def metrics_page(request):
    from aiohttp import web

    return web.Response(text="ivr_up 1\n")


async def test_the_page_is_served_and_nothing_else_answers_before_a_log_in(tmp_path):
    async with Board(tmp_path) as b:
        resp = await b.client.get("/", allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/wallboard/"
        page = await b.client.get("/wallboard/")
        text = await page.text()
        assert page.status == 200 and 'id="login-form"' in text and "현황판" in text
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        js = await b.client.get("/wallboard/static/wallboard.js")
        assert js.status == 200 and js.content_type == "text/javascript"
        for path in ("/wallboard/api/me", "/wallboard/api/snapshot", "/wallboard/api/events",
                     "/wallboard/api/callers/c1", "/wallboard/api/reservations"):
            resp = await b.client.get(path)
            assert resp.status == 401 and "log in" in (await resp.json())["error"], path
        resp = await b.client.post("/wallboard/api/agents/agent1/pause", json={})
        assert resp.status == 401
        assert b.acd.agent("agent1").state == "offline"


async def test_a_log_in_sets_a_strict_http_only_cookie_and_a_wrong_password_is_refused_and_audited(tmp_path):
    async with Board(tmp_path) as b:
        resp = await b.client.post("/wallboard/api/login", json={"name": "kim", "password": "wrong-password"})
        assert resp.status == 401 and "wrong" in (await resp.json())["error"]
        assert COOKIE not in resp.cookies
        resp = await b.client.post("/wallboard/api/login", json={"name": "kim", "password": PASSWORDS["kim"]})
        body = await resp.json()
        assert resp.status == 200 and body["role"] == "supervisor" and len(body["csrf"]) >= 40
        cookie = resp.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/wallboard/"
        assert int(cookie["max-age"]) == 12 * 3600
        me = await (await b.client.get("/wallboard/api/me")).json()
        assert (me["user"], me["role"], me["actions"]) == ("kim", "supervisor", True)
        assert [(a[0], a[1]) for a in b.actions()] == [("kim", "login_refused"), ("kim", "login")]
        assert b.store.audit[0].source == "127.0.0.1"


async def test_five_wrong_passwords_lock_the_name_with_429_even_for_the_right_password(tmp_path):
    now = [0.0]
    async with Board(tmp_path, clock=lambda: now[0]) as b:
        for _ in range(5):
            resp = await b.client.post("/wallboard/api/login", json={"name": "kim", "password": "guess-guess"})
            assert resp.status == 401
        for _ in range(20):            # trying on while locked: refused, and the audit log stays as it was
            resp = await b.client.post("/wallboard/api/login", json={"name": "kim", "password": PASSWORDS["kim"]})
            assert resp.status == 429 and int(resp.headers["Retry-After"]) == 301
        now[0] += 301
        assert (await b.login("kim"))["user"] == "kim"
        refused = [a for a in b.actions() if a[1] == "login_refused"]
        assert len(refused) == 5 and "now locked" in refused[4][3], refused


async def test_a_supervisor_pauses_and_resumes_an_agent_in_the_queues_and_it_is_audited(tmp_path):
    async with Board(tmp_path) as b:
        b.service.agent_action("agent1", "login")
        csrf = (await b.login("kim"))["csrf"]
        resp = await b.client.post("/wallboard/api/agents/agent1/pause", json={"reason": "lunch"})
        assert resp.status == 403 and "X-CSRF-Token" in (await resp.json())["error"]
        assert b.acd.agent("agent1").state == "available"
        headers = {"X-CSRF-Token": csrf}
        resp = await b.client.post("/wallboard/api/agents/agent1/pause", json={"reason": "lunch"},
                                   headers=headers)
        assert resp.status == 200 and (await resp.json())["state"] == "paused"
        status = b.acd.agent("agent1")
        assert (status.state, status.reason) == ("paused", "lunch")
        resp = await b.client.post("/wallboard/api/agents/agent1/resume", headers=headers)
        assert resp.status == 200 and b.acd.agent("agent1").state == "available"
        resp = await b.client.post("/wallboard/api/agents/agent2/pause", headers=headers)
        assert resp.status == 409 and "logged" in (await resp.json())["error"]
        resp = await b.client.post("/wallboard/api/agents/nobody/logout", headers=headers)
        assert resp.status == 404
        resp = await b.client.post("/wallboard/api/agents/agent1/logout", headers=headers)
        assert resp.status == 200 and b.acd.agent("agent1").state == "offline"
        assert b.actions()[1:] == [("kim", "agent.pause", "agent1", "lunch"),
                                   ("kim", "agent.resume", "agent1", ""),
                                   ("kim", "agent.pause", "agent2", b.actions()[3][3]),
                                   ("kim", "agent.logout", "agent1", "")]
        assert b.actions()[3][3].startswith("refused: ")


async def test_a_viewer_sees_masked_numbers_and_may_not_act(tmp_path):
    async with Board(tmp_path) as b:
        b.service.agent_action("agent1", "login")
        b.service.agent_action("agent1", "pause", "meeting")
        b.acd.enqueue("c1", "general", "elderly", b.service.clock())
        me = await b.login("wall")
        assert me["role"] == "viewer"
        assert not (await (await b.client.get("/wallboard/api/me")).json())["actions"]
        headers = {"X-CSRF-Token": me["csrf"]}
        resp = await b.client.post("/wallboard/api/agents/agent1/resume", headers=headers)
        assert resp.status == 403 and "supervisor" in (await resp.json())["error"]
        assert b.acd.agent("agent1").state == "paused"
        resp = await b.client.post("/wallboard/api/reservations/r1/cancel", headers=headers)
        assert resp.status == 403
        viewed = await (await b.client.get("/wallboard/api/callers/c1")).json()
        assert viewed["number"] == MASKED and viewed["priority"] == "elderly"
        snap = await (await b.client.get("/wallboard/api/snapshot")).json()
        assert snap["waiting_list"][0]["number"] == MASKED
        assert [a[1:3] for a in b.actions()[1:]] == [("agent.resume", "agent1"), ("callback.cancel", "r1")]
        assert all(a[3] == "refused: viewer" for a in b.actions()[1:])


async def test_a_supervisor_sees_a_callers_full_number_and_the_view_is_audited(tmp_path):
    async with Board(tmp_path) as b:
        b.acd.enqueue("c1", "general", "normal", b.service.clock())
        await b.login("kim")
        viewed = await (await b.client.get("/wallboard/api/callers/c1")).json()
        assert viewed["number"] == "+821012345678"
        assert b.actions()[-1] == ("kim", "caller.view", "c1", "")
        resp = await b.client.get("/wallboard/api/callers/c9")
        assert resp.status == 404


async def test_a_supervisor_cancels_a_reservation(tmp_path):
    async with Board(tmp_path) as b:
        now = dt.datetime.now(dt.timezone.utc)
        r = await b.store.put_reservation(Reservation.new("+821012345678", "general", language="ko",
                                                          arrived_at=now, now=now))
        csrf = (await b.login("kim"))["csrf"]
        listed = await (await b.client.get("/wallboard/api/reservations")).json()
        assert [(x["id"], x["number"]) for x in listed] == [(r.id, MASKED)]
        resp = await b.client.post(f"/wallboard/api/reservations/{r.id}/cancel", headers={"X-CSRF-Token": csrf})
        assert resp.status == 200
        assert (await b.store.get_reservation(r.id)).status == "cancelled"
        resp = await b.client.post(f"/wallboard/api/reservations/{r.id}/cancel", headers={"X-CSRF-Token": csrf})
        assert resp.status == 404
        assert b.actions()[-1] == ("kim", "callback.cancel", r.id, "")


async def read_snapshots(resp, count: int, timeout: float = 5.0) -> list[dict]:
    """The next ``count`` snapshot events of a stream."""
    found: list[dict] = []
    event = None
    async with asyncio.timeout(timeout):
        while len(found) < count:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "snapshot":
                found.append(json.loads(line[6:]))
    return found


async def test_the_stream_pushes_a_change_within_a_second(tmp_path):
    async with Board(tmp_path) as b:
        b.service.agent_action("agent1", "login")
        await b.login("wall")
        resp = await b.client.get("/wallboard/api/events")
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        (first,) = await read_snapshots(resp, 1)
        assert first["waiting_list"] == [] and first["agents"][0]["available"] == 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        b.acd.enqueue("c1", "general", "elderly", b.service.clock())
        while True:
            (snap,) = await read_snapshots(resp, 1)
            if snap["waiting_list"]:
                break
        assert loop.time() - started < 1.0
        (caller,) = snap["waiting_list"]
        assert (caller["call_id"], caller["priority"], caller["number"]) == ("c1", "elderly", MASKED)
        resp.close()


async def test_a_removed_user_or_an_expired_session_ends_the_session(tmp_path):
    now = [0.0]
    async with Board(tmp_path, clock=lambda: now[0], session_hours=1) as b:
        await b.login("wall")
        assert (await b.client.get("/wallboard/api/me")).status == 200
        now[0] += 3600
        assert (await b.client.get("/wallboard/api/me")).status == 401
        await b.login("wall")
        write_users(b.users_file, [User("kim", Role.SUPERVISOR, hash_password(PASSWORDS["kim"]))])
        assert (await b.client.get("/wallboard/api/me")).status == 401


async def test_logging_out_ends_the_session_and_is_audited(tmp_path):
    async with Board(tmp_path) as b:
        csrf = (await b.login("kim"))["csrf"]
        resp = await b.client.post("/wallboard/api/logout", headers={"X-CSRF-Token": csrf})
        assert resp.status == 200
        assert (await b.client.get("/wallboard/api/me")).status == 401
        assert [a[1] for a in b.actions()] == ["login", "logout"]


async def test_charts_are_served_for_a_logged_in_user_and_metrics_need_the_token(tmp_path):
    async with Board(tmp_path) as b:
        assert (await b.client.get("/wallboard/api/charts/funnel.svg")).status == 401
        await b.login("wall")
        resp = await b.client.get("/wallboard/api/charts/funnel.svg")
        assert resp.status == 200 and resp.content_type == "image/svg+xml"
        assert (await b.client.get("/wallboard/api/charts/wait_by_hour.svg?flow=other")).status == 404
        assert (await b.client.get("/wallboard/api/charts/nothing.svg")).status == 404
        assert b.charts.asked == [("funnel", None), ("wait_by_hour", "other")]
        assert (await b.client.get("/metrics")).status == 401
        resp = await b.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 200 and "ivr_up 1" in await resp.text()


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"name": 5, "password": "x"}', "{}"])
async def test_a_malformed_log_in_is_a_clear_400(tmp_path, body):
    async with Board(tmp_path) as b:
        resp = await b.client.post("/wallboard/api/login", data=body,
                                   headers={"Content-Type": "application/json"})
        assert resp.status == 400 and "error" in await resp.json()
