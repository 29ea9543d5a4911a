"""The wallboard in a browser, against the real engine (``serve``) on the fake ARI.

A supervisor logs in (a wrong password first), pauses an agent from the page, sees an elderly
caller appear in line within a second with the priority and the reason, opens the caller's
detail (full number) and switches to English; a viewer has no action buttons and is refused
when trying anyway; the journey chart of today shows the calls just made.  Screenshots of
each page go to the screenshots folder (``browser_helpers.SCREENSHOTS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
from pathlib import Path

import aiohttp

from ivr.config import load_config
from ivr.logs import mask_number
from ivr.store import open_store
from ivr.store.base import Caller
from ivr.testing.fake_ari import FakeAri
from ivr.web.auth import Role, User, hash_password, write_users

from browser_helpers import REPO, SCREENSHOTS, VIEWPORT, free_port
from engine_helpers import serving

TOKEN = "browser-test-token"
PASSWORDS = {"kim": "supervisor-pass", "wall": "viewer-pass-1"}
ELDERLY = "01070000070"


def engine_config(tmp_path: Path, fake: FakeAri, port: int) -> Path:
    flows = tmp_path / "flows"
    if not flows.exists():
        shutil.copytree(REPO / "flows", flows)
    write_users(tmp_path / "users.yaml",
                [User("kim", Role.SUPERVISOR, hash_password(PASSWORDS["kim"])),
                 User("wall", Role.VIEWER, hash_password(PASSWORDS["wall"]))])
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(
        f"ari: {{url: '{fake.base_url}', username: {fake.username}, password: {fake.password}}}\n"
        f"flows: flows\nprompts: {REPO / 'prompts'}\n"
        "store: {url: 'sqlite:///ivr.db'}\n"
        "engine: {shutdown_grace: 1, reload_interval: 0}\n"
        "acd:\n  priorities: [elderly, repeat, normal]\n"
        "  queues:\n    general: {max_wait: 600, on_max_wait: message, announce_every: 600}\n"
        "  agents:\n"
        "    - {id: agent1, name: Kim Minji, endpoint: PJSIP/agent1, center: seoul, login: true}\n"
        "    - {id: agent2, name: Lee Jun, endpoint: PJSIP/agent2, center: seoul}\n"
        "    - {id: agent3, name: Park Hana, endpoint: PJSIP/agent3, center: busan}\n"
        f"admin: {{listen: '127.0.0.1:{port}', token: {TOKEN}, users_file: users.yaml}}\n",
        encoding="utf-8")
    return cfg


@contextlib.asynccontextmanager
async def engine(tmp_path: Path, fake: FakeAri):
    port = free_port()
    config = load_config(engine_config(tmp_path, fake, port), env={})
    async with open_store(config.store_url) as store:
        await store.put_callers([Caller("+821070000070", birth_date=dt.date(1950, 3, 1))])
    async with serving(config):
        yield config, f"http://127.0.0.1:{port}"


async def api_agent(base: str, agent_id: str) -> dict:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        async with s.get(f"{base}/api/agents") as resp:
            assert resp.status == 200
            return next(a for a in await resp.json() if a["id"] == agent_id)


async def log_in(page, base: str, name: str, password: str | None = None) -> None:
    await page.goto(f"{base}/")
    await page.wait_for_selector("#login-form", state="visible")
    await page.fill("#login-name", name)
    await page.fill("#login-password", password or PASSWORDS[name])
    await page.click("#login-submit")


async def test_a_supervisor_pauses_an_agent_and_sees_an_elderly_caller_within_a_second(tmp_path, browser):
    async with FakeAri() as fake, engine(tmp_path, fake) as (config, base):
        context = await browser.new_context(viewport=VIEWPORT, locale="ko-KR")
        page = await context.new_page()
        await page.goto(f"{base}/")
        assert page.url == f"{base}/wallboard/"
        await page.wait_for_selector("#login-form", state="visible")
        await page.fill("#login-name", "kim")
        await page.screenshot(path=str(SCREENSHOTS / "login.png"))

        # A wrong password is refused, on the page and by the server.
        await page.fill("#login-password", "not-the-password")
        await page.click("#login-submit")
        await page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
        assert await page.inner_text("#login-error") == "사용자 이름 또는 비밀번호가 틀렸습니다"
        assert await page.is_hidden("#board")

        await log_in(page, base, "kim")
        await page.wait_for_selector('#agent-grids .cell.available[data-id="agent1"]')
        assert "kim (관리자)" in await page.inner_text("#who")

        # Pause agent1 from the page: the engine's queues have it paused.
        await page.click('#agent-grids .cell[data-id="agent1"]')
        await page.fill("#pause-reason", "lunch")
        await page.click("#act-pause")
        await page.wait_for_selector('#agent-grids .cell.paused[data-id="agent1"]')
        agent = await api_agent(base, "agent1")
        assert (agent["state"], agent["reason"]) == ("paused", "lunch")

        # An elderly caller (registry: born 1950) bypasses the menu into the line.
        channel = await fake.start_call(caller=ELDERLY, exten="15771000")
        await fake.wait_for_request(lambda r: r.path.endswith("/addChannel"), timeout=5)
        loop = asyncio.get_running_loop()
        queued_at = loop.time()
        row = f'#waiting-table tr[data-call-id="{channel}"]'
        await page.wait_for_selector(row, timeout=1000)
        seen_after = loop.time() - queued_at
        cells = await page.eval_on_selector_all(f"{row} td", "tds => tds.map(td => td.textContent)")
        assert cells[3] == "고령자" and "elderly" in cells[4], cells
        assert cells[7] == mask_number("+821070000070")
        assert seen_after < 1.0
        await page.wait_for_function("() => document.querySelector('#waiting-count').textContent === '1'")
        await page.locator("#toast").evaluate("e => { e.hidden = true; }")     # not in the picture
        await page.screenshot(path=str(SCREENSHOTS / "wallboard-ko.png"), full_page=True)

        # The caller's detail: the full number, for a supervisor, audited.
        await page.click(row)
        await page.wait_for_selector("#caller-number")
        assert await page.inner_text("#caller-number") == "+821070000070"
        await page.screenshot(path=str(SCREENSHOTS / "caller-detail.png"))
        await page.keyboard.press("Escape")

        # English by the toggle: every label changes, the figures stay.
        await page.click("#lang")
        assert await page.inner_text("header h1") == "Contact center wallboard"
        assert "Callers waiting" in await page.inner_text("#board")
        cells = await page.eval_on_selector_all(f"{row} td", "tds => tds.map(td => td.textContent)")
        assert cells[3] == "Elderly"
        await page.screenshot(path=str(SCREENSHOTS / "wallboard-en.png"), full_page=True)
        await fake.caller_hangs_up(channel)
        await page.wait_for_selector(row, state="hidden", timeout=2000)
        await context.close()
    async with open_store(config.store_url) as store:
        audit = await store.audit_entries(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    assert [(e.user, e.action) for e in reversed(audit)] == [
        ("kim", "login_refused"), ("kim", "login"), ("kim", "agent.pause"), ("kim", "caller.view")]
    print(f"\ncaller on the wallboard {seen_after * 1000:.0f} ms after entering the line")


async def test_a_viewer_has_no_action_buttons_and_is_refused_when_acting(tmp_path, browser):
    async with FakeAri() as fake, engine(tmp_path, fake) as (config, base):
        context = await browser.new_context(viewport=VIEWPORT)
        page = await context.new_page()
        await log_in(page, base, "wall")
        await page.wait_for_selector('#agent-grids .cell.available[data-id="agent1"]')
        await page.click('#agent-grids .cell[data-id="agent1"]')
        assert await page.is_hidden("#agent-actions")
        await page.keyboard.press("Escape")
        # Past the page: the server checks the role.
        status = await page.evaluate("""async () => {
            const me = await (await fetch("api/me")).json();
            const r = await fetch("api/agents/agent1/pause", {method: "POST",
                headers: {"Content-Type": "application/json", "X-CSRF-Token": me.csrf},
                body: JSON.stringify({reason: "lunch"})});
            return r.status;
        }""")
        assert status == 403
        assert (await api_agent(base, "agent1"))["state"] == "available"
        await context.close()


async def test_the_journey_chart_shows_the_calls_just_made(tmp_path, browser):
    async with FakeAri() as fake, engine(tmp_path, fake) as (config, base):
        for caller in ("01011112222", "01033334444"):
            ch = await fake.start_call(caller=caller, exten="15771000")
            await fake.wait_for_request(lambda r, ch=ch: r.play_channel == ch
                                        and "sound:ivr/vi/choose_language" in r.media)
            await fake.press(ch, "1211")      # Korean, certificates, how to get one, end
            await fake.wait_for_request(lambda r, ch=ch: r.method == "DELETE" and r.path == f"/channels/{ch}",
                                        timeout=5)
        async with open_store(config.store_url) as store:
            assert len(await store.recent_calls()) == 2
        context = await browser.new_context(viewport=VIEWPORT)
        page = await context.new_page()
        await log_in(page, base, "wall")
        await page.wait_for_function(
            "() => document.querySelector('#chart-funnel').complete"
            " && document.querySelector('#chart-funnel').naturalWidth > 0",
            timeout=15000)
        svg = await page.evaluate("async () => (await fetch('api/charts/funnel.svg')).text()")
        assert "certificates_issue_info" in svg and "main_menu" in svg
        await page.locator("#charts").screenshot(path=str(SCREENSHOTS / "wallboard-charts.png"))
        await context.close()
