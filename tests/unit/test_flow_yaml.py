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
