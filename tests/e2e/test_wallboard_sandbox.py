"""The wallboard in Chromium against the real engine on the sandbox Asterisk, with SIPp.

A supervisor pauses agent1 from the page (the engine has it paused), an elderly SIPp caller
rings and is on the board within a second of entering the line with the priority and the
reason; the supervisor resumes agent1 from the page, agent1's SIPp phone takes the call, and
today's funnel of the flow then holds the call.  Marked e2e and browser; run it under
``flock /tmp/ivr-sandbox.lock``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine import Engine, masked, records
from ivr.sipp import AgentPhone, place_call
from ivr.web.auth import Role, User, hash_password, write_users

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))
from browser_helpers import ARGS, CHROMIUM, VIEWPORT  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

LINE = "15779100"            # tests/e2e/flows/queue.yaml: straight into queue 'general'
ELDERLY = "01070000072"
PASSWORD = "supervisor-pass"
TODAY = dt.datetime.now(ZoneInfo("Asia/Seoul")).date()
ACD = """
acd:
  queues:
    general: {skills: [general], max_wait: 120, on_max_wait: message, announce_every: 30,
              ring_timeout: 8, wrap_up: 1}
  agents:
    - {id: agent1, name: Agent 1, endpoint: PJSIP/agent1, skills: [general], login: true}
"""


@pytest.fixture(scope="module")
def engine(sandbox, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("engine-wallboard")
    write_users(workdir / "users.yaml", [User("kim", Role.SUPERVISOR, hash_password(PASSWORD))])
    eng = Engine(workdir, sandbox, extra_config=ACD)
    before = os.environ.get("IVR_ADMIN_USERS_FILE")
    os.environ["IVR_ADMIN_USERS_FILE"] = str(workdir / "users.yaml")    # the engine's admin.users_file
    try:
        eng.start()
    finally:
        if before is None:
            del os.environ["IVR_ADMIN_USERS_FILE"]
        else:
            os.environ["IVR_ADMIN_USERS_FILE"] = before
    registry = workdir / "callers.csv"
    registry.write_text(f"phone,birth_date\n{ELDERLY},{TODAY.year - 78}-05-01\n", encoding="utf-8")
    out = eng.cli("callers", "import", str(registry))
    assert out.returncode == 0, out.stderr
    yield eng
    rc = eng.stop()
    assert rc == 0, f"the engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            await b.close()


def agent_state(engine: Engine, agent_id: str) -> dict:
    out = engine.cli("agents", "list", "--json")
    assert out.returncode == 0, out.stderr
    return next(a for a in json.loads(out.stdout) if a["id"] == agent_id)


def logged_at(event: dict) -> float:
    return dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


async def test_a_sipp_caller_is_on_the_wallboard_within_a_second_and_an_agent_resumed_there_takes_it(
        engine, browser):
    base = f"http://127.0.0.1:{engine.admin_port}"
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    await page.goto(f"{base}/wallboard/")
    await page.fill("#login-name", "kim")
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector('#agent-grids .cell.available[data-id="agent1"]', timeout=10000)

    await page.click('#agent-grids .cell[data-id="agent1"]')
    await page.fill("#pause-reason", "briefing")
    await page.click("#act-pause")
    await page.wait_for_selector('#agent-grids .cell.paused[data-id="agent1"]')
    state = await asyncio.to_thread(agent_state, engine, "agent1")
    assert (state["state"], state["reason"]) == ("paused", "briefing")

    async with AgentPhone(5071, ring_delay=0.5, talk=2) as phone:
        call = asyncio.create_task(place_call(LINE, caller=ELDERLY, hangup_after=40, max_duration=45))
        row = "#waiting-table tbody tr:not([hidden])"
        await page.wait_for_selector(row, timeout=15000)
        seen_at = time.time()
        cells = await page.eval_on_selector_all(f"{row} td", "tds => tds.map(td => td.textContent)")
        assert cells[3] == "고령자" and "elderly" in cells[4], cells
        (queued,) = engine.events("acd.queued")
        delay = seen_at - logged_at(queued)
        assert delay < 1.0, f"{delay:.2f} s from the line to the page"

        await page.click('#agent-grids .cell[data-id="agent1"]')
        await page.click("#act-resume")
        await page.wait_for_selector('#agent-grids .cell.on_call[data-id="agent1"]', timeout=15000)
        await page.wait_for_function("() => document.querySelector('#waiting-count').textContent === '0'")
        ended = await phone.wait_for_ended(1, timeout=30)
        assert ended[0].caller == ELDERLY
        result = await call
    assert result.answered
    recs = await asyncio.to_thread(records, engine)
    assert recs[masked(ELDERLY)]["outcome"] == "agent_connected"

    svg = await page.evaluate("async () => (await fetch('api/charts/funnel.svg?flow=queue_line')).text()")
    assert "queue_line" in svg and "bypass" in svg
    await context.close()
    actions = [e["event"] for e in engine.events() if str(e.get("event", "")).startswith("audit.")]
    assert actions == ["audit.login", "audit.agent.pause", "audit.agent.resume"], actions
    print(f"\nSIPp caller on the wallboard {delay * 1000:.0f} ms after the engine put them in line")
