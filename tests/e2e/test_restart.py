"""The engine killed with SIGKILL and started again on the same config and store, end to end.

Real SIPp callers and agent phones on the sandbox Asterisk; the engine is killed (no goodbye:
the calls stay in Asterisk, in Stasis, with no engine listening) and ``ivr run`` is started
again on the same ivr.yaml and store.  What callers, agents and operators see afterwards:

- a caller waiting behind agents a supervisor paused: the agents are still paused and nobody
  is rung; the caller keeps the place in line (a newcomer waits behind) and the wait counts
  from the first arrival;
- a caller talking to an agent: the conversation goes on (both legs up, in one bridge, sound
  both ways) and when the caller hangs up the agent goes through wrap-up to available;
- a caller in the menu: the flow starts again from its entry (the documented safe point) and
  the caller finishes the call with keys; the record says the call was resumed;
- a caller ringing an agent who does not answer: back in line at the same place, offered to
  an agent who is available; the ring the killed engine left is stopped;
- callers in the callback dialog: one whose reservation was stored ends as booked (the
  reservation kept once), one still deciding goes back into the line at the place and is not
  offered the callback again.

Each test prints what it measured: seconds from the restart command to the engine ready,
seconds until the first re-adopted call was handled, calls kept and calls lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import re
import time
import urllib.request
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from engine import Engine, until, callbacks_config, masked

from ivr.sipp import AgentPhone, place_call

pytestmark = pytest.mark.e2e


QUEUE_LINE = "15779100"        # tests/e2e/flows/queue.yaml: straight into queue 'general'
MAIN = "15771000"              # flows/main.yaml: language choice, welcome, main menu (0: agent)
RING_TIMEOUT = 6
WRAP_UP = 3
ACD = f"""
acd:
  queues:
    general: {{skills: [general], max_wait: 180, on_max_wait: message, announce_every: 10,
              ring_timeout: {RING_TIMEOUT}, wrap_up: {WRAP_UP}}}
  agents:
    - {{id: agent1, name: Agent 1, endpoint: PJSIP/agent1, skills: [general], login: true}}
    - {{id: agent2, name: Agent 2, endpoint: PJSIP/agent2, skills: [general], login: true}}
"""
ELDERLY, ELDERLY_NEWCOMER = "01070000081", "01070000082"
TODAY = dt.datetime.now(ZoneInfo("Asia/Seoul")).date()
RESUMED = "resumed after an engine restart"


@pytest.fixture
def engine(sandbox, tmp_path):
    eng = Engine(tmp_path, sandbox, extra_config=ACD)
    eng.start()
    registry = tmp_path / "callers.csv"
    registry.write_text(f"phone,birth_date\n{ELDERLY},{TODAY.year - 81}-03-01\n"
                        f"{ELDERLY_NEWCOMER},{TODAY.year - 77}-05-01\n", encoding="utf-8")
    out = eng.cli("callers", "import", str(registry))
    assert out.returncode == 0, out.stderr
    yield eng
    rc = eng.stop()
    assert rc == 0, f"the restarted engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"


# -- what operators see ------------------------------------------------------------------------

def api(engine: Engine, path: str) -> Any:
    """GET the admin API (the wallboard's and the supervisors' view)."""
    req = urllib.request.Request(f"http://127.0.0.1:{engine.admin_port}/api/{path}",
                                 headers={"Authorization": f"Bearer {engine.admin_token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


def agents(engine: Engine) -> dict[str, dict]:
    """``ivr agents list --json``, by agent id."""
    out = engine.cli("agents", "list", "--json")
    assert out.returncode == 0, f"ivr agents list: {out.stderr}"
    return {a["id"]: a for a in json.loads(out.stdout)}


def agent_states(engine: Engine) -> dict[str, str]:
    return {a["id"]: a["state"] for a in api(engine, "agents")}


def line(engine: Engine) -> dict:
    """Queue 'general' on the wallboard: callers waiting, the oldest wait."""
    return api(engine, "queues")["queues"]["general"]


def supervisor(engine: Engine, action: str, agent: str, *extra: str) -> None:
    out = engine.cli("agents", action, agent, *extra)
    assert out.returncode == 0, f"ivr agents {action} {agent}: {out.stderr}"


def record_of(engine: Engine, number: str) -> dict | None:
    """The latest record of ``number``'s call once it has ended (``ivr calls list --json``)."""
    recs = [r for r in engine.calls() if r["caller"] == masked(number)]
    return recs[0] if recs and recs[0]["outcome"] is not None else None


def queue_events(engine: Engine, call_id: str) -> list[tuple[str, str | None]]:
    out = engine.cli("calls", "show", call_id, "--json")
    assert out.returncode == 0, out.stderr
    return [(e["kind"], e["agent_id"]) for e in json.loads(out.stdout)["events"]]




def in_line_since(detail: str) -> int:
    """The wait in an ``agent_connected`` record: "agent1 after 23 s in line" -> 23."""
    m = re.search(r"after (\d+) s in line", detail)
    assert m, f"the record does not say how long the caller waited: {detail!r}"
    return int(m.group(1))


# -- the restart and its figures ---------------------------------------------------------------

@dataclasses.dataclass
class Restart:
    """One SIGKILL and start: when the restart was asked for (wall clock and monotonic) and
    how long the engine took to be ready."""

    asked_wall: float
    asked: float
    ready_after: float

    def first_handled(self, engine: Engine) -> float | None:
        """Seconds from the restart command until the new engine handled its first re-adopted
        call: a caller back in line, a conversation paired again, a flow started again."""
        for ev in engine.events():
            name = ev.get("event")
            if name in ("acd.resumed_waiting", "acd.resumed_talk") or (
                    name == "call.started" and ev.get("adopted")):
                at = dt.datetime.fromisoformat(ev["timestamp"])
                return at.timestamp() - self.asked_wall
        return None

    def report(self, scenario: str, engine: Engine, *, kept: int, lost: int, more: str = "") -> None:
        first = self.first_handled(engine)
        handled = "no re-adopted call handled" if first is None else \
            f"first re-adopted call handled {first:.1f} s after the command"
        print(f"\n[engine SIGKILL + restart: {scenario}] ready {self.ready_after:.1f} s after the "
              f"restart command; {handled}; calls kept {kept}, lost {lost}{'; ' + more if more else ''}")


async def kill_and_restart(engine: Engine) -> Restart:
    """SIGKILL the engine and run it again on the same config and store, as an operator would."""
    pid = engine.proc.pid
    await asyncio.to_thread(engine.crash)
    asked_wall, asked = time.time(), time.monotonic()
    await asyncio.to_thread(engine.start_again)
    assert engine.proc.pid != pid
    return Restart(asked_wall, asked, time.monotonic() - asked)


async def ari_get(sandbox, path: str) -> Any:
    async with aiohttp.ClientSession(headers=sandbox.auth_header) as http, \
            http.get(f"{sandbox.base_url}/{path}") as resp:
        assert resp.status == 200, f"GET /ari/{path}: {resp.status}"
        return await resp.json()


async def conversation(sandbox, caller: str, agent: str, timeout: float = 5) -> tuple[int, int]:
    """The caller's leg and the agent's leg, up and in one bridge (the engine joins them just
    after the agent answers: allowed ``timeout`` seconds): ``(RTP packets Asterisk sent to the
    caller, to the agent)`` so far; AssertionError when they are not bridged by then."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await _bridged(sandbox, caller, agent)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _bridged(sandbox, caller: str, agent: str) -> tuple[int, int]:
    channels = await ari_get(sandbox, "channels")
    legs = {c["id"]: c for c in channels}
    mine = [c for c in channels if c["caller"]["number"] == caller and not c["name"].startswith("PJSIP/agent")]
    theirs = [c for c in channels if c["name"].startswith(f"PJSIP/{agent}-")]
    assert len(mine) == 1 and len(theirs) == 1, f"caller's and {agent}'s legs: {[c['name'] for c in channels]}"
    bridges = await ari_get(sandbox, "bridges")
    together = [b for b in bridges if {mine[0]["id"], theirs[0]["id"]} <= set(b["channels"])]
    assert together, (f"the caller and {agent} are not in one bridge: "
                      f"{[(b['id'], [legs.get(c, {}).get('name', c) for c in b['channels']]) for b in bridges]}")
    counts = []
    for leg in (mine[0], theirs[0]):
        stats = await ari_get(sandbox, f"channels/{leg['id']}/rtp_statistics")
        counts.append(int(stats["txcount"]))
    return counts[0], counts[1]


# -- 1. waiting behind paused agents -----------------------------------------------------------

async def test_an_elderly_caller_waiting_behind_paused_agents_keeps_place_and_wait_through_a_kill(engine):
    for agent in ("agent1", "agent2"):
        await asyncio.to_thread(supervisor, engine, "pause", agent, "--reason", "team meeting")
    async with AgentPhone(5071, ring_delay=0.5, talk=3) as phone1, \
            AgentPhone(5072, ring_delay=0.5, talk=3) as phone2:
        placed = time.time()
        elderly = asyncio.create_task(place_call(QUEUE_LINE, caller=ELDERLY, hangup_after=120,
                                                 max_duration=20))
        # The supervisor's wallboard: one caller waiting, for a while.
        before = await until(lambda: (q := line(engine))["waiting"] == 1 and q["oldest_wait"] >= 8 and q,
                             25, "the elderly caller to have waited 8 s")

        restart = await kill_and_restart(engine)

        # The agents are still paused, for the supervisor's reason, and nobody was rung.
        states = await asyncio.to_thread(agents, engine)
        assert {a: (s["state"], s["reason"]) for a, s in states.items()} == {
            "agent1": ("paused", "team meeting"), "agent2": ("paused", "team meeting")}, states
        # The caller is back in line, with the wait counted from the first arrival.
        after = await until(lambda: (q := line(engine))["waiting"] == 1 and q, 10,
                            "the elderly caller back in line")
        assert after["oldest_wait"] >= before["oldest_wait"] + restart.ready_after - 1, (before, after)
        # A newcomer (also elderly: same priority) arrives after the restart and waits behind.
        newcomer = asyncio.create_task(place_call(QUEUE_LINE, caller=ELDERLY_NEWCOMER, hangup_after=120,
                                                  max_duration=20))
        await until(lambda: line(engine)["waiting"] == 2, 15, "the newcomer in line")
        assert not phone1.calls and not phone2.calls, "an agent was rung while every agent was paused"
        assert not elderly.done(), elderly.result().describe()

        # The supervisor resumes one agent: the elderly caller who came first is served first.
        await asyncio.to_thread(supervisor, engine, "resume", "agent1")
        served = await phone1.wait_for_answered(1, timeout=15)
        waited = served[0].answered_at - placed
        assert served[0].caller == ELDERLY, [c.describe() for c in served]
        served = await phone1.wait_for_answered(2, timeout=RING_TIMEOUT + WRAP_UP + 15)
        assert served[1].caller == ELDERLY_NEWCOMER, [c.describe() for c in served]
        await phone1.wait_for_ended(2, timeout=15)
        assert not phone2.calls, [c.describe() for c in phone2.calls]
    results = await asyncio.gather(elderly, newcomer)
    assert all(r.answered and r.ended_by == "remote" for r in results), [r.describe() for r in results]

    rec = await until(lambda: record_of(engine, ELDERLY), 10, "the elderly caller's record")
    restart.report("elderly caller waiting, every agent paused", engine,
                   kept=int(rec["outcome"] == "agent_connected"), lost=int(rec["outcome"] != "agent_connected"),
                   more=f"waited {before['oldest_wait']:.0f} s before the kill, served after "
                        f"{rec['detail']!r} (measured {waited:.0f} s)")
    assert rec["outcome"] == "agent_connected" and rec["detail"].startswith("agent1"), rec
    # "after N s in line" counts from the first arrival, not from the restart.
    assert in_line_since(rec["detail"]) >= waited - 2, (rec["detail"], waited)
    assert RESUMED in rec["nodes"], rec["nodes"]
    kinds = queue_events(engine, rec["call_id"])
    assert ("call.connected", "agent1") in kinds, kinds
    second = await until(lambda: record_of(engine, ELDERLY_NEWCOMER), 10, "the newcomer's record")
    assert second["outcome"] == "agent_connected", second


# -- 2. talking to an agent --------------------------------------------------------------------

async def test_a_conversation_goes_on_through_a_kill_and_the_agent_is_freed_with_wrap_up_after(engine, sandbox):
    talker = "01064000001"
    await asyncio.to_thread(supervisor, engine, "pause", "agent2", "--reason", "not in this test")
    talk_for = 30                        # seconds from the answer: well past the restart's settling
    async with AgentPhone(5071, ring_delay=0.5, talk=None) as phone:
        call = asyncio.create_task(place_call(QUEUE_LINE, caller=talker, voice=talk_for + 5,
                                              hangup_after=talk_for, max_duration=20))
        await phone.wait_for_answered(1, timeout=20)
        await until(lambda: agent_states(engine)["agent1"] == "on_call", 10, "agent1 on the call")
        to_caller, to_agent = await conversation(sandbox, talker, "agent1")
        heard_by_agent = phone.calls[0].rtp_packets_received or 0

        restart = await kill_and_restart(engine)

        # The conversation is not ended by the restart: both legs up and bridged, and it
        # outlasts the new engine's settling of what it restored (10 s after ready).
        settled_at = time.monotonic() + 12
        while time.monotonic() < settled_at:
            assert not phone.calls[0].ended, f"the restart ended the agent's call: {phone.calls[0].describe()}"
            assert not call.done(), f"the restart ended the caller's call: {call.result().describe()}"
            await asyncio.sleep(0.5)
        to_caller_after, to_agent_after = await conversation(sandbox, talker, "agent1")
        assert to_caller_after - to_caller > 250, "the caller no longer hears the agent"
        assert to_agent_after - to_agent > 250, "the agent no longer hears the caller"
        assert (phone.calls[0].rtp_packets_received or 0) - heard_by_agent > 250
        state_now = await asyncio.to_thread(agents, engine)
        assert state_now["agent1"]["state"] == "on_call", state_now

        # The caller hangs up: the agent's phone is hung up, then wrap-up, then available.
        result = await call
        ended = await phone.wait_for_ended(1, timeout=10)
        assert ended[0].ended_by == "remote", ended[0].describe()
    assert result.answered and result.ended_by == "local", result.describe()
    seen: list[str] = []

    def available_after_wrap_up() -> bool:
        state = agent_states(engine)["agent1"]
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "available"

    await until(available_after_wrap_up, WRAP_UP + 10, "agent1 available after the wrap-up", interval=0.1)
    assert "wrap_up" in seen, f"agent1 went {seen} (no wrap-up)"
    rec = await until(lambda: record_of(engine, talker), 10, "the talker's record")
    restart.report("caller talking to an agent", engine,
                   kept=int(rec["outcome"] == "agent_connected"), lost=int(rec["outcome"] != "agent_connected"),
                   more=f"agent1 after the call: {' -> '.join(seen)}; record {rec['detail']!r}")
    assert rec["outcome"] == "agent_connected" and rec["detail"].startswith("agent1"), rec


# -- 3. in the menu ----------------------------------------------------------------------------

async def test_a_caller_in_the_menu_starts_the_flow_again_and_finishes_the_call_with_keys(engine):
    caller = "01064000002"
    await asyncio.to_thread(supervisor, engine, "pause", "agent2", "--reason", "not in this test")
    # The caller presses nothing at first (Korean, the welcome, the main menu), then 0 for an
    # agent every 4 s from 30 s on: a 0 in the language choice or the welcome only moves the
    # caller on, the first 0 in the main menu asks for an agent.
    zeros = [(30.0, "0"), *[(4.0, "0")] * 12]
    async with AgentPhone(5071, ring_delay=0.5, talk=3) as phone:
        call = asyncio.create_task(place_call(MAIN, caller=caller, keys=zeros, hangup_after=120,
                                              max_duration=20))

        def in_main_menu() -> str | None:
            ids = {ev["call_id"] for ev in engine.events("call.started") if "call_id" in ev}
            return next((ev["call_id"] for ev in engine.events("call.play")
                         if ev.get("call_id") in ids and ev["media"].endswith("/main_menu")), None)

        call_id = await until(in_main_menu, 30, "the caller to hear the main menu")
        # The engine notes the call's progress in the store in the background: the kill comes
        # once the note of the main menu is there (on a loaded machine it can trail the prompt).
        await until(lambda: any(r["call_id"] == call_id and "main_menu" in r["nodes"]
                                for r in engine.calls()), 10, "the main menu noted in the store")
        restart = await kill_and_restart(engine)

        # The flow starts again from its entry: the language choice first.  (The prompt the
        # killed engine had started plays to its end first: Asterisk finishes it.)
        def heard_again() -> list[str]:
            return [ev["media"].rsplit("/", 1)[-1] for ev in engine.events("call.play")
                    if ev.get("call_id") == call_id]

        first_again = await until(heard_again, 10, "the flow to start again after the restart")
        assert first_again[0] == "choose_language", first_again
        served = await phone.wait_for_answered(1, timeout=60)
        agent_after = time.monotonic() - restart.asked
        assert served[0].caller == caller, served[0].describe()
        await phone.wait_for_ended(1, timeout=15)
        result = await call
    assert result.answered and result.ended_by == "remote", result.describe()
    rec = await until(lambda: record_of(engine, caller), 10, "the menu caller's record")
    restart.report("caller in the main menu", engine,
                   kept=int(rec["outcome"] == "agent_connected"), lost=int(rec["outcome"] != "agent_connected"),
                   more=f"record nodes {rec['nodes']}, heard after the restart {heard_again()}, "
                        f"with an agent {agent_after:.1f} s after the restart command")
    assert rec["call_id"] == call_id
    assert rec["outcome"] == "agent_connected", rec
    nodes = rec["nodes"]
    assert RESUMED in nodes, nodes
    after = nodes[nodes.index(RESUMED) + 1:]
    assert after[:2] == ["start", "choose_language"] and "main_menu" in after and after[-1] == "agent", nodes
    before = nodes[:nodes.index(RESUMED)]
    # What the caller went through before the kill is part of the record too.
    assert "main_menu" in before, f"the record keeps no node from before the kill: {nodes}"


# -- 4. ringing an agent -----------------------------------------------------------------------

async def test_a_caller_ringing_an_agent_when_the_engine_dies_is_back_in_line_and_offered_again(engine):
    ringer = "01064000003"
    await asyncio.to_thread(supervisor, engine, "pause", "agent2", "--reason", "on a break")
    async with AgentPhone(5071, mode="no_answer") as silent, \
            AgentPhone(5072, ring_delay=0.5, talk=3) as phone2:
        placed = time.monotonic()
        call = asyncio.create_task(place_call(QUEUE_LINE, caller=ringer, hangup_after=90, max_duration=20))
        await silent.wait_for_calls(1, timeout=15)
        await until(lambda: agent_states(engine)["agent1"] == "ringing", 5, "agent1 ringing")
        # Back from the break while agent1 rings: agent2 is free when the engine comes back.
        await asyncio.to_thread(supervisor, engine, "resume", "agent2")

        restart = await kill_and_restart(engine)

        back = await until(lambda: (q := line(engine))["waiting"] == 1 and q, 10, "the caller back in line")
        # The ring the killed engine left is stopped at once: nobody answers it into silence.
        stale = (await silent.wait_for_ended(1, timeout=5))[0]
        assert stale.cancelled and stale.ended_at - restart.asked_wall < 3, stale.describe()
        served = await phone2.wait_for_answered(1, timeout=RING_TIMEOUT + 15)
        offered = time.monotonic()
        assert served[0].caller == ringer, served[0].describe()
        await phone2.wait_for_ended(1, timeout=15)
        result = await call
        rings = [c.describe() for c in silent.calls]
    assert result.answered and result.ended_by == "remote", result.describe()
    rec = await until(lambda: record_of(engine, ringer), 10, "the ringer's record")
    states = await asyncio.to_thread(agents, engine)
    restart.report("caller ringing an agent", engine,
                   kept=int(rec["outcome"] == "agent_connected"), lost=int(rec["outcome"] != "agent_connected"),
                   more=f"back in line with {back['oldest_wait']:.0f} s waited, agent2 answered "
                        f"{offered - restart.asked:.1f} s after the restart command; agent1's phone "
                        f"rang {len(rings)} time(s) {rings}, agent1 now {states['agent1']['state']}"
                        f" ({states['agent1']['reason']}); record {rec['detail']!r}")
    assert rec["outcome"] == "agent_connected" and rec["detail"].startswith("agent2"), rec
    assert in_line_since(rec["detail"]) >= offered - placed - 3, (rec["detail"], offered - placed)


# -- 5. in the callback dialog -----------------------------------------------------------------

CALLBACK_LINE = "15779200"     # tests/e2e/flows/callback.yaml: queue 'general', callback offered at once
CALLBACKS = callbacks_config("e2e-restart", 5090)
TAKE_OFFER = "w6,1"            # 1 at the offer (with the first announcement); then nothing
BOOK = "w6,1,w5,1"             # 1 at the offer, 1 to confirm the number read back


@pytest.fixture
def callback_engine(sandbox, tmp_path):
    eng = Engine(tmp_path, sandbox, extra_config=CALLBACKS)
    eng.start()
    yield eng
    rc = eng.stop()
    assert rc == 0, f"the restarted engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"


def open_reservations(engine: Engine) -> list[dict]:
    out = engine.cli("callbacks", "list", "--json")
    assert out.returncode == 0, out.stderr
    return [r for r in json.loads(out.stdout) if r["status"] in ("pending", "claimed")]


def took_the_offer(engine: Engine, number: str) -> bool:
    """The caller's queue events say they left the line for the callback dialog."""
    started = [r for r in engine.calls() if r["caller"] == masked(number)]
    if not started:
        return False
    out = engine.cli("calls", "show", started[0]["call_id"], "--json")
    return out.returncode == 0 and any(e["kind"] == "call.left" and e["detail"] == "callback"
                                       for e in json.loads(out.stdout)["events"])


async def test_callers_in_the_callback_dialog_when_the_engine_dies_are_booked_or_back_in_line(callback_engine):
    engine = callback_engine
    deciding, booked = "01065000001", "01065000002"
    await asyncio.to_thread(supervisor, engine, "pause", "agent1", "--reason", "on another call")
    async with AgentPhone(5071, ring_delay=0.5, talk=3) as phone:
        # One caller takes the offer and is still in the dialog (the number read back, not
        # confirmed) when the engine dies; the other, who came just after, has confirmed and
        # hears "we will call you back": the reservation is stored, the call not yet ended.
        placed = time.time()
        calls = {deciding: asyncio.create_task(place_call(CALLBACK_LINE, caller=deciding, keys=TAKE_OFFER,
                                                          hangup_after=120, max_duration=20))}
        await until(lambda: line(engine)["waiting"] == 1, 10, "the first caller in line")
        calls[booked] = asyncio.create_task(place_call(CALLBACK_LINE, caller=booked, keys=BOOK,
                                                       hangup_after=120, max_duration=20))
        reservation = (await until(lambda: took_the_offer(engine, deciding) and open_reservations(engine),
                                   40, "a reservation stored while the other caller is in the dialog"))[0]
        assert not any(t.done() for t in calls.values()), {n: t.result().describe() for n, t in calls.items()
                                                           if t.done()}

        restart = await kill_and_restart(engine)

        # The booking was finished: that call ends, as booked, and the reservation is kept once.
        ended = await asyncio.wait_for(calls[booked], 15)
        assert ended.answered and ended.ended_by == "remote", ended.describe()
        rec = await until(lambda: record_of(engine, booked), 10, "the booked caller's record")
        assert [(r["id"], r["status"] in ("pending", "claimed")) for r in open_reservations(engine)] == [
            (reservation["id"], True)]
        # The caller still deciding is back in line at the place, served first when the
        # agent is free, and is not offered the callback again.
        await asyncio.to_thread(supervisor, engine, "resume", "agent1")
        served = await phone.wait_for_answered(1, timeout=15)
        waited = served[0].answered_at - placed
        assert served[0].caller == deciding, served[0].describe()
        await phone.wait_for_ended(1, timeout=15)
        result = await calls[deciding]
    assert result.answered and result.ended_by == "remote", result.describe()
    second = await until(lambda: record_of(engine, deciding), 10, "the deciding caller's record")
    kept = int(rec["outcome"] == "callback_booked") + int(second["outcome"] == "agent_connected")
    restart.report("callers in the callback dialog (one booked, one deciding)", engine, kept=kept, lost=2 - kept,
                   more=f"booked: {rec['outcome']} {rec['detail']!r}; deciding: {second['outcome']} "
                        f"{second['detail']!r} (measured {waited:.0f} s)")
    assert rec["outcome"] == "callback_booked" and rec["detail"] == f"general: reservation {reservation['id']}", rec
    assert second["outcome"] == "agent_connected" and in_line_since(second["detail"]) >= waited - 2, second
    after = second["nodes"][second["nodes"].index(RESUMED) + 1:]
    assert after == [], f"the deciding caller went through the flow again: {second['nodes']}"
    offers = [ev for ev in engine.events("call.play") if ev.get("call_id") == second["call_id"]
              and ev["media"].endswith("/callback_offer")]
    assert not offers, "the callback was offered again after the restart"
