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

__all__ = [
    "CALL_COLUMNS", "INSERT_CALL", "UPSERT_CALL", "INSERT_STARTED", "PROGRESS_CALL",
    "EVENT_COLUMNS", "INSERT_EVENT", "CALL_EVENTS", "AGENT_EVENTS", "LINE_KINDS", "LINE_EVENTS",
    "LATEST_AGENT_EVENTS", "EVENT_INDEXES", "numbered",
]

# -- calls ------------------------------------------------------------------------------------

CALL_COLUMNS = ("call_id", "caller", "dialled", "started_at", "ended_at", "flow", "flow_version",
                "language", "nodes", "digits", "outcome", "detail", "priority", "reason", "number")
INSERT_CALL = (f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(CALL_COLUMNS))})")
# A finished call: its whole record.
UPSERT_CALL = (INSERT_CALL + " ON CONFLICT (call_id) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in CALL_COLUMNS[1:]))
# A call starting: noted once (repeat callers count it at once).
INSERT_STARTED = INSERT_CALL + " ON CONFLICT (call_id) DO NOTHING"
# A call in progress: what it went through so far (a killed engine's successor reads it);
# a finished record is never overwritten by a late progress note.
_PROGRESS_COLUMNS = ("flow", "flow_version", "language", "nodes", "digits", "priority", "reason", "number")
PROGRESS_CALL = (INSERT_CALL + " ON CONFLICT (call_id) DO UPDATE SET "
                 + ", ".join(f"{c} = excluded.{c}" for c in _PROGRESS_COLUMNS)
                 + " WHERE calls.outcome IS NULL")

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

# Schema version 5 of both stores.
EVENT_INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_at ON events (at, id)",
    ("CREATE INDEX IF NOT EXISTS events_agent_state ON events (agent_id, at, id) "
     "WHERE kind = 'agent.state'"),
    ("CREATE INDEX IF NOT EXISTS events_agent_pause ON events (agent_id, at, id) "
     "WHERE kind = 'agent.pause_after'"),
)


def numbered(sql: str) -> str:
    """``sql`` with its ``?`` placeholders as ``$1, $2 …`` (no statement here has a ``?`` in
    a literal)."""
    first, *rest = sql.split("?")
    return first + "".join(f"${i}{part}" for i, part in enumerate(rest, 1))
