"""Fuzzing the ARI event socket: whatever Asterisk (or something pretending to be it) writes on
the socket — events with fields missing or of the wrong type, JSON that is not an object,
frames that are not JSON, events about channels nobody knows, duplicated and reordered
events — the engine logs what it cannot read and goes on: after each sequence a new caller
is answered, the socket was never dropped, and no task failed.

One fake Asterisk and one adapter serve every example (starting them per example would be
slow); each example uses channel ids of its own and ends every call it started.

A bounded run by default (the ``ci`` profile of ``tests/conftest.py``); ``IVR_FUZZ=long`` for
a long one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from ari_harness import Harness, Started, harness
from hypothesis import event, given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from ivr.ari import AriCall, Timeouts
from ivr.ari.dispatcher import channel_of, channel_problem, event_problem, stasis_args
from ivr.ari.events import BadEvent, decode_event
from ivr.call import Gathered
from ivr.errors import IvrError

pytestmark = pytest.mark.fuzz

# Nothing may time out by itself during an example: every call is ended on purpose.
FUZZ = Timeouts(request=2.0, connect=1.0, ws_heartbeat=30.0, ws_close=0.5,
                reconnect_min=0.02, reconnect_max=0.1, shutdown_grace=0.5)

# Log events that mean a fault of the engine, not of the input.
FAILURES = frozenset({"ari.events_failed", "ari.event_handler_failed", "ari.call_event_failed",
                      "task.failed", "ari.call_failed", "ari.disconnected"})

SLOTS = 3                               # channels an example may start: $ch0 … $ch2
KEYS = "0123456789*#"


async def answer_and_wait_for_a_key_or_hang_up(call: AriCall, args: list[str]) -> Gathered:
    await call.answer()
    return await call.gather(max_digits=1, first_timeout=30, inter_timeout=30)


# -- what may arrive on the socket ------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6)
CHANNEL_REF = st.sampled_from([f"$ch{i}" for i in range(SLOTS)] + ["$unknown"])


def sometimes_wrong(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes any JSON value at all."""
    return st.one_of(valid, valid, valid, JSON)


def fields(valid: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with every field valid, or one with fields missing or of any type."""
    return st.one_of(
        st.fixed_dictionaries(valid),
        st.fixed_dictionaries({}, optional={k: sometimes_wrong(v) for k, v in valid.items()}))


CHANNEL = fields({
    "id": CHANNEL_REF,
    "state": st.sampled_from(["Ring", "Up", "Down"]),
    "caller": fields({"name": st.just(""), "number": st.sampled_from(["01012345678", ""])}),
    "dialplan": fields({"context": st.just("from-pstn"), "exten": st.just("15771000"),
                        "app_name": st.just("Stasis"), "app_data": st.just("ivr")}),
    "language": st.sampled_from(["ko", "en"]),
})
PLAYBACK = fields({
    "id": st.sampled_from(["pb-1", "pb-2"]),
    "target_uri": CHANNEL_REF.map(lambda ref: f"channel:{ref}"),
    "state": st.sampled_from(["playing", "continuing", "done", "failed"]),
    "media_uri": st.just("sound:ivr/ko/welcome"),
})
EVENT_TYPES = st.sampled_from([
    "StasisStart", "StasisEnd", "ChannelDtmfReceived", "PlaybackStarted", "PlaybackContinuing",
    "PlaybackFinished", "ChannelStateChange", "ChannelHangupRequest", "ChannelDestroyed", "ChannelVarset",
    "ChannelEnteredBridge", "BridgeDestroyed", "SomethingNew"])
EVENT = st.fixed_dictionaries(
    {"type": sometimes_wrong(EVENT_TYPES)},
    optional={
        "channel": sometimes_wrong(CHANNEL),
        "playback": sometimes_wrong(PLAYBACK),
        "args": sometimes_wrong(st.lists(st.sampled_from(["main", "vip", ""]), max_size=2)),
        "digit": sometimes_wrong(st.sampled_from(KEYS)),
        "cause": sometimes_wrong(st.sampled_from([16, 17, 19])),
        "cause_txt": sometimes_wrong(st.just("Normal Clearing")),
        "bridge": sometimes_wrong(st.fixed_dictionaries({"id": st.just("b-1")})),
    })
# Well-formed events, in any order and about any channel: duplicated StasisStart, StasisEnd
# before StasisStart, keys and playback ends for channels or playbacks nobody knows …
VALID_CHANNEL = st.fixed_dictionaries({
    "id": CHANNEL_REF, "state": st.sampled_from(["Ring", "Up"]),
    "caller": st.fixed_dictionaries({"name": st.just(""), "number": st.just("01012345678")}),
    "dialplan": st.fixed_dictionaries({"context": st.just("from-pstn"),
                                       "exten": st.just("15771000"),
                                       "app_name": st.just("Stasis"), "app_data": st.just("ivr")}),
    "language": st.just("ko")})
WELL_FORMED = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["StasisStart"]), "channel": VALID_CHANNEL,
                           "args": st.lists(st.sampled_from(["main", "vip"]), max_size=2)}),
    st.fixed_dictionaries({"type": st.sampled_from(["StasisEnd", "ChannelStateChange"]),
                           "channel": VALID_CHANNEL}),
    st.fixed_dictionaries({"type": st.sampled_from(["ChannelHangupRequest", "ChannelDestroyed"]),
                           "channel": VALID_CHANNEL, "cause": st.sampled_from([16, 17, 19]),
                           "cause_txt": st.just("Normal Clearing")}),
    st.fixed_dictionaries({"type": st.just("ChannelDtmfReceived"), "channel": VALID_CHANNEL,
                           "digit": st.sampled_from(KEYS)}),
    st.fixed_dictionaries({"type": st.sampled_from(["PlaybackStarted", "PlaybackContinuing",
                                                    "PlaybackFinished"]),
                           "playback": st.fixed_dictionaries({
                               "id": st.sampled_from(["pb-1", "pb-2"]),
                               "target_uri": CHANNEL_REF.map(lambda ref: f"channel:{ref}"),
                               "state": st.sampled_from(["playing", "continuing", "done",
                                                         "failed"])})}),
)
# Missing 'type' too: drop it from some events.
EVENTS = st.one_of(EVENT, EVENT.map(lambda e: {k: v for k, v in e.items() if k != "type"}))
FRAMES = st.one_of(
    st.binary(max_size=24),
    TEXT,
    JSON.map(json.dumps),
    st.just("[" * 5000 + "]" * 5000),
    EVENT.map(lambda e: json.dumps(e)[: max(1, len(json.dumps(e)) // 2)]),   # cut off
)
SLOT = st.integers(0, SLOTS - 1)
STEP = st.one_of(
    st.tuples(st.just("start"), SLOT),                     # a real caller on slot N dials in
    st.tuples(st.just("press"), SLOT, st.sampled_from(KEYS)),
    st.tuples(st.just("hang_up"), SLOT),
    st.tuples(st.just("event"), WELL_FORMED),              # a well-formed event, out of place
    st.tuples(st.just("event"), EVENTS),                   # fields missing or of any type
    st.tuples(st.just("frame"), FRAMES),                   # any frame at all
)
SEQUENCES = st.lists(STEP, min_size=1, max_size=16)


# -- one fake Asterisk and one adapter for all examples ---------------------------------------

class Engine:
    def __init__(self, runner: asyncio.Runner, h: Harness) -> None:
        self.runner = runner
        self.h = h
        self.examples = itertools.count(1)
        self.unretrieved: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
    stack = contextlib.AsyncExitStack()
    try:
        h = runner.run(stack.enter_async_context(
            harness(answer_and_wait_for_a_key_or_hang_up, timeouts=FUZZ)))
        fixture = Engine(runner, h)
        runner.get_loop().set_exception_handler(
            lambda _loop, context: fixture.unretrieved.append(context))
        yield fixture
    finally:
        runner.run(stack.aclose())
        runner.close()


def _resolve(value: Any, ids: dict[str, str]) -> Any:
    """The example's own channel ids in place of ``$ch0`` …"""
    if isinstance(value, str):
        for ref, channel_id in ids.items():
            value = value.replace(ref, channel_id)
        return value
    if isinstance(value, list):
        return [_resolve(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, ids) for k, v in value.items()}
    return value


async def _run_sequence(h: Harness, example: int, steps: list[tuple[Any, ...]]) -> None:
    fake = h.fake
    ids = {f"$ch{i}": f"fz{example}-{i}" for i in range(SLOTS)}
    ids["$unknown"] = f"fz{example}-unknown"
    connections = fake.connections
    for step in steps:
        kind = step[0]
        if kind == "start":
            channel_id = ids[f"$ch{step[1]}"]
            if channel_id not in fake.channels:
                await fake.start_call(channel_id=channel_id)
        elif kind == "press":
            channel_id = ids[f"$ch{step[1]}"]
            if channel_id in fake.channels:
                await fake.press(channel_id, step[2])
        elif kind == "hang_up":
            channel_id = ids[f"$ch{step[1]}"]
            if channel_id in fake.channels:
                await fake.caller_hangs_up(channel_id)
        elif kind == "event":
            fake.emit_frame(json.dumps(_resolve(step[1], ids)))
        else:
            fake.emit_frame(step[1])

    # A new caller is answered after whatever came before.
    fresh = await fake.start_call(channel_id=f"fz{example}-fresh")
    await h.answered(fresh, timeout=3)
    assert h.adapter.connected
    assert fake.connections == connections, "the event socket was dropped and opened again"

    # End every call of this example; each flow ends with a key or with the call's end.
    started: list[Started] = []
    while not h.started.empty():
        started.append(h.started.get_nowait())
    assert fresh in [s.call.id for s in started]
    for s in started:
        if s.done.done():
            continue
        if s.call.id in fake.channels:
            await fake.caller_hangs_up(s.call.id)
        else:                                   # a channel only the events spoke of
            fake.emit(fake.event("StasisEnd", channel={"id": s.call.id}))
    async with asyncio.timeout(3):
        results = await asyncio.gather(*(asyncio.shield(s.done) for s in started),
                                       return_exceptions=True)
    for s, result in zip(started, results, strict=True):
        # A key, or the call's end (the port's error for it; ``ari.call_failed`` for others).
        ended = isinstance(result, IvrError) and s.call.hung_up
        assert isinstance(result, Gathered) or ended, (s.call.id, repr(result))


@given(steps=SEQUENCES)
def test_no_sequence_of_frames_makes_the_engine_deaf(engine: Engine, steps):
    example = next(engine.examples)
    with capture_logs() as logs:
        engine.runner.run(_run_sequence(engine.h, example, steps))
    refused = sum(1 for e in logs if e["event"] == "ari.bad_event")
    calls = sum(1 for e in logs if e["event"] == "ari.call_started")
    event(f"frames refused: {refused if refused < 3 else '3+'}")
    event(f"calls besides the fresh one: {calls - 1 if calls < 4 else '3+'}")
    failures = [(e["event"], e.get("error") or e.get("exc_info")) for e in logs
                if e["event"] in FAILURES]
    assert failures == []
    assert engine.unretrieved == []


@given(value=st.one_of(JSON, EVENT, EVENTS, WELL_FORMED))
def test_reading_any_json_value_as_an_event_gives_an_answer_or_says_what_is_wrong(value):
    try:
        event = decode_event(json.dumps(value))
    except BadEvent as exc:
        assert str(exc).startswith(("not JSON", "not an event"))
        return
    problem = event_problem(event)
    assert problem is None or problem.startswith(f"{event['type']}: ")
    channel_id = channel_of(event)
    assert channel_id is None or (isinstance(channel_id, str) and channel_id)
    if problem is None and event["type"] == "StasisStart":
        assert isinstance(event["channel"]["id"], str)
        assert all(isinstance(arg, str) for arg in event.get("args", []))
    channel = event.get("channel")
    args = stasis_args(channel, "ivr")
    assert args is None or all(isinstance(arg, str) for arg in args)
    wrong = channel_problem(channel)
    if wrong is None:
        assert isinstance(channel, dict) and isinstance(channel["id"], str) and channel["id"]
    else:
        assert wrong.startswith("'channel")
