"""``WellnessDesk``: the dialler of wellness campaigns.

Every ``poll`` seconds at most (sooner when a call ends or an operator asks, ``run_now``) the
desk looks at each campaign: inside its window, not paused by a surge of the inbound line, and
with lines free under ``max_concurrent`` (counted in the store, across engines), it asks the
plan (``ivr.wellness.plan.pick``) whom to ring, claims each attempt in the store (atomically:
engines sharing a PostgreSQL never ring one person twice), and rings them through the callback
endpoint, showing the campaign's number.  An answered call runs the campaign's flow
(``flows/wellness.yaml``) on the engine (the ``Outbound`` port); the attempt's result is read
from the call record (``ivr.wellness.dialog.attempt_result``), a phone that never answered from
the switch's cause (``dial_result``).  Every attempt goes to the event log (``wellness.attempt``)
and, after it, the person's visit list entry is brought up to date: three failed days in a row
open one, a later contact clears it.  A visit pass over everyone also runs every few minutes,
as days end without a call (a window that closed with tries left).

Exactly once.  A claim is renewed while its call lasts.  The call's channel is named after the
attempt (``ivr-dial-wellness-<id>``), so after a restart or a take-over:

* the call still up is re-adopted (``adopt``): the attempt becomes this engine's, a caller who
  waited for an agent goes back into the line (the queues' restore), anyone else hears the
  flow again from its entry; the attempt ends with that call;
* an attempt whose call is gone is finished from what its record says (the engine notes it
  as the call goes), or as ``failed`` when no record was written (the engine stopped while the
  phone rang): it is never dialled again, and the person's next attempt follows the rules —
  nobody is rung twice for one attempt and nobody is skipped.

The desk speaks to ports only: the store, the ``Switch``, the engine's ``Outbound`` flows, the
queues' ``queue_variable`` (the surge queue's estimated wait), and ``note`` for the event log.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from ivr.call import Call, CallRecord, Switch, utcnow
from ivr.callbacks.dialog import national_digits
from ivr.errors import CallError, DialFailed, IvrError
from ivr.logs import mask_number
from ivr.store.base import OUTBOUND_DIALLED, WellnessClaim
from ivr.tasks import TaskSet
from ivr.wellness import plan
from ivr.wellness.dialog import Verdict, attempt_result, check_flow, dial_result
from ivr.wellness.model import Attempt, AttemptResult, Campaign, Person, Visit

if TYPE_CHECKING:                     # annotations only
    from ivr.config import WellnessConfig
    from ivr.flow.model import Flow
    from ivr.store.base import Store

log = structlog.get_logger(__name__)

__all__ = ["CHANNEL_PREFIX", "Outbound", "WellnessDesk", "attempt_of"]

CHANNEL_PREFIX = "ivr-dial-wellness-"     # + the attempt's id: its call, found again after a restart
VISIT_PASS = 300.0                        # seconds between two visit passes over everyone
IDLE_LOOK = 60.0                          # seconds at most between two looks when nobody is due
PLAN_SLICE = 200                          # people judged between two returns to the loop
FORCE_KEPT = 600.0                        # seconds an operator's "ring now" waits for a line
PEOPLE_PAGE = 1000


def channel_of(attempt_id: int) -> str:
    return f"{CHANNEL_PREFIX}{attempt_id}"


def attempt_of(args: Sequence[str]) -> int | None:
    """The attempt id of a wellness call's Stasis arguments (``wellness``, id); None when not."""
    if len(args) >= 2 and args[0] == OUTBOUND_DIALLED and args[1].isdigit():
        return int(args[1])
    return None


class Outbound(Protocol):
    """What the desk needs of the engine: the flows, and running one on a call it placed."""

    def outbound_flow(self, name: str) -> Flow | None:
        """The flow called ``name`` as it serves now; None when there is none."""

    async def run_outbound(self, call: Call, record: CallRecord, flow_name: str, *, language: str,
                           variables: Mapping[str, Any], adopted: bool = False,
                           args: Sequence[str] = ()) -> None:
        """Run the flow on the answered ``call`` to its end; ``record`` ends finished and saved.
        ``adopted``: a call re-adopted after a restart (the queues may take it back)."""


class SurgeWatch(Protocol):
    def queue_variable(self, name: str) -> Any: ...


class _Ringing:
    """An attempt in this engine's hands: its claim, the person, the call's task."""

    __slots__ = ("claim", "person", "campaign", "task", "until")

    def __init__(self, claim: WellnessClaim, person: Person, campaign: Campaign, until: dt.datetime) -> None:
        self.claim = claim
        self.person = person
        self.campaign = campaign
        self.until = until
        self.task: asyncio.Task[None] | None = None


class WellnessDesk:
    def __init__(self, config: WellnessConfig, store: Store, switch: Switch, flows: Outbound, *,
                 endpoint: str, owner: str, surge: SurgeWatch | None = None,
                 note: Callable[[str, str | None, str], None] | None = None,
                 wall_clock: Callable[[], dt.datetime] = utcnow,
                 settle: float = 0.5) -> None:
        self.config = config
        self.campaigns = {c.name: c for c in config.campaigns}
        self.store = store
        self.switch = switch
        self.flows = flows
        self.endpoint_template = endpoint
        self.owner = owner
        self.surge = surge
        self.note = note
        self.wall = wall_clock
        self.settle = settle
        self.ringing: dict[int, _Ringing] = {}        # attempt id → in this engine's hands
        self._adopting: set[int] = set()              # attempt ids of calls being re-adopted
        self.paused: dict[str, bool] = {c.name: False for c in config.campaigns}
        self.unusable: dict[str, str] = {}            # campaign → why its flow cannot serve it
        self.visits_open: int | None = None            # the visit list's length (None: not read yet)
        self.last_poll: dt.datetime | None = None
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._recovered = False
        self._last_visit_pass = -VISIT_PASS
        # Numbers an operator asked to ring now, and when: kept until a line takes them, the
        # rules refuse them, or FORCE_KEPT seconds have passed.
        self._forced: dict[str, dt.datetime] = {}
        # campaign → the wall-clock time before which nobody of it can become due (the last
        # look started everyone due and saw when the next one is); new people imported
        # meanwhile are seen at the latest ``IDLE_LOOK`` seconds later.
        self._next_look: dict[str, dt.datetime] = {}
        # campaign → (when, the people due then, in order) when the lines were full: the next
        # free line takes the next of them, until a full look (at least every IDLE_LOOK).
        self._due: dict[str, tuple[dt.datetime, list[Person]]] = {}
        # Results the store refused (it was away), written again at every poll until it takes
        # them: attempt id → (claim, verdict, campaign, call id).
        self._unwritten: dict[int, tuple[WellnessClaim, Verdict, Campaign | None, str | None]] = {}
        self._loop_tasks = TaskSet("wellness.poll")
        self._calls = TaskSet("wellness.calls")

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the dialler; it dials only once ``ready`` is called (the engine's calls of
        before a restart re-adopted first)."""
        self._loop_tasks.spawn(self._loop(), name="wellness.poll")

    def ready(self) -> None:
        self._ready.set()

    async def close(self) -> None:
        """Stop dialling; calls in progress are left to the engine's drain (their attempts end
        with them), claims not renewed lapse for a successor."""
        await self._loop_tasks.cancel_all(5)
        pending = await self._calls.wait(0)
        if pending:
            await self._calls.cancel_all(5)

    def run_now(self, number: str | None = None) -> None:
        """Look at the campaigns at once; with ``number``, ring that person now if the window
        is open and they are not reached today and have tries left (the retry delay waived)."""
        if number is not None:
            self._forced[number] = self.wall()
        self._next_look.clear()
        self._due.clear()
        self._wake.set()

    async def _loop(self) -> None:
        await self._ready.wait()
        await asyncio.sleep(self.settle)             # the re-adopted calls reach ``adopt`` first
        while True:
            self._wake.clear()
            try:
                if not self._recovered:
                    await self.recover()
                await self.poll()
            except IvrError as exc:
                log.warning("wellness.poll_failed", error=str(exc))
            except Exception:
                log.exception("wellness.poll_crashed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.poll):
                    await self._wake.wait()

    # -- recovery --------------------------------------------------------------------------------

    async def recover(self) -> None:
        """Once at start: finish the attempts an engine before us under the same name left
        unfinished whose call is gone.  (Other engines' lapsed claims are taken over at every
        poll, ``_recover_lapsed``.)"""
        for claim in await self.store.unfinished_wellness_attempts():
            if (claim.claimed_by == self.owner and claim.id not in self.ringing
                    and claim.id not in self._adopting):
                await self._settle_gone(claim)
        self._recovered = True

    async def _settle_gone(self, claim: WellnessClaim) -> None:
        """An unfinished attempt whose call is gone: finished from its record, never dialled."""
        record = await self.store.get_call(channel_of(claim.id))
        if record is None:
            verdict = Verdict(AttemptResult.FAILED, "the engine stopped while the phone rang")
        else:
            verdict = attempt_result(record)
            verdict = Verdict(verdict.result, f"{verdict.detail} (finished after an engine restart)")
        campaign = self.campaigns.get(claim.campaign)
        await self._finish(claim, verdict, campaign, call_id=None if record is None else record.call_id)

    async def adopt(self, call: Call, args: Sequence[str]) -> None:
        """A wellness call re-adopted after a restart: this engine's attempt now, carried to its
        end.  Registered before the first ``await``, so ``recover`` leaves it alone."""
        attempt_id = attempt_of(args)
        if attempt_id is None or attempt_id in self.ringing or attempt_id in self._adopting:
            await _hang_up(call)
            return
        self._adopting.add(attempt_id)
        try:
            now = self.wall()
            until = now + dt.timedelta(seconds=self.config.lease)
            if not await self.store.take_over_wellness_claim(attempt_id, self.owner, until):
                log.info("wellness.adopted_finished", attempt=attempt_id)
                await _hang_up(call)                # the attempt ended already: not ours to run
                return
            claim = next((c for c in await self.store.unfinished_wellness_attempts()
                          if c.id == attempt_id), None)
            person = None if claim is None else await self.store.get_wellness_person(claim.number)
            campaign = None if claim is None else self.campaigns.get(claim.campaign)
            if claim is None or person is None or campaign is None:
                await _hang_up(call)
                if claim is not None:
                    await self._finish(claim, Verdict(AttemptResult.FAILED, "re-adopted, but its "
                                                      "person or campaign is gone"), campaign)
                return
            held = _Ringing(claim, person, campaign, until)
            held.task = asyncio.current_task()
            self.ringing[attempt_id] = held
            log.info("wellness.adopted", attempt=attempt_id, campaign=campaign.name,
                     number=mask_number(person.number))
            await self._converse(held, call, started=claim.claimed_at, adopted=True, args=args)
        finally:
            self._adopting.discard(attempt_id)
            self.ringing.pop(attempt_id, None)
            self._wake.set()

    # -- the campaigns -----------------------------------------------------------------------

    async def poll(self) -> None:
        now = self.wall()
        self.last_poll = now
        for number, asked in list(self._forced.items()):
            if (now - asked).total_seconds() > FORCE_KEPT:
                del self._forced[number]
        for claim, verdict, campaign, call_id in list(self._unwritten.values()):
            await self._finish(claim, verdict, campaign, call_id=call_id, again=True)
        await self._recover_lapsed(now)
        in_progress = await self.store.wellness_in_progress(now)
        visit_pass = time.monotonic() - self._last_visit_pass >= VISIT_PASS
        for campaign in self.campaigns.values():
            await self._step(campaign, now, in_progress.get(campaign.name, 0), visit_pass)
        if visit_pass:
            self._last_visit_pass = time.monotonic()
            self.visits_open = len(await self.store.list_wellness_visits(open_only=True,
                                                                          limit=1_000_000))

    async def _recover_lapsed(self, now: dt.datetime) -> None:
        for claim in await self.store.unfinished_wellness_attempts():
            if (claim.id in self.ringing or claim.id in self._adopting or claim.id in self._unwritten
                    or claim.claim_until is None or claim.claim_until >= now):
                continue
            taken = await self.store.claim_wellness_attempt(claim.number, self.owner, now,
                                                            self.config.lease)
            if taken is not None and taken.id == claim.id:
                log.info("wellness.lapsed_claim", attempt=claim.id, was=claim.claimed_by)
                await self._settle_gone(taken)

    def _flow_ok(self, campaign: Campaign) -> bool:
        flow = self.flows.outbound_flow(campaign.flow)
        if flow is None:
            why = f"flow '{campaign.flow}' is not loaded"
        else:
            problems = check_flow(flow, campaign)
            why = "; ".join(str(p) for p in problems)
        before = self.unusable.get(campaign.name)
        if why:
            if before != why:
                log.error("wellness.flow_unusable", campaign=campaign.name, why=why,
                          effect="nobody of this campaign is rung until the flow is mended")
            self.unusable[campaign.name] = why
            return False
        if before is not None:
            log.info("wellness.flow_usable", campaign=campaign.name)
            self.unusable.pop(campaign.name, None)
        return True

    def _surge_paused(self, campaign: Campaign) -> bool:
        surge = campaign.surge
        if surge is None or self.surge is None:
            return False
        wait = self.surge.queue_variable(f"queue.{surge.queue}.estimated_wait")
        if wait is None and (self.surge.queue_variable(f"queue.{surge.queue}.waiting") or 0) > 0:
            wait = float("inf")                # callers wait and nobody can serve them
        was = self.paused.get(campaign.name, False)
        now_paused = plan.surge_paused(surge, wait, was)
        if now_paused != was:
            self.paused[campaign.name] = now_paused
            self._next_look.pop(campaign.name, None)   # resumed: look at once
            kind = "wellness.paused" if now_paused else "wellness.resumed"
            shown = "unbounded (nobody can serve)" if wait == float("inf") else f"{wait or 0:.0f} s"
            detail = (f"campaign {campaign.name}: {surge.queue} estimated wait {shown} "
                      + (f"(pauses at {surge.pause_over:g} s)" if now_paused
                         else f"(resumes under {surge.resume_under:g} s)"))
            log.info(kind, campaign=campaign.name, queue=surge.queue, estimated_wait=shown)
            self._note(kind, None, detail)
        return now_paused

    async def _step(self, campaign: Campaign, now: dt.datetime, in_progress: int,
                    visit_pass: bool) -> None:
        paused = self._surge_paused(campaign)
        open_now = campaign.hours.is_open(now)
        if not visit_pass and (paused or not open_now):
            return
        resting = self._next_look.get(campaign.name)
        if not visit_pass and not self._forced and resting is not None and now < resting:
            return
        if not self._flow_ok(campaign):
            return
        queued = self._due.get(campaign.name)
        if (not visit_pass and not self._forced and queued is not None and queued[1]
                and (now - queued[0]).total_seconds() < IDLE_LOOK):
            # Lines were full at the last look: the next of its due list, without reading
            # everyone again (the claim still checks the person in the store).
            busy = {r.person.number for r in self.ringing.values()}
            room = plan.free_lines(campaign, in_progress)
            line = queued[1]
            while room > 0 and line:
                person = line.pop(0)
                if person.number in busy:
                    continue
                # Still due?  (Another engine may have reached them since the look.)
                looked = now - dt.timedelta(days=2)
                tried = await self.store.wellness_attempts(looked, number=person.number)
                if not plan.is_due(campaign, person, tried, now):
                    continue
                if await self._claim_and_ring(person, campaign, now, _newest(tried, looked)):
                    room -= 1
            return
        self._due.pop(campaign.name, None)
        people = await self._people(campaign.name)
        since = now - dt.timedelta(days=self.config.history_days)
        attempts: dict[str, list[Attempt]] = {}
        read = await self.store.wellness_attempts(since, campaign=campaign.name, limit=10_000_000)
        for i in range(0, len(read), PLAN_SLICE * 20):
            for a in read[i:i + PLAN_SLICE * 20]:
                attempts.setdefault(a.number, []).append(a)
            await asyncio.sleep(0)
        if visit_pass:
            await self._visit_pass(campaign, people, attempts, now)
        if paused or not open_now:
            return
        busy = {r.person.number for r in self.ringing.values()}
        candidates = [plan.Candidate(p, tuple(attempts.get(p.number, ())))
                      for p in people if p.number not in busy]
        # Who is due, a slice at a time, giving the loop back between slices (a large
        # campaign's look must not delay the calls); then the order among those due.
        keyed: list[tuple[tuple[int, dt.datetime, str], Person]] = []
        wake: dt.datetime | None = None                # the earliest a person not due now is
        for i in range(0, len(candidates), PLAN_SLICE):
            for c in candidates[i:i + PLAN_SLICE]:
                key = plan.due_key(campaign, c, now)
                if key is not None:
                    keyed.append((key, c.person))
                    continue
                when = plan.next_attempt(campaign, c.person, c.attempts, now)
                if when is not None and when > now and (wake is None or when < wake):
                    wake = when
            await asyncio.sleep(0)
        keyed.sort(key=lambda item: item[0])
        ordered = [person for _, person in keyed]      # as plan.pick orders them
        chosen = ordered[:plan.free_lines(campaign, in_progress)]
        forced = []
        for c in candidates:
            if c.person.number in self._forced:
                if self._may_force(campaign, c, now) and c.person not in chosen:
                    forced.append(c.person)        # kept until a line takes them
                else:
                    self._forced.pop(c.person.number, None)  # chosen anyway, or not allowed
        room = plan.free_lines(campaign, in_progress)
        self._next_look.pop(campaign.name, None)
        if len(ordered) < room:                # everyone due is rung now: rest until the next is
            idle = now + dt.timedelta(seconds=IDLE_LOOK)
            self._next_look[campaign.name] = idle if wake is None else min(wake, idle)
        starting = (forced + chosen)[:room]
        left = [p for p in ordered if p not in starting]
        if left:
            self._due[campaign.name] = (now, left)
        for person in starting:
            await self._claim_and_ring(person, campaign, now, _newest(attempts.get(person.number, ()), since))

    async def _claim_and_ring(self, person: Person, campaign: Campaign, now: dt.datetime,
                              seen: dt.datetime) -> bool:
        """Claim an attempt on ``person`` and ring them; False when the store gave no claim
        (another engine rings them or reached them after ``seen``, the newest attempt this
        engine saw; the cap is reached; they opted out) or the claim was a dead engine's
        attempt, finished instead of dialled."""
        claim = await self.store.claim_wellness_attempt(person.number, self.owner, now,
                                                        self.config.lease,
                                                        cap=campaign.max_concurrent, newer_than=seen)
        if claim is None:
            return False
        self._forced.pop(person.number, None)
        if claim.taken_over:
            await self._settle_gone(claim)      # a dead engine's attempt: finished, not dialled
            return False
        self._start(claim, person, campaign, now)
        return True

    @staticmethod
    def _may_force(campaign: Campaign, candidate: plan.Candidate, now: dt.datetime) -> bool:
        """An operator's "ring now": inside the window, not reached today, tries left today."""
        if candidate.person.opt_out or not campaign.hours.is_open(now):
            return False
        today = plan.local_day(campaign, now)
        todays = [a for a in candidate.attempts if plan.local_day(campaign, a.at) == today]
        if any(a.result.contact for a in todays):
            return False
        return sum(1 for a in todays if a.result.failed_contact) < campaign.attempts_per_day

    async def _people(self, campaign: str) -> list[Person]:
        people: list[Person] = []
        after: str | None = None
        while True:
            page = await self.store.list_wellness_people(campaign, PEOPLE_PAGE, after=after)
            people.extend(page)
            if len(page) < PEOPLE_PAGE:
                return people
            after = page[-1].number

    # -- one attempt -----------------------------------------------------------------------------

    def endpoint(self, number: str) -> str:
        return self.endpoint_template.format(e164=number, national=national_digits(number),
                                             digits=number.lstrip("+"))

    def _start(self, claim: WellnessClaim, person: Person, campaign: Campaign, now: dt.datetime) -> None:
        held = _Ringing(claim, person, campaign, now + dt.timedelta(seconds=self.config.lease))
        self.ringing[claim.id] = held
        held.task = self._calls.spawn(self._attempt(held), name=f"wellness.attempt.{claim.id}")

    async def _attempt(self, held: _Ringing) -> None:
        claim, person, campaign = held.claim, held.person, held.campaign
        started = claim.claimed_at
        log.info("wellness.dialling", attempt=claim.id, campaign=campaign.name,
                 number=mask_number(person.number))
        renewing = self._calls.spawn(self._renew(held), name=f"wellness.renew.{claim.id}")
        try:
            try:
                call = await self.switch.dial(self.endpoint(person.number),
                                              timeout=self.config.ring_timeout,
                                              caller_id=campaign.caller_id,
                                              args=(OUTBOUND_DIALLED, str(claim.id)),
                                              channel_id=channel_of(claim.id))
            except DialFailed as exc:
                await self._finish(claim, dial_result(exc), campaign)
                return
            except CallError as exc:
                # The error's text names the endpoint, which holds the number: not kept.
                await self._finish(claim, Verdict(AttemptResult.FAILED,
                                                  f"could not be placed ({type(exc).__name__})"),
                                   campaign)
                return
            await self._converse(held, call, started=started)
        finally:
            renewing.cancel()
            self.ringing.pop(claim.id, None)
            self._wake.set()

    async def _converse(self, held: _Ringing, call: Call, *, started: dt.datetime,
                        adopted: bool = False, args: Sequence[str] = ()) -> None:
        claim, person, campaign = held.claim, held.person, held.campaign
        record = CallRecord(call_id=call.id, caller=person.number, dialled=OUTBOUND_DIALLED,
                            number=person.number, flow=campaign.flow)
        record.reason = f"wellness: {campaign.name}"
        variables = {"caller.number": person.number, "caller.known": True,
                     "caller.language": person.language, "caller.name": person.name,
                     "wellness.campaign": campaign.name}
        renewing = None if not adopted else self._calls.spawn(self._renew(held),
                                                              name=f"wellness.renew.{claim.id}")
        try:
            await self.flows.run_outbound(call, record, campaign.flow, language=person.language,
                                          variables=variables, adopted=adopted, args=args)
        finally:
            if renewing is not None:
                renewing.cancel()
        await asyncio.shield(self._finish(claim, attempt_result(record), campaign, call_id=call.id))

    async def _renew(self, held: _Ringing) -> None:
        """Keep the claim while the call lasts (a third of the lease apart)."""
        every = self.config.lease / 3
        while True:
            await asyncio.sleep(every)
            until = self.wall() + dt.timedelta(seconds=self.config.lease)
            try:
                if await self.store.renew_wellness_claim(held.claim.id, self.owner, until):
                    held.until = until
                else:
                    log.warning("wellness.claim_lost", attempt=held.claim.id)
            except IvrError as exc:
                log.warning("wellness.renew_failed", attempt=held.claim.id, error=str(exc))

    async def _finish(self, claim: WellnessClaim, verdict: Verdict, campaign: Campaign | None, *,
                      call_id: str | None = None, again: bool = False) -> None:
        """Note the attempt's result (the store, the event log, the log), then the person's
        visit.  A result the store refuses is kept and written again at every poll."""
        self._next_look.pop(claim.campaign, None)     # their next try counts from now
        if not again:
            log.info("wellness.attempt", attempt=claim.id, campaign=claim.campaign,
                     number=mask_number(claim.number), result=str(verdict.result), detail=verdict.detail)
            self._note("wellness.attempt", call_id,
                       f"campaign {claim.campaign}; attempt {claim.id}; {verdict.result}: {verdict.detail}")
        try:
            done = await self.store.finish_wellness_attempt(claim.id, self.owner, result=verdict.result,
                                                            at=claim.claimed_at, detail=verdict.detail)
        except IvrError as exc:
            if not again:
                log.error("wellness.not_recorded", attempt=claim.id, result=str(verdict.result),
                          error=str(exc), effect="written again at every poll until the store takes it")
            self._unwritten[claim.id] = (claim, verdict, campaign, call_id)
            return
        self._unwritten.pop(claim.id, None)
        if again:
            log.info("wellness.recorded_late", attempt=claim.id, result=str(verdict.result))
        if not done:
            log.warning("wellness.not_ours", attempt=claim.id, result=str(verdict.result))
            return
        if campaign is not None:
            try:
                await self._update_visit(campaign, claim.number, self.wall())
            except IvrError as exc:
                log.warning("wellness.visit_not_updated", attempt=claim.id, error=str(exc))

    # -- the visit list ---------------------------------------------------------------------------

    async def _update_visit(self, campaign: Campaign, number: str, now: dt.datetime,
                            attempts: Sequence[Attempt] | None = None,
                            last: Visit | None | bool = False) -> None:
        if attempts is None:
            since = now - dt.timedelta(days=self.config.history_days)
            attempts = await self.store.wellness_attempts(since, number=number)
        if last is False:
            last = await self._last_visit(number)
        assert last is not True
        decision = plan.visit_decision(campaign, number, attempts, now, last)
        if decision.action is plan.VisitAction.OPEN and decision.visit is not None:
            visit = await self.store.open_wellness_visit(decision.visit)
            log.warning("wellness.visit_listed", campaign=campaign.name, number=mask_number(number),
                        failed_days=campaign.failed_days_to_visit, visit=visit.id)
            self._note("wellness.visit", None, f"campaign {campaign.name}; visit {visit.id} listed "
                       f"after {campaign.failed_days_to_visit} failed days")
            if self.visits_open is not None:
                self.visits_open += 1
        elif decision.action is plan.VisitAction.CLEAR and decision.cleared_at is not None:
            cleared = await self.store.clear_wellness_visits(number, decision.cleared_at)
            if cleared:
                log.info("wellness.visit_cleared", campaign=campaign.name, number=mask_number(number))
                self._note("wellness.visit", None, f"campaign {campaign.name}; visit "
                           f"{decision.visit.id if decision.visit else '?'} cleared: a call reached them")
                if self.visits_open is not None:
                    self.visits_open = max(0, self.visits_open - cleared)

    async def _last_visit(self, number: str) -> Visit | None:
        visits = await self.store.list_wellness_visits(open_only=False, number=number, limit=1_000_000)
        return max(visits, key=_newest_first, default=None)

    async def _visit_pass(self, campaign: Campaign, people: Sequence[Person],
                          attempts: Mapping[str, Sequence[Attempt]], now: dt.datetime) -> None:
        """Bring everyone's visit entry up to date (days end without a call, too)."""
        visits = await self.store.list_wellness_visits(open_only=False, campaign=campaign.name,
                                                       limit=1_000_000)
        newest: dict[str, Visit] = {}
        for v in visits:
            if v.number not in newest or _newest_first(v) > _newest_first(newest[v.number]):
                newest[v.number] = v
        for i, person in enumerate(people):
            if i % PLAN_SLICE == PLAN_SLICE - 1:
                await asyncio.sleep(0)            # give the loop back now and then
            tried = attempts.get(person.number)
            if not tried:
                continue
            await self._update_visit(campaign, person.number, now, tried, newest.get(person.number))

    # -- status -------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the dialler is doing now, per campaign (for the API and the wallboard)."""
        now = self.wall()
        campaigns = []
        for c in self.campaigns.values():
            campaigns.append({
                "name": c.name, "open": c.hours.is_open(now),
                "next_open": None if c.hours.is_open(now) else _iso(_next_open(c, now)),
                "paused": self.paused.get(c.name, False),
                "flow_problem": self.unusable.get(c.name),
                "ringing": sum(1 for r in self.ringing.values() if r.campaign.name == c.name),
                "max_concurrent": c.max_concurrent,
            })
        return {"campaigns": campaigns, "visits_open": self.visits_open,
                "last_poll": _iso(self.last_poll)}

    def figures(self) -> dict[str, Any]:
        """The wallboard's figures: the visit list's length, calls in progress, paused campaigns."""
        return {"visits_open": self.visits_open or 0, "ringing": len(self.ringing),
                "paused": sorted(name for name, paused in self.paused.items() if paused)}

    def _note(self, kind: str, call_id: str | None, detail: str) -> None:
        if self.note is not None:
            try:
                self.note(kind, call_id, detail)
            except Exception as exc:              # the event log must never break a call
                log.exception("wellness.note_failed", kind=kind, error=repr(exc))


def _newest(attempts: Sequence[Attempt], looked: dt.datetime) -> dt.datetime:
    """The start of the newest attempt among ``attempts`` (read from ``looked`` on)."""
    return max((a.at for a in attempts), default=looked)


def _newest_first(visit: Visit) -> tuple[dt.datetime, int]:
    """A person's newest visit entry has the greatest key."""
    return visit.since, visit.id or 0


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.astimezone(dt.UTC).isoformat()


def _next_open(campaign: Campaign, now: dt.datetime) -> dt.datetime | None:
    try:
        return campaign.hours.next_open(now)
    except ValueError:
        return None


async def _hang_up(call: Call) -> None:
    try:
        await call.hangup()
    except IvrError:
        pass
