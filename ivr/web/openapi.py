"""The operator API's description: OpenAPI 3.1, written once here, served by ``ivr.web.api``.

``openapi_document()`` is ``GET /api/v1/openapi.json``; ``docs_page()`` is ``GET /api/v1/docs``,
a self-contained HTML page listing the operations, their parameters and answers (no script,
nothing fetched).  The schemas are JSON Schema 2020-12 (as OpenAPI 3.1 has them) and close
their objects (``additionalProperties: false``): the tests validate every answer against them.
"""

from __future__ import annotations

import copy
import functools
import html
from typing import Any

from ivr.acd.model import AgentState
from ivr.call import CHANNELS, CHAT_LINES_MAX, CHAT_SENDERS, CHAT_TEXT_MAX, Outcome
from ivr.callbacks.model import STATUSES

__all__ = ["MAX_LIMIT", "VERSION", "docs_page", "openapi_document"]

VERSION = "1.0.0"
MAX_LIMIT = 500                       # items per page, at most

JSON = "application/json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _null(kind: str, **more: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **more}


def _object(properties: dict[str, Any], *, description: str = "",
            optional: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object", "properties": properties,
        "required": [k for k in properties if k not in optional], "additionalProperties": False}
    if description:
        schema["description"] = description
    return schema


def _page(item: str, what: str) -> dict[str, Any]:
    return _object({
        "items": {"type": "array", "items": _ref(item)},
        "next": _null("string", description="Pass as `cursor` for the next page; null on the "
                                            "last page."),
    }, description=f"One page of {what}.")


TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = _null("string", format="date-time")

_CALL: dict[str, Any] = {
    "id": {"type": "string"},
    "started_at": TIME,
    "ended_at": {**TIME_OR_NULL, "description": "null while the call is in progress"},
    "caller": {"type": "string", "description": "Caller ID as presented, masked "
                                                "(empty when withheld)."},
    "number": _null("string", description="The caller's number (E.164), masked; null "
                                          "when unknown or withheld."),
    "dialled": {"type": "string", "description": "The service number the caller dialled."},
    "flow": _null("string"),
    "flow_version": _null("string"),
    "language": _null("string"),
    "priority": _null("string"),
    "reason": _null("string", description="Why the call was routed so, e.g. "
                                          "`bypass: elderly`."),
    "outcome": {"type": ["string", "null"], "enum": [*map(str, Outcome), None],
                "description": "How the call ended; null while in progress."},
    "detail": {"type": "string"},
    "queue": _null("string", description="The queue the call was handed to (the last, "
                                         "after an overflow)."),
    "waited": _null("number", description="Seconds in the queue."),
    "channel": {"type": "string", "enum": list(CHANNELS),
                "description": "How the caller reached us: `voice` (a phone call) or `video` "
                               "(the sign-language video entrance)."},
    "chat": {"type": "array", "items": _ref("ChatLine"),
             "description": f"The call's text chat, oldest first (at most {CHAT_LINES_MAX} "
                            "lines)."},
    "chat_dropped": {"type": "integer", "minimum": 0,
                     "description": "Chat lines said after the ones kept, not kept."},
}

_SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": {"type": "string", "description": "What was wrong, for a person."}}),
    "Call": _object(_CALL, description="A call as the store keeps it; numbers masked."),
    "ChatLine": _object({
        "at": TIME,
        "sender": {"type": "string", "enum": list(CHAT_SENDERS)},
        "text": {"type": "string", "maxLength": CHAT_TEXT_MAX},
    }, description="One line of a call's text chat."),
    "Step": _object({
        "node": {"type": "string"},
        "exit": _null("string", description="How the call left the node: next, key, timeout, "
                                            "invalid, hangup, queue, transfer, end, error, "
                                            "lost; null when not recorded."),
    }),
    "QueueEvent": _object({
        "at": TIME,
        "kind": {"type": "string", "description": "call.queued, call.offered, call.connected, "
                                                  "call.left …"},
        "agent": _null("string"),
        "queue": _null("string"),
        "detail": {"type": "string"},
    }),
    "CallDetail": _object({
        **_CALL,
        "path": {"type": "array", "items": _ref("Step"),
                 "description": "The nodes in the order visited, with how each was left."},
        "keys": {"type": "array", "items": {"type": "string"}, "description": "Keys pressed."},
        "events": {"type": "array", "items": _ref("QueueEvent")},
    }, description="A call with its path through the flow, the keys pressed and its queue "
                   "events."),
    "CallPage": _page("Call", "calls, newest first"),
    "Queue": _object({
        "name": {"type": "string"},
        "waiting": {"type": "integer", "minimum": 0},
        "by_priority": {"type": "object", "additionalProperties": {"type": "integer"},
                        "description": "Callers waiting per priority."},
        "ringing": {"type": "integer", "minimum": 0, "description": "Callers an agent's "
                                                                    "phone rings for."},
        "oldest_wait": {"type": "number", "minimum": 0, "description": "Seconds."},
        "estimated_wait": _null("integer", description="Seconds a caller joining now would "
                                                       "be told; null when nobody is on duty."),
        "staffed": {"type": "integer", "minimum": 0, "description": "Agents logged in and "
                                                                    "not paused."},
        "paused": {"type": "integer", "minimum": 0},
        "available": {"type": "integer", "minimum": 0, "description": "Agents free now."},
    }, description="A queue as it is now."),
    "QueueBoard": _object({"as_of": TIME, "items": {"type": "array", "items": _ref("Queue")}}),
    "Agent": _object({
        "id": {"type": "string"},
        "name": {"type": "string"},
        "endpoint": {"type": "string"},
        "center": _null("string"),
        "skills": {"type": "array", "items": {"type": "string"}},
        "state": {"type": "string", "enum": [str(s) for s in AgentState]},
        "for_seconds": _null("number", description="Seconds in this state; null when never "
                                                   "logged in since the engine started."),
        "reason": _null("string", description="Why paused."),
        "call": _null("string", description="The call ringing or connected."),
        "handled": {"type": "integer", "minimum": 0},
    }),
    "AgentPage": _page("Agent", "agents, by id"),
    "Reservation": _object({
        "id": {"type": "string"},
        "number": {"type": "string", "description": "Masked."},
        "queue": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "priority": _null("string"),
        "reason": _null("string"),
        "language": {"type": "string"},
        "waited": {"type": "number", "description": "Seconds waited in line before booking."},
        "arrived_at": TIME,
        "created_at": TIME,
        "due_at": TIME,
        "slot_end": TIME_OR_NULL,
        "attempts": {"type": "integer", "minimum": 0},
        "last_attempt_at": TIME_OR_NULL,
        "last_result": _null("string"),
        "claimed_by": _null("string"),
        "claim_until": TIME_OR_NULL,
        "call_id": _null("string"),
        "updated_at": TIME,
    }, description="A callback reservation; number masked."),
    "ReservationPage": _page("Reservation", "callback reservations, the most recently "
                                            "booked first"),
    "PauseBody": {"type": "object", "properties": {
        "reason": {"type": "string", "maxLength": 200, "description": "Default `paused`."}}},
    # The unversioned answers of before.
    "AgentList": {"type": "array", "items": _ref("Agent")},
    "Snapshot": {"type": "object", "description": "The queues' raw snapshot: `as_of`, "
                                                  "`queues`, `agents`.",
                 "required": ["as_of", "queues", "agents"]},
    "CallbackList": {"type": "array", "items": _object({
        "id": {"type": "string"}, "number": {"type": "string"}, "queue": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)}, "due_at": TIME,
        "attempts": {"type": "integer"}, "last_result": _null("string"),
        "waited": {"type": "number"}, "reason": _null("string")})},
    "Cancelled": _object({"cancelled": {"type": "string"}}),
    "WellnessStatus": _object({
        "as_of": TIME,
        "campaigns": {"type": "array", "items": _object({
            "name": {"type": "string"},
            "open": {"type": "boolean", "description": "Inside the campaign's window now."},
            "next_open": TIME_OR_NULL,
            "paused": {"type": "boolean", "description": "Paused by a surge of the inbound line."},
            "flow_problem": _null("string", description="Why the flow cannot serve the campaign."),
            "ringing": {"type": "integer", "description": "Calls of this engine in progress."},
            "max_concurrent": {"type": "integer"}})},
        "visits_open": _null("integer", description="The home-visit list's length."),
        "last_poll": TIME_OR_NULL,
    }, description="What the wellness dialler is doing now."),
    "RunNowBody": {"type": "object", "properties": {
        "number": {"type": "string", "description": "Ring this person now (inside the window, "
                                                    "not reached today, tries left; the retry "
                                                    "delay waived). Without: look at once."}}},
    "RunNow": _object({"looking": {"type": "boolean"}, "number": _null("string")}),
    "VisitList": _object({"items": {"type": "array", "items": _object({
        "id": {"type": "integer"}, "number": {"type": "string"}, "campaign": {"type": "string"},
        "since": TIME, "open": {"type": "boolean"}, "done_at": TIME_OR_NULL,
        "note": _null("string"), "cleared_at": TIME_OR_NULL,
        "history": {"type": "array", "items": _object({
            "at": TIME, "result": {"type": "string"}, "detail": _null("string")})}},
        description="A home visit; number masked (the full details: 'ivr wellness visits "
                    "--full').")}}),
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


_RESPONSES = {
    "BadRequest": _error("A query parameter or the body does not fit; `error` says what would."),
    "Unauthorized": _error("Missing or wrong bearer token."),
    "NotFound": _error("No such call, agent, reservation or path, or the part is not "
                       "configured."),
    "Conflict": _error("The state does not allow the action."),
    "InternalError": _error("An unexpected failure; the engine's log has the details."),
}


def _param(name: str, where: str, description: str, schema: dict[str, Any],
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "required": required,
            "schema": schema}


def _limit(default: int) -> dict[str, Any]:
    return _param("limit", "query", "Items per page.",
                  {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": default})


_PARAMETERS = {
    "since": _param("since", "query", "Calls that started at or after this (ISO 8601 date or "
                                      "time; without an offset, in the center's time zone, callers.timezone).",
                    {"type": "string", "examples": ["2026-03-10", "2026-03-10T09:00+09:00"]}),
    "until": _param("until", "query", "Calls that started before this (as `since`).",
                    {"type": "string", "examples": ["2026-03-11"]}),
    "flow": _param("flow", "query", "The flow's name.", {"type": "string"}),
    "outcome": _param("outcome", "query", "How the call ended.",
                      {"type": "string", "enum": [str(o) for o in Outcome]}),
    "number": _param("number", "query", "The caller's number in any spelling "
                                        "(`010-1234-5678`, `+82 10 1234 5678`); a number "
                                        "without `+` is read as dialled in `callers.region`.",
                     {"type": "string"}),
    "channel": _param("channel", "query", "How the caller reached us: `voice` (a phone) or `video` "
                                          "(the video entrance's page or a video phone).",
                      {"type": "string", "enum": list(CHANNELS)}),
    "cursor": _param("cursor", "query", "The `next` of the previous page.", {"type": "string"}),
    "center": _param("center", "query", "Agents of this center.", {"type": "string"}),
    "state": _param("state", "query", "Agents in this state.",
                    {"type": "string", "enum": [str(s) for s in AgentState]}),
    "status": _param("status", "query", "Reservations of this status.",
                     {"type": "string", "enum": list(STATUSES)}),
    "campaign": _param("campaign", "query", "Visits of this wellness campaign.", {"type": "string"}),
    "all": _param("all", "query", "`true`: ended visits too.", {"type": "string", "enum": ["true", "false"]}),
    "call_id": _param("call_id", "path", "", {"type": "string"}, required=True),
    "agent_id": _param("agent_id", "path", "", {"type": "string"}, required=True),
    "reservation_id": _param("reservation_id", "path", "", {"type": "string"}, required=True),
}


def _op(op_id: str, summary: str, answer: str, *, params: tuple[str, ...] = (),
        limit: int | None = None, errors: tuple[str, ...] = (), body: str | None = None,
        deprecated: bool = False, description: str = "") -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {JSON: {"schema": _ref(answer)}}}}
    for code, name in (("400", "BadRequest"), ("404", "NotFound"), ("409", "Conflict")):
        if name in errors:
            responses[code] = {"$ref": f"#/components/responses/{name}"}
    responses["401"] = {"$ref": "#/components/responses/Unauthorized"}
    responses["500"] = {"$ref": "#/components/responses/InternalError"}
    op: dict[str, Any] = {
        "operationId": op_id, "summary": summary,
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in params]
        + ([_limit(limit)] if limit is not None else []),
        "responses": dict(sorted(responses.items())),
    }
    if description:
        op["description"] = description
    if body is not None:
        op["requestBody"] = {"required": False, "content": {JSON: {"schema": _ref(body)}}}
    if deprecated:
        op["deprecated"] = True
    return op


def _agent_actions(prefix: str, deprecated: bool) -> dict[str, Any]:
    what = {"login": "Log an agent in.",
            "logout": "Log an agent out (409 while it rings or is on a call).",
            "pause": "Pause an agent (during a call: when the call ends).",
            "resume": "Resume a paused agent (or call off a pause asked for during a call)."}
    paths = {}
    for action, summary in what.items():
        paths[f"{prefix}/agents/{{agent_id}}/{action}"] = {"post": _op(
            f"{'legacy_' if deprecated else ''}agent_{action}", summary, "Agent",
            params=("agent_id",), errors=("BadRequest", "NotFound", "Conflict"),
            body="PauseBody" if action == "pause" else None, deprecated=deprecated)}
    return paths


_PATHS: dict[str, Any] = {
    "/v1/calls": {"get": _op(
        "list_calls", "Calls, newest first, in pages.", "CallPage",
        params=("since", "until", "flow", "outcome", "number", "channel", "cursor"), limit=50,
        errors=("BadRequest", "NotFound"),
        description="Keyset pages: stable while calls arrive (a call arriving meanwhile is "
                    "newer than every page already started; no call is on two pages).")},
    "/v1/calls/{call_id}": {"get": _op(
        "get_call", "One call: its path through the flow (nodes and exits), keys, outcome, "
                    "queue, wait and queue events.", "CallDetail",
        params=("call_id",), errors=("NotFound",))},
    "/v1/queues": {"get": _op(
        "list_queues", "Every queue now: waiting by priority, oldest wait, estimate, staffed.",
        "QueueBoard", errors=("BadRequest", "NotFound"))},
    "/v1/agents": {"get": _op(
        "list_agents", "Agents by id, in pages.", "AgentPage",
        params=("center", "state", "cursor"), limit=200, errors=("BadRequest", "NotFound"))},
    **_agent_actions("/v1", deprecated=False),
    "/v1/reservations": {"get": _op(
        "list_reservations", "Callback reservations, the most recently booked first, in pages.",
        "ReservationPage", params=("status", "cursor"), limit=100,
        errors=("BadRequest", "NotFound"))},
    "/v1/reservations/{reservation_id}/cancel": {"post": _op(
        "cancel_reservation", "Cancel a pending reservation (or one being dialled: the call "
                              "back is stopped).", "Reservation",
        params=("reservation_id",), errors=("NotFound", "Conflict"))},
    "/v1/wellness": {"get": _op(
        "wellness_status", "The wellness campaigns now: window, surge pause, calls in progress.",
        "WellnessStatus", errors=("NotFound",))},
    "/v1/wellness/run-now": {"post": _op(
        "wellness_run_now", "Look at the wellness campaigns at once, or ring one person now.",
        "RunNow", body="RunNowBody", errors=("BadRequest", "NotFound"))},
    "/v1/wellness/visits": {"get": _op(
        "wellness_visits", "The home-visit list, the longest waiting first.", "VisitList",
        params=("campaign", "all"), limit=200, errors=("BadRequest", "NotFound"))},
    "/v1/openapi.json": {"get": {
        "operationId": "openapi", "summary": "This description.",
        "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {
            "type": "object"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
    "/v1/docs": {"get": {
        "operationId": "docs", "summary": "The operations, as a page for people.",
        "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {
            "type": "string"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
    "/agents": {"get": _op("legacy_list_agents", "Every agent (deprecated: /v1/agents).",
                           "AgentList", errors=("NotFound",), deprecated=True)},
    **_agent_actions("", deprecated=True),
    "/queues": {"get": _op("legacy_queues", "The queues' snapshot (deprecated: /v1/queues).",
                           "Snapshot", errors=("NotFound",), deprecated=True)},
    "/callbacks": {"get": _op(
        "legacy_list_callbacks", "Reservations (deprecated: /v1/reservations).", "CallbackList",
        params=("status",), errors=("BadRequest", "NotFound"), deprecated=True)},
    "/callbacks/{reservation_id}/cancel": {"post": _op(
        "legacy_cancel_callback", "Cancel a reservation (deprecated: "
                                  "/v1/reservations/{id}/cancel).", "Cancelled",
        params=("reservation_id",), errors=("NotFound",), deprecated=True)},
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "ivr operator API", "version": VERSION,
        "description": "Calls, queues, agents and callback reservations of a running engine. "
                       "Every listing is a page `{items, next}`; phone numbers are masked. "
                       "Errors are `{\"error\": \"...\"}`, also 404 for a path that is not here and 405 "
                       "(with `Allow`) for a method a path does not take. The paths without "
                       "`/v1` are the API "
                       "of before, kept for old scripts, deprecated.",
    },
    "servers": [{"url": "/api"}],
    "security": [{"bearer": []}],
    "paths": _PATHS,
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "The admin token (admin.token_file, "
                                                      "IVR_ADMIN_TOKEN)."}},
        "schemas": _SCHEMAS, "responses": _RESPONSES, "parameters": _PARAMETERS,
    },
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description (a copy: the caller may change it)."""
    return copy.deepcopy(_DOCUMENT)


@functools.cache
def docs_page() -> str:
    """The operations as one self-contained HTML page."""
    e = html.escape
    rows = []
    for path, ops in _PATHS.items():
        for method, op in ops.items():
            params = []
            for p in op.get("parameters", []):
                spec = _PARAMETERS[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p
                kind = spec["schema"].get("enum") or spec["schema"].get("type")
                kinds = " | ".join(kind) if isinstance(kind, list) else kind
                params.append(f"<li><code>{e(spec['name'])}</code> ({e(spec['in'])}, "
                              f"{e(str(kinds))}) {e(spec['description'])}</li>")
            codes = ", ".join(op["responses"])
            old = ' <em>deprecated</em>' if op.get("deprecated") else ""
            rows.append(f"<tr><td><b>{method.upper()}</b></td><td><code>/api{e(path)}</code>"
                        f"{old}</td><td>{e(op['summary'])}"
                        f"{'<ul>' + ''.join(params) + '</ul>' if params else ''}</td>"
                        f"<td>{e(codes)}</td></tr>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<title>ivr operator API</title><style>body{font-family:sans-serif;margin:2em}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.4em;"
            "vertical-align:top;text-align:left}ul{margin:.3em 0;padding-left:1.2em}</style>"
            f"</head><body><h1>ivr operator API {VERSION}</h1>"
            f"<p>{e(_DOCUMENT['info']['description'])}</p>"
            "<p>Every request: <code>Authorization: Bearer &lt;admin token&gt;</code>. "
            "The full description: <a href=\"openapi.json\">openapi.json</a> (OpenAPI 3.1).</p>"
            "<table><tr><th>method</th><th>path</th><th>what</th><th>answers</th></tr>"
            + "".join(rows) + "</table></body></html>")
