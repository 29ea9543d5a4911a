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
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine import Engine, masked, records
from ivr.sipp import AgentPhone, place_call
from ivr.web.auth import Role, User, hash_password, write_users

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))
import browser_helpers  # noqa: E402
from browser_helpers import VIEWPORT  # noqa: E402

browser = browser_helpers.browser       # the fixture tests/browser/ has: Chromium, or a skip

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


def queue_events_of(engine: Engine, call_id: str) -> list[dict]:
    out = engine.cli("calls", "show", call_id, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["events"]


async def board_and_metrics(engine: Engine) -> tuple[dict, str]:
    """The wallboard's snapshot, as a logged-in supervisor's page gets it, and /metrics."""
    import aiohttp

    base = f"http://127.0.0.1:{engine.admin_port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(f"{base}/wallboard/api/login", json={"name": "kim", "password": PASSWORD}) as r:
            assert r.status == 200, await r.text()
        async with s.get(f"{base}/wallboard/api/snapshot") as r:
            assert r.status == 200
            snap = await r.json()
        async with s.get(f"{base}/metrics", headers={"Authorization": f"Bearer {engine.admin_token}"}) as r:
            assert r.status == 200
            metrics = await r.text()
    return snap, metrics


async def test_the_wallboard_figures_match_the_calls_list_the_event_log_and_metrics(engine):
    """Supervisors' figures are the records' figures: after a caller who gives up in line and
    one who is served, today's answered, abandoned and average speed of answer on the board
    equal what ``ivr calls list`` and the event log (``ivr calls show``) say of the same calls,
    and /metrics' counters equal the store's."""
    from prometheus_client.parser import text_string_to_metric_families

    out = engine.cli("agents", "pause", "agent1", "--reason", "test")
    assert out.returncode == 0, out.stderr
    quitter, served = "01070000081", "01070000082"
    gave_up = await place_call(LINE, caller=quitter, hangup_after=4, max_duration=20)
    assert gave_up.answered and gave_up.ended_by == "local", gave_up.describe()
    out = engine.cli("agents", "resume", "agent1")
    assert out.returncode == 0, out.stderr
    async with AgentPhone(5071, ring_delay=0.5, talk=2) as phone:
        result = await place_call(LINE, caller=served, hangup_after=40, max_duration=45)
        await phone.wait_for_ended(1, timeout=30)
    assert result.answered

    def both_ended() -> dict | None:
        recs = records(engine)
        done = all(recs.get(masked(n), {}).get("outcome") for n in (quitter, served))
        return recs if done else None

    deadline = time.monotonic() + 15
    while (recs := await asyncio.to_thread(both_ended)) is None:
        assert time.monotonic() < deadline, "the two calls' records"
        await asyncio.sleep(0.2)
    assert recs[masked(quitter)]["outcome"] == "abandoned"
    assert recs[masked(served)]["outcome"] == "agent_connected"

    calls = await asyncio.to_thread(engine.calls)         # every call of this engine: today's
    queued = [c for c in calls if c["queue"] == "general"]
    answered = [c for c in queued if c["outcome"] == "agent_connected"]
    abandoned = [c for c in queued if c["outcome"] == "abandoned"]
    events = {c["call_id"]: await asyncio.to_thread(queue_events_of, engine, c["call_id"]) for c in queued}
    connected = [e for evs in events.values() for e in evs if e["kind"] == "call.connected"]
    hung_up = [e for evs in events.values() for e in evs
               if e["kind"] == "call.left" and e["detail"] == "caller_hangup"]
    snap, metrics = await board_and_metrics(engine)
    (row,) = [q for q in snap["queues"] if q["queue"] == "general" and q["center"] is None]
    assert (row["answered"], row["abandoned"]) == (len(answered), len(abandoned)) == \
        (len(connected), len(hung_up)), (row, [c["outcome"] for c in queued])
    assert len(answered) >= 2 and len(abandoned) >= 1
    asa = sum(c["waited"] for c in answered) / len(answered)
    assert row["asa"] == pytest.approx(asa, abs=0.5), (row["asa"], [c["waited"] for c in answered])
    assert row["abandon_rate"] == pytest.approx(len(abandoned) / (len(answered) + len(abandoned)), abs=0.001)

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(metrics) for s in family.samples}
    by_outcome: dict[tuple[str, str], int] = {}
    for c in calls:
        if c["outcome"]:
            by_outcome[(c["flow"] or "", c["outcome"])] = by_outcome.get((c["flow"] or "", c["outcome"]), 0) + 1
    counted = {(dict(labels)["flow"], dict(labels)["outcome"]): value
               for (name, labels), value in samples.items() if name == "ivr_calls_total"}
    assert counted == by_outcome, (counted, by_outcome)
    answered_total = sum(v for (name, labels), v in samples.items()
                         if name == "ivr_queue_answered_total" and dict(labels)["queue"] == "general")
    assert answered_total == len(connected)
