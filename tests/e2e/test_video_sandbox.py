"""The sign-language video entrance end to end: the real engine on the sandbox Asterisk, a
caller's page and an interpreter's page in two Debian Chromium browsers with fake cameras and
microphones (WebRTC: SIP over secure WebSocket, DTLS-SRTP, VP8), and a SIPp video phone.

The interpreter logs in on their page (the browser registers as PJSIP/interp1) and pauses; the
caller chooses a topic and a sign language with the page's buttons and starts the call, which
waits in the sign_language queue (the page says so as text); the interpreter gets ready, their
page rings and they answer; both pages then receive video frames, chat lines cross, and the
call record has the path, the channel, the chat and the outcome.  Marked e2e and browser; run
it under ``flock /tmp/ivr-sandbox.lock``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from engine import REPO, Engine, until
from ivr.sipp import AgentPhone, place_call
from ivr.web.auth import Role, User, hash_password, write_users

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))
import browser_helpers  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

VIDEO = "15771900"
PASSWORD = "interpreter-pass"
# WebRTC in a headless browser: fake camera and microphone, no permission prompt (the contexts
# accept the sandbox's self-signed certificate), videos that play without a click.
MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              "--autoplay-policy=no-user-gesture-required"]
ACD = f"""
acd:
  priorities: [booked, elderly, repeat, normal]
  queues:
    sign_language: {{skills: [sign_language], max_wait: 180, on_max_wait: message, announce_every: 20,
                    ring_timeout: 20, wrap_up: 1}}
  agents:
    - {{id: interp1, name: Interpreter One, endpoint: PJSIP/interp1, skills: [sign_language], login: true}}
    - {{id: agent2, name: Video Phone Agent, endpoint: PJSIP/agent2, skills: [sign_language]}}
video:
  enabled: true
  number: "{VIDEO}"
  websocket: wss://127.0.0.1:8443/ws
  guest_password_file: {REPO / '.sandbox' / 'video-guest-password'}
  agent_passwords_file: {REPO / '.sandbox' / 'interpreter-passwords'}
"""


@pytest.fixture(scope="module")
def engine(sandbox, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("engine-video")
    write_users(workdir / "users.yaml", [User("interp1", Role.INTERPRETER, hash_password(PASSWORD))])
    eng = Engine(workdir, sandbox, extra_config=ACD)
    before = os.environ.get("IVR_ADMIN_USERS_FILE")
    os.environ["IVR_ADMIN_USERS_FILE"] = str(workdir / "users.yaml")
    try:
        eng.start()
    finally:
        if before is None:
            del os.environ["IVR_ADMIN_USERS_FILE"]
        else:
            os.environ["IVR_ADMIN_USERS_FILE"] = before
    yield eng
    rc = eng.stop()
    assert rc == 0, f"the engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"


@pytest.fixture
async def chromium():
    if not browser_helpers.CHROMIUM.exists():       # noqa: ASYNC240
        pytest.skip(f"browser tests need Chromium at {browser_helpers.CHROMIUM}")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(browser_helpers.CHROMIUM),
                                    args=browser_helpers.ARGS + MEDIA_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def frames(page, name: str) -> dict:
    return await page.evaluate(f"() => window.{name}.stats()")


async def test_a_browser_caller_waits_and_talks_to_an_interpreter_by_video_with_chat(engine, chromium):
    base = f"http://127.0.0.1:{engine.admin_port}/video/"
    agent_ctx = await chromium.new_context(ignore_https_errors=True, viewport=browser_helpers.VIEWPORT)
    caller_ctx = await chromium.new_context(ignore_https_errors=True, viewport=browser_helpers.VIEWPORT)
    try:
        agent = await agent_ctx.new_page()
        await agent.goto(base + "agent/")
        await agent.get_by_role("button", name="English").click()
        await agent.fill("#login-name", "interp1")
        await agent.fill("#login-password", PASSWORD)
        await agent.click("#login-submit")
        await agent.wait_for_function(
            "() => window.ivrAgent.registered === true", timeout=15_000)
        await agent.wait_for_selector("#agent-state[data-state='available']")
        await agent.click("#pause")
        await agent.wait_for_selector("#agent-state[data-state='paused']")

        caller = await caller_ctx.new_page()
        await caller.goto(base)
        await caller.get_by_role("button", name="English").click()
        await caller.get_by_role("radio", name="Certificates").click()
        await caller.get_by_role("radio", name="Korean Sign Language").click()
        await caller.click("#start")
        # In line, told so as text: nobody is ready, the interpreter is paused.
        await caller.wait_for_function(
            "() => document.getElementById('status').textContent.includes('You are next')", timeout=20_000)
        await caller.screenshot(path=str(browser_helpers.SCREENSHOTS / "video-caller-waiting.png"))

        await agent.click("#ready")
        await agent.wait_for_selector("#incoming:not([hidden])", timeout=20_000)
        detail = await agent.text_content("#incoming-detail")
        assert "certificates" in detail and "ksl" in detail
        await agent.click("#answer")
        await caller.wait_for_function(
            "() => document.getElementById('status').textContent.includes('connected to Interpreter One')",
            timeout=20_000)

        # Video both ways: each page decodes the other's frames.
        for _ in range(120):
            stats = await frames(caller, "ivrVideo"), await frames(agent, "ivrAgent")
            if all(s["framesDecoded"] > 10 for s in stats):
                break
            await asyncio.sleep(0.25)
        assert all(s["framesDecoded"] > 10 and s["framesEncoded"] > 0 and s["inbound"] > 0
                   for s in stats), stats
        await caller.screenshot(path=str(browser_helpers.SCREENSHOTS / "video-caller-talking.png"))
        await agent.screenshot(path=str(browser_helpers.SCREENSHOTS / "video-interpreter-talking.png"))

        # A chat beside the video, both ways.
        await caller.fill("#chat-text", "My address: 12 Sejong-daero")
        await caller.press("#chat-text", "Enter")
        await agent.wait_for_function(
            "() => document.getElementById('chat-lines').textContent.includes('12 Sejong-daero')")
        await agent.fill("#chat-text", "Noted, thank you")
        await agent.press("#chat-text", "Enter")
        await caller.wait_for_function(
            "() => document.getElementById('chat-lines').textContent.includes('Noted, thank you')")

        await caller.click("#hangup")
        await caller.wait_for_selector("#ended:not([hidden])")
    finally:
        await caller_ctx.close()
        await agent_ctx.close()

    def the_record():
        done = [r for r in engine.calls()
                if r.get("channel") == "video" and r.get("outcome") and r.get("flow") == "sign_language"
                and r["outcome"] == "agent_connected" and r["detail"].startswith("interp1")]
        return done[0] if done else None
    record = await until(the_record, 20, "the video call's record")
    assert record["outcome"] == "agent_connected" and record["detail"].startswith("interp1")
    assert record["queue"] == "sign_language" and record["nodes"] == ["interpreter"]
    said = [(line["sender"], line["text"]) for line in record["chat"]]
    assert ("caller", "My address: 12 Sejong-daero") in said and ("agent", "Noted, thank you") in said


async def test_a_sip_video_phone_reaches_the_same_queue(engine):
    before = engine.call_ids()
    async with AgentPhone(5072, ring_delay=0.3) as phone:        # agent2's phone
        out = engine.cli("agents", "login", "agent2")
        assert out.returncode == 0, out.stderr
        try:
            result = await place_call(VIDEO, caller="01023456789", hangup_after=4, max_duration=20,
                                      video=True)
        finally:
            engine.cli("agents", "logout", "agent2")
        assert result.ok, result.errors
        assert result.video_port not in (None, 0)                 # the video stream was accepted
        await phone.wait_for_ended(1, timeout=20)

    record = await engine.new_call_record(before, timeout=20)
    assert record["channel"] == "video" and record["queue"] == "sign_language"
    assert record["flow"] == "sign_language" and record["dialled"] == VIDEO
    assert record["outcome"] == "agent_connected" and record["detail"].startswith("agent2")
