"""The expression language: what it computes, and what it refuses at load."""

import pytest

from ivr.flow.expr import ExprError, ExprRuntimeError, compile_expr


def value(source, **variables):
    env = {k.replace("__", "."): v for k, v in variables.items()}
    return compile_expr(source).evaluate(env)


@pytest.mark.parametrize("source, expected", [
    ("1 + 2 * 3", 7), ("7 // 2", 3), ("7 % 2", 1), ("-3 + 1", -2), ("'ab' + 'c'", "abc"),
    ("1 <= 5 <= 12", True), ("1 <= 13 <= 12", False), ("'3' in ['1', '2']", False),
    ("not (1 == 2) and 'x' or 'y'", "x"), ("len('abc')", 3), ("int('0315')", 315), ("str(12)", "12"),
    ("startswith('01012345678', '010')", True), ("endswith('a.wav', '.wav')", True),
    ("'yes' if 2 > 1 else 'no'", "yes"), ("min(3, 1)", 1), ("abs(-2)", 2), ("None == None", True),
])
def test_expressions_compute_what_they_say(source, expected):
    assert value(source) == expected


def test_variables_dotted_names_and_slices():
    assert value("int(birth[2:4]) <= 12", birth="850315") is True
    assert value("caller.number[0:3] == '010'", caller__number="01012345678") is True


def test_facts_the_engine_did_not_supply_read_as_none():
    assert value("caller.age == None") is True
    assert value("call.repeat == None") is True


def test_a_flow_variable_without_value_is_a_runtime_error():
    with pytest.raises(ExprRuntimeError, match="the variable 'tries' has no value yet"):
        value("tries + 1")


def test_runtime_failures_are_runtime_errors():
    for source in ("int('ab')", "1 / 0", "'a' * 3", "len(5)", "'a' + 1"):
        with pytest.raises(ExprRuntimeError):
            value(source)


@pytest.mark.parametrize("source, what", [
    ("x.__class__", "names may not start with '_'"),
    ("__import__('os')", "calling '__import__'"),
    ("open('/etc/passwd')", "calling 'open'"),
    ("'abc'.upper()", "calling ''abc'.upper'"),
    ("birth.startswith('1')", "calling 'birth.startswith'"),
    ("lambda: 1", "lambda"),
    ("[i for i in 'abc']", "comprehensions"),
    ("(i for i in 'abc')", "generator expressions"),
    ("{'a': 1}", "dict literals"),
    ("f'{x}'", "f-strings"),
    ("(x := 1)", "':=' assignments"),
    ("2 ** 10", "'Pow'"),
    ("a is None", "'Is'"),
    ("len(x=1)", "keyword arguments"),
    ("x[::2]", "a slice step"),
    ("len", "'len' without calling it"),
    ("b'x'", "the literal b'x'"),
])
def test_forbidden_constructs_are_refused_when_the_flow_is_loaded(source, what):
    with pytest.raises(ExprError) as err:
        compile_expr(source)
    assert what in str(err.value)
    assert "not allowed in a flow expression" in str(err.value)


def test_syntax_errors_and_unknown_variables_are_refused_at_load():
    with pytest.raises(ExprError, match="is not a valid expression"):
        compile_expr("1 +")
    known = {"birth", "tries"}.__contains__
    with pytest.raises(ExprError, match=r"uses the variable 'brith', which is never set \(did you mean 'birth'\?\)"):
        compile_expr("brith == '1'", known, lambda: ["birth", "tries"])
    assert compile_expr("birth == '1'", known).names == {"birth"}


def test_numbers_cannot_grow_without_bound():
    big = 2**200
    with pytest.raises(ExprRuntimeError, match="too large"):
        value("x * x", x=big)
