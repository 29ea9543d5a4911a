"""Requests over the event socket (``ari.requests: socket``, Asterisk 22.4+): used when
Asterisk answers there, HTTP otherwise and by default; a socket lost with requests in flight
loses no call."""

from __future__ import annotations

import asyncio

import pytest
from ari_harness import Harness, harness, is_play, outcome
from structlog.testing import capture_logs

from ivr.ari import events
from ivr.call import Gathered, Prompt
from ivr.ari import Timeouts
from ivr.errors import AriError, AriTimeout, ChannelGone


async def answer_and_wait_for_a_key(call, args):
    await call.answer()
    return await call.gather(max_digits=1, first_timeout=5, inter_timeout=5)


async def answer_play_and_wait_for_a_key(call, args):
    await call.answer()
    await call.play([Prompt("welcome", "ko")])
    return await call.gather(max_digits=1, first_timeout=5, inter_timeout=5)


async def _over_socket(h: Harness, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not h.adapter.client.over_socket:
            await asyncio.sleep(0.005)


def _answers(h: Harness, channel_id: str) -> list[bool]:
    """How each answer request for the channel came: True over the socket, False HTTP."""
    path = f"/channels/{channel_id}/answer"
    return [r.over_socket for r in h.fake.requests if r.method == "POST" and r.path == path]


async def test_a_call_is_served_over_the_event_socket_once_asterisk_answers_there():
    with capture_logs() as logs:
        async with harness(answer_play_and_wait_for_a_key, requests="socket") as h:
            await _over_socket(h)
            live = await h.call_in()
            await h.request(is_play)
            await h.fake.press(live.call.id, "5")
            assert await outcome(live) == Gathered("5", "max_digits")
            mine = [r for r in h.fake.requests if live.call.id in r.path]
            assert mine and all(r.over_socket for r in mine)
            assert h.fake.played(live.call.id) == ["sound:ivr/ko/welcome"]
    assert "ari.requests_over_socket" in [e["event"] for e in logs]


async def test_errors_over_the_socket_are_the_same_typed_errors_as_over_http():
    async with harness(answer_and_wait_for_a_key, requests="socket") as h:
        await _over_socket(h)
        client = h.adapter.client
        with pytest.raises(ChannelGone) as gone:
            await client.answer("no-such-channel")
        assert gone.value.status == 404
        channel_id = h.fake.add_channel()["id"]
        h.fake.fail(lambda r: r.path.endswith("/answer"), 500)
        with pytest.raises(AriError) as failed:
            await client.answer(channel_id)
        assert failed.value.status == 500 and not isinstance(failed.value, ChannelGone)
        await client.answer(channel_id)
        assert _answers(h, channel_id) == [True, True]


async def test_an_asterisk_that_ignores_requests_on_the_socket_is_asked_over_http(monkeypatch):
    monkeypatch.setattr(events, "PROBE_TIMEOUT", 0.2)
    with capture_logs() as logs:
        async with harness(answer_and_wait_for_a_key, requests="socket", rest_over_socket=False) as h:
            async with asyncio.timeout(2):
                while "ari.requests_over_http" not in [e["event"] for e in logs]:
                    await asyncio.sleep(0.01)
            live = await h.call_in()
            await h.answered(live.call.id)
            await h.fake.press(live.call.id, "7")
            assert await outcome(live) == Gathered("7", "max_digits")
            assert not h.adapter.client.over_socket
            assert _answers(h, live.call.id) == [False]
            assert h.fake.socket_requests == 0


async def test_requests_http_the_default_never_asks_on_the_socket():
    async with harness(answer_and_wait_for_a_key) as h:
        live = await h.call_in()
        await h.answered(live.call.id)
        await h.fake.press(live.call.id, "1")
        assert await outcome(live) == Gathered("1", "max_digits")
        assert h.fake.socket_requests == 0
        assert all(not r.over_socket for r in h.fake.requests)


async def test_a_request_in_flight_when_the_socket_drops_is_sent_again_over_http():
    async with harness(answer_and_wait_for_a_key, requests="socket") as h:
        await _over_socket(h)
        h.fake.lose_answer(lambda r: r.path.endswith("/answer"))
        live = await h.call_in()
        await h.answered(live.call.id)            # carried out; its answer never comes
        await h.fake.drop_websocket()
        await h.fake.wait_for_connection(2)
        await h.adapter.wait_ready(2)
        await h.request(lambda r: r.path.endswith("/answer") and not r.over_socket)
        await h.fake.press(live.call.id, "4")
        assert await outcome(live) == Gathered("4", "max_digits")
        assert _answers(h, live.call.id) == [True, False]


async def test_a_playback_carried_out_before_the_socket_dropped_is_not_played_twice():
    async with harness(answer_play_and_wait_for_a_key, requests="socket", playback_delay=0.3) as h:
        await _over_socket(h)
        h.fake.lose_answer(is_play)
        live = await h.call_in()
        await h.request(is_play)                  # started; its answer never comes
        await h.fake.drop_websocket()
        await h.fake.wait_for_connection(2)
        # The repeat over HTTP is told that playback id exists (409): the first one counts.
        await h.request(lambda r: is_play(r) and not r.over_socket)
        await h.fake.wait_for_event(lambda e: e["type"] == "PlaybackFinished")
        await h.fake.press(live.call.id, "2")
        assert await outcome(live) == Gathered("2", "max_digits")
        assert h.fake.heard(live.call.id) == ["sound:ivr/ko/welcome"]


def _config(tmp_path, text: str):
    from ivr.config import load_config

    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "prompts").mkdir(exist_ok=True)
    path = tmp_path / "ivr.yaml"
    path.write_text("flows: flows\nprompts: prompts\n" + text, encoding="utf-8")
    return lambda env={}: load_config(path, env=env, need_ari=False)


def test_ari_requests_is_http_by_default_and_socket_on_request(tmp_path):
    from ivr.errors import ConfigError

    assert _config(tmp_path, "")().ari.requests == "http"
    assert _config(tmp_path, "ari:\n  requests: socket\n")().ari.requests == "socket"
    assert _config(tmp_path, "")({"IVR_ARI_REQUESTS": "socket"}).ari.requests == "socket"
    with pytest.raises(ConfigError) as err:
        _config(tmp_path, "ari:\n  requests: websocket\n")()
    assert "ari.requests" in str(err.value) and "'socket'" in str(err.value)


async def test_requests_are_spread_over_the_event_socket_and_sockets_of_their_own():
    async with harness(answer_and_wait_for_a_key, requests="socket") as h:
        client = h.adapter.client
        async with asyncio.timeout(2):
            while client.request_sockets < events.REQUEST_SOCKETS:
                await asyncio.sleep(0.005)
        assert h.fake.other_app_connections == events.REQUEST_SOCKETS - 1
        lives = [await h.call_in(caller=f"0101234{n:04d}") for n in range(8)]
        for live in lives:
            await h.answered(live.call.id)
            await h.fake.press(live.call.id, "3")
        for live in lives:
            assert await outcome(live) == Gathered("3", "max_digits")
        # The event socket is lost: the request sockets close with it, and come back after.
        await h.fake.drop_websocket()
        await h.fake.wait_for_connection(2)
        async with asyncio.timeout(2):
            while client.request_sockets < events.REQUEST_SOCKETS:
                await asyncio.sleep(0.005)
        assert h.fake.other_app_connections == 2 * (events.REQUEST_SOCKETS - 1)


async def test_a_request_asterisk_never_answers_on_the_socket_times_out_and_the_next_is_served():
    quick = Timeouts(request=0.3, connect=1.0, ws_heartbeat=2.0, ws_close=0.5,
                     reconnect_min=0.02, reconnect_max=0.1, shutdown_grace=0.5)
    async with harness(answer_and_wait_for_a_key, requests="socket", timeouts=quick) as h:
        await _over_socket(h)
        client = h.adapter.client
        channel_id = h.fake.add_channel()["id"]
        h.fake.fail(lambda r: r.path.endswith("/answer"), 0)        # never answers
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(AriTimeout) as caught:
            await client.answer(channel_id)
        assert 0.3 <= loop.time() - started < 1.0
        assert "no answer" in str(caught.value)
        await client.answer(channel_id)
        assert _answers(h, channel_id) == [True, True]
