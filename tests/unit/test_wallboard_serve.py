"""The admin listener as ``serve`` builds it (step 6): which parts are on, and why not."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import socket
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import structlog

from ivr.call import CallRecord, Outcome
from ivr.config import load_config
from ivr.flow.loader import load_flows
from ivr.prompts import load_catalogue
from ivr.testing.fake_ari import FakeAri
from ivr.testing.memory_store import MemoryStore
from ivr.web.auth import Role, User, hash_password, write_users
from ivr.web.wallboard import TodayCharts

from engine_helpers import serving

REPO = Path(__file__).resolve().parents[2]
TOKEN = "serve-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_file(tmp_path: Path, fake: FakeAri, port: int, *, token: bool, users: bool) -> Path:
    shutil.copytree(REPO / "flows", tmp_path / "flows", dirs_exist_ok=True)
    admin = [f"listen: '127.0.0.1:{port}'"] + ([f"token: {TOKEN}"] if token else []) \
        + (["users_file: users.yaml"] if users else [])
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(
        f"ari: {{url: '{fake.base_url}', username: {fake.username}, password: {fake.password}}}\n"
        f"flows: flows\nprompts: {REPO / 'prompts'}\nstore: {{url: 'sqlite:///ivr.db'}}\n"
        "engine: {shutdown_grace: 1, reload_interval: 0}\n"
        "acd:\n  queues:\n    general: {max_wait: 60}\n"
        "  agents:\n    - {id: agent1, name: A, endpoint: PJSIP/agent1, login: true}\n"
        f"admin: {{{', '.join(admin)}}}\n", encoding="utf-8")
    return cfg


@contextlib.asynccontextmanager
async def listener(tmp_path: Path, *, token: bool = True, users: bool = True, users_file: bool = True):
    if users_file:
        write_users(tmp_path / "users.yaml", [User("kim", Role.SUPERVISOR, hash_password("supervisor-pass"))])
    port = free_port()
    async with FakeAri() as fake:
        config = load_config(config_file(tmp_path, fake, port, token=token, users=users), env={})
        with structlog.testing.capture_logs() as logs:
            # unsafe: the jar keeps cookies of an IP address (127.0.0.1), as browsers do
            jar = aiohttp.CookieJar(unsafe=True)
            # The engine stops before the client closes: pages may still be open then.
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", cookie_jar=jar) as http, serving(config):
                yield http, logs


async def test_with_a_token_and_users_the_api_metrics_and_wallboard_share_one_port(tmp_path):
    async with listener(tmp_path) as (http, logs):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get("/api/v1/agents", headers=auth) as resp:
            assert resp.status == 200 and (await resp.json())["items"][0]["id"] == "agent1"
        async with http.get("/metrics", headers=auth) as resp:
            assert resp.status == 200 and "ivr_agents" in await resp.text()
        async with http.get("/metrics") as resp:
            assert resp.status == 401
        async with http.get("/", allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/wallboard/"
        async with http.post("/wallboard/api/login", json={"name": "kim", "password": "supervisor-pass"}) as resp:
            assert resp.status == 200
        async with http.get("/wallboard/api/snapshot") as resp:
            snap = await resp.json()
            assert [a["id"] for a in snap["agent_list"]] == ["agent1"]
        assert [e for e in logs if e["event"] == "wallboard.on"][0]["users"] == 1


async def test_without_a_users_file_the_wallboard_is_off_and_the_log_says_how_to_turn_it_on(tmp_path):
    async with listener(tmp_path, users=False) as (http, logs):
        async with http.get("/wallboard/") as resp:
            assert resp.status == 404
        async with http.get("/api/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert resp.status == 200
        (off,) = [e for e in logs if e["event"] == "wallboard.off"]
        assert "admin.users_file" in off["why"] and "ivr users add" in off["why"]


async def test_a_users_file_that_is_named_but_missing_keeps_the_wallboard_off(tmp_path):
    async with listener(tmp_path, token=False, users_file=False) as (http, logs):
        assert [e["users_file"] for e in logs if e["event"] == "wallboard.off"] == [str(tmp_path / "users.yaml")]
        assert [e for e in logs if e["event"] == "admin.off"]


async def test_todays_charts_show_todays_calls_of_the_flow_and_are_drawn_once_a_minute(tmp_path):
    flows = load_flows([REPO / "flows"], load_catalogue(REPO / "prompts" / "catalog.yaml"))
    store = MemoryStore()
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=ZoneInfo("Asia/Seoul"))
    for i, nodes in enumerate([["start", "choose_language", "welcome", "main_menu"],
                               ["start", "choose_language", "welcome", "main_menu", "certificates_menu"]]):
        rec = CallRecord(call_id=f"c{i}", caller=f"0101234567{i}", number=f"+82101234567{i}",
                         dialled="15771000", flow="main",
                         started_at=now - dt.timedelta(minutes=5 - i))
        for node in nodes:
            rec.visit(node)
        rec.end(Outcome.CALLER_HANGUP, "")
        await store.record_call(rec)
    mono = [0.0]
    charts = TodayCharts(store, lambda: flows, ZoneInfo("Asia/Seoul"), clock=lambda: now, mono=lambda: mono[0])
    assert charts.default_flow() == "main"
    svg = (await charts.chart("funnel", None)).decode()
    assert "certificates_menu" in svg and "main_menu" in svg
    assert await charts.chart("funnel", "no_such_flow") is None
    asked = len(store.asked)
    await charts.chart("wait_by_hour", "main")             # the same drawing, not read again
    assert len(store.asked) == asked
    mono[0] += 60
    await charts.chart("funnel", "main")
    assert len(store.asked) > asked


async def test_the_engine_stops_at_once_while_a_page_follows_the_stream(tmp_path):
    loop = asyncio.get_running_loop()
    async with listener(tmp_path) as (http, logs):
        async with http.post("/wallboard/api/login", json={"name": "kim", "password": "supervisor-pass"}) as resp:
            assert resp.status == 200
        stream = await http.get("/wallboard/api/events")
        assert (await stream.content.readline()).startswith(b"event: snapshot")
        stopping = loop.time()
    # Leaving the block stopped the engine with the stream still open; the stream was ended.
    assert loop.time() - stopping < 3
    assert [e["step"] for e in logs if e["event"] == "engine.closing"][:2] == ["calls", "admin"]
