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

Never dialled twice, never dialled once cancelled: a claim is renewed every poll while the
reservation waits in a line, and renewed once more just before the customer's phone is rung.
A renewal the store refuses (the reservation was cancelled by an operator or a caller, or
another engine holds it now) withdraws it from the line at once; a store that cannot be
reached keeps it in line only until the last successful renewal's lease runs out.

The desk speaks to the queues through ports only (``ivr.call``): ``Line`` to hold places and
hear when their turn comes, ``Queues`` to hand a reached customer to the line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from ivr.call import Call, CallRecord, Outcome, Prompt, Queues, Switch, Line, Turn, utcnow
from ivr.callbacks.dialog import choose_time, confirm_number, national_digits
from ivr.callbacks.model import Reservation
from ivr.errors import CallEnded, CallError, ConfigError, DialFailed, IvrError
from ivr.prompts import Catalogue
from ivr.tasks import TaskSet

if TYPE_CHECKING:                     # annotations only: both are passed in by app.py
    from ivr.config import CallbacksConfig
    from ivr.store.base import Store

log = structlog.get_logger(__name__)

__all__ = ["CallbackDesk", "PREFIX"]

PREFIX = "cb-"                       # line entries of reservations: cb-<reservation id>
INTRO = "callback_intro"
MADE, FAILED = "callback_made", "callback_failed"


class _Held:
    """A reservation holding a place in a line, and until when this engine's claim runs."""

    __slots__ = ("reservation", "claim_until", "dialling")

    def __init__(self, reservation: Reservation, claim_until: dt.datetime) -> None:
        self.reservation = reservation
        self.claim_until = claim_until
        self.dialling: asyncio.Task[None] | None = None


class CallbackDesk:
    def __init__(self, config: CallbacksConfig, store: Store, line: Line, queues: Queues, switch: Switch,
                 catalogue: Catalogue, *, region: str = "KR",
                 wall_clock: Callable[[], dt.datetime] = utcnow,
                 save_record: Callable[[CallRecord], Awaitable[None]] | None = None) -> None:
        self.config = config
        self.store = store
        self.line = line
        self.queues = queues
        self.switch = switch
        self.catalogue = catalogue
        self.region = region
        self.wall = wall_clock
        self.save_record = save_record
        self.in_line: dict[str, _Held] = {}        # line entry id → the reservation held there
        self._poller = TaskSet("callbacks.poll")
        self._calls = TaskSet("callbacks.calls")

    def set_catalogue(self, catalogue: Catalogue) -> None:
        """Prompts reloaded: what callers and customers hear from now on."""
        self.catalogue = catalogue

    # -- booking (the Booking port) ----------------------------------------------------------

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

    async def cancel_for(self, number: str, queue: str | None = None) -> int:
        """A caller who calls again cancels their open reservations (a flow's
        ``cancel_callback`` node): stored as cancelled, and out of the line at once.  A store
        failure counts as none cancelled."""
        try:
            count = await self.store.cancel_reservations_for(number, queue)
        except IvrError as exc:
            log.error("callback.cancel_failed", error=str(exc))
            return 0
        for entry, held in list(self.in_line.items()):
            r = held.reservation
            if r.number == number and (queue is None or r.queue == queue):
                self._withdraw(entry, "cancelled")
        return count

    async def booked_on(self, call_id: str) -> str | None:
        """The reservation booked on ``call_id`` (after a restart: did the caller in the callback
        dialog finish booking?).  Looked for among the 200 booked last; None when the store
        cannot tell."""
        try:
            recent = await self.store.list_reservations()
        except IvrError as exc:
            log.warning("callback.booking_not_read", error=str(exc))
            return None
        return next((r.id for r in recent if r.call_id == call_id), None)

    async def reservations(self, status: str | None = None) -> list[Reservation]:
        """Reservations as the store keeps them (all, or those with ``status``)."""
        return await self.store.list_reservations(status)

    async def cancel(self, reservation_id: str) -> bool:
        """An operator cancels one reservation: stored as cancelled, out of the line at once,
        and a call back in progress to it is stopped unless the customer already accepted.
        False when there is no open reservation with that id."""
        if not await self.store.cancel_reservation(reservation_id):
            return False
        self._withdraw(PREFIX + reservation_id, "cancelled")
        return True

    def _withdraw(self, entry: str, why: str) -> None:
        held = self.in_line.get(entry)
        if held is None:
            return
        if held.dialling is not None and not held.dialling.done():
            held.dialling.cancel()             # ringing the customer: stop (gives the agent back)
            return
        if self.line.withdraw(entry, why):
            self.in_line.pop(entry, None)
            log.info("callback.withdrawn", reservation=held.reservation.id, why=why)

    async def _play(self, call: Call, prompt: str, language: str) -> None:
        if self.catalogue.has(prompt):
            try:
                await call.play([Prompt(prompt, language)])
            except CallEnded:
                pass

    # -- claiming ----------------------------------------------------------------------------

    async def start(self, *, sole: bool = False) -> None:
        """Release this owner's claims (an engine before us under the same owner is gone) and
        start polling.  ``sole``: this engine holds the engine lease, so it is the only one
        dialling: every other owner's claims are a dead engine's and are released too (a
        standby taking over dials them at once instead of after their lease)."""
        try:
            released = await self.store.release_claims(self.config.owner)
            if released:
                log.info("callback.claims_released", count=released, owner=self.config.owner)
            if sole:
                taken = await self.store.release_claims(self.config.owner, others=True)
                if taken:
                    log.info("callback.claims_released", count=taken, owner="others",
                             why="this engine holds the engine lease")
        except IvrError as exc:
            log.warning("callback.release_failed", error=str(exc))
        self._poller.spawn(self._loop(), name="callbacks.poll")

    async def close(self) -> None:
        await self._poller.cancel_all(5)
        await self._calls.cancel_all(5)             # a call back ringing gives its agent back
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
        await self._renew_all(now)
        # A few at a time (as many as this engine has agents free, at least one): every due
        # reservation is in a line within a few polls, and engines sharing a store share them.
        claimed = await self.store.claim_reservations(now, self.config.owner, self.config.lease,
                                                      max(1, self.line.free_agents()))
        for r in claimed:
            self._enqueue(r, now)

    async def _renew_all(self, now: dt.datetime) -> None:
        until = now + dt.timedelta(seconds=self.config.lease)
        for entry, held in list(self.in_line.items()):
            if held.dialling is not None:
                continue                       # renewed just before dialling; finished after
            try:
                kept = await self.store.renew_claim(held.reservation.id, self.config.owner, until)
            except IvrError as exc:
                if now >= held.claim_until:
                    log.warning("callback.claim_expired", reservation=held.reservation.id,
                                error=str(exc))
                    self._withdraw(entry, "claim expired")
                continue
            if kept:
                held.claim_until = until
            else:                              # cancelled, or another engine has it now
                log.info("callback.claim_lost", reservation=held.reservation.id)
                self._withdraw(entry, "claim lost")

    def _enqueue(self, r: Reservation, now: dt.datetime) -> None:
        entry = PREFIX + r.id
        if entry in self.in_line or not self.line.has_queue(r.queue):
            return
        self.in_line[entry] = _Held(r, now + dt.timedelta(seconds=self.config.lease))
        position = self.line.hold_place(entry, r.queue, r.priority, r.arrived_at, self._on_turn)
        log.info("callback.in_line", reservation=r.id, queue=r.queue, position=position)

    def _withdraw_all(self, why: str) -> None:
        for entry in list(self.in_line):
            held = self.in_line[entry]
            if held.dialling is None and self.line.withdraw(entry, why):
                self.in_line.pop(entry, None)

    # -- calling back ------------------------------------------------------------------------

    def _on_turn(self, turn: Turn) -> None:
        """The line gave an agent to a reservation: call the customer (the agent is held)."""
        held = self.in_line.get(turn.entry)
        task = self._calls.spawn(self._call_back(turn, held), name=f"callback.{turn.entry}")
        if held is not None:
            held.dialling = task

    def endpoint(self, number: str) -> str:
        template = self.config.endpoint
        if template is None:                   # app.py builds a desk only with an endpoint
            raise ConfigError("callbacks.endpoint is not set: there is no line to call customers back on")
        return template.format(e164=number, national=national_digits(number),
                                           digits=number.lstrip("+"))

    async def _call_back(self, turn: Turn, held: _Held | None) -> None:
        if held is None:
            self.line.release(turn, "lost")
            return
        r = held.reservation
        started = self.wall()
        if not self.config.hours.is_open(started):
            self._give_back(turn, "closed")
            return
        try:                                   # still ours? (cancelled, or another engine has it)
            kept = await self.store.renew_claim(r.id, self.config.owner,
                                                started + dt.timedelta(seconds=self.config.lease))
        except IvrError as exc:
            kept = started < held.claim_until
            log.warning("callback.renew_failed", reservation=r.id, error=str(exc), dialling=kept)
        except asyncio.CancelledError:
            self._give_back(turn, "cancelled")
            raise
        if not kept:
            log.info("callback.claim_lost", reservation=r.id)
            self._give_back(turn, "claim lost")
            return
        log.info("callback.dialling", reservation=r.id, agent=turn.agent_id, attempt=r.attempts + 1)
        customer: Call | None = None
        try:
            customer = await self.switch.dial(self.endpoint(r.number), timeout=self.config.ring_timeout,
                                              caller_id=self.config.caller_id or None,
                                              args=("callback", r.id))
            await customer.answer()
            if self.catalogue.has(INTRO):
                await customer.play([Prompt(INTRO, r.language)], barge_in=True)
            got = await customer.gather(max_digits=1, first_timeout=10, inter_timeout=1, terminator="")
            if got.digits != "1":
                await customer.hangup()
                await self._attempt_failed(r, turn, started, "no key")
                return
        except DialFailed as exc:
            await self._attempt_failed(r, turn, started, "busy" if exc.cause == 17 else "no answer")
            return
        except CallError as exc:
            if customer is not None:
                try:
                    await customer.hangup()
                except IvrError:
                    pass
            await self._attempt_failed(r, turn, started, f"hung up ({type(exc).__name__})")
            return
        except asyncio.CancelledError:
            if customer is not None and not customer.hung_up:
                self._spawn_hangup(customer)
            self._give_back(turn, "withdrawn")
            raise
        # Reached: done, never dialled again; the customer joins the line at their place and
        # takes the agent held for them.  (Off our list first: a cancel from now on is too late.)
        self.in_line.pop(turn.entry, None)
        await asyncio.shield(self._finish(r, started, "reached", "done"))
        self.line.take(turn)
        record = CallRecord(call_id=customer.id, caller=r.number, dialled="callback", number=r.number,
                            flow=None)
        record.priority, record.reason = r.priority, f"callback: {r.reason or 'reservation'}"
        record.language = r.language
        await self.queues.queue_handoff(customer, record, r.queue, r.priority, record.reason,
                                        r.language, arrived_at=r.arrived_at)
        if record.outcome is None:
            record.end(Outcome.COMPLETED)
        if self.save_record is not None:
            await self.save_record(record)

    def _spawn_hangup(self, call: Call) -> None:
        async def hang_up() -> None:
            try:
                await call.hangup()
            except IvrError:
                pass
        self._calls.spawn(hang_up(), name=f"callback.hangup.{call.id}")

    def _give_back(self, turn: Turn, why: str) -> None:
        """Not dialled after all (closed, cancelled, shutting down): off the line, the agent
        free again."""
        self.in_line.pop(turn.entry, None)
        self.line.release(turn, why)

    async def _attempt_failed(self, r: Reservation, turn: Turn, started: dt.datetime,
                              result: str) -> None:
        log.info("callback.attempt_failed", reservation=r.id, result=result, attempt=r.attempts + 1)
        self.in_line.pop(turn.entry, None)
        self.line.release(turn, result)
        following = self.config.retry.next_attempt(started, r.attempts + 1, self.config.hours)
        await self._finish(r, started, result, None if following is not None else "failed", following)

    async def _finish(self, r: Reservation, started: dt.datetime, result: str,
                      final: str | None, next_due: dt.datetime | None = None) -> None:
        try:
            await self.store.finish_attempt(r.id, self.config.owner, result=result, at=started,
                                            next_due=next_due, final_status=final)
        except IvrError as exc:
            log.error("callback.not_recorded", reservation=r.id, result=result, error=str(exc))
