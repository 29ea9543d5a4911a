"""Callback offers and calls back, on a switch in memory: a waiting caller books a callback,
the reservation keeps the caller's place, the customer is called back and must press 1."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import types
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.acd.service import QueueService
from ivr.call import CallRecord
from ivr.callbacks.desk import CallbackDesk
from ivr.callbacks.schedule import OpeningHours, RetryPolicy
from ivr.errors import StoreError
from ivr.flow.model import CallbackOffer
from ivr.prompts import load_catalogue
from ivr.testing.fake_switch import FakeSwitch, LiveCall, Phone
from ivr.testing.memory_store import MemoryStore

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(REPO / "prompts" / "catalog.yaml")
SEOUL = ZoneInfo("Asia/Seoul")
ALWAYS = OpeningHours(SEOUL, {d: [(dt.time(0), dt.time(23, 59, 59))] for d in range(7)})
CUSTOMER = "PJSIP/sipp/sip:{national}@127.0.0.1:5090"
OFFER = CallbackOffer(after=0.0)          # offered at the first announcement
_ids = itertools.count(1)


def desk_config(**kw):
    base = dict(owner="engine-a", lease=30.0, poll=0.05, ring_timeout=0.3, allow_international=False,
                caller_id="15771000", endpoint=CUSTOMER, hours=ALWAYS,
                retry=RetryPolicy(max_attempts=2, delay=dt.timedelta(minutes=10)))
    base.update(kw)
    return types.SimpleNamespace(**base)


class Center:
    """A queue service with one agent and a callback desk, on a switch in memory."""

    def __init__(self, phones, *, store=None, wall=None, **config) -> None:
        spec = QueueSpec(name="general", skills=frozenset(), ring_timeout=0.3, wrap_up=0.1,
                         max_wait=60, announce_every=0.2)
        agents = [AgentSpec(id="agent1", name="A", endpoint="PJSIP/agent1")]
        self.store = store or MemoryStore()
        self.switch = FakeSwitch(phones)
        self.service = QueueService(Acd({"general": spec}, agents), {"general": spec}, self.switch,
                                    CATALOGUE, tick=0.05)
        kwargs = {"wall_clock": wall} if wall else {}
        self.saved: list[CallRecord] = []

        async def save(record):
            self.saved.append(record)

        self.desk = CallbackDesk(desk_config(**config), self.store, self.service, self.service,
                                 self.switch, CATALOGUE, save_record=save, **kwargs)
        self.service.attach_booking(self.desk)
        self.service.acd.login("agent1", self.service.clock())

    async def __aenter__(self):
        await self.service.start()
        return self

    async def __aexit__(self, *exc):
        await self.desk.close()
        await self.service.close()


def waiting_caller(center: Center, number: str = "01012345678", keys: str = ""):
    call = LiveCall(f"call-{next(_ids)}", number)
    if keys:
        call.press(keys)
    record = CallRecord(call.id, number, "15771000")
    task = asyncio.create_task(center.service.queue_handoff(call, record, "general", None, "test",
                                                            language="ko", callback=OFFER))
    return call, record, task


async def until(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def busy_agent(center: Center):
    center.service.acd.pause("agent1", "busy", center.service.clock())


async def test_a_waiting_caller_books_a_callback_on_their_own_number():
    async with Center({"PJSIP/agent1": Phone()}) as center:
        busy_agent(center)
        call, record, task = waiting_caller(center)
        await until(lambda: "ko/callback_offer" in call.played)
        call.press("1")                                     # take the offer
        await until(lambda: "ko/callback_confirm" in call.played)
        call.press("1")                                     # yes, that number
        await until(lambda: "ko/callback_when" in call.played)
        call.press("1")                                     # as soon as possible
        await asyncio.wait_for(task, 5)
        assert record.outcome == "callback_booked"
        assert call.played[-1] == "ko/callback_made" and call.hung_up_by_ivr
        (r,) = await center.store.list_reservations()
        assert (r.number, r.queue, r.status, r.language) == ("+821012345678", "general", "pending", "ko")
        assert center.service.acd.waiting("general") == []
        # The number was read back digit by digit before the confirmation.
        spoken = call.played[call.played.index("ko/callback_number_is") + 1:
                             call.played.index("ko/callback_confirm")]
        assert len(spoken) == 11


async def test_an_anonymous_caller_keys_a_number_and_an_international_one_is_refused():
    async with Center({"PJSIP/agent1": Phone()}) as center:
        busy_agent(center)
        call, record, task = waiting_caller(center, number="anonymous")
        await until(lambda: "ko/callback_offer" in call.played)
        call.press("1")
        await until(lambda: "ko/callback_enter_number" in call.played)
        call.press("0012025550123#")                        # the USA: refused (toll fraud guard)
        await until(lambda: "ko/callback_number_refused" in call.played)
        await until(lambda: call.played.count("ko/callback_enter_number") == 2)
        call.press("01098765432#")
        await until(lambda: "ko/callback_confirm" in call.played)
        call.press("1")
        await until(lambda: "ko/callback_when" in call.played)
        call.press("1")
        await asyncio.wait_for(task, 5)
        (r,) = await center.store.list_reservations()
        assert r.number == "+821098765432"


async def test_if_the_reservation_cannot_be_stored_the_caller_keeps_waiting_in_place():
    store = MemoryStore()
    store.fail["put_reservation"] = StoreError("database away")
    async with Center({"PJSIP/agent1": Phone()}, store=store) as center:
        busy_agent(center)
        call, record, task = waiting_caller(center)
        other, _, other_task = waiting_caller(center, number="01011112222")
        await until(lambda: "ko/callback_offer" in call.played)
        call.press("1")
        await until(lambda: "ko/callback_confirm" in call.played)
        call.press("1")
        await until(lambda: "ko/callback_when" in call.played)
        call.press("1")
        await until(lambda: "ko/callback_failed" in call.played)
        await until(lambda: len(center.service.acd.waiting("general")) == 2)
        assert center.service.acd.position(call.id) == 1     # the place was kept
        assert record.outcome is None and not call.hung_up
        for c in (call, other):
            c.hang_up()
        await asyncio.gather(task, other_task)


async def book(center: Center, number="+821012345678", waited=30.0):
    from ivr.callbacks.model import Reservation

    now = dt.datetime.now(dt.timezone.utc)
    return await center.store.put_reservation(Reservation(
        id=f"r{next(_ids)}", number=number, queue="general", priority=None, reason="test",
        language="ko", waited=waited, arrived_at=now - dt.timedelta(seconds=waited), created_at=now,
        due_at=now, slot_end=None, status="pending", attempts=0, last_attempt_at=None,
        last_result=None, claimed_by=None, claim_until=None, call_id="c0", updated_at=now))


async def test_the_customer_is_called_back_presses_1_and_is_connected_to_the_agent():
    customer = "PJSIP/sipp/sip:01012345678@127.0.0.1:5090"
    async with Center({"PJSIP/agent1": Phone(), customer: Phone(keys="1")}) as center:
        r = await book(center)
        await center.desk.poll()
        leg = await center.switch.answered("PJSIP/agent1")
        assert leg.caller_number == "+821012345678"          # the agent sees who it is
        assert leg.variables["IVR_REASON"] == "callback: test"  # and why it was reserved
        assert int(leg.variables["IVR_WAITED"]) >= 30
        (cust,) = center.switch.phones[customer].calls
        assert "ko/callback_intro" in cust.played
        assert (await center.store.get_reservation(r.id)).status == "done"
        await until(lambda: any(b.kind == "mixing" and len(b.members) == 2 for b in center.switch.bridges))
        leg.hang_up()
        await until(lambda: center.saved)
        assert center.saved[0].outcome == "agent_connected"
        assert center.saved[0].reason == "callback: test"


async def test_a_reservation_waits_behind_callers_who_came_earlier():
    customer = "PJSIP/sipp/sip:01012345678@127.0.0.1:5090"
    async with Center({"PJSIP/agent1": Phone(), customer: Phone(keys="1")}) as center:
        busy_agent(center)
        earlier = LiveCall("early", "01033334444")
        rec = CallRecord("early", "01033334444", "15771000")
        arrived = center.service.wall() - dt.timedelta(seconds=100)
        t = asyncio.create_task(center.service.queue_handoff(earlier, rec, "general", None, "x",
                                                             language="ko", arrived_at=arrived))
        await until(lambda: len(center.service.acd.waiting("general")) == 1)
        await book(center, waited=30)                     # joined 30 s ago: behind 'early'
        await center.desk.poll()
        assert [w.call_id for w in center.service.acd.waiting("general")][0] == "early"
        assert len(center.service.acd.waiting("general")) == 2
        earlier.hang_up()
        await t


async def test_a_customer_who_does_not_answer_is_retried_later_then_marked_failed():
    customer = "PJSIP/sipp/sip:01012345678@127.0.0.1:5090"
    async with Center({"PJSIP/agent1": Phone(), customer: Phone(answers=False)}) as center:
        r = await book(center)
        await center.desk.poll()
        await until(lambda: center.switch.log.count(("no_answer", customer)) == 1)
        await until(lambda: center.desk.in_line == {})
        first = await center.store.get_reservation(r.id)
        assert (first.status, first.attempts, first.last_result) == ("pending", 1, "no answer")
        assert first.due_at - first.last_attempt_at == dt.timedelta(minutes=10)   # from the attempt
        assert center.service.acd.agent("agent1").state == "available"          # released
        # The second (last) attempt, when it is due:
        center.desk.wall = lambda: first.due_at + dt.timedelta(seconds=1)
        await center.desk.poll()
        await until(lambda: center.switch.log.count(("no_answer", customer)) == 2)
        await until(lambda: center.desk.in_line == {})
        final = await center.store.get_reservation(r.id)
        assert (final.status, final.attempts) == ("failed", 2)


async def test_nothing_is_dialled_outside_opening_hours():
    customer = "PJSIP/sipp/sip:01012345678@127.0.0.1:5090"
    office = OpeningHours.office(SEOUL)
    saturday_night = dt.datetime(2026, 11, 28, 23, 0, tzinfo=SEOUL)
    async with Center({"PJSIP/agent1": Phone(), customer: Phone(keys="1")}, hours=office,
                      wall=lambda: saturday_night.astimezone(dt.timezone.utc)) as center:
        await book(center)
        await center.desk.poll()
        assert center.desk.in_line == {}
        assert center.switch.rings() == []


async def test_a_caller_who_calls_again_can_cancel_their_callback(tmp_path):
    from ivr.flow.loader import load_flows
    from ivr.flow.runner import run_flow
    from ivr.testing.scripted_call import ScriptedCall

    (tmp_path / "f.yaml").write_text("""
flow: f
numbers: ["100"]
entry: cancel
nodes:
  cancel:
    cancel_callback:
    next: done
    none: nothing
  done:
    hangup: callback_cancelled
  nothing:
    hangup: callback_none
""", encoding="utf-8")
    flows = load_flows([tmp_path], CATALOGUE)
    async with Center({"PJSIP/agent1": Phone()}) as center:
        busy_agent(center)
        r = await book(center)
        await center.desk.poll()                     # in line, waiting for its turn
        assert len(center.service.acd.waiting("general")) == 1

        async def call_again(number_vars):
            call = ScriptedCall(dialled="100", call_id=f"again-{next(_ids)}")
            record = CallRecord(call.id, call.caller_number, "100")
            await run_flow(flows, flows.for_number("100"), call, record, catalogue=CATALOGUE,
                           queues=center.service, variables=number_vars)
            return call.prompts[-1]

        assert await call_again({"caller.number": "+821012345678"}) == "callback_cancelled"
        assert (await center.store.get_reservation(r.id)).status == "cancelled"
        assert center.service.acd.waiting("general") == []          # off the line too
        assert await call_again({"caller.number": "+821012345678"}) == "callback_none"
        assert await call_again({"caller.number": None}) == "callback_none"   # withheld


async def test_a_caller_can_choose_an_hour_within_opening_hours_instead():
    office = OpeningHours(SEOUL, {d: [(dt.time(9), dt.time(18))] for d in range(5)},
                          holidays=frozenset({dt.date(2026, 12, 1)}))
    monday_evening = dt.datetime(2026, 11, 30, 19, 0, tzinfo=SEOUL)      # closed now
    async with Center({"PJSIP/agent1": Phone()}, hours=office,
                      wall=lambda: monday_evening.astimezone(dt.timezone.utc)) as center:
        busy_agent(center)
        call, record, task = waiting_caller(center)
        await until(lambda: "ko/callback_offer" in call.played)
        call.press("1")
        await until(lambda: "ko/callback_confirm" in call.played)
        call.press("1")
        await until(lambda: "ko/callback_when" in call.played)
        call.press("2")
        await until(lambda: "ko/callback_enter_hour" in call.played)
        call.press("20#")                                   # 8 p.m.: the center is closed
        await until(lambda: "ko/callback_hour_unavailable" in call.played)
        await until(lambda: call.played.count("ko/callback_enter_hour") == 2)
        call.press("14#")
        await asyncio.wait_for(task, 5)
        (r,) = await center.store.list_reservations()
        # Tuesday 1 December is a holiday: Wednesday 14:00-15:00.
        assert r.due_at.astimezone(SEOUL) == dt.datetime(2026, 12, 2, 14, 0, tzinfo=SEOUL)
        assert r.slot_end.astimezone(SEOUL) == dt.datetime(2026, 12, 2, 15, 0, tzinfo=SEOUL)
        assert "ko/callback_slot_is" in call.played
        await center.desk.poll()                             # not due yet: not in line
        assert center.desk.in_line == {}


async def test_two_engines_on_one_postgresql_never_dial_the_same_reservation_twice(postgres_url):
    """Two engines (each its own line, agent and switch) share one PostgreSQL store."""
    from ivr.store import open_store

    numbers = [f"+8210555{n:05d}" for n in range(12)]
    customers = {f"PJSIP/sipp/sip:0{n[3:]}@127.0.0.1:5090": Phone(keys="1") for n in numbers}
    async with open_store(postgres_url) as store_a, open_store(postgres_url) as store_b:
        a = Center({"PJSIP/agent1": Phone(talk=0.05), **customers}, store=store_a, owner="engine-a")
        b = Center({"PJSIP/agent1": Phone(talk=0.05), **customers}, store=store_b, owner="engine-b")
        async with a, b:
            for number in numbers:
                await book(a, number=number)
            for _ in range(40):
                await asyncio.gather(a.desk.poll(), b.desk.poll())
                done = [r for r in await store_a.list_reservations() if r.status == "done"]
                if len(done) == len(numbers):
                    break
                await asyncio.sleep(0.1)
            dials = a.switch.rings() + b.switch.rings()
    customer_dials = [d for d in dials if d.startswith("PJSIP/sipp/")]
    assert sorted(customer_dials) == sorted(customers)          # each customer dialled exactly once
    assert len(done) == len(numbers)
    assert {r.claimed_by for r in done} == {"engine-a", "engine-b"}   # both engines took part
