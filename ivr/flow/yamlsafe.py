"""Safe YAML for flow files and the prompt catalogue: plain values that remember their lines.

* Only ``true``/``false`` are booleans.  ``yes``, ``no``, ``on``, ``off``, ``y``, ``n`` stay
  strings, so a menu option or a prompt named ``no`` means what it says.
* Integers are decimal without a leading zero (``5``, ``-3``); ``0212345678`` and ``010`` stay
  strings (phone numbers), and there are no dates, octals or sexagesimals.
* Mapping keys are always strings, exactly as written: ``1:``, ``0:``, ``"#":`` give ``"1"``,
  ``"0"``, ``"#"``.
* Duplicate keys are errors (plain YAML silently keeps the last one).
* Every mapping and list remembers the line (1-based) of itself, each key and each value.

Values are built from the composed node tree here; PyYAML's constructors (and its tags) are
never used, so nothing but str/int/float/bool/None, ``YMap`` and ``YList`` comes out.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ivr.errors import FlowError, FlowProblem

__all__ = ["YMap", "YList", "load_yaml", "type_name"]


class YMap(dict):
    """A mapping read from YAML.  ``line`` is where it starts; ``key_line``/``value_line``."""

    __slots__ = ("line", "key_lines", "value_lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}
        self.value_lines: dict[str, int] = {}

    def key_line(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

    def value_line(self, key: str) -> int:
        return self.value_lines.get(key, self.line)


class YList(list):
    """A list read from YAML.  ``line`` is where it starts; ``item_line(i)`` for each item."""

    __slots__ = ("line", "item_lines")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []

    def item_line(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:0|[-+]?[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")

_STR, _INT_TAG, _FLOAT_TAG, _BOOL_TAG, _NULL_TAG = (
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null")
_SEQ_TAG, _MAP_TAG = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"


class FlowYamlLoader(yaml.SafeLoader):
    """SafeLoader whose implicit types are only: true/false, decimal int, float, null."""

    yaml_implicit_resolvers: dict = {}


FlowYamlLoader.add_implicit_resolver(_BOOL_TAG, _BOOL, list("tTfF"))
FlowYamlLoader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
FlowYamlLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+.0123456789"))
FlowYamlLoader.add_implicit_resolver(_NULL_TAG, _NULL, ["~", "n", "N", ""])


def type_name(value: Any) -> str:
    """How a value's type is called in messages to a flow author."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def load_yaml(text: str, file: str) -> Any:
    """Parse one YAML document into plain values (``YMap``/``YList`` for containers).

    Raises ``FlowError`` with every problem found (syntax, duplicate keys, unsupported tags).
    An empty document gives ``None``.
    """
    loader = FlowYamlLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        message = exc.problem or str(exc)
        if exc.context:
            message = f"{exc.context}: {message}"
        raise FlowError([FlowProblem(file, line, f"YAML syntax: {message}")]) from exc
    except yaml.YAMLError as exc:
        raise FlowError([FlowProblem(file, 1, f"YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    if root is None:
        return None
    problems: list[FlowProblem] = []
    try:
        value = _build(root, file, problems, _Budget())
    except _TooBig as exc:
        raise FlowError([FlowProblem(file, exc.line, str(exc))]) from None
    if problems:
        raise FlowError(problems)
    return value


MAX_VALUES = 200_000   # aliases can multiply a small file into a huge tree


class _TooBig(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class _Budget:
    __slots__ = ("left", "open")

    def __init__(self) -> None:
        self.left = MAX_VALUES
        self.open: set[int] = set()


def _build(node: Node, file: str, problems: list[FlowProblem], budget: _Budget) -> Any:
    line = node.start_mark.line + 1
    budget.left -= 1
    if budget.left < 0:
        raise _TooBig(f"the document expands to more than {MAX_VALUES} values (aliases?)", line)
    if isinstance(node, ScalarNode):
        return _scalar(node, file, problems)
    if id(node) in budget.open:
        raise _TooBig("an alias refers to the list or mapping that contains it", line)
    budget.open.add(id(node))
    try:
        return _container(node, file, problems, budget)
    finally:
        budget.open.discard(id(node))


def _container(node: Node, file: str, problems: list[FlowProblem], budget: _Budget) -> Any:
    line = node.start_mark.line + 1
    if node.tag not in (_SEQ_TAG, _MAP_TAG):
        problems.append(FlowProblem(file, line, f"unsupported YAML tag {node.tag!r}; write plain values"))
    if isinstance(node, SequenceNode):
        seq = YList(line)
        for item in node.value:
            seq.append(_build(item, file, problems, budget))
            seq.item_lines.append(item.start_mark.line + 1)
        return seq
    if isinstance(node, MappingNode):
        mapping = YMap(line)
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                problems.append(FlowProblem(file, key_line, "a key must be plain text, not a list or mapping"))
                continue
            key = key_node.value   # exactly as written: 1 → "1", no → "no"
            if key in mapping:
                problems.append(FlowProblem(
                    file, key_line, f"key '{key}' appears twice in this mapping "
                    f"(first on line {mapping.key_lines[key]})"))
                continue
            mapping[key] = _build(value_node, file, problems, budget)
            mapping.key_lines[key] = key_line
            mapping.value_lines[key] = value_node.start_mark.line + 1
        return mapping
    problems.append(FlowProblem(file, line, "unsupported YAML node"))  # pragma: no cover
    return None


def _scalar(node: ScalarNode, file: str, problems: list[FlowProblem]) -> Any:
    tag, text = node.tag, node.value
    if tag == _STR:
        return text
    if tag == _INT_TAG:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            pass
    elif tag == _FLOAT_TAG:
        try:
            return float(text)
        except ValueError:
            pass
    elif tag == _BOOL_TAG:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
    elif tag == _NULL_TAG:
        if _NULL.match(text):
            return None
    problems.append(FlowProblem(file, node.start_mark.line + 1,
                                f"unsupported YAML tag {tag!r} on {text!r}; write plain values"))
    return text
