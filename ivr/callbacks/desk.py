"""``CallbackDesk``: reservations made by callers waiting in a queue, and the calls back.

Booking (from the queue service, on the caller's call): the number is confirmed
(``confirm_number``), the reservation is stored — and only then does the caller hear that it
is booked.  One open reservation per number and queue: booking again updates it.

Calling back: the desk claims due reservations from the store (atomically, so several engines
on one PostgreSQL never take the same one) while the center is open, and puts each into its
queue's line at the caller's original place (their arrival time).  When the line gives it an
agent, that agent is held for it while the customer's phone is dialled; the customer hears who
is calling and presses 1 (an answering machine does not), and then joins the line again at the
original place, at once taking the agent held for them.  Busy, no answer or no key: the agent
is released and the attempt is recorded; the next attempt is due ``retry_delay`` after this
one started, inside opening hours, up to ``max_attempts``; then the reservation is ``failed``
for a person to follow up.  A reservation is marked ``done`` as soon as the customer presses 1,
so it is never dialled twice once reached.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import structlog

from ivr.acd.model import Offer
from ivr.call import Call, CallRecord, utcnow
from ivr.callbacks.dialog import choose_time, confirm_number, national_digits
from ivr.callbacks.model import Reservation
from ivr.errors import AriError, CallerHungUp, DialFailed, IvrError
from ivr.prompts import Catalogue

log = structlog.get_logger(__name__)

__all__ = ["CallbackDesk", "PREFIX"]

PREFIX = "cb-"                       # line entries of reservations: cb-<reservation id>
INTRO = "callback_intro"
MADE, FAILED = "callback_made", "callback_failed"


class CallbackDesk:
    def __init__(self, config: Any, store: Any, service: Any, switch: Any, catalogue: Catalogue, *,
                 region: str = "KR", wall_clock=utcnow, save_record=None) -> None:
        self.config = config
        self.store = store
        self.service = service
        self.switch = switch
        self.catalogue = catalogue
        self.region = region
        self.wall = wall_clock
        self.save_record = save_record           # async (CallRecord) -> None
        self.in_line: dict[str, Reservation] = {}  # line entry id → reservation
        self._task: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()

    # -- booking -----------------------------------------------------------------------------

    async def book(self, call: Call, *, queue: str, priority: str | None, reason: str | None,
                   language: str, waited: float, call_id: str) -> str | None:
        """Confirm the number and store the reservation; its id, or None (the caller stays in line)."""
        number = await confirm_number(call, self.catalogue, language, region=self.region,
                                      allow_international=self.config.allow_international)
        if number is None:
            return None
        now = self.wall()
        slot = await choose_time(call, self.catalogue, language, self.config.hours, now)
        reservation = Reservation(
            id=uuid.uuid4().hex, number=number, queue=queue, priority=priority, reason=reason,
            language=language, waited=round(waited, 1),
            # As soon as possible keeps the caller's place; a slot's customers are served in
            # the order of their slots.
            arrived_at=slot[0] if slot else now - dt.timedelta(seconds=waited),
            created_at=now, due_at=slot[0] if slot else now, slot_end=slot[1] if slot else None,
            status="pending", attempts=0,
            last_attempt_at=None, last_result=None, claimed_by=None, claim_until=None,
            call_id=call_id, updated_at=now)
        try:
            stored = await self.store.put_reservation(reservation)
        except IvrError as exc:
            log.error("callback.not_stored", error=str(exc))
            await self._play(call, FAILED, language)
            return None
        await self._play(call, MADE, language)
        return stored.id

    async def _play(self, call: Call, prompt: str, language: str) -> None:
        if self.catalogue.has(prompt):
            try:
                await call.play([self.catalogue.media(prompt, language)])
            except CallerHungUp:
                pass

    # -- claiming ----------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            released = await self.store.release_claims(self.config.owner)
            if released:
                log.info("callback.claims_released", count=released, owner=self.config.owner)
        except IvrError as exc:
            log.warning("callback.release_failed", error=str(exc))
        self._task = asyncio.create_task(self._loop(), name="callbacks.poll")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for task in list(self._calls):
            task.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)
        try:
            await self.store.release_claims(self.config.owner)
        except IvrError as exc:
            log.warning("callback.release_failed", error=str(exc))

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll()
            except IvrError as exc:
                log.warning("callback.poll_failed", error=str(exc))
            except Exception:
                log.exception("callback.poll_crashed")
            await asyncio.sleep(self.config.poll)

    async def poll(self) -> None:
        """Claim what is due (when open), keep the claims of the line alive, close at closing."""
        now = self.wall()
        if not self.config.hours.is_open(now):
            self._withdraw_all("closed")       # and nothing new is claimed until opening time
            return
        for entry, r in list(self.in_line.items()):
            if self.service.acd.waiting_call(entry) is not None:
                await self.store.renew_claim(r.id, self.config.owner,
                                             now + dt.timedelta(seconds=self.config.lease))
        # A few at a time (as many as this engine has agents free, at least one): every due
        # reservation is in a line within a few polls, and engines sharing a store share them.
        free = sum(1 for a in self.service.acd.agents() if a.state == "available")
        claimed = await self.store.claim_reservations(now, self.config.owner, self.config.lease,
                                                      max(1, free))
        for r in claimed:
            self._enqueue(r, now)

    def _enqueue(self, r: Reservation, now: dt.datetime) -> None:
        entry = PREFIX + r.id
        if entry in self.in_line or r.queue not in self.service.specs:
            return
        mono = self.service.clock()
        arrived = mono - max(0.0, (now - r.arrived_at).total_seconds())
        self.service.acd.enqueue(entry, r.queue, r.priority, mono, arrived_at=arrived)
        self.in_line[entry] = r
        log.info("callback.in_line", reservation=r.id, queue=r.queue,
                 position=self.service.acd.position(entry))
        self.service._match()

    def _withdraw_all(self, why: str) -> None:
        for entry in list(self.in_line):
            if self.service.acd.waiting_call(entry) is not None and \
                    self.service.acd.waiting_call(entry).offered_to is None:
                self.service.acd.leave(entry, self.service.clock(), why)
                self.in_line.pop(entry, None)

    def withdraw_number(self, number: str, queue: str | None = None) -> None:
        """Cancelled reservations of ``number`` leave the line (unless already being dialled)."""
        for entry, r in list(self.in_line.items()):
            if r.number == number and (queue is None or r.queue == queue):
                waiting = self.service.acd.waiting_call(entry)
                if waiting is not None and waiting.offered_to is None:
                    self.service.acd.leave(entry, self.service.clock(), "cancelled")
                    self.in_line.pop(entry, None)

    # -- calling back ------------------------------------------------------------------------

    def serve(self, offer: Offer) -> None:
        """The line gave an agent to a reservation: call the customer (the agent is held)."""
        task = asyncio.create_task(self._call_back(offer), name=f"callback.{offer.call_id}")
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    def endpoint(self, number: str) -> str:
        return self.config.endpoint.format(e164=number, national=national_digits(number),
                                           digits=number.lstrip("+"))

    async def _call_back(self, offer: Offer) -> None:
        entry, agent_id = offer.call_id, offer.agent_id
        r = self.in_line.get(entry)
        acd, clock = self.service.acd, self.service.clock
        if r is None:
            acd.leave(entry, clock(), "lost")
            acd.ring_cancelled(agent_id, clock())
            return
        started = self.wall()
        if not self.config.hours.is_open(started):
            self._give_back(entry, agent_id)
            return
        log.info("callback.dialling", reservation=r.id, agent=agent_id, attempt=r.attempts + 1)
        customer: Call | None = None
        try:
            customer = await self.switch.dial(self.endpoint(r.number), timeout=self.config.ring_timeout,
                                              caller_id=self.config.caller_id or None,
                                              args=("callback", r.id))
            await customer.answer()
            if self.catalogue.has(INTRO):
                await customer.play([self.catalogue.media(INTRO, r.language)], barge_in=True)
            got = await customer.gather(max_digits=1, first_timeout=10, inter_timeout=1, terminator="")
            if got.digits != "1":
                await customer.hangup()
                await self._attempt_failed(r, entry, agent_id, started, "no key")
                return
        except DialFailed as exc:
            await self._attempt_failed(r, entry, agent_id, started,
                                       "busy" if exc.cause == 17 else "no answer")
            return
        except (CallerHungUp, AriError) as exc:
            if customer is not None:
                try:
                    await customer.hangup()
                except IvrError:
                    pass
            await self._attempt_failed(r, entry, agent_id, started, f"hung up ({type(exc).__name__})")
            return
        except asyncio.CancelledError:
            self._give_back(entry, agent_id)
            raise
        # Reached: done, never dialled again; the customer joins the line at their place and
        # takes the agent held for them.
        await self._finish(r, started, "reached", "done")
        self.in_line.pop(entry, None)
        acd.leave(entry, clock(), "called back")
        arrived = clock() - max(0.0, (self.wall() - r.arrived_at).total_seconds())
        acd.ring_cancelled(agent_id, clock())
        record = CallRecord(call_id=customer.id, caller=r.number, dialled="callback", number=r.number,
                            flow=None)
        record.priority, record.reason = r.priority, f"callback: {r.reason or 'reservation'}"
        record.language = r.language
        await self.service.queue_handoff(customer, record, r.queue, r.priority, record.reason,
                                         r.language, arrived_at=arrived)
        if record.outcome is None:
            record.end("completed")
        if self.save_record is not None:
            await self.save_record(record)

    def _give_back(self, entry: str, agent_id: str) -> None:
        """Not dialled after all (closed, shutting down): off the line, the agent free again."""
        acd, clock = self.service.acd, self.service.clock
        acd.leave(entry, clock(), "withdrawn")
        acd.ring_cancelled(agent_id, clock())
        self.in_line.pop(entry, None)
        self.service._match()

    async def _attempt_failed(self, r: Reservation, entry: str, agent_id: str,
                              started: dt.datetime, result: str) -> None:
        log.info("callback.attempt_failed", reservation=r.id, result=result, attempt=r.attempts + 1)
        acd, clock = self.service.acd, self.service.clock
        acd.leave(entry, clock(), result)
        acd.ring_cancelled(agent_id, clock())
        self.in_line.pop(entry, None)
        self.service._match()
        following = self.config.retry.next_attempt(started, r.attempts + 1, self.config.hours)
        await self._finish(r, started, result, None if following is not None else "failed", following)

    async def _finish(self, r: Reservation, started: dt.datetime, result: str,
                      final: str | None, next_due: dt.datetime | None = None) -> None:
        try:
            await self.store.finish_attempt(r.id, self.config.owner, result=result, at=started,
                                            next_due=next_due, final_status=final)
        except IvrError as exc:
            log.error("callback.not_recorded", reservation=r.id, result=result, error=str(exc))
