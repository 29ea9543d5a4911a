"""The wallboard at the insurer's size: 1,562 agents in 7 centers, 500 callers waiting.

The state is generated (``ivr.stats.live.generated_state``: a real ``Acd`` and ``LiveStats``),
served by the real wallboard application; the page in Chromium must still show a change
within a second.  The figures measured are printed (``-s``): the snapshot's cost and size on
the server, the page's drawing time, and the time from a change in the queues to the page.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

from aiohttp.test_utils import TestServer

from ivr.acd.model import AgentState, AgentStatus
from ivr.stats.live import generated_state
from ivr.testing.memory_store import MemoryStore
from ivr.web.admin import admin_app
from ivr.web.auth import Audit, Role, User, UserDirectory, hash_password, write_users
from ivr.web.wallboard import wallboard_app

from browser_helpers import SCREENSHOTS, VIEWPORT

AGENTS, CENTERS, WAITING = 1562, 7, 500


class Actions:
    """The supervisor actions on the generated Acd (what ``QueueService.agent_action`` does)."""

    def __init__(self, acd, clock) -> None:
        self.acd, self.clock = acd, clock

    def agent_action(self, agent_id: str, action: str, reason: str = "paused") -> AgentStatus:
        if action == "pause":
            self.acd.pause(agent_id, reason, self.clock())
        else:
            getattr(self.acd, action)(agent_id, self.clock())
        return self.acd.agent(agent_id)


async def test_with_1562_agents_and_500_waiting_a_change_is_on_the_page_within_a_second(tmp_path, browser):
    acd, stats = generated_state(AGENTS, CENTERS, WAITING)
    snap = stats.snapshot()
    assert (len(snap["agent_list"]), snap["waiting_total"], len(snap["centers"])) == (AGENTS, WAITING, CENTERS)
    listed = len(snap["waiting_list"])
    assert 50 <= listed <= 100                     # the first 50 in line, then the longest waits
    costs = []
    for _ in range(5):
        t0 = time.perf_counter()
        body = json.dumps(stats.snapshot(), ensure_ascii=False, separators=(",", ":")).encode()
        costs.append(time.perf_counter() - t0)
    users_file = tmp_path / "users.yaml"
    write_users(users_file, [User("kim", Role.SUPERVISOR, hash_password("supervisor-pass"))])
    app = admin_app(wallboard=wallboard_app(users=UserDirectory(users_file), stats=stats,
                                            audit=Audit(MemoryStore()), agents=Actions(acd, stats.mono)))
    server = TestServer(app)
    await server.start_server()
    try:
        context = await browser.new_context(viewport=VIEWPORT)
        page = await context.new_page()
        await page.goto(str(server.make_url("/wallboard/")))
        await page.fill("#login-name", "kim")
        await page.fill("#login-password", "supervisor-pass")
        await page.click("#login-submit")
        await page.wait_for_function(f"() => document.querySelectorAll('#agent-grids .cell').length === {AGENTS}",
                                     timeout=10000)
        assert await page.inner_text("#waiting-count") == str(WAITING)
        assert await page.locator("#waiting-table tbody tr:not([hidden])").count() == listed   # the list is capped
        if listed > 50:                             # behind the first 50: its place in line, a gap above it
            row51 = page.locator("#waiting-table tbody tr").nth(50)
            assert await row51.locator("td").first.inner_text() == str(snap["waiting_list"][50]["position"])
            assert "gap" in (await row51.get_attribute("class") or "")
        first_draw = await page.evaluate("() => window.wallboard.maxMs")

        # Changes in the queues, one after the other: each must be on the page within 1 s.
        loop = asyncio.get_running_loop()
        offline = [a.spec.id for a in acd.agents() if a.state is AgentState.OFFLINE][:5]
        assert len(offline) == 5
        delays = []
        for i, agent_id in enumerate(offline):
            t0 = loop.time()
            acd.login(agent_id, stats.mono())
            await page.wait_for_selector(f'#agent-grids .cell[data-id="{agent_id}"]:not(.offline)', timeout=1000)
            delays.append(loop.time() - t0)
            t0 = loop.time()
            acd.enqueue(f"late{i}", "general", "elderly", stats.mono())
            await page.wait_for_function(f"() => document.querySelector('#waiting-count').textContent === "
                                         f"'{WAITING + i + 1}'", timeout=1000)
            delays.append(loop.time() - t0)
        # A supervisor's pause from the page, in the Acd and back on the page.
        target = offline[0]
        t0 = loop.time()
        await page.click(f'#agent-grids .cell[data-id="{target}"]')
        await page.fill("#pause-reason", "meeting")
        await page.click("#act-pause")
        await page.wait_for_selector(f'#agent-grids .cell.paused[data-id="{target}"]', timeout=1000)
        pause_round_trip = loop.time() - t0
        assert acd.agent(target).state is AgentState.PAUSED and acd.agent(target).reason == "meeting"
        draws = await page.evaluate("() => window.wallboard")
        await page.locator("#toast").evaluate("e => { e.hidden = true; }")
        await page.evaluate("() => window.scrollTo(0, 0)")
        await page.screenshot(path=str(SCREENSHOTS / "wallboard-large.png"))
        await context.close()
    finally:
        await server.close()
    assert max(delays) < 1.0
    print(f"\nsnapshot of {AGENTS} agents, {CENTERS} centers, {WAITING} waiting: "
          f"{statistics.median(costs) * 1000:.0f} ms median (taken and encoded), {len(body) / 1024:.0f} KiB; "
          f"first draw {first_draw:.0f} ms, a later draw {draws['lastMs']:.1f} ms ({draws['renders']} draws); "
          f"change to page: median {statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms; "
          f"pause from the page to the page again {pause_round_trip * 1000:.0f} ms")
