"""The waiting lines and the agents as pure state: who is offered to whom, and when."""

from __future__ import annotations

import pytest

from ivr.acd.core import Acd
from ivr.acd.model import (
    AcdError, AcdStateError, AgentSpec, AgentState, Event, NoSuchAgent, NoSuchCall, NoSuchQueue,
    Offer, QueueSpec,
)

GENERAL = QueueSpec(name="general", skills=frozenset({"general"}), max_wait=600, wrap_up=10)
CARDS = QueueSpec(name="cards", skills=frozenset({"cards"}), max_wait=300, wrap_up=5)


def agent(agent_id: str, *skills: str) -> AgentSpec:
    return AgentSpec(id=agent_id, name=agent_id.title(), endpoint=f"PJSIP/{agent_id}",
                     skills=frozenset(skills or ("general",)))


def acd(*agents: AgentSpec, queues=(GENERAL,), events: list[Event] | None = None, **kw) -> Acd:
    on_event = events.append if events is not None else None
    return Acd({q.name: q for q in queues}, agents or [agent("kim")], on_event=on_event, **kw)


def line(a: Acd, queue: str = "general") -> list[str]:
    return [w.call_id for w in a.waiting(queue)]


def connect(a: Acd, call_id: str, agent_id: str, now: float) -> None:
    """The agent is rung for the caller and answers at ``now``."""
    assert Offer(call_id, agent_id, a.waiting_call(call_id).queue) in a.offers(now)
    a.answered(call_id, agent_id, now)


# -- the order of the line ---------------------------------------------------------------------

def test_callers_of_one_level_are_served_first_come_first_served():
    a = acd()
    for i, call in enumerate(["c1", "c2", "c3"]):
        a.enqueue(call, "general", "normal", now=float(i))
    assert line(a) == ["c1", "c2", "c3"]
    assert [a.position(c) for c in ("c1", "c2", "c3")] == [1, 2, 3]


def test_an_elderly_caller_who_arrives_last_is_offered_first():
    a = acd()
    a.enqueue("c1", "general", "normal", now=0)
    a.enqueue("c2", "general", "repeat", now=1)
    a.enqueue("old", "general", "elderly", now=2)
    a.login("kim", now=3)
    assert a.offers(now=3) == [Offer("old", "kim", "general")]


def test_priority_levels_order_the_line_then_arrival():
    a = acd()
    a.enqueue("n1", "general", "normal", now=0)
    a.enqueue("r1", "general", "repeat", now=1)
    a.enqueue("e1", "general", "elderly", now=2)
    a.enqueue("r2", "general", "repeat", now=3)
    a.enqueue("e2", "general", "elderly", now=4)
    assert line(a) == ["e1", "e2", "r1", "r2", "n1"]
    assert a.position("n1") == 5


def test_an_unknown_or_missing_priority_waits_as_normal():
    a = acd()
    a.enqueue("vip", "general", "platinum", now=0)
    a.enqueue("none", "general", None, now=1)
    a.enqueue("n", "general", "normal", now=2)
    assert line(a) == ["vip", "none", "n"]
    assert a.waiting_call("vip").priority == "normal"


def test_without_a_normal_level_an_unknown_priority_ranks_last():
    a = acd(priorities=("gold", "silver"))
    a.enqueue("x", "general", "whatever", now=0)
    a.enqueue("s", "general", "silver", now=1)
    a.enqueue("g", "general", "gold", now=2)
    assert line(a) == ["g", "x", "s"]         # "whatever" is "silver" (the last), and came first


def test_a_caller_coming_back_with_the_original_arrival_keeps_the_place():
    a = acd()
    a.enqueue("c1", "general", "normal", now=0)
    a.enqueue("c2", "general", "normal", now=10)
    a.enqueue("c3", "general", "normal", now=20)
    a.leave("c2", now=30, why="callback")                     # offered a callback
    a.enqueue("c2", "general", "normal", now=45, arrived_at=10)  # declined it: back in line
    assert line(a) == ["c1", "c2", "c3"]


def test_two_callers_arriving_at_the_same_moment_keep_the_order_they_were_queued_in():
    a = acd()
    a.enqueue("first", "general", "normal", now=5)
    a.enqueue("second", "general", "normal", now=5)
    assert line(a) == ["first", "second"]


def test_a_caller_who_hangs_up_leaves_the_line_and_those_behind_move_up():
    a = acd()
    for i, call in enumerate(["c1", "c2", "c3"]):
        a.enqueue(call, "general", "normal", now=float(i))
    left = a.leave("c1", now=10, why="caller_hangup")
    assert left.call_id == "c1" and left.offered_to is None
    assert line(a) == ["c2", "c3"] and a.position("c3") == 2


def test_leaving_when_not_in_line_returns_none():
    a = acd()
    assert a.leave("ghost", now=0, why="caller_hangup") is None


def test_an_unknown_queue_is_refused_with_its_name():
    a = acd()
    with pytest.raises(KeyError, match="no queue named 'sales'") as err:
        a.enqueue("c1", "sales", "normal", now=0)
    assert isinstance(err.value, NoSuchQueue) and isinstance(err.value, AcdError)
    assert "queues: general" in str(err.value)


def test_the_same_call_cannot_wait_twice():
    a = acd(queues=(GENERAL, CARDS))
    a.enqueue("c1", "general", "normal", now=0)
    with pytest.raises(ValueError, match="already waiting in queue 'general'") as err:
        a.enqueue("c1", "cards", "normal", now=1)
    assert isinstance(err.value, AcdStateError) and isinstance(err.value, AcdError)
    assert line(a, "cards") == []


def test_the_place_of_a_caller_not_in_line_is_an_error():
    a = acd()
    with pytest.raises(NoSuchCall, match="not waiting"):
        a.position("ghost")


def test_each_queue_has_its_own_line():
    a = acd(agent("kim", "general", "cards"), queues=(GENERAL, CARDS))
    a.enqueue("g1", "general", "normal", now=0)
    a.enqueue("c1", "cards", "normal", now=1)
    a.enqueue("g2", "general", "normal", now=2)
    assert line(a, "general") == ["g1", "g2"] and line(a, "cards") == ["c1"]
    assert a.position("c1") == 1 and a.position("g2") == 2


# -- offering callers to agents ----------------------------------------------------------------

def test_nobody_is_offered_while_no_agent_is_logged_in():
    a = acd()
    a.enqueue("c1", "general", "normal", now=0)
    assert a.offers(now=1) == []


def test_a_free_agent_is_rung_for_the_first_caller():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=1)
    assert a.offers(now=1) == [Offer("c1", "kim", "general")]
    kim = a.agent("kim")
    assert kim.state == AgentState.RINGING and kim.current_call == "c1"
    assert a.waiting_call("c1").offered_to == "kim"
    assert line(a) == ["c1"]                              # the caller keeps the place while it rings


def test_a_ringing_agent_is_never_offered_a_second_call():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=1)
    a.enqueue("c2", "general", "normal", now=2)
    assert a.offers(now=2) == [Offer("c1", "kim", "general")]
    assert a.offers(now=3) == []
    assert a.offers(now=4) == []
    assert a.waiting_call("c2").offered_to is None


def test_a_caller_being_rung_is_not_offered_to_a_second_agent():
    a = acd(agent("kim"), agent("lee"))
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=1)
    a.offers(now=1)
    a.login("lee", now=2)
    assert a.offers(now=2) == []
    a.enqueue("c2", "general", "normal", now=3)
    assert a.offers(now=3) == [Offer("c2", "lee", "general")]


def test_the_agent_free_longest_takes_the_next_caller():
    a = acd(agent("kim"), agent("lee"), agent("park"))
    a.login("lee", now=0)
    a.login("kim", now=5)
    a.login("park", now=10)
    a.enqueue("c1", "general", "normal", now=20)
    a.enqueue("c2", "general", "normal", now=21)
    assert a.offers(now=21) == [Offer("c1", "lee", "general"), Offer("c2", "kim", "general")]
    assert a.agent("park").state == AgentState.AVAILABLE


def test_several_free_agents_take_several_callers_in_one_go():
    a = acd(agent("kim"), agent("lee"))
    for i, call in enumerate(["c1", "c2", "c3"]):
        a.enqueue(call, "general", "normal", now=float(i))
    a.login("kim", now=5)
    a.login("lee", now=6)
    assert [(o.call_id, o.agent_id) for o in a.offers(now=6)] == [("c1", "kim"), ("c2", "lee")]


def test_an_agent_is_offered_only_callers_of_queues_its_skills_cover():
    a = acd(agent("kim", "general"), queues=(GENERAL, CARDS))
    a.login("kim", now=0)
    a.enqueue("card1", "cards", "elderly", now=1)
    assert a.offers(now=1) == []
    a.enqueue("gen1", "general", "normal", now=2)
    assert a.offers(now=2) == [Offer("gen1", "kim", "general")]


def test_a_queue_needing_two_skills_is_served_only_by_agents_with_both():
    both = QueueSpec(name="cards_en", skills=frozenset({"cards", "english"}))
    a = acd(agent("kim", "cards"), agent("lee", "cards", "english"), queues=(both,))
    a.login("kim", now=0)
    a.login("lee", now=1)
    a.enqueue("c1", "cards_en", "normal", now=2)
    assert a.offers(now=2) == [Offer("c1", "lee", "cards_en")]


def test_across_queues_the_caller_waiting_longest_gets_the_shared_agent():
    a = acd(agent("kim", "general", "cards"), queues=(GENERAL, CARDS))
    a.enqueue("gen", "general", "normal", now=10)
    a.enqueue("card", "cards", "normal", now=5)
    a.login("kim", now=20)
    assert a.offers(now=20) == [Offer("card", "kim", "cards")]


def test_across_queues_priority_comes_before_arrival():
    a = acd(agent("kim", "general", "cards"), queues=(GENERAL, CARDS))
    a.enqueue("card", "cards", "normal", now=0)
    a.enqueue("old", "general", "elderly", now=30)
    a.login("kim", now=40)
    assert a.offers(now=40) == [Offer("old", "kim", "general")]


def test_a_queue_without_a_free_agent_does_not_hold_up_the_others():
    a = acd(agent("kim", "general"), queues=(GENERAL, CARDS))
    a.enqueue("card", "cards", "elderly", now=0)          # best caller, but nobody for cards
    a.enqueue("gen", "general", "normal", now=10)
    a.login("kim", now=20)
    assert a.offers(now=20) == [Offer("gen", "kim", "general")]


def test_a_paused_agent_is_not_offered_calls():
    a = acd()
    a.login("kim", now=0)
    a.pause("kim", "lunch", now=1)
    a.enqueue("c1", "general", "normal", now=2)
    assert a.offers(now=2) == []
    a.resume("kim", now=3)
    assert a.offers(now=3) == [Offer("c1", "kim", "general")]


# -- the ring ------------------------------------------------------------------------------

def test_an_agent_who_does_not_answer_is_paused_with_the_reason():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=1)
    a.offers(now=1)
    a.ring_failed("c1", "kim", now=16)
    kim = a.agent("kim")
    assert kim.state == AgentState.PAUSED and kim.reason == "no answer"
    assert kim.current_call is None and kim.since == 16


def test_after_a_ring_out_the_caller_keeps_the_place_and_goes_to_the_next_agent():
    a = acd(agent("kim"), agent("lee"))
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=1)
    a.enqueue("c2", "general", "normal", now=2)
    a.offers(now=2)
    a.ring_failed("c1", "kim", now=17)
    assert line(a) == ["c1", "c2"]
    assert a.waiting_call("c1").offered_to is None
    a.login("lee", now=18)
    assert a.offers(now=18) == [Offer("c1", "lee", "general")]


def test_a_caller_who_hangs_up_while_the_agent_rings_leaves_the_agent_ringing_until_cancelled():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=1)
    a.offers(now=1)
    left = a.leave("c1", now=4, why="caller_hangup")
    assert left.offered_to == "kim"                       # whoever rings the phone must stop it
    assert a.agent("kim").state == AgentState.RINGING
    assert a.offers(now=4) == []
    a.ring_cancelled("kim", now=5)
    assert a.agent("kim").state == AgentState.AVAILABLE


def test_a_cancelled_ring_keeps_the_agents_turn_among_free_agents():
    a = acd(agent("kim"), agent("lee"))
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=1)
    a.offers(now=1)                                       # kim rings
    a.login("lee", now=2)
    a.leave("c1", now=3, why="caller_hangup")
    a.ring_cancelled("kim", now=4)
    a.enqueue("c2", "general", "normal", now=5)
    assert a.offers(now=5) == [Offer("c2", "kim", "general")]    # free since 0, before lee


def test_a_late_ring_cancelled_changes_nothing():
    a = acd()
    a.login("kim", now=0)
    a.pause("kim", "break", now=1)
    a.ring_cancelled("kim", now=2)
    assert a.agent("kim").state == AgentState.PAUSED


def test_an_agent_answering_a_call_it_was_not_rung_for_is_refused():
    a = acd(agent("kim"), agent("lee"))
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=1)
    a.offers(now=1)
    with pytest.raises(ValueError, match="not rung for call c1"):
        a.answered("c1", "lee", now=2)


def test_answering_takes_the_caller_out_of_line_and_puts_the_agent_on_the_call():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=100)
    a.enqueue("c2", "general", "normal", now=101)
    connect(a, "c1", "kim", now=103)
    kim = a.agent("kim")
    assert kim.state == AgentState.ON_CALL and kim.current_call == "c1" and kim.handled == 1
    assert line(a) == ["c2"] and a.position("c2") == 1


# -- after the call ------------------------------------------------------------------------

def test_wrap_up_delays_the_next_offer_until_a_tick_passes_it():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    a.enqueue("c2", "general", "normal", now=1)
    connect(a, "c1", "kim", now=2)
    a.call_ended("kim", now=100)
    kim = a.agent("kim")
    assert kim.state == AgentState.WRAP_UP and kim.wrap_until == 110
    a.tick(now=105)
    assert a.offers(now=105) == []
    a.tick(now=110)
    assert a.agent("kim").state == AgentState.AVAILABLE
    assert a.offers(now=110) == [Offer("c2", "kim", "general")]


def test_next_wrap_end_tells_when_to_tick():
    a = acd()
    a.login("kim", now=0)
    assert a.next_wrap_end() is None
    a.enqueue("c1", "general", "normal", now=0)
    connect(a, "c1", "kim", now=1)
    a.call_ended("kim", now=50)
    assert a.next_wrap_end() == 60


def test_without_wrap_up_the_agent_is_free_when_the_call_ends():
    quick = QueueSpec(name="general", skills=frozenset({"general"}), wrap_up=0)
    a = acd(queues=(quick,))
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    connect(a, "c1", "kim", now=1)
    a.call_ended("kim", now=60)
    assert a.agent("kim").state == AgentState.AVAILABLE


def test_a_pause_asked_for_during_a_call_starts_when_the_call_ends():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    a.enqueue("c2", "general", "normal", now=1)
    connect(a, "c1", "kim", now=1)
    a.pause("kim", "lunch", now=30)
    assert a.agent("kim").state == AgentState.ON_CALL
    assert a.agent("kim").pause_after == "lunch"
    a.call_ended("kim", now=90)
    kim = a.agent("kim")
    assert kim.state == AgentState.PAUSED and kim.reason == "lunch" and kim.pause_after is None
    a.tick(now=200)
    assert a.offers(now=200) == []


def test_resuming_during_the_call_calls_the_pause_off():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    connect(a, "c1", "kim", now=1)
    a.pause("kim", "lunch", now=30)
    a.resume("kim", now=40)
    a.call_ended("kim", now=90)
    assert a.agent("kim").state == AgentState.WRAP_UP


def test_a_pause_during_wrap_up_starts_at_once():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    connect(a, "c1", "kim", now=1)
    a.call_ended("kim", now=60)
    a.pause("kim", "coffee", now=62)
    a.tick(now=75)                                        # the wrap-up's end changes nothing now
    assert a.agent("kim").state == AgentState.PAUSED


def test_the_call_ending_for_an_agent_not_on_a_call_is_refused():
    a = acd()
    a.login("kim", now=0)
    with pytest.raises(ValueError, match="not on a call"):
        a.call_ended("kim", now=1)


# -- agents logging in and out -------------------------------------------------------------

def test_agents_start_offline():
    a = acd(agent("kim"), agent("lee"))
    assert {s.spec.id: s.state for s in a.agents()} == {"kim": AgentState.OFFLINE, "lee": AgentState.OFFLINE}


def test_logging_in_twice_changes_nothing():
    a = acd()
    a.login("kim", now=0)
    a.pause("kim", "break", now=1)
    a.login("kim", now=2)
    assert a.agent("kim").state == AgentState.PAUSED


def test_logout_is_refused_while_on_a_call():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    connect(a, "c1", "kim", now=1)
    with pytest.raises(ValueError, match="agent kim is on a call; log out after it"):
        a.logout("kim", now=2)
    a.call_ended("kim", now=60)
    a.logout("kim", now=61)
    assert a.agent("kim").state == AgentState.OFFLINE


def test_logout_is_refused_while_ringing():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    a.offers(now=0)
    with pytest.raises(AcdStateError, match="on a call"):
        a.logout("kim", now=1)


def test_an_agent_who_is_not_logged_in_cannot_pause():
    a = acd()
    with pytest.raises(ValueError, match="not logged in"):
        a.pause("kim", "lunch", now=0)


def test_an_unknown_agent_is_named_in_the_error():
    a = acd()
    for action in (a.login, a.logout, a.resume, lambda agent_id, now: a.agent(agent_id)):
        with pytest.raises(KeyError) as err:
            action("nobody", 0)
        assert isinstance(err.value, NoSuchAgent)
        assert str(err.value) == "no agent 'nobody'"


def test_staffed_counts_agents_on_duty_and_paused_apart():
    a = acd(agent("kim"), agent("lee"), agent("park"), agent("choi", "cards"), queues=(GENERAL, CARDS))
    a.login("kim", now=0)
    a.login("lee", now=0)
    a.pause("lee", "lunch", now=1)
    a.login("choi", now=0)
    assert a.staffed("general") == (1, 1)
    assert a.serving_agents("general") == 2
    assert a.staffed("cards") == (1, 0)


# -- deadlines -----------------------------------------------------------------------------

def test_expired_lists_callers_who_waited_max_wait():
    a = acd()
    a.enqueue("c1", "general", "normal", now=0)
    a.enqueue("c2", "general", "elderly", now=100)
    assert a.expired(now=599) == []
    assert [w.call_id for w in a.expired(now=600)] == ["c1"]
    assert [w.call_id for w in a.expired(now=700)] == ["c1", "c2"]


def test_expired_uses_each_queues_own_max_wait():
    a = acd(queues=(GENERAL, CARDS))
    a.enqueue("g", "general", "normal", now=0)
    a.enqueue("c", "cards", "normal", now=0)
    assert [w.call_id for w in a.expired(now=300)] == ["c"]


def test_a_caller_whose_agent_is_ringing_has_not_expired():
    a = acd()
    a.enqueue("c1", "general", "normal", now=0)
    a.login("kim", now=595)
    a.offers(now=595)
    assert a.expired(now=605) == []
    a.ring_failed("c1", "kim", now=610)
    assert [w.call_id for w in a.expired(now=610)] == ["c1"]


def test_a_caller_keeping_the_place_keeps_the_wait():
    a = acd()
    a.enqueue("c1", "general", "normal", now=500, arrived_at=0)
    assert [w.call_id for w in a.expired(now=600)] == ["c1"]


# -- events --------------------------------------------------------------------------------

def test_a_call_s_course_is_told_in_order():
    events: list[Event] = []
    a = acd(events=events)
    a.login("kim", now=0)
    a.enqueue("c1", "general", "elderly", now=1)
    a.offers(now=1)
    a.answered("c1", "kim", now=4.4)
    a.call_ended("kim", now=100)
    a.tick(now=110)
    told = [(e.kind, e.call_id, e.agent_id, e.detail) for e in events]
    assert told == [
        ("agent.state", None, "kim", "available"),
        ("call.queued", "c1", None, "elderly"),
        ("call.offered", "c1", "kim", ""),
        ("agent.state", "c1", "kim", "ringing"),
        ("call.connected", "c1", "kim", "3"),
        ("agent.state", "c1", "kim", "on_call"),
        ("agent.state", None, "kim", "wrap_up"),
        ("agent.state", None, "kim", "available"),
    ]
    assert [e.at for e in events] == [0, 1, 1, 1, 4.4, 4.4, 100, 110]
    assert all(e.queue == "general" for e in events if e.call_id)


def test_a_place_in_line_is_told_with_the_wait_so_far_the_language_and_the_reason():
    events: list[Event] = []
    a = acd(events=events)
    a.enqueue("c1", "general", "elderly", now=5, reason="bypass: elderly", language="ko")
    a.leave("c1", now=30, why="callback")
    a.enqueue("c1", "general", "elderly", now=41.5, arrived_at=5, reason="bypass: elderly",
              language="ko")
    assert [e.detail for e in events if e.kind == "call.queued"] == [
        "elderly; language ko; reason bypass: elderly",
        "elderly; waited 36.5 s; language ko; reason bypass: elderly"]


def test_a_caller_leaving_is_told_with_the_reason():
    events: list[Event] = []
    a = acd(events=events)
    a.enqueue("c1", "general", "normal", now=0)
    a.leave("c1", now=30, why="caller_hangup")
    assert events[-1] == Event(at=30, kind="call.left", call_id="c1", queue="general", detail="caller_hangup")


def test_a_ring_out_is_told_as_a_pause_for_no_answer():
    events: list[Event] = []
    a = acd(events=events)
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    a.offers(now=0)
    a.ring_failed("c1", "kim", now=15)
    assert (events[-1].kind, events[-1].detail) == ("agent.state", "paused: no answer")


def test_a_pause_asked_for_during_a_call_is_told_then_and_when_it_starts():
    events: list[Event] = []
    a = acd(events=events)
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    connect(a, "c1", "kim", now=1)
    a.pause("kim", "lunch", now=5)
    a.call_ended("kim", now=60)
    assert [(e.kind, e.detail) for e in events[-2:]] == [("agent.pause_after", "lunch"),
                                                          ("agent.state", "paused: lunch")]


def test_nothing_is_told_when_nothing_changes():
    events: list[Event] = []
    a = acd(events=events)
    a.enqueue("c1", "general", "normal", now=0)
    before = len(events)
    assert a.offers(now=1) == []
    a.tick(now=2)
    a.leave("ghost", now=3, why="caller_hangup")
    assert len(events) == before


# -- the wallboard and the estimate --------------------------------------------------------

def test_the_snapshot_shows_each_queue_and_agent():
    a = acd(agent("kim"), agent("lee"))
    a.login("kim", now=0)
    a.login("lee", now=0)
    a.pause("lee", "lunch", now=5)
    a.enqueue("c1", "general", "normal", now=10)
    a.enqueue("c2", "general", "normal", now=20)
    a.offers(now=20)
    snap = a.snapshot(now=40)
    assert snap["queues"]["general"]["waiting"] == 2
    assert snap["queues"]["general"]["ringing"] == 1
    assert snap["queues"]["general"]["oldest_wait"] == 30
    assert (snap["queues"]["general"]["staffed"], snap["queues"]["general"]["paused"]) == (1, 1)
    assert snap["agents"]["kim"]["state"] == "ringing" and snap["agents"]["kim"]["call"] == "c1"
    assert snap["agents"]["lee"] == {"state": "paused", "for_seconds": 35, "reason": "lunch",
                                     "call": None, "handled": 0, "center": None}


def test_an_agent_who_never_logged_in_has_no_time_in_state():
    """Not "offline 1214 s" (the machine's uptime on a monotonic clock): no time at all."""
    a = acd(agent("kim"), agent("lee"))
    a.login("kim", now=1214)
    assert a.agent("lee").since is None and a.agent("kim").since == 1214
    snap = a.snapshot(now=1300)
    assert snap["agents"]["lee"]["for_seconds"] is None
    assert snap["agents"]["kim"]["for_seconds"] == 86
    a.logout("kim", now=1400)
    assert (a.agent("kim").state, a.agent("kim").since) == (AgentState.OFFLINE, 1400)


def test_the_snapshot_without_a_time_is_as_of_the_latest_operation():
    a = acd()
    a.enqueue("c1", "general", "normal", now=10)
    a.enqueue("c2", "general", "normal", now=25)
    snap = a.snapshot()
    assert snap["as_of"] == 25 and snap["queues"]["general"]["oldest_wait"] == 15


def test_no_estimate_when_nobody_on_duty_serves_the_queue():
    a = acd()
    a.enqueue("c1", "general", "normal", now=0)
    assert a.estimate_wait("c1", now=1) is None
    a.login("kim", now=2)
    a.pause("kim", "lunch", now=3)
    assert a.estimate_wait("c1", now=4) is None


def test_the_first_caller_with_a_free_agent_waits_about_nothing():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=1)
    assert a.estimate_wait("c1", now=1) == pytest.approx(0)


def test_the_estimate_grows_with_the_place_in_line():
    a = acd(agent("kim"), agent("lee"))
    for agent_id in ("kim", "lee"):
        a.login(agent_id, now=0)
    for i in range(6):
        a.enqueue(f"c{i}", "general", "normal", now=float(i))
    a.offers(now=6)
    a.answered("c0", "kim", now=8)
    a.answered("c1", "lee", now=8)
    waits = [a.estimate_wait(f"c{i}", now=20) for i in range(2, 6)]
    assert waits == sorted(waits) and waits[0] < waits[-1]
    assert waits[0] > 0


def test_an_agent_on_a_call_is_expected_free_after_the_rest_of_the_mean_handle_time():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    a.enqueue("c2", "general", "normal", now=0)
    connect(a, "c1", "kim", now=0)
    prior = a.estimator("general").mean_handle
    assert a.estimate_wait("c2", now=60) == pytest.approx(prior - 60)


def test_handled_calls_teach_the_estimate_the_handle_time():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    connect(a, "c1", "kim", now=0)
    a.call_ended("kim", now=290)                         # 290 s talk + 10 s wrap-up
    assert a.estimator("general").mean_handle == pytest.approx(300)


def test_an_agent_due_to_pause_after_the_call_is_not_counted_on():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    a.enqueue("c2", "general", "normal", now=0)
    connect(a, "c1", "kim", now=0)
    a.pause("kim", "lunch", now=10)
    assert a.estimate_wait("c2", now=20) is None


def test_a_caller_whose_agent_is_ringing_is_estimated_at_zero():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    a.offers(now=0)
    assert a.estimate_wait("c1", now=2) == 0


def test_callers_leaving_unserved_count_as_abandonment_and_answered_ones_do_not():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    a.enqueue("c2", "general", "normal", now=0)
    a.leave("c2", now=5, why="caller_hangup")
    connect(a, "c1", "kim", now=6)
    assert 0.4 < a.estimator("general").abandon_rate < 0.6


def test_a_thousand_callers_keep_their_order():
    a = acd()
    for i in range(1000):
        a.enqueue(f"c{i}", "general", ("elderly", "normal", "repeat")[i % 3], now=float(i))
    for i in range(0, 1000, 7):
        a.leave(f"c{i}", now=2000, why="caller_hangup")
    order = a.waiting("general")
    assert [w.key for w in order] == sorted(w.key for w in order)
    assert all(a.position(w.call_id) == n for n, w in enumerate(order, 1))


def test_the_ring_before_an_answer_is_learnt_and_added_to_the_wait():
    a = acd(agent("kim"), agent("lee"))
    a.login("kim", now=0)
    a.login("lee", now=0)
    a.enqueue("c1", "general", "normal", now=0)
    a.offers(now=0)
    a.answered("c1", "kim", now=4)
    a.enqueue("c2", "general", "normal", now=5)
    assert a.estimator("general").mean_ring == 4
    assert a.estimate_wait("c2", now=5) == pytest.approx(4)     # lee is free: just the ring


def test_a_normal_caller_expects_elderly_callers_to_go_ahead_and_an_elderly_one_does_not():
    a = acd()
    a.login("kim", now=0)
    a.enqueue("first", "general", "normal", now=0)
    connect(a, "first", "kim", now=0)
    for i in range(30):                                   # elderly callers keep coming …
        a.enqueue(f"e{i}", "general", "elderly", now=float(i * 10))
        a.leave(f"e{i}", now=float(i * 10) + 5, why="transferred")
    a.enqueue("normal", "general", "normal", now=300)
    a.enqueue("elderly", "general", "elderly", now=300)
    assert a.position("normal") == 2 and a.position("elderly") == 1
    est = a.estimator("general")
    assert est.arrival_rate(300, above_rank=2) > 0.03
    # … so the normal caller is told more than the wait the line alone would make
    kim_free = est.free_times([300.0], [])                # kim has been on the call 300 s
    assert a.estimate_wait("normal", now=300) > est.estimate(2, kim_free, 300)
    assert a.estimate_wait("elderly", now=300) == pytest.approx(est.estimate(1, kim_free, 300))
