"""Queue events reach the store's event log in batches; a store that is away loses nothing."""

from __future__ import annotations

import datetime as dt

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.acd.recorder import EventRecorder
from ivr.errors import StoreError
from ivr.testing.memory_store import MemoryStore


def acd_with(recorder) -> Acd:
    specs = {"general": QueueSpec(name="general")}
    return Acd(specs, [AgentSpec(id="agent1", name="A", endpoint="PJSIP/agent1")], on_event=recorder)


async def test_a_calls_course_through_the_queue_is_in_the_event_log():
    store = MemoryStore()
    recorder = EventRecorder(store)
    acd = acd_with(recorder)
    acd.login("agent1", 0.0)
    acd.enqueue("c1", "general", "elderly", 1.0)
    (offer,) = acd.offers(2.0)
    acd.answered("c1", "agent1", 3.0)
    acd.call_ended("agent1", 60.0)
    assert await recorder.flush()
    kinds = [e.kind for e in await store.call_events("c1") if e.kind.startswith("call.")]
    assert kinds == ["call.queued", "call.offered", "call.connected"]
    states = [e.detail for e in await store.agent_events("agent1", since=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
              if e.kind == "agent.state"]
    assert states[0].startswith("available") and any(s.startswith("ringing") for s in states)
    assert any(s.startswith("wrap_up") for s in states)


async def test_events_the_store_refuses_are_kept_and_written_when_it_is_back():
    store = MemoryStore()
    store.fail["record_events"] = StoreError("database is away")
    recorder = EventRecorder(store)
    acd = acd_with(recorder)
    acd.login("agent1", 0.0)
    acd.enqueue("c1", "general", None, 1.0)
    assert not await recorder.flush()
    assert len(recorder.pending) == 2
    store.fail.clear()
    assert await recorder.flush()
    assert [e.kind for e in await store.call_events("c1")] == ["call.queued"]
    assert recorder.pending == type(recorder.pending)()


async def test_the_memory_bound_drops_the_oldest_and_counts_them():
    store = MemoryStore()
    recorder = EventRecorder(store, max_pending=3)
    acd = acd_with(recorder)
    acd.login("agent1", 0.0)
    for n in range(4):
        acd.enqueue(f"c{n}", "general", None, float(n))
    assert len(recorder.pending) == 3 and recorder.dropped == 2
