"""Two engines on one PostgreSQL store, end to end: the active one is killed, the standby takes over.

Engine A and engine B are two ``ivr run`` processes on the same config (each with its own
admin port and callbacks owner) and the same PostgreSQL database, in front of the sandbox
Asterisk.  A holds the engine lease and serves; B waits for the lease and does not connect to
Asterisk at all (one WebSocket per Stasis application: a second one would take the
application over).  With a caller talking to agent1, two callers waiting behind a paused
agent2, and a reservation due (claimed by A, waiting for an agent in the line), A is killed
with SIGKILL.  What callers, agents and operators see:

- B is active and ready (connected to ARI, first reconciliation done) within 5 s of the kill
  (printed);
- a call placed during the take-over gap rings (the dialplan tries ``Stasis()`` again every
  second) and is answered by the flow once B is connected, not turned away;
- the conversation is not cut: the agent's phone keeps receiving the caller's sound and sees
  no BYE until the caller hangs up, at the end of the test;
- the waiting callers are served in their original order once the supervisor resumes agent2;
- the reservation is dialled exactly once (the customer's phone rings once) and ends done,
  by B, without waiting for A's claim on it to lapse (``callbacks.lease``, two minutes here):
  the engine holding the lease is the only one dialling, so it releases a dead engine's claims
  at start-up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import urllib.request

import pytest

from engine import Engine, until, masked
from ivr.sipp import AgentPhone, place_call

pytestmark = pytest.mark.e2e

QUEUE_LINE = "15779100"        # tests/e2e/flows/queue.yaml: straight into queue 'general'
CALLBACK_LINE = "15779200"     # tests/e2e/flows/callback.yaml: queue 'general', callback offered at once
MAIN = "15771000"              # flows/main.yaml: the language choice first
CUSTOMER_PORT = 5090
BOOK = "w6,1,w5,1"             # take the callback offer, confirm the number read back
CLAIM_LEASE = 120              # callbacks.lease: how long A's claim on the reservation would outlive A
TALKER, FIRST, SECOND, CUSTOMER, GAP = (
    "01066000001", "01066000002", "01066000003", "01066000004", "01066000005")
TALK_FOR = 55                  # seconds the talker talks after the answer: past every check below


def config(owner: str) -> str:
    return f"""
engine: {{shutdown_grace: 5}}
acd:
  queues:
    general: {{max_wait: 300, on_max_wait: message, announce_every: 30, ring_timeout: 6, wrap_up: 2}}
  agents:
    - {{id: agent1, name: Agent 1, endpoint: PJSIP/agent1, login: true}}
    - {{id: agent2, name: Agent 2, endpoint: PJSIP/agent2, login: true}}
callbacks:
  owner: {owner}
  poll: 1
  lease: {CLAIM_LEASE}
  ring_timeout: 6
  max_attempts: 2
  retry_delay: 30
  caller_id: "15771000"
  endpoint: "PJSIP/sipp/sip:{{national}}@127.0.0.1:{CUSTOMER_PORT}"
  hours: {{mon: ["00:00-23:59"], tue: ["00:00-23:59"], wed: ["00:00-23:59"], thu: ["00:00-23:59"],
          fri: ["00:00-23:59"], sat: ["00:00-23:59"], sun: ["00:00-23:59"]}}
"""


def cli_json(engine: Engine, *args: str):
    out = engine.cli(*args)
    assert out.returncode == 0, f"ivr {' '.join(args)}: {out.stderr}"
    return json.loads(out.stdout)


def supervisor(engine: Engine, action: str, agent: str, *extra: str) -> None:
    out = engine.cli("agents", action, agent, *extra)
    assert out.returncode == 0, f"ivr agents {action} {agent}: {out.stderr}"


def waiting(engine: Engine) -> int:
    """Callers waiting in queue 'general', on the wallboard."""
    req = urllib.request.Request(f"http://127.0.0.1:{engine.admin_port}/api/queues",
                                 headers={"Authorization": f"Bearer {engine.admin_token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)["queues"]["general"]["waiting"]


def open_reservations(engine: Engine) -> list[dict]:
    return [r for r in cli_json(engine, "callbacks", "list", "--json") if r["status"] in ("pending", "claimed")]


def at(event: dict) -> float:
    return dt.datetime.fromisoformat(event["timestamp"]).timestamp()


@pytest.fixture
async def engines(sandbox, postgres_url, tmp_path):
    a = Engine(tmp_path / "a", sandbox, extra_config=config("engine-a"), store_url=postgres_url)
    b = Engine(tmp_path / "b", sandbox, extra_config=config("engine-b"), store_url=postgres_url)
    for eng in (a, b):
        eng.workdir.mkdir()
    await asyncio.to_thread(a.start)
    await asyncio.to_thread(b.start, until="engine.standby")
    yield a, b
    rc = await asyncio.to_thread(b.stop)
    assert rc == 0, f"engine B did not stop cleanly (exit {rc}):\n{b.log_text()[-3000:]}"
    await asyncio.to_thread(a.stop)                  # killed by the test: only its proxy is left


@pytest.mark.timeout(180)
async def test_the_standby_takes_over_a_killed_engine_and_no_caller_notices(engines, sandbox):
    a, b = engines
    began = time.monotonic()
    await asyncio.to_thread(supervisor, a, "pause", "agent2", "--reason", "team meeting")
    async with AgentPhone(5071, ring_delay=0.5, talk=None) as phone1, \
            AgentPhone(5072, ring_delay=0.5, talk=2) as phone2, \
            AgentPhone(CUSTOMER_PORT, keys="1", keys_after=1.0, talk=None) as customer:
        # A caller talking to agent1 (the caller speaks all along: agent1 hears it).
        talker = asyncio.create_task(place_call(QUEUE_LINE, caller=TALKER, voice=TALK_FOR + 5,
                                                hangup_after=TALK_FOR, max_duration=20))
        await phone1.wait_for_answered(1, timeout=20)
        # Two callers waiting, in this order, then a third who books a callback.
        first = asyncio.create_task(place_call(QUEUE_LINE, caller=FIRST, hangup_after=120, max_duration=20))
        await until(lambda: waiting(a) == 1, 15, "the first caller in line")
        second = asyncio.create_task(place_call(QUEUE_LINE, caller=SECOND, hangup_after=120, max_duration=20))
        await until(lambda: waiting(a) == 2, 15, "the second caller in line")
        booking = await place_call(CALLBACK_LINE, caller=CUSTOMER, keys=BOOK, max_duration=20, hangup_after=40)
        assert booking.answered and booking.ended_by == "remote", booking.describe()
        (reservation,) = await until(lambda: [r for r in open_reservations(a) if r["status"] == "claimed"
                                              and r["claimed_by"] == "engine-a"], 10,
                                     "the reservation claimed by engine A")
        # B has waited all along without a word to Asterisk.
        assert b.proc.poll() is None and not b.events("engine.connecting"), b.log_text()[-2000:]
        assert b.proxy.connections == 0, "the standby connected to ARI while A was active"
        assert len(b.events("engine.standby")) == 1 and not b.events("engine.active")
        heard_before = phone1.calls[0].rtp_packets_received or 0

        killed_at = time.time()
        await asyncio.to_thread(a.crash)                # SIGKILL: no goodbye, no release
        gap_placed = time.time()
        gap = asyncio.create_task(place_call(MAIN, caller=GAP, hangup_after=4, max_duration=20))

        (ready,) = await until(lambda: b.events("engine.ready"), 15, "engine B ready")
        (active,) = b.events("engine.active")
        took_over, ready_after = at(active) - killed_at, at(ready) - killed_at
        print(f"\n[fail-over] A SIGKILLed: B holds the lease {took_over:.2f} s later, connected to ARI "
              f"and reconciled (engine.ready) {ready_after:.2f} s after the kill "
              f"(lease_ttl 3 s, standby waited {active['waited']:.1f} s in all)")
        assert ready_after < 5, f"B was ready {ready_after:.2f} s after the kill"
        assert gap_placed < at(b.events("engine.connecting")[0]), "the gap call came after B connected"

        # The supervisor (now on B) resumes agent2: the waiting callers in their order.
        states = {x["id"]: x for x in cli_json(b, "agents", "list", "--json")}
        assert states["agent2"]["state"] == "paused" and states["agent1"]["state"] == "on_call", states
        await asyncio.to_thread(supervisor, b, "resume", "agent2")

        # The call placed in the gap rang until B was there, and the flow answered it.
        gap_result = await gap
        assert gap_result.answered and gap_result.ended_by == "local", gap_result.describe()
        gap_record = await until(lambda: [r for r in b.calls() if r["caller"] == masked(GAP)
                                          and r["outcome"] is not None], 15, "the gap call's record")
        assert gap_record[0]["flow"] == "main" and "choose_language" in gap_record[0]["nodes"], gap_record
        assert gap_record[0]["outcome"] == "caller_hangup", gap_record

        served = await phone2.wait_for_answered(2, timeout=30)
        assert [c.caller for c in served[:2]] == [FIRST, SECOND], [c.describe() for c in served]

        # The reservation A held: dialled once, by B, well before A's claim would have lapsed.
        rung = await customer.wait_for_ended(1, timeout=CLAIM_LEASE - 60)
        assert time.time() - killed_at < CLAIM_LEASE / 2, "dialled only once A's claim lapsed"
        assert rung[0].keys_sent == "1", rung[0].describe()
        done = await until(lambda: [r for r in cli_json(b, "callbacks", "list", "--json")
                                    if r["id"] == reservation["id"] and r["status"] not in ("pending", "claimed")],
                           20, "the reservation finished")
        assert [(r["status"], r["attempts"], r["claimed_by"]) for r in done] == [("done", 1, "engine-b")], done

        # All along, the conversation went on: no BYE, and agent1 kept hearing the caller.
        assert not phone1.calls[0].ended, phone1.calls[0].describe()
        assert not talker.done(), talker.result().describe()
        heard_after = phone1.calls[0].rtp_packets_received or 0
        assert heard_after - heard_before > 50 * (time.time() - killed_at) * 0.8, (heard_before, heard_after)
        talk_left = TALK_FOR - (time.time() - phone1.calls[0].answered_at)
        assert talk_left > 0, "the checks outlasted the talker's call: raise TALK_FOR"
        result = await talker
        ended = await phone1.wait_for_ended(1, timeout=10)
        assert ended[0].ended_by == "remote" and result.ended_by == "local", (ended[0].describe(), result.describe())
        assert len(customer.calls) == 1, [c.describe() for c in customer.calls]
        assert len(phone1.calls) == 1, [c.describe() for c in phone1.calls]
    for task in (first, second):
        r = await task
        assert r.answered and r.ended_by == "remote", r.describe()
    records = {r["caller"]: r for r in b.calls() if r["outcome"] is not None}
    for number in (TALKER, FIRST, SECOND):
        assert records[masked(number)]["outcome"] == "agent_connected", records.get(masked(number))
    print(f"[fail-over] callers kept: talking 1/1, waiting 2/2 in order, reservation dialled "
          f"{len(customer.calls)} time(s), gap call answered {gap_result.elapsed - gap_result.duration:.1f} s "
          f"after dialling; test took {time.monotonic() - began:.0f} s")
