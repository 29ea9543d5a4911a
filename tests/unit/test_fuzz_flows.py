"""Fuzzing the flow files and the prompt catalogue: whatever bytes an author saves, the loader
answers with flows or with a ``FlowError`` whose every problem reads ``file:line: message`` —
never another exception, never a hang.  ``ivr validate`` exits 0 or 1, never with a traceback.

A bounded run by default (the ``ci`` profile of ``tests/conftest.py``); ``IVR_FUZZ=long`` for
a long one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.errors import FlowError
from ivr.flow.loader import load_flows
from ivr.flow.yamlsafe import MAX_DEPTH, load_yaml
from ivr.prompts import Catalogue, load_catalogue
from flow_helpers import FLOWS, PROMPTS

pytestmark = pytest.mark.fuzz

SAMPLES = {f.name: f.read_bytes() for f in sorted(FLOWS.glob("*.yaml"))}
CATALOGUE_BYTES = (PROMPTS / "catalog.yaml").read_bytes()
CATALOGUE = load_catalogue(PROMPTS)

# Bytes authors and editors really produce by mistake, then any bytes at all.
NASTY = [b"\x00", b"\x1b", b"\x7f", b"\x0c", b"\x0b", b"\x08", b"\x85", b"\xff", b"\xfe", b"\xc3",
         b"\xe2\x80", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\xef\xbf\xbe", b"\xe2\x80\xa8", b"\t", b"\r", b"\r\n",
         b"\n", b"[", b"]", b"{", b"}", b":", b": ", b"- ", b",", b"&a ", b"*a", b"!!str ", b"!x ", b"? ", b"|",
         b">", b"'", b'"', b"#", b"%YAML 1.1\n", b"---\n", b"...\n", b"@", b"`", b"0", b"-1", b".inf", b"~",
         b"  ", "가".encode()]
WORDS = [b"next", b"goto", b"options", b"menu", b"play", b"hangup", b"queue", b"entry", b"flow", b"nodes",
         b"timeout", b"retries", b"if", b"else", b"set", b"say", b"value", b"true", b"null", b"main_menu",
         b"caller.age", b"lang", b"1", b"0", b"#", b"*", b"5s", b"7d", b"-3", b"99999999999999999999"]
FRAGMENT = st.one_of(st.sampled_from(NASTY), st.sampled_from(WORDS),
                     st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=6)
                     .map(str.encode),
                     st.binary(min_size=1, max_size=6))
EDIT = st.tuples(st.sampled_from(["insert", "replace", "delete"]), st.floats(0, 1), FRAGMENT,
                 st.integers(1, 8))


def mutate(data: bytes, edits: list[tuple[str, float, bytes, int]]) -> bytes:
    for op, where, fragment, span in edits:
        at = int(where * len(data))
        if op == "insert":
            data = data[:at] + fragment + data[at:]
        elif op == "replace":
            data = data[:at] + fragment + data[at + len(fragment):]
        else:
            data = data[:at] + data[at + span:]
    return data


def line_count(data: bytes) -> int:
    """Lines as YAML counts them (\\r, \\n, \\r\\n, NEL, LS, PS), or as a byte count of \\n."""
    text = data.decode("utf-8", "replace")
    return max(len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", text)), data.count(b"\n")) + 1


def assert_located(exc: FlowError, files: dict[str, bytes]) -> None:
    """Every problem names one of ``files`` and a line inside it, and prints as file:line: message."""
    assert exc.problems, "a FlowError without problems"
    for problem in exc.problems:
        assert problem.file in files, f"{problem!r} names a file that was not read"
        assert 1 <= problem.line <= line_count(files[problem.file]), f"{problem!r}: line out of the file"
        assert problem.message.strip(), f"{problem!r} says nothing"
        assert str(problem).startswith(f"{problem.file}:{problem.line}: ")
        assert "\n" not in str(problem), f"{problem!r} spans lines"


def load_folder(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        Path(name).write_bytes(data)
    try:
        load_flows(folder, CATALOGUE)
    except FlowError as exc:
        assert_located(exc, files)


@given(sample=st.sampled_from(sorted(SAMPLES)), edits=st.lists(EDIT, min_size=1, max_size=5))
def test_a_mutated_sample_flow_loads_or_is_a_flow_error_at_a_line_of_the_file(sample, edits):
    with tempfile.TemporaryDirectory(prefix="ivr-fuzz-") as tmp:
        folder = Path(tmp)
        files = {str(folder / name): mutate(data, edits) if name == sample else data
                 for name, data in SAMPLES.items()}
        load_folder(folder, files)


# -- nesting ---------------------------------------------------------------------------------

LEAF = st.sampled_from(["x", "1", "''", "\"a\"", "~", "*a", "&a x", "[]", "{}", "no", "-", "?", ":"])


def _flow_map(items: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"


NESTED = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(st.sampled_from(["a", "b", "1", "no", "'k'"]), inner), max_size=4).map(_flow_map)),
    max_leaves=40)
BRACKETS = st.tuples(st.integers(0, 16 * MAX_DEPTH), st.integers(0, 16 * MAX_DEPTH),
                     st.sampled_from(["[", "{", "{a: ", "[{a: ", "- ", "  "]), st.sampled_from(["]", "}", ""])
                     ).map(lambda t: t[2] * t[0] + "x" + t[3] * t[1])


def _indented(depth: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + "  " * depth + "x\n"


@given(body=st.one_of(NESTED, BRACKETS, st.integers(0, 16 * MAX_DEPTH).map(_indented)),
       where=st.sampled_from(["top", "vars", "node"]))
def test_nested_lists_and_mappings_load_or_are_a_flow_error_never_a_recursion_error(body, where):
    text = {"top": body,
            "vars": f"flow: n\nnumbers: ['9']\nentry: s\nvars:\n  v: {body}\nnodes:\n  s:\n    hangup:\n",
            "node": f"flow: n\nnumbers: ['9']\nentry: s\nnodes:\n  s:\n    hangup: {body}\n"}[where]
    try:
        load_yaml(text, "f.yaml")
    except FlowError as exc:
        assert_located(exc, {"f.yaml": text.encode()})
    with tempfile.TemporaryDirectory(prefix="ivr-fuzz-") as tmp:
        load_folder(Path(tmp), {f"{tmp}/n.yaml": text.encode()})


# -- the prompt catalogue --------------------------------------------------------------------

@given(edits=st.lists(EDIT, min_size=1, max_size=5))
def test_a_mutated_catalogue_loads_or_is_a_flow_error_at_a_line_of_the_file(edits):
    data = mutate(CATALOGUE_BYTES, edits)
    with tempfile.TemporaryDirectory(prefix="ivr-fuzz-") as tmp:
        path = Path(tmp) / "catalog.yaml"
        path.write_bytes(data)
        try:
            catalogue = load_catalogue(Path(tmp))
        except FlowError as exc:
            assert_located(exc, {str(path): data})
        else:
            assert isinstance(catalogue, Catalogue) and catalogue.languages


# -- ivr validate, as a user runs it ---------------------------------------------------------

PROBLEM_LINE = re.compile(r"^[^:\n]+:[1-9][0-9]*: \S")


@settings(max_examples=min(settings().max_examples, 6))      # each example starts a Python process
@given(sample=st.sampled_from(sorted(SAMPLES)), edits=st.lists(EDIT, min_size=1, max_size=3))
def test_ivr_validate_exits_0_or_1_with_file_line_messages_and_no_traceback(sample, edits):
    with tempfile.TemporaryDirectory(prefix="ivr-fuzz-") as tmp:
        folder = Path(tmp) / "flows"
        folder.mkdir()
        for name, data in SAMPLES.items():
            (folder / name).write_bytes(mutate(data, edits) if name == sample else data)
        done = subprocess.run([sys.executable, "-m", "ivr.cli", "validate", "--prompts", str(PROMPTS),
                               str(folder)], check=False, capture_output=True, timeout=60, cwd=tmp,
                              env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode in (0, 1), f"exit {done.returncode}: {err}"
    assert "Traceback" not in err
    lines = err.splitlines()
    assert all(PROBLEM_LINE.match(line) for line in lines), err
    assert (done.returncode == 1) == any(": warning: " not in line for line in lines), err
