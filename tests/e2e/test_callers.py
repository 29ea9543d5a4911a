"""Knowing the caller, end to end: SIPp calls from registered, unknown, repeat and anonymous
numbers through the sandbox Asterisk; the registry is filled with ``ivr callers import``."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from engine import Engine
from test_calls import MAIN, call_and_record

pytestmark = pytest.mark.e2e

# 1 = Korean, 2 = certificates, 1 = how to get one, 1 = end the call: a caller who walks the menu.
WALK = "w1.5,1,w1.5,2,w1.5,1,w1.5,1"
ASKED = ["start", "choose_language", "welcome", "main_menu"]
TODAY = dt.datetime.now(ZoneInfo("Asia/Seoul")).date()
ELDERLY = "010-7000-0070"
MIDDLE_AGED = "010-4000-0040"
REPEAT = "010-3000-0003"
VIETNAMESE = "010-5000-0084"


@pytest.fixture(scope="module")
def engine(sandbox, tmp_path_factory):
    eng = Engine(tmp_path_factory.mktemp("engine-callers"), sandbox)
    eng.start()
    registry = eng.workdir / "callers.csv"
    registry.write_text(
        "phone,birth_date,language\n"
        f"{ELDERLY},{TODAY.year - 70}-01-01,ko\n"            # 70 since 1 January
        f"{MIDDLE_AGED},{TODAY.year - 40}-01-01,\n"
        f"{VIETNAMESE},{TODAY.year - 35}-06-01,vi\n"
        "010-1234,1950-01-01,\n",                            # not a phone number: reported, skipped
        encoding="utf-8")
    out = eng.cli("callers", "import", str(registry))
    assert out.returncode == 0, out.stderr
    assert "callers.csv:5" in out.stderr, out.stderr          # the bad row, by line
    assert "imported 3" in out.stdout, out.stdout
    yield eng
    rc = eng.stop()
    assert rc == 0, f"the engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"
    assert not eng.events("call.media_failed"), eng.events("call.media_failed")


async def test_a_caller_registered_as_70_reaches_the_queue_without_the_menu(engine: Engine):
    result, rec = await call_and_record(engine, MAIN, caller=ELDERLY.replace("-", ""), max_duration=60)
    assert rec["nodes"] == ["bypass"]
    assert (rec["reason"], rec["priority"]) == ("bypass: elderly", "elderly")
    assert (rec["outcome"], rec["detail"]) == ("queued", "general")
    played = [e["media"] for e in engine.events("call.play") if e.get("call_id") == rec["call_id"]]
    assert played[0] == "sound:ivr/ko/priority_agent", played       # "connecting you to an agent"
    assert not any("main_menu" in m or "welcome" in m for m in played), played
    listing = engine.cli("calls", "list")
    assert "bypass: elderly" in listing.stdout, listing.stdout


async def test_a_caller_registered_as_40_hears_the_menu(engine: Engine):
    result, rec = await call_and_record(engine, MAIN, caller=MIDDLE_AGED, keys=WALK, max_duration=60)
    assert rec["nodes"][:4] == ASKED
    assert rec["reason"] is None and rec["outcome"] == "completed"


async def test_the_third_call_within_the_window_bypasses_the_first_two_do_not(engine: Engine):
    recs = []
    for _ in range(2):
        _, rec = await call_and_record(engine, MAIN, caller=REPEAT, keys=WALK, max_duration=60)
        recs.append(rec)
    _, third = await call_and_record(engine, MAIN, caller="+82" + REPEAT.replace("-", "")[1:], max_duration=60)
    assert [r["nodes"][:4] for r in recs] == [ASKED] * 2
    assert [r["reason"] for r in recs] == [None, None]
    assert third["nodes"] == ["bypass"]
    assert (third["reason"], third["priority"]) == ("bypass: repeat", "repeat")
    listing = engine.cli("calls", "list")
    assert "bypass: repeat [priority repeat]" in listing.stdout, listing.stdout


async def test_an_anonymous_caller_hears_the_menu(engine: Engine):
    result, rec = await call_and_record(engine, MAIN, caller="anonymous", keys=WALK, max_duration=60)
    assert rec["caller"] == "anonymous"
    assert rec["nodes"][:4] == ASKED
    assert rec["reason"] is None and rec["outcome"] == "completed"


async def test_a_caller_registered_with_vietnamese_is_not_asked_for_a_language(engine: Engine):
    # No language key: certificates → how to get one → end the call, all in Vietnamese.
    result, rec = await call_and_record(engine, MAIN, caller=VIETNAMESE, keys="w1.5,2,w1.5,1,w1.5,1",
                                        max_duration=60)
    assert rec["nodes"][:3] == ["start", "welcome", "main_menu"]
    assert rec["language"] == "vi" and rec["outcome"] == "completed"
    played = [e["media"] for e in engine.events("call.play") if e.get("call_id") == rec["call_id"]]
    assert played[0] == "sound:ivr/vi/welcome" and played[-1] == "sound:ivr/vi/goodbye", played
