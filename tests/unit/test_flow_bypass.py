"""Bypass rules: elderly and repeat callers skip the menu and go ahead of the line."""

from __future__ import annotations

import pytest

from ivr.call import CallRecord
from ivr.flow.runner import run_flow
from ivr.testing.scripted_call import ScriptedCall, press
from flow_helpers import FLOWS, catalogue, flowset, problems
from ivr.flow.loader import load_flows

FLOW = """
flow: front
numbers: ["100"]
entry: menu
caller:
  repeat: {calls: 4, within: 48h, count: unserved}
bypass:
  - if: "caller.age != None and caller.age >= 65"
    queue: general
    priority: elderly
    reason: elderly
    prompt: priority_agent
  - if: "caller.is_repeat"
    queue: general
    priority: repeat
    reason: repeat
nodes:
  menu:
    menu: main_menu
    options: {1: bye}
    on_fail: bye
  bye:
    hangup: goodbye
"""


@pytest.fixture
def flows(tmp_path):
    return flowset(tmp_path, ("front.yaml", FLOW))


async def call_in(flows, facts, *script):
    call = ScriptedCall(*script, dialled="100")
    record = CallRecord(call.id, call.caller_number, call.dialled)
    await run_flow(flows, flows.for_number("100"), call, record, catalogue=catalogue(), variables=facts)
    return call, record


def test_the_repeat_policy_is_read_from_the_flow(flows):
    policy = flows.get("front").repeat
    assert (policy.calls, policy.window, policy.unserved_only) == (4, 48 * 3600, True)


def test_the_sample_flow_declares_elderly_then_repeat_bypass():
    flow = load_flows(FLOWS, catalogue()).get("main")
    assert [(r.reason, r.priority, r.queue) for r in flow.bypass] == [
        ("elderly", "elderly", "general"), ("repeat", "repeat", "general")]
    assert (flow.repeat.calls, flow.repeat.window) == (3, 7 * 86400)


async def test_an_elderly_caller_reaches_the_queue_without_hearing_the_menu(flows):
    call, rec = await call_in(flows, {"caller.age": 70, "caller.is_repeat": False})
    assert call.prompts == ["priority_agent", "queue_hold"]
    assert "main_menu" not in call.prompts
    assert rec.nodes == ["bypass"]
    assert (rec.outcome, rec.detail, rec.priority, rec.reason) == ("queued", "general", "elderly", "bypass: elderly")


async def test_a_repeat_caller_is_bypassed_with_the_repeat_reason(flows):
    call, rec = await call_in(flows, {"caller.age": 40, "caller.is_repeat": True})
    assert rec.reason == "bypass: repeat" and rec.priority == "repeat"
    assert "main_menu" not in call.prompts


async def test_the_first_rule_that_holds_wins(flows):
    _, rec = await call_in(flows, {"caller.age": 80, "caller.is_repeat": True})
    assert rec.reason == "bypass: elderly"


async def test_a_forty_year_old_hears_the_menu(flows):
    call, rec = await call_in(flows, {"caller.age": 40, "caller.is_repeat": False}, press("1"))
    assert call.prompts[0] == "main_menu"
    assert rec.nodes == ["menu", "bye"] and rec.reason is None


async def test_an_unknown_caller_hears_the_menu(flows):
    # The engine gives no facts (anonymous caller, registry down): no rule holds.
    call, rec = await call_in(flows, {}, press("1"))
    assert call.prompts[0] == "main_menu" and rec.outcome == "completed"


def test_a_misspelt_caller_fact_is_an_error_with_a_suggestion(tmp_path):
    out = problems(tmp_path, "f.yaml", FLOW.replace("caller.is_repeat\"", "caller.is_repaet\""))
    assert any(":12:" in p and "caller.is_repaet" in p and "caller.is_repeat" in p for p in out), out


def test_bypass_rules_are_checked_at_load(tmp_path):
    bad = FLOW.replace("    reason: repeat\n", "").replace("within: 48h", "within: soon").replace(
        "prompt: priority_agent", "prompt: no_such_prompt")
    out = problems(tmp_path, "f.yaml", bad)
    assert any(":5:" in p and "'within'" in p for p in out), out
    assert any("no_such_prompt" in p for p in out), out
    assert any("bypass rule 2 needs 'reason'" in p for p in out), out


def test_repeat_calls_must_be_a_sensible_count(tmp_path):
    out = problems(tmp_path, "f.yaml", FLOW.replace("calls: 4", "calls: 1"))
    assert any("'calls' must be a whole number from 2 to 100" in p for p in out), out
