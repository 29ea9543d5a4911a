"""The video entrance in the running engine over the fake ARI: a page's visit, its call
(``Stasis(ivr,video,<token>)``), the sign-language queue, the interpreter's page, the chat, and
the call record."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from pathlib import Path

import aiohttp
import pytest

from ivr.call import Outcome
from ivr.config import load_config
from ivr.testing.fake_ari import FakeAri
from ivr.web.auth import Role, User, hash_password, write_users

from engine_helpers import recorded_calls, serving

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_file(tmp_path: Path, fake: FakeAri, port: int, *, login: bool = False) -> Path:
    shutil.copytree(REPO / "flows", tmp_path / "flows", dirs_exist_ok=True)
    (tmp_path / "interpreter-passwords").write_text("interp1 sip-secret-1\n", encoding="utf-8")
    write_users(tmp_path / "users.yaml", [User("interp1", Role.INTERPRETER, hash_password("interp-pass-1")),
                                          User("kim", Role.SUPERVISOR, hash_password("supervisor-pass"))])
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(
        f"ari: {{url: '{fake.base_url}', username: {fake.username}, password: {fake.password}}}\n"
        f"flows: flows\nprompts: {REPO / 'prompts'}\nstore: {{url: 'sqlite:///ivr.db'}}\n"
        "engine: {shutdown_grace: 1, reload_interval: 0}\n"
        "acd:\n  priorities: [booked, elderly, repeat, normal]\n"
        "  queues:\n    general: {max_wait: 60}\n"
        "    sign_language: {skills: [sign_language], max_wait: 120, wrap_up: 1}\n"
        "  agents:\n"
        f"    - {{id: interp1, name: Interpreter One, endpoint: PJSIP/interp1, skills: [sign_language], "
        f"login: {'true' if login else 'false'}}}\n"
        f"admin: {{listen: '127.0.0.1:{port}', users_file: users.yaml}}\n"
        "video: {enabled: true, guest_password: guest-secret, agent_passwords_file: interpreter-passwords}\n",
        encoding="utf-8")
    return cfg


@contextlib.asynccontextmanager
async def engine(tmp_path: Path, **kw):
    port = free_port()
    async with FakeAri(record=True) as fake:
        config = load_config(config_file(tmp_path, fake, port, **kw), env={})
        async with serving(config):
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", cookie_jar=jar) as http:
                yield fake, http, config


async def record_of(config, call_id: str):
    """The call's record once the engine has written its end (waits up to 5 s)."""
    for _ in range(50):
        found = [r for r in await recorded_calls(config) if r.call_id == call_id]
        if found and found[0].outcome is not None:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no ended record of {call_id}")


async def next_of(ws: aiohttp.ClientWebSocketResponse, match, timeout: float = 5.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive_json()
            if match(message):
                return message


async def test_a_page_call_waits_is_answered_by_the_interpreter_page_with_video_and_chat(tmp_path):
    async with engine(tmp_path, login=True) as (fake, http, config):
        settings = await (await http.get("/video/api/settings")).json()
        assert [t["id"] for t in settings["topics"]][:2] == ["premiums", "benefits"]
        assert settings["sign_languages"][0]["labels"]["ko"] == "한국수어"
        resp = await http.post("/video/api/visits", json={"topic": "certificates", "sign_language": "ksl",
                                                          "language": "en", "number": "010-2345-6789"})
        assert resp.status == 200
        visit = await resp.json()
        assert visit["sip"]["target"] == "sip:15771900@127.0.0.1"
        assert visit["sip"]["headers"] == [f"X-IVR-Visit: {visit['token']}"]
        assert visit["sip"]["password"] == "guest-secret"
        assert visit["on_duty"] == 1
        page = await http.ws_connect(f"/video/api/visits/{visit['token']}/socket")

        # The interpreter logs in on their page, gets the SIP registration, and pauses.
        login = await http.post("/video/api/agent/login", json={"name": "interp1", "password": "interp-pass-1"})
        assert login.status == 200
        assert (await login.json())["sip"] == {
            "name": "Interpreter One", "websocket": "wss://127.0.0.1:8443/ws", "uri": "sip:interp1@127.0.0.1",
            "username": "interp1", "password": "sip-secret-1", "ice_servers": []}
        desk = await http.ws_connect("/video/api/agent/socket")
        assert (await desk.receive_json())["state"] == "available"
        await desk.send_json({"type": "pause"})
        assert (await next_of(desk, lambda m: m["type"] == "agent"))["state"] == "paused"

        # The page's call arrives as the dialplan hands it over; the interpreter is paused: it
        # waits, first in line.
        call_id = await fake.start_call(caller="video-guest", exten="15771900", args=["video", visit["token"]])
        status = await next_of(page, lambda m: m["type"] == "status")
        assert status["state"] == "waiting" and status["position"] == 1
        # The wallboard lists the caller as a video caller.
        assert (await http.post("/wallboard/api/login", json={"name": "kim", "password": "supervisor-pass"})).ok
        for _ in range(50):
            board = await (await http.get("/wallboard/api/snapshot")).json()
            if board["waiting_list"]:
                break
            await asyncio.sleep(0.1)
        assert [(w["call_id"], w["channel"]) for w in board["waiting_list"]] == [(call_id, "video")]
        await desk.send_json({"type": "ready"})
        ringing = await next_of(desk, lambda m: m.get("state") == "ringing")
        assert ringing["topic"] == "certificates" and ringing["sign_language"] == "ksl"
        assert ringing["caller"] == "+82****6789" or "****" in ringing["caller"]
        # The interpreter's leg offers video (Asterisk offers audio only without formats).
        dial = await fake.wait_for_request(lambda r: r.method == "POST" and r.path == "/channels")
        assert dial.params["endpoint"] == "PJSIP/interp1"
        assert "vp8" in dial.params["formats"] and "opus" in dial.params["formats"]
        await next_of(desk, lambda m: m.get("state") == "talking")
        talking = await next_of(page, lambda m: m["type"] == "status" and m["state"] == "talking")
        assert talking["agent"] == "Interpreter One"

        # Text beside the video, both ways.
        await page.send_json({"type": "chat", "text": "  12 Sejong-daero, Seoul  "})
        got = await next_of(desk, lambda m: m["type"] == "chat")
        assert (got["from"], got["text"]) == ("caller", "12 Sejong-daero, Seoul")
        await desk.send_json({"type": "chat", "text": "Thank you, noted."})
        got = await next_of(page, lambda m: m["type"] == "chat" and m["from"] == "agent")
        assert got["text"] == "Thank you, noted."

        await fake.caller_hangs_up(call_id)
        ended = await next_of(page, lambda m: m["type"] == "call" and m["state"] == "ended")
        assert ended["outcome"] == "agent_connected"
        await page.close()
        await desk.close()
        record = await record_of(config, call_id)
    assert record.channel == "video"
    assert record.flow == "sign_language" and record.dialled == "15771900"
    assert record.number == "+821023456789" and record.queue == "sign_language"
    assert record.outcome == Outcome.AGENT_CONNECTED and record.detail.startswith("interp1")
    lines = [(line.sender, line.text) for line in record.chat]
    assert ("caller", "12 Sejong-daero, Seoul") in lines and ("agent", "Thank you, noted.") in lines
    assert lines[0] == ("system", "page: topic certificates, sign language ksl, page language en")


async def test_a_page_call_without_a_visit_of_this_engine_is_refused_and_recorded(tmp_path):
    async with engine(tmp_path) as (fake, http, config):
        call_id = await fake.start_call(caller="video-guest", exten="15771900", args=["video", "forged-token"])
        await fake.wait_for_request(lambda r: r.method == "DELETE" and call_id in r.path)
        record = await record_of(config, call_id)
    assert record.channel == "video" and record.outcome == Outcome.ERROR
    assert "without a visit" in record.detail


async def test_a_video_phone_dialling_the_video_number_reaches_the_same_queue(tmp_path):
    async with engine(tmp_path, login=True) as (fake, http, config):
        call_id = await fake.start_call(caller="01023456789", exten="15771900")
        dial = await fake.wait_for_request(lambda r: r.method == "POST" and r.path == "/channels")
        assert dial.params["endpoint"] == "PJSIP/interp1" and "vp8" in dial.params["formats"]
        await asyncio.sleep(0.3)
        await fake.caller_hangs_up(call_id)
        record = await record_of(config, call_id)
    assert record.channel == "video" and record.queue == "sign_language"
    assert record.outcome == Outcome.AGENT_CONNECTED


@pytest.mark.parametrize("body, reason", [
    ({"topic": "nope", "sign_language": "ksl", "language": "ko"}, "topic"),
    ({"topic": "premiums", "sign_language": "xx", "language": "ko"}, "sign_language"),
    ({"topic": "premiums", "sign_language": "ksl", "language": "fr"}, "language"),
    ({"topic": "premiums", "sign_language": "ksl", "language": "ko", "number": "+1 202 555 0143"}, "number"),
    ({"topic": "premiums", "sign_language": "ksl", "language": "ko", "number": "112"}, "number"),
    ({"topic": "premiums", "sign_language": "ksl", "language": "ko", "code": "ABCD"}, "code"),
    ({"topic": "premiums", "sign_language": "ksl", "language": "ko", "code": "ABCDEFGH"}, "code"),
])
async def test_a_visit_with_a_wrong_choice_number_or_code_is_refused_with_its_reason(tmp_path, body, reason):
    async with engine(tmp_path) as (fake, http, config):
        resp = await http.post("/video/api/visits", json=body)
        assert resp.status == 400
        assert (await resp.json())["reason"] == reason


async def test_interpreters_cannot_use_the_wallboard_and_others_cannot_use_the_agent_page(tmp_path):
    async with engine(tmp_path) as (fake, http, config):
        resp = await http.post("/wallboard/api/login", json={"name": "interp1", "password": "interp-pass-1"})
        assert resp.status == 403
        resp = await http.post("/video/api/agent/login", json={"name": "kim", "password": "supervisor-pass"})
        assert resp.status == 401
        resp = await http.get("/video/api/agent/socket")
        assert resp.status == 401
        page = await http.get("/video/")
        assert page.status == 200
        assert "wss://127.0.0.1:8443" in page.headers["Content-Security-Policy"]
        assert "수어 영상 상담" in await page.text()


async def test_a_page_sending_garbage_is_answered_with_an_error_and_too_many_visits_are_refused(tmp_path):
    async with engine(tmp_path) as (fake, http, config):
        body = {"topic": "premiums", "sign_language": "ksl", "language": "ko"}
        visit = await (await http.post("/video/api/visits", json=body)).json()
        page = await http.ws_connect(f"/video/api/visits/{visit['token']}/socket")
        await page.send_str("not json")
        assert (await page.receive_json())["reason"] == "message"
        await page.send_json({"type": "dance"})
        assert (await page.receive_json())["reason"] == "message"
        await page.send_json({"type": "chat", "text": "hello"})        # no call yet
        assert (await page.receive_json())["reason"] == "not_waiting"
        await page.send_json({"type": "book", "start": "tomorrow"})
        assert (await page.receive_json())["reason"] == "slot"
        await page.close()
        assert (await http.get("/video/api/visits/forged/socket")).status == 404
        statuses = [(await http.post("/video/api/visits", json=body)).status for _ in range(25)]
        assert statuses.count(429) == 25 + 1 - 20 and statuses[:19] == [200] * 19


async def test_a_booked_caller_at_their_time_is_served_ahead_of_one_who_came_first(tmp_path):
    import datetime as dt

    from ivr.store import open_store
    from ivr.store.base import VideoBooking

    async with engine(tmp_path, login=True) as (fake, http, config):
        login = await http.post("/video/api/agent/login", json={"name": "interp1", "password": "interp-pass-1"})
        assert login.status == 200
        desk = await http.ws_connect("/video/api/agent/socket")
        await desk.receive_json()
        await desk.send_json({"type": "pause"})
        await next_of(desk, lambda m: m.get("state") == "paused")
        now = dt.datetime.now(dt.timezone.utc)
        async with open_store(config.store_url) as store:
            assert await store.put_video_booking(VideoBooking(
                "K7M2Q9XR", now - dt.timedelta(minutes=5), now + dt.timedelta(minutes=25), "benefits",
                "ksl", "ko", None, now), capacity=2)

        async def arrive(**extra) -> tuple[str, aiohttp.ClientWebSocketResponse]:
            body = {"topic": "premiums", "sign_language": "ksl", "language": "ko", **extra}
            visit = await (await http.post("/video/api/visits", json=body)).json()
            page = await http.ws_connect(f"/video/api/visits/{visit['token']}/socket")
            call_id = await fake.start_call(caller="video-guest", exten="15771900",
                                            args=["video", visit["token"]])
            return call_id, page

        first, first_page = await arrive()
        assert (await next_of(first_page, lambda m: m["type"] == "status"))["position"] == 1
        booked, booked_page = await arrive(code="k7m2-q9xr")
        assert (await next_of(booked_page, lambda m: m["type"] == "status"))["position"] == 1
        assert (await next_of(first_page, lambda m: m["type"] == "status"))["position"] == 2
        await desk.send_json({"type": "ready"})
        ringing = await next_of(desk, lambda m: m.get("state") == "ringing")
        assert ringing["call_id"] == booked and ringing["booked"] is True
        for call_id in (first, booked):
            await fake.caller_hangs_up(call_id)
        record = await record_of(config, booked)
        await desk.close()
        async with open_store(config.store_url) as store:
            used = await store.get_video_booking("K7M2Q9XR")
    assert record.priority == "booked" and record.channel == "video"
    assert used.status == "used" and used.call_id == booked


async def test_a_waiting_caller_who_books_a_time_leaves_the_line_with_the_booking_on_record(tmp_path):
    async with engine(tmp_path, login=True) as (fake, http, config):
        login = await http.post("/video/api/agent/login", json={"name": "interp1", "password": "interp-pass-1"})
        assert login.status == 200
        desk = await http.ws_connect("/video/api/agent/socket")
        await desk.receive_json()
        await desk.send_json({"type": "pause"})
        await next_of(desk, lambda m: m.get("state") == "paused")
        body = {"topic": "checkups", "sign_language": "asl", "language": "vi"}
        visit = await (await http.post("/video/api/visits", json=body)).json()
        page = await http.ws_connect(f"/video/api/visits/{visit['token']}/socket")
        call_id = await fake.start_call(caller="video-guest", exten="15771900", args=["video", visit["token"]])
        await next_of(page, lambda m: m["type"] == "status" and m["state"] == "waiting")
        await page.send_json({"type": "slots"})
        slots = (await next_of(page, lambda m: m["type"] == "slots"))["slots"]
        assert slots and all(s["free"] == 2 for s in slots)
        await page.send_json({"type": "book", "start": slots[0]["start"]})
        booked = await next_of(page, lambda m: m["type"] == "booked")
        ended = await next_of(page, lambda m: m["type"] == "call" and m["state"] == "ended")
        assert ended["outcome"] == "callback_booked"
        record = await record_of(config, call_id)
        await desk.close()
    assert record.detail.startswith(f"sign_language: consultation {booked['code']} at ")
    assert record.waited is not None and record.channel == "video"
    assert any(line.text.startswith(f"booked consultation {booked['code']}") for line in record.chat)
