"""How each node of a call was left (``CallRecord.exits``), the queue and the wait: what the
journey report's funnel counts.  One exit per node visited, however the call ends."""

from __future__ import annotations

import asyncio

import pytest

from ivr.acd.model import QueueSpec
from ivr.call import CallRecord, NodeExit, Outcome
from ivr.errors import CallEnded
from ivr.flow.runner import finish_exits, run_flow
from ivr.testing.fake_switch import Phone
from ivr.testing.scripted_call import ScriptedCall, hang_up, press, silence
from flow_helpers import catalogue, flowset
from test_acd_service import Line, agents, service, until

MENU = """
flow: menu
numbers: ["100"]
entry: welcome
nodes:
  welcome:
    play: welcome
    next: main
  main:
    menu: main_menu
    options:
      1: billing
      2: ask
      3: care
      0: agent
      9: done
    timeout: 5
    retries: 1
    invalid: invalid_choice
    no_input: no_input
    on_fail: bye
  billing:
    play: payment_methods
    next: bye
  ask:
    gather: ask_birth_date
    into: birth
    digits: 6
    retries: 1
    invalid: invalid_birth_date
    no_input: no_input
    next: bye
  care:
    subflow: care
    next: bye
  agent:
    queue: general
    prompt: connecting_agent
  done:
    return:
  bye:
    hangup: goodbye
"""

CARE = """
flow: care
entry: care_menu
nodes:
  care_menu:
    menu: ltc_menu
    options:
      9: back
      0: care_agent
    on_fail: back
  back:
    return:
  care_agent:
    transfer: from-ivr
    extension: "2000"
"""

BYPASS = """
flow: bypass
numbers: ["100"]
entry: welcome
bypass:
  - if: "caller.age != None and caller.age >= 65"
    queue: general
    priority: elderly
    reason: elderly
nodes:
  welcome:
    hangup: goodbye
"""


@pytest.fixture
def flows(tmp_path):
    return flowset(tmp_path, ("menu.yaml", MENU), ("care.yaml", CARE))


class Queues:
    """A queue service that takes the call and says what came of it."""

    def __init__(self, outcome: Outcome = Outcome.AGENT_CONNECTED) -> None:
        self.outcome = outcome

    async def queue_handoff(self, call, record, queue, priority, reason, language=None, *,
                            callback=None, arrived_at=None):
        record.queue, record.waited = queue, 12.0
        record.end(self.outcome, queue)

    def queue_variable(self, name):
        return None

    async def cancel_callbacks(self, number, queue=None):
        return 0


async def walk(flows, *script, call: ScriptedCall | None = None, record: CallRecord | None = None,
               **kw) -> CallRecord:
    call = call or ScriptedCall(*script, dialled="100")
    record = record or CallRecord(call.id, call.caller_number, call.dialled)
    await run_flow(flows, flows.for_number("100"), call, record, catalogue=catalogue(), **kw)
    assert len(record.exits) == len(record.nodes), (record.nodes, record.exits)
    return record


def path(record: CallRecord) -> list[tuple[str, str]]:
    return list(zip(record.nodes, record.exits, strict=True))


async def test_a_key_then_prompts_then_the_end(flows):
    record = await walk(flows, press("1"))
    assert path(record) == [("welcome", "next"), ("main", "key"), ("billing", "next"),
                            ("bye", "end")]
    assert all(isinstance(e, NodeExit) for e in record.exits)


async def test_tries_used_up_are_timeout_or_invalid_by_the_last_try(flows):
    assert path(await walk(flows, silence(), silence()))[1:] == [("main", "timeout"), ("bye", "end")]
    assert path(await walk(flows, press("7"), press("8")))[1] == ("main", "invalid")
    assert path(await walk(flows, press("7"), silence()))[1] == ("main", "timeout")
    assert path(await walk(flows, silence(), press("7")))[1] == ("main", "invalid")
    # A gather without on_fail: the call ends at the gather.
    record = await walk(flows, press("2"), press("12#"), silence())
    assert path(record)[1:] == [("main", "key"), ("ask", "timeout")]
    assert record.outcome == "retries_exhausted"
    record = await walk(flows, press("2"), silence(), press("12#"))
    assert path(record)[-1] == ("ask", "invalid")
    record = await walk(flows, press("2"), press("850315#"))
    assert path(record)[1:] == [("main", "key"), ("ask", "key"), ("bye", "end")]


async def test_a_subflow_returns_next_and_a_return_from_the_top_ends(flows):
    record = await walk(flows, press("3"), press("9"))
    assert path(record) == [("welcome", "next"), ("main", "key"), ("care", "next"),
                            ("care/care_menu", "key"), ("care/back", "next"), ("bye", "end")]
    record = await walk(flows, press("9"))
    assert path(record)[-1] == ("done", "end") and record.outcome == "completed"


async def test_a_transfer_and_a_queue(flows):
    record = await walk(flows, press("3"), press("0"))
    assert path(record)[-1] == ("care/care_agent", "transfer")
    record = await walk(flows, press("0"), queues=Queues())
    assert path(record)[-1] == ("agent", "queue")
    assert (record.outcome, record.queue, record.waited) == ("agent_connected", "general", 12.0)
    record = await walk(flows, press("0"))          # no queue service: queued, the same exit
    assert path(record)[-1] == ("agent", "queue") and record.outcome == "queued"


async def test_the_caller_hanging_up_anywhere_is_the_exit_of_that_node(flows):
    record = await walk(flows, press("1"), hang_up(during="payment_methods"))
    assert path(record)[-1] == ("billing", "hangup") and record.outcome == "caller_hangup"
    record = await walk(flows, hang_up())
    assert path(record) == [("welcome", "next"), ("main", "hangup")]
    record = await walk(flows, press("0"), hang_up(during="connecting_agent"), queues=Queues())
    assert path(record)[-1] == ("agent", "hangup") and record.queue is None


async def test_a_call_the_switch_loses_or_the_engine_fails(flows):
    class Lost(ScriptedCall):
        async def gather(self, **kw):
            raise CallEnded("Asterisk restarted", reason="lost")

    class Broken(ScriptedCall):
        async def gather(self, **kw):
            raise RuntimeError("boom")

    record = await walk(flows, call=Lost(dialled="100"))
    assert path(record)[-1] == ("main", "lost") and record.outcome == "lost"
    record = await walk(flows, call=Broken(dialled="100"))
    assert path(record)[-1] == ("main", "error") and record.outcome == "error"
    record = await walk(flows, press("7"), press("7"), max_steps=2)   # stopped between nodes
    assert path(record) == [("welcome", "next"), ("main", "invalid")]
    assert record.outcome == "error"


async def test_a_bypass_is_a_node_left_for_the_queue(tmp_path):
    flows = flowset(tmp_path, ("bypass.yaml", BYPASS))
    record = await walk(flows, variables={"caller.age": 80}, queues=Queues())
    assert path(record) == [("bypass", "queue")]
    assert (record.queue, record.reason) == ("general", "bypass: elderly")


async def test_a_call_resumed_after_a_restart_keeps_one_exit_per_node(flows):
    # What the last engine noted: in the menu when it stopped; then the new engine's note.
    record = CallRecord("ch-1", "01012345678", "100", nodes=["welcome", "main"], exits=["next"])
    record.visit("resumed after an engine restart")
    record = await walk(flows, press("1"), record=record)
    assert path(record)[:4] == [("welcome", "next"), ("main", "next"),
                                ("resumed after an engine restart", "next"), ("welcome", "next")]
    # Taken back by the queues instead: the engine closes the record by its outcome.
    for outcome, last in ((Outcome.AGENT_CONNECTED, "queue"), (Outcome.CALLBACK_BOOKED, "queue"),
                          (Outcome.CALLER_HANGUP, "hangup"), (Outcome.LOST, "lost"),
                          (Outcome.COMPLETED, "end")):
        taken = CallRecord("ch-2", "", "100", nodes=["welcome", "agent"], exits=["next"])
        taken.visit("resumed after an engine restart")
        taken.end(outcome)
        finish_exits(taken)
        assert taken.exits == ["next", "next", last]
        finish_exits(taken)                       # once closed, nothing changes
        assert len(taken.exits) == 3


# -- the queue and the wait, as the queue service notes them ---------------------------------------

@pytest.fixture
async def running():
    started = []

    async def start(svc):
        await svc.start()
        started.append(svc)
        return svc

    yield start
    for svc in started:
        await svc.close()


async def test_the_queue_and_the_wait_of_a_caller_an_agent_answered(running):
    svc = await running(service({"agent1": Phone()}))
    svc.acd.login("agent1", svc.clock())
    svc.acd.pause("agent1", "break", svc.clock())
    line = Line(svc)
    await until(lambda: len(svc.acd.waiting("general")) == 1)
    assert (line.record.queue, line.record.waited) == ("general", None)   # in line: no wait yet
    loop = asyncio.get_running_loop()
    joined = loop.time()
    svc.acd.resume("agent1", svc.clock())
    leg = await svc.switch.answered("PJSIP/agent1")
    await until(lambda: line.record.outcome == "agent_connected")
    assert line.record.waited is not None and 0 < line.record.waited <= loop.time() - joined + 0.5
    leg.hang_up()
    rec = await line.done()
    assert rec.queue == "general" and rec.waited == line.record.waited


async def test_the_wait_of_a_caller_who_gave_up_or_timed_out(running):
    queue = QueueSpec(name="general", skills=frozenset({"general"}), max_wait=0.3, announce_every=30)
    svc = await running(service({"agent1": Phone()}, queue))
    svc.acd.login("agent1", svc.clock())
    svc.acd.pause("agent1", "break", svc.clock())
    timed_out = await Line(svc).done()
    assert timed_out.outcome == "queue_timeout" and timed_out.queue == "general"
    assert timed_out.waited is not None and 0.3 <= timed_out.waited < 5
    gone = Line(svc)
    await until(lambda: len(svc.acd.waiting("general")) == 1)
    gone.call.hang_up()
    rec = await gone.done()
    assert rec.outcome == "abandoned" and rec.waited is not None and rec.waited < 0.3


async def test_an_overflow_names_the_last_queue(running):
    general = QueueSpec(name="general", skills=frozenset({"general"}), max_wait=0.2,
                        overflow="backup", on_max_wait="overflow", announce_every=30)
    backup = QueueSpec(name="backup", skills=frozenset({"backup"}), max_wait=30, announce_every=30)
    specs = [*agents("agent1"), *agents("agent3", skills=("backup",))]
    svc = await running(service({"agent1": Phone(), "agent3": Phone()}, general, backup,
                                agent_specs=specs))
    for agent in ("agent1", "agent3"):
        svc.acd.login(agent, svc.clock())
        svc.acd.pause(agent, "break", svc.clock())
    line = Line(svc)
    await until(lambda: [w.call_id for w in svc.acd.waiting("backup")] == [line.call.id])
    assert line.record.queue == "backup"
    svc.acd.resume("agent3", svc.clock())
    leg = await svc.switch.answered("PJSIP/agent3")
    await until(lambda: line.record.outcome == "agent_connected")
    leg.hang_up()
    rec = await line.done()
    assert rec.queue == "backup" and rec.waited is not None and rec.waited >= 0.2


# -- however the call goes: the sample flow under many callers ------------------------------------

async def test_every_call_through_the_sample_flow_has_one_exit_per_node():
    import random

    from flow_helpers import FLOWS
    from ivr.flow.loader import load_flows

    prompts = catalogue()
    sample = load_flows(FLOWS, prompts)
    flow = sample.for_number("15771000")
    rng = random.Random(13)
    ends = set()
    for _ in range(300):
        script = []
        for _ in range(rng.randint(0, 8)):
            pick = rng.random()
            if pick < 0.55:
                script.append(press(rng.choice("0123456789") if rng.random() < 0.8
                                    else f"{rng.randint(0, 999999):06d}#"))
            elif pick < 0.85:
                script.append(silence())
            else:
                script.append(hang_up())
                break
        call = ScriptedCall(*script, dialled="15771000")
        record = CallRecord(call.id, call.caller_number, call.dialled)
        await run_flow(sample, flow, call, record, catalogue=prompts,
                       queues=Queues() if rng.random() < 0.5 else None,
                       variables={"caller.age": rng.choice([None, 30, 80])})
        assert len(record.exits) == len(record.nodes), (script, record.nodes, record.exits)
        assert all(NodeExit(e) for e in record.exits)
        # Only the last node ends the call; every earlier one went on.
        assert all(e in (NodeExit.NEXT, NodeExit.KEY, NodeExit.TIMEOUT, NodeExit.INVALID)
                   for e in record.exits[:-1]), (record.nodes, record.exits)
        ends.add(record.exits[-1])
    assert {NodeExit.QUEUE, NodeExit.HANGUP} <= ends
