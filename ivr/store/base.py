"""The store interface the services use, and the values it keeps."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from ivr.call import CallRecord
from ivr.callbacks.model import Reservation
from ivr.wellness.model import Attempt, AttemptResult, Person, Visit

# Outcomes that mean a person served the caller ("unserved" calls are all the others).
SERVED_OUTCOMES = frozenset({"agent_connected"})
# ``dialled`` of the calls the engine places to ring a wellness person: not calls from them, so
# they never make the person a repeat caller.
OUTBOUND_DIALLED = "wellness"


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """What the center knows about a phone number's owner (the caller registry)."""

    number: str                               # E.164, e.g. +821012345678
    birth_date: dt.date | None = None
    language: str | None = None               # preferred prompt language: ko, en, zh, vi
    needs_assistance: bool = False
    name: str | None = None
    # The wellness campaign the caller is on because they live alone (None: on none);
    # ``ivr wellness import --from-registry`` makes them a person of it.
    wellness: str | None = None
    updated_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class QueueEvent:
    """One change of a call's or an agent's state in a queue, as the event log keeps it.

    Kinds: ``call.queued``, ``call.offered``, ``call.connected``, ``call.left`` (``call_id`` set,
    ``agent_id`` when an agent is involved), ``agent.state`` (``agent_id`` set, the new state
    and its reason in ``detail``) and ``agent.pause_after``; ``ivr.acd.model.Event`` says what
    each detail holds.  ``at`` is an aware UTC datetime (a naive one is taken as UTC when
    stored); events read back are in UTC.
    """

    at: dt.datetime
    kind: str
    call_id: str | None = None
    agent_id: str | None = None
    queue: str | None = None
    detail: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class CallQuery:
    """Which calls ``Store.find_calls`` returns: every given field must match.

    ``since``/``until``: ``started_at`` in [since, until); ``number``: the caller's number in
    E.164 (the API normalises any spelling first); ``outcome``: an ``Outcome`` value;
    ``channel``: ``voice`` or ``video`` (``ivr.call.CHANNELS``; it narrows the other conditions,
    no index of its own)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    flow: str | None = None
    outcome: str | None = None
    number: str | None = None
    channel: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the supervisors' audit log: who did what, when, from where.

    ``action``: ``login``, ``login_refused``, ``logout``, ``agent.pause``, ``agent.resume``,
    ``agent.logout``, ``callback.cancel``, ``caller.view`` …; ``target``: the agent id,
    reservation id or call id acted on; ``detail``: the outcome or the reason given."""

    at: dt.datetime
    user: str
    role: str
    action: str
    target: str | None = None
    detail: str = ""
    source: str | None = None        # the client's address


@dataclasses.dataclass(frozen=True, slots=True)
class WellnessClaim:
    """An unfinished wellness attempt and who holds it.  ``claimed_at`` is when the attempt
    was first claimed: a claim taken over from a dead engine keeps it (``taken_over``), so the
    dialler knows the person may have been rung already."""

    id: int
    number: str
    campaign: str
    claimed_at: dt.datetime
    claimed_by: str
    claim_until: dt.datetime | None
    taken_over: bool = False


VIDEO_BOOKING_STATUSES = ("booked", "used", "cancelled")
# The statuses that hold a place in a slot.
VIDEO_BOOKING_HELD = ("booked", "used")


@dataclasses.dataclass(frozen=True, slots=True)
class VideoBooking:
    """A video consultation booked at a time slot (the sign-language video entrance).

    ``code`` is what the caller enters on the page: the stores keep it upper-case and find it
    whatever its case.  Times are aware (naive ones are taken as UTC when stored) and read back
    in UTC.  ``number``: the caller's number in E.164, None when not given.  ``status``:
    ``booked``, ``used`` (a call used it: ``call_id`` is the last such call, ``used_at`` when;
    a caller whose call dropped may come back within the slot) or ``cancelled``."""

    code: str
    slot_start: dt.datetime
    slot_end: dt.datetime
    topic: str
    sign_language: str
    language: str
    number: str | None
    created_at: dt.datetime
    status: str = "booked"
    call_id: str | None = None
    used_at: dt.datetime | None = None


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # -- calls -----------------------------------------------------------------------------
    async def call_started(self, record: CallRecord) -> None:
        """Note a call as it starts (so concurrent calls and crashed engines still count)."""

    async def call_progress(self, record: CallRecord) -> None:
        """Note how far a call in progress has come (nodes, keys, language, priority), so an
        engine taking over after a crash continues its record; a finished call is left alone."""
        ...

    async def calls_progress(self, records: Sequence[CallRecord]) -> None:
        """``call_progress`` for several calls at once (one round trip, one transaction).  Each
        record is read before the first ``await``: the caller may go on changing it."""
        ...

    async def record_call(self, record: CallRecord) -> None:
        """Store a finished call (insert or replace by call id)."""

    async def recent_calls(self, limit: int = 50) -> list[CallRecord]:
        """The most recent calls, newest first."""

    async def get_call(self, call_id: str) -> CallRecord | None:
        """One call by its id (finished or still in progress), or None."""

    async def find_calls(self, query: CallQuery, *, limit: int = 50,
                         after: tuple[dt.datetime, str] | None = None) -> list[CallRecord]:
        """Calls matching ``query``, newest first (by ``started_at``, then ``call_id``
        descending), at most ``limit``.  ``after`` is the (started_at, call_id) of the last call
        of the previous page: the page starts just past it (keyset pagination: stable while
        calls arrive).  Indexed by ``started_at`` and by ``number``."""
        ...

    def iter_calls(self, since: dt.datetime, until: dt.datetime, *, flow: str | None = None,
                   batch: int = 5000) -> AsyncIterator[list[CallRecord]]:
        """Every call that started in [``since``, ``until``), of ``flow`` when given, oldest
        first (``started_at``, ``call_id``), in lists of at most ``batch``: the reader holds one
        batch in memory at a time, whatever the range (``ivr report``, ``ivr export calls``)."""
        ...

    def iter_events(self, since: dt.datetime, until: dt.datetime, *,
                    batch: int = 5000) -> AsyncIterator[list[QueueEvent]]:
        """Every queue event in [``since``, ``until``), oldest first (events of one instant in
        the order recorded), in lists of at most ``batch``."""
        ...

    async def count_calls_since(self, number: str, since: dt.datetime, *,
                                unserved_only: bool = False, exclude_call: str | None = None) -> int:
        """Calls from ``number`` (E.164) that started at or after ``since``.

        ``unserved_only`` counts only calls whose outcome is not in ``SERVED_OUTCOMES``
        (calls still in progress count as unserved).  ``exclude_call`` leaves one call id out.
        """

    # -- the caller registry -----------------------------------------------------------------
    async def put_callers(self, callers: Sequence[Caller]) -> int:
        """Insert or update callers by number (an update replaces every field, ``wellness``
        too), raising ``registry_generation`` in the same transaction; returns how many were
        written."""

    async def get_caller(self, number: str) -> Caller | None:
        """The registered caller for an E.164 number, or None."""

    async def registry_generation(self) -> int:
        """A number that changes whenever the registry is written (``put_callers``, by any
        process sharing the database): a cache of ``get_caller`` answers is current while it
        is unchanged (``ivr.routing.registry.CachedRegistry``)."""
        ...

    async def list_callers(self, limit: int = 500, *, after: str | None = None) -> list[Caller]:
        """Registered callers by number, at most ``limit``; ``after`` is the last number of the
        previous page (keyset pagination), so a reader pages through the whole registry."""

    # -- the queue event log -----------------------------------------------------------------
    async def record_events(self, events: Sequence[QueueEvent]) -> None:
        """Append a batch of events in one transaction: all of them are stored or none.

        An empty batch does nothing (and does not touch the database).
        """

    async def call_events(self, call_id: str) -> list[QueueEvent]:
        """Every event of one call, oldest first (events of one instant in the order recorded)."""

    async def agent_events(self, agent_id: str, since: dt.datetime,
                           limit: int = 500) -> list[QueueEvent]:
        """The first ``limit`` events of one agent at or after ``since``, oldest first (none
        when ``limit`` is below 1).

        To read on past ``limit``, ask again from the ``at`` of the last event returned (and
        skip the events already seen at that instant).
        """

    async def latest_agent_events(self) -> list[QueueEvent]:
        """What a restarting engine needs of every agent the log knows, however long ago it
        was last told of: the agent's latest ``agent.state`` event and the
        ``agent.pause_after`` events after it, all agents together, oldest first (events of
        one instant in the order recorded).  Indexed: one index probe per agent, whatever the
        length of the log.
        """

    async def events_for_calls(self, call_ids: Sequence[str]) -> dict[str, list[QueueEvent]]:
        """Every event of each call in ``call_ids``, one query for them all (a batch of
        ``iter_calls``: ``ivr export calls``): each id asked for is a key, its events oldest
        first (events of one instant in the order recorded), ``[]`` for a call without."""
        ...

    async def line_events(self, since: dt.datetime) -> list[QueueEvent]:
        """The events that say who waits in line (``call.queued``, ``call.connected``,
        ``call.left``) at or after ``since``, oldest first (events of one instant in the order
        recorded).  Indexed by time: reads only the events since ``since``.
        """

    # -- the supervisors' audit log -------------------------------------------------------------
    async def record_audit(self, entry: AuditEntry) -> None:
        """Append one entry to the audit log (a supervisor's action, a login, a refused login)."""

    async def audit_entries(self, since: dt.datetime, limit: int = 200) -> list[AuditEntry]:
        """Audit entries at or after ``since``, newest first, at most ``limit``."""
        ...

    # -- callback reservations -----------------------------------------------------------------
    async def reservation_counts(self, now: dt.datetime, since: dt.datetime) -> dict[str, int]:
        """The wallboard's reservation figures: ``pending`` (booked, not yet due by ``now``),
        ``due`` (pending and due by ``now``), ``in_progress`` (claimed: being dialled) and
        ``failed`` and ``done`` (ended at or after ``since``, by ``updated_at``).  Indexed: a
        count per status, no list."""
        ...

    # A number has at most one open (pending or claimed) reservation per queue.  Claims are
    # leases: an engine instance that dies holding some lets them go when ``claim_until``
    # passes, and another instance takes them.  Times given are aware (naive ones are taken as
    # UTC); reservations read back are in UTC.

    async def put_reservation(self, r: Reservation) -> Reservation:
        """Book ``r``, or update the open reservation of the same number and queue.

        When one is open, it keeps its id, status, claim, attempts and the earlier of the two
        ``arrived_at`` (the caller's place in line) and the longer ``waited``; it takes ``r``'s
        language, priority, reason, due_at, slot_end, call_id and updated_at.  Atomic: two
        bookings at once never leave two open reservations.  Returns the stored reservation.
        """

    async def get_reservation(self, reservation_id: str) -> Reservation | None:
        """One reservation by id, or None."""

    async def list_reservations(self, status: str | None = None, limit: int = 200, *,
                                after: tuple[dt.datetime, str] | None = None) -> list[Reservation]:
        """Reservations (of one status, or all), the most recently booked first (by
        ``created_at``, then ``id`` descending), at most ``limit``.  ``after`` is the
        (created_at, id) of the last reservation of the previous page: the page starts just
        past it (keyset pagination: stable while reservations are booked)."""
        ...

    async def cancel_reservation(self, reservation_id: str) -> bool:
        """Cancel a pending or claimed reservation; False when there is none or it is final."""

    async def cancel_reservations_for(self, number: str, queue: str | None = None) -> int:
        """Cancel the open reservations of ``number`` (in ``queue``, or in all); how many."""

    async def claim_reservations(self, now: dt.datetime, owner: str, lease: float,
                                 limit: int) -> list[Reservation]:
        """Take up to ``limit`` reservations to dial, in the callers' order in line (arrived_at).

        Taken: pending ones due by ``now`` and claimed ones whose claim lapsed before ``now``.
        They become ``claimed`` by ``owner`` until ``now + lease`` seconds.  Atomic: engine
        instances claiming at once never take the same reservation.
        """

    async def renew_claim(self, reservation_id: str, owner: str, until: dt.datetime) -> bool:
        """Extend ``owner``'s claim to ``until``; False when ``owner`` no longer holds it."""

    async def release_claims(self, owner: str, *, others: bool = False) -> int:
        """Every reservation claimed by ``owner`` back to pending (startup, shutdown); how many.
        ``others``: instead, those claimed by anyone but ``owner`` (an engine that holds the
        engine lease is the only one dialling: other owners' claims are a dead engine's)."""

    async def finish_attempt(self, reservation_id: str, owner: str, *, result: str,
                             at: dt.datetime, next_due: dt.datetime | None,
                             final_status: str | None) -> bool:
        """Note one dial attempt made by ``owner``, who must still hold the claim (else False
        and nothing changes).

        ``attempts`` grows by one, ``last_attempt_at`` is ``at`` and ``last_result`` is
        ``result``.  With ``final_status`` (``done`` or ``failed``) the reservation ends (its
        ``claimed_by`` stays, naming the instance that finished it); without, it is pending
        again, due at ``next_due``, its claim cleared.  ``ValueError`` when neither is given.
        """

    # -- wellness calls --------------------------------------------------------------------------
    # Times given are aware (naive ones are taken as UTC); values read back are in UTC.  Nothing
    # here deletes: people opt out, attempts finish, visits are done or cleared.

    async def put_wellness_people(self, people: Sequence[Person]) -> int:
        """Insert or update people by number, in one transaction; how many were written.  An
        update takes the new campaign, name, language, contact and address reference, keeps
        the first ``added_at`` and never takes back an opt-out (``set_wellness_opt_out`` does)."""
        ...

    async def get_wellness_person(self, number: str) -> Person | None:
        """One person by E.164 number, or None."""
        ...

    async def list_wellness_people(self, campaign: str | None = None, limit: int = 200, *,
                                   after: str | None = None) -> list[Person]:
        """People (of one campaign, or all) by number, at most ``limit``; ``after`` is the last
        number of the previous page (keyset pagination)."""
        ...

    async def set_wellness_opt_out(self, number: str, opt_out: bool) -> bool:
        """Opt a person out (never rung again, their history kept) or back in; False when the
        number is not known."""
        ...

    async def claim_wellness_attempt(self, number: str, owner: str, now: dt.datetime,
                                     lease: float, *, cap: int | None = None,
                                     newer_than: dt.datetime | None = None) -> WellnessClaim | None:
        """Start an attempt on ``number``, claimed by ``owner`` until ``now + lease`` seconds.

        Atomic: a number has at most one unfinished attempt, so engines claiming at once never
        ring one person twice.  When the number's unfinished attempt is a lapsed claim (its
        engine died) ``owner`` takes it over: the same attempt (``taken_over``), not a second
        one.  None when another claim still holds, or the person is unknown or opted out.
        ``cap``: also None while ``cap`` claims of the person's campaign hold at ``now`` (the
        campaign's ``max_concurrent``, held across engines: claims are counted and made one
        at a time).  ``newer_than``: also None when an attempt on the number that started
        after this moment is finished (the caller looked at the person's attempts, and decided
        they were due, before another engine's call reached them)."""
        ...

    async def renew_wellness_claim(self, attempt_id: int, owner: str, until: dt.datetime) -> bool:
        """Extend ``owner``'s claim on an unfinished attempt; False when ``owner`` lost it."""
        ...

    async def take_over_wellness_claim(self, attempt_id: int, owner: str,
                                       until: dt.datetime) -> bool:
        """Make an unfinished attempt ``owner``'s until ``until``, whoever held it: only for an
        attempt whose call this engine holds (re-adopted after a restart, so no other engine
        can be running it).  False when the attempt is finished or unknown."""
        ...

    async def finish_wellness_attempt(self, attempt_id: int, owner: str, *,
                                      result: AttemptResult, at: dt.datetime,
                                      detail: str | None = None) -> bool:
        """Note how an attempt ended (``at``: when its call started).  Only the owner of the
        claim can (else False and nothing changes); a finished attempt is never changed."""
        ...

    async def unfinished_wellness_attempts(self) -> list[WellnessClaim]:
        """Every attempt not finished (held now, or a dead engine's lapsed claim), oldest
        claim first: what a restarting engine must finish or take over."""
        ...

    async def wellness_in_progress(self, now: dt.datetime) -> dict[str, int]:
        """Unfinished attempts whose claim holds at ``now``, per campaign (campaigns with none
        are left out): the concurrency cap's count."""
        ...

    async def wellness_attempts(self, since: dt.datetime, *, number: str | None = None,
                                campaign: str | None = None, limit: int = 10000) -> list[Attempt]:
        """Finished attempts started at or after ``since`` (of one number, one campaign, or
        all), oldest first, at most ``limit``: the histories the plan decides from."""
        ...

    async def open_wellness_visit(self, visit: Visit) -> Visit:
        """Put ``visit.number`` on the home-visit list (its ``since`` and ``history``), unless
        an open visit of that number is there already: atomic, one open visit per number.
        Returns the open visit as stored (with its id)."""
        ...

    async def get_wellness_visit(self, visit_id: int) -> Visit | None:
        """One visit by id, or None."""
        ...

    async def list_wellness_visits(self, *, open_only: bool = True, campaign: str | None = None,
                                   limit: int = 200, number: str | None = None) -> list[Visit]:
        """The visit list (of one campaign, of one number, or all), the longest waiting first
        (by ``since``, then id)."""
        ...

    async def mark_wellness_visit_done(self, visit_id: int, at: dt.datetime, note: str) -> bool:
        """A person visited: the open visit ends at ``at`` with ``note``; False when there is
        no such visit or it has ended."""
        ...

    async def clear_wellness_visits(self, number: str, at: dt.datetime) -> int:
        """A later call reached ``number``: its open visit ends (``cleared_at``); how many."""
        ...

    # -- video consultations ---------------------------------------------------------------------
    # Codes are compared whatever their case (stored upper-case).  Times given are aware (naive
    # ones are taken as UTC); values read back are in UTC.  A place in a slot is held by a
    # booking that is ``booked`` or ``used``; a cancelled one frees it.

    async def put_video_booking(self, booking: VideoBooking, *, capacity: int) -> bool:
        """Store ``booking`` unless ``capacity`` bookings (booked or used) already hold its
        ``slot_start``: False then, and nothing is written.  Counted and written atomically:
        engines booking the last place at once never both get it.  A code already stored
        (in any case) raises ``StoreError`` — when the slot has room: a full slot answers
        False first."""
        ...

    async def get_video_booking(self, code: str) -> VideoBooking | None:
        """One booking by code (any case), or None."""
        ...

    async def video_slot_counts(self, since: dt.datetime,
                                until: dt.datetime) -> dict[dt.datetime, int]:
        """Places held (booked or used) per ``slot_start`` in [since, until); slots without
        any are left out."""
        ...

    async def use_video_booking(self, code: str, call_id: str,
                                at: dt.datetime) -> VideoBooking | None:
        """A call (``call_id``, at ``at``) uses a booked or used booking: it becomes ``used``
        with that call and time, and is returned as stored; None when the code is unknown or
        the booking cancelled."""
        ...

    async def cancel_video_booking(self, code: str) -> bool:
        """Cancel a booked or used booking (its place is free again); False when the code is
        unknown or it is cancelled already."""
        ...

    async def list_video_bookings(self, since: dt.datetime, until: dt.datetime,
                                  limit: int = 200) -> list[VideoBooking]:
        """Bookings of any status whose ``slot_start`` is in [since, until), by slot (then by
        ``created_at`` and code), at most ``limit``."""
        ...
