"""The video entrance's caller page in Chromium against the engine on the fake ARI: its large
buttons in four languages, a refused number said in the page's words, and, with no interpreter
on duty, no call placed but a time offered, booked and its code shown (and stored).  The calls
themselves (WebRTC through Asterisk) are tests/e2e/test_video_sandbox.py's."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

from ivr.config import load_config
from ivr.store import open_store
from ivr.testing.fake_ari import FakeAri

from browser_helpers import SCREENSHOTS, VIEWPORT, free_port
from engine_helpers import serving

REPO = Path(__file__).resolve().parents[2]


def config_file(tmp_path: Path, fake: FakeAri, port: int) -> Path:
    shutil.copytree(REPO / "flows", tmp_path / "flows", dirs_exist_ok=True)
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(
        f"ari: {{url: '{fake.base_url}', username: {fake.username}, password: {fake.password}}}\n"
        f"flows: flows\nprompts: {REPO / 'prompts'}\nstore: {{url: 'sqlite:///ivr.db'}}\n"
        "engine: {shutdown_grace: 1, reload_interval: 0}\n"
        "acd:\n  priorities: [booked, elderly, repeat, normal]\n"
        "  queues:\n    sign_language: {skills: [sign_language]}\n"
        "  agents:\n    - {id: interp1, name: I, endpoint: PJSIP/interp1, skills: [sign_language]}\n"
        f"admin: {{listen: '127.0.0.1:{port}'}}\n"
        "video: {enabled: true, guest_password: guest-secret, days_ahead: 14,\n"
        "        hours: {mon: ['00:00-24:00'], tue: ['00:00-24:00'], wed: ['00:00-24:00'],\n"
        "                thu: ['00:00-24:00'], fri: ['00:00-24:00'], sat: ['00:00-24:00'],\n"
        "                sun: ['00:00-24:00']}}\n", encoding="utf-8")
    return cfg


async def test_with_nobody_on_duty_the_page_books_a_time_and_shows_its_code(tmp_path, browser):
    port = free_port()
    async with FakeAri() as fake:
        config = load_config(config_file(tmp_path, fake, port), env={})
        async with serving(config):
            context = await browser.new_context(viewport=VIEWPORT)
            page = await context.new_page()
            await page.goto(f"http://127.0.0.1:{port}/video/")
            # Korean first; the topics and sign languages as large buttons.
            await page.wait_for_selector("#topics button")
            assert await page.text_content("h1") == "수어 영상 상담"
            assert "한국수어" in await page.text_content("#signs")
            await page.get_by_role("button", name="English").click()
            assert await page.text_content("h1") == "Sign-language video consultation"
            await page.click("#start")
            assert "Choose what it is about" in await page.text_content("#choose-error")

            await page.get_by_role("radio", name="Premiums").click()
            await page.get_by_role("radio", name="International Sign").click()
            await page.click("#more summary")
            await page.fill("#number", "+1 202 555 0143")           # not domestic: refused
            await page.click("#start")
            await page.wait_for_function(
                "document.getElementById('choose-error').textContent.includes('check the mobile number')")
            await page.fill("#number", "010-2345-6789")
            await page.click("#start")

            # Nobody on duty: no call; the page offers times instead.
            await page.wait_for_selector("#slots button")
            assert "No sign-language interpreter is on duty" in await page.text_content("#status")
            assert not fake.channels                          # no call was placed
            first = page.locator("#slots button").first
            start = await first.get_attribute("data-start")
            await first.click()
            await page.wait_for_selector("#booked:not([hidden])")
            code = (await page.text_content("#booked-code")).strip()
            assert re.fullmatch(r"[2-9A-HJKMNP-Z]{8}", code), code
            await page.screenshot(path=str(SCREENSHOTS / "video-booked.png"))
            await context.close()
    async with open_store(config.store_url) as store:
        booking = await store.get_video_booking(code)
    assert booking is not None and booking.status == "booked"
    assert booking.slot_start == dt.datetime.fromisoformat(start)      # the time clicked
    assert (booking.topic, booking.sign_language, booking.language, booking.number) == \
        ("premiums", "is", "en", "+821023456789")


async def test_a_booking_code_used_too_early_says_when_to_come_back(tmp_path, browser):
    from ivr.store.base import VideoBooking

    port = free_port()
    async with FakeAri() as fake:
        config = load_config(config_file(tmp_path, fake, port), env={})
        start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=1)
        async with open_store(config.store_url) as store:
            await store.put_video_booking(VideoBooking("Q7W2E9RT", start, start + dt.timedelta(minutes=30),
                                                       "premiums", "ksl", "en", None, start), capacity=2)
        async with serving(config):
            context = await browser.new_context(viewport=VIEWPORT)
            page = await context.new_page()
            await page.goto(f"http://127.0.0.1:{port}/video/")
            await page.get_by_role("button", name="English").click()
            await page.get_by_role("radio", name="Premiums").click()
            await page.get_by_role("radio", name="Korean Sign Language").click()
            await page.click("#more summary")
            await page.fill("#code", "q7w2-e9rt")
            await page.click("#start")
            await page.wait_for_function(
                "() => document.getElementById('choose-error').textContent.includes('Your booking is at')")
            said = await page.text_content("#choose-error")
            assert "You can come in from 10 minutes before." in said, said
            assert not fake.channels
            await context.close()
