"""The flow YAML reader keeps what the author wrote, and where."""

import pytest

from ivr.errors import FlowError
from ivr.flow.yamlsafe import YList, YMap, load_yaml


def test_words_that_other_yaml_readers_turn_into_booleans_stay_text():
    doc = load_yaml("a: no\nb: yes\nc: on\nd: off\ne: y\nf: n\ng: true\nh: false\n", "f.yaml")
    assert doc == {"a": "no", "b": "yes", "c": "on", "d": "off", "e": "y", "f": "n", "g": True, "h": False}


def test_menu_keys_are_text_exactly_as_written():
    doc = load_yaml('options:\n  1: a\n  0: b\n  "#": c\n  "*": d\n  no: e\n  01: f\n', "f.yaml")
    assert list(doc["options"]) == ["1", "0", "#", "*", "no", "01"]


def test_numbers_with_a_leading_zero_and_dates_stay_text():
    doc = load_yaml("phone: 0212345678\nday: 2024-03-05\ncount: 3\nwait: 2.5\nneg: -4\nnothing:\n", "f.yaml")
    assert doc == {"phone": "0212345678", "day": "2024-03-05", "count": 3, "wait": 2.5, "neg": -4,
                   "nothing": None}


def test_every_key_value_and_item_knows_its_line():
    text = "flow: main\n\nnodes:\n  start:\n    play: [a,\n      b]\n    next: end\n"
    doc = load_yaml(text, "f.yaml")
    assert isinstance(doc, YMap) and doc.key_line("flow") == 1 and doc.key_line("nodes") == 3
    start = doc["nodes"]["start"]
    assert doc["nodes"].key_line("start") == 4
    assert start.key_line("play") == 5 and start.value_line("next") == 7
    assert isinstance(start["play"], YList) and start["play"].item_line(1) == 6


def test_a_key_written_twice_is_an_error_with_both_lines():
    with pytest.raises(FlowError) as err:
        load_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert str(err.value.problems[0]) == "f.yaml:3: key 'a' appears twice in this mapping (first on line 1)"


def test_syntax_errors_point_at_their_line():
    with pytest.raises(FlowError) as err:
        load_yaml("a: 1\nb: [1, 2\nc: 3\n", "f.yaml")
    problem = err.value.problems[0]
    assert problem.file == "f.yaml" and problem.line >= 2 and "YAML syntax" in problem.message


def test_python_tags_are_refused():
    with pytest.raises(FlowError) as err:
        load_yaml("a: !!python/object/apply:os.system [echo]\n", "f.yaml")
    assert "unsupported YAML tag" in str(err.value)


def test_an_alias_that_contains_itself_is_refused():
    with pytest.raises(FlowError) as err:
        load_yaml("a: &x [1, *x]\n", "f.yaml")
    assert "refers to the list or mapping that contains it" in str(err.value)


def test_aliases_cannot_blow_up_into_a_huge_document():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    with pytest.raises(FlowError) as err:
        load_yaml("\n".join(lines) + "\n", "f.yaml")
    assert "expands to more than" in str(err.value)


@pytest.mark.parametrize("char, name", [("\x00", "U+0000 (NUL)"), ("\x1b", "U+001B (ESC)"),
                                        ("\x7f", "U+007F (DEL)"), ("\x0c", "U+000C (form-feed)"),
                                        ("\ufffe", "U+FFFE")])
def test_a_control_character_is_an_error_at_its_line_and_column(char, name):
    with pytest.raises(FlowError) as err:
        load_yaml(f"flow: main\nentry: st{char}art\n", "f.yaml")
    assert [str(p) for p in err.value.problems] == [
        f"f.yaml:2: column 10: the control character {name} is not allowed in YAML; delete it "
        "(tab and line breaks are the only control characters a flow file may hold)"]


def test_hundreds_of_nested_brackets_are_refused_before_the_recursion_limit():
    with pytest.raises(FlowError) as err:
        load_yaml("flow: main\nnodes: " + "[" * 500 + "]" * 500 + "\n", "f.yaml")
    (problem,) = err.value.problems
    assert str(problem).startswith("f.yaml:2: lists and mappings are nested more than 64 levels deep")


def test_deep_indentation_is_refused_like_deep_brackets():
    text = "".join(f"{' ' * i}k{i}:\n" for i in range(300)) + " " * 300 + "x\n"
    with pytest.raises(FlowError) as err:
        load_yaml(text, "f.yaml")
    assert "nested more than 64 levels deep" in str(err.value)


def test_aliases_cannot_nest_past_the_depth_limit_either():
    lines = ["a0: &a0 " + "[" * 40 + "x" + "]" * 40]
    lines += [f"a{i}: &a{i} " + "[" * 40 + f"*a{i - 1}" + "]" * 40 for i in range(1, 4)]
    with pytest.raises(FlowError) as err:
        load_yaml("\n".join(lines) + "\n", "f.yaml")
    assert "nested more than 64 levels deep" in str(err.value)


def test_nesting_a_flow_needs_is_read():
    doc = load_yaml("a: " + "[" * 60 + "1" + "]" * 60 + "\n", "f.yaml")
    doc = doc["a"]
    for _ in range(60):
        doc = doc[0]
    assert doc == 1


def test_bytes_that_are_not_utf8_are_an_error_at_their_line():
    from ivr.flow.yamlsafe import decode_text

    with pytest.raises(FlowError) as err:
        decode_text("flow: 안녕\n".encode() + b"entry: b\xffad\n", "f.yaml")
    assert [str(p) for p in err.value.problems] == [
        "f.yaml:2: column 9: the file is not UTF-8 text (byte 0xff: invalid start byte); save it as UTF-8"]
