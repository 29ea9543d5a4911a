"""Wellness calls end to end: the engine rings people imported with ``ivr wellness import`` on a
SIPp phone (127.0.0.1:5090, the callback endpoint), runs flows/wellness.yaml on the answered
call and records what they did; a person who never answers ends on the visit list; an inbound
surge pauses the campaign; an engine killed mid-call neither rings anyone twice nor skips
anyone."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from engine import Engine, running_engine, until
from ivr.sipp import AgentPhone, place_call
from ivr.store import open_store
from ivr.wellness.model import AttemptResult, Person

pytestmark = pytest.mark.e2e

PHONE = 5090
SEOUL = ZoneInfo("Asia/Seoul")
QUEUE_LINE = "15779100"            # tests/e2e/flows/queue.yaml: straight to queue general
ALL_DAY = '["00:00-23:59"]'
CONFIG = f"""
acd:
  queues:
    general: {{max_wait: 300, on_max_wait: message, announce_every: 30, ring_timeout: 6, wrap_up: 1}}
    wellness: {{max_wait: 120, on_max_wait: message, announce_every: 30, ring_timeout: 6, wrap_up: 1}}
  agents:
    - {{id: agent1, name: Agent 1, endpoint: PJSIP/agent1, login: true}}
callbacks:
  owner: e2e-wellness
  caller_id: "15771000"
  endpoint: "PJSIP/sipp/sip:{{national}}@127.0.0.1:{PHONE}"
  public_holidays: false
wellness:
  poll: 1
  lease: 15
  ring_timeout: 8
  campaigns:
    - name: seniors
      days: [mon, tue, wed, thu, fri, sat, sun]
      hours: {ALL_DAY}
      attempts_per_day: 2
      retry_delay: 3
      max_concurrent: 1
      failed_days_to_visit: 3
      surge: {{queue: general, pause_over: 30, resume_under: 10}}
"""


def cli(engine: Engine, *args: str):
    out = engine.cli(*args)
    assert out.returncode == 0, f"ivr {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out


def add_people(engine: Engine, *numbers: str, language: str = "ko") -> None:
    path = engine.workdir / "people.csv"
    path.write_text("phone,campaign,name,language,address_ref\n" + "".join(
        f"{n},seniors,Kim {i},{language},A-{i}\n" for i, n in enumerate(numbers, 1)), encoding="utf-8")
    out = cli(engine, "wellness", "import", str(path))
    assert f"imported {len(numbers)}, rejected 0" in out.stdout, out.stdout
    cli(engine, "wellness", "run-now")                    # else seen within a minute


def status(engine: Engine) -> dict:
    (campaign,) = json.loads(cli(engine, "wellness", "status", "--json").stdout)["campaigns"]
    return campaign


def visits(engine: Engine) -> list[dict]:
    return json.loads(cli(engine, "wellness", "visits", "--json", "--full-numbers").stdout)


@pytest.fixture
def engine(sandbox, tmp_path):
    with running_engine(sandbox, tmp_path, CONFIG) as eng:
        yield eng


async def test_a_person_who_presses_1_is_recorded_well(engine):
    # The key comes during the greeting, which it cuts short: it is already the answer.
    async with AgentPhone(PHONE, keys="1", keys_after=1.5, talk=None) as phone:
        add_people(engine, "01012340001")
        (call,) = await phone.wait_for_ended(1, timeout=40)
        assert call.caller == "15771000"                    # the center's number shows
        assert call.keys_sent == "1" and call.ended_by == "remote"
        await until(lambda: status(engine)["today"] == {"well": 1}, 10, "the attempt to be recorded")
    (rec,) = [c for c in engine.calls() if c["flow"] == "wellness"]
    assert rec["nodes"][-1] == "well" and rec["outcome"] == "completed"
    (event,) = [e for e in engine.events("wellness.attempt")]
    assert event["result"] == "well" and "01012340001" not in json.dumps(event)


async def test_a_person_who_presses_2_talks_to_an_agent_at_the_wellness_priority(engine):
    async with AgentPhone(PHONE, keys="2", keys_after=6, talk=None) as person, \
            AgentPhone(5071, ring_delay=0.5, talk=3) as agent:
        add_people(engine, "01012340002", language="en")
        (agent_call,) = await agent.wait_for_ended(1, timeout=40)
        assert agent_call.caller == "+821012340002"         # the agent sees who it is
        assert agent_call.rtp_packets_received > 20         # and hears them
        await person.wait_for_ended(1, timeout=15)
        await until(lambda: status(engine)["today"] == {"talk": 1}, 10, "the attempt to be recorded")
    (queued,) = [e for e in engine.events("acd.event") if e.get("kind") == "call.queued"]
    assert queued["queue"] == "wellness" and queued["detail"].startswith("elderly")
    assert "wellness call, asked to talk" in queued["detail"]   # … and why
    (rec,) = [c for c in engine.calls() if c["flow"] == "wellness"]
    assert rec["outcome"] == "agent_connected" and rec["language"] == "en"


async def test_one_who_never_answers_is_retried_and_after_three_failed_days_is_on_the_visit_list(
        sandbox, tmp_path):
    number = "+821012340003"
    engine = Engine(tmp_path, sandbox, extra_config=CONFIG)
    # Two failed days before today, as the engine of those days recorded them (virtual time for
    # the days; today's two tries are real calls), written before this engine starts.
    today = dt.datetime.now(SEOUL).date()               # callers.timezone: the center's days
    async with open_store(engine.store_url) as store:
        await store.put_wellness_people([Person(number=number, campaign="seniors", name="Kim")])
        for days_ago in (2, 1):
            for minutes in (0, 30):
                at = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(12, minutes),
                                         tzinfo=SEOUL)
                claim = await store.claim_wellness_attempt(number, "e2e-before", at, 60)
                assert claim is not None
                assert await store.finish_wellness_attempt(claim.id, "e2e-before", at=at,
                                                           result=AttemptResult.NO_ANSWER,
                                                           detail="not answered (cause 19)")
    async with AgentPhone(PHONE, mode="no_answer") as phone:
        await asyncio.to_thread(engine.start)
        try:
            await _never_answers(engine, number, phone)
        finally:
            engine.stop()


async def _never_answers(engine: Engine, number: str, phone: AgentPhone) -> None:
    cli(engine, "wellness", "run-now")
    (listed,) = await until(lambda: visits(engine), 60, "the person to be on the visit list")
    assert len(phone.calls) == 2                              # attempts_per_day
    gap = phone.calls[1].invited_at - phone.calls[0].invited_at
    assert gap >= 3 - 0.5                                     # retry_delay from the first try
    assert listed["number"] == number and listed["open"]
    assert [h["result"] for h in listed["history"]] == ["no_answer"] * 6
    board = json.loads(cli(engine, "wellness", "status", "--json").stdout)["campaigns"][0]
    assert board["visits_open"] == 1 and board["today"] == {"no_answer": 2}
    done = cli(engine, "wellness", "visits", "--done", str(listed["id"]), "--note", "visited: well, phone broken")
    assert "done" in done.stdout
    assert visits(engine) == []


async def test_an_inbound_surge_pauses_the_campaign_and_its_end_resumes_it(engine):
    cli(engine, "agents", "pause", "agent1", "--reason", "meeting")
    caller = asyncio.create_task(place_call(QUEUE_LINE, caller="01099990000", keys="", max_duration=40,
                                            hangup_after=12))
    try:
        await until(lambda: engine.events("wellness.paused"), 15, "the campaign to pause")
        async with AgentPhone(PHONE, keys="1", keys_after=6) as phone:
            add_people(engine, "01012340004")
            await asyncio.sleep(3)                            # three polls while paused
            assert phone.calls == []
            assert status(engine)["paused"] is True
            await caller                                       # the surge ends: the caller leaves
            await until(lambda: engine.events("wellness.resumed"), 15, "the campaign to resume")
            (call,) = await phone.wait_for_ended(1, timeout=40)
            assert call.keys_sent == "1"
        await until(lambda: status(engine)["today"] == {"well": 1}, 10, "the attempt to be recorded")
    finally:
        if not caller.done():
            caller.cancel()


async def test_an_engine_killed_mid_call_rings_nobody_twice_and_skips_nobody(engine, sandbox, tmp_path):
    async with AgentPhone(PHONE, keys="1", keys_after=14, talk=None) as phone:
        add_people(engine, "01012340005", "01012340006")
        await phone.wait_for_answered(1, timeout=30)
        await asyncio.sleep(4)                                # in the greeting, no key yet
        engine.kill()                                         # SIGKILL: no goodbye
        again = Engine(tmp_path, sandbox, extra_config=CONFIG)   # same store, same owner name
        again.start()
        try:
            calls = await phone.wait_for_ended(2, timeout=90)
            await asyncio.sleep(4)                             # long enough for a third dial
            assert len(phone.calls) == 2, [c for c in phone.calls]
            assert [c.keys_sent for c in calls] == ["1", "1"]
            await until(lambda: status(again)["today"] == {"well": 2}, 10, "both attempts recorded")
            assert status(again)["in_progress"] == 0
            adopted = again.events("wellness.adopted")
            assert len(adopted) == 1                           # the first call, carried on
        finally:
            again.stop()
