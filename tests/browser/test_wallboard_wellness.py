"""The wellness dialler on the wallboard: the home-visit list's length, the calls in progress
and the campaigns paused by a surge, updated live; no panel when no campaign runs."""

from __future__ import annotations

from ivr.stats.live import generated_state

from browser_helpers import logged_in


async def test_the_visit_list_length_and_a_paused_campaign_are_on_the_board(tmp_path, browser):
    stats = generated_state(40, 2, 10)[1]
    async with logged_in(browser, tmp_path, stats) as page:
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
