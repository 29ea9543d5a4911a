"""Flow files → checked, frozen ``Flow`` models.  Every definition error is found at load.

``load_flows`` reads a folder (or files), checks each file and then the set as a whole, and
raises one ``FlowError`` listing every problem as ``file:line: node 'x': message``.  Warnings
(an unreachable node, an unused subflow) do not stop loading; they are kept in
``FlowSet.warnings``.  ``validate_paths`` is the same check for ``ivr validate``: it returns
errors and warnings instead of raising.

The file format is described in ``docs/flows.md``.
"""

from __future__ import annotations

import collections
import difflib
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ivr.errors import FlowError, FlowProblem
from ivr.flow.expr import ENGINE_NAMESPACES, Expr, ExprError, compile_expr, constant, is_variable_name
from ivr.flow.model import (NODE_TYPES, Branch, Bypass, CallbackOffer, CancelCallback, Flow, FlowSet, Gather, Goto,
                            Hangup, Menu, Node, Play, Queue, RepeatPolicy, Return, Say, Set, Subflow, Transfer)
from ivr.flow.say import KINDS, SAY_PROMPT_IDS
from ivr.flow.yamlsafe import YList, YMap, decode_text, load_yaml, read_file, type_name
from ivr.prompts import Catalogue, audio_problems, load_catalogue

__all__ = ["load_flow_file", "load_flows", "validate_paths", "flow_files", "FlowSet", "Flow",
           "BUILTIN_VARIABLES", "DEFAULT_CATALOGUE"]

DEFAULT_CATALOGUE = Path("prompts") / "catalog.yaml"

# Variables every call has.  Other names under caller. and call. may be supplied by the engine
# (``caller.age``…) and read as None when it does not know them.
BUILTIN_VARIABLES = frozenset({"lang", "caller.number", "call.dialled", "call.id"})
# What the engine knows about the caller (ivr.routing): a flow may read exactly these.
CALLER_VARIABLES = frozenset({"caller.number", "caller.known", "caller.anonymous", "caller.age",
                              "caller.recent_calls", "caller.is_repeat", "caller.language",
                              "caller.needs_assistance"})

# queue.<name>.estimated_wait (seconds; None when nobody can serve), .waiting, .agents_available
QUEUE_VARIABLE = re.compile(r"queue\.[A-Za-z0-9_-]+\.(estimated_wait|waiting|agents_available)")

TOP_KEYS = ("flow", "description", "numbers", "outbound", "entry", "language", "vars", "caller", "bypass",
            "nodes")
CALLER_KEYS = ("repeat",)
REPEAT_KEYS = ("calls", "within", "count")
BYPASS_KEYS = ("if", "queue", "priority", "reason", "prompt", "note")
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s)\s*$")
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
NOTE = "note"   # free text on any node, for the author; ignored by the engine
NODE_KEYS: dict[str, tuple[str, ...]] = {
    "play": ("barge_in", "next"),
    "menu": ("options", "timeout", "retries", "invalid", "no_input", "on_fail", "barge_in"),
    "gather": ("into", "digits", "min", "max", "terminator", "timeout", "inter_digit_timeout", "valid",
               "pattern", "retries", "invalid", "no_input", "next", "on_fail", "barge_in", "private"),
    "say": ("value", "before", "after", "barge_in", "next"),
    "set": ("next",),
    "branch": ("else",),
    "goto": (),
    "subflow": ("next",),
    "return": (),
    "queue": ("priority", "reason", "prompt", "callback"),
    "cancel_callback": ("next", "none"),
    "transfer": ("extension", "priority", "prompt"),
    "hangup": (),
}
ALL_NODE_KEYS = sorted({k for keys in NODE_KEYS.values() for k in keys} | set(NODE_KEYS) | {NOTE})

MENU_KEYS = re.compile(r"^[0-9*#]$")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
NUMBER_OR_NAME = re.compile(r"^[A-Za-z0-9_+*#.-]+$")
SECONDS = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s)?\s*$")
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")       # after '@' in a prompt reference: welcome@en

DEFAULT_TIMEOUT = 5.0
DEFAULT_INTER_DIGIT_TIMEOUT = 3.0
DEFAULT_RETRIES = 2           # three tries in all
MAX_TIMEOUT = 120.0
MAX_RETRIES = 9
MAX_DIGITS = 32


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


# -- one file ------------------------------------------------------------------------------------

class _Parsed:
    """What reading one file gave: the flow (None when it has errors) and what was found."""

    __slots__ = ("file", "flow", "problems", "subflow_refs", "name", "name_line", "numbers", "outbound")

    def __init__(self, file: str) -> None:
        self.file = file
        self.flow: Flow | None = None
        self.problems: list[FlowProblem] = []
        self.subflow_refs: list[tuple[str, str, int]] = []     # (node, flow name, line)
        self.name: str | None = None
        self.name_line = 1
        self.numbers: list[tuple[str, int]] = []
        self.outbound = False                 # dialled out by the engine: answers no number


class _FileReader:
    def __init__(self, file: str, data: bytes, catalogue: Catalogue | None) -> None:
        self.file = file
        self.data = data
        self.catalogue = catalogue
        self.out = _Parsed(file)
        self.refs: list[tuple[str, str, str, int]] = []       # (node, label, target, line)
        self.variables: set[str] = set(BUILTIN_VARIABLES)
        self.node_lines: dict[str, int] = {}

    # -- reporting -----------------------------------------------------------------------------
    def error(self, line: int, message: str, node: str | None = None) -> None:
        self.out.problems.append(FlowProblem(self.file, line, message, node=node))

    def warning(self, line: int, message: str, node: str | None = None) -> None:
        self.out.problems.append(FlowProblem(self.file, line, message, node=node, severity="warning"))

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.out.problems)

    # -- top level -----------------------------------------------------------------------------
    def read(self) -> _Parsed:
        try:
            doc = load_yaml(decode_text(self.data, self.file), self.file)
        except FlowError as exc:
            self.out.problems.extend(exc.problems)
            return self.out
        if not isinstance(doc, YMap):
            line = doc.line if isinstance(doc, YList) else 1
            self.error(line, "a flow file must be a mapping with 'flow', 'entry' and 'nodes'")
            return self.out
        for key in doc:
            if key not in TOP_KEYS:
                self.error(doc.key_line(key), f"unknown key '{key}'{_did_you_mean(key, TOP_KEYS)}; "
                           f"a flow file has {', '.join(TOP_KEYS)}")

        name = self._flow_name(doc)
        numbers = self._numbers(doc)
        outbound = self._outbound(doc, numbers)
        language = self._language(doc)
        description = doc.get("description") or ""
        if not isinstance(description, str):
            self.error(doc.value_line("description"), f"'description' must be text, not {type_name(description)}")
            description = ""
        raw_nodes = doc.get("nodes")
        if "nodes" not in doc:
            self.error(doc.line, "the flow has no 'nodes'")
            raw_nodes = YMap(doc.line)
        elif not isinstance(raw_nodes, YMap) or not raw_nodes:
            self.error(doc.value_line("nodes"), "'nodes' must map node names to nodes")
            raw_nodes = YMap(doc.line)
        self._collect_variables(raw_nodes)
        defaults = self._vars(doc)

        nodes: dict[str, Node] = {}
        for node_name, raw in raw_nodes.items():
            line = raw_nodes.key_line(node_name)
            if not NAME.match(node_name):
                self.error(line, f"node name '{node_name}' must start with a letter and hold only letters, "
                           "digits, '_' and '-'")
                continue
            node = self._node(node_name, raw, line, raw_nodes.value_line(node_name), raw_nodes)
            if node is not None:
                nodes[node_name] = node

        entry = doc.get("entry")
        entry_line = doc.value_line("entry") if "entry" in doc else doc.line
        if "entry" not in doc:
            self.error(doc.line, "the flow has no 'entry': name the node a call starts at")
        elif not isinstance(entry, str):
            self.error(entry_line, f"'entry' must be a node name, not {type_name(entry)}")
        elif entry not in raw_nodes:
            self.error(entry_line, f"entry '{entry}' is not a node{_did_you_mean(entry, raw_nodes)}")

        broken = {name for name in raw_nodes if name not in nodes}
        for node_name, label, target, line in self.refs:
            if target not in raw_nodes:
                broken.add(node_name)
                self.error(line, f"{label} goes to '{target}', which does not exist"
                           f"{_did_you_mean(target, raw_nodes)}", node_name)

        _check_graph(self, nodes, entry if isinstance(entry, str) and entry in nodes else None, broken)
        repeat = self._repeat(doc)
        bypass = self._bypass(doc)

        if not self.has_errors and name is not None and isinstance(entry, str):
            self.out.flow = Flow(
                name=name, file=self.file, line=self.out.name_line, version=_version(self.data),
                numbers=tuple(n for n, _ in numbers), entry=entry, language=language,
                vars=MappingProxyType(defaults), nodes=MappingProxyType(nodes), description=description,
                repeat=repeat, bypass=bypass, outbound=outbound)
        return self.out

    def _repeat(self, doc: YMap) -> RepeatPolicy:
        raw = doc.get("caller")
        if raw is None:
            return RepeatPolicy()
        if not isinstance(raw, YMap):
            self.error(doc.value_line("caller"), f"'caller' must be a mapping with {', '.join(CALLER_KEYS)}, "
                       f"not {type_name(raw)}")
            return RepeatPolicy()
        for key in raw:
            if key not in CALLER_KEYS:
                self.error(raw.key_line(key), f"unknown key '{key}' under 'caller'{_did_you_mean(key, CALLER_KEYS)}")
        rep = raw.get("repeat")
        if rep is None:
            return RepeatPolicy()
        if not isinstance(rep, YMap):
            self.error(raw.value_line("repeat"), "'repeat' must be a mapping like "
                       "{calls: 3, within: 7d, count: all}")
            return RepeatPolicy()
        for key in rep:
            if key not in REPEAT_KEYS:
                self.error(rep.key_line(key), f"unknown key '{key}' under 'repeat'{_did_you_mean(key, REPEAT_KEYS)}; "
                           f"it has {', '.join(REPEAT_KEYS)}")
        default = RepeatPolicy()
        calls = rep.get("calls", default.calls)
        if isinstance(calls, bool) or not isinstance(calls, int) or not 2 <= calls <= 100:
            self.error(rep.value_line("calls"), f"'calls' must be a whole number from 2 to 100 (this call "
                       f"included), not {calls!r}")
            calls = default.calls
        window = default.window
        within = rep.get("within")
        if within is not None:
            m = DURATION.match(within) if isinstance(within, str) else None
            if m is None or not 0 < float(m.group(1)) * _UNIT[m.group(2)] <= 366 * 86400:
                self.error(rep.value_line("within"), f"'within' must be a time like 7d, 48h or 90m "
                           f"(at most a year), not {within!r}")
            else:
                window = float(m.group(1)) * _UNIT[m.group(2)]
        count = rep.get("count", "all")
        if count not in ("all", "unserved"):
            self.error(rep.value_line("count"), f"'count' must be 'all' (every call) or 'unserved' (calls that "
                       f"did not reach an agent), not {count!r}")
            count = "all"
        return RepeatPolicy(calls=calls, window=window, unserved_only=count == "unserved")

    def _bypass(self, doc: YMap) -> tuple[Bypass, ...]:
        raw = doc.get("bypass")
        if raw is None:
            return ()
        if not isinstance(raw, YList):
            self.error(doc.value_line("bypass"), "'bypass' must be a list of rules, each with 'if' and 'queue'")
            return ()
        rules: list[Bypass] = []
        for i, rule in enumerate(raw):
            line = raw.item_line(i)
            if not isinstance(rule, YMap):
                self.error(line, f"bypass rule {i + 1} must be a mapping with 'if' and 'queue', not {type_name(rule)}")
                continue
            for key in rule:
                if key not in BYPASS_KEYS:
                    self.error(rule.key_line(key), f"unknown key '{key}' in bypass rule {i + 1}"
                               f"{_did_you_mean(key, BYPASS_KEYS)}; a rule has {', '.join(BYPASS_KEYS[:-1])}")
            where = f"bypass rule {i + 1}"
            source = rule.get("if")
            if "if" not in rule:
                self.error(line, f"{where} has no 'if': the condition that sends the caller past the menu")
                continue
            condition = self.expression(None, source, rule.value_line("if"), f"{where} 'if'")
            queue = rule.get("queue")
            if not isinstance(queue, str) or not QUEUE.match(queue):
                self.error(rule.value_line("queue") if "queue" in rule else line,
                           f"{where} needs 'queue': the name of the queue the caller goes to")
                continue
            priority = rule.get("priority")
            if priority is not None and (not isinstance(priority, str) or not QUEUE.match(priority)):
                self.error(rule.value_line("priority"), f"{where}: 'priority' must be a priority name, "
                           f"not {priority!r}")
                priority = None
            reason = rule.get("reason")
            if not isinstance(reason, str) or not reason.strip():
                self.error(rule.value_line("reason") if "reason" in rule else line,
                           f"{where} needs 'reason': a short word the call record shows (e.g. elderly)")
                continue
            prompts: tuple[str, ...] = ()
            if "prompt" in rule:
                prompts = self._rule_prompts(rule, where)
            if condition is not None:
                rules.append(Bypass(line=line, condition=condition, source=str(source), queue=queue,
                                    priority=priority, reason=reason.strip(), prompts=prompts))
        return tuple(rules)

    def _rule_prompts(self, rule: YMap, where: str) -> tuple[str, ...]:
        value = rule.get("prompt")
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            self.error(rule.value_line("prompt"), f"{where}: 'prompt' must be a prompt id or a list of them")
            return ()
        if self.catalogue is not None:
            for pid in items:
                if not self.catalogue.has(pid):
                    self.error(rule.value_line("prompt"), f"{where}: prompt '{pid}' is not in the catalogue"
                               f"{_did_you_mean(pid, self.catalogue.ids())}")
        return tuple(items)

    def _flow_name(self, doc: YMap) -> str | None:
        name = doc.get("flow")
        if "flow" not in doc:
            self.error(doc.line, "the flow has no name: add 'flow: <name>'")
            return None
        self.out.name_line = doc.key_line("flow")
        if not isinstance(name, str) or not NAME.match(name):
            self.error(doc.value_line("flow"), "'flow' must be a name (a letter, then letters, digits, '_' or '-')")
            return None
        self.out.name = name
        return name

    def _numbers(self, doc: YMap) -> list[tuple[str, int]]:
        raw = doc.get("numbers")
        if raw is None:
            return []
        if not isinstance(raw, YList):
            self.error(doc.value_line("numbers"), f"'numbers' must be a list of dialled numbers, e.g. "
                       f"[\"15771000\"], not {type_name(raw)}")
            return []
        found: list[tuple[str, int]] = []
        for i, number in enumerate(raw):
            line = raw.item_line(i)
            text = str(number) if isinstance(number, int) and not isinstance(number, bool) else number
            if not isinstance(text, str) or not NUMBER.match(text):
                self.error(line, f"{number!r} is not a dialled number (digits, '*', '#', optionally a leading '+')")
            elif text in (n for n, _ in found):
                self.error(line, f"number '{text}' is listed twice")
            else:
                found.append((text, line))
        self.out.numbers = found
        return found

    def _outbound(self, doc: YMap, numbers: list[tuple[str, int]]) -> bool:
        """``outbound: true``: the engine dials out with this flow (a wellness campaign's calls),
        so it answers no number and nobody needs to call it as a subflow."""
        raw = doc.get("outbound", False)
        if not isinstance(raw, bool):
            self.error(doc.value_line("outbound"), f"'outbound' must be true or false, not {type_name(raw)}")
            return False
        outbound = raw is True
        if outbound and numbers:
            self.error(doc.value_line("numbers"), "an outbound flow answers no number: the engine dials out "
                       "with it; remove 'numbers' (or 'outbound')")
        self.out.outbound = outbound
        return outbound

    def _language(self, doc: YMap) -> str:
        lang = doc.get("language", "ko")
        if not isinstance(lang, str):
            self.error(doc.value_line("language"), f"'language' must be a language code, not {type_name(lang)}")
            return "ko"
        if self.catalogue is not None and lang not in self.catalogue.languages:
            self.error(doc.value_line("language"), f"language '{lang}' is not in the prompt catalogue "
                       f"({', '.join(self.catalogue.languages)})")
        return lang

    def _vars(self, doc: YMap) -> dict[str, Any]:
        raw = doc.get("vars")
        if raw is None:
            return {}
        if not isinstance(raw, YMap):
            self.error(doc.value_line("vars"), f"'vars' must map variable names to values, not {type_name(raw)}")
            return {}
        found: dict[str, Any] = {}
        for name, value in raw.items():
            line = raw.key_line(name)
            if not is_variable_name(name):
                self.error(line, f"'{name}' is not a variable name (letters, digits and '_', dots between parts)")
            elif name == "lang":
                self.error(line, "set the starting language with 'language:', not under 'vars'")
            elif name.startswith(ENGINE_NAMESPACES):
                self.error(line, f"'{name}' is supplied by the engine; flows cannot give it a default")
            elif isinstance(value, (YMap, YList)):
                self.error(raw.value_line(name), f"the default of '{name}' must be text, a number, true/false "
                           f"or nothing, not {type_name(value)}")
            else:
                found[name] = value
        self.variables |= set(found)
        return found

    def _collect_variables(self, raw_nodes: YMap) -> None:
        """Every variable a node sets, so expressions anywhere may read it."""
        for raw in raw_nodes.values():
            if not isinstance(raw, YMap):
                continue
            assignments = raw.get("set")
            if isinstance(assignments, YMap):
                self.variables |= {k for k in assignments if is_variable_name(k)}
            into = raw.get("into")
            if isinstance(into, str) and is_variable_name(into):
                self.variables.add(into)

    def known_variable(self, name: str) -> bool:
        if name.startswith("caller."):
            return name in CALLER_VARIABLES
        if name.startswith("queue."):
            return QUEUE_VARIABLE.fullmatch(name) is not None
        return name in self.variables or name.startswith(ENGINE_NAMESPACES)

    # -- nodes ---------------------------------------------------------------------------------
    def _node(self, name: str, raw: Any, line: int, value_line: int, raw_nodes: YMap) -> Node | None:
        self.node_lines[name] = line
        if not isinstance(raw, YMap) or not raw:
            self.error(value_line, f"a node must be a mapping with one of {', '.join(NODE_TYPES)}, "
                       f"not {type_name(raw)}", name)
            return None
        types = [k for k in raw if k in NODE_TYPES]
        if len(types) > 1:
            self.error(raw.key_line(types[1]), f"has two types, '{types[0]}' and '{types[1]}'; "
                       "a node does one thing: split it in two and join them with 'next'", name)
            return None
        if not types:
            close = [(k, difflib.get_close_matches(k, list(NODE_TYPES), n=1)) for k in raw]
            hints = [f"; did you mean '{c[0]}' instead of '{k}'?" for k, c in close if c]
            hint = hints[0] if hints else ""
            self.error(line, f"has no type: give it one of {', '.join(NODE_TYPES)}{hint}", name)
            return None
        kind = types[0]
        allowed = set(NODE_KEYS[kind]) | {kind, NOTE}
        bad = False
        for key in raw:
            if key not in allowed:
                bad = True
                hint = _did_you_mean(key, allowed)
                if not hint and key in ALL_NODE_KEYS:
                    hint = f" (a '{kind}' node has: {', '.join(sorted(allowed - {NOTE}))})"
                self.error(raw.key_line(key), f"unknown key '{key}' for a '{kind}' node{hint}", name)
        node = _NodeReader(self, name, raw, line, kind).read()
        return None if bad else node

    def prompts_in(self, node: str, raw: YMap, key: str, *, required: bool = True) -> tuple[str, ...]:
        """A prompt id or a list of them, each checked against the catalogue."""
        if key not in raw or raw[key] is None:
            if required:
                line = raw.key_line(key) if key in raw else self.node_lines.get(node, raw.line)
                self.error(line, f"'{key}' needs a prompt id or a list of them", node)
            return ()
        value, line = raw[key], raw.value_line(key)
        items: list[tuple[Any, int]]
        if isinstance(value, YList):
            items = [(v, value.item_line(i)) for i, v in enumerate(value)]
            if not items:
                self.error(line, f"'{key}' is an empty list; name at least one prompt", node)
        else:
            items = [(value, line)]
        found: list[str] = []
        for item, item_line in items:
            if not isinstance(item, str):
                self.error(item_line, f"'{key}' must name prompts by id, not {type_name(item)}", node)
            else:
                prompt_id, at, lang = item.partition("@")
                if at and not LANGUAGE_CODE.fullmatch(lang):
                    self.error(item_line, f"'{item}': after '@' comes a language code (like {prompt_id}@en)", node)
                elif self.catalogue is not None and not self.catalogue.has(prompt_id):
                    self.error(item_line, f"unknown prompt '{prompt_id}'"
                               f"{_did_you_mean(prompt_id, self.catalogue.ids())}; "
                               f"add it to {self.catalogue.path}", node)
                elif at and self.catalogue is not None and lang not in self.catalogue.languages:
                    self.error(item_line, f"'{item}': language '{lang}' is not in the prompt catalogue "
                               f"({', '.join(self.catalogue.languages)})", node)
                else:
                    found.append(item)
        return tuple(found)

    def target(self, node: str, raw: YMap, key: str, label: str | None = None, *,
               required: bool = True) -> str:
        if key not in raw or raw[key] is None:
            if required:
                what = "which node comes after it" if key == "next" else f"where '{key}' goes"
                self.error(self.node_lines.get(node, raw.line) if key not in raw else raw.key_line(key),
                           f"has no '{key}': say {what}", node)
            return ""
        value = raw[key]
        if not isinstance(value, str):
            self.error(raw.value_line(key), f"'{key}' must be a node name, not {type_name(value)}", node)
            return ""
        self.refs.append((node, label or f"'{key}'", value, raw.value_line(key)))
        return value

    def expression(self, node: str | None, source: Any, line: int, what: str) -> Expr | None:
        if isinstance(source, (bool, int, float)) or source is None:
            return constant(source)
        if not isinstance(source, str):
            self.error(line, f"{what} must be an expression, not {type_name(source)}", node)
            return None
        try:
            return compile_expr(source, self.known_variable, lambda: sorted(self.variables | CALLER_VARIABLES))
        except ExprError as exc:
            self.error(line, f"{what}: {exc}", node)
            return None


class _NodeReader:
    """Reads one node's mapping into its model class.  Problems go to the file reader."""

    def __init__(self, reader: _FileReader, name: str, raw: YMap, line: int, kind: str) -> None:
        self.r = reader
        self.name = name
        self.raw = raw
        self.line = line
        self.kind = kind

    def error(self, key: str, message: str) -> None:
        self.r.error(self.raw.value_line(key) if key in self.raw else self.line, message, self.name)

    def read(self) -> Node | None:
        before = len(self.r.out.problems)
        node = getattr(self, "read_" + self.kind)()
        failed = any(p.severity == "error" for p in self.r.out.problems[before:])
        return None if failed else node

    # -- typed values --------------------------------------------------------------------------
    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(key, f"'{key}' must be true or false, not {value!r}")
            return default
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self.raw.get(key, default)
        if value is None:
            return default
        seconds: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and (m := SECONDS.match(value)):
            seconds = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        if seconds is None or not 0 < seconds <= MAX_TIMEOUT:
            self.error(key, f"'{key}' must be a time between 0 and {MAX_TIMEOUT:g} seconds, like 5 or \"5s\" "
                       f"or \"1500ms\", not {value!r}")
            return default
        return seconds

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw.get(key, default)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.error(key, f"'{key}' must be a whole number from {low} to {high}, not {value!r}")
            return default
        return value

    def text(self, key: str, *, required: bool = False, pattern: re.Pattern[str] | None = None,
             what: str = "text") -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.error(key, f"'{key}' needs {what}")
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            self.error(key, f"'{key}' must be {what}, not {value!r}")
            return None
        return value

    def prompts(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        return self.r.prompts_in(self.name, self.raw, key, required=required)

    def next(self, key: str = "next", label: str | None = None, *, required: bool = True) -> str:
        return self.r.target(self.name, self.raw, key, label, required=required)

    def nothing(self) -> None:
        if self.raw[self.kind] is not None:
            self.error(self.kind, f"'{self.kind}' takes no value; write '{self.kind}:' alone")

    # -- node types ----------------------------------------------------------------------------
    def read_play(self) -> Play:
        return Play(self.name, self.line, self.prompts("play", required=True),
                    self.flag("barge_in", False), self.next())

    def read_menu(self) -> Menu:
        prompts = self.prompts("menu", required=True)
        options: dict[str, str] = {}
        raw = self.raw.get("options")
        if not isinstance(raw, YMap) or not raw:
            self.error("options", "a menu needs 'options': the keys a caller may press, each with a node, "
                       "e.g. options: {1: billing, 0: agent}")
        else:
            for key in raw:
                line = raw.key_line(key)
                if not MENU_KEYS.match(key):
                    self.r.error(line, f"option '{key}' is not a key on a phone (0-9, * or #)", self.name)
                    continue
                target = raw[key]
                if not isinstance(target, str):
                    self.r.error(raw.value_line(key), f"option '{key}' must name a node, not {type_name(target)}",
                                 self.name)
                    continue
                self.r.refs.append((self.name, f"option '{key}'", target, raw.value_line(key)))
                options[key] = target
        return Menu(self.name, self.line, prompts, MappingProxyType(options),
                    self.seconds("timeout", DEFAULT_TIMEOUT),
                    self.integer("retries", DEFAULT_RETRIES, 0, MAX_RETRIES),
                    self.prompts("invalid"), self.prompts("no_input"),
                    self.next("on_fail", required=False) or None, self.flag("barge_in", True))

    def read_gather(self) -> Gather:
        prompts = self.prompts("gather", required=True)
        into = self.text("into", required=True, what="the name of a variable for the digits")
        if into is not None and (not is_variable_name(into) or into == "lang"
                                 or into.startswith(ENGINE_NAMESPACES)):
            self.error("into", f"'into' must be a variable of the flow (not 'lang', 'caller.…' or 'call.…'), "
                       f"not {into!r}")
        if "digits" in self.raw and ("min" in self.raw or "max" in self.raw):
            self.error("digits", "give either 'digits' (an exact count) or 'min'/'max', not both")
        if "digits" in self.raw:
            low = high = self.integer("digits", 1, 1, MAX_DIGITS)
        elif "max" in self.raw:
            high = self.integer("max", 1, 1, MAX_DIGITS)
            low = self.integer("min", 1, 1, MAX_DIGITS)
            if low > high:
                self.error("min", f"'min' ({low}) is more than 'max' ({high})")
        else:
            self.error("gather", "say how many digits to collect: 'digits: 6', or 'min:' and 'max:'")
            low = high = 1
        terminator = self.raw.get("terminator", "#")
        if terminator is None:
            terminator = ""
        if not isinstance(terminator, str) or terminator not in ("", "#", "*"):
            self.error("terminator", f"'terminator' must be \"#\", \"*\" or \"\" (none), not {terminator!r}")
            terminator = "#"
        pattern = None
        source = self.raw.get("pattern")
        if source is not None:
            if not isinstance(source, str):
                self.error("pattern", f"'pattern' must be a regular expression, not {type_name(source)}")
            else:
                try:
                    pattern = re.compile(source)
                except re.error as exc:
                    self.error("pattern", f"'pattern' is not a valid regular expression: {exc}")
        valid = None
        if "valid" in self.raw:
            valid = self.r.expression(self.name, self.raw["valid"], self.raw.value_line("valid"), "'valid'")
        return Gather(self.name, self.line, prompts, into or "", low, high, terminator,
                      self.seconds("timeout", DEFAULT_TIMEOUT),
                      self.seconds("inter_digit_timeout", DEFAULT_INTER_DIGIT_TIMEOUT), valid, pattern,
                      self.integer("retries", DEFAULT_RETRIES, 0, MAX_RETRIES),
                      self.prompts("invalid"), self.prompts("no_input"), self.next(),
                      self.next("on_fail", required=False) or None, self.flag("barge_in", True),
                      self.flag("private", False))

    def read_say(self) -> Say:
        kind = self.raw["say"]
        if kind not in KINDS:
            self.error("say", f"'say' must be one of {', '.join(KINDS)}, not {kind!r}"
                       f"{_did_you_mean(str(kind), KINDS)}")
        value = None
        if "value" not in self.raw:
            self.error("say", "a 'say' node needs 'value': the variable or expression to say")
        else:
            value = self.r.expression(self.name, self.raw["value"], self.raw.value_line("value"), "'value'")
        if self.r.catalogue is not None:
            missing = sorted(i for i in SAY_PROMPT_IDS if not self.r.catalogue.has(i))
            if missing:
                self.error("say", f"the prompt catalogue lacks prompts needed to say things: "
                           f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        return Say(self.name, self.line, str(kind), value or constant(""), self.prompts("before"),
                   self.prompts("after"), self.flag("barge_in", False), self.next())

    def read_set(self) -> Set:
        raw = self.raw["set"]
        assignments: list[tuple[str, Expr]] = []
        if not isinstance(raw, YMap) or not raw:
            self.error("set", "'set' must map variable names to expressions, e.g. set: {tries: \"tries + 1\"}")
        else:
            for var, source in raw.items():
                if not is_variable_name(var) or var.startswith(ENGINE_NAMESPACES):
                    self.r.error(raw.key_line(var), f"cannot set '{var}': not a variable of the flow "
                                 "('caller.…' and 'call.…' are supplied by the engine)", self.name)
                    continue
                expr = self.r.expression(self.name, source, raw.value_line(var), f"'{var}'")
                if expr is not None:
                    assignments.append((var, expr))
        return Set(self.name, self.line, tuple(assignments), self.next())

    def read_branch(self) -> Branch:
        raw = self.raw["branch"]
        cases: list[tuple[Expr, str]] = []
        if not isinstance(raw, YList) or not raw:
            self.error("branch", "'branch' must be a list of {if: <condition>, goto: <node>}")
        else:
            for i, case in enumerate(raw, 1):
                line = raw.item_line(i - 1)
                if not isinstance(case, YMap) or set(case) != {"if", "goto"}:
                    extra = sorted(set(case) - {"if", "goto"}) if isinstance(case, YMap) else []
                    hint = f" (unknown: {', '.join(extra)})" if extra else ""
                    self.r.error(line, f"condition {i} must be {{if: <condition>, goto: <node>}}{hint}", self.name)
                    continue
                expr = self.r.expression(self.name, case["if"], case.value_line("if"), f"condition {i}")
                target = self.r.target(self.name, case, "goto", f"condition {i}")
                if expr is not None and target:
                    cases.append((expr, target))
        otherwise = self.next("else", "'else'")
        return Branch(self.name, self.line, tuple(cases), otherwise)

    def read_goto(self) -> Goto:
        return Goto(self.name, self.line, self.next("goto", "'goto'"))

    def read_subflow(self) -> Subflow:
        flow = self.text("subflow", required=True, pattern=NAME, what="the name of a flow")
        if flow:
            self.r.out.subflow_refs.append((self.name, flow, self.raw.value_line("subflow")))
        return Subflow(self.name, self.line, flow or "", self.next())

    def read_return(self) -> Return:
        self.nothing()
        return Return(self.name, self.line)

    def read_queue(self) -> Queue:
        queue = self.text("queue", required=True, pattern=QUEUE, what="the name of a queue")
        return Queue(self.name, self.line, queue or "", self.text("priority", pattern=QUEUE, what="a priority name"),
                     self.text("reason"), self.prompts("prompt"), self.callback_offer())

    def callback_offer(self) -> CallbackOffer | None:
        raw = self.raw.get("callback")
        if raw is None:
            return None
        line = self.raw.value_line("callback")
        if not isinstance(raw, YMap):
            self.r.error(line, "'callback' must be a mapping: {above: 5m, after: 3m, repeat: 2m, key: 1}", self.name)
            return None
        unknown = sorted(set(raw) - {"above", "after", "repeat", "key", NOTE})
        if unknown:
            self.r.error(line, f"'callback' does not take {', '.join(unknown)} "
                         "(it takes above, after, repeat, key)", self.name)
        values: dict[str, float | None] = {}
        for key in ("above", "after", "repeat"):
            value = raw.get(key)
            if value is None:
                values[key] = None
                continue
            seconds: float | None = None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                seconds = float(value)
            elif isinstance(value, str) and (m := DURATION.match(value)):
                seconds = float(m.group(1)) * _UNIT[m.group(2)]
            if seconds is None or not 0 <= seconds <= 86400:
                self.r.error(raw.value_line(key), f"callback '{key}' must be a time like 300, 5m or 90s, "
                             f"not {value!r}", self.name)
                return None
            values[key] = seconds
        if values["above"] is None and values["after"] is None:
            self.r.error(line, "'callback' needs 'above' (offer when the expected wait is longer) "
                         "and/or 'after' (offer once the caller has waited this long)", self.name)
            return None
        key = str(raw.get("key", "1"))
        if key not in set("0123456789*#"):
            self.r.error(raw.value_line("key") if "key" in raw else line,
                         f"callback 'key' must be one key (0-9, *, #), not {raw.get('key')!r}", self.name)
            return None
        return CallbackOffer(above=values["above"], after=values["after"],
                             repeat=values["repeat"] or 0.0, key=key)

    def read_cancel_callback(self) -> CancelCallback:
        raw = self.raw.get("cancel_callback")
        queue = None
        if raw is not None:
            queue = self.text("cancel_callback", pattern=QUEUE, what="the name of a queue (or nothing: all)")
        return CancelCallback(self.name, self.line, queue, self.next(), self.next("none"))

    def read_transfer(self) -> Transfer:
        context = self.text("transfer", required=True, pattern=QUEUE, what="a dialplan context")
        extension = self.text("extension", required=True, pattern=NUMBER_OR_NAME, what="a dialplan extension")
        return Transfer(self.name, self.line, context or "", extension or "",
                        self.integer("priority", 1, 1, 999), self.prompts("prompt"))

    def read_hangup(self) -> Hangup:
        return Hangup(self.name, self.line, self.prompts("hangup", required=False))


# -- graph checks --------------------------------------------------------------------------------

def _check_graph(reader: _FileReader, nodes: dict[str, Node], entry: str | None, broken: set[str]) -> None:
    """Unreachable nodes (warnings) and loops the call can never leave (errors).

    ``broken`` nodes (they failed to read, or point at nodes that do not exist) already have
    errors: they are taken to be able to end the call, so they cause no second message.
    """
    edges = {name: [t for _, t in node.targets() if t in nodes] for name, node in nodes.items()}
    order = {name: i for i, name in enumerate(nodes)}

    # Unreachable nodes: a warning (a node kept for later is not wrong, but often a typo).
    # Only when every node was read: a broken node's ways out are not known.
    if entry is not None and not broken:
        seen = {entry}
        todo = [entry]
        while todo:
            for t in edges[todo.pop()]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        for name, node in nodes.items():
            if name not in seen:
                reader.warning(node.line, f"is never reached from the entry node '{entry}'", name)

    # Nodes that can end the call: endings, and menus/gathers without on_fail (they hang up
    # when the tries run out); then every node from which one of those can be reached.
    # A node that goes to a broken node counts as able to end.
    can_end = {name for name, node in nodes.items()
               if node.ends or name in broken or (isinstance(node, (Menu, Gather)) and node.on_fail is None)
               or any(t in broken for _, t in node.targets())}
    reverse: dict[str, list[str]] = {name: [] for name in nodes}
    for name, targets in edges.items():
        for t in targets:
            reverse[t].append(name)
    todo = list(can_end)
    while todo:
        for source in reverse[todo.pop()]:
            if source not in can_end:
                can_end.add(source)
                todo.append(source)

    stuck = {name for name in nodes if name not in can_end}
    for scc in _cycles(stuck, edges):
        first = min(scc, key=order.__getitem__)
        path = _cycle_path(first, scc, edges)
        reader.error(nodes[first].line, f"the call can never leave the loop {path}: none of these nodes leads "
                     "to a hangup, queue, transfer or return", first)

    instant = {name for name, node in nodes.items() if node.instant}
    for scc in _cycles(instant, edges):
        first = min(scc, key=order.__getitem__)
        path = _cycle_path(first, scc, edges)
        reader.error(nodes[first].line, f"the loop {path} neither plays anything nor waits for the caller, "
                     "so it would spin forever; put a menu, gather or play in it", first)


def _cycles(within: set[str], edges: dict[str, list[str]]) -> list[set[str]]:
    """Strongly connected sets of ``within`` that hold a cycle (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for root in within:
        if root in index:
            continue
        work = [(root, iter([t for t in edges[root] if t in within]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter([t for t in edges[child] if t in within])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                scc: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    scc.add(member)
                    if member == node:
                        break
                if len(scc) > 1 or node in edges[node]:
                    found.append(scc)
    return found


def _cycle_path(start: str, scc: set[str], edges: dict[str, list[str]]) -> str:
    """``'a' → 'b' → 'a'``: a shortest way round the loop from ``start``."""
    parents: dict[str, str | None] = {start: None}
    todo = collections.deque([start])
    while todo:
        node = todo.popleft()
        for t in edges[node]:
            if t == start:
                path = [node]
                while (parent := parents[path[-1]]) is not None:
                    path.append(parent)
                return " → ".join(f"'{n}'" for n in [*reversed(path), start])
            if t in scc and t not in parents:
                parents[t] = node
                todo.append(t)
    return f"'{start}'"   # pragma: no cover - a member of a cycle always has a way round


# -- files and sets ------------------------------------------------------------------------------

def _read_file(path: Path, catalogue: Catalogue | None) -> _Parsed:
    file = str(path)
    try:
        data = read_file(path, "the flow file")
    except FlowError as exc:
        parsed = _Parsed(file)
        parsed.problems.extend(exc.problems)
        return parsed
    return _FileReader(file, data, catalogue).read()


def load_flow_file(path: str | os.PathLike[str], catalogue: Catalogue | None) -> Flow:
    """One flow file → ``Flow``; ``FlowError`` lists every problem (warnings are not errors).

    Subflow names are not checked here (they need the other files): use ``load_flows``.
    With ``catalogue=None`` prompt ids are not checked.
    """
    parsed = _read_file(Path(path), catalogue)
    errors = [p for p in parsed.problems if p.severity == "error"]
    if errors or parsed.flow is None:
        raise FlowError(errors or [FlowProblem(parsed.file, 1, "the flow could not be read")])
    return parsed.flow


def flow_files(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Flow files named by ``paths``: files as given, folders as their ``*.yaml``/``*.yml``.

    A folder that cannot be listed gives no files (``load_flows`` reports it)."""
    return _list_files(paths)[0]


def _list_files(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
                ) -> tuple[list[Path], list[FlowProblem]]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    problems: list[FlowProblem] = []
    for p in map(Path, paths):
        if p.is_dir():
            try:
                files += sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
            except OSError as exc:
                problems.append(FlowProblem(str(p), 1, f"cannot list the flow folder: {exc.strerror or exc}"))
        else:
            files.append(p)
    return files, problems


def _check_set(parsed: list[_Parsed]) -> tuple[dict[str, Flow], dict[str, Flow], list[FlowProblem]]:
    problems: list[FlowProblem] = []
    by_name: dict[str, _Parsed] = {}
    for p in parsed:
        if p.name is None:
            continue
        if p.name in by_name:
            first = by_name[p.name]
            problems.append(FlowProblem(p.file, p.name_line, f"flow '{p.name}' is also defined in "
                                        f"{first.file}:{first.name_line}"))
        else:
            by_name[p.name] = p
    numbers: dict[str, tuple[_Parsed, int]] = {}
    for p in parsed:
        for number, line in p.numbers:
            if number in numbers:
                other, other_line = numbers[number]
                problems.append(FlowProblem(p.file, line, f"number '{number}' is already answered by flow "
                                            f"'{other.name}' ({other.file}:{other_line})"))
            else:
                numbers[number] = (p, line)
    called: set[str] = set()
    for p in parsed:
        for node, name, line in p.subflow_refs:
            called.add(name)
            if name not in by_name:
                problems.append(FlowProblem(p.file, line, f"subflow '{name}' does not exist"
                                            f"{_did_you_mean(name, by_name)}", node=node))
    for p in by_name.values():
        if not p.numbers and not p.outbound and p.name not in called:
            problems.append(FlowProblem(p.file, p.name_line, f"flow '{p.name}' answers no number and no flow "
                                        "calls it as a subflow", severity="warning"))
    flows = {name: p.flow for name, p in by_name.items() if p.flow is not None}
    dialled = {number: p.flow for number, (p, _) in numbers.items() if p.flow is not None}
    return flows, dialled, problems


def _collect(paths: Any, catalogue: Catalogue | None) -> tuple[list[FlowProblem], dict[str, Flow], dict[str, Flow]]:
    files, list_problems = _list_files(paths)
    if list_problems:
        return list_problems, {}, {}
    if not files:
        where = ", ".join(str(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths))
        return [FlowProblem(where or ".", 1, "no flow files (*.yaml) found")], {}, {}
    parsed = [_read_file(f, catalogue) for f in files]
    flows, dialled, set_problems = _check_set(parsed)
    problems = [p for item in parsed for p in item.problems] + set_problems
    problems.sort(key=lambda p: (p.file, p.line))
    return problems, flows, dialled


def load_flows(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
               catalogue: Catalogue | None) -> FlowSet:
    """Load every flow under ``paths`` into a ``FlowSet``; ``FlowError`` lists every error."""
    problems, flows, dialled = _collect(paths, catalogue)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise FlowError(errors)
    warnings = tuple(p for p in problems if p.severity == "warning")
    return FlowSet(MappingProxyType(flows), MappingProxyType(dialled), warnings)


def _find_catalogue(paths: Sequence[Path], given: str | os.PathLike[str] | None) -> Path:
    if given is not None:
        p = Path(given)
        return p / "catalog.yaml" if p.is_dir() else p
    if DEFAULT_CATALOGUE.exists():
        return DEFAULT_CATALOGUE
    for p in paths:                      # flows/ and prompts/ side by side in a project
        folder = p if p.is_dir() else p.parent
        candidate = folder.resolve().parent / DEFAULT_CATALOGUE
        if candidate.exists():
            return candidate
    return DEFAULT_CATALOGUE


def validate_paths(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                   catalogue: str | os.PathLike[str] | Catalogue | None = None) -> list[FlowProblem]:
    """Check flow files and folders; return every error and warning, sorted by file and line.

    ``catalogue`` is a ``Catalogue``, a catalogue file or its folder; by default
    ``prompts/catalog.yaml`` in the current folder or beside the flows' folder.
    """
    path_list = [Path(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    if isinstance(catalogue, Catalogue):
        loaded = catalogue
    else:
        try:
            loaded = load_catalogue(_find_catalogue(path_list, catalogue))
        except FlowError as exc:
            return list(exc.problems)
    problems, _, _ = _collect(path_list, loaded)
    return problems + audio_problems(loaded)

