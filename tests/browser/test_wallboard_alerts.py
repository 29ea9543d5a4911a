"""Alerts on the wallboard are worded by the page in its language (Korean first), from the
snapshot's structured alerts, not shown in the engine's English."""

from __future__ import annotations

from typing import Any

from ivr.stats.live import generated_state

from browser_helpers import logged_in

ALERTS = [
    {"kind": "longest_wait", "queue": "general", "center": None, "value": 372.0,
     "text": "a caller in general has waited 6 min 12 s"},
    {"kind": "service_level", "queue": "claims", "center": "busan", "value": 0.42,
     "text": "service level in claims (busan) is 42 % (answered within 20 s)"},
]


class WithAlerts:
    """The live figures of a generated center, with two alerts at their alert level."""

    def __init__(self) -> None:
        self.stats = generated_state(40, 2, 10)[1]

    @property
    def version(self) -> int:
        return self.stats.version

    def snapshot(self) -> dict[str, Any]:
        return {**self.stats.snapshot(), "alerts": ALERTS}

    def waiting_caller(self, call_id: str) -> dict[str, Any] | None:
        return self.stats.waiting_caller(call_id)

    async def wait_changed(self, version: int, timeout: float) -> int:
        return await self.stats.wait_changed(version, timeout)


async def test_alerts_are_said_in_korean_and_in_english_after_the_toggle(tmp_path, browser):
    async with logged_in(browser, tmp_path, WithAlerts()) as page:
        await page.wait_for_function("() => document.querySelectorAll('#alerts li').length === 2")
        korean = await page.eval_on_selector_all("#alerts li", "lis => lis.map(li => li.textContent)")
        assert korean == ["general: 6:12 동안 기다린 고객이 있습니다",
                          "claims (busan): 서비스 수준 42% (20초 이내 응답)"], korean
        await page.click("#lang")
        await page.wait_for_function("() => document.querySelector('#alerts li').textContent.includes('waited')")
        english = await page.eval_on_selector_all("#alerts li", "lis => lis.map(li => li.textContent)")
        assert english == ["general: a caller has waited 6:12",
                           "claims (busan): service level 42% (answered within 20 s)"], english
