"""Safe YAML for flow files and the prompt catalogue: plain values that remember their lines.

* Only ``true``/``false`` are booleans.  ``yes``, ``no``, ``on``, ``off``, ``y``, ``n`` stay
  strings, so a menu option or a prompt named ``no`` means what it says.
* Integers are decimal without a leading zero (``5``, ``-3``); ``0212345678`` and ``010`` stay
  strings (phone numbers), and there are no dates, octals or sexagesimals.
* Mapping keys are always strings, exactly as written: ``1:``, ``0:``, ``"#":`` give ``"1"``,
  ``"0"``, ``"#"``.
* Duplicate keys are errors (plain YAML silently keeps the last one).
* Every mapping and list remembers the line (1-based) of itself, each key and each value.
* Whatever a file holds, reading it gives values or a ``FlowError`` whose problems say
  ``file:line: message``: a file that cannot be read, bytes that are not UTF-8, control
  characters YAML does not allow (NUL, ESC, DEL, form feed …), more than ``MAX_DEPTH``
  levels of nesting, aliases expanding to more than ``MAX_VALUES`` values.

Values are built from the composed node tree here; PyYAML's constructors (and its tags) are
never used, so nothing but str/int/float/bool/None, ``YMap`` and ``YList`` comes out.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ivr.errors import FlowError, FlowProblem

__all__ = ["YMap", "YList", "load_yaml", "load_yaml_file", "read_file", "decode_text", "type_name",
           "MAX_DEPTH", "MAX_VALUES"]


class YMap(dict[str, Any]):
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


class YList(list[Any]):
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


MAX_DEPTH = 64         # lists and mappings inside each other; a flow needs about six
MAX_VALUES = 200_000   # aliases can multiply a small file into a huge tree


class _TooBig(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def _too_deep(line: int) -> _TooBig:
    return _TooBig(f"lists and mappings are nested more than {MAX_DEPTH} levels deep here; "
                   "a flow file needs only a few (an unclosed '[' or '{'?)", line)


class FlowYamlLoader(yaml.SafeLoader):
    """SafeLoader whose implicit types are only: true/false, decimal int, float, null.

    Composing stops at ``MAX_DEPTH`` levels of nesting, well before Python's recursion limit.
    """

    yaml_implicit_resolvers: dict[Any, Any] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]  # unannotated in types-PyYAML
                raise _too_deep(event.start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


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


# What YAML allows in a document (PyYAML's reader refuses everything else).
_NOT_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")    # as YAML counts lines
_C0_NAMES = ("NUL SOH STX ETX EOT ENQ ACK BEL backspace tab line-feed vertical-tab form-feed "
             "carriage-return SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US").split()


def _char_name(char: str) -> str:
    code = ord(char)
    name = _C0_NAMES[code] if code < 32 else "DEL" if code == 0x7F else None
    return f"U+{code:04X} ({name})" if name else f"U+{code:04X}"


def _position(text: str, index: int) -> tuple[int, int]:
    """(line, column), both 1-based, of ``text[index]``; lines counted as YAML counts them."""
    breaks = list(_LINE_BREAK.finditer(text, 0, index))
    start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, index - start + 1


def _check_printable(text: str, file: str) -> None:
    problems = []
    for line_no, line in enumerate(_LINE_BREAK.split(text), 1):
        bad = _NOT_PRINTABLE.search(line)
        if bad is not None:
            problems.append(FlowProblem(
                file, line_no, f"column {bad.start() + 1}: the control character {_char_name(bad.group())} "
                "is not allowed in YAML; delete it (tab and line breaks are the only control characters "
                "a flow file may hold)"))
            if len(problems) == 10:
                break
    if problems:
        raise FlowError(problems)


def read_file(path: str | os.PathLike[str], what: str = "the file") -> bytes:
    """The bytes of ``path``; ``FlowError`` (``path:1: cannot read …``) when it cannot be read."""
    p = Path(path)
    try:
        if p.exists() and not p.is_file() and not p.is_dir():   # a pipe would never end
            raise FlowError([FlowProblem(str(p), 1, f"cannot read {what}: it is not a regular file")])
        return p.read_bytes()
    except IsADirectoryError:
        message = f"cannot read {what}: it is a folder, not a file"
    except OSError as exc:
        message = f"cannot read {what}: {exc.strerror or exc}"
    except ValueError as exc:           # a NUL byte in the path
        message = f"cannot read {what}: {exc}"
    raise FlowError([FlowProblem(str(p), 1, message)])


def decode_text(data: bytes, file: str) -> str:
    """UTF-8 bytes → text; ``FlowError`` at the line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[line_start:exc.start].decode("utf-8", "replace")) + 1
        raise FlowError([FlowProblem(
            file, line, f"column {column}: the file is not UTF-8 text (byte 0x{data[exc.start]:02x}: "
            f"{exc.reason}); save it as UTF-8")]) from None


def load_yaml_file(path: str | os.PathLike[str], what: str = "the file") -> Any:
    """``read_file``, ``decode_text`` and ``load_yaml`` in one: values, or ``FlowError``."""
    file = str(path)
    return load_yaml(decode_text(read_file(path, what), file), file)


def load_yaml(text: str, file: str) -> Any:
    """Parse one YAML document into plain values (``YMap``/``YList`` for containers).

    Raises ``FlowError`` with every problem found (syntax, duplicate keys, unsupported tags,
    control characters, too deep a nesting, too many values).  An empty document gives ``None``.
    """
    _check_printable(text, file)
    try:
        loader = FlowYamlLoader(text)
    except yaml.reader.ReaderError as exc:    # pragma: no cover - _check_printable found it first
        line, _ = _position(text, exc.position)
        raise FlowError([FlowProblem(file, line, f"YAML: {exc.reason}")]) from None
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        message = exc.problem or str(exc)
        if exc.context:
            message = f"{exc.context}: {message}"
        raise FlowError([FlowProblem(file, line, f"YAML syntax: {message}")]) from exc
    except yaml.reader.ReaderError as exc:  # pragma: no cover - _check_printable found it first
        line, _ = _position(text, exc.position)
        raise FlowError([FlowProblem(file, line, f"YAML: {exc.reason}")]) from None
    except yaml.YAMLError as exc:
        raise FlowError([FlowProblem(file, 1, f"YAML: {exc}")]) from exc
    except _TooBig as exc:
        raise FlowError([FlowProblem(file, exc.line, str(exc))]) from None
    finally:
        loader.dispose()
    if root is None:
        return None
    problems: list[FlowProblem] = []
    try:
        value = _build(root, file, problems, _Budget(), 1)
    except _TooBig as exc:
        raise FlowError([FlowProblem(file, exc.line, str(exc))]) from None
    if problems:
        raise FlowError(problems)
    return value


class _Budget:
    __slots__ = ("left", "open")

    def __init__(self) -> None:
        self.left = MAX_VALUES
        self.open: set[int] = set()


def _build(node: Node, file: str, problems: list[FlowProblem], budget: _Budget, depth: int) -> Any:
    line = node.start_mark.line + 1
    if depth > MAX_DEPTH:                      # aliases can nest what each stays shallow
        raise _too_deep(line)
    budget.left -= 1
    if budget.left < 0:
        raise _TooBig(f"the document expands to more than {MAX_VALUES} values (aliases?)", line)
    if isinstance(node, ScalarNode):
        return _scalar(node, file, problems)
    if id(node) in budget.open:
        raise _TooBig("an alias refers to the list or mapping that contains it", line)
    budget.open.add(id(node))
    try:
        return _container(node, file, problems, budget, depth)
    finally:
        budget.open.discard(id(node))


def _container(node: Node, file: str, problems: list[FlowProblem], budget: _Budget, depth: int) -> Any:
    line = node.start_mark.line + 1
    if node.tag not in (_SEQ_TAG, _MAP_TAG):
        problems.append(FlowProblem(file, line, f"unsupported YAML tag {node.tag!r}; write plain values"))
    if isinstance(node, SequenceNode):
        seq = YList(line)
        for item in node.value:
            seq.append(_build(item, file, problems, budget, depth + 1))
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
            mapping[key] = _build(value_node, file, problems, budget, depth + 1)
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
