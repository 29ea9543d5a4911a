"""``ari.requests: socket`` on the real Asterisk: the engine's requests go over the event socket
and three sockets of their own, a caller is served as over HTTP, and a cut of every connection
mid-call loses nothing."""

from __future__ import annotations

import asyncio

import pytest

from engine import Engine
from ivr.sipp import place_call

pytestmark = pytest.mark.e2e

MAIN = "15771000"
PATH = ["start", "choose_language", "welcome", "main_menu", "certificates_menu",
        "certificates_issue_info", "after_info", "goodbye"]


@pytest.fixture(scope="module")
def engine(sandbox, tmp_path_factory):
    eng = Engine(tmp_path_factory.mktemp("engine-socket"), sandbox, ari_requests="socket")
    eng.start()
    yield eng
    rc = eng.stop()
    assert rc == 0, f"the engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"
    assert not eng.events("call.media_failed"), eng.events("call.media_failed")


async def _over_socket(engine: Engine, count: int = 1, timeout: float = 10.0) -> dict:
    async with asyncio.timeout(timeout):
        while len(found := engine.events("ari.requests_over_socket")) < count:
            await asyncio.sleep(0.1)
    return found[-1]


async def test_asterisk_answers_on_the_socket_and_a_caller_is_routed_by_the_keys(engine):
    said = await _over_socket(engine)
    assert said["sockets"] == 4
    assert not engine.events("ari.requests_over_http")
    before = engine.call_ids()
    result = await place_call(MAIN, caller="01012345678", keys="w1.5,1,w1.5,2,w1.5,1,w1.5,1",
                              max_duration=60)
    assert result.answered, result.describe()
    rec = await engine.new_call_record(before)
    assert rec["nodes"] == PATH and rec["outcome"] == "completed"
    assert result.ended_by == "remote"
    assert not engine.events("ari.request_repeated")


async def test_a_cut_of_every_connection_mid_call_loses_nothing(engine):
    await _over_socket(engine)
    before = engine.call_ids()
    call = asyncio.create_task(place_call(MAIN, caller="01066667777",
                                          keys="w5,1,w1.5,2,w1.5,1,w1.5,1", max_duration=60))
    await asyncio.sleep(3)                   # the language choice is playing
    assert await asyncio.to_thread(engine.proxy.cut) >= 4     # the event socket and its three
    result = await call
    assert result.answered
    rec = await engine.new_call_record(before)
    assert rec["nodes"] == PATH and rec["outcome"] == "completed"
    await _over_socket(engine, count=2)      # back on the socket after the reconnection
