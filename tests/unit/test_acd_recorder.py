"""Queue events reach the store's event log at once, in batches that grow under load; a store
that is away loses nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import pytest

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.acd.recorder import EventRecorder
from ivr.errors import StoreError
from ivr.store.base import QueueEvent
from ivr.testing.memory_store import MemoryStore

PROMPTLY = 0.5          # seconds: well under the second the log used to lag behind


class WatchedStore(MemoryStore):
    """A memory store that tells when a batch write begins and ends, and can hold it (a slow
    database)."""

    def __init__(self) -> None:
        super().__init__()
        self.begun: asyncio.Queue[int] = asyncio.Queue()              # batch sizes
        self.written: asyncio.Queue[list[QueueEvent]] = asyncio.Queue()
        self.hold: asyncio.Event | None = None

    async def record_events(self, events: Sequence[QueueEvent]) -> None:
        self.begun.put_nowait(len(events))
        if self.hold is not None:
            await self.hold.wait()
        await super().record_events(events)
        self.written.put_nowait(list(events))


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
    since = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    states = [e.detail for e in await store.agent_events("agent1", since=since) if e.kind == "agent.state"]
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


async def test_a_caller_taking_a_place_reaches_the_store_at_once():
    store = WatchedStore()
    recorder = EventRecorder(store)
    acd = acd_with(recorder)
    await recorder.start()
    try:
        acd.enqueue("c1", "general", "elderly", 1.0, reason="bypass: elderly", language="ko")
        async with asyncio.timeout(PROMPTLY):
            batch = await store.written.get()
        assert [(e.kind, e.call_id, e.detail) for e in batch] == [
            ("call.queued", "c1", "elderly; language ko; reason bypass: elderly")]
        acd.login("agent1", 2.0)
        acd.offers(2.0)
        acd.answered("c1", "agent1", 3.0)              # told in one step: written in one batch
        async with asyncio.timeout(PROMPTLY):
            batch = await store.written.get()
        assert [(e.kind, e.detail) for e in batch] == [
            ("agent.state", "available"), ("call.offered", ""), ("agent.state", "ringing"),
            ("call.connected", "2"), ("agent.state", "on_call")]
    finally:
        await recorder.close()


async def test_under_load_events_told_during_a_write_go_in_the_next_batch_together():
    store = WatchedStore()
    store.hold = asyncio.Event()
    recorder = EventRecorder(store)
    acd = acd_with(recorder)
    await recorder.start()
    try:
        acd.enqueue("c0", "general", None, 0.0)
        async with asyncio.timeout(PROMPTLY):
            assert await store.begun.get() == 1               # the first event wakes the writer
        for n in range(1, 51):                                 # 50 more while it writes
            acd.enqueue(f"c{n}", "general", None, float(n))
        store.hold.set()
        async with asyncio.timeout(PROMPTLY):
            first, second = await store.written.get(), await store.written.get()
        assert (len(first), len(second)) == (1, 50)            # two writes, not 51
        assert store.begun.get_nowait() == 50 and store.begun.empty()      # no other write began
    finally:
        await recorder.close()
    assert len(store.events) == 51 and recorder.batches == 2


async def test_a_store_that_refuses_is_tried_again_later_not_at_every_event():
    store = WatchedStore()
    store.fail["record_events"] = StoreError("database is away")
    recorder = EventRecorder(store, retry_after=0.05)
    acd = acd_with(recorder)
    await recorder.start()
    try:
        acd.enqueue("c0", "general", None, 0.0)
        async with asyncio.timeout(PROMPTLY):
            assert await store.begun.get() == 1
        for n in range(1, 21):
            acd.enqueue(f"c{n}", "general", None, float(n))
        for _ in range(20):                                    # the writer has every chance to run
            await asyncio.sleep(0)
        assert store.begun.empty()                             # no write per event meanwhile
        store.fail.clear()
        async with asyncio.timeout(PROMPTLY):
            batch = await store.written.get()
        assert [e.call_id for e in batch] == [f"c{n}" for n in range(21)]
    finally:
        await recorder.close()


async def test_closing_finishes_the_write_in_flight_and_writes_the_rest_once():
    store = WatchedStore()
    store.hold = asyncio.Event()
    recorder = EventRecorder(store)
    acd = acd_with(recorder)
    await recorder.start()
    acd.enqueue("c0", "general", None, 0.0)
    async with asyncio.timeout(PROMPTLY):
        await store.begun.get()
    acd.enqueue("c1", "general", None, 1.0)
    closing = asyncio.create_task(recorder.close())
    await asyncio.sleep(0)
    assert not closing.done()                                  # it waits for the write in flight
    store.hold.set()
    async with asyncio.timeout(PROMPTLY):
        await closing
    assert [e.call_id for e in store.events] == ["c0", "c1"]
    assert not recorder.pending


async def test_stamps_never_go_back_when_the_clock_does():
    base = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.timezone.utc)
    readings = iter([base, base + dt.timedelta(seconds=10), base + dt.timedelta(seconds=5),
                     base + dt.timedelta(seconds=12)])
    recorder = EventRecorder(MemoryStore(), clock=lambda: next(readings))
    acd = acd_with(recorder)
    acd.login("agent1", 0.0)
    for n in range(3):
        acd.enqueue(f"c{n}", "general", None, float(n))
    assert [(e.at - base).total_seconds() for e in recorder.pending] == [0, 10, 10, 12]


def test_the_retry_pause_must_be_positive():
    with pytest.raises(ValueError, match="retry_after must be a positive number of seconds"):
        EventRecorder(MemoryStore(), retry_after=0)
