"""The wellness call: the shipped flow run on a scripted phone, and what its record says of the
person (``ivr.wellness.dialog``)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.call import Call, CallRecord, Outcome
from ivr.callbacks.schedule import OpeningHours
from ivr.cli import main
from ivr.errors import DialFailed
from ivr.flow.loader import load_flows
from ivr.flow.runner import run_flow
from ivr.testing.scripted_call import ScriptedCall, hang_up, press, silence
from ivr.wellness.dialog import Verdict, attempt_result, check_flow, dial_result
from ivr.wellness.model import AttemptResult, Campaign
from flow_helpers import FLOWS, PROMPTS, catalogue, flowset

SEOUL = ZoneInfo("Asia/Seoul")
HOURS = OpeningHours(SEOUL, {1: [(dt.time(10), dt.time(17))], 4: [(dt.time(10), dt.time(17))]})
PERSON = "+821012345678"


class Line:
    """The wellness queue as the flow meets it: ends the call the way it is told to."""

    def __init__(self, outcome: Outcome = Outcome.AGENT_CONNECTED, detail: str = "agent7 after 4 s") -> None:
        self.outcome, self.detail = outcome, detail
        self.handed: list[tuple[str, str | None, str | None, str | None]] = []

    async def queue_handoff(self, call: Call, record: CallRecord, queue: str, priority: str | None,
                            reason: str | None, language: str | None = None, *, callback: Any = None,
                            arrived_at: dt.datetime | None = None) -> None:
        self.handed.append((queue, priority, reason, language))
        record.end(self.outcome, self.detail)

    def queue_variable(self, name: str) -> Any:
        return None

    async def cancel_callbacks(self, number: str, queue: str | None = None) -> int:
        return 0


@pytest.fixture(scope="module")
def flows():
    return load_flows(FLOWS, catalogue())


async def ring(flows, *script, language: str = "ko", line: Line | None = None) -> tuple[CallRecord, ScriptedCall]:
    call = ScriptedCall(*script, caller_number=PERSON, dialled="wellness", call_id="w-1")
    record = CallRecord(call.id, PERSON, "wellness", number=PERSON)
    await run_flow(flows, flows["wellness"], call, record, catalogue=catalogue(), queues=line or Line(),
                   language=language)
    return record, call


async def test_1_is_well_and_the_person_hears_a_warm_goodbye_in_their_language(flows):
    record, call = await ring(flows, press("1"), language="vi")
    assert attempt_result(record) == Verdict(AttemptResult.WELL, "pressed 1: well")
    assert call.played == ["vi/wellness_greeting", "vi/wellness_ask", "vi/wellness_well"]
    assert call.hung_up_by_ivr


async def test_1_during_the_greeting_is_the_answer_already(flows):
    record, call = await ring(flows, press("1", during="wellness_greeting"))
    assert attempt_result(record).result is AttemptResult.WELL
    assert call.prompts == ["wellness_greeting", "wellness_well"]


async def test_hanging_up_during_the_closing_is_still_well(flows):
    record, _ = await ring(flows, press("1"), hang_up(during="wellness_well"))
    assert record.outcome == Outcome.CALLER_HANGUP
    assert attempt_result(record).result is AttemptResult.WELL


async def test_2_goes_to_the_wellness_queue_at_the_highest_priority_and_is_a_talk(flows):
    line = Line()
    record, call = await ring(flows, press("2"), language="zh", line=line)
    assert line.handed == [("wellness", "elderly", "wellness call, asked to talk", "zh")]
    assert call.prompts == ["wellness_greeting", "wellness_ask", "wellness_connecting"]
    assert attempt_result(record) == Verdict(AttemptResult.TALK,
                                             "pressed 2: talk; talked to an agent (agent7 after 4 s)")


async def test_2_when_no_agent_answers_is_a_contact_and_says_nobody_answered(flows):
    record, _ = await ring(flows, press("2"), line=Line(Outcome.QUEUE_TIMEOUT, "wellness: no agent logged in"))
    verdict = attempt_result(record)
    assert verdict == Verdict(AttemptResult.TALK, "pressed 2: talk; no agent answered (wellness: no agent logged in)")
    assert verdict.result.contact


async def test_no_key_is_asked_once_more_then_no_key(flows):
    record, call = await ring(flows, silence(), silence(), press("1"))
    assert call.prompts == ["wellness_greeting", "wellness_ask", "wellness_again", "wellness_ask",
                            "wellness_no_key"]
    assert record.outcome == Outcome.RETRIES_EXHAUSTED
    assert attempt_result(record) == Verdict(AttemptResult.NO_KEY, "no answer: no key after the repeat")
    assert [e for e in call.events if e[0] == "gather"] == [("gather", "", "timeout")] * 2   # asked twice only


async def test_wrong_keys_twice_are_no_answer(flows):
    record, _ = await ring(flows, press("3"), press("9"))
    assert attempt_result(record) == Verdict(AttemptResult.NO_KEY, "no answer: a wrong key after the repeat")


async def test_a_wrong_key_then_1_is_well(flows):
    record, _ = await ring(flows, press("7"), press("1"))
    assert attempt_result(record).result is AttemptResult.WELL


async def test_hanging_up_during_the_greeting_is_no_key(flows):
    record, _ = await ring(flows, hang_up(during="wellness_greeting"))
    assert attempt_result(record) == Verdict(AttemptResult.NO_KEY, "hung up before answering, at greeting")


def test_a_record_the_engine_noted_before_it_stopped_is_judged_as_far_as_it_goes():
    asking = CallRecord("w-2", PERSON, "wellness", nodes=["greeting", "ask"], exits=["next"])
    assert attempt_result(asking) == Verdict(AttemptResult.FAILED, "cut off before an answer: the engine stopped")
    answered = CallRecord("w-3", PERSON, "wellness", nodes=["greeting", "ask", "talk"],
                          exits=["next", "key", "queue"])
    assert attempt_result(answered).result is AttemptResult.TALK


def test_an_error_before_the_answer_is_failed_not_the_persons_doing():
    record = CallRecord("w-4", PERSON, "wellness", nodes=["greeting"], exits=["error"])
    record.end(Outcome.ERROR, "AriError: playback failed")
    assert attempt_result(record) == Verdict(AttemptResult.FAILED,
                                             "error before an answer (AriError: playback failed)")


def test_well_is_never_recorded_unless_a_key_led_there():
    record = CallRecord("w-5", PERSON, "wellness", nodes=["greeting", "ask", "well"],
                        exits=["next", "timeout", "end"])
    record.end(Outcome.RETRIES_EXHAUSTED)
    assert attempt_result(record).result is AttemptResult.NO_KEY


@pytest.mark.parametrize(("cause", "status", "result", "detail"), [
    (17, None, AttemptResult.BUSY, "busy (cause 17)"),
    (19, None, AttemptResult.NO_ANSWER, "not answered (cause 19)"),
    (21, None, AttemptResult.NO_ANSWER, "not answered (cause 21)"),
    (27, None, AttemptResult.FAILED, "could not be placed (cause 27)"),
    (None, 404, AttemptResult.FAILED, "could not be placed: the switch refused the dial (status 404)"),
])
def test_a_phone_that_never_answers_by_the_switchs_cause(cause, status, result, detail):
    error = DialFailed(f"cannot dial PJSIP/{PERSON}@trunk", cause=cause, status=status)
    assert dial_result(error) == Verdict(result, detail)
    assert "1012345678" not in dial_result(error).detail


def test_the_shipped_flow_keeps_the_contract():
    flow = load_flows(FLOWS, catalogue())["wellness"]
    assert flow.outbound and flow.numbers == ()
    assert check_flow(flow, Campaign(name="gangnam", hours=HOURS)) == []
    assert check_flow(flow, Campaign(name="gangnam", hours=HOURS, priority="elderly")) == []


def test_a_campaign_with_another_queue_or_priority_is_told_where_the_flow_differs():
    flow = load_flows(FLOWS, catalogue())["wellness"]
    problems = [str(p) for p in check_flow(flow, Campaign(name="mapo", hours=HOURS, queue="care",
                                                          priority="repeat"))]
    line = next(i for i, text in enumerate((FLOWS / "wellness.yaml").read_text().splitlines(), 1)
                if text.startswith("  talk:"))
    where = f"{FLOWS / 'wellness.yaml'}:{line}: node 'talk'"
    assert problems == [f"{where}: hands the call to queue 'wellness'; campaign 'mapo' uses 'care'",
                        f"{where}: gives priority 'elderly'; campaign 'mapo' uses 'repeat'"]


def test_a_flow_where_well_is_reached_without_a_key_is_refused(tmp_path):
    flows = flowset(tmp_path, ("w.yaml", """
        flow: w
        numbers: ["1234"]
        entry: ask
        nodes:
          ask:
            menu: wellness_ask
            options: {1: well, 2: talk}
            on_fail: well
          well:
            hangup: wellness_well
          talk:
            hangup: goodbye
        """))
    problems = [p.message for p in check_flow(flows["w"], Campaign(name="c", hours=HOURS))]
    assert problems == ["flow 'w' must say 'outbound: true' to ring wellness calls",
                        "must be a queue node handing the call to 'wellness'",
                        "on_fail goes to 'well', which only a menu key may reach"]


def test_a_flow_without_the_talk_node_is_refused(tmp_path):
    flows = flowset(tmp_path, ("w.yaml", """
        flow: w
        outbound: true
        entry: ask
        nodes:
          ask:
            menu: wellness_ask
            options: {1: well}
          well:
            hangup: wellness_well
        """))
    assert [p.message for p in check_flow(flows["w"], Campaign(name="c", hours=HOURS))] == [
        "a wellness flow needs a node 'talk', reached by a menu key"]


# -- the flow at the command line: simulate, graph, validate --------------------------------------

def test_simulate_rings_the_person_and_shows_the_answer(capsys):
    args = ["--flows", str(FLOWS), "--prompts", str(PROMPTS)]
    assert main(["simulate", "wellness", "--keys", "1", "--caller-lang", "en", *args]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "☎ wellness calls +821012345678"
    assert "▶ wellness_well [en]: We are glad to hear you are well." in out
    assert "■ completed" in out and "path: greeting > ask > well   keys: 1" in out


def test_graph_draws_the_call_as_one_the_engine_makes(capsys):
    assert main(["graph", "wellness", "--flows", str(FLOWS), "--prompts", str(PROMPTS)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('flowchart TD\n  start(["wellness calls out"])\n  start --> n_greeting\n')
    assert '  n_ask -- "key 1" --> n_well\n  n_ask -- "key 2" --> n_talk\n  n_ask -- "on_fail" --> n_no_key\n' in out


def test_validate_finds_nothing_to_say_about_the_shipped_flows(capsys):
    assert main(["validate", "--prompts", str(PROMPTS), str(FLOWS)]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (f"ok: {FLOWS}\n", "")
