"""No frame on the event socket can make the engine deaf: odd ones are logged and skipped,
the calls in progress go on and the next caller is answered."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ari_harness import FAST, Harness, harness, outcome
from structlog.testing import capture_logs

from ivr.ari import AriClient, EventStream
from ivr.call import Gathered
from ivr.testing.fake_ari import FakeAri

FAILURES = ("ari.events_failed", "ari.event_handler_failed", "ari.call_event_failed",
            "task.failed", "ari.call_failed")


async def answer_and_wait_for_a_key(call, args):
    await call.answer()
    return await call.gather(max_digits=1, first_timeout=5, inter_timeout=5)


def _event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "application": "ivr", **fields})


def _channel(channel_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": channel_id, "state": "Up", "caller": {"name": "", "number": "01012345678"},
            "dialplan": {"context": "from-pstn", "exten": "15771000", "priority": 2,
                         "app_name": "Stasis", "app_data": "ivr"}, **fields}


# Each: a frame the engine cannot read, built around the channel of a call in progress.
Frame = Callable[[str], "str | bytes"]
BAD_FRAMES: dict[str, Frame] = {
    "a JSON list": lambda live: "[1, 2]",
    "a JSON number": lambda live: "5",
    "JSON null": lambda live: "null",
    "a JSON string": lambda live: '"StasisStart"',
    "not JSON": lambda live: "StasisStart for 01012345678",
    "cut-off JSON": lambda live: '{"type": "StasisStart", "channel": {"id": ',
    "JSON nested 100000 deep": lambda live: "[" * 100_000 + "]" * 100_000,
    "a binary frame": lambda live: b"\x00\xff\x10binary",
    "no type": lambda live: json.dumps({"channel": _channel(live)}),
    "type null": lambda live: json.dumps({"type": None, "channel": _channel(live)}),
    "type a number": lambda live: json.dumps({"type": 5}),
    "StasisStart, channel a number": lambda live: _event("StasisStart", channel=5, args=[]),
    "StasisStart, channel id a number": lambda live: _event("StasisStart", channel={"id": 7}),
    "StasisStart, channel without id": lambda live: _event("StasisStart", channel={"state": "Up"}),
    "StasisStart, no channel": lambda live: _event("StasisStart", args=[]),
    "StasisStart, args a string": lambda live: _event(
        "StasisStart", channel=_channel("fresh-1"), args="abc"),
    "StasisStart, args with a number": lambda live: _event(
        "StasisStart", channel=_channel("fresh-2"), args=["main", 5]),
    "StasisStart, caller a string": lambda live: _event(
        "StasisStart", channel=_channel("fresh-3", caller="01012345678"), args=[]),
    "StasisStart, dialplan a list": lambda live: _event(
        "StasisStart", channel=_channel("fresh-4", dialplan=[]), args=[]),
    "PlaybackFinished, playback a string": lambda live: _event("PlaybackFinished", playback="x"),
    "PlaybackFinished, playback id a list": lambda live: _event(
        "PlaybackFinished", playback={"id": [], "target_uri": f"channel:{live}"}),
    "PlaybackFinished, target a number": lambda live: _event(
        "PlaybackFinished", playback={"id": "p1", "target_uri": 5}),
    "key as a number on a live call": lambda live: _event(
        "ChannelDtmfReceived", channel=_channel(live), digit=5),
    "no key on a live call": lambda live: _event("ChannelDtmfReceived", channel=_channel(live)),
    "state change, channel a string": lambda live: _event("ChannelStateChange", channel="x"),
    "state change, caller a string on a live call": lambda live: _event(
        "ChannelStateChange", channel=_channel(live, caller="x")),
    "state change, state a number on a live call": lambda live: _event(
        "ChannelStateChange", channel=_channel(live, state=6)),
    "hang-up, cause a string on a live call": lambda live: _event(
        "ChannelHangupRequest", channel=_channel(live), cause="16"),
    "channel id an object": lambda live: _event("ChannelDestroyed", channel={"id": {"id": live}}),
}


async def _a_call_in_progress(h: Harness):
    live = await h.call_in(caller="0212345678")
    await h.answered(live.call.id)
    return live


async def _the_next_caller_is_answered(h: Harness) -> None:
    channel_id = await h.fake.start_call(caller="01099998888")
    await h.answered(channel_id)
    started = await h.next_call()
    assert started.call.id == channel_id
    await h.fake.caller_hangs_up(channel_id)
    assert await started.call.wait_hangup(2)


@pytest.mark.parametrize("make_frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_an_unreadable_frame_is_logged_and_skipped_and_calls_go_on(make_frame):
    with capture_logs() as logs:
        async with harness(answer_and_wait_for_a_key) as h:
            live = await _a_call_in_progress(h)
            frame = make_frame(live.call.id)
            await h.fake.send_frames([frame])

            await _the_next_caller_is_answered(h)
            assert h.started.qsize() == 0                  # the odd frame started no call
            await h.fake.press(live.call.id, "3")          # the call in progress is unharmed
            assert await outcome(live) == Gathered("3", "max_digits")
            assert h.adapter.connected
            assert h.fake.connections == 1                 # not even a reconnection

    bad = [e for e in logs if e["event"] == "ari.bad_event"]
    assert len(bad) == 1, [e["event"] for e in logs]
    assert bad[0]["log_level"] == "warning" and bad[0]["problem"]
    assert 0 < len(bad[0]["excerpt"]) <= 200
    assert [e["event"] for e in logs if e["event"] in FAILURES] == []


async def test_a_bad_event_names_what_is_wrong_and_masks_phone_numbers():
    with capture_logs() as logs:
        async with harness(answer_and_wait_for_a_key) as h:
            await h.fake.send_frames([_event("StasisStart", channel={"id": 7, "caller": {
                "number": "01012345678"}})])
            await _the_next_caller_is_answered(h)
    [bad] = [e for e in logs if e["event"] == "ari.bad_event"]
    assert bad["problem"] == "StasisStart: 'channel.id' is a number, expected the channel's id (a string)"
    assert "01012345678" not in bad["excerpt"] and "010****5678" in bad["excerpt"]


async def test_events_that_make_no_sense_in_order_are_ignored_and_calls_go_on():
    # Well-formed, but out of order, duplicated, or about things the engine does not know.
    with capture_logs() as logs:
        async with harness(answer_and_wait_for_a_key) as h:
            live = await _a_call_in_progress(h)
            ghost = _channel("ghost-1")
            await h.fake.send_events([
                h.fake.event("StasisEnd", channel=ghost),               # end before start
                h.fake.event("ChannelDtmfReceived", channel=ghost, digit="1"),
                h.fake.event("PlaybackFinished", playback={
                    "id": "nobody-played-this", "target_uri": f"channel:{live.call.id}",
                    "state": "done"}),
                h.fake.event("StasisStart", channel=h.fake.channels[live.call.id], args=[]),
                h.fake.event("ChannelStateChange", channel=h.fake.channels[live.call.id]),
                h.fake.event("BridgeDestroyed", bridge={"id": "never-made"}),
                h.fake.event("SomethingNew", channel=ghost),
            ])
            await _the_next_caller_is_answered(h)
            assert h.started.qsize() == 0            # the second StasisStart made no second call
            await h.fake.press(live.call.id, "7")
            assert await outcome(live) == Gathered("7", "max_digits")
    assert [e["event"] for e in logs if e["event"] in FAILURES + ("ari.bad_event",)] == []


async def test_a_channel_asterisk_describes_oddly_does_not_stop_the_reconciliation():
    with capture_logs() as logs:
        async with harness(answer_and_wait_for_a_key) as h:
            left = h.fake.add_channel(args=["main"], state="Up")    # to be adopted
            h.fake.channels["odd-1"] = [1, 2]                      # type: ignore[assignment]
            h.fake.channels["odd-2"] = {"id": 7, "dialplan": {"app_name": "Stasis",
                                                               "app_data": "ivr"}}
            await h.fake.drop_websocket()
            await h.fake.wait_for_connection(2)
            await h.adapter.wait_ready(2)
            adopted = await h.next_call()
            assert adopted.adopted and adopted.call.id == left["id"]
            del h.fake.channels["odd-1"], h.fake.channels["odd-2"]
            await h.fake.caller_hangs_up(left["id"])
            await _the_next_caller_is_answered(h)
    assert len([e for e in logs if e["event"] == "ari.bad_channel"]) == 2
    assert [e["event"] for e in logs if e["event"] in FAILURES] == []


async def test_an_odd_answer_to_the_channel_list_ends_no_call_in_progress():
    with capture_logs() as logs:
        async with harness(answer_and_wait_for_a_key) as h:
            live = await _a_call_in_progress(h)
            h.fake.fail(lambda r: r.method == "GET" and r.path == "/channels", 200,
                        times=FAST.reconcile_attempts)      # answers an object, not a list
            await h.fake.drop_websocket()
            await h.fake.wait_for_connection(2)
            await h.adapter.wait_ready(2)
            await h.fake.press(live.call.id, "4")
            assert await outcome(live) == Gathered("4", "max_digits")
            await _the_next_caller_is_answered(h)
    [failed] = [e for e in logs if e["event"] == "ari.reconcile_failed"]
    assert "expected a list of channels" in failed["error"]
    assert [e["event"] for e in logs if e["event"] in FAILURES] == []


class _FlakyClient(AriClient):
    """A real client whose first attempts to open the event socket fail with a bug."""

    def __init__(self, *args: Any, bugs: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bugs = bugs

    async def connect_events(self):
        if self.bugs > 0:
            self.bugs -= 1
            raise RuntimeError("a bug in the reader")
        return await super().connect_events()


@contextlib.asynccontextmanager
async def _flaky_stream(fake: FakeAri, on_event: Callable[[dict[str, Any]], None], *,
                        bugs: int) -> AsyncIterator[EventStream]:
    async with _FlakyClient(fake.base_url, fake.username, fake.password, fake.app, FAST,
                            bugs=bugs) as client, EventStream(client, on_event) as stream:
        yield stream


async def test_a_fault_in_the_reading_loop_is_logged_loudly_and_the_stream_listens_again():
    received: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    def on_event(event: dict[str, Any]) -> None:
        received.append(event)
        arrived.set()

    with capture_logs() as logs:
        async with FakeAri() as fake, _flaky_stream(fake, on_event, bugs=3) as stream:
            await stream.wait_connected(3)
            channel_id = await fake.start_call()
            async with asyncio.timeout(2):
                await arrived.wait()
    assert [e["channel"]["id"] for e in received] == [channel_id]
    failed = [e for e in logs if e["event"] == "ari.events_failed"]
    assert len(failed) == 3
    assert all(e["log_level"] == "error" and "a bug in the reader" in e["error"] for e in failed)
    assert failed[-1]["retry_in_s"] <= FAST.reconnect_max


async def test_waiting_for_a_socket_that_keeps_failing_says_why():
    with capture_logs():
        async with FakeAri() as fake, _flaky_stream(fake, lambda event: None,
                                                    bugs=1_000_000) as stream:
            with pytest.raises(TimeoutError, match="a bug in the reader"):
                await stream.wait_connected(0.3)
