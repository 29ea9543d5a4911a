"""The wait of a caller of one center among several: the own center's agents first, every
center's once the caller is eligible there, and the callers who will arrive and go ahead where
the caller is served."""

from __future__ import annotations

import pytest

from ivr.acd.core import Acd
from ivr.acd.estimate import WaitEstimator
from ivr.acd.model import AgentSpec, CenterRouting, QueueSpec

GENERAL = QueueSpec(name="general", skills=frozenset({"general"}), max_wait=900, wrap_up=0)
NOW = 3600.0
BUSY = [50.0, 100.0, 150.0]


def agent(agent_id: str, center: str | None) -> AgentSpec:
    return AgentSpec(id=agent_id, name=agent_id, endpoint=f"PJSIP/{agent_id}",
                     skills=frozenset({"general"}), center=center)


def every(seconds: float, est: WaitEstimator, rank: int, center: str | None) -> None:
    """A caller of ``rank`` and ``center`` every ``seconds`` for the hour before ``NOW``."""
    t = NOW - 3600
    while t <= NOW:
        est.record_arrival(rank, t, center)
        t += seconds


# -- the estimator: whose arrivals go ahead ------------------------------------------------

def test_elderly_callers_of_another_center_do_not_go_ahead_of_a_caller_served_at_home():
    est = WaitEstimator(prior_handle=200)
    every(60, est, 0, "busan")                   # an elderly caller a minute, all in Busan
    alone = est.estimate(5, BUSY, NOW)
    assert est.estimate(5, BUSY, NOW, rank=2, center="seoul") == pytest.approx(alone)
    assert est.estimate(5, BUSY, NOW, rank=2, center="busan") > alone + 100
    assert est.arrival_rate(NOW, above_rank=2, center="busan") == pytest.approx(1 / 60, rel=0.05)
    assert est.arrival_rate(NOW, above_rank=2, center="seoul") == 0


def test_callers_of_no_center_go_ahead_at_every_center():
    est = WaitEstimator(prior_handle=200)
    every(60, est, 0, None)
    alone = est.estimate(5, BUSY, NOW)
    assert est.estimate(5, BUSY, NOW, rank=2, center="seoul") > alone + 100
    assert est.estimate(5, BUSY, NOW, rank=2, center="busan") > alone + 100


def test_once_eligible_everywhere_higher_priorities_of_every_center_go_ahead():
    est = WaitEstimator(prior_handle=200)
    every(60, est, 0, "busan")
    at_home = est.estimate(5, BUSY, NOW, rank=2, center="seoul")
    everywhere = est.estimate(5, BUSY, NOW, rank=2, center="seoul", spilled=True)
    assert everywhere > at_home + 100


def test_once_eligible_everywhere_other_centers_own_callers_of_the_same_priority_go_ahead():
    """Busan's agents take Busan's normal callers before a normal caller of Seoul, even those
    who arrive later; Seoul's do not."""
    est = WaitEstimator(prior_handle=200)
    every(60, est, 2, "busan")
    every(60, est, 2, "seoul")
    assert est.estimate(5, BUSY, NOW, rank=2, center="seoul") == pytest.approx(est.estimate(5, BUSY, NOW))
    everywhere = est.estimate(5, BUSY, NOW, rank=2, center="seoul", spilled=True)
    busan_alone = WaitEstimator(prior_handle=200)
    every(60, busan_alone, 0, "busan")           # as many, as if going ahead by priority
    assert everywhere == pytest.approx(busan_alone.estimate(5, BUSY, NOW, rank=2, center="busan"))


# -- the Acd: home, or everywhere once eligible ----------------------------------------------

def slow_busan(routing: CenterRouting | None) -> Acd:
    """Busan's one agent and Seoul's two are on calls since 1 s; three Busan callers wait."""
    a = Acd({"general": GENERAL}, [agent("b1", "busan"), agent("s1", "seoul"), agent("s2", "seoul")],
            centers=routing, make_estimator=lambda: WaitEstimator(prior_handle=200))
    for agent_id in ("b1", "s1", "s2"):
        a.login(agent_id, 0)
    for call_id, center in (("b0", "busan"), ("s0", "seoul"), ("s00", "seoul")):
        a.enqueue(call_id, "general", "normal", 0, center=center)
    for offer in a.offers(0):
        a.answered(offer.call_id, offer.agent_id, 1)
    for i in range(3):
        a.enqueue(f"b{i + 1}", "general", "normal", 2 + i, center="busan")
    return a


def test_a_caller_of_a_slow_center_is_told_the_wait_once_every_center_serves_them():
    a = slow_busan(CenterRouting(spill_after=60.0, spill_margin=None))
    a.enqueue("late", "general", "normal", 10, center="busan")
    own = slow_busan(CenterRouting(None, None))
    own.enqueue("late", "general", "normal", 10, center="busan")
    pooled = slow_busan(None)
    pooled.enqueue("late", "general", "normal", 10, center="busan")
    alone = own.estimate_wait("late", 10)
    assert alone == pytest.approx(199 + 3 * 200, abs=5)  # Busan's one agent, four in line
    # eligible everywhere after 60 s: three agents for the four in line, as in one pool
    assert a.estimate_wait("late", 10) == pytest.approx(pooled.estimate_wait("late", 10))
    assert a.estimate_wait("late", 10) < alone / 2


def test_a_caller_served_at_home_before_eligible_elsewhere_is_told_the_home_wait():
    a = slow_busan(CenterRouting(spill_after=600.0, spill_margin=None))
    a.enqueue("late", "general", "normal", 10, center="busan")
    own = slow_busan(CenterRouting(None, None))
    own.enqueue("late", "general", "normal", 10, center="busan")
    # Busan's agent takes the four in 800 s; eligible elsewhere at 600 s: the pool's wait, but
    # not less than the 590 s until then
    assert 590 <= a.estimate_wait("late", 10) < own.estimate_wait("late", 10)
    first = a.estimate_wait("b1", 10)
    assert first == pytest.approx(own.estimate_wait("b1", 10))   # busan's agent frees in 190 s


def test_a_newcomer_eligible_everywhere_at_once_is_told_the_wait_everywhere():
    margin = slow_busan(CenterRouting(spill_after=None, spill_margin=120.0))
    after = slow_busan(CenterRouting(spill_after=300.0, spill_margin=None))
    pooled = slow_busan(None)
    everywhere = pooled.estimate_newcomer("general", 10, "normal")
    assert margin.estimate_newcomer("general", 10, "normal", center="busan") == pytest.approx(everywhere)
    # without the margin rule the newcomer waits 300 s before Seoul's agents may take them
    assert after.estimate_newcomer("general", 10, "normal", center="busan") == pytest.approx(
        max(300.0, everywhere))
    # a Seoul newcomer goes before the Busan callers at Seoul's agents: Seoul's wait
    seoul = margin.estimate_newcomer("general", 10, "normal", center="seoul")
    own = slow_busan(CenterRouting(None, None))
    assert seoul == pytest.approx(own.estimate_newcomer("general", 10, "normal", center="seoul"))
    assert seoul < everywhere


def test_without_centers_routing_the_centers_change_no_estimate():
    pooled = slow_busan(None)
    pooled.enqueue("late", "general", "normal", 10, center="busan")
    plain = Acd({"general": GENERAL}, [agent("b1", None), agent("s1", None), agent("s2", None)],
                make_estimator=lambda: WaitEstimator(prior_handle=200))
    for agent_id in ("b1", "s1", "s2"):
        plain.login(agent_id, 0)
    for call_id in ("b0", "s0", "s00"):
        plain.enqueue(call_id, "general", "normal", 0)
    for offer in plain.offers(0):
        plain.answered(offer.call_id, offer.agent_id, 1)
    for i in range(3):
        plain.enqueue(f"b{i + 1}", "general", "normal", 2 + i)
    plain.enqueue("late", "general", "normal", 10)
    assert pooled.estimate_wait("late", 10) == pytest.approx(plain.estimate_wait("late", 10))
