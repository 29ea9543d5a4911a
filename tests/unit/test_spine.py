"""The engine's spine: one start-up order, ports between the parts, a defined end for every call.

Over the fake ARI (real HTTP + WebSocket) with the real ``serve``; the queues and the callback
desk with a switch in memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import types
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.acd.service import QueueService
from ivr.app import serve
from ivr.call import CallRecord, Outcome, Prompt
from ivr.callbacks.desk import CallbackDesk
from ivr.callbacks.model import Reservation
from ivr.callbacks.schedule import OpeningHours, RetryPolicy
from ivr.config import load_config
from ivr.errors import CallEnded
from ivr.flow.loader import load_flows
from ivr.flow.runner import run_flow
from ivr.prompts import load_catalogue
from ivr.store import open_store
from ivr.testing.fake_ari import FakeAri
from ivr.testing.fake_switch import FakeSwitch, LiveCall, Phone
from ivr.testing.memory_store import MemoryStore
from ivr.testing.scripted_call import ScriptedCall

from engine_helpers import QUEUE_FLOW, recorded_calls, serving, serving_file, write_engine_config

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(REPO / "prompts" / "catalog.yaml")
ALWAYS = OpeningHours(ZoneInfo("Asia/Seoul"), {d: [(dt.time(0), dt.time(23, 59, 59))] for d in range(7)})


def engine_config(tmp_path: Path, fake: FakeAri, *, acd: bool = True, token: bool = False,
                  callbacks: bool = False) -> Path:
    text = ""
    if acd:
        text += ("acd:\n  queues:\n    general: {max_wait: 60, on_max_wait: message}\n"
                 "  agents:\n    - {id: agent1, name: A, endpoint: PJSIP/agent1}\n")
    if callbacks:
        text += "callbacks: {endpoint: 'PJSIP/{national}@trunk'}\n"
    if token:
        text += "admin: {listen: '127.0.0.1:0', token: secret-token}\n"
    return write_engine_config(tmp_path, fake, flow=QUEUE_FLOW, extra=text)


def engine(tmp_path: Path, fake: FakeAri, **kw):
    return serving_file(engine_config(tmp_path, fake, **kw))


def media_of(fake: FakeAri, channel_id: str) -> list[str]:
    return fake.played(channel_id)


# -- 2. calls before the queues exist ---------------------------------------------------------

async def test_a_caller_left_in_stasis_at_start_up_reaches_the_queues(tmp_path, monkeypatch):
    """Re-adopted by the first reconciliation, the call finds the queues built, even when
    building them is slow (here: the callback desk's first store call): nobody is logged in,
    so the caller hears the queue's apology (not 'queue_hold' and a hang-up)."""
    from ivr.store.sqlite import SqliteStore

    release = SqliteStore.release_claims

    async def slow_release(self, owner):
        await asyncio.sleep(0.5)
        return await release(self, owner)

    monkeypatch.setattr(SqliteStore, "release_claims", slow_release)
    async with FakeAri() as fake:
        channel = fake.add_channel(caller="01012345678", exten="100", state="Up")
        async with engine(tmp_path, fake, callbacks=True) as config:
            await fake.wait_for_request(
                lambda r: r.method == "DELETE" and r.path == f"/channels/{channel['id']}", timeout=5)
        (record,) = await recorded_calls(config)
    assert "sound:ivr/ko/queue_hold" not in media_of(fake, channel["id"])
    assert "sound:ivr/ko/queue_sorry" in media_of(fake, channel["id"])
    assert (record.outcome, record.detail) == ("queue_timeout", "general: no agent logged in")


async def test_a_flow_that_names_a_queue_the_engine_does_not_run_is_said_at_start_up(tmp_path):
    async with FakeAri() as fake:
        with structlog.testing.capture_logs() as logs:
            async with engine(tmp_path, fake, acd=False):
                pass
    (warning,) = [e for e in logs if e["event"] == "acd.not_configured"]
    assert warning["queues_in_flows"] == ["general"]


async def test_shutdown_closes_in_reverse_order_calls_first_admin_before_the_queues(tmp_path):
    async with FakeAri() as fake:
        with structlog.testing.capture_logs() as logs:
            async with engine(tmp_path, fake, token=True):
                pass
    steps = [e["step"] for e in logs if e["event"] == "engine.closing"]
    assert steps == ["calls", "admin", "queues", "queue events", "ari", "engine"]


# -- 13. one catalogue for everyone -------------------------------------------------------------

async def test_a_reload_gives_the_queues_and_the_callbacks_the_new_catalogue(tmp_path):
    from ivr.app import Engine

    async with FakeAri() as fake:
        config = load_config(engine_config(tmp_path, fake), env={})
    flowset = load_flows(list(config.flows), CATALOGUE)
    eng = Engine(config, MemoryStore(), CATALOGUE, flowset)
    svc = QueueService(Acd({}, []), {}, FakeSwitch({}), CATALOGUE)
    desk = CallbackDesk(types.SimpleNamespace(owner="t"), MemoryStore(), svc, svc, svc.switch, CATALOGUE)
    eng.on_catalogue(svc.set_catalogue)
    eng.on_catalogue(desk.set_catalogue)
    assert eng.reload_flows()
    assert eng.catalogue is not CATALOGUE
    assert svc.catalogue is eng.catalogue and desk.catalogue is eng.catalogue


# -- 14. the Call port speaks the caller's world ------------------------------------------------

async def test_after_a_transfer_the_call_ended_as_transferred_not_as_a_hang_up():
    call = ScriptedCall()
    await call.transfer("from-ivr", "200")
    try:
        await call.play([Prompt("goodbye", "ko")])
    except CallEnded as exc:
        assert exc.reason == "transferred"
    else:
        raise AssertionError("a transferred call still played a prompt")


async def test_a_call_the_switch_loses_is_recorded_as_lost_not_as_a_caller_hang_up():
    flows = load_flows([REPO / "flows"], CATALOGUE)

    class LostCall(ScriptedCall):
        async def gather(self, **kw):
            raise CallEnded("the switch restarted", reason="lost")

    call = LostCall(dialled="15771000")
    record = CallRecord(call.id, call.caller_number, call.dialled)
    await run_flow(flows, flows.for_number("15771000"), call, record, catalogue=CATALOGUE)
    assert record.outcome == Outcome.LOST


def test_every_outcome_the_engine_records_is_one_documented_value():
    record = CallRecord("c", "", "100")
    try:
        record.end("hung_up_somehow")
    except ValueError:
        pass
    else:
        raise AssertionError("an outcome outside Outcome was accepted")
    record.end("completed")
    assert record.outcome is Outcome.COMPLETED


# -- 6. an operator's cancel withdraws the reservation from the line --------------------------

def desk_config(**kw):
    base = dict(owner="engine-a", lease=60.0, poll=60.0, ring_timeout=0.2, allow_international=False,
                caller_id="15771000", endpoint="PJSIP/sipp/sip:{national}@127.0.0.1:5090",
                hours=ALWAYS, retry=RetryPolicy(max_attempts=3, delay=dt.timedelta(minutes=10)))
    base.update(kw)
    return types.SimpleNamespace(**base)


class Center:
    """One queue, one agent busy on a call, a callback desk; everything in memory."""

    customer = "PJSIP/sipp/sip:01012345678@127.0.0.1:5090"

    def __init__(self) -> None:
        spec = QueueSpec(name="general", skills=frozenset(), ring_timeout=0.3, wrap_up=0.05,
                         max_wait=60, announce_every=5)
        self.store = MemoryStore()
        self.switch = FakeSwitch({"PJSIP/agent1": Phone(), self.customer: Phone(keys="1")})
        self.service = QueueService(Acd({"general": spec}, [AgentSpec(id="agent1", name="A",
                                                                      endpoint="PJSIP/agent1")]),
                                    {"general": spec}, self.switch, CATALOGUE, tick=0.05)
        self.desk = CallbackDesk(desk_config(), self.store, self.service, self.service, self.switch,
                                 CATALOGUE)
        self.service.attach_booking(self.desk)

    async def __aenter__(self) -> Center:
        await self.service.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.desk.close()
        await self.service.close()

    async def book(self) -> Reservation:
        now = dt.datetime.now(dt.timezone.utc)
        return await self.store.put_reservation(Reservation.new("+821012345678", "general", language="ko",
                                                                arrived_at=now, now=now))


async def test_a_reservation_cancelled_by_an_operator_leaves_the_line_and_is_never_dialled():
    async with Center() as center:
        r = await center.book()
        await center.desk.poll()                           # claimed, in line (no agent logged in)
        assert center.service.holds("cb-" + r.id)
        assert await center.desk.cancel(r.id)              # what the admin API calls
        assert not center.service.holds("cb-" + r.id)
        assert center.service.acd.waiting("general") == []
        center.service.acd.login("agent1", center.service.clock())
        center.service.tick()
        await asyncio.sleep(0)
        assert center.customer not in center.switch.rings()
        assert (await center.store.get_reservation(r.id)).status == "cancelled"


async def test_a_reservation_cancelled_outside_the_engine_leaves_the_line_at_the_next_poll():
    """``ivr callbacks cancel`` writes the store only: the claim renewal fails, so the desk
    withdraws the reservation, and it is never dialled."""
    async with Center() as center:
        r = await center.book()
        await center.desk.poll()
        assert center.service.holds("cb-" + r.id)
        assert await center.store.cancel_reservation(r.id)   # the operator's command, elsewhere
        await center.desk.poll()
        assert not center.service.holds("cb-" + r.id)
        center.service.acd.login("agent1", center.service.clock())
        center.service.tick()
        await asyncio.sleep(0.05)
        assert center.customer not in center.switch.rings()


async def test_a_reservation_whose_claim_another_engine_took_is_not_dialled_here():
    async with Center() as center:
        r = await center.book()
        await center.desk.poll()
        await center.store.release_claims("engine-a")              # as if our lease had run out
        (taken,) = await center.store.claim_reservations(dt.datetime.now(dt.timezone.utc),
                                                         "engine-b", 60, 1)
        assert taken.id == r.id
        center.service.acd.login("agent1", center.service.clock())
        center.service.tick()                                       # its turn comes here …
        await asyncio.sleep(0.05)
        assert center.customer not in center.switch.rings()         # … but it is engine-b's now
        assert not center.service.holds("cb-" + r.id)
        assert center.service.acd.agent("agent1").state == "available"


async def test_a_caller_handed_to_the_queue_with_an_earlier_arrival_keeps_that_place():
    async with Center() as center:
        early, late = LiveCall("late-arrival"), LiveCall("early-arrival")
        center.service.acd.login("agent1", center.service.clock())   # someone to wait for …
        center.service.acd.pause("agent1", "lunch", center.service.clock())   # … not yet free
        now = center.service.wall()
        t1 = asyncio.create_task(center.service.queue_handoff(
            early, CallRecord("late-arrival", "", "100"), "general", None, None, "ko"))
        await asyncio.sleep(0)
        t2 = asyncio.create_task(center.service.queue_handoff(
            late, CallRecord("early-arrival", "", "100"), "general", None, None, "ko",
            arrived_at=now - dt.timedelta(seconds=30)))
        await asyncio.sleep(0.01)
        assert [w.call_id for w in center.service.acd.waiting("general")][0] == "early-arrival"
        early.hang_up()
        late.hang_up()
        await asyncio.gather(t1, t2)


# -- 3. a restart remembers the agents and the line --------------------------------------------

def restart_config(tmp_path: Path, fake: FakeAri) -> Path:
    return write_engine_config(tmp_path, fake, flow=QUEUE_FLOW, extra=(
        "acd:\n  queues:\n    general: {max_wait: 600, on_max_wait: message, announce_every: 600}\n"
        "  agents:\n"
        "    - {id: agent1, name: A, endpoint: PJSIP/agent1, login: true}\n"
        "    - {id: agent2, name: B, endpoint: PJSIP/agent2, login: true}\n"))


async def killed_engine_left(config, events) -> None:
    """What an engine killed with SIGKILL left in the store: its event log."""
    async with open_store(config.store_url) as store:
        await store.record_events(events)


async def test_after_a_restart_a_paused_agent_stays_paused_and_the_waiting_caller_keeps_the_place(tmp_path):
    from ivr.acd.model import AgentState, QueuedDetail, StateDetail, queued_detail, state_detail
    from ivr.store.base import QueueEvent

    now = dt.datetime.now(dt.timezone.utc)
    async with FakeAri() as fake:
        config = load_config(restart_config(tmp_path, fake), env={})
        elderly = fake.add_channel(caller="01070000070", exten="100", state="Up")   # still in Stasis
        await killed_engine_left(config, [
            QueueEvent(at=now - dt.timedelta(seconds=300), kind="agent.state", agent_id="agent1",
                       detail=state_detail(StateDetail(AgentState.PAUSED, "lunch"))),
            QueueEvent(at=now - dt.timedelta(seconds=300), kind="agent.state", agent_id="agent2",
                       detail=state_detail(StateDetail(AgentState.PAUSED, "meeting"))),
            QueueEvent(at=now - dt.timedelta(seconds=40), kind="call.queued", call_id=elderly["id"],
                       queue="general", detail=queued_detail(QueuedDetail(
                           "elderly", language="ko", reason="bypass: elderly"))),
        ])
        async with serving(config):
            newcomer = await fake.start_call(caller="01012345678", exten="100")
            # Both wait in the holding bridge; no paused agent is rung (offers are made at
            # once when a caller joins, so a short look is enough to see none was).
            for channel_id in (elderly["id"], newcomer):
                await fake.wait_for_request(
                    lambda r, c=channel_id: "addChannel" in r.path and r.params.get("channel") == c,
                    timeout=5)
            await asyncio.sleep(0.2)
            rung = [r for r in fake.requests if r.method == "POST" and r.path == "/channels"]
            assert rung == [], "a paused agent was rung after the restart"
            await fake.caller_hangs_up(elderly["id"])
            await fake.caller_hangs_up(newcomer)
        records = {r.call_id: r for r in await recorded_calls(config)}
    old = records[elderly["id"]]
    assert old.outcome == "abandoned" and old.priority == "elderly"
    waited = int(old.detail.split("after ")[1].split(" s")[0])
    assert waited >= 40, old.detail                      # counted from the first arrival, not the restart
    async with open_store(config.store_url) as store:
        latest = {e.agent_id: e.detail for e in await store.latest_agent_events()}
    assert latest["agent1"].startswith("paused: lunch (restored")
    assert latest["agent2"].startswith("paused: meeting (restored")


async def test_a_conversation_picked_up_after_a_restart_frees_the_agent_with_wrap_up_when_it_ends():
    from ivr.acd.model import AgentState
    from ivr.acd.restore import Restored, RestoredAgent, RestoredTalk

    center = Center()
    now = center.service.wall()
    center.service.restore(Restored(
        agents={"agent1": RestoredAgent("agent1", AgentState.ON_CALL, None, now - dt.timedelta(seconds=90),
                                        "caller-1", queue="general")},
        waiting={}, talking={"caller-1": RestoredTalk("caller-1", "agent1", "general",
                                                      now - dt.timedelta(seconds=90))}))
    async with center:
        assert center.service.acd.agent("agent1").state == AgentState.ON_CALL
        caller, leg = LiveCall("caller-1", "01012345678"), LiveCall("ivr-dial-x")
        record = CallRecord("caller-1", "01012345678", "100")
        talk = asyncio.create_task(center.service.resume(caller, record, []))
        agent_side = asyncio.create_task(center.service.resume(leg, CallRecord("ivr-dial-x", "", ""),
                                                               ["agent", "agent1"]))
        await asyncio.sleep(0.01)
        assert not talk.done() and not leg.hung_up            # they go on talking
        caller.hang_up()                                        # the caller says goodbye
        assert await talk and await agent_side
        assert leg.hung_up_by_ivr                               # the agent's leg is ended too
        assert center.service.acd.agent("agent1").state == AgentState.WRAP_UP
        assert record.outcome == Outcome.AGENT_CONNECTED


async def test_an_agent_whose_restored_call_never_comes_back_is_freed():
    from ivr.acd.model import AgentState
    from ivr.acd.restore import Restored, RestoredAgent, RestoredTalk

    center = Center()
    now = center.service.wall()
    center.service.restore(Restored(
        agents={"agent1": RestoredAgent("agent1", AgentState.ON_CALL, None, now, "gone-call", queue="general")},
        waiting={}, talking={"gone-call": RestoredTalk("gone-call", "agent1", "general", now)}))
    async with center:
        center.service.settle_restored(after=0.01)
        async with asyncio.timeout(2):
            while center.service.acd.agent("agent1").state == AgentState.ON_CALL:
                await asyncio.sleep(0.01)
        assert center.service.acd.agent("agent1").state in (AgentState.WRAP_UP, AgentState.AVAILABLE)


def test_the_outcomes_in_the_flow_docs_are_exactly_the_ones_the_engine_records():
    import re

    text = (REPO / "docs" / "flows.md").read_text(encoding="utf-8")
    section = text[text.index("## How a call ends"):]
    section = section[:section.index("\n## ", 3)]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)
    assert documented == [o.value for o in Outcome]


# -- 17. the engine killed and started again: a conversation goes on ----------------------------

async def test_a_conversation_picked_up_after_a_restart_goes_on_past_the_settling():
    """Measured with SIPp: a conversation re-adopted after SIGKILL was cut 10 s after the
    restart (the settling hung the agent's leg up and freed the agent mid-call)."""
    await conversation_through_the_settling(leg_first=False)


async def test_a_conversation_whose_agent_leg_comes_back_first_goes_on_past_the_settling():
    await conversation_through_the_settling(leg_first=True)


async def conversation_through_the_settling(*, leg_first: bool) -> None:
    from ivr.acd.model import AgentState
    from ivr.acd.restore import Restored, RestoredAgent, RestoredTalk

    center = Center()
    now = center.service.wall()
    center.service.restore(Restored(
        agents={"agent1": RestoredAgent("agent1", AgentState.ON_CALL, None, now - dt.timedelta(seconds=30),
                                        "caller-1", queue="general")},
        waiting={}, talking={"caller-1": RestoredTalk("caller-1", "agent1", "general",
                                                      now - dt.timedelta(seconds=30))}))
    async with center:
        caller, leg = LiveCall("caller-1", "01012345678"), LiveCall("ivr-dial-x")
        record = CallRecord("caller-1", "01012345678", "100")

        def agent_side() -> asyncio.Task[bool]:
            return asyncio.create_task(center.service.resume(leg, CallRecord("ivr-dial-x", "", ""),
                                                             ["agent", "agent1"]))

        first = agent_side() if leg_first else None
        await asyncio.sleep(0)
        talk = asyncio.create_task(center.service.resume(caller, record, []))
        await asyncio.sleep(0)
        legs = first or agent_side()
        center.service.settle_restored(after=0.01)
        (settling,) = [t for t in asyncio.all_tasks() if t.get_name() == "acd.settle_restored"]
        await settling
        # Settled: the conversation goes on, the agent is still on it.
        assert not caller.hung_up and not leg.hung_up
        assert not talk.done() and not legs.done()
        center.service.tick()
        assert center.service.acd.agent("agent1").state == AgentState.ON_CALL
        caller.hang_up()                                        # the caller says goodbye
        async with asyncio.timeout(2):
            assert await talk and await legs
        assert leg.hung_up_by_ivr                               # the agent's leg is ended too
        assert center.service.acd.agent("agent1").state == AgentState.WRAP_UP
        assert record.outcome == Outcome.AGENT_CONNECTED


# -- 17. the engine killed and started again: a caller in the callback dialog ------------------

async def restarted_with_a_caller_in_the_callback_dialog(tmp_path: Path, *, booked: bool):
    """A caller queued 40 s ago took the callback offer 5 s ago (``call.left``: callback) and
    the engine died in the dialog; ``booked``: the reservation was stored on that call.  The
    engine starts again; the caller's channel is still in Stasis.  Returns the fake ARI's
    requests, the caller's record and the reservation."""
    import dataclasses

    from ivr.acd.model import AgentState, QueuedDetail, StateDetail, queued_detail, state_detail
    from ivr.store.base import QueueEvent

    now = dt.datetime.now(dt.timezone.utc)
    async with FakeAri() as fake:
        cfg_path = restart_config(tmp_path, fake)
        cfg_path.write_text(cfg_path.read_text(encoding="utf-8")
                            + "callbacks: {endpoint: 'PJSIP/{national}@trunk'}\n", encoding="utf-8")
        config = load_config(cfg_path, env={})
        caller = fake.add_channel(caller="01012345678", exten="100", state="Up")
        paused = state_detail(StateDetail(AgentState.PAUSED, "lunch"))
        await killed_engine_left(config, [
            QueueEvent(at=now - dt.timedelta(seconds=300), kind="agent.state", agent_id="agent1", detail=paused),
            QueueEvent(at=now - dt.timedelta(seconds=300), kind="agent.state", agent_id="agent2", detail=paused),
            QueueEvent(at=now - dt.timedelta(seconds=40), kind="call.queued", call_id=caller["id"],
                       queue="general", detail=queued_detail(QueuedDetail("normal", language="ko"))),
            QueueEvent(at=now - dt.timedelta(seconds=5), kind="call.left", call_id=caller["id"],
                       queue="general", detail="callback"),
        ])
        reservation = None
        if booked:
            async with open_store(config.store_url) as store:
                reservation = await store.put_reservation(dataclasses.replace(
                    Reservation.new("+821012345678", "general", language="ko",
                                    arrived_at=now - dt.timedelta(seconds=40), now=now),
                    call_id=caller["id"]))
        ready, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(config, ready=ready, stop=stop))
        try:
            async with asyncio.timeout(10):
                await ready.wait()
            if booked:              # the booking was finished: the engine ends the call
                await fake.wait_for_request(lambda r: r.method == "DELETE"
                                            and r.path == f"/channels/{caller['id']}", timeout=5)
            else:                   # not booked: back in line (the holding bridge), not the flow
                await fake.wait_for_request(lambda r: "addChannel" in r.path
                                            and r.params.get("channel") == caller["id"], timeout=5)
                await fake.caller_hangs_up(caller["id"])
        finally:
            stop.set()
            async with asyncio.timeout(10):
                await task
        records = {r.call_id: r for r in await recorded_calls(config)}
        return fake.requests, records[caller["id"]], reservation


async def test_a_caller_killed_in_the_callback_dialog_after_booking_ends_as_callback_booked(tmp_path):
    requests, record, reservation = await restarted_with_a_caller_in_the_callback_dialog(tmp_path, booked=True)
    assert record.outcome == Outcome.CALLBACK_BOOKED, (record.outcome, record.detail)
    assert record.detail == f"general: reservation {reservation.id}"
    assert not [r for r in requests if "/play" in r.path], "the booked caller heard the flow again"


async def test_a_caller_killed_in_the_callback_dialog_before_booking_is_back_in_line_at_the_place(tmp_path):
    _, record, _ = await restarted_with_a_caller_in_the_callback_dialog(tmp_path, booked=False)
    assert record.outcome == Outcome.ABANDONED, (record.outcome, record.detail)
    waited = int(record.detail.split("after ")[1].split(" s")[0])
    assert waited >= 40, record.detail                  # the place of the first arrival
    assert "to_agents" not in record.nodes, record.nodes    # not the flow again


# -- 17. the engine killed and started again: an agent's phone still ringing -------------------

async def test_an_agent_phone_still_ringing_for_the_killed_engine_is_hung_up_at_the_restart(tmp_path):
    """The killed engine was ringing an agent (a channel it dialled, not answered, so not in
    Stasis): the new engine stops that ring at once.  Answered later it would connect the
    agent to nobody, and the caller it was for is offered again from the line."""
    async with FakeAri() as fake:
        config = load_config(engine_config(tmp_path, fake), env={})
        ring = fake.add_channel(channel_id="ivr-dial-0123456789abcdef0123", caller="01012345678",
                                exten="s", state="Ringing", in_stasis=False)
        other = fake.add_channel(channel_id="elsewhere-1", state="Up", in_stasis=False)
        ready, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(config, ready=ready, stop=stop))
        try:
            async with asyncio.timeout(10):
                await ready.wait()
            await fake.wait_for_request(lambda r: r.method == "DELETE"
                                        and r.path == f"/channels/{ring['id']}", timeout=5)
            assert ring["id"] not in fake.channels
            assert other["id"] in fake.channels            # not ours: left alone
        finally:
            stop.set()
            async with asyncio.timeout(10):
                await task


# -- 18. Asterisk restarted: what it cut is lost, not the caller's doing -------------------------

async def test_a_waiting_caller_cut_by_the_switch_is_recorded_lost_and_the_ringing_agent_is_not_paused():
    from ivr.acd.model import AgentState

    center = Center()
    center.switch.phones["PJSIP/agent1"] = Phone(answers=False)
    async with center:
        center.service.acd.login("agent1", center.service.clock())
        caller = LiveCall("c-cut", "01012345678")
        record = CallRecord("c-cut", "01012345678", "100")
        waiting = asyncio.create_task(center.service.queue_handoff(caller, record, "general", None, None, "ko"))
        async with asyncio.timeout(2):
            while center.service.acd.agent("agent1").state != AgentState.RINGING:
                await asyncio.sleep(0.01)
        caller.lose()                                     # Asterisk restarts
        await waiting
        assert record.outcome == Outcome.LOST
        async with asyncio.timeout(2):
            while center.service.acd.agent("agent1").state == AgentState.RINGING:
                await asyncio.sleep(0.01)
        assert center.service.acd.agent("agent1").state == AgentState.AVAILABLE


async def test_a_soft_hang_up_from_asterisk_ends_the_call_as_lost():
    from ivr.ari.call import AriCall

    call = AriCall(client=None, channel={"id": "ch-1", "state": "Up"}, args=[])  # type: ignore[arg-type]
    call.on_event({"type": "ChannelHangupRequest", "soft": True, "cause": 4, "channel": {"id": "ch-1"}})
    assert call.hung_up and call.ended_as == "lost"
    far_end = AriCall(client=None, channel={"id": "ch-2", "state": "Up"}, args=[])  # type: ignore[arg-type]
    far_end.on_event({"type": "ChannelHangupRequest", "cause": 16, "channel": {"id": "ch-2"}})
    assert far_end.ended_as == "hangup"


async def test_a_ring_cancelled_before_it_ran_frees_the_agent():
    from ivr.acd.model import AgentState

    center = Center()
    center.switch.phones["PJSIP/agent1"] = Phone(answers=False)
    async with center:
        acd, now = center.service.acd, center.service.clock()
        acd.login("agent1", now)
        acd.pause("agent1", "break", now)
        caller = LiveCall("c-x", "01012345678")
        waiting = asyncio.create_task(center.service.queue_handoff(
            caller, CallRecord("c-x", "", "100"), "general", None, None, "ko"))
        await asyncio.sleep(0)
        acd.resume("agent1", center.service.clock())
        center.service.tick()                         # the agent is offered the caller …
        ring = center.service.callers["c-x"].ring
        ring.cancel()                                 # … and the ring is called off before it ran
        await asyncio.gather(ring, return_exceptions=True)
        await asyncio.sleep(0)                        # (its done-callbacks run next)
        assert acd.agent("agent1").state == AgentState.AVAILABLE
        caller.hang_up()
        await waiting


async def test_a_switch_that_cannot_be_reached_is_not_asked_again_at_once_and_the_agent_is_not_paused():
    from ivr.acd.model import AgentState
    from ivr.errors import AriUnavailable

    center = Center()
    dials = []

    async def unreachable(endpoint, **kw):
        dials.append(endpoint)
        raise AriUnavailable("Asterisk is restarting")

    center.switch.dial = unreachable
    async with center:
        center.service.acd.login("agent1", center.service.clock())
        caller = LiveCall("c-y", "01012345678")
        waiting = asyncio.create_task(center.service.queue_handoff(
            caller, CallRecord("c-y", "", "100"), "general", None, None, "ko"))
        await asyncio.sleep(0.12)                      # two ticks of 0.05 s
        assert 1 <= len(dials) <= 4, dials             # once per tick at most, not a hot loop
        assert center.service.acd.agent("agent1").state != AgentState.PAUSED
        caller.hang_up()
        await waiting


async def test_the_record_so_far_is_in_the_store_while_the_caller_is_in_a_menu(tmp_path):
    """So an engine taking over after a crash continues the record from there."""
    from ivr.app import Engine
    from ivr.testing.scripted_call import hang_up, press

    async with FakeAri() as fake:
        config = load_config(engine_config(tmp_path, fake), env={})
    config = dataclasses.replace(config, flows=(REPO / "flows",))
    flowset = load_flows(list(config.flows), CATALOGUE)

    class Spying(MemoryStore):
        noted: list[CallRecord] = []

        async def call_progress(self, record):
            self.noted.append(record)
            await super().call_progress(record)

    class InMenus(ScriptedCall):
        async def play(self, prompts, *, barge_in=False):
            if prompts[0].id == "main_menu":
                await asyncio.sleep(0.05)              # the caller listens a while
            await super().play(prompts, barge_in=barge_in)

    store = Spying()
    engine = Engine(config, store, CATALOGUE, flowset)
    engine.progress_every = 0.01
    call = InMenus(press("1"), hang_up(during="main_menu"), dialled="15771000")
    await engine.on_new_call(call, [])
    await engine.close()
    assert any("main_menu" in r.nodes and r.outcome is None for r in store.noted)
    assert (await store.get_call(call.id)).outcome == "caller_hangup"   # the end still wins


async def test_the_calls_in_menus_are_noted_together_in_one_write_and_an_ended_one_not_again(tmp_path):
    """Progress is noted every ``progress_every`` seconds for every call that moved on, in one
    store write; a call that ended meanwhile is left to its final record."""
    from ivr.app import Engine
    from ivr.testing.scripted_call import hang_up, press

    async with FakeAri() as fake:
        config = load_config(engine_config(tmp_path, fake), env={})
    config = dataclasses.replace(config, flows=(REPO / "flows",))
    flowset = load_flows(list(config.flows), CATALOGUE)
    listening = asyncio.Event()

    class Counting(MemoryStore):
        batches: list[list[tuple[str, str]]] = []

        async def calls_progress(self, records):
            self.batches.append(sorted((r.call_id, r.nodes[-1]) for r in records))
            await super().calls_progress(records)

    class InMenus(ScriptedCall):
        async def play(self, prompts, *, barge_in=False):
            if prompts[0].id == "main_menu" and self.id != "quick":
                await listening.wait()
            await super().play(prompts, barge_in=barge_in)

    store = Counting()
    engine = Engine(config, store, CATALOGUE, flowset)
    engine.progress_every = 0.2
    calls = [InMenus(press("1"), hang_up(during="main_menu"), call_id=f"c{i}",
                     caller_number=f"0101234567{i}") for i in range(5)]      # nobody a repeat caller
    quick = InMenus(press("1"), hang_up(during="main_menu"), call_id="quick", caller_number="01098765432")
    served = [asyncio.create_task(engine.on_new_call(c, [])) for c in [*calls, quick]]
    await asyncio.wait_for(served[-1], 5)            # "quick" is over within progress_every
    async with asyncio.timeout(5):
        while not store.batches:
            await asyncio.sleep(0.01)
    listening.set()
    await asyncio.gather(*served)
    await engine.close()
    assert store.batches[0] == [(f"c{i}", "main_menu") for i in range(5)], store.batches
    assert all(call_id != "quick" for batch in store.batches for call_id, _ in batch)
    assert {c.call_id: c.outcome for c in store.calls.values()} == \
        {**{f"c{i}": "caller_hangup" for i in range(5)}, "quick": "caller_hangup"}


async def test_a_progress_note_never_overwrites_a_finished_record(store_url):
    record = CallRecord("c-p", "01012345678", "15771000", flow="main", nodes=["start", "main_menu"])
    async with open_store(store_url) as store:
        await store.call_progress(record)
        assert (await store.get_call("c-p")).nodes == ["start", "main_menu"]
        finished = dataclasses.replace(record, nodes=["start", "main_menu", "goodbye"])
        finished.end(Outcome.COMPLETED)
        await store.record_call(finished)
        await store.call_progress(record)                    # late: the call has ended meanwhile
        stored = await store.get_call("c-p")
    assert stored.outcome == "completed" and stored.nodes[-1] == "goodbye"


async def test_several_calls_progress_is_noted_in_one_write_and_a_finished_record_kept(store_url):
    first = CallRecord("c-a", "01012345678", "15771000", flow="main", nodes=["start", "main_menu"])
    done = CallRecord("c-b", "01012345679", "15771000", flow="main", nodes=["start", "goodbye"])
    done.end(Outcome.COMPLETED)
    async with open_store(store_url) as store:
        await store.record_call(done)
        late = dataclasses.replace(done, nodes=["start"], outcome=None, ended_at=None)
        await store.calls_progress([first, late])
        await store.calls_progress([])
        a, b = await store.get_call("c-a"), await store.get_call("c-b")
    assert a.nodes == ["start", "main_menu"] and a.outcome is None
    assert b.outcome == "completed" and b.nodes == ["start", "goodbye"]


async def test_the_bridges_a_killed_engine_left_empty_are_swept_and_ours_and_others_kept():
    from ivr.ari.dispatcher import AriAdapter

    async def nothing(call, args, *, adopted):
        return None

    async with FakeAri() as fake:
        fake.bridges["ivr-holding-old"] = {"id": "ivr-holding-old", "channels": [], "name": "ivr-holding"}
        fake.bridges["ivr-mixing-busy"] = {"id": "ivr-mixing-busy", "channels": ["ch-1"], "name": "x"}
        fake.bridges["conference-7"] = {"id": "conference-7", "channels": [], "name": "not ours"}
        async with AriAdapter(fake.base_url, fake.username, fake.password, "ivr", nothing) as ari:
            await ari.wait_connected(5)
            mine = await ari.bridge("holding", name="ivr-holding")      # empty, but in use
            assert await ari.sweep_bridges() == 1
            assert set(fake.bridges) == {"ivr-mixing-busy", "conference-7", mine.id}


async def test_the_engines_own_hang_up_is_not_taken_for_asterisk_losing_the_call():
    from ivr.ari.call import AriCall

    class Client:
        async def hangup(self, channel_id):
            # Asterisk tells of the hang-up (a soft one, the engine's request) before answering.
            call.on_event({"type": "ChannelHangupRequest", "soft": True, "channel": {"id": "ch-3"}})

    call = AriCall(client=Client(), channel={"id": "ch-3", "state": "Up"}, args=[])  # type: ignore[arg-type]
    await call.hangup()
    assert call.ended_as == "engine"


async def test_no_announcement_starts_while_an_agent_is_being_rung_for_the_caller(monkeypatch):
    from ivr.acd import service as service_module

    monkeypatch.setattr(service_module, "FIRST_ANNOUNCEMENT", 0.1)
    center = Center()
    center.switch.phones["PJSIP/agent1"] = Phone(answers=False)
    spec = center.service.specs["general"]
    center.service.specs["general"] = dataclasses.replace(spec, ring_timeout=5)
    async with center:
        center.service.acd.login("agent1", center.service.clock())
        caller = LiveCall("c-r", "01012345678")
        waiting = asyncio.create_task(center.service.queue_handoff(
            caller, CallRecord("c-r", "", "100"), "general", None, None, "ko"))
        await asyncio.sleep(0.3)                                       # past the first announcement's time
        assert center.switch.rings() == ["PJSIP/agent1"]               # still ringing
        assert caller.played == []                                     # nothing was announced
        caller.hang_up()
        await waiting
