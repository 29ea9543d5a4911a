"""Calls through flows, with a scripted caller: what they hear, what is recorded."""

import asyncio

import pytest
import structlog

from ivr.call import CallRecord
from ivr.flow.runner import run_flow
from ivr.testing.scripted_call import ScriptedCall, hang_up, press, silence
from flow_helpers import FLOWS, catalogue, flowset
from ivr.flow.loader import load_flows

MENU = """
flow: menu
numbers: ["100"]
entry: welcome
vars:
  tries: 0
nodes:
  welcome:
    play: welcome
    next: main
  main:
    menu: main_menu
    options:
      1: billing
      2: ask
      3: care
      4: check
      0: agent
    timeout: 5
    retries: 2
    invalid: invalid_choice
    no_input: no_input
    on_fail: bye
  billing:
    play: payment_methods
    next: bye
  ask:
    gather: ask_birth_date
    into: birth
    digits: 6
    valid: "1 <= int(birth[2:4]) <= 12"
    invalid: invalid_birth_date
    no_input: no_input
    next: read_back
  read_back:
    say: digits
    value: birth
    before: you_entered
    next: bye
  care:
    subflow: care
    next: bye
  check:
    branch:
      - if: "startswith(caller.number, '010')"
        goto: mobile
    else: bye
  mobile:
    set: {lang: "'en'", tries: "tries + 1"}
    next: bye
  agent:
    queue: general
    priority: high
    reason: asked for an agent
    prompt: connecting_agent
  bye:
    hangup: goodbye
"""

CARE = """
flow: care
entry: care_menu
nodes:
  care_menu:
    menu: ltc_menu
    options:
      9: back
      0: care_agent
    on_fail: back
  back:
    return:
  care_agent:
    transfer: from-ivr
    extension: "2000"
"""


@pytest.fixture
def flows(tmp_path):
    return flowset(tmp_path, ("menu.yaml", MENU), ("care.yaml", CARE))


async def call_in(flows, *script, queues=None, caller="01012345678", **kw):
    call = ScriptedCall(*script, caller_number=caller, dialled="100")
    record = CallRecord(call.id, call.caller_number, call.dialled)
    await run_flow(flows, flows.for_number("100"), call, record, catalogue=catalogue(), queues=queues, **kw)
    return call, record


async def test_a_caller_who_presses_a_valid_key_hears_the_choice_and_goodbye(flows):
    call, record = await call_in(flows, press("1"))
    assert call.answered and call.hung_up_by_ivr
    assert call.prompts == ["welcome", "main_menu", "payment_methods", "goodbye"]
    assert call.played[0] == "ko/welcome"
    assert record.nodes == ["welcome", "main", "billing", "bye"]
    assert record.digits == ["1"]
    assert (record.outcome, record.language) == ("completed", "ko")


async def test_a_silent_caller_hears_the_menu_three_times_then_the_call_ends(flows):
    call, record = await call_in(flows)
    assert call.prompts == ["welcome", "main_menu", "no_input", "main_menu", "no_input", "main_menu", "goodbye"]
    assert record.outcome == "retries_exhausted"
    assert record.digits == []


async def test_wrong_keys_until_the_tries_run_out(flows):
    call, record = await call_in(flows, press("7"), press("8"), press("9"))
    assert call.prompts == ["welcome", "main_menu", "invalid_choice", "main_menu", "invalid_choice", "main_menu",
                            "goodbye"]
    assert record.digits == ["7", "8", "9"]
    assert record.outcome == "retries_exhausted"


async def test_a_wrong_key_then_a_right_one(flows):
    call, record = await call_in(flows, press("7"), press("1"))
    assert call.prompts == ["welcome", "main_menu", "invalid_choice", "main_menu", "payment_methods", "goodbye"]
    assert record.outcome == "completed"


async def test_a_caller_who_knows_the_menu_interrupts_it(flows):
    call, record = await call_in(flows, press("1", during="main_menu"))
    assert ("play", "ko/main_menu", "barged") in call.events
    assert call.prompts == ["welcome", "main_menu", "payment_methods", "goodbye"]
    assert record.digits == ["1"]


async def test_a_key_during_a_prompt_without_barge_in_waits_for_the_menu(flows):
    call, record = await call_in(flows, press("1", during="welcome"))
    assert ("play", "ko/welcome", "keys") in call.events
    # The key was typed ahead: the menu prompt does not start, the key chooses at once.
    assert call.prompts == ["welcome", "payment_methods", "goodbye"]
    assert record.nodes[:3] == ["welcome", "main", "billing"]


async def test_gather_validates_and_asks_again_then_says_the_digits_back(flows):
    call, record = await call_in(flows, press("2"), press("851315#"), press("850315#"))
    assert call.prompts == ["welcome", "main_menu", "ask_birth_date", "invalid_birth_date", "ask_birth_date",
                            "you_entered", "digit_8", "digit_5", "digit_0", "digit_3", "digit_1", "digit_5",
                            "goodbye"]
    assert record.digits == ["2", "851315", "850315"]
    assert record.outcome == "completed"


async def test_gather_digits_typed_during_the_prompt_count(flows):
    call, _ = await call_in(flows, press("2"), press("850315#", during="ask_birth_date"))
    assert call.prompts[-8:-1] == ["you_entered", "digit_8", "digit_5", "digit_0", "digit_3", "digit_1", "digit_5"]


async def test_gather_too_short_is_invalid_and_no_input_runs_out(flows):
    call, record = await call_in(flows, press("2"), press("85#"), silence(), silence())
    # 'ask' has no on_fail: when the tries run out the call ends there.
    assert call.prompts == ["welcome", "main_menu", "ask_birth_date", "invalid_birth_date", "ask_birth_date",
                            "no_input", "ask_birth_date"]
    assert (record.outcome, record.detail) == ("retries_exhausted", "ask")
    assert call.hung_up_by_ivr


async def test_a_subflow_returns_to_the_calling_flow(flows):
    call, record = await call_in(flows, press("3"), press("9"))
    assert record.nodes == ["welcome", "main", "care", "care/care_menu", "care/back", "bye"]
    assert call.prompts == ["welcome", "main_menu", "ltc_menu", "goodbye"]
    assert record.outcome == "completed"


async def test_a_subflow_can_transfer_the_call(flows):
    call, record = await call_in(flows, press("3"), press("0"))
    assert call.transferred_to == ("from-ivr", "2000", 1)
    assert (record.outcome, record.detail) == ("transferred", "from-ivr,2000,1")


async def test_branch_on_the_callers_number_and_switch_language(flows):
    call, record = await call_in(flows, press("4"))
    assert record.nodes == ["welcome", "main", "check", "mobile", "bye"]
    assert call.played[-1] == "en/goodbye"
    assert record.language == "en"
    call, record = await call_in(flows, press("4"), caller="0212345678")
    assert record.nodes == ["welcome", "main", "check", "bye"] and call.played[-1] == "ko/goodbye"


async def test_queue_hand_off_through_the_queue_service(flows):
    calls = []

    class Services:
        async def queue_handoff(self, call, record, queue, priority, reason, language=None, *,
                                callback=None, arrived_at=None):
            calls.append((queue, priority, reason))

        def queue_variable(self, name):
            return None

        async def cancel_callbacks(self, number, queue=None):
            return 0

    call, record = await call_in(flows, press("0"), queues=Services())
    assert calls == [("general", "high", "asked for an agent")]
    assert (record.outcome, record.detail, record.priority, record.reason) == (
        "queued", "general", "high", "asked for an agent")
    assert call.prompts == ["welcome", "main_menu", "connecting_agent"]
    assert not call.hung_up_by_ivr


async def test_queue_without_a_queue_service_plays_the_holding_prompt(flows):
    with structlog.testing.capture_logs() as logs:
        call, record = await call_in(flows, press("0"))
    assert call.prompts[-2:] == ["connecting_agent", "queue_hold"]
    assert (record.outcome, record.detail) == ("queued", "general")
    assert any(e["event"] == "flow.queue" and e["queue"] == "general" for e in logs)


async def test_the_caller_hangs_up_in_the_middle_of_a_prompt(flows):
    call, record = await call_in(flows, press("1"), hang_up(during="payment_methods"))
    assert record.outcome == "caller_hangup"
    assert call.prompts == ["welcome", "main_menu", "payment_methods"]
    assert not call.hung_up_by_ivr


async def test_the_caller_hangs_up_while_the_menu_waits(flows):
    _, record = await call_in(flows, hang_up())
    assert record.outcome == "caller_hangup" and record.nodes == ["welcome", "main"]


async def test_a_flow_that_goes_round_too_long_is_stopped(flows):
    with structlog.testing.capture_logs() as logs:
        call, record = await call_in(flows, *[press("7")] * 10, max_steps=2)
    assert record.outcome == "error" and "more than 2 steps" in record.detail
    assert call.prompts[-1] == "system_error" and call.hung_up_by_ivr
    assert any(e["event"] == "flow.runtime_error" for e in logs)


async def test_an_unexpected_failure_apologises_and_hangs_up(flows):
    class Broken(ScriptedCall):
        async def gather(self, **kw):
            raise RuntimeError("boom")

    call = Broken()
    record = CallRecord(call.id, call.caller_number, call.dialled)
    with structlog.testing.capture_logs() as logs:
        await run_flow(flows, flows.for_number("100"), call, record, catalogue=catalogue())
    assert (record.outcome, record.detail) == ("error", "RuntimeError: boom")
    assert call.prompts[-1] == "system_error" and call.hung_up_by_ivr
    assert any(e["event"] == "flow.crashed" and e["log_level"] == "error" for e in logs)


async def test_cancellation_is_not_swallowed(flows):
    class Stuck(ScriptedCall):
        async def gather(self, **kw):
            await asyncio.Event().wait()

    call = Stuck()
    record = CallRecord(call.id, call.caller_number, call.dialled)
    task = asyncio.ensure_future(run_flow(flows, flows.for_number("100"), call, record, catalogue=catalogue()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert record.outcome is None


async def test_a_variable_without_value_is_an_error_naming_the_node(tmp_path):
    flows = flowset(tmp_path, ("v.yaml", """
        flow: v
        numbers: ["100"]
        entry: first
        nodes:
          first:
            branch:
              - if: "later == '1'"
                goto: bye
            else: setter
          setter:
            set: {later: "'1'"}
            next: bye
          bye:
            hangup:
        """))
    _, record = await call_in(flows)
    assert record.outcome == "error"
    assert record.detail == "flow 'v' node 'first': the variable 'later' has no value yet"


async def test_the_engine_can_supply_facts_and_the_language(tmp_path):
    flows = flowset(tmp_path, ("v.yaml", """
        flow: v
        numbers: ["100"]
        entry: first
        nodes:
          first:
            branch:
              - if: "caller.age != None and caller.age >= 65"
                goto: senior
            else: bye
          senior:
            queue: general
            priority: high
          bye:
            hangup: goodbye
        """))
    _, record = await call_in(flows, variables={"caller.age": 80}, language="vi")
    assert (record.outcome, record.priority, record.language) == ("queued", "high", "vi")
    call, record = await call_in(flows)
    assert record.outcome == "completed" and call.played[-1] == "ko/goodbye"


# -- the sample flow -------------------------------------------------------------------------

@pytest.fixture
def sample():
    return load_flows(FLOWS, catalogue())


async def sample_call(sample, *script, **kw):
    call = ScriptedCall(*script, dialled="15771000")
    record = CallRecord(call.id, call.caller_number, call.dialled)
    await run_flow(sample, sample.for_number("15771000"), call, record, catalogue=catalogue(), **kw)
    return call, record


async def test_sample_premium_check_reads_the_birth_date_back_and_reaches_an_agent(sample):
    call, record = await sample_call(sample, press("1"), press("1", during="welcome"), press("1"),
                                     press("850315#"), press("1"), press("1"))
    assert call.prompts[:5] == ["choose_language"] * 4 + ["welcome"]       # Korean chosen with 1
    assert call.prompts[6:14] == ["ask_birth_date", "you_entered", "digit_8", "digit_5", "digit_0", "digit_3",
                                  "digit_1", "digit_5"]
    assert "******" in record.digits and "850315" not in record.digits
    assert (record.outcome, record.detail, record.reason) == ("queued", "general", "premium enquiry")


async def test_sample_senior_caller_gets_priority(sample):
    # Known to be 70: the bypass sends the caller to the queue before the menu.
    call, record = await sample_call(sample, variables={"caller.age": 70})
    assert (record.outcome, record.priority, record.reason) == ("queued", "elderly", "bypass: elderly")
    assert "main_menu" not in call.prompts


async def test_sample_silence_ends_with_an_agent(sample):
    call, record = await sample_call(sample)
    assert call.prompts[-1] == "queue_hold" and record.outcome == "queued"
    assert record.nodes[-1] == "agent_no_choice"


async def test_sample_english_caller_and_long_term_care_round_trip(sample):
    call, record = await sample_call(sample, press("2"), press("3"), press("9"), press("0"))
    assert record.nodes == ["start", "choose_language", "start_english", "welcome", "main_menu", "long_term_care",
                            "long_term_care/ltc_menu", "long_term_care/back", "main_menu", "agent"]
    assert call.played[4] == "en/welcome"
    assert call.played[-1] == "en/queue_hold"
