"""Agent queues end to end: SIPp callers wait in the engine's queue on the sandbox Asterisk and
are connected to SIPp agent phones (agent1 on 127.0.0.1:5071, agent2 on :5072).

Agents change state through `ivr agents …` (the operator API) as a supervisor would."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from engine import Engine, masked, records
from ivr.sipp import AgentPhone, place_call

pytestmark = pytest.mark.e2e

LINE = "15779100"            # tests/e2e/flows/queue.yaml: straight into queue 'general'
WRAP_UP = 3
RING_TIMEOUT = 4
ELDERLY = "01070000071"
TODAY = dt.datetime.now(ZoneInfo("Asia/Seoul")).date()

ACD = f"""
acd:
  queues:
    general: {{skills: [general], max_wait: 60, on_max_wait: message, announce_every: 8,
              ring_timeout: {RING_TIMEOUT}, wrap_up: {WRAP_UP}}}
  agents:
    - {{id: agent1, name: Agent 1, endpoint: PJSIP/agent1, skills: [general], login: true}}
    - {{id: agent2, name: Agent 2, endpoint: PJSIP/agent2, skills: [general], login: true}}
"""


@pytest.fixture(scope="module")
def engine(sandbox, tmp_path_factory):
    eng = Engine(tmp_path_factory.mktemp("engine-queues"), sandbox, extra_config=ACD)
    eng.start()
    registry = eng.workdir / "callers.csv"
    registry.write_text(f"phone,birth_date\n{ELDERLY},{TODAY.year - 80}-01-01\n", encoding="utf-8")
    out = eng.cli("callers", "import", str(registry))
    assert out.returncode == 0, out.stderr
    yield eng
    rc = eng.stop()
    assert rc == 0, f"the engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"
    assert not eng.events("call.media_failed"), eng.events("call.media_failed")


def agents(engine: Engine) -> dict[str, dict]:
    out = engine.cli("agents", "list", "--json")
    assert out.returncode == 0, out.stderr
    return {a["id"]: a for a in json.loads(out.stdout)}


def set_agent(engine: Engine, agent: str, action: str, *extra: str) -> None:
    out = engine.cli("agents", action, agent, *extra)
    assert out.returncode == 0, f"ivr agents {action} {agent}: {out.stderr}"


def available(engine: Engine, *names: str) -> None:
    """Only ``names`` take calls; the other agents are paused (logged in, so callers wait)."""
    for agent, state in agents(engine).items():
        if state["state"] == "offline":
            set_agent(engine, agent, "login")
        if agent in names:
            if agents(engine)[agent]["state"] == "paused":
                set_agent(engine, agent, "resume")
        elif agents(engine)[agent]["state"] != "paused":
            set_agent(engine, agent, "pause", "--reason", "not in this test")


async def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_the_elderly_caller_who_arrives_last_is_served_first_and_wrap_up_delays_the_next(engine):
    await asyncio.to_thread(available, engine)                    # everyone paused: the line fills
    first, quitter = "01055501001", "01055501002"
    tasks = [asyncio.create_task(place_call(LINE, caller=first, hangup_after=45, max_duration=20))]
    await asyncio.sleep(1)
    tasks.append(asyncio.create_task(place_call(LINE, caller=quitter, hangup_after=6, max_duration=20)))
    await asyncio.sleep(1)
    tasks.append(asyncio.create_task(place_call(LINE, caller=ELDERLY, hangup_after=45, max_duration=20)))
    await asyncio.sleep(2)
    async with AgentPhone(5071, ring_delay=0.5, talk=2) as phone:
        await asyncio.to_thread(available, engine, "agent1")
        calls = await phone.wait_for_ended(1, timeout=20)
        assert calls[0].caller == ELDERLY, [c.describe() for c in calls]
        calls = await phone.wait_for_calls(2, timeout=30)
        # The quitter hung up while waiting: the next call is the first caller's, and only
        # after the wrap-up of the elderly caller's call.
        assert calls[1].caller == first, [c.describe() for c in calls]
        assert calls[1].invited_at - calls[0].ended_at >= WRAP_UP - 0.3
        await phone.wait_for_ended(2, timeout=20)
    results = await asyncio.gather(*tasks)
    assert all(r.answered for r in results)
    recs = records(engine)
    assert recs[masked(ELDERLY)]["outcome"] == "agent_connected"
    assert recs[masked(ELDERLY)]["reason"] == "bypass: elderly"
    assert recs[masked(first)]["outcome"] == "agent_connected"
    assert recs[masked(first)]["detail"].startswith("agent1")
    assert recs[masked(quitter)]["outcome"] == "abandoned"
    assert results[0].ended_by == "remote"            # the engine hung up when the agent did
    # The event log tells the elderly caller's course through the queue, as an operator sees it.
    out = engine.cli("calls", "show", recs[masked(ELDERLY)]["call_id"], "--json")
    assert out.returncode == 0, out.stderr
    kinds = [(e["kind"], e["agent_id"]) for e in json.loads(out.stdout)["events"]]
    assert ("call.queued", None) in kinds and ("call.connected", "agent1") in kinds, kinds
    # The first caller waited ~10 s: they heard where they stood (in the holding bridge).
    heard = [e["media"] for e in engine.events("call.play") if e.get("call_id") == recs[masked(first)]["call_id"]]
    assert any(m.endswith(("/queue_position_pre", "/queue_next")) for m in heard), heard


async def rtp_sent_to_caller(sandbox, caller: str) -> int:
    """Asterisk's count of RTP packets sent to the caller's channel (what the caller heard)."""
    async with aiohttp.ClientSession(headers=sandbox.auth_header) as http:
        async with http.get(f"{sandbox.base_url}/channels") as resp:
            channels = await resp.json()
        # The agent's leg shows the caller's number too: take the caller's own leg.
        (channel,) = [c for c in channels if c["caller"]["number"] == caller
                      and not c["name"].startswith("PJSIP/agent")]
        async with http.get(f"{sandbox.base_url}/channels/{channel['id']}/rtp_statistics") as resp:
            stats = await resp.json()
    return int(stats["txcount"])


async def test_an_agent_who_does_not_answer_is_paused_and_the_call_goes_to_the_other(engine):
    caller = "01055502001"
    async with AgentPhone(5071, mode="no_answer") as silent, \
            AgentPhone(5072, ring_delay=0.5, talk=5) as agent2:
        await asyncio.to_thread(available, engine, "agent1")
        call = asyncio.create_task(place_call(LINE, caller=caller, voice=25, max_duration=20,
                                              hangup_after=40))
        await silent.wait_for_calls(1, timeout=10)
        await asyncio.to_thread(available, engine, "agent1", "agent2")
        answered = await agent2.wait_for_answered(1, timeout=RING_TIMEOUT + 10)
        assert answered[0].caller == caller
        await asyncio.sleep(2)
        # Bridged: each side hears the other (Asterisk forwards only what the other side sends).
        assert await rtp_sent_to_caller(engine.sandbox, caller) > 20
        ended = await agent2.wait_for_ended(1, timeout=15)
        assert ended[0].rtp_packets_received > 20, ended[0].describe()
        assert silent.calls[0].cancelled and not silent.calls[0].answered
        result = await call
    assert result.ended_by == "remote"
    state = agents(engine)["agent1"]
    assert (state["state"], state["reason"]) == ("paused", "no answer")
    assert records(engine)[masked(caller)]["detail"].startswith("agent2")


async def test_with_no_agent_logged_in_the_caller_hears_a_message_and_is_released(engine):
    for agent, state in agents(engine).items():
        if state["state"] != "offline":
            await asyncio.to_thread(set_agent, engine, agent, "logout")
    caller = "01055503001"
    result = await place_call(LINE, caller=caller, max_duration=20, hangup_after=60)
    assert result.answered and result.ended_by == "remote"
    assert result.duration < 20                    # not left waiting for the max wait (60 s)
    rec = records(engine)[masked(caller)]
    assert rec["outcome"] == "queue_timeout" and "no agent logged in" in rec["detail"]
    played = [e["media"] for e in engine.events("call.play") if e.get("call_id") == rec["call_id"]]
    assert played[-1] == "sound:ivr/ko/queue_sorry"
