"""Reservation callbacks end to end: a SIPp caller books a callback while the agent is busy,
hangs up, and is called back (a SIPp phone on 127.0.0.1:5090 that presses 1) when the agent
is free; the engine may be killed in between."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from engine import Engine, callbacks_config, running_engine
from ivr.sipp import AgentPhone, place_call

pytestmark = pytest.mark.e2e

LINE = "15779200"              # tests/e2e/flows/callback.yaml
CUSTOMER_PORT = 5090
CONFIG = callbacks_config("e2e-engine", CUSTOMER_PORT)
# After the answer: the offer comes with the first announcement (3 s); 1 takes it; the number
# is read back and 1 confirms it.
BOOK = "w6,1,w5,1"


def cli(engine: Engine, *args: str):
    out = engine.cli(*args)
    assert out.returncode == 0, f"ivr {' '.join(args)}: {out.stderr}"
    return out


def agent_state(engine: Engine, agent_id: str) -> str:
    (agent,) = [a for a in json.loads(cli(engine, "agents", "list", "--json").stdout) if a["id"] == agent_id]
    return agent["state"]


def reservations(engine: Engine) -> list[dict]:
    return json.loads(cli(engine, "callbacks", "list", "--json").stdout)


async def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def book_callback(engine: Engine, caller: str) -> dict:
    cli(engine, "agents", "pause", "agent1", "--reason", "on another call")
    result = await place_call(LINE, caller=caller, keys=BOOK, max_duration=20, hangup_after=40)
    assert result.answered and result.ended_by == "remote", result.describe()
    (rec,) = [c for c in engine.calls() if c["caller"] == f"{caller[:3]}****{caller[-4:]}"][:1]
    assert rec["outcome"] == "callback_booked", rec
    (r,) = [r for r in reservations(engine) if r["status"] in ("pending", "claimed")]
    return r


@pytest.fixture
def engine(sandbox, tmp_path):
    with running_engine(sandbox, tmp_path, CONFIG) as eng:
        yield eng


async def test_a_booked_callback_is_dialled_when_the_agent_is_free_and_the_customer_presses_1(engine):
    booked = await book_callback(engine, "01012345678")
    async with AgentPhone(CUSTOMER_PORT, keys="1", keys_after=1.5, talk=None) as customer, \
            AgentPhone(5071, ring_delay=0.5, talk=3) as agent:
        cli(engine, "agents", "resume", "agent1")
        calls = await customer.wait_for_answered(1, timeout=20)
        assert calls[0].caller == "15771000"                  # the center's number shows
        agent_calls = await agent.wait_for_ended(1, timeout=30)
        assert agent_calls[0].caller == "+821012345678"       # the agent sees the customer
        assert agent_calls[0].rtp_packets_received > 20       # and hears them
        await customer.wait_for_ended(1, timeout=10)
        assert customer.calls[0].keys_sent == "1"
    (done,) = [r for r in reservations(engine) if r["id"] == booked["id"]]
    assert done["status"] == "done" and done["attempts"] == 1


async def test_a_customer_who_does_not_answer_is_retried_and_then_marked_failed(engine):
    booked = await book_callback(engine, "01022223333")
    async with AgentPhone(CUSTOMER_PORT, mode="no_answer") as customer:
        cli(engine, "agents", "resume", "agent1")
        await customer.wait_for_calls(1, timeout=20)
        await until(lambda: [r["status"] for r in reservations(engine) if r["id"] == booked["id"]] == ["failed"],
                    60, "the reservation to fail")
        assert len(customer.calls) == 2                        # max_attempts
        gap = customer.calls[1].invited_at - customer.calls[0].invited_at
        assert gap >= 4 - 0.5                                  # retry_delay from the first attempt


async def test_a_reservation_survives_an_engine_killed_before_the_callback_and_is_dialled_once(
        engine, sandbox, tmp_path):
    booked = await book_callback(engine, "01044445555")
    engine.kill()                                              # SIGKILL: no goodbye
    async with AgentPhone(CUSTOMER_PORT, keys="1", keys_after=1.0) as customer, \
            AgentPhone(5071, ring_delay=0.5, talk=2) as agent:
        again = Engine(tmp_path, sandbox, extra_config=CONFIG)  # same store, same owner name
        again.start()
        try:
            # The restart keeps the supervisor's pause (the event log says so); lifting it
            # frees agent1 for the reservation.
            assert agent_state(again, "agent1") == "paused"
            cli(again, "agents", "resume", "agent1")
            await agent.wait_for_ended(1, timeout=30)
            await asyncio.sleep(5)                              # long enough for a second dial
            assert len(customer.calls) == 1, [c.describe() for c in customer.calls]
            (done,) = [r for r in reservations(again) if r["id"] == booked["id"]]
            assert done["status"] == "done" and done["attempts"] == 1
        finally:
            again.stop()
