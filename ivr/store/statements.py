"""The SQL both stores run, written once.

Statements use SQLite's ``?`` placeholders; ``numbered`` gives PostgreSQL's ``$1, $2 …``.
Each driver passes its own values (text timestamps for SQLite, ``datetime`` for asyncpg)
in the order of the placeholders.  DDL that differs by database (column types) stays in each
driver's migrations; what is the same text (the event log's indexes) is here.

The event log: events of one instant come back in the order they were recorded (the row
id), and every query below is answered from an index without reading the whole log:

- ``events_call_at`` (call_id, at) — one call's events;
- ``events_agent_at`` (agent_id, at) — one agent's events, and the events after an agent's
  latest state;
- ``events_at`` (at, id) — the line's events since a moment (a restart's horizon);
- ``events_agent_state`` (agent_id, at, id) of ``agent.state`` events only — each agent's
  latest state however old, found by skipping from one agent id to the next in the index
  (one index probe per agent, not a scan of the log);
- ``events_agent_pause`` (agent_id, at, id) of ``agent.pause_after`` events only — the
  pauses asked for after an agent's latest state.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence

from ivr.call import ChatLine
from ivr.wellness.model import Attempt, AttemptResult

__all__ = [
    "CALL_COLUMNS", "INSERT_CALL", "UPSERT_CALL", "INSERT_STARTED", "PROGRESS_CALL",
    "SELECT_CALLS", "ITER_CALLS_FIRST", "ITER_CALLS_NEXT", "ITER_CALLS_FLOW", "ITER_CALLS_ORDER",
    "find_calls", "V10_CALL_COLUMNS", "chat_json", "chat_from_json",
    "CALLER_COLUMNS", "UPSERT_CALLER", "GET_CALLER", "list_callers",
    "V9_REGISTRY_GENERATION", "BUMP_REGISTRY_GENERATION", "GET_REGISTRY_GENERATION",
    "EVENT_COLUMNS", "INSERT_EVENT", "CALL_EVENTS", "AGENT_EVENTS", "LINE_KINDS", "LINE_EVENTS",
    "LATEST_AGENT_EVENTS", "EVENT_INDEXES", "ITER_EVENTS_FIRST", "ITER_EVENTS_NEXT",
    "EVENTS_FOR_CALLS_SQLITE", "EVENTS_FOR_CALLS_POSTGRES",
    "AUDIT_COLUMNS", "INSERT_AUDIT", "AUDIT_ENTRIES", "RESERVATION_COUNTS",
    "RESERVATION_COUNT_KEYS", "V6_INDEXES", "RESERVATION_COLUMNS", "list_reservations",
    "check_batch",
    "WELLNESS_PERSON_COLUMNS", "PUT_WELLNESS_PERSON", "GET_WELLNESS_PERSON",
    "SET_WELLNESS_OPT_OUT", "list_wellness_people", "WELLNESS_CLAIM_COLUMNS",
    "CLAIM_WELLNESS_ATTEMPT", "CLAIM_WELLNESS_ATTEMPT_CAPPED", "claim_wellness_attempt", "RENEW_WELLNESS_CLAIM",
    "TAKE_OVER_WELLNESS_CLAIM", "FINISH_WELLNESS_ATTEMPT",
    "UNFINISHED_WELLNESS_ATTEMPTS", "WELLNESS_IN_PROGRESS", "WELLNESS_ATTEMPT_COLUMNS",
    "wellness_attempts", "WELLNESS_VISIT_COLUMNS", "OPEN_WELLNESS_VISIT",
    "GET_OPEN_WELLNESS_VISIT", "GET_WELLNESS_VISIT", "WELLNESS_VISIT_DONE",
    "CLEAR_WELLNESS_VISITS", "list_wellness_visits", "V7_INDEXES", "visit_history_json",
    "visit_history_from_json",
    "VIDEO_BOOKING_COLUMNS", "V10_VIDEO_INDEXES", "PUT_VIDEO_BOOKING", "GET_VIDEO_BOOKING",
    "VIDEO_SLOT_COUNTS", "USE_VIDEO_BOOKING", "CANCEL_VIDEO_BOOKING", "LIST_VIDEO_BOOKINGS",
    "numbered",
]

# -- calls ------------------------------------------------------------------------------------

CALL_COLUMNS = ("call_id", "caller", "dialled", "started_at", "ended_at", "flow", "flow_version",
                "language", "nodes", "digits", "outcome", "detail", "priority", "reason", "number",
                "exits", "queue", "waited", "channel", "chat", "chat_dropped")
INSERT_CALL = (f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(CALL_COLUMNS))})")
# A finished call: its whole record.
UPSERT_CALL = (INSERT_CALL + " ON CONFLICT (call_id) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in CALL_COLUMNS[1:]))
# A call starting: noted once (repeat callers count it at once).
INSERT_STARTED = INSERT_CALL + " ON CONFLICT (call_id) DO NOTHING"
# A call in progress: what it went through so far (a killed engine's successor reads it);
# a finished record is never overwritten by a late progress note.
_PROGRESS_COLUMNS = ("flow", "flow_version", "language", "nodes", "digits", "priority", "reason", "number",
                     "exits", "queue", "waited", "channel", "chat", "chat_dropped")
PROGRESS_CALL = (INSERT_CALL + " ON CONFLICT (call_id) DO UPDATE SET "
                 + ", ".join(f"{c} = excluded.{c}" for c in _PROGRESS_COLUMNS)
                 + " WHERE calls.outcome IS NULL")

SELECT_CALLS = f"SELECT {', '.join(CALL_COLUMNS)} FROM calls"

# Reading a range of calls oldest first, one page at a time, by the key (started_at, call_id)
# of the index ``calls_started_id``.  Parameters: since, until[, flow], limit; the next
# pages: the last key's started_at and call_id, until[, flow], limit.
ITER_CALLS_FIRST = f"{SELECT_CALLS} WHERE started_at >= ? AND started_at < ?"
ITER_CALLS_NEXT = f"{SELECT_CALLS} WHERE (started_at, call_id) > (?, ?) AND started_at < ?"
ITER_CALLS_FLOW = " AND flow = ?"
ITER_CALLS_ORDER = " ORDER BY started_at, call_id LIMIT ?"


def find_calls(*, since: bool, until: bool, flow: bool, outcome: bool, number: bool,
               after: bool, channel: bool = False) -> str:
    """The calls query with the conditions asked for, newest first.  Parameters in this
    order: since, until, flow, outcome, number, channel, the last key's started_at and
    call_id (of those asked for), limit.  With a number: ``calls_number_started``; else
    ``calls_started_id``, backwards (a channel is checked on the rows read)."""
    conditions = [c for c, wanted in (("started_at >= ?", since), ("started_at < ?", until),
                                      ("flow = ?", flow), ("outcome = ?", outcome),
                                      ("number = ?", number), ("channel = ?", channel),
                                      ("(started_at, call_id) < (?, ?)", after)) if wanted]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"{SELECT_CALLS}{where} ORDER BY started_at DESC, call_id DESC LIMIT ?"


# Version 10: how the caller reached us, and the call's text chat.  The chat is JSON text in
# the call's row (``chat_json``), as the path and the keys are: a record is written whole, an
# idempotent upsert of the call as it was, so a write tried again (or written late) never
# leaves a chat half appended; a call keeps at most 500 lines of at most 1,000 characters.
V10_CALL_COLUMNS = (
    "ALTER TABLE calls ADD COLUMN channel TEXT NOT NULL DEFAULT 'voice'",
    "ALTER TABLE calls ADD COLUMN chat TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE calls ADD COLUMN chat_dropped INTEGER NOT NULL DEFAULT 0",
)
_NO_CHAT = "[]"


def chat_json(chat: Sequence[ChatLine]) -> str:
    """A call's chat as the stores keep it: a JSON list of ``{"at", "sender", "text"}``, times
    in UTC ISO form (naive ones taken as UTC)."""
    if not chat:
        return _NO_CHAT
    return json.dumps([{"at": _utc_iso(line.at), "sender": line.sender, "text": line.text}
                       for line in chat], ensure_ascii=False)


def chat_from_json(text: str | None) -> list[ChatLine]:
    """The chat ``chat_json`` wrote (an empty list for none)."""
    if not text or text == _NO_CHAT:
        return []
    return [ChatLine(dt.datetime.fromisoformat(line["at"]), line["sender"], line["text"])
            for line in json.loads(text)]


def _utc_iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat()


# -- the caller registry ----------------------------------------------------------------------
#
# ``callers``: one row per number, the whole of what the registry says about it; an import
# replaces every column of a number it names.  ``wellness`` (version 8): the wellness campaign
# the caller is on because they live alone, NULL for none.

CALLER_COLUMNS = ("number", "birth_date", "language", "needs_assistance", "name", "updated_at",
                  "wellness")
UPSERT_CALLER = (f"INSERT INTO callers ({', '.join(CALLER_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(CALLER_COLUMNS))}) "
                 "ON CONFLICT (number) DO UPDATE SET "
                 + ", ".join(f"{c} = excluded.{c}" for c in CALLER_COLUMNS[1:]))
_CALLER_SELECT = f"SELECT {', '.join(CALLER_COLUMNS)} FROM callers"
GET_CALLER = f"{_CALLER_SELECT} WHERE number = ?"


def list_callers(*, after: bool) -> str:
    """Callers by number, one page (the primary key's order).  Parameters: [the last number of
    the previous page,] limit."""
    return f"{_CALLER_SELECT}{' WHERE number > ?' if after else ''} ORDER BY number LIMIT ?"


# Version 9: ``registry_generation``, one row, one number, raised in the transaction of every
# write to ``callers``; an engine that caches the registry empties its cache when it sees the
# number change (``ivr.routing.registry.CachedRegistry``), whichever process wrote.
V9_REGISTRY_GENERATION = (
    "CREATE TABLE IF NOT EXISTS registry_generation (generation INTEGER NOT NULL)",
    "INSERT INTO registry_generation (generation) SELECT 0 "
    "WHERE NOT EXISTS (SELECT 1 FROM registry_generation)",
)
BUMP_REGISTRY_GENERATION = "UPDATE registry_generation SET generation = generation + 1"
GET_REGISTRY_GENERATION = "SELECT generation FROM registry_generation"

# -- the event log --------------------------------------------------------------------------

EVENT_COLUMNS = ("at", "kind", "call_id", "agent_id", "queue", "detail")
_SELECT = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"

INSERT_EVENT = (f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))})")

# Parameters: call id.
CALL_EVENTS = f"{_SELECT} WHERE call_id = ? ORDER BY at, id"

# Parameters: agent id, since, limit.
AGENT_EVENTS = f"{_SELECT} WHERE agent_id = ? AND at >= ? ORDER BY at, id LIMIT ?"

# The kinds that say who is in line.  Parameters: since.
LINE_KINDS = ("call.queued", "call.connected", "call.left")
LINE_EVENTS = (f"{_SELECT} WHERE at >= ? "
               f"AND kind IN ({', '.join(repr(k) for k in LINE_KINDS)}) ORDER BY at, id")

# Each agent's latest ``agent.state`` event and the ``agent.pause_after`` events after it,
# oldest first.  No parameters.  The latest states are found by skipping through
# ``events_agent_state`` from one agent id to the next; the pauses asked for after them come
# from ``events_agent_pause`` (a few rows: such pauses are rare and short-lived).
_E = ", ".join(f"e.{c}" for c in EVENT_COLUMNS)
_P = ", ".join(f"p.{c}" for c in EVENT_COLUMNS)
LATEST_AGENT_EVENTS = f"""
WITH RECURSIVE agents (agent_id) AS (
    SELECT min(agent_id) FROM events WHERE kind = 'agent.state'
    UNION ALL
    SELECT (SELECT min(n.agent_id) FROM events n
            WHERE n.kind = 'agent.state' AND n.agent_id > agents.agent_id)
    FROM agents WHERE agents.agent_id IS NOT NULL
),
latest (agent_id, id) AS (
    SELECT agents.agent_id,
           (SELECT l.id FROM events l WHERE l.kind = 'agent.state' AND l.agent_id = agents.agent_id
            ORDER BY l.at DESC, l.id DESC LIMIT 1)
    FROM agents WHERE agents.agent_id IS NOT NULL
)
SELECT {', '.join(EVENT_COLUMNS)} FROM (
    SELECT e.id, {_E} FROM latest JOIN events e ON e.id = latest.id
    UNION ALL
    SELECT p.id, {_P} FROM latest
    JOIN events s ON s.id = latest.id
    JOIN events p ON p.kind = 'agent.pause_after' AND p.agent_id = latest.agent_id
                 AND p.at >= s.at AND (p.at > s.at OR p.id > s.id)
) AS found
ORDER BY at, id
"""

# A range of the log oldest first, a page at a time, by the key (at, id) of ``events_at``.
# Parameters: since, until, limit; the next pages: the last key's at and id, until, limit.
_SELECT_KEYED = f"SELECT id, {', '.join(EVENT_COLUMNS)} FROM events"
ITER_EVENTS_FIRST = f"{_SELECT_KEYED} WHERE at >= ? AND at < ? ORDER BY at, id LIMIT ?"
ITER_EVENTS_NEXT = f"{_SELECT_KEYED} WHERE (at, id) > (?, ?) AND at < ? ORDER BY at, id LIMIT ?"

# The events of many calls at once (``events_call_at`` per call id), one call after another.
# The ids are one parameter: a JSON array (SQLite) or a text array (PostgreSQL).
_FOR_CALLS_ORDER = " ORDER BY call_id, at, id"
EVENTS_FOR_CALLS_SQLITE = (f"{_SELECT} WHERE call_id IN (SELECT value FROM json_each(?))"
                           + _FOR_CALLS_ORDER)
EVENTS_FOR_CALLS_POSTGRES = f"{_SELECT} WHERE call_id = ANY($1::text[])" + _FOR_CALLS_ORDER

# Schema version 5 of both stores.
EVENT_INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_at ON events (at, id)",
    ("CREATE INDEX IF NOT EXISTS events_agent_state ON events (agent_id, at, id) "
     "WHERE kind = 'agent.state'"),
    ("CREATE INDEX IF NOT EXISTS events_agent_pause ON events (agent_id, at, id) "
     "WHERE kind = 'agent.pause_after'"),
)

# -- version 6: the audit log, the reports' and the wallboard's reads ---------------------------

# ``user`` is a reserved word in PostgreSQL: quoted in both.
AUDIT_COLUMNS = ("at", "user", "role", "action", "target", "detail", "source")
_AUDIT_LIST = ", ".join(f'"{c}"' if c == "user" else c for c in AUDIT_COLUMNS)
INSERT_AUDIT = (f"INSERT INTO audit ({_AUDIT_LIST}) "
                f"VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})")
# Parameters: since, limit.
AUDIT_ENTRIES = f"SELECT {_AUDIT_LIST} FROM audit WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?"

# Parameters: now, now, since, since.  Each count is a range of one index.
RESERVATION_COUNTS = """SELECT
    (SELECT count(*) FROM reservations WHERE status = 'pending' AND due_at > ?),
    (SELECT count(*) FROM reservations WHERE status = 'pending' AND due_at <= ?),
    (SELECT count(*) FROM reservations WHERE status = 'claimed'),
    (SELECT count(*) FROM reservations WHERE status = 'failed' AND updated_at >= ?),
    (SELECT count(*) FROM reservations WHERE status = 'done' AND updated_at >= ?)"""
RESERVATION_COUNT_KEYS = ("pending", "due", "in_progress", "failed", "done")

# Schema version 6 of both stores, after the columns and the audit table each driver adds:
# calls by (started_at, call_id) (pages, streams; it replaces the index on started_at alone),
# the audit log by time, the finished reservations by status and time, reservations by booking.
V6_INDEXES = (
    "CREATE INDEX IF NOT EXISTS calls_started_id ON calls (started_at, call_id)",
    "DROP INDEX IF EXISTS calls_started",
    "CREATE INDEX IF NOT EXISTS audit_at ON audit (at, id)",
    "CREATE INDEX IF NOT EXISTS reservations_status_updated ON reservations (status, updated_at)",
    "CREATE INDEX IF NOT EXISTS reservations_created ON reservations (created_at, id)",
)

# -- callback reservations --------------------------------------------------------------------

RESERVATION_COLUMNS = ("id", "number", "queue", "priority", "reason", "language", "waited",
                       "arrived_at", "created_at", "due_at", "slot_end", "status", "attempts",
                       "last_attempt_at", "last_result", "claimed_by", "claim_until", "call_id",
                       "updated_at")


def list_reservations(*, status: bool, after: bool) -> str:
    """The listing, the most recently booked first.  Parameters: [status,] [the last key's
    created_at and id,] limit."""
    conditions = [c for c, wanted in (("status = ?", status),
                                      ("(created_at, id) < (?, ?)", after)) if wanted]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return (f"SELECT {', '.join(RESERVATION_COLUMNS)} FROM reservations{where} "
            "ORDER BY created_at DESC, id DESC LIMIT ?")


def check_batch(batch: int) -> None:
    """What ``iter_calls`` and ``iter_events`` accept as a batch size."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")


def numbered(sql: str) -> str:
    """``sql`` with its ``?`` placeholders as ``$1, $2 …`` (no statement here has a ``?`` in
    a literal)."""
    first, *rest = sql.split("?")
    return first + "".join(f"${i}{part}" for i, part in enumerate(rest, 1))

# -- version 7: wellness calls ------------------------------------------------------------------
#
# ``wellness_people``: whom a campaign rings (one campaign per number).  ``wellness_attempts``:
# one row per attempt, claimed when it starts (``claimed_by``/``claim_until``, no ``result``)
# and finished with its ``result`` and ``at``; at most one unfinished attempt per number (the
# partial unique index ``wellness_attempts_open``), so two engines never ring one person at
# once.  ``wellness_visits``: the home-visit list, at most one open entry per number
# (``wellness_visits_open``); its ``history`` is JSON text (``visit_history_json``).

WELLNESS_PERSON_COLUMNS = ("number", "campaign", "name", "language", "contact", "address_ref",
                           "opt_out", "added_at", "updated_at")
# An import updates a person's details; it never takes back an opt-out (only
# ``set_wellness_opt_out`` does) and keeps the first ``added_at``.
PUT_WELLNESS_PERSON = (
    f"INSERT INTO wellness_people ({', '.join(WELLNESS_PERSON_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(WELLNESS_PERSON_COLUMNS))}) "
    "ON CONFLICT (number) DO UPDATE SET campaign = excluded.campaign, name = excluded.name, "
    "language = excluded.language, contact = excluded.contact, "
    "address_ref = excluded.address_ref, "
    "opt_out = (wellness_people.opt_out OR excluded.opt_out), updated_at = excluded.updated_at")
_PERSON_SELECT = f"SELECT {', '.join(WELLNESS_PERSON_COLUMNS[:-1])} FROM wellness_people"
GET_WELLNESS_PERSON = f"{_PERSON_SELECT} WHERE number = ?"
# Parameters: opt_out, updated_at, number.
SET_WELLNESS_OPT_OUT = "UPDATE wellness_people SET opt_out = ?, updated_at = ? WHERE number = ?"


def list_wellness_people(*, campaign: bool, after: bool) -> str:
    """People by number (``wellness_people_campaign`` for one campaign).  Parameters:
    [campaign,] [the last number of the previous page,] limit."""
    conditions = [c for c, wanted in (("campaign = ?", campaign), ("number > ?", after)) if wanted]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"{_PERSON_SELECT}{where} ORDER BY number LIMIT ?"


WELLNESS_CLAIM_COLUMNS = ("id", "number", "campaign", "claimed_at", "claimed_by", "claim_until")
_CLAIM_LIST = ", ".join(WELLNESS_CLAIM_COLUMNS)
# A new attempt for a person who has not opted out, claimed by its owner; or the person's
# unfinished attempt whose claim lapsed (a dead engine's), taken over with its first
# ``claimed_at``.  No row comes back when another owner's claim still holds (or the person is
# unknown or opted out).  Parameters: now, owner, claim_until, number, False.
CLAIM_WELLNESS_ATTEMPT = (
    "INSERT INTO wellness_attempts (number, campaign, claimed_at, claimed_by, claim_until) "
    "SELECT number, campaign, ?, ?, ? FROM wellness_people WHERE number = ? AND opt_out = ? "
    "ON CONFLICT (number) WHERE result IS NULL DO UPDATE SET "
    "claimed_by = excluded.claimed_by, claim_until = excluded.claim_until "
    "WHERE wellness_attempts.claim_until < excluded.claimed_at "
    f"RETURNING {_CLAIM_LIST}")
# The same, only while fewer than a cap of the person's campaign's claims hold (the
# concurrency cap across engines; the caller serialises claims: SQLite's write lock, an
# advisory lock on PostgreSQL).  Parameters: now, owner, claim_until, number, False, now, cap.
CLAIM_WELLNESS_ATTEMPT_CAPPED = CLAIM_WELLNESS_ATTEMPT.replace(
    "WHERE number = ? AND opt_out = ? ",
    "WHERE number = ? AND opt_out = ? AND (SELECT count(*) FROM wellness_attempts held "
    "WHERE held.campaign = wellness_people.campaign AND held.result IS NULL "
    "AND held.claim_until >= ?) < ? ", 1)
assert CLAIM_WELLNESS_ATTEMPT_CAPPED != CLAIM_WELLNESS_ATTEMPT
# Either of them, only while no attempt on the number finished that started after a moment
# (the caller looked at the person's attempts then: another engine may have reached them
# since, ``wellness_attempts_number_at``).  One more parameter, last: the moment.
_NOT_REACHED_SINCE = ("AND NOT EXISTS (SELECT 1 FROM wellness_attempts done "
                      "WHERE done.number = wellness_people.number AND done.result IS NOT NULL "
                      "AND done.at > ?) ")


@functools.cache
def claim_wellness_attempt(*, capped: bool, fresh: bool) -> str:
    """The claim, with the cap (``capped``) and the check that nobody reached the person since
    the caller looked (``fresh``)."""
    sql = CLAIM_WELLNESS_ATTEMPT_CAPPED if capped else CLAIM_WELLNESS_ATTEMPT
    if not fresh:
        return sql
    checked = sql.replace(" ON CONFLICT (number)", f" {_NOT_REACHED_SINCE}ON CONFLICT (number)", 1)
    assert checked != sql
    return checked


# Parameters: claim_until, id, owner.
RENEW_WELLNESS_CLAIM = ("UPDATE wellness_attempts SET claim_until = ? "
                        "WHERE id = ? AND claimed_by = ? AND result IS NULL")
# A call of the attempt is in this engine's hands (re-adopted after a restart): the attempt is
# this owner's, whoever held it.  Parameters: owner, claim_until, id.
TAKE_OVER_WELLNESS_CLAIM = ("UPDATE wellness_attempts SET claimed_by = ?, claim_until = ? "
                            "WHERE id = ? AND result IS NULL")
# Parameters: result, at, detail, id, owner.
FINISH_WELLNESS_ATTEMPT = ("UPDATE wellness_attempts SET result = ?, at = ?, detail = ?, "
                           "claim_until = NULL WHERE id = ? AND claimed_by = ? AND result IS NULL")
# Every attempt not finished yet (claimed now, or a dead engine's lapsed claim), oldest first.
UNFINISHED_WELLNESS_ATTEMPTS = (f"SELECT {_CLAIM_LIST} FROM wellness_attempts "
                                "WHERE result IS NULL ORDER BY claimed_at, id")
# Parameters: now.  The claims that still hold, per campaign (the concurrency cap).
WELLNESS_IN_PROGRESS = ("SELECT campaign, count(*) FROM wellness_attempts "
                        "WHERE result IS NULL AND claim_until >= ? GROUP BY campaign")

WELLNESS_ATTEMPT_COLUMNS = ("number", "campaign", "at", "result", "detail")


def wellness_attempts(*, number: bool, campaign: bool) -> str:
    """Finished attempts at or after a moment, oldest first (``wellness_attempts_number_at``
    for one number, ``wellness_attempts_at`` else).  Parameters: since, [number,]
    [campaign,] limit."""
    conditions = ["result IS NOT NULL", "at >= ?"]
    conditions += [c for c, wanted in (("number = ?", number), ("campaign = ?", campaign)) if wanted]
    return (f"SELECT {', '.join(WELLNESS_ATTEMPT_COLUMNS)} FROM wellness_attempts "
            f"WHERE {' AND '.join(conditions)} ORDER BY at, id LIMIT ?")


WELLNESS_VISIT_COLUMNS = ("id", "number", "campaign", "since", "history", "done_at", "note",
                          "cleared_at")
_VISIT_SELECT = f"SELECT {', '.join(WELLNESS_VISIT_COLUMNS)} FROM wellness_visits"
_VISIT_OPEN = "done_at IS NULL AND cleared_at IS NULL"
# Parameters: number, campaign, since, history.  Nothing when the number has an open visit.
OPEN_WELLNESS_VISIT = ("INSERT INTO wellness_visits (number, campaign, since, history) "
                       f"VALUES (?, ?, ?, ?) ON CONFLICT (number) WHERE {_VISIT_OPEN} DO NOTHING")
GET_OPEN_WELLNESS_VISIT = f"{_VISIT_SELECT} WHERE number = ? AND {_VISIT_OPEN}"
GET_WELLNESS_VISIT = f"{_VISIT_SELECT} WHERE id = ?"
# Parameters: done_at, note, id.
WELLNESS_VISIT_DONE = f"UPDATE wellness_visits SET done_at = ?, note = ? WHERE id = ? AND {_VISIT_OPEN}"
# Parameters: cleared_at, number.
CLEAR_WELLNESS_VISITS = f"UPDATE wellness_visits SET cleared_at = ? WHERE number = ? AND {_VISIT_OPEN}"


def list_wellness_visits(*, open_only: bool, campaign: bool, number: bool = False) -> str:
    """Visits, the longest waiting first (``wellness_visits_since``).  Parameters:
    [campaign,] [number,] limit."""
    conditions = [c for c, wanted in ((_VISIT_OPEN, open_only), ("campaign = ?", campaign),
                                      ("number = ?", number)) if wanted]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"{_VISIT_SELECT}{where} ORDER BY since, id LIMIT ?"


# Schema version 7 of both stores, after the tables each driver creates.
V7_INDEXES = (
    "CREATE INDEX IF NOT EXISTS wellness_people_campaign ON wellness_people (campaign, number)",
    ("CREATE UNIQUE INDEX IF NOT EXISTS wellness_attempts_open ON wellness_attempts (number) "
     "WHERE result IS NULL"),
    "CREATE INDEX IF NOT EXISTS wellness_attempts_number_at ON wellness_attempts (number, at, id)",
    "CREATE INDEX IF NOT EXISTS wellness_attempts_at ON wellness_attempts (at, id)",
    f"CREATE UNIQUE INDEX IF NOT EXISTS wellness_visits_open ON wellness_visits (number) WHERE {_VISIT_OPEN}",
    "CREATE INDEX IF NOT EXISTS wellness_visits_since ON wellness_visits (since, id)",
)


def visit_history_json(history: Sequence[Attempt]) -> str:
    """A visit's history as the stores keep it (JSON text, times in UTC ISO form)."""
    return json.dumps([{"at": a.at.astimezone(dt.timezone.utc).isoformat(), "result": str(a.result),
                        "detail": a.detail} for a in history], ensure_ascii=False)


def visit_history_from_json(text: str, number: str, campaign: str) -> tuple[Attempt, ...]:
    """The history ``visit_history_json`` wrote, as attempts of ``number`` in ``campaign``."""
    return tuple(Attempt(number=number, campaign=campaign, at=dt.datetime.fromisoformat(a["at"]),
                         result=AttemptResult(a["result"]), detail=a.get("detail"))
                 for a in json.loads(text))


# -- version 10: booked video consultations ---------------------------------------------------
#
# ``video_bookings``: one row per booking, by its code (upper-case).  ``slot_start`` holds at
# most a capacity of places (bookings booked or used): the booking statement counts and inserts
# in one statement, and the caller serialises bookings of one slot (SQLite's write lock, an
# advisory lock per slot on PostgreSQL), so two engines never both take the last place.

VIDEO_BOOKING_COLUMNS = ("code", "slot_start", "slot_end", "topic", "sign_language", "language",
                         "number", "created_at", "status", "call_id", "used_at")
_VIDEO_LIST = ", ".join(VIDEO_BOOKING_COLUMNS)
_VIDEO_SELECT = f"SELECT {_VIDEO_LIST} FROM video_bookings"
_VIDEO_HELD = "status IN ('booked', 'used')"
# Parameters: the booking's columns in the order of VIDEO_BOOKING_COLUMNS, its slot_start
# again, the capacity.  No row is written when the slot is full.
PUT_VIDEO_BOOKING = (
    f"INSERT INTO video_bookings ({_VIDEO_LIST}) "
    f"SELECT {', '.join('?' * len(VIDEO_BOOKING_COLUMNS))} "
    f"WHERE (SELECT count(*) FROM video_bookings WHERE slot_start = ? AND {_VIDEO_HELD}) < ?")
# Parameters: code.
GET_VIDEO_BOOKING = f"{_VIDEO_SELECT} WHERE code = ?"
# Parameters: since, until.  The places held per slot.
VIDEO_SLOT_COUNTS = ("SELECT slot_start, count(*) FROM video_bookings "
                     f"WHERE slot_start >= ? AND slot_start < ? AND {_VIDEO_HELD} "
                     "GROUP BY slot_start ORDER BY slot_start")
# Parameters: call_id, used_at, code.
USE_VIDEO_BOOKING = ("UPDATE video_bookings SET status = 'used', call_id = ?, used_at = ? "
                     f"WHERE code = ? AND {_VIDEO_HELD} RETURNING {_VIDEO_LIST}")
# Parameters: code.
CANCEL_VIDEO_BOOKING = f"UPDATE video_bookings SET status = 'cancelled' WHERE code = ? AND {_VIDEO_HELD}"
# Parameters: since, until, limit.
LIST_VIDEO_BOOKINGS = (f"{_VIDEO_SELECT} WHERE slot_start >= ? AND slot_start < ? "
                       "ORDER BY slot_start, created_at, code LIMIT ?")

# Schema version 10 of both stores, after the table each driver creates: a slot's bookings
# (the capacity count, the counts per slot, the listing by slot).
V10_VIDEO_INDEXES = (
    "CREATE INDEX IF NOT EXISTS video_bookings_slot ON video_bookings (slot_start, status)",
)
