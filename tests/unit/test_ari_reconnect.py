"""Losing the event socket, reconnecting, reconciling, adopting; starting and stopping."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from structlog.testing import capture_logs

from ivr.ari import AriAdapter, Timeouts
from ivr.call import Gathered, Prompt
from ivr.errors import AriError, AriTimeout, CallEnded
from ivr.testing.fake_ari import FakeAri

from ari_harness import FAST, harness, is_play, outcome

LONG = "sound:ivr/ko/long_menu"
LONG_PROMPT = Prompt("long_menu", "ko")


async def test_a_lost_socket_mid_call_reconnects_and_the_calls_go_on():
    async def flow(call, args):
        if args == ["prompt"]:
            await call.play([LONG_PROMPT])
            return await call.gather(max_digits=1, first_timeout=1, inter_timeout=1)
        return await call.gather(max_digits=1, first_timeout=5, inter_timeout=5)

    with capture_logs() as logs:
        async with harness(flow, durations={LONG: None}) as h:
            listening = await h.call_in(args=["prompt"])
            doomed = await h.call_in(args=["gather"])
            play = await h.request(is_play)
            playback_id = play.path.rsplit("/", 1)[1]

            await h.fake.drop_websocket(refuse_for=math.inf)
            # During the gap: the prompt ends and the other caller hangs up, unseen.
            h.fake.finish_playback(playback_id, announce=False)
            h.fake.remove_channel(doomed.call.id)
            await h.fake.wait_for_refused(3)            # a few attempts, backing off
            h.fake.allow_websocket()
            await h.fake.wait_for_connection(2)

            with pytest.raises(CallEnded):
                await outcome(doomed)
            await h.fake.wait_for_request(lambda r: r.path == f"/playbacks/{playback_id}")
            await h.fake.press(listening.call.id, "5")
            assert await outcome(listening) == Gathered("5", "max_digits")
            assert h.adapter.connected

    kinds = [e["event"] for e in logs]
    assert kinds.count("ari.disconnected") == 1
    assert kinds.count("ari.reconnecting") == 1            # once per outage, not per attempt
    assert kinds.count("ari.reconnected") == 1
    reconciled = [e for e in logs if e["event"] == "ari.reconciled" and not e["first"]]
    assert reconciled[0]["vanished"] == 1


async def test_reconnect_attempts_back_off():
    async def flow(call, args):
        return None

    slow = Timeouts(request=2, connect=1, ws_heartbeat=2, ws_close=0.5,
                    reconnect_min=0.05, reconnect_max=0.2)
    async with harness(flow, timeouts=slow) as h:
        await h.fake.drop_websocket(refuse_for=0.6)
        began = time.monotonic()
        await h.fake.wait_for_connection(2, timeout=3)
        took = time.monotonic() - began
    # 0.6 s of refusal with delays ≥ half of 0.05, 0.1, 0.2, 0.2 …: a handful of tries, not hundreds
    assert 0.6 <= took < 1.2
    assert 2 <= h.fake.refused <= 12


async def test_a_caller_already_in_our_application_is_adopted_after_a_reconnect():
    async def flow(call, args):
        return await call.gather(max_digits=1, first_timeout=1, inter_timeout=1)

    async with harness(flow) as h:
        channel = h.fake.add_channel(caller="0212345678", args=["main"], state="Up")
        h.fake.add_channel(in_stasis=False)            # in the dialplan: not ours
        await h.fake.drop_websocket()
        await h.fake.wait_for_connection(2)
        await h.adapter.wait_ready(2)
        adopted = await h.next_call()
        assert adopted.adopted is True
        assert adopted.call.id == channel["id"]
        assert adopted.args == ["main"]
        assert adopted.call.caller_number == "0212345678" and adopted.call.state == "Up"
        await h.fake.press(channel["id"], "2")
        assert await outcome(adopted) == Gathered("2", "max_digits")
        assert len(h.adapter.calls) <= 1


async def test_an_engine_restart_adopts_the_calls_left_in_stasis():
    seen: list[tuple[str, list[str], bool]] = []

    async def on_new_call(call, args, *, adopted):
        seen.append((call.id, args, adopted))

    async with FakeAri() as fake:
        left = fake.add_channel(args=["main"])
        async with AriAdapter(fake.base_url, fake.username, fake.password, fake.app,
                              on_new_call, timeouts=FAST) as ari:
            await ari.wait_ready(2)
            await fake.wait_for_request(lambda r: r.method == "DELETE")   # flow ended: hung up
    assert seen == [(left["id"], ["main"], True)]


async def test_a_wrong_password_fails_fast_with_a_clear_error():
    async def on_new_call(call, args, *, adopted):
        return None

    async with FakeAri() as fake:
        async with AriAdapter(fake.base_url, fake.username, "wrong", fake.app, on_new_call,
                              timeouts=FAST) as ari:
            began = time.monotonic()
            with pytest.raises(AriError) as caught:
                await ari.wait_connected(5)
            assert time.monotonic() - began < 1
    assert caught.value.status == 401
    assert "password" in str(caught.value)


async def test_waiting_for_an_asterisk_that_never_comes_times_out():
    async def on_new_call(call, args, *, adopted):
        return None

    async with FakeAri() as fake:
        fake.refuse_websocket()
        async with AriAdapter(fake.base_url, fake.username, fake.password, fake.app,
                              on_new_call, timeouts=FAST) as ari:
            with pytest.raises(AriTimeout):
                await ari.wait_connected(0.2)


async def test_closing_lets_calls_finish_then_sends_the_rest_back_to_the_dialplan():
    async def flow(call, args):
        if args == ["quick"]:
            await asyncio.sleep(0.05)
            await call.hangup()
            return "finished"
        await call.play([LONG_PROMPT])                     # never ends

    async with FakeAri(durations={LONG: None}) as fake:
        started = []

        async def on_new_call(call, args, *, adopted):
            started.append(call)
            await flow(call, args)

        ari = AriAdapter(fake.base_url, fake.username, fake.password, fake.app, on_new_call,
                         timeouts=FAST)
        async with ari:
            await ari.wait_connected(2)
            quick = await fake.start_call(args=["quick"])
            stuck = await fake.start_call(args=["stuck"])
            await fake.wait_for_request(is_play)
            began = time.monotonic()
            await ari.close(grace=0.3)
            took = time.monotonic() - began
        assert 0.25 <= took < 1.5
        assert quick not in fake.channels                               # hung up by its flow
        cont = [r for r in fake.requests if r.path == f"/channels/{stuck}/continue"]
        assert len(cont) == 1 and cont[0].params == {}                  # back to the dialplan
        assert not fake.websocket_connected


async def test_a_call_arriving_while_closing_is_sent_back_to_the_dialplan():
    release = asyncio.Event()

    async def flow(call, args):
        await release.wait()

    async with harness(flow) as h:
        await h.call_in()
        closing = asyncio.ensure_future(h.adapter.close(grace=1))
        await asyncio.sleep(0)                      # close() has begun: no new calls
        late = await h.fake.start_call()
        await h.request(lambda r: r.path == f"/channels/{late}/continue")
        release.set()
        await closing
    assert h.started.qsize() == 0
