"""A call as a flow sees it, driven over real HTTP and WebSocket against the fake Asterisk."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from ivr.call import Call, Gathered, Prompt
from ivr.errors import CallEnded

from ari_harness import harness, is_play, outcome

LONG = "sound:ivr/ko/long_menu"       # never ends on its own in these tests
LONG_PROMPT = Prompt("long_menu", "ko")


async def test_a_call_shows_who_called_what_and_how():
    async def flow(call, args):
        return None

    async with harness(flow) as h:
        started = await h.call_in("01098765432", "15771000", args=["main", "x"],
                                  language="en")
        call = started.call
        assert isinstance(call, Call)
        assert (call.caller_number, call.dialled, call.language) == (
            "01098765432", "15771000", "en")
        assert started.args == ["main", "x"] and call.args == ["main", "x"]
        assert started.adopted is False


async def test_a_withheld_number_is_an_empty_string():
    async def flow(call, args):
        return call.caller_number

    async with harness(flow) as h:
        assert await outcome(await h.call_in("")) == ""


async def test_answer_then_answer_again_is_one_request():
    async def flow(call, args):
        await call.answer()
        await call.answer()
        return call.state

    async with harness(flow) as h:
        assert await outcome(await h.call_in()) == "Up"
        answers = [r for r in h.fake.requests if r.path.endswith("/answer")]
        assert len(answers) == 1


async def test_a_prompt_that_ends_before_asterisk_answers_201_does_not_hang():
    async def flow(call, args):
        await call.play([Prompt("welcome", "ko"), Prompt("menu", "ko")])
        return "played"

    async with harness(flow, finish_before_reply=True) as h:
        assert await outcome(await h.call_in(), timeout=1.0) == "played"
        assert len([r for r in h.fake.requests if is_play(r)]) == 1
        assert h.fake.played() == ["sound:ivr/ko/welcome", "sound:ivr/ko/menu"]


async def test_a_prompt_list_is_one_playback_in_the_calls_language():
    """One POST with ``media=a,b`` and one waiter: Asterisk plays the items in turn
    (PlaybackContinuing between them, read and ignored) and ends the list once."""
    async def flow(call, args):
        began = time.monotonic()
        await call.play([Prompt("welcome", "en"), Prompt("menu", "en")])
        return time.monotonic() - began

    with capture_logs() as logs:
        async with harness(flow, playback_delay=0.1) as h:
            started = await h.call_in(language="en")
            took = await outcome(started)
            plays = [r for r in h.fake.requests if is_play(r)]
            kinds = [e["type"] for e in h.fake.events_sent if e["type"].startswith("Playback")]
            heard = h.fake.heard(started.call.id)
    assert len(plays) == 1
    assert plays[0].params == {"media": "sound:ivr/en/welcome,sound:ivr/en/menu", "lang": "en"}
    assert kinds == ["PlaybackStarted", "PlaybackContinuing", "PlaybackStarted", "PlaybackFinished"]
    assert heard == ["sound:ivr/en/welcome", "sound:ivr/en/menu"]
    assert took >= 0.2                                  # the list's length: both items
    assert not [e for e in logs if e["event"] == "ari.bad_event"]
    assert [e["media"] for e in logs if e["event"] == "call.play"] == [
        "sound:ivr/en/welcome", "sound:ivr/en/menu"]  # one log line per item, as before


async def test_a_missing_prompt_inside_a_list_is_skipped_and_the_rest_plays():
    """Asterisk skips an item it cannot open and reports it like one that played
    (PlaybackContinuing): the list goes on; only Asterisk's log names the missing file."""
    async def flow(call, args):
        await call.play([Prompt("a", "ko"), Prompt("missing", "ko"), Prompt("b", "ko")])
        return "played"

    with capture_logs() as logs:
        async with harness(flow, missing_media={"sound:ivr/ko/missing"}) as h:
            started = await h.call_in()
            assert await outcome(started) == "played"
            assert h.fake.played() == ["sound:ivr/ko/a", "sound:ivr/ko/missing", "sound:ivr/ko/b"]
            assert len([r for r in h.fake.requests if is_play(r)]) == 1
            assert h.fake.heard(started.call.id)[-1] == "sound:ivr/ko/b"
            finished = [e for e in h.fake.events_sent if e["type"] == "PlaybackFinished"]
    assert [e["playback"]["state"] for e in finished] == ["done"]
    assert not [e for e in logs if e["event"] == "call.media_failed"]


async def test_a_missing_last_prompt_fails_the_list_and_is_logged():
    async def flow(call, args):
        await call.play([Prompt("a", "ko"), Prompt("missing", "ko")])
        await call.play([Prompt("missing", "ko")])
        return "played"

    with capture_logs() as logs:
        async with harness(flow, missing_media={"sound:ivr/ko/missing"}) as h:
            assert await outcome(await h.call_in()) == "played"
    failed = [e for e in logs if e["event"] == "call.media_failed"]
    assert [e["media"] for e in failed] == ["sound:ivr/ko/missing"] * 2


async def test_a_key_stops_the_menu_at_once_and_is_the_first_digit_gathered():
    async def flow(call, args):
        await call.play([LONG_PROMPT, Prompt("never_reached", "ko")], barge_in=True)
        return await call.gather(max_digits=2, first_timeout=1, inter_timeout=1)

    async with harness(flow, durations={LONG: None}) as h:
        started = await h.call_in()
        play = await h.request(is_play)
        playback_id = play.path.rsplit("/", 1)[1]
        await h.fake.press(started.call.id, "1")
        stop = await h.request(lambda r: r.method == "DELETE" and r.path.startswith("/playbacks"))
        assert stop.path == f"/playbacks/{playback_id}"
        assert stop.at - play.at < 0.5
        await h.fake.press(started.call.id, "2")
        assert await outcome(started) == Gathered("12", "max_digits")
        assert [r.params["media"] for r in h.fake.requests if is_play(r)] == [
            f"{LONG},sound:ivr/ko/never_reached"]                # one playback for the list
        assert len([r for r in h.fake.requests if r.method == "DELETE"
                    and r.path.startswith("/playbacks")]) == 1   # one stop for the whole list
        assert h.fake.heard(started.call.id) == [LONG]


async def test_a_key_during_the_second_item_stops_the_list_there():
    second = "sound:ivr/ko/second"

    async def flow(call, args):
        await call.play([Prompt("first", "ko"), Prompt("second", "ko"), Prompt("third", "ko")],
                        barge_in=True)
        return await call.gather(max_digits=1, first_timeout=1, inter_timeout=1)

    async with harness(flow, durations={second: None}, playback_delay=0.05) as h:
        started = await h.call_in()
        playing = await h.request(is_play)
        pb = playing.path.rsplit("/", 1)[1]
        await h.fake.wait_for_event(lambda e: e["type"] == "PlaybackStarted" and e["playback"]["id"] == pb
                                    and e["playback"]["media_uri"] == second)
        await h.fake.press(started.call.id, "4")
        assert await outcome(started) == Gathered("4", "max_digits")
        stops = [r for r in h.fake.requests if r.method == "DELETE" and r.path.startswith("/playbacks")]
        assert [r.path for r in stops] == [f"/playbacks/{pb}"]
        assert h.fake.heard(started.call.id) == ["sound:ivr/ko/first", second]


async def test_a_recheck_between_two_items_of_a_list_does_not_end_it():
    """``GET /playbacks/{id}`` answers state "continuing" in the instant between two items:
    the recheck after a reconnect must not take it for an end."""
    async def flow(call, args):
        await call.play([LONG_PROMPT, Prompt("after", "ko")])
        return "played"

    async with harness(flow, durations={LONG: None}) as h:
        started = await h.call_in()
        play = await h.request(is_play)
        pb = play.path.rsplit("/", 1)[1]
        h.fake.playbacks[pb]["state"] = "continuing"
        await h.fake.drop_websocket()
        await h.fake.wait_for_connection(2)
        await h.request(lambda r: r.method == "GET" and r.path == f"/playbacks/{pb}")
        await h.adapter.wait_ready(2)
        with pytest.raises(TimeoutError):
            await outcome(started, timeout=0.2)                 # still playing
        assert started.call.pending_playbacks == [pb]
        h.fake.finish_playback(pb)
        assert await outcome(started) == "played"


async def test_a_key_pressed_before_a_barge_in_prompt_skips_it():
    pressed = asyncio.Event()

    async def flow(call, args):
        await pressed.wait()
        await call.play([Prompt("menu", "ko")], barge_in=True)
        return await call.gather(max_digits=1, first_timeout=1, inter_timeout=1)

    async with harness(flow) as h:
        started = await h.call_in()
        await h.fake.press(started.call.id, "3")
        await h.fake.flush()
        await asyncio.sleep(0.05)        # let the key travel over the socket
        pressed.set()
        assert await outcome(started) == Gathered("3", "max_digits")
        assert not [r for r in h.fake.requests if is_play(r)]


async def test_without_barge_in_a_key_waits_for_the_prompt_to_end():
    async def flow(call, args):
        await call.play([Prompt("short", "ko")])
        return await call.gather(max_digits=1, first_timeout=1, inter_timeout=1)

    async with harness(flow, playback_delay=0.1) as h:
        started = await h.call_in()
        await h.request(is_play)
        await h.fake.press(started.call.id, "7")
        assert await outcome(started) == Gathered("7", "max_digits")
        assert not [r for r in h.fake.requests if r.method == "DELETE"
                    and r.path.startswith("/playbacks")]


async def test_silence_ends_gather_after_the_first_timeout():
    async def flow(call, args):
        began = time.monotonic()
        got = await call.gather(max_digits=4, first_timeout=0.1, inter_timeout=5)
        return got, time.monotonic() - began

    async with harness(flow) as h:
        got, took = await outcome(await h.call_in())
        assert got == Gathered("", "timeout")
        assert 0.09 <= took < 0.5


async def test_a_caller_who_stops_part_way_gets_the_inter_digit_timeout():
    async def flow(call, args):
        return await call.gather(max_digits=6, first_timeout=2, inter_timeout=0.1)

    async with harness(flow) as h:
        started = await h.call_in()
        await h.fake.press(started.call.id, "12")
        assert await outcome(started) == Gathered("12", "timeout")


async def test_the_terminator_ends_input_and_is_not_returned():
    async def flow(call, args):
        first = await call.gather(max_digits=6, first_timeout=1, inter_timeout=1)
        only_hash = await call.gather(max_digits=6, first_timeout=1, inter_timeout=1)
        star = await call.gather(max_digits=6, first_timeout=1, inter_timeout=1,
                                 terminator="*")
        return first, only_hash, star

    async with harness(flow) as h:
        started = await h.call_in()
        await h.fake.press(started.call.id, "12#")
        await h.fake.press(started.call.id, "#")
        await h.fake.press(started.call.id, "9#*")
        assert await outcome(started) == (Gathered("12", "terminator"),
                                          Gathered("", "terminator"),
                                          Gathered("9#", "terminator"))


async def test_max_digits_ends_input_and_later_keys_stay_buffered():
    async def flow(call, args):
        first = await call.gather(max_digits=3, first_timeout=1, inter_timeout=1)
        rest = await call.gather(max_digits=3, first_timeout=1, inter_timeout=0.1)
        call.flush_digits()
        return first, rest

    async with harness(flow) as h:
        started = await h.call_in()
        await h.fake.press(started.call.id, "12345")
        assert await outcome(started) == (Gathered("123", "max_digits"),
                                          Gathered("45", "timeout"))


async def test_flush_forgets_keys_pressed_earlier():
    ready = asyncio.Event()

    async def flow(call, args):
        await ready.wait()
        call.flush_digits()
        return await call.gather(max_digits=2, first_timeout=0.1, inter_timeout=0.1)

    async with harness(flow) as h:
        started = await h.call_in()
        await h.fake.press(started.call.id, "99")
        await h.fake.flush()
        await asyncio.sleep(0.05)
        ready.set()
        assert await outcome(started) == Gathered("", "timeout")


async def test_a_phone_number_with_repeated_digits_arrives_whole():
    async def flow(call, args):
        return await call.gather(max_digits=11, first_timeout=1, inter_timeout=0.5)

    async with harness(flow) as h:
        started = await h.call_in()
        await h.fake.press(started.call.id, "01011223344")
        assert await outcome(started) == Gathered("01011223344", "max_digits")


async def test_two_callers_pressing_at_once_each_get_their_own_keys_in_order():
    async def flow(call, args):
        return await call.gather(max_digits=4, first_timeout=1, inter_timeout=1)

    async with harness(flow) as h:
        first = await h.call_in("01011111111")
        second = await h.call_in("01022222222")
        a, b = h.fake.channels[first.call.id], h.fake.channels[second.call.id]
        interleaved = []
        for key_a, key_b in zip("1234", "9876", strict=True):
            interleaved.append(h.fake.event("ChannelDtmfReceived", channel=a, digit=key_a))
            interleaved.append(h.fake.event("ChannelDtmfReceived", channel=b, digit=key_b))
        await h.fake.send_events(interleaved)
        assert await outcome(first) == Gathered("1234", "max_digits")
        assert await outcome(second) == Gathered("9876", "max_digits")


async def test_a_caller_who_hangs_up_mid_prompt_ends_the_call_at_once():
    async def flow(call, args):
        await call.answer()
        await call.play([LONG_PROMPT])

    async with harness(flow, durations={LONG: None}) as h:
        started = await h.call_in()
        await h.request(is_play)
        began = time.monotonic()
        await h.fake.caller_hangs_up(started.call.id)
        with pytest.raises(CallEnded):
            await outcome(started, timeout=0.5)
        assert time.monotonic() - began < 0.5
        assert started.call.hung_up
        assert started.call.id not in h.adapter.calls
        await asyncio.sleep(0.05)
        assert not h.adapter._call_tasks.tasks            # the call's task has ended
        with pytest.raises(CallEnded):
            await started.call.gather(max_digits=1, first_timeout=1, inter_timeout=1)
        with pytest.raises(CallEnded):
            await started.call.play([Prompt("bye", "ko")])
        await started.call.hangup()                        # no-op once gone
        deletes = [r for r in h.fake.requests if r.method == "DELETE"
                   and r.path.startswith("/channels")]
        assert deletes == []


@pytest.mark.parametrize("order", [("StasisEnd", "ChannelHangupRequest", "ChannelDestroyed"),
                                   ("ChannelDestroyed",)])
async def test_hangup_events_in_an_unusual_order_still_end_a_gather(order):
    async def flow(call, args):
        await call.gather(max_digits=4, first_timeout=5, inter_timeout=5)

    async with harness(flow) as h:
        started = await h.call_in()
        await asyncio.sleep(0.02)
        await h.fake.caller_hangs_up(started.call.id, order=order)
        with pytest.raises(CallEnded):
            await outcome(started, timeout=0.5)


async def test_a_channel_gone_between_events_gives_caller_hung_up():
    async def flow(call, args):
        await call.answer()

    async with harness(flow) as h:
        channel_id = await h.fake.start_call()
        h.fake.remove_channel(channel_id)               # gone, and no event says so
        started = await h.next_call()
        with pytest.raises(CallEnded):
            await outcome(started)
        assert started.call.hung_up


async def test_a_transfer_hands_the_call_to_the_dialplan_and_nobody_hangs_it_up():
    async def flow(call, args):
        await call.transfer("agents", "100")
        return call.hung_up

    async with harness(flow) as h:
        started = await h.call_in()
        assert await outcome(started) is True
        cont = await h.request(lambda r: r.path.endswith("/continue"))
        assert cont.params == {"context": "agents", "extension": "100", "priority": "1"}
        await asyncio.sleep(0.05)
        assert not [r for r in h.fake.requests if r.method == "DELETE"]
        assert started.call.id in h.fake.channels


async def test_a_flow_that_simply_returns_leaves_nobody_on_the_line():
    async def flow(call, args):
        await call.answer()

    async with harness(flow) as h:
        started = await h.call_in()
        await outcome(started)
        hangup = await h.request(lambda r: r.method == "DELETE")
        assert hangup.path == f"/channels/{started.call.id}"
        assert hangup.params == {"reason": "normal"}


async def test_a_channel_we_originate_is_handed_to_whoever_expects_it():
    async def flow(call, args):
        return None

    async with harness(flow) as h:
        leg = h.adapter.expect("agent-leg-7")
        await h.adapter.client.originate("PJSIP/agent1", app_args=["agent"],
                                         channel_id="agent-leg-7")
        async with asyncio.timeout(2):
            agent = await leg
        assert agent.id == "agent-leg-7" and agent.args == ["agent"]
        assert h.started.qsize() == 0                  # the flow handler was not run for it
        await agent.start_moh()
        await agent.hangup()
        assert agent.hung_up


async def test_a_prompt_cancelled_while_its_request_is_in_flight_is_stopped_once_asterisk_answers():
    """The queue connects a caller to an agent while an announcement is being asked for: the
    announcement must not play on (and hold up the move to the agent's bridge)."""
    playing = asyncio.Event()

    async def flow(call, args):
        playing.set()
        await call.play([LONG_PROMPT, Prompt("after", "ko")])

    async with harness(flow, durations={LONG: None}) as h:
        h.fake.slow(lambda r: r.method == "POST" and "/play/" in r.path, 0.3)
        started = await h.call_in()
        await playing.wait()
        await h.request(lambda r: r.method == "POST" and "/play/" in r.path)   # asked, not answered
        flow_task = next(t for t in asyncio.all_tasks() if t.get_name() == f"ari.call.{started.call.id}")
        flow_task.cancel()                                                    # the call moves on
        stop = await h.request(lambda r: r.method == "DELETE" and r.path.startswith("/playbacks"),
                               timeout=2)
        assert h.fake.playbacks.get(stop.path.rsplit("/", 1)[1]) is None     # it no longer plays
        assert len([r for r in h.fake.requests if is_play(r)]) == 1         # the list, not "after"


async def test_a_flood_of_keys_on_one_channel_is_bounded_and_said_once_a_second():
    """A broken or hostile device sends 10,000 keys: the call keeps what a person could press
    (a burst, then the rate), the rest is dropped and logged once a second, and a call beside it
    is served meanwhile."""
    from ivr.ari.call import KEY_BURST, KEY_RATE, MAX_BUFFERED_KEYS

    async def flow(call, args):
        if args == ["flood"]:
            await call.wait_hangup()
            return len(call._digits), call.keys_dropped
        got = await call.gather(max_digits=3, first_timeout=2, inter_timeout=1)
        return got.digits

    with capture_logs() as logs:
        async with harness(flow) as h:
            flood_id = await h.fake.start_call(args=["flood"])
            flooded = await h.started.get()
            began = time.monotonic()
            await h.fake.press(flood_id, "1234567890#*" * 834)          # 10,008 keys at once
            quiet_id = await h.fake.start_call(caller="01099998888")
            quiet = await h.started.get()
            await h.fake.press(quiet_id, "123")
            assert await outcome(quiet, timeout=2.0) == "123"             # served beside it
            await h.fake.flush()
            await asyncio.sleep(0.05)
            await h.fake.caller_hangs_up(flood_id)
            kept, dropped = await outcome(flooded, timeout=2.0)
            took = time.monotonic() - began
    # The burst, and what the rate refilled while the flood was read (a slow machine reads
    # it over more time).
    assert kept <= min(MAX_BUFFERED_KEYS, KEY_BURST + KEY_RATE * took + 1)
    assert kept + dropped == 10_008
    warned = [e for e in logs if e["event"] == "call.keys_dropped"]
    assert 1 <= len(warned) <= 2 and warned[0]["channel"] == flood_id


async def test_waiting_for_a_hang_up_with_a_time_limit():
    """What a waiting caller's announcer does between announcements: False when the time
    passed with the caller still there, True as soon as the caller hangs up; a waiter given
    up on (cancelled) leaves the others waiting."""
    async def flow(call, args):
        quiet = await call.wait_hangup(0.05)
        given_up = asyncio.ensure_future(call.wait_hangup(30))
        await asyncio.sleep(0)
        given_up.cancel()
        began = time.monotonic()
        gone = await call.wait_hangup(30)
        return quiet, gone, time.monotonic() - began, await call.wait_hangup(0)

    async with harness(flow) as h:
        started = await h.call_in()
        await asyncio.sleep(0.2)
        await h.fake.caller_hangs_up(started.call.id)
        quiet, gone, took, after = await outcome(started)
        assert (quiet, gone, after) == (False, True, True)
        assert took < 1.0
