"""The wellness dialler on the wallboard: the home-visit list's length, the calls in progress
and the campaigns paused by a surge, updated live; no panel when no campaign runs."""

from __future__ import annotations

from aiohttp.test_utils import TestServer

from ivr.stats.live import generated_state
from ivr.testing.memory_store import MemoryStore
from ivr.web.admin import admin_app
from ivr.web.auth import Audit, Role, User, UserDirectory, hash_password, write_users
from ivr.web.wallboard import wallboard_app

from browser_helpers import VIEWPORT


async def test_the_visit_list_length_and_a_paused_campaign_are_on_the_board(tmp_path, browser):
    users_file = tmp_path / "users.yaml"
    write_users(users_file, [User("wall", Role.VIEWER, hash_password("viewer-pass-1"))])
    stats = generated_state(40, 2, 10)[1]
    app = admin_app(wallboard=wallboard_app(users=UserDirectory(users_file), stats=stats,
                                            audit=Audit(MemoryStore())))
    server = TestServer(app)
    await server.start_server()
    try:
        context = await browser.new_context(viewport=VIEWPORT)
        page = await context.new_page()
        await page.goto(str(server.make_url("/wallboard/")))
        await page.fill("#login-name", "wall")
        await page.fill("#login-password", "viewer-pass-1")
        await page.click("#login-submit")
        await page.wait_for_function("() => document.querySelectorAll('#reservation-figures > *').length > 0")
        assert await page.is_hidden("#wellness")                 # no campaign runs: no panel
        stats.set_wellness({"visits_open": 3, "ringing": 1, "paused": ["seniors"]})
        await page.wait_for_selector("#wellness", state="visible")
        panel = await page.text_content("#wellness")
        assert "가정 방문 대기" in panel and "3" in panel and "안부 전화 중" in panel
        assert await page.text_content("#wellness-paused") == "인입 폭주로 일시 중지: seniors"
        stats.set_wellness({"visits_open": 2, "ringing": 0, "paused": []})
        await page.wait_for_function("() => document.querySelector('#wellness-paused').hidden")
        await page.click("#lang")
        await page.wait_for_function("() => document.querySelector('#wellness').textContent"
                                     ".includes('Home visits due')")
        figures = await page.eval_on_selector_all("#wellness-figures > *", "fs => fs.map(f => f.textContent)")
        assert any("Home visits due" in f and "2" in f for f in figures), figures
        await context.close()
    finally:
        await server.close()
