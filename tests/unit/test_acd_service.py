"""The queue service on a switch in memory: callers wait, agents are rung, calls are bridged."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, AgentState, QueueSpec
from ivr.acd.service import QueueService
from ivr.call import CallRecord
from ivr.prompts import load_catalogue
from ivr.testing.fake_switch import FakeSwitch, LiveCall, Phone

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(REPO / "prompts" / "catalog.yaml")
_ids = itertools.count(1)


def agents(*names: str, skills=("general",)) -> list[AgentSpec]:
    return [AgentSpec(id=n, name=n, endpoint=f"PJSIP/{n}", skills=frozenset(skills)) for n in names]


def service(phones: dict[str, Phone], *queues: QueueSpec, agent_specs=None, login=()) -> QueueService:
    queues = queues or (QueueSpec(name="general", skills=frozenset({"general"}), ring_timeout=0.3,
                                  wrap_up=0.3, max_wait=30, announce_every=30),)
    specs = {q.name: q for q in queues}
    acd = Acd(specs, agent_specs if agent_specs is not None else agents(*phones))
    svc = QueueService(acd, specs, FakeSwitch({f"PJSIP/{n}": p for n, p in phones.items()}),
                       CATALOGUE, tick=0.05)
    for name in login:
        acd.login(name, svc.clock())
    return svc


class Line:
    """One caller in a queue: the call, its record and the task carrying it."""

    def __init__(self, svc: QueueService, queue="general", priority=None, number=None) -> None:
        n = next(_ids)
        self.call = LiveCall(f"call-{n}", number or f"0101234{n:04d}")
        self.record = CallRecord(self.call.id, self.call.caller_number, "15771000")
        self.task = asyncio.create_task(
            svc.queue_handoff(self.call, self.record, queue, priority, "test", language="ko"))

    async def done(self, timeout=5.0) -> CallRecord:
        await asyncio.wait_for(self.task, timeout)
        return self.record


async def until(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


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


async def test_an_elderly_caller_who_arrives_last_is_connected_first(running):
    svc = await running(service({"agent1": Phone()}, login=["agent1"]))
    svc.acd.pause("agent1", "break", svc.clock())          # on a break while the line fills
    first, second = Line(svc), Line(svc)
    elderly = Line(svc, priority="elderly")
    await until(lambda: len(svc.acd.waiting("general")) == 3)
    assert [w.call_id for w in svc.acd.waiting("general")][0] == elderly.call.id
    svc.acd.resume("agent1", svc.clock())
    leg = await svc.switch.answered("PJSIP/agent1")
    assert leg.caller_number == elderly.call.caller_number     # the agent sees who is calling
    await until(lambda: elderly.record.outcome == "agent_connected")
    assert first.record.outcome is None and second.record.outcome is None
    for line in (first, second):
        line.call.hang_up()
    leg.hang_up()
    await elderly.done()


async def test_caller_and_agent_are_bridged_and_both_legs_end_together(running):
    svc = await running(service({"agent1": Phone()}, login=["agent1"]))
    line = Line(svc)
    leg = await svc.switch.answered("PJSIP/agent1")
    await until(lambda: line.record.outcome == "agent_connected")
    (conversation,) = [b for b in svc.switch.bridges if b.kind == "mixing"]
    assert conversation.members == {line.call.id, leg.id}
    holding = [b for b in svc.switch.bridges if b.kind == "holding"]
    assert all(line.call.id not in b.members for b in holding)
    leg.hang_up()                                   # the agent hangs up first
    rec = await line.done()
    assert line.call.hung_up and line.call.hung_up_by_ivr
    assert conversation.destroyed
    assert rec.detail.startswith("agent1 after")
    assert svc.acd.agent("agent1").state == AgentState.WRAP_UP


async def test_an_agent_who_does_not_answer_is_paused_and_the_call_goes_to_the_next(running):
    svc = await running(service({"agent1": Phone(answers=False), "agent2": Phone(answer_after=0.1)},
                                login=["agent1"]))
    line = Line(svc)
    await until(lambda: svc.switch.rings() == ["PJSIP/agent1"])
    svc.acd.login("agent2", svc.clock())           # agent2 logs in while agent1 rings
    leg = await svc.switch.answered("PJSIP/agent2", timeout=5)
    # agent1 rang out first (paused, with the reason); then the call went to agent2
    assert svc.switch.rings() == ["PJSIP/agent1", "PJSIP/agent2"]
    await until(lambda: line.record.outcome == "agent_connected")
    assert svc.acd.agent("agent1").state == AgentState.PAUSED
    assert svc.acd.agent("agent1").reason == "no answer"
    leg.hang_up()
    await line.done()


async def test_a_ringing_agent_is_never_offered_a_second_call(running):
    svc = await running(service({"agent1": Phone(answer_after=0.2)}, login=["agent1"]))
    one, two = Line(svc), Line(svc)
    leg = await svc.switch.answered("PJSIP/agent1")
    assert svc.switch.rings() == ["PJSIP/agent1"]
    await until(lambda: one.record.outcome == "agent_connected")
    assert two.record.outcome is None
    leg.hang_up()
    await one.done()
    two.call.hang_up()
    await two.done()


async def test_a_caller_who_hangs_up_while_waiting_leaves_the_line_at_once(running):
    svc = await running(service({"agent1": Phone()}))
    svc.acd.login("agent1", svc.clock())
    svc.acd.pause("agent1", "meeting", svc.clock())
    first, second = Line(svc), Line(svc)
    await until(lambda: len(svc.acd.waiting("general")) == 2)
    first.call.hang_up()
    rec = await first.done()
    assert rec.outcome == "abandoned"
    assert [w.call_id for w in svc.acd.waiting("general")] == [second.call.id]
    assert svc.acd.position(second.call.id) == 1
    second.call.hang_up()
    await second.done()


async def test_callers_who_leave_before_their_deadline_leave_nothing_behind(running):
    """A day of callers who hang up while waiting (max_wait an hour): the service keeps no
    bookkeeping for them beyond a bound of those still in line (deadlines are a heap)."""
    queue = QueueSpec(name="general", skills=frozenset({"general"}), max_wait=3600, announce_every=30)
    svc = await running(service({"agent1": Phone()}, queue))
    svc.acd.login("agent1", svc.clock())
    svc.acd.pause("agent1", "meeting", svc.clock())
    stays = Line(svc)
    for _ in range(300):
        line = Line(svc)
        await until(lambda line=line: svc.acd.waiting_call(line.call.id) is not None)
        line.call.hang_up()
        assert (await line.done()).outcome == "abandoned"
    svc.tick()
    assert list(svc.callers) == [stays.call.id]
    assert len(svc._deadlines) <= 2 * len(svc.callers) + 64
    stays.call.hang_up()
    await stays.done()


async def test_a_caller_who_hangs_up_while_the_agent_rings_stops_the_ringing(running):
    svc = await running(service({"agent1": Phone(answer_after=5)}, login=["agent1"]))
    line = Line(svc)
    await until(lambda: svc.switch.rings() == ["PJSIP/agent1"])
    line.call.hang_up()
    await line.done()
    await until(lambda: ("ring_stopped", "PJSIP/agent1") in svc.switch.log)
    assert svc.acd.agent("agent1").state == AgentState.AVAILABLE


async def test_wrap_up_delays_the_agents_next_call(running):
    queue = QueueSpec(name="general", skills=frozenset({"general"}), ring_timeout=1, wrap_up=0.5,
                      max_wait=30, announce_every=30)
    svc = await running(service({"agent1": Phone()}, queue, login=["agent1"]))
    one = Line(svc)
    leg = await svc.switch.answered("PJSIP/agent1")
    await until(lambda: one.record.outcome == "agent_connected")
    two = Line(svc)
    loop = asyncio.get_running_loop()
    leg.hang_up()
    ended = loop.time()
    await one.done()
    leg2 = await svc.switch.answered("PJSIP/agent1")
    assert loop.time() - ended >= 0.45               # not before the wrap-up is over
    leg2.hang_up()
    await two.done()


async def test_after_max_wait_the_caller_hears_a_polite_message_and_is_hung_up(running):
    queue = QueueSpec(name="general", skills=frozenset({"general"}), max_wait=0.3, announce_every=30)
    svc = await running(service({"agent1": Phone()}, queue))
    svc.acd.login("agent1", svc.clock())
    svc.acd.pause("agent1", "break", svc.clock())     # logged in, but nobody takes the call
    line = Line(svc)
    rec = await line.done()
    assert rec.outcome == "queue_timeout"
    assert line.call.played[-1] == "ko/queue_sorry"
    assert line.call.hung_up_by_ivr
    assert svc.acd.waiting("general") == []


async def test_with_nobody_logged_in_the_caller_is_not_left_waiting(running):
    svc = await running(service({"agent1": Phone()}))
    line = Line(svc)
    rec = await line.done(timeout=2)
    assert rec.outcome == "queue_timeout" and "no agent logged in" in rec.detail
    assert line.call.played[-1] == "ko/queue_sorry"


async def test_overflow_moves_the_caller_to_the_other_queue_keeping_the_place(running):
    general = QueueSpec(name="general", skills=frozenset({"general"}), max_wait=0.3,
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
    svc.acd.resume("agent3", svc.clock())
    leg = await svc.switch.answered("PJSIP/agent3")
    await until(lambda: line.record.outcome == "agent_connected")
    leg.hang_up()
    rec = await line.done()
    assert rec.detail.startswith("agent3")


async def test_waiting_callers_hear_their_place_and_the_wait_as_a_range(running):
    svc = await running(service({"agent1": Phone()}, login=["agent1"]))
    talking = Line(svc)
    leg = await svc.switch.answered("PJSIP/agent1")          # agent1 is on a call
    lines = [Line(svc) for _ in range(3)]
    await until(lambda: len(svc.acd.waiting("general")) == 3)
    heard = [str(p) for p in svc.announcement(lines[2].call.id, "ko")]
    assert heard[0] == "ko/queue_position_pre"
    assert "ko/queue_position_post" in heard
    assert heard[-1] in ("ko/queue_wait_post", "ko/queue_wait_long")
    assert [str(p) for p in svc.announcement(lines[0].call.id, "en")] == ["en/queue_next"]
    svc.acd.pause("agent1", "break", svc.clock())            # nobody to serve: no figure promised
    assert not any("queue_wait" in p.id for p in svc.announcement(lines[2].call.id, "ko"))
    for line in lines:
        line.call.hang_up()
        await line.done()
    leg.hang_up()
    await talking.done()


async def test_an_unknown_queue_is_an_error_the_caller_hears_about(running):
    svc = await running(service({"agent1": Phone()}))
    line = Line(svc, queue="nonexistent")
    rec = await line.done()
    assert rec.outcome == "error" and "nonexistent" in rec.detail
    assert line.call.played == ["ko/queue_sorry"]


async def test_when_the_last_agent_logs_out_the_waiting_callers_are_not_left_there(running):
    svc = await running(service({"agent1": Phone()}, login=["agent1"]))
    svc.acd.pause("agent1", "break", svc.clock())
    line = Line(svc)
    await until(lambda: len(svc.acd.waiting("general")) == 1)
    svc.acd.logout("agent1", svc.clock())
    rec = await line.done(timeout=2)
    assert rec.outcome == "queue_timeout" and "no agent logged in" in rec.detail


async def test_flows_read_the_expected_wait_and_the_line_of_a_queue(running, tmp_path):
    from ivr.flow.loader import load_flows
    from ivr.flow.runner import run_flow
    from ivr.testing.scripted_call import ScriptedCall

    (tmp_path / "f.yaml").write_text("""
flow: f
numbers: ["100"]
entry: check
nodes:
  check:
    branch:
      - if: "queue.general.estimated_wait == None"
        goto: closed
      - if: "queue.general.estimated_wait > 600 or queue.general.waiting > 1"
        goto: long
    else: short
  closed:
    hangup: queue_sorry
  long:
    hangup: queue_wait_long
  short:
    hangup: goodbye
""", encoding="utf-8")
    flows = load_flows([tmp_path], CATALOGUE)
    svc = await running(service({"agent1": Phone()}))

    async def heard() -> str:
        call = ScriptedCall(dialled="100", call_id=f"flow-{next(_ids)}")
        record = CallRecord(call.id, call.caller_number, "100")
        await run_flow(flows, flows.for_number("100"), call, record, catalogue=CATALOGUE, queues=svc)
        return call.prompts[-1]

    assert await heard() == "queue_sorry"                 # nobody logged in
    svc.acd.login("agent1", svc.clock())
    assert svc.queue_variable("queue.general.agents_available") == 1
    assert await heard() == "goodbye"                     # an agent is free: no wait
    svc.acd.pause("agent1", "break", svc.clock())
    svc.acd.resume("agent1", svc.clock())
    lines = [Line(svc) for _ in range(3)]
    await until(lambda: svc.queue_variable("queue.general.waiting") >= 2)
    assert await heard() == "queue_wait_long"
    for line in lines:
        line.call.hang_up()
    await asyncio.gather(*(line.task for line in lines), return_exceptions=True)


def test_a_flow_naming_a_queue_variable_that_does_not_exist_is_an_error_at_load(tmp_path):
    from ivr.errors import FlowError
    from ivr.flow.loader import load_flows

    (tmp_path / "f.yaml").write_text("""
flow: f
numbers: ["100"]
entry: check
nodes:
  check:
    branch:
      - if: "queue.general.estimated_wiat > 60"
        goto: bye
    else: bye
  bye:
    hangup: goodbye
""", encoding="utf-8")
    with pytest.raises(FlowError) as err:
        load_flows([tmp_path], CATALOGUE)
    assert "queue.general.estimated_wiat" in str(err.value.problems[0])
