"""One nationwide line across centers: agents serve their own center first, callers spill to
other centers after ``spill_after`` or at once when their own center's wait is much longer,
and priorities come first everywhere."""

from __future__ import annotations

import pytest

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, CenterRouting, Event, QueueSpec, read_queued

GENERAL = QueueSpec(name="general", skills=frozenset({"general"}), max_wait=900, wrap_up=0)


def agent(agent_id: str, center: str | None) -> AgentSpec:
    return AgentSpec(id=agent_id, name=agent_id, endpoint=f"PJSIP/{agent_id}",
                     skills=frozenset({"general"}), center=center)


SPILL_AFTER_60 = CenterRouting(60.0, None)


def acd(*agents: AgentSpec, routing: CenterRouting | None = SPILL_AFTER_60,
        events: list[Event] | None = None) -> Acd:
    return Acd({"general": GENERAL}, agents, centers=routing,
               on_event=events.append if events is not None else None)


def offered(a: Acd, now: float) -> list[tuple[str, str]]:
    return [(o.call_id, o.agent_id) for o in a.offers(now)]


def test_an_agent_takes_a_caller_of_its_own_center_before_an_earlier_one_from_another():
    a = acd(agent("seoul1", "seoul"), agent("busan1", "busan"))
    a.login("busan1", 0)
    a.enqueue("from-seoul", "general", "normal", 10, center="seoul")
    a.enqueue("from-busan", "general", "normal", 20, center="busan")
    assert offered(a, 21) == [("from-busan", "busan1")]


def test_a_caller_is_not_served_by_another_center_before_spill_after():
    a = acd(agent("seoul1", "seoul"), agent("busan1", "busan"))
    a.login("busan1", 0)
    a.enqueue("from-seoul", "general", "normal", 10, center="seoul")
    assert offered(a, 69) == []
    offers = a.offers(70)                        # 60 s in line: any center's agent
    assert [(o.call_id, o.agent_id) for o in offers] == [("from-seoul", "busan1")]
    assert offers[0].note == "served by busan: seoul caller after 60 s in line"


def test_priorities_come_first_across_centers():
    """An elderly caller of Daegu, eligible everywhere, is served by Seoul's agent before a
    normal Seoul caller who has waited longer."""
    a = acd(agent("seoul1", "seoul"), agent("daegu1", "daegu"))
    a.enqueue("seoul-normal", "general", "normal", 0, center="seoul")
    a.enqueue("daegu-elderly", "general", "elderly", 30, center="daegu")
    a.login("seoul1", 100)
    assert offered(a, 100) == [("daegu-elderly", "seoul1")]


def test_an_elderly_caller_not_yet_eligible_elsewhere_leaves_the_agent_to_its_own_center():
    a = acd(agent("seoul1", "seoul"), agent("daegu1", "daegu"))
    a.enqueue("seoul-normal", "general", "normal", 0, center="seoul")
    a.enqueue("daegu-elderly", "general", "elderly", 30, center="daegu")
    a.login("seoul1", 40)
    assert offered(a, 40) == [("seoul-normal", "seoul1")]


def test_without_spill_rules_each_center_serves_only_its_own():
    a = acd(agent("seoul1", "seoul"), agent("busan1", "busan"), routing=CenterRouting(None, None))
    a.login("busan1", 0)
    a.enqueue("from-seoul", "general", "normal", 0, center="seoul")
    assert offered(a, 10_000) == []


def test_without_center_routing_the_line_is_one_pool_as_before():
    a = acd(agent("seoul1", "seoul"), agent("busan1", "busan"), routing=None)
    a.login("busan1", 0)
    a.enqueue("from-seoul", "general", "normal", 0, center="seoul")
    assert offered(a, 1) == [("from-seoul", "busan1")]


def test_callers_and_agents_without_a_center_belong_to_every_center():
    a = acd(agent("roaming", None), agent("busan1", "busan"))
    a.login("roaming", 0)
    a.login("busan1", 0)
    a.enqueue("from-seoul", "general", "normal", 1, center="seoul")
    a.enqueue("unknown", "general", "normal", 2)
    assert sorted(offered(a, 3)) == [("from-seoul", "roaming"), ("unknown", "busan1")]


def test_a_caller_whose_center_is_much_slower_spills_at_once_with_the_estimates_said():
    """Busan's only agent is busy for a while and two callers wait there; Seoul has an agent
    on a call who is due free sooner: a newcomer of Busan is eligible for Seoul at once."""
    a = acd(agent("seoul1", "seoul"), agent("busan1", "busan"),
            routing=CenterRouting(spill_after=None, spill_margin=120.0))
    a.login("busan1", 0)
    a.login("seoul1", 0)
    a.enqueue("b0", "general", "normal", 0, center="busan")
    a.enqueue("s0", "general", "normal", 0, center="seoul")
    assert sorted(offered(a, 0)) == [("b0", "busan1"), ("s0", "seoul1")]
    a.answered("b0", "busan1", 1)
    a.answered("s0", "seoul1", 1)
    for i in range(3):
        a.enqueue(f"b{i + 1}", "general", "normal", 2 + i, center="busan")
    w = a.enqueue("newcomer", "general", "normal", 10, center="busan")
    assert w.spill is not None and w.spill.startswith("busan wait "), w.spill
    assert ", seoul " in w.spill
    assert a.waiting_call("b1").spill is None       # one caller in line: not much slower yet
    first_spilled = next(w.call_id for w in a.waiting("general") if w.spill is not None)
    a.call_ended("seoul1", 20)
    offers = a.offers(20)
    # Seoul's agent takes the first Busan caller eligible everywhere (spill_after is off).
    assert [(o.call_id, o.agent_id) for o in offers] == [(first_spilled, "seoul1")]
    assert first_spilled != "b1"
    assert offers[0].note is not None and offers[0].note.startswith("served by seoul: busan wait ")


def test_a_center_with_nobody_on_duty_spills_its_callers_at_once():
    a = acd(agent("seoul1", "seoul"), agent("busan1", "busan"),
            routing=CenterRouting(spill_after=None, spill_margin=120.0))
    a.login("seoul1", 0)
    w = a.enqueue("b1", "general", "normal", 1, center="busan")
    assert w.spill is not None and w.spill.startswith("busan: nobody on duty, seoul wait ")
    assert offered(a, 1) == [("b1", "seoul1")]


def test_the_estimate_of_a_caller_not_yet_eligible_elsewhere_counts_its_own_center_only():
    a = acd(agent("seoul1", "seoul"), agent("busan1", "busan"), routing=CenterRouting(600.0, None))
    a.login("seoul1", 0)
    a.login("busan1", 0)
    a.enqueue("s-first", "general", "normal", 0, center="seoul")
    a.enqueue("b-first", "general", "normal", 0, center="busan")
    a.offers(0)
    a.answered("s-first", "seoul1", 1)
    a.answered("b-first", "busan1", 1)
    for i in range(4):
        a.enqueue(f"s{i}", "general", "normal", 2 + i, center="seoul")
    a.enqueue("b", "general", "normal", 10, center="busan")
    busan = a.estimate_wait("b", 11)
    seoul_last = a.estimate_wait("s3", 11)
    assert busan is not None and seoul_last is not None
    assert busan < seoul_last           # one Busan agent for one Busan caller; Seoul has four in line
    assert a.estimate_newcomer("general", 11, center="busan") < a.estimate_newcomer("general", 11,
                                                                                    center="seoul")


def test_the_home_center_is_in_the_queued_event_for_a_restart():
    events: list[Event] = []
    a = acd(agent("seoul1", "seoul"), events=events)
    a.enqueue("c1", "general", "elderly", 0, center="busan", reason="bypass: elderly", language="ko")
    queued = [e for e in events if e.kind == "call.queued"]
    assert queued[0].detail == "elderly; language ko; center busan; reason bypass: elderly"
    q = read_queued(queued[0].detail)
    assert (q.center, q.reason, q.language) == ("busan", "bypass: elderly", "ko")


def test_the_snapshot_counts_callers_per_center():
    a = acd(agent("seoul1", "seoul"), agent("busan1", "busan"))
    a.enqueue("c1", "general", "normal", 0, center="busan")
    a.enqueue("c2", "general", "normal", 0, center="busan")
    a.enqueue("c3", "general", "normal", 0, center="seoul")
    snap = a.snapshot(1)
    assert snap["queues"]["general"]["waiting_by_center"] == {"busan": 2, "seoul": 1}
    assert snap["agents"]["busan1"]["center"] == "busan"


@pytest.mark.parametrize("centers", [2, 7])
def test_many_free_agents_and_callers_are_matched_in_priority_order(centers):
    names = [f"c{i}" for i in range(centers)]
    agents = [agent(f"{n}-a{j}", n) for n in names for j in range(3)]
    a = acd(*agents, routing=CenterRouting(0.0, None))
    for i in range(30):
        a.enqueue(f"call{i:02}", "general", "elderly" if i % 5 == 0 else "normal", float(i),
                  center=names[i % centers])
    for ag in agents:
        a.login(ag.id, 100)
    offers = a.offers(100)
    assert len(offers) == min(30, len(agents))
    served = [o.call_id for o in offers]
    elderly = [f"call{i:02}" for i in range(30) if i % 5 == 0]
    assert set(elderly) <= set(served)              # every elderly caller before any normal one left
