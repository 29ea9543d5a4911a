"""Faults under live calls, end to end: the sandbox Asterisk restarted, the database away.

What callers, agents and operators see when a part the engine stands on goes away and comes
back, with real SIPp callers and agent phones:

- Asterisk restarted (``core restart now``) with callers in the menu, one waiting in a queue,
  one ringing an agent and one talking to an agent: the same engine process reconnects, every
  lost call is recorded as lost, no agent is left ringing or on a call, and a call placed as
  soon as Asterisk has booted is served.
- PostgreSQL stopped for ``IVR_E2E_DB_OUTAGE`` seconds (30 unless set; a quick local run may
  use less) while callers keep arriving once a second: every caller is served, every call is
  in the store once it is back (placed == recorded, one record each), and a callback booked
  before the outage is kept, and dialled once.

Each test prints what it measured (calls placed, served, recorded, seconds to recover).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from collections import Counter

import pytest

from engine import REPO, Engine, until, callbacks_config, masked
from ivr.sipp import AgentPhone, CallResult, place_call

pytestmark = pytest.mark.e2e

SANDBOX = REPO / "scripts" / "sandbox.sh"
MAIN = "15771000"              # flows/main.yaml: the language choice, then the main menu
QUEUE_LINE = "15779100"        # tests/e2e/flows/queue.yaml: straight into queue 'general'
CALLBACK_LINE = "15779200"     # tests/e2e/flows/callback.yaml: queue 'general', callback offered
CUSTOMER_PORT = 5090           # the phone a callback rings
MENU_KEYS = "w1.5,1"           # Korean at the language choice: the welcome, then the main menu
DB_OUTAGE = float(os.environ.get("IVR_E2E_DB_OUTAGE", "30"))




def cli_json(engine: Engine, *args: str):
    out = engine.cli(*args)
    assert out.returncode == 0, f"ivr {' '.join(args)} exited {out.returncode}: {out.stderr}"
    return json.loads(out.stdout)


def agents(engine: Engine) -> dict[str, dict]:
    return {a["id"]: a for a in cli_json(engine, "agents", "list", "--json")}


def set_agent(engine: Engine, agent: str, action: str, *extra: str) -> None:
    out = engine.cli("agents", action, agent, *extra)
    assert out.returncode == 0, f"ivr agents {action} {agent}: {out.stderr}"


def by_caller(engine: Engine) -> dict[str, list[dict]]:
    """Every recorded call, grouped by the masked caller number."""
    out: dict[str, list[dict]] = {}
    for rec in engine.calls():
        out.setdefault(rec["caller"], []).append(rec)
    return out


def answered_at(result: CallResult, ended: float) -> float | None:
    """When (``time.monotonic()``) the call was answered: its end less its time after the answer."""
    if not result.answered or result.duration is None:
        return None
    return ended - result.duration


# ---------------------------------------------------------------------------------------------
# Asterisk restarted


def asterisk(command: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    """An Asterisk CLI command through scripts/sandbox.sh (fails while Asterisk is down)."""
    try:
        return subprocess.run([str(SANDBOX), "rx", command], capture_output=True, text=True,
                              cwd=REPO, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, 124, "", f"timed out after {timeout:g} s")


def asterisk_uptime() -> int | None:
    """Seconds since Asterisk started; None while it does not answer."""
    out = asterisk("core show uptime seconds", timeout=5)
    m = re.search(r"System uptime:\s*(\d+)", out.stdout) if out.returncode == 0 else None
    return int(m.group(1)) if m else None


def wait_fully_booted(timeout: float = 60) -> float:
    """Block until Asterisk has fully booted; the ``time.monotonic()`` when it had."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asterisk("core waitfullybooted", timeout=max(1.0, deadline - time.monotonic())).returncode == 0:
            return time.monotonic()
        time.sleep(0.2)             # the control socket is not there yet: Asterisk is starting
    raise AssertionError(f"Asterisk did not finish booting within {timeout:g} s:\n"
                         + subprocess.run([str(SANDBOX), "logs", "30"], capture_output=True,
                                          text=True, cwd=REPO, check=False).stdout)


def restart_asterisk(timeout: float = 60) -> tuple[float, float]:
    """``core restart now`` (calls are hung up, the process starts again); returns the
    ``time.monotonic()`` of the command and of the new Asterisk fully booted."""
    deadline = time.monotonic() + timeout
    while (before := asterisk_uptime()) is None or before < 3:
        # Up for a few seconds, so that the old Asterisk cannot pass for the new one below.
        assert time.monotonic() < deadline, "Asterisk is not running before the restart"
        time.sleep(0.5)
    issued = time.monotonic()
    asterisk("core restart now", timeout=10)   # the CLI connection may drop as it goes down
    deadline = issued + timeout
    while True:
        # The new Asterisk: its uptime counts from after the command.
        uptime = asterisk_uptime()
        if uptime is not None and uptime <= time.monotonic() - issued + 1:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"Asterisk did not come back within {timeout:g} s of 'core restart now'")
        time.sleep(0.2)
    return issued, wait_fully_booted(max(1.0, deadline - time.monotonic()))


@pytest.fixture
def asterisk_kept_running(sandbox):
    """Whatever the test does to Asterisk, it is running and fully booted afterwards."""
    yield sandbox
    try:
        wait_fully_booted(20)          # a restart under way comes back by itself within seconds
    except AssertionError:
        up = subprocess.run([str(SANDBOX), "up"], capture_output=True, text=True, cwd=REPO, check=False)
        assert up.returncode == 0, f"scripts/sandbox.sh up failed:\n{up.stdout}\n{up.stderr}"
        wait_fully_booted()


RING_TIMEOUT = 25
RESTART_ACD = f"""
acd:
  queues:
    general: {{skills: [general], max_wait: 120, on_max_wait: message, announce_every: 10,
              ring_timeout: {RING_TIMEOUT}, wrap_up: 2}}
  agents:
    - {{id: agent1, name: Agent 1, endpoint: PJSIP/agent1, skills: [general], login: true}}
    - {{id: agent2, name: Agent 2, endpoint: PJSIP/agent2, skills: [general], login: true}}
"""


@pytest.fixture
def restart_engine(asterisk_kept_running, tmp_path):
    eng = Engine(tmp_path, asterisk_kept_running, extra_config=RESTART_ACD)
    eng.start()
    yield eng
    rc = eng.stop()
    assert rc == 0, f"the engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"


async def test_asterisk_restarted_under_calls_loses_them_visibly_and_the_next_call_is_served(
        restart_engine):
    engine = restart_engine
    talker, ringer, waiter = "01061000001", "01061000002", "01061000003"
    in_menu = ["01061000004", "01061000005"]
    fresh = "01061000009"
    lost_callers = [talker, ringer, waiter, *in_menu]
    async with AgentPhone(5071, ring_delay=0.5, talk=None) as agent1, \
            AgentPhone(5072, mode="no_answer") as agent2:
        # Only agent1 takes calls at first: the first caller talks to agent1 ...
        await asyncio.to_thread(set_agent, engine, "agent2", "pause", "--reason", "not yet")
        calls = {talker: asyncio.create_task(place_call(QUEUE_LINE, caller=talker, voice=60,
                                                        hangup_after=90, max_duration=20))}
        await agent1.wait_for_answered(1, timeout=20)
        # ... the second rings agent2 (who does not answer), the third waits in the line.
        await asyncio.to_thread(set_agent, engine, "agent2", "resume")
        calls[ringer] = asyncio.create_task(place_call(QUEUE_LINE, caller=ringer, hangup_after=90,
                                                       max_duration=20))
        await agent2.wait_for_calls(1, timeout=20)
        calls[waiter] = asyncio.create_task(place_call(QUEUE_LINE, caller=waiter, hangup_after=90,
                                                       max_duration=20))
        # Two more in the menu: one presses nothing (the language choice), one chooses Korean
        # and hears the main menu.
        calls[in_menu[0]] = asyncio.create_task(place_call(MAIN, caller=in_menu[0], hangup_after=90,
                                                           max_duration=20))
        calls[in_menu[1]] = asyncio.create_task(place_call(MAIN, caller=in_menu[1], keys=MENU_KEYS,
                                                           hangup_after=90, max_duration=20))

        def all_in_progress():
            listed = {rec["caller"]: rec for rec in engine.calls()}
            states = agents(engine)
            return (all(masked(n) in listed and listed[masked(n)]["outcome"] is None for n in lost_callers)
                    and states["agent1"]["state"] == "on_call" and states["agent2"]["state"] == "ringing")

        await until(all_in_progress, 20, "five calls in progress, agent1 on a call and agent2 ringing")

        def hears_main_menu():
            listed = {rec["caller"]: rec["call_id"] for rec in engine.calls()}
            return any(e.get("call_id") == listed.get(masked(in_menu[1])) and e["media"].endswith("/main_menu")
                       for e in engine.events("call.play"))

        await until(hears_main_menu, 20, "the second menu caller to hear the main menu")
        assert not any(t.done() for t in calls.values()), {n: t.result().describe()
                                                           for n, t in calls.items() if t.done()}
        pid = engine.proc.pid

        issued, booted = await asyncio.to_thread(restart_asterisk)

        # A caller who dials as soon as Asterisk has booted is served by the same engine.
        result = await place_call(MAIN, caller=fresh, keys=MENU_KEYS, hangup_after=8, max_duration=20)
        ended = time.monotonic()
        assert result.answered, f"the first call after the restart: {result.describe()}\n{result.errors}"
        first_answer = answered_at(result, ended)
        assert engine.proc.poll() is None and engine.proc.pid == pid, "the engine process did not survive"
        fresh_rec = await until(lambda: next((r for r in engine.calls() if r["caller"] == masked(fresh)
                                              and r["outcome"] is not None), None),
                                15, "the record of the first call after the restart")
        served_first = "main_menu" in fresh_rec["nodes"]

        # Asterisk hangs up the calls it had as it goes down: each caller, and the agent on the
        # call, gets a BYE.
        (cut,) = await agent1.wait_for_ended(1, timeout=10)
        assert cut.ended_by == "remote", cut.describe()
        await asyncio.wait(calls.values(), timeout=15)
        released = sum(t.done() and t.result().ended_by == "remote" for t in calls.values())
        for t in calls.values():
            t.cancel()              # a caller still on the line after that: sipp is stopped
        await asyncio.gather(*calls.values(), return_exceptions=True)

        # No agent is left ringing or on a call (wrap-up is 2 s).
        def settled():
            states = agents(engine)
            return states if all(s["state"] not in ("ringing", "on_call", "wrap_up")
                                 for s in states.values()) else None

        try:
            final_agents = await until(settled, 15, "both agents out of 'ringing' / 'on_call'")
        except AssertionError:
            final_agents = None
        agents_now = await asyncio.to_thread(agents, engine)

    records = by_caller(engine)
    reconnects = engine.events("ari.reconnected")
    outcomes = {n[-4:]: records.get(masked(n), [{}])[-1].get("outcome") for n in lost_callers}
    served_text = "served: reached the main menu" if served_first else "NOT served by the flow"
    print(f"\nAsterisk restart: down and fully booted again in {booted - issued:.1f} s; "
          f"first call answered {first_answer - booted:.1f} s after the boot ({served_text}); "
          f"engine reconnected {len(reconnects)} time(s) {reconnects[-1:]}; "
          f"calls lost: {len(lost_callers)}, recorded as {outcomes}; "
          f"lost callers released with a BYE: {released}/{len(calls)}; "
          f"agents after: { {a: (s['state'], s['reason']) for a, s in agents_now.items()} }")

    # The engine went on: same process, reconnected, the first new caller heard the menu.
    assert served_first, f"the first call after the restart was not served by the flow: {fresh_rec}"
    assert fresh_rec["flow"] == "main" and fresh_rec["outcome"] == "caller_hangup", fresh_rec
    assert reconnects, "the engine logged no reconnection to Asterisk"
    # Every lost call has exactly one record, none left open ...
    for number in lost_callers:
        recs = records.get(masked(number), [])
        assert len(recs) == 1, f"{number}: expected one record, got {recs}"
        assert recs[0]["outcome"] is not None, f"{number}: left without an outcome: {recs[0]}"
    # ... no agent is stuck ringing or on a call, nor paused as if they had not answered ...
    states = {a: (s["state"], s["reason"]) for a, s in agents_now.items()}
    assert final_agents is not None, f"agents left stuck after the restart: {states}"
    assert all(s["state"] == "available" for s in final_agents.values()), (
        f"an agent whose ringing the restart cut is paused as if they had not answered: {states}")
    # ... and each lost call says it was lost, not that the caller hung up or was served.
    wrong = {n[-4:]: (records[masked(n)][0]["outcome"], records[masked(n)][0]["detail"])
             for n in lost_callers
             if records[masked(n)][0]["outcome"] != "lost"
             and not (n == talker and records[masked(n)][0]["outcome"] == "agent_connected")}
    assert not wrong, f"calls cut by the Asterisk restart are not recorded as 'lost': {wrong}"


# ---------------------------------------------------------------------------------------------
# PostgreSQL away


CALLBACKS = callbacks_config("e2e-faults", CUSTOMER_PORT)
BOOK = "w6,1,w5,1"             # take the callback offer, confirm the number read back
RATE = 1.0                     # callers a second
LEAD, TAIL = 5, 5              # seconds of traffic before and after the outage
HOLD = 8                       # each caller hangs up this long after the answer (in the main menu)


@pytest.fixture
async def pg_engine(sandbox, postgres_server, postgres_url, tmp_path):
    eng = Engine(tmp_path, sandbox, extra_config=CALLBACKS, store_url=postgres_url)
    await asyncio.to_thread(eng.start)
    yield eng
    if not postgres_server.running:             # a failed test left it stopped
        await asyncio.to_thread(postgres_server.start)
    rc = await asyncio.to_thread(eng.stop)
    assert rc == 0, f"the engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"


def reservations(engine: Engine) -> list[dict]:
    return cli_json(engine, "callbacks", "list", "--json")


async def test_postgres_away_during_steady_traffic_every_caller_served_and_every_call_recorded(
        pg_engine, postgres_server):
    engine = pg_engine
    customer = "01062009999"      # masked 010****9999: apart from the callers below
    # A callback booked before the outage (the only agent is busy).
    set_agent(engine, "agent1", "pause", "--reason", "on another call")
    booking = await place_call(CALLBACK_LINE, caller=customer, keys=BOOK, max_duration=20, hangup_after=40)
    assert booking.answered and booking.ended_by == "remote", booking.describe()
    # The desk claims it at once (a lease of 20 s, renewed every second) and holds its place in
    # the line: the outage outlasts the lease.
    (booked,) = [r for r in reservations(engine) if r["status"] in ("pending", "claimed")]

    loop = asyncio.get_running_loop()
    placed: dict[str, tuple[float, asyncio.Task[CallResult]]] = {}
    total = int((LEAD + DB_OUTAGE + TAIL) * RATE)
    outage: dict[str, float] = {}

    async def caller(number: str) -> CallResult:
        return await place_call(MAIN, caller=number, keys=MENU_KEYS, hangup_after=HOLD, max_duration=20)

    async def traffic() -> None:
        start = loop.time()
        for i in range(total):
            # Callers arrive on a schedule (the load), one a second.
            await asyncio.sleep(max(0.0, start + i / RATE - loop.time()))
            number = f"0106300{i:04d}"
            placed[number] = (time.monotonic(), asyncio.create_task(caller(number)))

    async def database_away() -> None:
        await asyncio.sleep(LEAD)                # the outage starts with traffic flowing
        await asyncio.to_thread(postgres_server.stop)
        outage["stopped"] = time.monotonic()
        try:
            await asyncio.sleep(DB_OUTAGE)       # the outage lasts this long: the fault itself
        finally:
            await asyncio.to_thread(postgres_server.start)
        outage["back"] = time.monotonic()

    await asyncio.gather(traffic(), database_away())
    # The calls that ended while the database was away: their records waited in the engine.
    backlog = {n for n, (_, t) in placed.items() if t.done()}

    def backlog_written():
        recorded = {r["caller"] for r in engine.calls() if r["outcome"] is not None}
        return time.monotonic() if all(masked(n) in recorded for n in backlog) else None

    written_at = await until(backlog_written, 30, "the calls of the outage to be recorded")
    results = {n: await t for n, (_, t) in placed.items()}

    def everything_recorded():
        recs = [r for r in engine.calls() if r["caller"].startswith("010****")
                and r["outcome"] is not None and r["caller"] != masked(customer)]
        return recs if len(recs) >= len(placed) else None

    recs = await until(everything_recorded, 30, "every call to be recorded")
    during = [n for n, (at, _) in placed.items() if outage["stopped"] <= at <= outage["back"]]
    served = [n for n, r in results.items() if r.answered and r.ended_by == "local"]
    counts = Counter(r["caller"] for r in recs)
    by_number = {r["caller"]: r for r in recs}
    heard_menu = [n for n in placed if "main_menu" in by_number.get(masked(n), {}).get("nodes", [])]
    # Seconds from dialling to the answer (the caller hears ringing while the engine looks them up).
    to_answer = {n: r.elapsed - r.duration for n, r in results.items() if r.duration is not None}
    slowest = max((to_answer[n] for n in during if n in to_answer), default=0.0)
    print(f"\nPostgreSQL away {outage['back'] - outage['stopped']:.1f} s: calls placed {len(placed)} "
          f"({len(during)} during the outage), answered and kept until the caller hung up {len(served)}, "
          f"heard the main menu {len(heard_menu)} (answered within {slowest:.1f} s during the outage), "
          f"recorded {len(recs)} "
          f"(duplicates: {sum(c - 1 for c in counts.values())}); "
          f"backlog of {len(backlog)} call(s) written {written_at - outage['back']:.1f} s "
          f"after the database was back")

    # Every caller, those of the outage included, was answered, heard the menu and was not cut off.
    not_served = {n: results[n].describe() for n in placed if n not in served}
    assert not not_served, f"callers not served: {not_served}"
    assert sorted(heard_menu) == sorted(placed), f"did not reach the main menu: {set(placed) - set(heard_menu)}"
    assert slowest < 5, f"callers of the outage waited up to {slowest:.1f} s for the answer"
    # Every call is in the store once, and as what it was.
    assert len(recs) == len(placed) and max(counts.values()) == 1, counts
    assert {r["outcome"] for r in recs} == {"caller_hangup"}, Counter(r["outcome"] for r in recs)
    assert not engine.events("call.record_lost") and not engine.events("engine.records_lost")

    # The reservation booked before the outage is still there, once, and is dialled once.
    (kept,) = reservations(engine)
    assert (kept["id"], kept["attempts"]) == (booked["id"], 0) and kept["status"] in ("pending", "claimed"), kept
    async with AgentPhone(CUSTOMER_PORT, keys="1", keys_after=1.0, talk=None) as phone, \
            AgentPhone(5071, ring_delay=0.5, talk=2) as agent:
        await asyncio.to_thread(set_agent, engine, "agent1", "resume")
        await agent.wait_for_ended(1, timeout=30)
        done = await until(lambda: [r for r in reservations(engine) if r["id"] == booked["id"]
                                    and r["status"] not in ("pending", "claimed")], 20,
                           "the reservation to be finished")
        assert [(r["status"], r["attempts"]) for r in done] == [("done", 1)], done
        assert len(phone.calls) == 1, [c.describe() for c in phone.calls]
    assert len(reservations(engine)) == 1
