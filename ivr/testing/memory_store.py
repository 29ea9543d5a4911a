"""An in-memory ``Store`` for tests: the same contract as the SQLite and PostgreSQL stores.

``fail`` makes a method raise: ``store.fail["count_calls_since"] = StoreError("disk full")``.
``gate`` makes a method wait on an ``asyncio.Event`` before answering (a slow database):
``store.gate["get_caller"] = asyncio.Event()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ivr.call import CallRecord, utcnow
from ivr.callbacks.model import (OPEN_STATUSES, Reservation, check_attempt_outcome,
                                 check_status)
from ivr.errors import StoreError
from ivr.store import statements
from ivr.store.base import (OUTBOUND_DIALLED, SERVED_OUTCOMES, VIDEO_BOOKING_HELD,
                            VIDEO_BOOKING_STATUSES, AuditEntry, Caller, CallQuery, QueueEvent,
                            VideoBooking, WellnessClaim)
from ivr.wellness.model import Attempt, AttemptResult, Person, Visit

__all__ = ["MemoryStore"]


class MemoryStore:
    def __init__(self) -> None:
        self.calls: dict[str, CallRecord] = {}
        self.callers: dict[str, Caller] = {}
        self.generation = 0                        # the registry's: raised by every put_callers
        self.events: list[QueueEvent] = []   # in the order recorded
        self.reservations: dict[str, Reservation] = {}   # by id, in the order booked
        self.audit: list[AuditEntry] = []    # in the order recorded
        self.wellness_people: dict[str, Person] = {}
        # Wellness attempts by id: the claim, and once finished the attempt.
        self.wellness_claims: dict[int, WellnessClaim] = {}
        self.wellness_done: dict[int, Attempt] = {}
        self.wellness_visits: dict[int, Visit] = {}
        self.video_bookings: dict[str, VideoBooking] = {}     # by code (upper-case)
        self.fail: dict[str, BaseException] = {}
        self.gate: dict[str, asyncio.Event] = {}
        self.asked: list[str] = []        # names of the methods called, in order
        self.opened = False

    async def _enter(self, method: str) -> None:
        self.asked.append(method)
        gate = self.gate.get(method)
        if gate is not None:
            await gate.wait()
        exc = self.fail.get(method)
        if exc is not None:
            raise exc

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.opened = False

    # -- calls -----------------------------------------------------------------------------
    # Records are stored as snapshots (their lists copied), as the databases keep a row: a
    # live record changed after a write is not changed in the store.
    async def call_started(self, record: CallRecord) -> None:
        snapshot = _snapshot(record)
        await self._enter("call_started")
        self.calls[record.call_id] = snapshot

    async def call_progress(self, record: CallRecord) -> None:
        snapshot = _snapshot(record)
        await self._enter("call_progress")
        stored = self.calls.get(record.call_id)
        if stored is None or stored.outcome is None:
            self.calls[record.call_id] = dataclasses.replace(snapshot, outcome=None, ended_at=None)

    async def calls_progress(self, records: Sequence[CallRecord]) -> None:
        snapshots = [_snapshot(r) for r in records]
        for snapshot in snapshots:
            await self.call_progress(snapshot)

    async def record_call(self, record: CallRecord) -> None:
        snapshot = _snapshot(record)
        await self._enter("record_call")
        self.calls[record.call_id] = snapshot

    async def recent_calls(self, limit: int = 50) -> list[CallRecord]:
        await self._enter("recent_calls")
        return sorted(self.calls.values(), key=lambda r: r.started_at, reverse=True)[:limit]

    async def get_call(self, call_id: str) -> CallRecord | None:
        await self._enter("get_call")
        return self.calls.get(call_id)

    async def find_calls(self, query: CallQuery, *, limit: int = 50,
                         after: tuple[dt.datetime, str] | None = None) -> list[CallRecord]:
        await self._enter("find_calls")
        key = (_utc(after[0]), after[1]) if after is not None else None
        found = [r for r in self.calls.values()
                 if (query.since is None or _utc(r.started_at) >= _utc(query.since))
                 and (query.until is None or _utc(r.started_at) < _utc(query.until))
                 and (query.flow is None or r.flow == query.flow)
                 and (query.outcome is None or r.outcome == query.outcome)
                 and (query.number is None or r.number == query.number)
                 and (query.channel is None or r.channel == query.channel)
                 and (key is None or (_utc(r.started_at), r.call_id) < key)]
        found.sort(key=lambda r: (_utc(r.started_at), r.call_id), reverse=True)
        return found[:max(limit, 0)]

    async def iter_calls(self, since: dt.datetime, until: dt.datetime, *, flow: str | None = None,
                         batch: int = 5000) -> AsyncIterator[list[CallRecord]]:
        statements.check_batch(batch)
        await self._enter("iter_calls")
        since, until = _utc(since), _utc(until)
        found = sorted((r for r in self.calls.values()
                        if since <= _utc(r.started_at) < until and (flow is None or r.flow == flow)),
                       key=lambda r: (_utc(r.started_at), r.call_id))
        for i in range(0, len(found), batch):
            yield found[i:i + batch]

    async def count_calls_since(self, number: str, since: dt.datetime, *,
                                unserved_only: bool = False, exclude_call: str | None = None) -> int:
        await self._enter("count_calls_since")
        return sum(1 for r in self.calls.values()
                   if r.number == number and r.started_at >= since and r.call_id != exclude_call
                   and r.dialled != OUTBOUND_DIALLED
                   and not (unserved_only and r.outcome in SERVED_OUTCOMES))

    # -- the caller registry -----------------------------------------------------------------
    async def put_callers(self, callers: Sequence[Caller]) -> int:
        await self._enter("put_callers")
        now = utcnow()
        for c in callers:
            self.callers[c.number] = dataclasses.replace(c, wellness=c.wellness or None, updated_at=now)
        self.generation += 1
        return len(callers)

    async def registry_generation(self) -> int:
        await self._enter("registry_generation")
        return self.generation

    async def get_caller(self, number: str) -> Caller | None:
        await self._enter("get_caller")
        return self.callers.get(number)

    async def list_callers(self, limit: int = 500, *, after: str | None = None) -> list[Caller]:
        await self._enter("list_callers")
        if limit < 1:
            return []
        return sorted((c for c in self.callers.values() if after is None or c.number > after),
                      key=lambda c: c.number)[:limit]

    # -- the queue event log -----------------------------------------------------------------
    async def record_events(self, events: Sequence[QueueEvent]) -> None:
        if not events:                    # as the real stores: no database work, so no failure
            self.asked.append("record_events")
            return
        await self._enter("record_events")
        self.events.extend(dataclasses.replace(e, at=_utc(e.at)) for e in events)

    async def call_events(self, call_id: str) -> list[QueueEvent]:
        await self._enter("call_events")
        return sorted((e for e in self.events if e.call_id == call_id), key=lambda e: e.at)

    async def agent_events(self, agent_id: str, since: dt.datetime,
                           limit: int = 500) -> list[QueueEvent]:
        await self._enter("agent_events")
        if limit < 1:
            return []
        since = _utc(since)
        return sorted((e for e in self.events if e.agent_id == agent_id and e.at >= since),
                      key=lambda e: e.at)[:limit]

    async def latest_agent_events(self) -> list[QueueEvent]:
        await self._enter("latest_agent_events")
        ordered = sorted(enumerate(self.events), key=lambda ie: (ie[1].at, ie[0]))
        latest: dict[str, int] = {}          # agent id → place in ``ordered`` of its latest state
        for place, (_, e) in enumerate(ordered):
            if e.kind == "agent.state" and e.agent_id is not None:
                latest[e.agent_id] = place
        return [e for place, (_, e) in enumerate(ordered)
                if e.agent_id in latest and place >= latest[e.agent_id]
                and e.kind in ("agent.state", "agent.pause_after")]

    async def iter_events(self, since: dt.datetime, until: dt.datetime, *,
                          batch: int = 5000) -> AsyncIterator[list[QueueEvent]]:
        statements.check_batch(batch)
        await self._enter("iter_events")
        since, until = _utc(since), _utc(until)
        found = sorted((e for e in self.events if since <= e.at < until), key=lambda e: e.at)
        for i in range(0, len(found), batch):
            yield found[i:i + batch]

    async def events_for_calls(self, call_ids: Sequence[str]) -> dict[str, list[QueueEvent]]:
        await self._enter("events_for_calls")
        found: dict[str, list[QueueEvent]] = {c: [] for c in call_ids}
        for e in sorted(self.events, key=lambda e: e.at):
            if e.call_id in found:
                found[e.call_id].append(e)
        return found

    async def line_events(self, since: dt.datetime) -> list[QueueEvent]:
        await self._enter("line_events")
        since = _utc(since)
        return sorted((e for e in self.events if e.at >= since
                       and e.kind in ("call.queued", "call.connected", "call.left")),
                      key=lambda e: e.at)

    # -- the supervisors' audit log -------------------------------------------------------------
    async def record_audit(self, entry: AuditEntry) -> None:
        await self._enter("record_audit")
        self.audit.append(dataclasses.replace(entry, at=_utc(entry.at)))

    async def audit_entries(self, since: dt.datetime, limit: int = 200) -> list[AuditEntry]:
        await self._enter("audit_entries")
        since = _utc(since)
        found = [(e.at, i, e) for i, e in enumerate(self.audit) if e.at >= since]
        found.sort(key=lambda f: (f[0], f[1]), reverse=True)
        return [e for _, _, e in found[:max(limit, 0)]]

    # -- callback reservations -----------------------------------------------------------------
    async def put_reservation(self, r: Reservation) -> Reservation:
        await self._enter("put_reservation")
        r = _utc_reservation(r)
        if r.status in OPEN_STATUSES:
            current = self._open(r.number, r.queue)
            if current is not None:
                merged = dataclasses.replace(
                    current, arrived_at=min(current.arrived_at, r.arrived_at),
                    waited=max(current.waited, r.waited), language=r.language,
                    priority=r.priority, reason=r.reason, due_at=r.due_at, slot_end=r.slot_end,
                    call_id=r.call_id, updated_at=r.updated_at)
                self.reservations[current.id] = merged
                return merged
        if r.id in self.reservations:
            raise StoreError(f"cannot book callback reservation {r.id}: the id is taken")
        self.reservations[r.id] = r
        return r

    def _open(self, number: str, queue: str) -> Reservation | None:
        return next((r for r in self.reservations.values()
                     if r.number == number and r.queue == queue and r.status in OPEN_STATUSES),
                    None)

    async def get_reservation(self, reservation_id: str) -> Reservation | None:
        await self._enter("get_reservation")
        return self.reservations.get(reservation_id)

    async def list_reservations(self, status: str | None = None, limit: int = 200, *,
                                after: tuple[dt.datetime, str] | None = None) -> list[Reservation]:
        await self._enter("list_reservations")
        check_status(status)
        key = (_utc(after[0]), after[1]) if after is not None else None
        found = [r for r in self.reservations.values() if (status is None or r.status == status)
                 and (key is None or (r.created_at, r.id) < key)]
        return sorted(found, key=lambda r: (r.created_at, r.id), reverse=True)[:max(limit, 0)]

    async def reservation_counts(self, now: dt.datetime, since: dt.datetime) -> dict[str, int]:
        await self._enter("reservation_counts")
        now, since = _utc(now), _utc(since)
        counts = dict.fromkeys(statements.RESERVATION_COUNT_KEYS, 0)
        for r in self.reservations.values():
            if r.status == "pending":
                counts["due" if r.due_at <= now else "pending"] += 1
            elif r.status == "claimed":
                counts["in_progress"] += 1
            elif r.status in ("failed", "done") and r.updated_at >= since:
                counts[r.status] += 1
        return counts

    async def cancel_reservation(self, reservation_id: str) -> bool:
        await self._enter("cancel_reservation")
        r = self.reservations.get(reservation_id)
        if r is None or r.status not in OPEN_STATUSES:
            return False
        self._cancel(r)
        return True

    async def cancel_reservations_for(self, number: str, queue: str | None = None) -> int:
        await self._enter("cancel_reservations_for")
        found = [r for r in self.reservations.values()
                 if r.number == number and (queue is None or r.queue == queue)
                 and r.status in OPEN_STATUSES]
        for r in found:
            self._cancel(r)
        return len(found)

    def _cancel(self, r: Reservation) -> None:
        self.reservations[r.id] = dataclasses.replace(r, status="cancelled", claim_until=None,
                                                      updated_at=utcnow())

    async def claim_reservations(self, now: dt.datetime, owner: str, lease: float,
                                 limit: int) -> list[Reservation]:
        await self._enter("claim_reservations")
        if limit < 1:
            return []
        now = _utc(now)
        until = now + dt.timedelta(seconds=lease)
        due = sorted((r for r in self.reservations.values()
                      if (r.status == "pending" and r.due_at <= now)
                      or (r.status == "claimed" and r.claim_until is not None
                          and r.claim_until < now)),
                     key=lambda r: (r.arrived_at, r.created_at, r.id))[:limit]
        claimed = []
        for r in due:
            r = dataclasses.replace(r, status="claimed", claimed_by=owner, claim_until=until,
                                    updated_at=now)
            self.reservations[r.id] = r
            claimed.append(r)
        return claimed

    async def renew_claim(self, reservation_id: str, owner: str, until: dt.datetime) -> bool:
        await self._enter("renew_claim")
        r = self.reservations.get(reservation_id)
        if r is None or r.status != "claimed" or r.claimed_by != owner:
            return False
        self.reservations[r.id] = dataclasses.replace(r, claim_until=_utc(until))
        return True

    async def release_claims(self, owner: str, *, others: bool = False) -> int:
        await self._enter("release_claims")
        mine = [r for r in self.reservations.values()
                if r.status == "claimed" and (r.claimed_by != owner if others else r.claimed_by == owner)]
        now = utcnow()
        for r in mine:
            self.reservations[r.id] = dataclasses.replace(r, status="pending", claimed_by=None,
                                                          claim_until=None, updated_at=now)
        return len(mine)

    async def finish_attempt(self, reservation_id: str, owner: str, *, result: str,
                             at: dt.datetime, next_due: dt.datetime | None,
                             final_status: str | None) -> bool:
        await self._enter("finish_attempt")
        check_attempt_outcome(next_due, final_status)
        r = self.reservations.get(reservation_id)
        if r is None or r.status != "claimed" or r.claimed_by != owner:
            return False
        at = _utc(at)
        r = dataclasses.replace(r, attempts=r.attempts + 1, last_attempt_at=at,
                                last_result=result, claim_until=None, updated_at=at)
        if final_status is not None:
            r = dataclasses.replace(r, status=final_status)
        else:
            assert next_due is not None
            r = dataclasses.replace(r, status="pending", due_at=_utc(next_due), claimed_by=None)
        self.reservations[r.id] = r
        return True

    # -- wellness calls --------------------------------------------------------------------------
    async def put_wellness_people(self, people: Sequence[Person]) -> int:
        await self._enter("put_wellness_people")
        now = utcnow()
        for p in people:
            old = self.wellness_people.get(p.number)
            added = old.added_at if old is not None else (_utc(p.added_at) if p.added_at else now)
            self.wellness_people[p.number] = dataclasses.replace(
                p, added_at=added, opt_out=p.opt_out or (old is not None and old.opt_out))
        return len(people)

    async def get_wellness_person(self, number: str) -> Person | None:
        await self._enter("get_wellness_person")
        return self.wellness_people.get(number)

    async def list_wellness_people(self, campaign: str | None = None, limit: int = 200, *,
                                   after: str | None = None) -> list[Person]:
        await self._enter("list_wellness_people")
        if limit < 1:
            return []
        return sorted((p for p in self.wellness_people.values()
                       if (campaign is None or p.campaign == campaign)
                       and (after is None or p.number > after)),
                      key=lambda p: p.number)[:limit]

    async def set_wellness_opt_out(self, number: str, opt_out: bool) -> bool:
        await self._enter("set_wellness_opt_out")
        p = self.wellness_people.get(number)
        if p is None:
            return False
        self.wellness_people[number] = dataclasses.replace(p, opt_out=opt_out)
        return True

    async def claim_wellness_attempt(self, number: str, owner: str, now: dt.datetime,
                                     lease: float, *, cap: int | None = None,
                                     newer_than: dt.datetime | None = None) -> WellnessClaim | None:
        await self._enter("claim_wellness_attempt")
        person = self.wellness_people.get(number)
        if person is None or person.opt_out:
            return None
        now = _utc(now)
        if newer_than is not None and any(a.number == number and a.at > _utc(newer_than)
                                          for a in self.wellness_done.values()):
            return None
        if cap is not None and sum(
                1 for c in self.wellness_claims.values()
                if c.campaign == person.campaign and c.id not in self.wellness_done
                and c.claim_until is not None and c.claim_until >= now) >= cap:
            return None
        until = now + dt.timedelta(seconds=lease)
        for c in self.wellness_claims.values():
            if c.number == number and c.id not in self.wellness_done:
                if c.claim_until is not None and c.claim_until >= now:
                    return None
                taken = dataclasses.replace(c, claimed_by=owner, claim_until=until, taken_over=True)
                self.wellness_claims[c.id] = taken
                return taken
        claim = WellnessClaim(len(self.wellness_claims) + 1, number, person.campaign, now, owner,
                              until)
        self.wellness_claims[claim.id] = claim
        return claim

    def _unfinished(self, attempt_id: int, owner: str) -> WellnessClaim | None:
        c = self.wellness_claims.get(attempt_id)
        if c is None or c.id in self.wellness_done or c.claimed_by != owner:
            return None
        return c

    async def renew_wellness_claim(self, attempt_id: int, owner: str, until: dt.datetime) -> bool:
        await self._enter("renew_wellness_claim")
        c = self._unfinished(attempt_id, owner)
        if c is None:
            return False
        self.wellness_claims[c.id] = dataclasses.replace(c, claim_until=_utc(until))
        return True

    async def take_over_wellness_claim(self, attempt_id: int, owner: str,
                                       until: dt.datetime) -> bool:
        await self._enter("take_over_wellness_claim")
        c = self.wellness_claims.get(attempt_id)
        if c is None or c.id in self.wellness_done:
            return False
        self.wellness_claims[c.id] = dataclasses.replace(c, claimed_by=owner, claim_until=_utc(until))
        return True

    async def finish_wellness_attempt(self, attempt_id: int, owner: str, *,
                                      result: AttemptResult, at: dt.datetime,
                                      detail: str | None = None) -> bool:
        await self._enter("finish_wellness_attempt")
        c = self._unfinished(attempt_id, owner)
        if c is None:
            return False
        self.wellness_claims[c.id] = dataclasses.replace(c, claim_until=None, taken_over=False)
        self.wellness_done[c.id] = Attempt(number=c.number, campaign=c.campaign, at=_utc(at),
                                           result=AttemptResult(result), detail=detail)
        return True

    async def unfinished_wellness_attempts(self) -> list[WellnessClaim]:
        await self._enter("unfinished_wellness_attempts")
        return sorted((dataclasses.replace(c, taken_over=False)
                       for c in self.wellness_claims.values() if c.id not in self.wellness_done),
                      key=lambda c: (c.claimed_at, c.id))

    async def wellness_in_progress(self, now: dt.datetime) -> dict[str, int]:
        await self._enter("wellness_in_progress")
        now = _utc(now)
        counts: dict[str, int] = {}
        for c in self.wellness_claims.values():
            if c.id not in self.wellness_done and c.claim_until is not None and c.claim_until >= now:
                counts[c.campaign] = counts.get(c.campaign, 0) + 1
        return counts

    async def wellness_attempts(self, since: dt.datetime, *, number: str | None = None,
                                campaign: str | None = None, limit: int = 10000) -> list[Attempt]:
        await self._enter("wellness_attempts")
        if limit < 1:
            return []
        since = _utc(since)
        found = sorted(((a.at, i, a) for i, a in self.wellness_done.items()
                        if a.at >= since and (number is None or a.number == number)
                        and (campaign is None or a.campaign == campaign)),
                       key=lambda t: (t[0], t[1]))
        return [a for _, _, a in found[:limit]]

    async def open_wellness_visit(self, visit: Visit) -> Visit:
        await self._enter("open_wellness_visit")
        for v in self.wellness_visits.values():
            if v.number == visit.number and v.open:
                return v
        stored = dataclasses.replace(visit, id=len(self.wellness_visits) + 1,
                                     since=_utc(visit.since), done_at=None, note=None,
                                     cleared_at=None,
                                     history=tuple(dataclasses.replace(a, at=_utc(a.at))
                                                   for a in visit.history))
        assert stored.id is not None
        self.wellness_visits[stored.id] = stored
        return stored

    async def get_wellness_visit(self, visit_id: int) -> Visit | None:
        await self._enter("get_wellness_visit")
        return self.wellness_visits.get(visit_id)

    async def list_wellness_visits(self, *, open_only: bool = True, campaign: str | None = None,
                                   limit: int = 200, number: str | None = None) -> list[Visit]:
        await self._enter("list_wellness_visits")
        if limit < 1:
            return []
        return sorted((v for v in self.wellness_visits.values()
                       if (v.open or not open_only) and (campaign is None or v.campaign == campaign)
                       and (number is None or v.number == number)),
                      key=lambda v: (v.since, v.id or 0))[:limit]

    async def mark_wellness_visit_done(self, visit_id: int, at: dt.datetime, note: str) -> bool:
        await self._enter("mark_wellness_visit_done")
        v = self.wellness_visits.get(visit_id)
        if v is None or not v.open:
            return False
        self.wellness_visits[visit_id] = dataclasses.replace(v, done_at=_utc(at), note=note)
        return True

    async def clear_wellness_visits(self, number: str, at: dt.datetime) -> int:
        await self._enter("clear_wellness_visits")
        n = 0
        for v in list(self.wellness_visits.values()):
            if v.number == number and v.open and v.id is not None:
                self.wellness_visits[v.id] = dataclasses.replace(v, cleared_at=_utc(at))
                n += 1
        return n

    # -- video consultations ---------------------------------------------------------------------
    async def put_video_booking(self, booking: VideoBooking, *, capacity: int) -> bool:
        await self._enter("put_video_booking")
        b = _utc_booking(booking)
        if b.status not in VIDEO_BOOKING_STATUSES:
            raise StoreError(f"cannot book a video consultation: status {b.status!r} is not one "
                             f"of {', '.join(VIDEO_BOOKING_STATUSES)}")
        held = sum(1 for o in self.video_bookings.values()
                   if o.slot_start == b.slot_start and o.status in VIDEO_BOOKING_HELD)
        if held >= capacity:          # as the databases: a full slot is told before the code
            return False
        if b.code in self.video_bookings:
            raise StoreError("cannot book a video consultation: the code is taken")
        self.video_bookings[b.code] = b
        return True

    async def get_video_booking(self, code: str) -> VideoBooking | None:
        await self._enter("get_video_booking")
        return self.video_bookings.get(code.upper())

    async def video_slot_counts(self, since: dt.datetime,
                                until: dt.datetime) -> dict[dt.datetime, int]:
        await self._enter("video_slot_counts")
        since, until = _utc(since), _utc(until)
        counts: dict[dt.datetime, int] = {}
        for b in sorted(self.video_bookings.values(), key=lambda b: b.slot_start):
            if since <= b.slot_start < until and b.status in VIDEO_BOOKING_HELD:
                counts[b.slot_start] = counts.get(b.slot_start, 0) + 1
        return counts

    async def use_video_booking(self, code: str, call_id: str,
                                at: dt.datetime) -> VideoBooking | None:
        await self._enter("use_video_booking")
        b = self.video_bookings.get(code.upper())
        if b is None or b.status not in VIDEO_BOOKING_HELD:
            return None
        used = dataclasses.replace(b, status="used", call_id=call_id, used_at=_utc(at))
        self.video_bookings[used.code] = used
        return used

    async def cancel_video_booking(self, code: str) -> bool:
        await self._enter("cancel_video_booking")
        b = self.video_bookings.get(code.upper())
        if b is None or b.status not in VIDEO_BOOKING_HELD:
            return False
        self.video_bookings[b.code] = dataclasses.replace(b, status="cancelled")
        return True

    async def list_video_bookings(self, since: dt.datetime, until: dt.datetime,
                                  limit: int = 200) -> list[VideoBooking]:
        await self._enter("list_video_bookings")
        since, until = _utc(since), _utc(until)
        found = sorted((b for b in self.video_bookings.values() if since <= b.slot_start < until),
                       key=lambda b: (b.slot_start, b.created_at, b.code))
        return found[:max(limit, 0)]


def _snapshot(r: CallRecord) -> CallRecord:
    """A copy of ``r`` that later changes to ``r`` leave alone."""
    return dataclasses.replace(r, nodes=list(r.nodes), digits=list(r.digits),
                               exits=list(r.exits), chat=list(r.chat))


def _utc_booking(b: VideoBooking) -> VideoBooking:
    """``b`` as the real stores keep it: its code upper-case, its times in UTC."""
    return dataclasses.replace(b, code=b.code.upper(), slot_start=_utc(b.slot_start),
                               slot_end=_utc(b.slot_end), created_at=_utc(b.created_at),
                               used_at=None if b.used_at is None else _utc(b.used_at))


def _utc_reservation(r: Reservation) -> Reservation:
    """Every time of ``r`` in UTC, as the real stores give them back."""
    changes: dict[str, Any] = {}
    for name in ("arrived_at", "created_at", "due_at", "slot_end", "last_attempt_at",
                 "claim_until", "updated_at"):
        value = getattr(r, name)
        if value is not None:
            changes[name] = _utc(value)
    return dataclasses.replace(r, **changes)


def _utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC, as the real stores do; read back in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)
