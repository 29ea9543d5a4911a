"""A restarted engine puts the agents and the lines back as the event log left them.

Each scenario drives a real ``Acd`` (the events it tells, stamped as the recorder stamps
them), "kills" the engine by dropping that ``Acd``, and starts a new one from the log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ivr.acd.core import Acd
from ivr.acd.model import (
    AcdStateError, AgentSpec, AgentState, Event, NoSuchAgent, NoSuchQueue, Offer, QueueSpec,
)
from ivr.acd.restore import (
    Restored, RestoredAgent, RestoredTalk, RestoredWaiting, load_restored, on_clock, replay,
    restore_agents,
)
from ivr.store import open_store
from ivr.store.base import QueueEvent
from ivr.testing.memory_store import MemoryStore

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
GENERAL = QueueSpec(name="general", skills=frozenset({"general"}), max_wait=600, wrap_up=10,
                    on_max_wait="overflow", overflow="cards")
CARDS = QueueSpec(name="cards", skills=frozenset({"general"}), max_wait=300, wrap_up=5)
QUEUES = {q.name: q for q in (GENERAL, CARDS)}
RESTART = 5000.0            # the new engine's clock (monotonic: it has nothing to do with T0)


def wall(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def agent(agent_id: str) -> AgentSpec:
    return AgentSpec(id=agent_id, name=agent_id.title(), endpoint=f"PJSIP/{agent_id}",
                     skills=frozenset({"general"}))


AGENTS = [agent("kim"), agent("lee")]


class Tape(list[QueueEvent]):
    """The event log an engine writes: each ``Event`` stamped with the wall clock of the
    moment it happened (``zero`` is the wall time at which the engine's clock read 0)."""

    def __init__(self, zero: dt.datetime = T0) -> None:
        super().__init__()
        self.zero = zero

    def __call__(self, e: Event) -> None:
        self.append(QueueEvent(at=self.zero + dt.timedelta(seconds=e.at), kind=e.kind,
                               call_id=e.call_id, agent_id=e.agent_id, queue=e.queue,
                               detail=e.detail))


def engine(tape: Tape) -> Acd:
    return Acd(QUEUES, AGENTS, on_event=tape)


def restarted(restored: Restored, *, at: float) -> tuple[Acd, Tape]:
    """A new engine started ``at`` seconds (wall clock) after T0, its agents restored."""
    tape = Tape(zero=wall(at) - dt.timedelta(seconds=RESTART))
    acd = engine(tape)
    assert restore_agents(acd, restored, wall_now=wall(at), now=RESTART) == []
    return acd, tape


def readopt(acd: Acd, restored: Restored, call_id: str, *, at: float, now: float) -> None:
    """The caller's channel is found again: back in line at the original place."""
    w = restored.waiting[call_id]
    acd.enqueue(call_id, w.queue, w.priority, now, reason=w.reason, language=w.language,
                arrived_at=on_clock(w.arrived_at, wall_now=wall(at), now=RESTART))


def line(acd: Acd, queue: str = "general") -> list[str]:
    return [w.call_id for w in acd.waiting(queue)]


def close(a: dt.datetime, b: dt.datetime) -> bool:
    return abs((a - b).total_seconds()) < 0.001


# -- the case: an elderly caller waiting behind paused agents ---------------------------

def test_paused_agents_stay_paused_and_the_elderly_caller_keeps_the_place_and_the_wait():
    tape = Tape()
    acd = engine(tape)
    acd.login("kim", 0)
    acd.login("lee", 0)
    acd.pause("kim", "lunch", 1)                  # a supervisor pauses every agent
    acd.pause("lee", "meeting", 2)
    acd.enqueue("old", "general", "elderly", 3, reason="bypass: elderly", language="ko")
    acd.enqueue("n1", "general", "normal", 8)
    # Killed at 14 s: the elderly caller has waited 11 s.  Started again at 20 s.
    restored = replay(tape)
    assert dict(restored.agents) == {
        "kim": RestoredAgent("kim", AgentState.PAUSED, "lunch", wall(1), None),
        "lee": RestoredAgent("lee", AgentState.PAUSED, "meeting", wall(2), None),
    }
    assert list(restored.waiting.values()) == [
        RestoredWaiting("old", "general", "elderly", "bypass: elderly", "ko", wall(3)),
        RestoredWaiting("n1", "general", "normal", None, None, wall(8)),
    ]
    assert restored.talking == {} and restored.problems == ()

    acd2, tape2 = restarted(restored, at=20)
    acd2.enqueue("new", "general", "elderly", RESTART + 1)      # arrived after the restart
    readopt(acd2, restored, "n1", at=20, now=RESTART + 2)
    readopt(acd2, restored, "old", at=20, now=RESTART + 2)
    assert acd2.offers(RESTART + 2) == []                       # nobody paused is rung
    assert line(acd2) == ["old", "new", "n1"]                   # the place kept, by arrival
    assert acd2.agent("kim").state is AgentState.PAUSED and acd2.agent("kim").reason == "lunch"
    acd2.resume("kim", RESTART + 4)
    assert acd2.offers(RESTART + 4) == [Offer("old", "kim", "general")]
    acd2.answered("old", "kim", RESTART + 5)
    connected = [e for e in tape2 if e.kind == "call.connected"]
    assert [e.detail for e in connected] == ["22"]   # 3 s → 25 s: the wait before the kill counts


def test_the_restart_is_in_the_log_and_a_second_restart_finds_the_same():
    tape = Tape()
    acd = engine(tape)
    acd.login("kim", 0)
    acd.pause("kim", "lunch", 1)
    acd.enqueue("old", "general", "elderly", 3, reason="bypass: elderly", language="ko")
    first = replay(tape)
    acd2, tape2 = restarted(first, at=20)
    readopt(acd2, first, "old", at=20, now=RESTART + 2)
    assert [(e.kind, e.agent_id or e.call_id, e.detail) for e in tape2] == [
        ("agent.state", "kim", "paused: lunch (restored, 19 s in state)"),
        ("call.queued", "old", "elderly; waited 19 s; language ko; reason bypass: elderly"),
    ]
    # Killed again at 30 s; the log of both engines is read.
    second = replay([*tape, *tape2])
    assert second.agents["kim"].state is AgentState.PAUSED
    assert close(second.agents["kim"].since, wall(1))           # paused since 1 s, not 20 s
    assert second.waiting.keys() == {"old"}
    assert close(second.waiting["old"].arrived_at, wall(3))
    assert dataclasses.replace(second.waiting["old"], arrived_at=wall(3)) == first.waiting["old"]


def test_an_agent_who_never_logged_in_is_restored_offline_only_when_the_log_says_so():
    tape = Tape()
    acd = engine(tape)
    acd.login("kim", 0)
    restored = replay(tape)
    assert restored.agents.keys() == {"kim"}                    # lee: nothing in the log
    acd2, _ = restarted(restored, at=10)
    assert acd2.agent("lee").state is AgentState.OFFLINE and acd2.agent("lee").since is None
    assert acd2.agent("kim").state is AgentState.AVAILABLE
    assert acd2.agent("kim").since == pytest.approx(RESTART - 10)


# -- callers moved, offered a callback, talking -------------------------------------------------

def test_a_caller_who_overflowed_waits_in_the_overflow_queue_from_the_first_arrival():
    tape = Tape()
    acd = engine(tape)
    acd.enqueue("c1", "general", "repeat", 0, reason="calls again", language="en")
    acd.leave("c1", 600, "overflow")                            # as the queue service moves it
    acd.enqueue("c1", "cards", "repeat", 600, arrived_at=0, reason="calls again", language="en")
    restored = replay(tape)
    assert dict(restored.waiting) == {
        "c1": RestoredWaiting("c1", "cards", "repeat", "calls again", "en", wall(0))}


def test_a_caller_who_declined_a_callback_keeps_the_place_and_one_who_took_it_is_not_waiting():
    tape = Tape()
    acd = engine(tape)
    acd.enqueue("declined", "general", "normal", 10)
    acd.enqueue("took", "general", "normal", 20)
    acd.enqueue("later", "general", "normal", 40)
    acd.leave("declined", 100, "callback")                      # pressed the key ...
    acd.leave("took", 110, "callback")
    acd.enqueue("declined", "general", "normal", 130, arrived_at=10)   # ... then said no
    restored = replay(tape)
    assert list(restored.waiting) == ["declined", "later"]
    assert restored.waiting["declined"].arrived_at == wall(10)


def test_a_caller_on_a_call_goes_on_and_the_agent_is_freed_when_it_ends():
    tape = Tape()
    acd = engine(tape)
    acd.login("kim", 0)
    acd.login("lee", 0)
    acd.enqueue("c1", "general", "normal", 1)
    assert acd.offers(1) == [Offer("c1", "kim", "general")]
    acd.answered("c1", "kim", 5)
    acd.pause("lee", "training", 6)
    restored = replay(tape)                                     # killed at 60 s
    assert dict(restored.talking) == {"c1": RestoredTalk("c1", "kim", "general", wall(5))}
    assert restored.agents["kim"] == RestoredAgent("kim", AgentState.ON_CALL, None, wall(5), "c1",
                                                   queue="general")
    assert restored.waiting == {}

    acd2, tape2 = restarted(restored, at=70)
    acd2.enqueue("c2", "general", "normal", RESTART + 1)
    assert acd2.offers(RESTART + 1) == []                       # kim is still talking
    status = acd2.agent("kim")
    assert (status.state, status.current_call) == (AgentState.ON_CALL, "c1")
    acd2.call_ended("kim", RESTART + 10)                        # the call goes on, then ends
    assert acd2.agent("kim").state is AgentState.WRAP_UP
    acd2.tick(RESTART + 20)
    assert acd2.offers(RESTART + 20) == [Offer("c2", "kim", "general")]
    # Talk time counts from the answer before the kill: 5 s → 80 s, plus the wrap-up.
    assert acd2.estimator("general").mean_handle > 0
    assert tape2[0].detail == "on_call (restored, 65 s in state)" and tape2[0].call_id == "c1"


def test_a_pause_asked_for_during_the_call_starts_when_the_call_ends_after_the_restart():
    tape = Tape()
    acd = engine(tape)
    acd.login("kim", 0)
    acd.enqueue("c1", "general", "normal", 1)
    acd.offers(1)
    acd.answered("c1", "kim", 5)
    acd.pause("kim", "end of shift", 30)
    restored = replay(tape)
    assert restored.agents["kim"].pause_after == "end of shift"
    acd2, tape2 = restarted(restored, at=70)
    assert [(e.kind, e.detail) for e in tape2 if e.agent_id == "kim"] == [
        ("agent.state", "on_call (restored, 65 s in state)"), ("agent.pause_after", "end of shift")]
    acd2.call_ended("kim", RESTART + 10)
    kim = acd2.agent("kim")
    assert (kim.state, kim.reason) == (AgentState.PAUSED, "end of shift")
    # And a pause called off during the call is not restored.
    acd.resume("kim", 40)
    assert replay(tape).agents["kim"].pause_after is None


def test_a_ringing_agent_at_the_kill_comes_back_available_and_the_caller_keeps_the_place():
    tape = Tape()
    acd = engine(tape)
    acd.login("kim", 0)
    acd.login("lee", 1)
    acd.enqueue("c1", "general", "normal", 2)
    acd.enqueue("c2", "general", "normal", 3)
    assert acd.offers(3) == [Offer("c1", "kim", "general"), Offer("c2", "lee", "general")]
    acd.pause("lee", "break", 4)                                # asked for while ringing
    restored = replay(tape)                                     # killed at 5 s
    kim, lee = restored.agents["kim"], restored.agents["lee"]
    assert (kim.state, kim.call_id) == (AgentState.AVAILABLE, None)
    assert (lee.state, lee.reason) == (AgentState.PAUSED, "break")
    assert list(restored.waiting) == ["c1", "c2"]
    acd2, _ = restarted(restored, at=10)
    readopt(acd2, restored, "c2", at=10, now=RESTART + 1)
    readopt(acd2, restored, "c1", at=10, now=RESTART + 1)
    assert acd2.offers(RESTART + 1) == [Offer("c1", "kim", "general")]


def test_a_wrap_up_goes_on_after_the_restart_until_it_is_over():
    tape = Tape()
    acd = engine(tape)
    acd.login("kim", 0)
    acd.login("lee", 0)
    acd.enqueue("c1", "general", "normal", 1)
    acd.enqueue("c2", "general", "normal", 1)
    assert acd.offers(1) == [Offer("c1", "kim", "general"), Offer("c2", "lee", "general")]
    acd.answered("c1", "kim", 2)
    acd.answered("c2", "lee", 2)
    acd.call_ended("kim", 50)                                   # wrap-up until 60
    acd.call_ended("lee", 55)                                   # wrap-up until 65
    restored = replay(tape)
    assert restored.agents["kim"].state is AgentState.WRAP_UP
    assert restored.agents["kim"].queue == "general"
    acd2, _ = restarted(restored, at=62)
    assert acd2.agent("kim").state is AgentState.AVAILABLE     # its wrap-up ended meanwhile
    assert acd2.agent("lee").state is AgentState.WRAP_UP
    acd2.tick(RESTART + 3)
    assert acd2.agent("lee").state is AgentState.AVAILABLE


def test_a_caller_gone_during_the_restart_is_closed_in_the_log():
    tape = Tape()
    acd = engine(tape)
    acd.enqueue("c1", "general", "normal", 0)
    restored = replay(tape)
    acd2, tape2 = restarted(restored, at=30)
    acd2.gone_during_restart("c1", "general", RESTART + 1)      # no channel found for it
    assert replay([*tape, *tape2]).waiting == {}
    assert tape2[-1].kind == "call.left" and tape2[-1].detail == "gone during restart"
    acd2.enqueue("c2", "general", "normal", RESTART + 2)
    with pytest.raises(AcdStateError, match="waiting in queue 'general'"):
        acd2.gone_during_restart("c2", "general", RESTART + 3)


# -- what cannot be read, and older logs --------------------------------------------------------

def ev(seconds: float, kind: str, *, call_id: str | None = None, agent_id: str | None = None,
       queue: str | None = "general", detail: str = "") -> QueueEvent:
    return QueueEvent(wall(seconds), kind, call_id, agent_id, queue, detail)


def test_events_that_cannot_be_read_are_reported_and_change_nothing():
    restored = replay([
        ev(0, "agent.state", agent_id="kim", detail="paused: lunch"),
        ev(1, "agent.state", agent_id="kim", detail="dancing"),
        ev(2, "call.queued", call_id="c1", queue=None, detail="normal"),
        ev(3, "call.queued", call_id="c2", detail="normal; waited soon s"),
        ev(4, "call.queued", call_id="c3", detail=""),
        ev(5, "agent.state", agent_id="lee", call_id=None, detail="on_call"),
        ev(6, "something.new", call_id="c4"),
        ev(7, "call.queued", call_id="c5", detail="normal; waited 99999999999999999999 s"),
        ev(8, "agent.state", agent_id="park", detail="available (restored, 9999999999999 s in state)"),
    ])
    assert restored.agents["kim"] == RestoredAgent("kim", AgentState.PAUSED, "lunch", wall(0), None)
    assert restored.agents["lee"].state is AgentState.AVAILABLE
    assert restored.waiting == {} and restored.talking == {}
    assert restored.agents.keys() == {"kim", "lee"}
    assert len(restored.problems) == 7
    assert all("out of the calendar's range; event ignored" in p for p in restored.problems[4:6])
    assert "no agent state is called 'dancing'" in restored.problems[0]
    assert "names no queue" in restored.problems[1] and "'waited soon s'" in restored.problems[2]
    assert restored.problems[6].startswith("agent lee: on a call the log does not name")


def test_an_older_engines_log_reads_as_newcomers_of_that_priority():
    restored = replay([
        ev(0, "call.queued", call_id="c1", detail="elderly"),
        ev(1, "agent.state", agent_id="kim", queue=None, detail="paused: no answer"),
    ])
    assert restored.waiting["c1"] == RestoredWaiting("c1", "general", "elderly", None, None,
                                                     wall(0))
    assert restored.agents["kim"].reason == "no answer"


def test_a_reason_may_hold_anything_and_reads_back_whole():
    tape = Tape()
    acd = engine(tape)
    reason = "asked for; waited 3 s; language xx: (restored)"
    acd.enqueue("c1", "general", "normal", 0, reason=reason, language="vi")
    acd.login("kim", 0)
    acd.pause("kim", "doctor: 2 p.m. (restored)", 1)
    restored = replay(tape)
    assert (restored.waiting["c1"].reason, restored.waiting["c1"].language) == (reason, "vi")
    assert restored.agents["kim"].reason == "doctor: 2 p.m. (restored)"


# -- Acd.restore_agent --------------------------------------------------------------------------

def test_restoring_sets_the_state_without_ringing_and_says_so():
    events: list[Event] = []
    acd = Acd(QUEUES, AGENTS, on_event=events.append)
    acd.enqueue("c1", "general", "normal", 100)
    status = acd.restore_agent("kim", AgentState.PAUSED, "lunch", 100, since=40)
    assert (status.state, status.reason, status.since) == (AgentState.PAUSED, "lunch", 40)
    assert events[-1] == Event(at=100, kind="agent.state", agent_id="kim",
                               detail="paused: lunch (restored, 60 s in state)")
    acd.restore_agent("lee", AgentState.AVAILABLE, None, 100, since=250)   # (a later since: now)
    assert acd.agent("lee").since == 100
    assert [e.kind for e in events].count("call.offered") == 0
    assert acd.offers(101) == [Offer("c1", "lee", "general")]


def test_a_restored_available_agent_keeps_the_turn_of_the_longest_idle():
    acd = Acd(QUEUES, AGENTS)
    acd.login("lee", 100)
    acd.restore_agent("kim", AgentState.AVAILABLE, None, 100, since=20)   # free since 80 s
    acd.enqueue("c1", "general", "normal", 101)
    assert acd.offers(101) == [Offer("c1", "kim", "general")]


def test_restoring_what_cannot_be_is_refused_with_the_reason():
    acd = Acd(QUEUES, AGENTS)
    with pytest.raises(AcdStateError, match="a ring does not outlive the engine"):
        acd.restore_agent("kim", AgentState.RINGING, None, 0, call_id="c1", queue="general")
    with pytest.raises(AcdStateError, match="needs its call id and queue"):
        acd.restore_agent("kim", AgentState.ON_CALL, None, 0, call_id="c1")
    with pytest.raises(NoSuchQueue, match="no queue named 'sales'"):
        acd.restore_agent("kim", AgentState.ON_CALL, None, 0, call_id="c1", queue="sales")
    with pytest.raises(AcdStateError, match="a pause after the call needs a call"):
        acd.restore_agent("kim", AgentState.AVAILABLE, None, 0, pause_after="lunch")
    with pytest.raises(NoSuchAgent, match="no agent 'park'"):
        acd.restore_agent("park", AgentState.AVAILABLE, None, 0)
    acd.enqueue("c1", "general", "normal", 0)
    with pytest.raises(AcdStateError, match="call c1 is waiting in queue 'general'"):
        acd.restore_agent("kim", AgentState.ON_CALL, None, 0, call_id="c1", queue="general")
    acd.restore_agent("kim", AgentState.ON_CALL, None, 0, call_id="c2", queue="general")
    with pytest.raises(AcdStateError, match="call c2 is already with agent kim"):
        acd.restore_agent("lee", AgentState.ON_CALL, None, 0, call_id="c2", queue="general")
    with pytest.raises(AcdStateError, match="restore agents before calls are offered"):
        acd.restore_agent("kim", AgentState.AVAILABLE, None, 1)
    assert acd.agent("lee").state is AgentState.OFFLINE


def test_agents_the_config_no_longer_has_are_reported_not_restored():
    restored = replay([ev(0, "agent.state", agent_id="gone", queue=None, detail="available"),
                       ev(0, "agent.state", agent_id="kim", queue=None, detail="paused: lunch")])
    acd = Acd(QUEUES, AGENTS)
    problems = restore_agents(acd, restored, wall_now=wall(10), now=RESTART)
    assert problems == ["agent gone not restored (available): no agent 'gone'"]
    assert acd.agent("kim").state is AgentState.PAUSED


# -- load_restored: what is read from the store -------------------------------------------------

async def check_load_restored(store) -> None:
    days_ago = Tape(zero=T0 - dt.timedelta(days=2))
    old = engine(days_ago)
    old.login("lee", 0)
    old.pause("lee", "sick leave", 60)                          # lee's last word, two days ago
    old.enqueue("ancient", "general", "normal", 70)             # queued before the horizon
    tape = Tape()
    acd = engine(tape)
    acd.login("kim", 0)
    for n in range(30):                                         # a busy morning for kim
        acd.enqueue(f"x{n}", "general", "normal", 10 * n + 1)
        acd.offers(10 * n + 1)
        acd.answered(f"x{n}", "kim", 10 * n + 2)
        acd.call_ended("kim", 10 * n + 5)
        acd.tick(10 * n + 15)
    acd.enqueue("c1", "general", "elderly", 400, reason="bypass: elderly", language="ko")
    acd.enqueue("c2", "general", "normal", 401)
    acd.offers(401)
    acd.answered("c1", "kim", 402)
    acd.pause("kim", "end of shift", 403)
    await store.record_events(days_ago)
    await store.record_events(tape[: len(tape) // 2])           # written in batches
    await store.record_events(tape[len(tape) // 2:])

    restored = await load_restored(store, wall(410), horizon=600)
    assert dict(restored.agents) == {
        "lee": RestoredAgent("lee", AgentState.PAUSED, "sick leave",
                             days_ago.zero + dt.timedelta(seconds=60), None),
        "kim": RestoredAgent("kim", AgentState.ON_CALL, None, wall(402), "c1", queue="general",
                             pause_after="end of shift"),
    }
    assert dict(restored.talking) == {"c1": RestoredTalk("c1", "kim", "general", wall(402))}
    assert dict(restored.waiting) == {
        "c2": RestoredWaiting("c2", "general", "normal", None, None, wall(401))}
    # The same as replaying the whole log, but for the caller queued before the horizon.
    everything = replay([*days_ago, *tape])
    assert everything.waiting.keys() == {"ancient", "c2"}
    assert everything.agents == restored.agents and everything.talking == restored.talking


async def test_load_restored_reads_every_agent_however_old_and_the_line_within_the_horizon(
        store_url):
    async with open_store(store_url) as store:
        await check_load_restored(store)


async def test_the_memory_store_gives_load_restored_what_the_databases_give():
    await check_load_restored(MemoryStore())


async def test_load_restored_of_an_empty_log_is_empty_and_the_horizon_must_be_positive(store_url):
    async with open_store(store_url) as store:
        await check_empty(store)
    await check_empty(MemoryStore())


async def check_empty(store) -> None:
    restored = await load_restored(store, wall(0), horizon=60)
    assert (restored.agents, restored.waiting, restored.talking) == ({}, {}, {})
    with pytest.raises(ValueError, match="positive number of seconds"):
        await load_restored(store, wall(0), horizon=0)
