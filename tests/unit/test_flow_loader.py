"""Definition errors are found when the flows are loaded, each as file:line: message."""

import pytest

from ivr.errors import FlowError
from ivr.flow.loader import load_flow_file, load_flows, validate_paths
from ivr.flow.model import Gather, Menu, Say
from flow_helpers import FLOWS, PROMPTS, catalogue, problems, write

GOOD = """
flow: tiny
numbers: ["1234"]
entry: menu
nodes:
  menu:
    menu: main_menu
    options:
      1: bye
      0: agent
    on_fail: agent
  agent:
    queue: general
  bye:
    hangup: goodbye
"""


def test_the_sample_flows_validate_with_no_errors_and_no_warnings():
    assert validate_paths([FLOWS], PROMPTS) == []
    flows = load_flows(FLOWS, catalogue())
    assert flows.warnings == ()
    main = flows.for_number("15771000")
    assert main is not None and main.name == "main" and main.language == "ko"
    assert flows.get("long_term_care").numbers == ()
    assert len(flows.version("main")) == 12
    assert sorted(flows.flow_names()) == ["long_term_care", "main", "sign_language", "wellness"]
    assert flows.for_number("15771900").name == "sign_language"
    assert flows.get("wellness").outbound and not main.outbound


def test_a_good_file_becomes_a_frozen_model(tmp_path):
    flow = load_flow_file(write(tmp_path, "tiny.yaml", GOOD), catalogue())
    menu = flow.nodes["menu"]
    assert isinstance(menu, Menu) and dict(menu.options) == {"1": "bye", "0": "agent"}
    assert menu.timeout == 5.0 and menu.retries == 2 and menu.barge_in is True
    with pytest.raises(AttributeError):
        menu.timeout = 9  # type: ignore[misc]


def test_a_wrong_node_name_in_a_menu_option(tmp_path):
    text = GOOD.replace("0: agent", "0: agnt")
    assert problems(tmp_path, "f.yaml", text) == [
        f"{tmp_path}/f.yaml:9: node 'menu': option '0' goes to 'agnt', which does not exist "
        "(did you mean 'agent'?)"]


def test_unknown_keys_get_a_suggestion(tmp_path):
    text = GOOD.replace("on_fail: agent", "on_fail: agent\n    timout: 5")
    assert problems(tmp_path, "f.yaml", text) == [
        f"{tmp_path}/f.yaml:11: node 'menu': unknown key 'timout' for a 'menu' node (did you mean 'timeout'?)"]
    text = GOOD.replace("entry: menu", "entry: menu\nlangauge: en")
    assert problems(tmp_path, "g.yaml", text) == [
        f"{tmp_path}/g.yaml:4: unknown key 'langauge' (did you mean 'language'?); a flow file has flow, "
        "description, numbers, outbound, entry, language, vars, caller, bypass, nodes"]


def test_a_prompt_in_a_fixed_language(tmp_path):
    text = GOOD.replace("hangup: goodbye", "hangup: [goodbye@en, goodbye]")
    assert problems(tmp_path, "ok.yaml", text) == []
    text = GOOD.replace("hangup: goodbye", "hangup: [goodbye@fr, goodbye@EN, goodby@en]")
    assert problems(tmp_path, "f.yaml", text) == [
        f"{tmp_path}/f.yaml:14: node 'bye': 'goodbye@fr': language 'fr' is not in the prompt catalogue "
        "(ko, en, zh, vi)",
        f"{tmp_path}/f.yaml:14: node 'bye': 'goodbye@EN': after '@' comes a language code (like goodbye@en)",
        f"{tmp_path}/f.yaml:14: node 'bye': unknown prompt 'goodby' (did you mean 'goodbye'?); "
        f"add it to {PROMPTS}/catalog.yaml"]


def test_unknown_prompt(tmp_path):
    text = GOOD.replace("hangup: goodbye", "hangup: [goodby]")
    assert problems(tmp_path, "f.yaml", text) == [
        f"{tmp_path}/f.yaml:14: node 'bye': unknown prompt 'goodby' (did you mean 'goodbye'?); "
        f"add it to {PROMPTS}/catalog.yaml"]


def test_wrong_types(tmp_path):
    text = GOOD.replace("on_fail: agent", "on_fail: agent\n    timeout: soon\n    retries: many\n"
                        "    barge_in: sometimes")
    assert problems(tmp_path, "f.yaml", text) == [
        f"{tmp_path}/f.yaml:11: node 'menu': 'timeout' must be a time between 0 and 120 seconds, "
        "like 5 or \"5s\" or \"1500ms\", not 'soon'",
        f"{tmp_path}/f.yaml:12: node 'menu': 'retries' must be a whole number from 0 to 9, not 'many'",
        f"{tmp_path}/f.yaml:13: node 'menu': 'barge_in' must be true or false, not 'sometimes'",
    ]


def test_a_node_without_next(tmp_path):
    text = GOOD.replace("  bye:\n    hangup: goodbye", "  bye:\n    play: goodbye")
    assert problems(tmp_path, "f.yaml", text) == [
        f"{tmp_path}/f.yaml:13: node 'bye': has no 'next': say which node comes after it"]


def test_a_node_with_no_type_or_two(tmp_path):
    text = GOOD.replace("hangup: goodbye", "hangp: goodbye")
    assert problems(tmp_path, "f.yaml", text) == [
        f"{tmp_path}/f.yaml:13: node 'bye': has no type: give it one of play, menu, gather, say, set, "
        "branch, goto, subflow, return, queue, transfer, hangup, cancel_callback; "
        "did you mean 'hangup' instead of 'hangp'?"]
    text = GOOD.replace("hangup: goodbye", "hangup: goodbye\n    play: goodbye")
    assert problems(tmp_path, "g.yaml", text) == [
        f"{tmp_path}/g.yaml:15: node 'bye': has two types, 'hangup' and 'play'; a node does one thing: "
        "split it in two and join them with 'next'"]


def test_bad_expressions_are_definition_errors_with_their_line(tmp_path):
    text = GOOD.replace("  agent:\n", "  check:\n    branch:\n      - if: \"x.__class__\"\n        goto: bye\n"
                        "      - if: \"brith > 1\"\n        goto: bye\n    else: bye\n  agent:\n")
    text = text.replace("1: bye", "1: check")
    assert problems(tmp_path, "f.yaml", text) == [
        f"{tmp_path}/f.yaml:13: node 'check': condition 1: `x.__class__`: not allowed in a flow expression: "
        "the name 'x.__class__' (names may not start with '_')",
        f"{tmp_path}/f.yaml:15: node 'check': condition 2: `brith > 1` uses the variable 'brith', which is "
        "never set; give it a default under 'vars:'",
    ]


def test_an_unreachable_node_is_a_warning(tmp_path):
    text = GOOD + "  spare:\n    hangup:\n"
    assert problems(tmp_path, "f.yaml", text) == [
        f"{tmp_path}/f.yaml:15: warning: node 'spare': is never reached from the entry node 'menu'"]
    flows = load_flows(tmp_path, catalogue())       # warnings do not stop loading
    assert [str(w) for w in flows.warnings] == [
        f"{tmp_path}/f.yaml:15: warning: node 'spare': is never reached from the entry node 'menu'"]


LOOP = """
flow: loop
numbers: ["1"]
entry: start
nodes:
  start:
    play: welcome
    next: menu
  menu:
    menu: main_menu
    options:
      1: start
    on_fail: start
"""


def test_a_loop_with_no_way_out(tmp_path):
    assert problems(tmp_path, "f.yaml", LOOP) == [
        f"{tmp_path}/f.yaml:5: node 'start': the call can never leave the loop 'start' → 'menu' → 'start': "
        "none of these nodes leads to a hangup, queue, transfer or return"]
    # A menu without on_fail ends the call when its tries run out: that is a way out.
    assert problems(tmp_path, "g.yaml", LOOP.replace("    on_fail: start\n", "")) == []


SPIN = """
flow: spin
numbers: ["1"]
vars:
  n: 0
entry: count
nodes:
  count:
    set: {n: "n + 1"}
    next: check
  check:
    branch:
      - if: "n > 3"
        goto: bye
    else: count
  bye:
    hangup: goodbye
"""


def test_a_loop_that_neither_plays_nor_waits(tmp_path):
    assert problems(tmp_path, "f.yaml", SPIN) == [
        f"{tmp_path}/f.yaml:7: node 'count': the loop 'count' → 'check' → 'count' neither plays anything "
        "nor waits for the caller, so it would spin forever; put a menu, gather or play in it"]


def test_flows_that_clash_or_call_a_missing_subflow(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD.replace("flow: tiny", "flow: other").replace(
        "  agent:\n    queue: general", "  agent:\n    subflow: helpr\n    next: bye"))
    write(tmp_path, "helper.yaml", "flow: helper\nentry: back\nnodes:\n  back:\n    return:\n")
    assert [str(p) for p in validate_paths([tmp_path], PROMPTS)] == [
        f"{tmp_path}/b.yaml:2: number '1234' is already answered by flow 'tiny' ({tmp_path}/a.yaml:2)",
        f"{tmp_path}/b.yaml:12: node 'agent': subflow 'helpr' does not exist (did you mean 'helper'?)",
        f"{tmp_path}/helper.yaml:1: warning: flow 'helper' answers no number and no flow calls it as a subflow",
    ]
    with pytest.raises(FlowError) as err:
        load_flows(tmp_path, catalogue())
    assert len(err.value.problems) == 2             # the errors; the warning is not one


def test_an_outbound_flow_answers_no_number_and_needs_no_caller(tmp_path):
    outbound = "flow: ring\noutbound: true\nentry: bye\nnodes:\n  bye:\n    hangup: goodbye\n"
    assert problems(tmp_path, "ring.yaml", outbound) == []          # no "answers no number" warning
    assert load_flow_file(tmp_path / "ring.yaml", catalogue()).outbound
    assert problems(tmp_path, "both.yaml", outbound.replace("flow: ring", 'flow: both\nnumbers: ["1"]')) == [
        f"{tmp_path}/both.yaml:2: an outbound flow answers no number: the engine dials out with it; "
        "remove 'numbers' (or 'outbound')"]
    assert problems(tmp_path, "yes.yaml", outbound.replace("flow: ring", "flow: yes").replace("true", "yes")) == [
        f"{tmp_path}/yes.yaml:1: warning: flow 'yes' answers no number and no flow calls it as a subflow",
        f"{tmp_path}/yes.yaml:2: 'outbound' must be true or false, not text"]


def test_all_problems_of_a_file_are_reported_at_once(tmp_path):
    text = """
    flow: many
    numbers: [1234]
    entry: strat
    nodes:
      start:
        play: [welcom]
        next: ask
      ask:
        gather: ask_birth_date
        into: birth
        min: 7
        max: 3
        pattern: "[0-9"
        next: said
      said:
        say: digit
        value: birth
        next: nowhere
    """
    found = problems(tmp_path, "f.yaml", text)
    assert found == [
        f"{tmp_path}/f.yaml:3: entry 'strat' is not a node (did you mean 'start'?)",
        f"{tmp_path}/f.yaml:6: node 'start': unknown prompt 'welcom' (did you mean 'welcome'?); "
        f"add it to {PROMPTS}/catalog.yaml",
        f"{tmp_path}/f.yaml:11: node 'ask': 'min' (7) is more than 'max' (3)",
        f"{tmp_path}/f.yaml:13: node 'ask': 'pattern' is not a valid regular expression: "
        "unterminated character set at position 0",
        f"{tmp_path}/f.yaml:16: node 'said': 'say' must be one of digits, number, count, ordinal, amount, date, "
        "time, not 'digit' (did you mean 'digits'?)",
        f"{tmp_path}/f.yaml:18: node 'said': 'next' goes to 'nowhere', which does not exist",
    ]


def test_gather_and_say_read_into_their_models(tmp_path):
    text = """
    flow: g
    numbers: ["9"]
    entry: ask
    nodes:
      ask:
        gather: ask_birth_date
        into: birth
        digits: 6
        timeout: 1500ms
        valid: "int(birth[2:4]) <= 12"
        on_fail: bye
        next: said
      said:
        say: date
        value: birth
        before: you_entered
        next: bye
      bye:
        hangup:
    """
    flow = load_flow_file(write(tmp_path, "g.yaml", text), catalogue())
    ask, said = flow.nodes["ask"], flow.nodes["said"]
    assert isinstance(ask, Gather) and (ask.min_digits, ask.max_digits, ask.timeout) == (6, 6, 1.5)
    assert ask.terminator == "#" and ask.valid is not None and ask.valid.names == {"birth"}
    assert isinstance(said, Say) and said.kind == "date" and said.before == ("you_entered",)


def test_a_missing_catalogue_is_reported_by_validate(tmp_path):
    found = validate_paths([FLOWS], tmp_path / "nope")
    assert len(found) == 1 and "cannot read the prompt catalogue" in str(found[0])


def _sample_copy(tmp_path, edit):
    """The sample flows copied to tmp_path/flows, main.yaml's bytes passed through ``edit``."""
    folder = tmp_path / "flows"
    folder.mkdir()
    for f in FLOWS.glob("*.yaml"):
        (folder / f.name).write_bytes(edit(f.read_bytes()) if f.name == "main.yaml" else f.read_bytes())
    return folder


@pytest.mark.parametrize("bad", [b"\x00", b"\x1b", b"\x7f", b"\x0c"])
def test_a_control_character_saved_into_a_flow_is_a_flow_error_at_its_line(tmp_path, bad):
    def edit(data):
        lines = data.split(b"\n")
        lines[9] = lines[9][:4] + bad + lines[9][4:]
        return b"\n".join(lines)

    folder = _sample_copy(tmp_path, edit)
    with pytest.raises(FlowError) as err:
        load_flows(folder, catalogue())
    (problem,) = err.value.problems
    assert str(problem).startswith(f"{folder}/main.yaml:10: column 5: the control character U+00")


def test_deeply_nested_brackets_in_a_flow_are_a_flow_error(tmp_path):
    folder = _sample_copy(tmp_path, lambda data: data + b"\nvars: {deep: " + b"[" * 500 + b"]" * 500 + b"}\n")
    with pytest.raises(FlowError) as err:
        load_flows(folder, catalogue())
    (problem,) = err.value.problems
    assert problem.file == f"{folder}/main.yaml" and problem.line > 1
    assert "nested more than 64 levels deep" in problem.message


def test_bytes_that_are_not_utf8_are_reported_at_their_line(tmp_path):
    def edit(data):
        lines = data.split(b"\n")
        lines[11] = lines[11][:6] + b"\xff" + lines[11][6:]
        return b"\n".join(lines)

    folder = _sample_copy(tmp_path, edit)
    with pytest.raises(FlowError) as err:
        load_flows(folder, catalogue())
    assert [str(p) for p in err.value.problems] == [
        f"{folder}/main.yaml:12: column 7: the file is not UTF-8 text (byte 0xff: invalid start byte); "
        "save it as UTF-8"]


def test_a_flow_path_that_is_missing_or_not_a_file_is_a_flow_error(tmp_path):
    (tmp_path / "pipe.yaml").unlink(missing_ok=True)
    import os

    os.mkfifo(tmp_path / "pipe.yaml")                 # reading it would never end
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    for name, says in (("pipe.yaml", "it is not a regular file"), ("gone.yaml", "No such file or directory")):
        with pytest.raises(FlowError) as err:
            load_flows([tmp_path / name], catalogue())
        assert [str(p) for p in err.value.problems] == [f"{tmp_path}/{name}:1: cannot read the flow file: {says}"]
