"""Two centers end to end: the engine drives two sandbox Asterisk servers (seoul, busan) behind
Kamailio, with one nationwide line.  SIPp callers enter through Kamailio; agents' SIPp phones
sit on their own center's server.

- a Seoul caller is served by a Busan agent across the trunk (the leg is placed on Seoul's
  server, Busan's rings the phone), with sound both ways, once the caller has waited
  ``spill_after`` while Seoul's agent is busy; the record says why;
- an elderly Busan caller who arrives after a normal Seoul caller is served first by the Seoul
  agent who comes free (priorities first everywhere).
"""

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
SPILL_AFTER = 4
WRAP_UP = 1
ELDERLY = "01070000081"
TODAY = dt.datetime.now(ZoneInfo("Asia/Seoul")).date()


def config(centers) -> str:
    switches = "\n".join(f"  - {{name: {c.name}, center: {c.name}, url: '{c.base_url}'}}"
                         for c in centers.centers[:2])
    return f"""
switches:
{switches}
acd:
  centers: {{spill_after: {SPILL_AFTER}, spill_margin: null}}
  queues:
    general: {{skills: [general], max_wait: 90, on_max_wait: message, announce_every: 30,
              ring_timeout: 8, wrap_up: {WRAP_UP}}}
  agents:
    - {{id: seoul1, name: Seoul 1, endpoint: PJSIP/seoul1, skills: [general], center: seoul, login: true}}
    - {{id: busan1, name: Busan 1, endpoint: PJSIP/busan1, skills: [general], center: busan, login: true}}
"""


@pytest.fixture(scope="module")
def engine(sandbox, centers, tmp_path_factory):
    eng = Engine(tmp_path_factory.mktemp("engine-centers"), sandbox, extra_config=config(centers))
    eng.start()
    registry = eng.workdir / "callers.csv"
    registry.write_text(f"phone,birth_date\n{ELDERLY},{TODAY.year - 80}-01-01\n", encoding="utf-8")
    out = eng.cli("callers", "import", str(registry))
    assert out.returncode == 0, out.stderr
    yield eng
    rc = eng.stop()
    assert rc == 0, f"the engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"


def port_of(centers, agent: str) -> int:
    for c in centers.centers:
        if agent in c.agents:
            return c.agent_ports[c.agents.index(agent)]
    raise KeyError(agent)


def entry(centers) -> str:
    return centers.kamailio


async def rtp_sent_to(ari_url: str, sandbox, caller: str) -> int:
    """What the server sent to the caller's own channel (what the caller heard)."""
    async with aiohttp.ClientSession(headers=sandbox.auth_header) as http:
        async with http.get(f"{ari_url}/channels") as resp:
            channels = await resp.json()
        (channel,) = [c for c in channels if c["caller"]["number"] == caller
                      and c["name"].startswith("PJSIP/sipp")]
        async with http.get(f"{ari_url}/channels/{channel['id']}/rtp_statistics") as resp:
            stats = await resp.json()
    return int(stats["txcount"])


def agent_states(engine: Engine) -> dict[str, dict]:
    out = engine.cli("agents", "list", "--json")
    assert out.returncode == 0, out.stderr
    return {a["id"]: a for a in json.loads(out.stdout)}


async def free(engine: Engine, *agents: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = await asyncio.to_thread(agent_states, engine)
        if all(states[a]["state"] == "available" for a in agents):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"agents not free: {states}")
        await asyncio.sleep(0.3)


async def test_a_seoul_caller_is_served_by_a_busan_agent_after_spill_after(engine, centers, sandbox):
    seoul = centers["seoul"]
    busy, spilled = "01055511001", "01055511002"
    await free(engine, "seoul1", "busan1")
    async with AgentPhone(port_of(centers, "seoul1"), ring_delay=0.3) as seoul1, \
            AgentPhone(port_of(centers, "busan1"), ring_delay=0.3) as busan1:
        first = asyncio.create_task(place_call(LINE, caller=busy, target=entry(centers), voice=20,
                                               hangup_after=25, max_duration=20,
                                               headers={"X-IVR-Center": "seoul"}))
        await seoul1.wait_for_answered(1, timeout=15)
        started = time.monotonic()
        second = asyncio.create_task(place_call(LINE, caller=spilled, target=entry(centers),
                                                voice=20, hangup_after=20, max_duration=20,
                                                headers={"X-IVR-Center": "seoul"}))
        [answered] = await busan1.wait_for_answered(1, timeout=SPILL_AFTER + 15)
        assert answered.caller == spilled
        assert time.monotonic() - started >= SPILL_AFTER - 0.5     # not before spill_after
        await asyncio.sleep(3)
        # Bridged on Seoul's server: the caller hears Busan's agent, the agent hears the caller.
        assert await rtp_sent_to(seoul.base_url, seoul, spilled) > 20
        [ended] = await busan1.wait_for_ended(1, timeout=30)
        assert ended.rtp_packets_received > 20, ended.describe()
        results = await asyncio.gather(first, second)
    assert all(r.answered for r in results), [r.describe() for r in results]
    rec = records(engine)[masked(spilled)]
    assert rec["outcome"] == "agent_connected"
    assert rec["detail"].startswith("busan1 after ")
    assert "served by busan: seoul caller after" in rec["detail"]
    across = [e for e in engine.events("ari.dial_across")]
    assert any(e.get("endpoint") == "PJSIP/busan1@to-busan" and e.get("switch") == "seoul"
               for e in across), across


async def test_an_elderly_busan_caller_who_arrives_last_is_served_first_by_seoul(engine, centers):
    x, y, normal = "01055512001", "01055512002", "01055512003"
    await free(engine, "seoul1", "busan1")
    async with AgentPhone(port_of(centers, "seoul1"), ring_delay=0.3, talk=10) as seoul1, \
            AgentPhone(port_of(centers, "busan1"), ring_delay=0.3, talk=20) as busan1:
        calls = [asyncio.create_task(place_call(LINE, caller=x, target=entry(centers), hangup_after=60,
                                                max_duration=20, headers={"X-IVR-Center": "seoul"}))]
        await seoul1.wait_for_answered(1, timeout=15)
        calls.append(asyncio.create_task(place_call(LINE, caller=y, target=entry(centers),
                                                    hangup_after=60, max_duration=20,
                                                    headers={"X-IVR-Center": "busan"})))
        await busan1.wait_for_answered(1, timeout=15)
        calls.append(asyncio.create_task(place_call(LINE, caller=normal, target=entry(centers),
                                                    hangup_after=25, max_duration=20,
                                                    headers={"X-IVR-Center": "seoul"})))
        await asyncio.sleep(1.5)
        calls.append(asyncio.create_task(place_call(LINE, caller=ELDERLY, target=entry(centers),
                                                    hangup_after=25, max_duration=20,
                                                    headers={"X-IVR-Center": "busan"})))
        # Seoul's agent comes free ~10 s after answering x: both waiting callers have waited
        # past spill_after by then; the elderly one (Busan's) goes first.
        got = await seoul1.wait_for_calls(2, timeout=30)
        assert got[1].caller == ELDERLY, [c.describe() for c in got]
        results = await asyncio.gather(*calls)
    assert all(r.answered for r in results), [r.describe() for r in results]
    recs = records(engine)
    assert recs[masked(ELDERLY)]["reason"] == "bypass: elderly"
    assert "served by seoul: busan caller after" in recs[masked(ELDERLY)]["detail"]
    # the normal caller went next, to whichever agent came free first (Busan's, once eligible)
    assert recs[masked(normal)]["outcome"] == "agent_connected", recs[masked(normal)]


def sandbox_center(action: str, name: str) -> None:
    import subprocess

    from conftest import SANDBOX, sandbox_lock

    with sandbox_lock():
        out = subprocess.run([str(SANDBOX), "center", action, name], capture_output=True, text=True)
    assert out.returncode == 0, f"sandbox.sh center {action} {name}: {out.stdout}\n{out.stderr}"


def set_agent(engine: Engine, agent: str, action: str, *extra: str) -> None:
    out = engine.cli("agents", action, agent, *extra)
    assert out.returncode == 0, f"ivr agents {action} {agent}: {out.stderr}"


async def test_a_center_whose_asterisk_dies_loses_its_calls_and_the_other_carries_on(engine, centers):
    """Busan's Asterisk is killed while a Busan caller waits: the engine records the call lost,
    logs Busan's agent out; new calls through Kamailio are answered on Seoul's server; when
    Busan's Asterisk is back its agent is on duty again as it was (paused, same reason)."""
    stranded, later = "01055513001", "01055513002"
    await free(engine, "seoul1", "busan1")
    await asyncio.to_thread(set_agent, engine, "busan1", "pause", "--reason", "training")
    await asyncio.to_thread(set_agent, engine, "seoul1", "pause", "--reason", "not in this test")
    queued = len(engine.events("acd.queued"))
    waiting = asyncio.create_task(place_call(LINE, caller=stranded, target=entry(centers),
                                             hangup_after=90, max_duration=15,
                                             headers={"X-IVR-Center": "busan"}))
    deadline = time.monotonic() + 15
    while len(engine.events("acd.queued")) == queued:
        assert time.monotonic() < deadline, "the Busan caller never reached the line"
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    killed_at = time.monotonic()
    try:
        await asyncio.to_thread(sandbox_center, "kill", "busan")
        deadline = time.monotonic() + 20
        while not engine.events("ari.switch_down"):
            assert time.monotonic() < deadline, "the engine never took busan for gone"
            await asyncio.sleep(0.2)
        down_after = time.monotonic() - killed_at
        while masked(stranded) not in records(engine):
            assert time.monotonic() < deadline, "the stranded caller was never recorded"
            await asyncio.sleep(0.2)
        assert records(engine)[masked(stranded)]["outcome"] == "lost"
        states = await asyncio.to_thread(agent_states, engine)
        assert states["busan1"]["state"] == "offline", states["busan1"]
        # The engine keeps serving: a new caller through Kamailio (no center asked) is answered
        # on Seoul's server and reaches Seoul's agent.
        await asyncio.to_thread(set_agent, engine, "seoul1", "resume")
        async with AgentPhone(port_of(centers, "seoul1"), ring_delay=0.3, talk=2) as seoul1:
            placed = time.monotonic()
            result = await place_call(LINE, caller=later, target=entry(centers), hangup_after=15,
                                      max_duration=20)
            answered_in = time.monotonic() - placed
            assert result.answered, result.describe()
            got = await seoul1.wait_for_calls(1, timeout=10)
            assert got[0].caller == later
        print(f"\n[centers] busan killed: taken for gone after {down_after:.1f} s; a new call through "
              f"Kamailio answered on seoul {answered_in:.1f} s after dialling")
    finally:
        await asyncio.to_thread(sandbox_center, "start", "busan")
    deadline = time.monotonic() + 30
    while True:
        states = await asyncio.to_thread(agent_states, engine)
        if states["busan1"]["state"] == "paused":
            break
        assert time.monotonic() < deadline, f"busan1 not back: {states['busan1']}"
        await asyncio.sleep(0.5)
    assert states["busan1"]["reason"] == "training"
    waiting.cancel()              # its Asterisk is gone: nobody will ever hang that call up
    await asyncio.gather(waiting, return_exceptions=True)
    await asyncio.to_thread(set_agent, engine, "busan1", "resume")
