"""Callers on real phones: SIPp calls through the sandbox Asterisk to the running engine.

Each test places a real SIP call, presses keys over RTP (RFC 4733) and then reads the path
the engine recorded, with `ivr calls list --json`, as an operator would.
"""

from __future__ import annotations

import asyncio

import pytest

from engine import Engine
from ivr.sipp import place_call

pytestmark = pytest.mark.e2e

MAIN = "15771000"
KEYPAD = "15779000"


@pytest.fixture(scope="module")
def engine(sandbox, tmp_path_factory):
    eng = Engine(tmp_path_factory.mktemp("engine"), sandbox)
    eng.start()
    yield eng
    rc = eng.stop()
    assert rc == 0, f"the engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"
    # Asterisk played every prompt the flows asked for: no media was missing.
    assert not eng.events("call.media_failed"), eng.events("call.media_failed")


async def call_and_record(engine: Engine, number: str, **kwargs) -> tuple[object, dict]:
    before = engine.call_ids()
    result = await place_call(number, **kwargs)
    assert result.answered, f"the call was not answered: {result.describe()}\n{result.errors}"
    record = await engine.new_call_record(before)
    return result, record


async def test_a_caller_who_presses_valid_keys_is_routed_by_them(engine):
    # 1 = Korean, 2 = certificates, 1 = how to get one, 1 = end the call; each key barges into
    # its prompt.
    result, rec = await call_and_record(engine, MAIN, caller="01012345678",
                                        keys="w1.5,1,w1.5,2,w1.5,1,w1.5,1", max_duration=60)
    assert rec["nodes"] == ["start", "choose_language", "welcome", "main_menu", "certificates_menu",
                            "certificates_issue_info", "after_info", "goodbye"]
    assert rec["digits"] == ["1", "2", "1", "1"]
    assert rec["language"] == "ko"
    assert rec["outcome"] == "completed"
    assert rec["flow"] == "main" and rec["dialled"] == MAIN
    assert rec["caller"] == "010****5678"
    assert result.ended_by == "remote"          # the IVR hung up after the goodbye


async def test_a_caller_who_presses_nothing_reaches_an_agent_after_three_tries(engine):
    result, rec = await call_and_record(engine, MAIN, caller="01022223333", max_duration=150)
    assert rec["nodes"] == ["start", "choose_language", "welcome", "main_menu", "agent_no_choice"]
    assert rec["language"] == "ko"              # no key at the language choice: Korean
    assert rec["digits"] == []
    assert (rec["outcome"], rec["detail"]) == ("queued", "general")
    assert rec["reason"] == "no choice made in the menu"
    assert result.ended_by == "remote"


async def test_wrong_keys_until_the_retries_run_out(engine):
    # 7 is no language (Korean it is); 7, 9 and 4 are not options of the main menu: three
    # invalid tries.
    result, rec = await call_and_record(engine, MAIN, caller="01033334444",
                                        keys="w1.5,7,w1.5,7,w3,9,w3,4", max_duration=90)
    assert rec["digits"] == ["7", "7", "9", "4"]
    assert rec["nodes"] == ["start", "choose_language", "welcome", "main_menu", "agent_no_choice"]
    assert rec["outcome"] == "queued"


async def test_a_caller_who_hangs_up_mid_prompt_ends_the_call_at_once(engine):
    result, rec = await call_and_record(engine, MAIN, caller="01044445555", hangup_after=2.5)
    assert result.ended_by == "local"
    assert rec["outcome"] == "caller_hangup"
    assert rec["nodes"][:2] == ["start", "choose_language"] and len(rec["nodes"]) <= 3
    # The engine noticed at once: the record ended within a second of the caller's BYE.
    from datetime import datetime
    length = (datetime.fromisoformat(rec["ended_at"]) - datetime.fromisoformat(rec["started_at"])).total_seconds()
    assert length < 2.5 + 1.5, length


async def test_a_phone_number_with_repeated_digits_arrives_whole(engine):
    result, rec = await call_and_record(engine, KEYPAD, caller="01055556666",
                                        keys="w2,01011223344#", max_duration=60)
    assert rec["digits"] == ["01011223344"]
    assert rec["nodes"] == ["ask_number", "read_back", "goodbye"]
    assert rec["outcome"] == "completed"


async def test_the_call_goes_on_when_the_ari_websocket_drops_mid_call(engine):
    reconnects_before = len(engine.events("ari.reconnected")) + len(engine.events("ari.connected"))
    before = engine.call_ids()
    call = asyncio.create_task(place_call(MAIN, caller="01066667777",
                                          keys="w5,1,w1.5,2,w1.5,1,w1.5,1", max_duration=60))
    await asyncio.sleep(3)                   # the language choice is playing
    assert await asyncio.to_thread(engine.proxy.cut) >= 1
    result = await call
    assert result.answered
    rec = await engine.new_call_record(before)
    assert rec["nodes"] == ["start", "choose_language", "welcome", "main_menu", "certificates_menu",
                            "certificates_issue_info", "after_info", "goodbye"]
    assert rec["outcome"] == "completed"
    assert len(engine.events("ari.reconnected")) + len(engine.events("ari.connected")) > reconnects_before


@pytest.mark.parametrize("key,lang,node", [("2", "en", "start_english"), ("3", "zh", "start_chinese"),
                                           ("4", "vi", "start_vietnamese")])
async def test_the_sample_flow_in_each_language_plays_its_own_recordings(engine, key, lang, node):
    # The language, chosen after hearing its own offer; then certificates → how to get one → end.
    result, rec = await call_and_record(engine, MAIN, caller=f"0107000100{key}",
                                        keys=f"w6,{key},w1.5,2,w1.5,1,w1.5,1", max_duration=90)
    assert rec["nodes"][:4] == ["start", "choose_language", node, "welcome"]
    assert rec["nodes"][-1] == "goodbye" and rec["outcome"] == "completed"
    assert rec["language"] == lang
    played = [e["media"] for e in engine.events("call.play") if e.get("call_id") == rec["call_id"]]
    assert f"sound:ivr/{lang}/goodbye" in played
    # Asterisk played every file: none failed (the fixture also checks this for all calls).
    assert not [e for e in engine.events("call.media_failed") if e.get("call_id") == rec["call_id"]]


async def test_ivr_call_places_a_scripted_call_and_prints_the_engines_record_of_it(engine):
    # What a tester types: the keys, then how the call ended and the path the engine recorded.
    out = await asyncio.to_thread(engine.cli, "call", MAIN, "--from", "01088889999",
                                  "--keys", "w1.5,2,w1.5,2,w1.5,1,w1.5,1", "--max-duration", "60")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("call 01088889999 -> 15771000: remote-bye"), out.stdout
    assert "language en" in lines[1] and "caller 010****9999" in lines[1], out.stdout
    assert lines[2].split(None, 1)[1] == ("start > choose_language > start_english > welcome > main_menu > "
                                          "certificates_menu > certificates_issue_info > after_info > goodbye")
    assert lines[3].split() == ["keys:", "2", "2", "1", "1"]
    assert lines[4].split() == ["outcome:", "completed"]
