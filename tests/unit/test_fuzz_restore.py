"""Fuzzing the restart replay: any event log, however odd, gives a defined ``Restored``.

The log may hold events of an older engine, events written twice (a batch whose outcome was
unknown is written again), details of any shape and times in any order.  ``replay`` never
raises; what it cannot read it names in ``problems``; a call is never both waiting and talking,
and an agent on a call is the one its talk names.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.acd.model import AgentState, QueuedDetail, StateDetail, queued_detail, state_detail
from ivr.acd.restore import replay
from ivr.store.base import QueueEvent

pytestmark = pytest.mark.fuzz

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
CALLS = st.sampled_from(["c1", "c2", "c3", "cb-r1"])
AGENTS = st.sampled_from(["agent1", "agent2"])
QUEUES = st.sampled_from(["general", "backup", None])
TEXT = st.text(max_size=40)

good_queued = st.builds(
    lambda p, w, lang, r: queued_detail(QueuedDetail(p, w, lang, r)),
    st.sampled_from(["elderly", "repeat", "normal"]),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.sampled_from([None, "ko", "en"]), st.one_of(st.none(), TEXT.filter(bool)))
good_state = st.builds(
    lambda s, r, restored, age: state_detail(StateDetail(s, r, restored, age)),
    st.sampled_from(list(AgentState)), st.one_of(st.none(), TEXT.filter(bool)), st.booleans(),
    st.floats(min_value=0, max_value=1e7, allow_nan=False))


@st.composite
def events(draw):
    kind = draw(st.sampled_from(["call.queued", "call.offered", "call.connected", "call.left",
                                 "agent.state", "agent.pause_after", "agent.wrap_up", "other"]))
    detail = draw(st.one_of(good_queued if kind == "call.queued" else good_state, TEXT,
                            st.just("called off"), st.just("waited 1e400 s")))
    return QueueEvent(
        at=T0 + dt.timedelta(seconds=draw(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))),
        kind=kind, call_id=draw(st.one_of(st.none(), CALLS)),
        agent_id=draw(st.one_of(st.none(), AGENTS)), queue=draw(QUEUES), detail=detail)


@given(st.lists(events(), max_size=40))
def test_any_event_log_replays_to_a_defined_state(log):
    restored = replay(sorted(log, key=lambda e: e.at))
    assert not set(restored.waiting) & set(restored.talking)
    for call_id, talk in restored.talking.items():
        agent = restored.agents[talk.agent_id]
        assert agent.state is AgentState.ON_CALL and agent.call_id == call_id
    for agent in restored.agents.values():
        assert agent.state is not AgentState.RINGING       # a ring never outlives the engine
    assert all(isinstance(p, str) and p for p in restored.problems)


@given(st.lists(events(), max_size=30))
def test_events_written_twice_replay_as_once(log):
    ordered = sorted(log, key=lambda e: e.at)
    doubled = sorted([*ordered, *ordered], key=lambda e: e.at)
    once, twice = replay(ordered), replay(doubled)
    assert set(once.waiting) == set(twice.waiting)
    assert {a: r.state for a, r in once.agents.items()} == {a: r.state for a, r in twice.agents.items()}
