"""A JSON Schema for flow files, built from the loader's own tables (``TOP_KEYS``,
``NODE_KEYS`` …), so editors (VS Code's YAML extension: ``# yaml-language-server:
$schema=…``) complete keys and flag unknown ones.  The loader stays the judge: it checks what a
schema cannot (targets exist, expressions compile, prompts are in the catalogue)."""

from __future__ import annotations

from typing import Any

from ivr.flow.loader import (BYPASS_KEYS, NODE_KEYS, NOTE, REPEAT_KEYS, TOP_KEYS)
from ivr.flow.say import KINDS

__all__ = ["flow_schema"]

_NODE_NAME = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]*$"}
_PROMPT = {"type": "string", "pattern": "^[^@]+(@[a-z]{2,3})?$"}
_PROMPTS = {"anyOf": [_PROMPT, {"type": "array", "items": _PROMPT}],
            "description": "a prompt id (welcome), or one in a fixed language (welcome@en), or a list of "
                           "them (prompts/catalog.yaml)"}
_SECONDS = {"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                      {"type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*(ms|s)?\\s*$"}],
            "description": "seconds: 5, \"5s\" or \"1500ms\""}
_DURATION = {"anyOf": [{"type": "number", "minimum": 0},
                       {"type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*(d|h|m|s)\\s*$"}],
             "description": "a time: 300, 5m, 48h or 7d"}
_EXPR = {"type": ["string", "number", "boolean", "null"], "description": "an expression (docs/flows.md)"}

# What each key of a node holds; keys not listed here take text.
_VALUES: dict[str, Any] = {
    "play": _PROMPTS, "menu": _PROMPTS, "gather": _PROMPTS, "hangup": {**_PROMPTS, "type": ["string", "array", "null"]},
    "say": {"enum": list(KINDS)}, "set": {"type": "object", "additionalProperties": _EXPR},
    "branch": {"type": "array", "items": {"type": "object", "properties": {"if": _EXPR, "goto": _NODE_NAME},
                                          "required": ["if", "goto"], "additionalProperties": False}},
    "goto": _NODE_NAME, "subflow": _NODE_NAME, "return": {"type": "null"}, "queue": {"type": "string"},
    "transfer": {"type": "string"}, "cancel_callback": {"type": ["string", "null"]},
    "next": _NODE_NAME, "else": _NODE_NAME, "on_fail": _NODE_NAME, "none": _NODE_NAME,
    "barge_in": {"type": "boolean"}, "private": {"type": "boolean"},
    "options": {"type": "object", "propertyNames": {"pattern": "^[0-9*#]$"},
                "additionalProperties": _NODE_NAME, "description": "key pressed → node"},
    "timeout": _SECONDS, "inter_digit_timeout": _SECONDS,
    "retries": {"type": "integer", "minimum": 0, "maximum": 9},
    "digits": {"type": "integer", "minimum": 1}, "min": {"type": "integer", "minimum": 1},
    "max": {"type": "integer", "minimum": 1}, "priority": {"type": ["string", "integer"]},
    "invalid": _PROMPTS, "no_input": _PROMPTS, "prompt": _PROMPTS, "before": _PROMPTS, "after": _PROMPTS,
    "valid": _EXPR, "value": _EXPR, "extension": {"type": ["string", "integer"]},
    "callback": {"type": "object", "additionalProperties": False,
                 "properties": {"above": _DURATION, "after": _DURATION, "repeat": _DURATION,
                                "key": {"type": ["string", "integer"]}, NOTE: {"type": "string"}}},
    NOTE: {"type": "string", "description": "a note for authors; ignored by the engine"},
}


def _node_schema(kind: str) -> dict[str, Any]:
    keys = (kind, *NODE_KEYS[kind], NOTE)
    return {"type": "object", "required": [kind], "additionalProperties": False,
            "properties": {k: _VALUES.get(k, {"type": ["string", "number"]}) for k in keys}}


def flow_schema() -> dict[str, Any]:
    top: dict[str, Any] = {
        "flow": _NODE_NAME, "description": {"type": "string"},
        "numbers": {"type": "array", "items": {"type": "string"}, "description": "dialled numbers (quote them)"},
        "outbound": {"type": "boolean", "description": "true: the engine dials out with this flow (wellness "
                     "calls); it answers no number"},
        "entry": _NODE_NAME, "language": {"enum": ["ko", "en", "zh", "vi"]},
        "vars": {"type": "object"},
        "caller": {"type": "object", "additionalProperties": False, "properties": {
            "repeat": {"type": "object", "additionalProperties": False, "properties": {
                "calls": {"type": "integer", "minimum": 1}, "within": _DURATION,
                "count": {"enum": ["all", "unserved"]}}}}},
        "bypass": {"type": "array", "items": {
            "type": "object", "required": ["if", "queue"], "additionalProperties": False,
            "properties": {k: (_EXPR if k == "if" else _PROMPTS if k == "prompt" else {"type": "string"})
                           for k in BYPASS_KEYS}}},
        "nodes": {"type": "object", "propertyNames": _NODE_NAME,
                  "additionalProperties": {"oneOf": [_node_schema(k) for k in NODE_KEYS]}},
    }
    assert set(top) == set(TOP_KEYS) and set(REPEAT_KEYS) == {"calls", "within", "count"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://ivr.example/schemas/flow.json", "title": "ivr flow file",
            "type": "object", "required": ["flow", "entry", "nodes"], "additionalProperties": False,
            "properties": top}


def cases_schema() -> dict[str, Any]:
    """The JSON Schema of scripted flow tests (``flows/tests/*.yaml``, run by ``ivr test-flows``)."""
    from ivr.simulate import CALLER_KEYS, CASE_KEYS, EXPECT_KEYS, FILE_KEYS

    key = {"anyOf": [{"type": "string", "pattern": "^([0-9*#]+|-)$"}, {"type": "integer", "minimum": 0}]}
    caller = {"number": {"type": "string"}, "age": {"type": ["integer", "null"], "minimum": 0},
              "recent_calls": {"type": "integer", "minimum": 1},
              "language": {"enum": ["ko", "en", "zh", "vi"]},
              "needs_assistance": {"type": "boolean"}, "anonymous": {"type": "boolean"}}
    expect = {"path": {"type": "array", "items": {"type": "string"},
                       "description": "the nodes visited, in order (subflow nodes as flow/node; bypass)"},
              "outcome": {"enum": ["completed", "caller_hangup", "queued", "transferred", "retries_exhausted",
                                   "error"]},
              "detail": {"type": "string"}, "reason": {"type": "string"}, "priority": {"type": "string"},
              "language": {"enum": ["ko", "en", "zh", "vi"]},
              "heard": {"type": "array", "items": {"type": "string"},
                        "description": "prompt ids heard in this order (others may come between)"}}
    case = {"name": {"type": "string"}, "flow": {"type": "string"},
            "caller": {"type": "object", "additionalProperties": False, "properties": caller},
            "keys": {"type": "array", "items": key,
                     "description": "keys at each wait, in order; '-' lets a wait time out"},
            "expect": {"type": "object", "additionalProperties": False, "properties": expect}}
    assert (list(caller), list(expect), list(case)) == (list(CALLER_KEYS), list(EXPECT_KEYS), list(CASE_KEYS))
    top = {"flow": {"type": "string", "description": "the flow's name (or a number it answers)"},
           "cases": {"type": "array", "items": {"type": "object", "required": ["expect"],
                                                "additionalProperties": False, "properties": case}}}
    assert list(top) == list(FILE_KEYS)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://ivr.example/schemas/flow-cases.json", "title": "ivr scripted flow tests",
            "type": "object", "required": ["flow", "cases"], "additionalProperties": False, "properties": top}
