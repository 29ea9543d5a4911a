"""The REST client against the fake Asterisk: typed errors, auth, request shapes."""

from __future__ import annotations

import socket
import time

import pytest

from ivr.ari import AriClient, Timeouts
from ivr.ari.events import backoff_delay
from ivr.errors import AriError, AriTimeout, AriUnavailable, ChannelGone
from ivr.testing.fake_ari import FakeAri

from ari_harness import FAST


@pytest.fixture
async def fake():
    async with FakeAri() as fake:
        yield fake


@pytest.fixture
async def client(fake):
    async with AriClient(fake.base_url, fake.username, fake.password, fake.app, FAST) as client:
        yield client


async def test_a_channel_that_is_gone_answers_channel_gone(client):
    with pytest.raises(ChannelGone) as caught:
        await client.answer("no-such-channel")
    assert caught.value.status == 404
    assert isinstance(caught.value, LookupError)


async def test_a_stopped_playback_that_already_ended_is_channel_gone(client):
    with pytest.raises(ChannelGone):
        await client.stop_playback("long-finished")


async def test_a_missing_bridge_is_an_ari_error_not_a_gone_channel(client):
    with pytest.raises(AriError) as caught:
        await client.destroy_bridge("no-such-bridge")
    assert caught.value.status == 404
    assert not isinstance(caught.value, ChannelGone)


async def test_a_server_error_is_an_ari_error_with_its_status(fake, client):
    channel_id = fake.add_channel()["id"]
    fake.fail(lambda r: r.path.endswith("/answer"), 500)
    with pytest.raises(AriError) as caught:
        await client.answer(channel_id)
    assert caught.value.status == 500
    assert not isinstance(caught.value, ChannelGone)
    await client.answer(channel_id)            # the fault was for one request only


async def test_a_slow_asterisk_is_a_timeout(fake):
    fake.fail(lambda r: r.path == "/channels", 0)        # never answers
    timeouts = Timeouts(request=0.2, connect=0.2)
    async with AriClient(fake.base_url, fake.username, fake.password, fake.app,
                         timeouts) as client:
        began = time.monotonic()
        with pytest.raises(AriTimeout) as caught:
            await client.list_channels()
    assert isinstance(caught.value, TimeoutError)
    assert time.monotonic() - began < 1.0


async def test_nobody_listening_is_unavailable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with AriClient(f"http://127.0.0.1:{port}/ari", "ivr", "secret", "ivr", FAST) as client:
        with pytest.raises(AriUnavailable) as caught:
            await client.list_channels()
    assert isinstance(caught.value, ConnectionError)
    assert caught.value.__cause__ is not None


async def test_a_wrong_password_says_what_to_fix(fake):
    async with AriClient(fake.base_url, fake.username, "wrong", fake.app, FAST) as client:
        with pytest.raises(AriError) as caught:
            await client.list_channels()
    assert caught.value.status == 401
    assert "password" in str(caught.value) and "ari.conf" in str(caught.value)


async def test_requests_carry_basic_auth_and_the_shapes_asterisk_expects(fake, client):
    channel_id = fake.add_channel()["id"]
    await client.play(channel_id, "pb-1", ["sound:ivr/ko/welcome", "sound:ivr/ko/menu"],
                      lang="ko")
    await client.set_variable(channel_id, "IVR_LANG", "ko")
    assert await client.get_variable(channel_id, "IVR_LANG") == "ko"
    await client.continue_in_dialplan(channel_id, "agents", "100", 1)
    created = await client.originate("PJSIP/agent1", app_args=["agent"], caller_id="1577",
                                     channel_id="agent-leg-1",
                                     variables={"IVR_CALLER": "01012345678"})
    assert created["id"] == "agent-leg-1"

    play, _setvar, _getvar, cont, originate = fake.requests
    assert play.path == f"/channels/{channel_id}/play/pb-1"
    assert play.params == {"media": "sound:ivr/ko/welcome,sound:ivr/ko/menu", "lang": "ko"}
    assert cont.params == {"context": "agents", "extension": "100", "priority": "1"}
    assert originate.params["app"] == "ivr" and originate.params["appArgs"] == "agent"
    assert originate.json == {"variables": {"IVR_CALLER": "01012345678"}}
    assert fake.variables["agent-leg-1"] == {"IVR_CALLER": "01012345678"}


async def test_bridges_can_be_built_and_torn_down(fake, client):
    caller = fake.add_channel()["id"]
    agent = fake.add_channel(args=["agent"])["id"]
    bridge = await client.create_bridge(bridge_id="b1")
    await client.add_to_bridge(bridge["id"], [caller, agent])
    assert fake.bridges["b1"]["channels"] == [caller, agent]
    await client.bridge_moh_start("b1")
    await client.remove_from_bridge("b1", agent)
    await client.destroy_bridge("b1")
    assert fake.bridges == {}


def test_back_off_grows_and_stays_bounded():
    delays = [backoff_delay(n, 0.5, 30.0, lambda: 1.0) for n in range(12)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(delays) == 30.0
    assert backoff_delay(3, 0.5, 30.0, lambda: 0.0) == 2.0     # jitter: between half and all
    assert backoff_delay(500, 0.5, 30.0, lambda: 1.0) == 30.0
