"""The wellness dialler in virtual time, on a switch and a store in memory: who is rung when,
what is recorded, the visit list, the concurrency cap across engines, the surge pause, and the
attempts a stopped engine left behind.  The wall clock is the test's; the flow is the sample
``flows/wellness.yaml`` with its key timeout shortened."""

from __future__ import annotations

import asyncio
import datetime as dt
import types
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.call import CallRecord, Outcome
from ivr.callbacks.schedule import OpeningHours, PublicHolidays
from ivr.flow.loader import load_flows
from ivr.flow.runner import finish_exits, run_flow
from ivr.prompts import load_catalogue
from ivr.testing.fake_switch import FakeSwitch, LiveCall, Phone
from ivr.store import open_store
from ivr.testing.memory_store import MemoryStore
from ivr.wellness.desk import WellnessDesk, attempt_of, channel_of
from ivr.wellness.model import AttemptResult, Campaign, Person, Surge

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = load_catalogue(REPO / "prompts" / "catalog.yaml")
SEOUL = ZoneInfo("Asia/Seoul")
R = AttemptResult
WELL, TALK, SILENT, DEAF = "+821011110001", "+821011110002", "+821011110003", "+821011110004"
BUSY = "+821011110005"


def seoul(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SEOUL)


def endpoint(number: str) -> str:
    return f"PJSIP/{number.lstrip('+')}"


def campaign(**changes) -> Campaign:
    """Tuesdays and Fridays 10:00-17:00 Seoul time, Korean public holidays off."""
    window = [(dt.time(10), dt.time(17))]
    hours = OpeningHours(SEOUL, {1: window, 4: window}, public_holidays=PublicHolidays("KR"))
    settings = {"name": "seniors", "hours": hours, "attempts_per_day": 3,
                "retry_delay": dt.timedelta(minutes=30), "max_concurrent": 2,
                "failed_days_to_visit": 3, "queue": "wellness", "priority": "elderly",
                "caller_id": "15771000"}
    settings.update(changes)
    return Campaign(**settings)


@pytest.fixture(scope="module")
def flowset(tmp_path_factory):
    """The sample wellness flow, its key timeout 10 s shortened to 0.2 s."""
    folder = tmp_path_factory.mktemp("flows")
    text = (REPO / "flows" / "wellness.yaml").read_text(encoding="utf-8")
    assert "timeout: 10s" in text
    (folder / "wellness.yaml").write_text(text.replace("timeout: 10s", "timeout: 0.2s"), encoding="utf-8")
    return load_flows([folder], CATALOGUE)


class Flows:
    """The ``Outbound`` port as the engine gives it, without queues (``talk`` is "queued")."""

    def __init__(self, flowset) -> None:
        self.flowset = flowset
        self.records: list[CallRecord] = []
        self.store: MemoryStore | None = None

    def outbound_flow(self, name):
        return self.flowset.get(name)

    async def run_outbound(self, call, record, flow_name, *, language, variables, adopted=False, args=()):
        flow = self.flowset[flow_name]
        record.flow = flow.name
        if self.store is not None:
            await self.store.call_progress(record)
        try:
            await run_flow(self.flowset, flow, call, record, catalogue=CATALOGUE, language=language,
                           variables=variables)
        finally:
            if record.outcome is None:
                record.end(Outcome.COMPLETED)
            finish_exits(record)
            await call.hangup()
            self.records.append(record)
            if self.store is not None:
                await self.store.record_call(record)


class Wait:
    def __init__(self, value=None, waiting=0) -> None:
        self.value = value
        self.waiting = waiting

    def queue_variable(self, name):
        assert name in ("queue.general.estimated_wait", "queue.general.waiting")
        return self.value if name.endswith("estimated_wait") else self.waiting


class World:
    def __init__(self, flowset, *, phones=None, store=None, owner="engine-a", watch=None,
                 ring_timeout=0.1, **changes):
        self.now = seoul(2026, 12, 1, 9, 0)          # a Tuesday
        self.store = store or MemoryStore()
        self.phones = phones if phones is not None else {
            endpoint(WELL): Phone(keys="1"), endpoint(TALK): Phone(keys="2"),
            endpoint(SILENT): Phone(), endpoint(DEAF): Phone(answers=False),
            endpoint(BUSY): Phone(busy=True)}
        self.switch = FakeSwitch(self.phones)
        self.flows = Flows(flowset)
        self.flows.store = self.store
        self.events: list[tuple[str, str | None, str]] = []
        self.campaign = campaign(**changes)
        config = types.SimpleNamespace(campaigns=(self.campaign,), ring_timeout=ring_timeout, poll=0.05,
                                       lease=60.0, history_days=90)
        self.desk = WellnessDesk(config, self.store, self.switch, self.flows,
                                 endpoint="PJSIP/{digits}", owner=owner, surge=watch,
                                 note=lambda *e: self.events.append(e), wall_clock=lambda: self.now)
        self.desk._recovered = True

    async def people(self, *numbers: str, **fields) -> None:
        await self.store.put_wellness_people([Person(number=n, campaign="seniors", name="Kim", **fields)
                                              for n in numbers])

    async def poll(self, at: dt.datetime | None = None) -> None:
        """Look at the campaign at ``at`` and let every call it starts end."""
        if at is not None:
            self.now = at
        await self.desk.poll()
        async with asyncio.timeout(10):
            while self.desk.ringing:
                await asyncio.sleep(0.01)

    async def results(self, number: str) -> list[tuple[dt.datetime, AttemptResult]]:
        got = await self.store.wellness_attempts(seoul(2000, 1, 1), number=number)
        return [(a.at.astimezone(SEOUL), a.result) for a in got]

    def rung(self, number: str) -> int:
        return self.phones[endpoint(number)].rang

    def count_people_reads(self) -> list[dt.datetime]:
        """The (virtual) times at which the desk reads the campaign's people from now on."""
        reads: list[dt.datetime] = []
        listing = self.store.list_wellness_people

        async def counted(*args, **kw):
            reads.append(self.now)
            return await listing(*args, **kw)

        self.store.list_wellness_people = counted
        return reads


async def test_rung_only_in_the_window_and_never_on_a_holiday(flowset) -> None:
    w = World(flowset)
    await w.people(WELL)
    await w.poll(seoul(2026, 12, 1, 9, 59))          # Tuesday, before the window
    await w.poll(seoul(2026, 12, 1, 17, 0))          # at its close
    await w.poll(seoul(2026, 12, 2, 11, 0))          # a Wednesday
    assert w.rung(WELL) == 0
    await w.poll(seoul(2026, 12, 25, 11, 0))         # Friday, Christmas: a public holiday
    assert w.rung(WELL) == 0
    await w.poll(seoul(2026, 12, 1, 10, 0))
    assert w.rung(WELL) == 1


async def test_a_person_who_presses_1_is_well_and_not_rung_again_that_day(flowset) -> None:
    w = World(flowset)
    await w.people(WELL)
    await w.poll(seoul(2026, 12, 1, 10, 0))
    assert await w.results(WELL) == [(seoul(2026, 12, 1, 10, 0), R.WELL)]
    for hour in (11, 13, 16):
        await w.poll(seoul(2026, 12, 1, hour, 0))
    assert w.rung(WELL) == 1                          # never twice on a day once reached
    await w.poll(seoul(2026, 12, 4, 10, 0))          # the next window day
    assert [r for _, r in await w.results(WELL)] == [R.WELL, R.WELL]
    dialled = w.switch.dialled_with[0]
    assert dialled["caller_id"] == "15771000"       # the center's number
    assert dialled["args"] == ("wellness", "1") and dialled["channel_id"] == channel_of(1)
    record = w.flows.records[0]
    assert record.dialled == "wellness" and record.number == WELL and record.nodes[-1] == "well"
    kinds = [e[0] for e in w.events]
    assert kinds == ["wellness.attempt", "wellness.attempt"]
    assert "attempt 1; well: pressed 1: well" in w.events[0][2] and WELL not in w.events[0][2]


async def test_a_person_who_presses_2_is_handed_to_the_wellness_queue(flowset) -> None:
    w = World(flowset)
    await w.people(TALK, language="en")
    await w.poll(seoul(2026, 12, 1, 10, 0))
    assert [r for _, r in await w.results(TALK)] == [R.TALK]
    record = w.flows.records[0]
    assert record.nodes[-1] == "talk" and record.language == "en"
    assert any(p.startswith("en/wellness_") for p in w.phones[endpoint(TALK)].calls[0].played)


async def test_retries_come_at_their_delays_up_to_the_attempts_of_a_day(flowset) -> None:
    w = World(flowset)
    await w.people(SILENT, DEAF, BUSY)
    for minute in (0, 10, 29, 30, 45, 59, 60, 90, 120):
        await w.poll(seoul(2026, 12, 1, 10, 0) + dt.timedelta(minutes=minute))
    expected = [seoul(2026, 12, 1, 10, 0), seoul(2026, 12, 1, 10, 30), seoul(2026, 12, 1, 11, 0)]
    assert [at for at, _ in await w.results(SILENT)] == expected
    assert {r for _, r in await w.results(SILENT)} == {R.NO_KEY}      # answered, no key twice
    assert {r for _, r in await w.results(DEAF)} == {R.NO_ANSWER}
    assert {r for _, r in await w.results(BUSY)} == {R.BUSY}
    assert w.rung(DEAF) == w.rung(BUSY) == 3
    await w.poll(seoul(2026, 12, 1, 16, 59))         # three a day: no fourth
    assert w.rung(DEAF) == 3
    # A retry due after the window closes waits for the next window day.
    w2 = World(flowset)
    await w2.people(DEAF)
    await w2.poll(seoul(2026, 12, 1, 16, 50))
    await w2.poll(seoul(2026, 12, 1, 17, 20))
    await w2.poll(seoul(2026, 12, 2, 10, 0))
    assert w2.rung(DEAF) == 1
    await w2.poll(seoul(2026, 12, 4, 10, 0))
    assert w2.rung(DEAF) == 2


async def test_three_failed_days_put_them_on_the_visit_list_and_a_later_answer_clears_it(flowset) -> None:
    w = World(flowset)
    await w.people(DEAF)
    days = [seoul(2026, 12, 1, 10, 0), seoul(2026, 12, 4, 10, 0), seoul(2026, 12, 8, 10, 0)]
    for day in days:
        for minute in (0, 30, 60):
            await w.poll(day + dt.timedelta(minutes=minute))
        if day != days[-1]:
            assert await w.store.list_wellness_visits() == []
    visits = await w.store.list_wellness_visits()
    assert len(visits) == 1 and visits[0].number == DEAF
    assert len(visits[0].history) == 9 and {a.result for a in visits[0].history} == {R.NO_ANSWER}
    assert any(e[0] == "wellness.visit" and "listed after 3 failed days" in e[2] for e in w.events)
    await w.poll(seoul(2026, 12, 8, 16, 0))          # nothing more that day, still listed
    assert len(await w.store.list_wellness_visits()) == 1
    w.phones[endpoint(DEAF)].answers, w.phones[endpoint(DEAF)].keys = True, "1"
    await w.poll(seoul(2026, 12, 11, 10, 0))
    assert await w.store.list_wellness_visits() == []
    cleared = await w.store.list_wellness_visits(open_only=False)
    assert cleared[0].cleared_at is not None and cleared[0].done_at is None


async def test_a_day_that_ended_with_tries_left_counts_at_the_visit_pass(flowset) -> None:
    w = World(flowset, attempts_per_day=3, failed_days_to_visit=1)
    await w.people(DEAF)
    await w.poll(seoul(2026, 12, 1, 10, 0))          # one try, two left: the engine then stops
    assert await w.store.list_wellness_visits() == []
    w.desk._last_visit_pass = -1e9                    # the next poll is a visit pass
    await w.poll(seoul(2026, 12, 2, 9, 0))           # the day is over now
    assert [v.number for v in await w.store.list_wellness_visits()] == [DEAF]
    assert w.desk.visits_open == 1


async def test_opted_out_people_are_never_rung(flowset) -> None:
    w = World(flowset)
    await w.people(WELL)
    await w.store.set_wellness_opt_out(WELL, True)
    await w.poll(seoul(2026, 12, 1, 10, 0))
    assert w.rung(WELL) == 0


@pytest.fixture(params=["memory", "postgres"])
def shared_backend(request) -> str:
    return "memory" if request.param == "memory" else str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def shared_store(shared_backend):
    """One store two engines share: in memory, or a PostgreSQL database."""
    if shared_backend == "memory":
        yield MemoryStore()
        return
    async with open_store(shared_backend) as store:
        yield store


async def test_the_concurrency_cap_holds_across_two_engines_and_nobody_is_rung_twice(
        flowset, shared_store) -> None:
    numbers = [f"+8210222200{i:02d}" for i in range(7)]
    phones = {endpoint(n): Phone(keys="1", answer_after=0.3) for n in numbers}
    store = shared_store
    a = World(flowset, phones=phones, store=store, owner="engine-a", max_concurrent=3, ring_timeout=2)
    b = World(flowset, phones=phones, store=store, owner="engine-b", max_concurrent=3, ring_timeout=2)
    b.switch = a.switch
    b.desk.switch = a.switch
    await a.people(*numbers)
    held = 0
    now = seoul(2026, 12, 1, 10, 0)
    for step in range(60):
        a.now = b.now = now + dt.timedelta(seconds=step)
        await asyncio.gather(a.desk.poll(), b.desk.poll())
        held = max(held, sum((await store.wellness_in_progress(a.now)).values()))
        await asyncio.sleep(0.03)
        if all(phones[endpoint(n)].rang for n in numbers) and not (a.desk.ringing or b.desk.ringing):
            break
    # The lines: calls ringing or answered at once on the switch both engines dial through
    # (an attempt whose call is over, still being written down, holds no line).
    assert a.switch.most_lines == 3 and held <= 3
    assert sorted(p.rang for p in phones.values()) == [1] * 7
    attempts = await store.wellness_attempts(seoul(2000, 1, 1))
    assert len(attempts) == 7 and {a.result for a in attempts} == {R.WELL}


async def test_an_inbound_surge_pauses_the_campaign_and_its_end_resumes_it(flowset) -> None:
    wait = Wait(200)
    w = World(flowset, watch=wait, surge=Surge(queue="general", pause_over=120, resume_under=60))
    await w.people(WELL)
    await w.poll(seoul(2026, 12, 1, 10, 0))
    assert w.rung(WELL) == 0 and w.desk.paused["seniors"]
    wait.value = 90                                  # between the thresholds: still paused
    await w.poll(seoul(2026, 12, 1, 10, 5))
    assert w.rung(WELL) == 0
    wait.value, wait.waiting = None, 3               # callers wait and nobody can serve them
    await w.poll(seoul(2026, 12, 1, 10, 7))
    assert w.rung(WELL) == 0
    await w.people(TALK)                             # imported while paused
    wait.value, wait.waiting = None, 0               # nobody waiting
    await w.poll(seoul(2026, 12, 1, 10, 7, 30))      # resumed: looked at at once
    assert w.rung(WELL) == 1 and w.rung(TALK) == 1 and not w.desk.paused["seniors"]
    kinds = [(k, d) for k, _, d in w.events if k != "wellness.attempt"]
    assert kinds[0][0] == "wellness.paused" and "estimated wait 200 s" in kinds[0][1]
    assert kinds[1][0] == "wellness.resumed"


async def test_run_now_rings_a_person_at_once_inside_the_window_only(flowset) -> None:
    w = World(flowset)
    await w.people(DEAF)
    await w.poll(seoul(2026, 12, 1, 10, 0))
    w.desk.run_now(DEAF)
    await w.poll(seoul(2026, 12, 1, 10, 5))          # the retry delay waived
    assert w.rung(DEAF) == 2
    w.desk.run_now(DEAF)
    await w.poll(seoul(2026, 12, 1, 18, 0))          # the window is closed
    assert w.rung(DEAF) == 2 and not w.desk._forced   # … and the wish is dropped


async def test_run_now_waits_for_a_free_line_and_then_goes_first(flowset) -> None:
    phones = {endpoint(WELL): Phone(keys="1", answer_after=0.3), endpoint(DEAF): Phone(answers=False),
              endpoint(TALK): Phone(keys="1")}
    w = World(flowset, phones=phones, max_concurrent=1, ring_timeout=1)
    await w.people(WELL, DEAF, TALK)
    w.now = seoul(2026, 12, 1, 10, 0)
    await w.desk.poll()                              # by number: WELL first
    (first,) = [r.person.number for r in w.desk.ringing.values()]
    assert first == WELL
    w.desk.run_now(DEAF)
    await w.desk.poll()                              # no line free: DEAF waits, wish kept
    assert w.rung(DEAF) == 0 and DEAF in w.desk._forced
    async with asyncio.timeout(5):
        while w.desk.ringing:
            await asyncio.sleep(0.01)
    await w.poll(seoul(2026, 12, 1, 10, 1))          # the line is free: DEAF before TALK
    assert (w.rung(DEAF), w.rung(TALK)) == (1, 0)


async def test_a_stopped_engines_attempts_are_finished_never_dialled_again(flowset) -> None:
    store = MemoryStore()
    w = World(flowset, store=store)
    await w.people(WELL, SILENT, DEAF)
    t0 = seoul(2026, 12, 1, 10, 0)
    # engine-a stopped: one attempt ringing (no record), one answered and pressed 1 (its
    # record noted); engine-x, another instance, died holding a third whose claim lapsed.
    ringing = await store.claim_wellness_attempt(DEAF, "engine-a", t0, 60)
    answered = await store.claim_wellness_attempt(WELL, "engine-a", t0, 60)
    lapsed = await store.claim_wellness_attempt(SILENT, "engine-x", t0, 60)
    record = CallRecord(call_id=channel_of(answered.id), caller=WELL, dialled="wellness", number=WELL)
    record.nodes, record.exits = ["greeting", "ask", "well"], ["next", "key"]
    await store.call_progress(record)
    w.desk._recovered = False
    w.now = t0 + dt.timedelta(seconds=20)
    await w.desk.recover()
    results = {a.number: a for a in await store.wellness_attempts(seoul(2000, 1, 1))}
    assert results[DEAF].result == R.FAILED and "stopped while the phone rang" in results[DEAF].detail
    assert results[WELL].result == R.WELL and "after an engine restart" in results[WELL].detail
    assert SILENT not in results                     # its claim still holds
    w.now = t0 + dt.timedelta(seconds=61)
    await w.poll()
    results = {a.number: a for a in await store.wellness_attempts(seoul(2000, 1, 1))}
    assert results[SILENT].result == R.FAILED
    assert w.rung(WELL) == w.rung(SILENT) == w.rung(DEAF) == 0   # none dialled again for those
    assert all(a.at == t0 for a in results.values())
    assert lapsed.id != ringing.id
    # … and the next attempts follow the rules: WELL was reached today, the others retry later.
    await w.poll(t0 + dt.timedelta(minutes=30))
    assert (w.rung(WELL), w.rung(SILENT), w.rung(DEAF)) == (0, 1, 1)


async def test_a_wellness_call_re_adopted_after_a_restart_is_carried_to_its_end(flowset) -> None:
    store = MemoryStore()
    w = World(flowset, store=store)
    await w.people(WELL)
    t0 = seoul(2026, 12, 1, 10, 0)
    w.now = t0
    old = await store.claim_wellness_attempt(WELL, "engine-old", t0, 60)
    call = LiveCall(channel_of(old.id), "15771000")
    args = ["wellness", str(old.id)]
    assert attempt_of(args) == old.id and attempt_of(["agent", "agent1"]) is None
    adopting = asyncio.create_task(w.desk.adopt(call, args))
    await asyncio.sleep(0.05)
    call.press("1")
    await adopting
    (attempt,) = await store.wellness_attempts(seoul(2000, 1, 1))
    assert attempt.result == R.WELL and attempt.at == t0
    assert w.rung(WELL) == 0                          # the call already there, not a new one
    await w.poll(t0 + dt.timedelta(minutes=5))
    assert w.rung(WELL) == 0


async def test_a_broken_flow_stops_the_campaign_and_says_why(flowset, tmp_path) -> None:
    text = (REPO / "flows" / "wellness.yaml").read_text(encoding="utf-8")
    (tmp_path / "wellness.yaml").write_text(text.replace("priority: elderly", "priority: normal"),
                                            encoding="utf-8")
    w = World(load_flows([tmp_path], CATALOGUE))
    await w.people(WELL)
    await w.poll(seoul(2026, 12, 1, 10, 0))
    assert w.rung(WELL) == 0
    assert "gives priority 'normal'" in w.desk.unusable["seniors"]
    assert w.desk.status()["campaigns"][0]["flow_problem"] == w.desk.unusable["seniors"]


async def test_between_looks_the_people_are_not_read_again_until_someone_can_be_due(flowset) -> None:
    w = World(flowset)
    await w.people(WELL, DEAF)
    reads = w.count_people_reads()
    await w.poll(seoul(2026, 12, 1, 10, 0))          # both rung; DEAF is due again at 10:30
    await w.poll(seoul(2026, 12, 1, 10, 0, 20))      # the calls ended: looked at again
    looks = len(reads)
    await w.poll(seoul(2026, 12, 1, 10, 0, 50))
    assert len(reads) == looks                        # nobody can be due: the store is spared
    await w.poll(seoul(2026, 12, 1, 10, 1, 30))      # a minute on: new people are looked for
    assert len(reads) == looks + 1
    w.desk.run_now()
    await w.poll(seoul(2026, 12, 1, 10, 1, 40))      # an operator's "run now" looks at once
    assert len(reads) == looks + 2
    await w.poll(seoul(2026, 12, 1, 10, 30))
    assert w.rung(DEAF) == 2 and w.rung(WELL) == 1



async def test_with_the_database_away_nothing_starts_and_a_refused_result_is_written_later(flowset) -> None:
    from ivr.errors import StoreError

    w = World(flowset)
    await w.people(WELL, DEAF)
    w.store.fail["wellness_in_progress"] = StoreError("database away")
    with pytest.raises(StoreError):
        await w.poll(seoul(2026, 12, 1, 10, 0))
    assert w.rung(WELL) == w.rung(DEAF) == 0                  # no new attempt starts
    del w.store.fail["wellness_in_progress"]
    w.store.fail["finish_wellness_attempt"] = StoreError("database away")
    await w.poll(seoul(2026, 12, 1, 10, 1))          # both called; their results refused
    assert (w.rung(WELL), w.rung(DEAF)) == (1, 1)
    assert await w.store.wellness_attempts(seoul(2000, 1, 1)) == []
    del w.store.fail["finish_wellness_attempt"]
    await w.poll(seoul(2026, 12, 1, 10, 5))          # back: the kept results are written
    results = {a.number: a.result for a in await w.store.wellness_attempts(seoul(2000, 1, 1))}
    assert results == {WELL: R.WELL, DEAF: R.NO_ANSWER}
    assert (w.rung(WELL), w.rung(DEAF)) == (1, 1)                  # nobody dialled again
    assert [e[0] for e in w.events].count("wellness.attempt") == 2  # each noted once


async def test_with_the_lines_full_the_next_free_line_takes_the_next_due_without_reading_everyone(
        flowset) -> None:
    w = World(flowset, max_concurrent=1)
    await w.people(WELL, TALK, SILENT)
    reads = w.count_people_reads()
    for second in (0, 5, 10):
        await w.poll(seoul(2026, 12, 1, 10, 0, second))
    assert (w.rung(WELL), w.rung(TALK), w.rung(SILENT)) == (1, 1, 1)   # one after another
    assert len(reads) == 1                            # one look; the rest from its due list
    await w.poll(seoul(2026, 12, 1, 10, 1, 10))      # a minute on: a full look again
    assert len(reads) == 2
