"""``QueueService``: the agent queues running on the switch.

A caller handed to a queue (a flow's ``queue`` node or a bypass rule) joins the waiting list
(``Acd``: priority first, then arrival) and the holding bridge, where music on hold plays and,
every ``announce_every`` seconds, the caller hears their place in line and the expected wait
as a range ("less than 5 minutes").  When an agent serving the queue is free, the agent's
phone is rung (``Switch.dial``, ``ring_timeout``); an agent who does not answer is paused
("no answer") and the caller is offered to the next one.  On answer the caller leaves the
holding bridge and joins the agent in a mixing bridge; when either hangs up both legs are hung
up and the agent's wrap-up starts.

Nobody waits forever: after the queue's ``max_wait`` (or at once when no agent serving the
queue is logged in) the caller goes to the ``overflow`` queue (keeping their place by arrival
time) or hears a polite message and is hung up.

The caller's own task (the flow runner) carries the call from the hand-off to the end;
ringing agents run as tasks of this service; one ticker ends wrap-ups and enforces deadlines.

Ports: to flows this service is the ``Queues`` port (``ivr.call``); to the callback desk it is
the ``Line`` port (places held for reservations, told when their turn comes), and it knows the
desk only as the ``Booking`` port.  It speaks to calls through the ``Call`` port and to the
switch through ``Switch``; it imports nothing of ARI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog

from ivr.acd.core import Acd
from ivr.acd.estimate import announce_range
from ivr.acd.model import AgentState, AgentStatus, NoSuchCall, Offer, QueueSpec
from ivr.acd.restore import Restored, RestoredTalk, restore_agents
from ivr.flow.model import CallbackOffer
from ivr.call import Booking, Bridge, Call, CallRecord, Outcome, Prompt, Switch, Turn, utcnow
from ivr.errors import CallEnded, CallError, DialFailed, IvrError
from ivr.flow.say import say_number, say_ordinal
from ivr.prompts import Catalogue
from ivr.tasks import TaskSet, first_done

log = structlog.get_logger(__name__)

__all__ = ["QueueBoard", "QueueService"]

POSITION_PRE, POSITION_POST = "queue_position_pre", "queue_position_post"
WAIT_PRE, WAIT_POST, WAIT_LONG = "queue_wait_pre", "queue_wait_post", "queue_wait_long"
NEXT_IN_LINE, SORRY = "queue_next", "queue_sorry"
CALLBACK_OFFER = "callback_offer"
RESUME_WAIT = 10.0            # seconds a re-adopted conversation waits for the agent's leg to be re-adopted
SERVER_DOWN = "server down"   # the pause of an agent whose center's server went while on a call
FIRST_ANNOUNCEMENT = 3.0      # seconds after joining the line: the caller hears where they stand
RING_RECHECK = 2.0            # seconds: the next look for an announcement while an agent rings


@dataclasses.dataclass(eq=False, slots=True)
class _Caller:
    call: Call
    record: CallRecord
    queue: str
    priority: str
    language: str
    arrived_at: float              # the place in line (kept across overflow)
    deadline: float                # when the current queue's max_wait runs out
    outcome: asyncio.Future[str]
    ring: asyncio.Task[None] | None = None
    agent_id: str | None = None
    agent_call: Call | None = None
    in_holding: bool = False
    callback: CallbackOffer | None = None
    reason: str | None = None
    offered_at: float | None = None        # when a callback was last offered
    note: str | None = None                # served by another center: which, and why


class Watcher(Protocol):
    """Told, as it happens, of the turns of the calls it watches (``QueueService.watch``):
    the video entrance shows the waiting caller and the interpreter's page what happens."""

    def ringing(self, call_id: str, agent_id: str) -> None: ...

    def connected(self, call_id: str, agent_id: str) -> None: ...

    def ring_ended(self, call_id: str, agent_id: str) -> None: ...


class QueueService:
    def __init__(self, acd: Acd, specs: Mapping[str, QueueSpec], switch: Switch,
                 catalogue: Catalogue, *, music: str | None = "default", default_language: str = "ko",
                 clock: Callable[[], float] = time.monotonic, tick: float = 0.5,
                 wall_clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.acd = acd
        self.specs = dict(specs)
        self.switch = switch
        self.catalogue = catalogue
        self.music = music
        self.default_language = default_language
        self.clock = clock
        self.wall = wall_clock
        self.tick_interval = tick
        self.callers: dict[str, _Caller] = {}
        # (deadline, call id) of every caller in line, and stale entries of those who left
        # (dropped as they come up, or all at once when they outnumber the callers).
        self._deadlines: list[tuple[float, str]] = []
        self._holding: dict[str, Bridge] = {}         # the waiting room on each server
        self._holding_lock = asyncio.Lock()
        # center → the agents taken out when its last server went (with a pause's reason)
        self._away: dict[str, dict[str, str | None]] = {}
        self._ticker = TaskSet("acd.ticker")
        self._rings = TaskSet("acd.rings")
        self._booking: Booking | None = None        # the callback desk, when callbacks are on
        self._held: dict[str, Callable[[Turn], None]] = {}   # places held for reservations
        self._restored = Restored({}, {}, {})       # what a restart picks up again
        self._legs: dict[str, asyncio.Future[Call]] = {}     # agents' legs picked up again
        self._settle = TaskSet("acd.restored")
        self._watchers: dict[str, Watcher] = {}      # call id → who is told of its turns

    def watch(self, call_id: str, watcher: Watcher | None) -> None:
        """Tell ``watcher`` of ``call_id``'s turns (None: stop)."""
        if watcher is None:
            self._watchers.pop(call_id, None)
        else:
            self._watchers[call_id] = watcher

    def _tell(self, call_id: str, what: str, agent_id: str) -> None:
        watcher = self._watchers.get(call_id)
        if watcher is not None:
            try:
                getattr(watcher, what)(call_id, agent_id)
            except Exception:
                log.exception("acd.watcher_failed", what=what)

    def place(self, call_id: str) -> tuple[int, float | None] | None:
        """A waiting caller's place in line (1 is next) and expected wait in seconds (None:
        nobody on duty to estimate from); None when the call is not in a line."""
        if call_id not in self.callers:
            return None
        try:
            return self.acd.position(call_id), self.acd.estimate_wait(call_id, self.clock())
        except NoSuchCall:
            return None

    def staffed(self, queue: str) -> tuple[int, int]:
        """Agents serving ``queue``: (logged in and not paused, paused)."""
        return self.acd.staffed(queue)

    def take_out(self, call_id: str, why: str) -> bool:
        """Take a waiting caller out of the line for good with ``why`` (``booked: <detail>``:
        they booked a consultation instead); False when the call is not waiting (an agent is
        rung for it, or it is gone)."""
        c = self.callers.get(call_id)
        if c is None or c.outcome.done() or c.ring is not None:
            return False
        self.acd.leave(call_id, self.clock(), "callback")
        c.outcome.set_result(why)
        return True

    def attach_booking(self, booking: Booking) -> None:
        """Callbacks are on: waiting callers may be offered one (``queue`` nodes with
        ``callback:``) and ``cancel_callbacks`` reaches the desk."""
        self._booking = booking

    def set_catalogue(self, catalogue: Catalogue) -> None:
        """Prompts reloaded: what callers hear from now on (announcements, messages)."""
        self.catalogue = catalogue

    def _mono(self, arrived_at: dt.datetime) -> float:
        """A wall-clock arrival on this service's clock (a place in line)."""
        return self.clock() - max(0.0, (self.wall() - arrived_at).total_seconds())

    # -- lifetime ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._ticker.spawn(self._tick_loop(), name="acd.ticker")

    async def close(self) -> None:
        await self._settle.cancel_all(1)
        await self._ticker.cancel_all(5)
        await self._rings.cancel_all(5)             # a ringing phone is hung up by its task
        for bridge in self._holding.values():
            try:
                await bridge.destroy()
            except IvrError as exc:
                log.info("acd.holding_destroy_failed", error=str(exc))

    # -- the caller's side: called from the flow runner --------------------------------------

    async def queue_handoff(self, call: Call, record: CallRecord, queue: str, priority: str | None,
                            reason: str | None, language: str | None = None, *,
                            callback: CallbackOffer | None = None,
                            arrived_at: dt.datetime | None = None) -> None:
        """Carry ``call`` from the hand-off to its end; the outcome goes into ``record``:
        ``agent_connected`` (detail: agent and wait), ``abandoned`` (the caller hung up while
        waiting), ``queue_timeout`` (nobody could take the call: polite message, hang-up),
        ``callback_booked`` (the caller took a callback offer; detail: the reservation).

        ``arrived_at`` (wall clock) keeps an earlier place in line, e.g. for a customer called
        back who joins the line again at their original place, or a caller picked up again
        after an engine restart."""
        spec = self.specs.get(queue)
        language = language or self.default_language
        if spec is None:
            log.error("acd.unknown_queue", queue=queue)
            record.end(Outcome.ERROR, f"no queue named '{queue}' in the acd config")
            await self._say_sorry(call, language)
            return
        now = self.clock()
        loop = asyncio.get_running_loop()
        first = now if arrived_at is None else min(now, self._mono(arrived_at))
        c = _Caller(call, record, queue, priority or "normal", language, arrived_at=first,
                    deadline=now + spec.max_wait, outcome=loop.create_future())
        c.callback = callback if self._booking is not None else None
        c.reason = reason
        record.queue = queue
        self.callers[call.id] = c
        heapq.heappush(self._deadlines, (c.deadline, call.id))
        self.acd.enqueue(call.id, queue, c.priority, now, arrived_at=first, reason=reason,
                         language=language, center=call.center)
        log.info("acd.queued", queue=queue, priority=c.priority, reason=reason,
                 position=self.acd.position(call.id))
        try:
            while True:
                result = await self._wait_in_line(c)
                if result is None:
                    self._abandon(c, call.ended_as)
                    return
                if result == "connected":
                    await self._converse(c)
                    return
                if result == "callback":
                    if await self._book_callback(c):
                        return
                    continue                              # not booked: back in line, same place
                if result.startswith("booked: "):         # a consultation booked instead
                    self._left_line(c)
                    record.end(Outcome.CALLBACK_BOOKED, f"{c.queue}: {result.removeprefix('booked: ')}")
                    log.info("acd.consultation_booked", queue=c.queue)
                    await self._leave_holding(c)
                    await _hang_up_quietly(call)
                    return
                self._left_line(c)
                record.end(Outcome.QUEUE_TIMEOUT, f"{c.queue}: {result}")
                await self._leave_holding(c)
                await self._say_sorry(call, language)
                return
        except CallEnded as exc:
            self._abandon(c, exc.reason)
        finally:
            self._forget(c)
            self._watchers.pop(call.id, None)

    async def _wait_in_line(self, c: _Caller) -> str | None:
        """Hold until the caller's turn ends: ``connected``, ``callback``, a time-out reason,
        or None when the caller hung up."""
        announcer: asyncio.Task[None] | None = None
        hangup: asyncio.Task[bool] | None = None
        try:
            self._check_staffed(c)
            self._match()
            if not c.outcome.done():
                await self._enter_holding(c)
            announcer = asyncio.create_task(self._announce(c), name=f"acd.announce.{c.call.id}")
            # The announcer's waits watch the channel: it ends when the caller hangs up, so
            # while it runs no second task a waiting caller need watch for the hang-up.
            await first_done(c.outcome, announcer)
            if not c.outcome.done() and not c.call.hung_up:
                # The announcer stopped otherwise (a failure it could not get past): wait on.
                hangup = asyncio.create_task(c.call.wait_hangup(), name=f"acd.hangup.{c.call.id}")
                await first_done(c.outcome, hangup)
            announcer.cancel()
            await asyncio.gather(announcer, return_exceptions=True)
            if not c.outcome.done() or c.call.hung_up and c.outcome.result() != "connected":
                return None
            return c.outcome.result()
        finally:
            for task in (announcer, hangup):
                if task is not None and not task.done():
                    task.cancel()

    async def _book_callback(self, c: _Caller) -> bool:
        """The caller took the offer (and is off the line): confirm the number, store the
        reservation, then say so.  Not booked: back in the line at the same place."""
        assert self._booking is not None
        await self._leave_holding(c)
        waited = self.clock() - c.arrived_at
        reservation = await self._booking.book(c.call, queue=c.queue, priority=c.priority,
                                               reason=c.reason, language=c.language,
                                               waited=waited, call_id=c.call.id)
        if reservation is not None:
            c.record.waited = round(waited, 3)
            c.record.end(Outcome.CALLBACK_BOOKED, f"{c.queue}: reservation {reservation}")
            log.info("acd.callback_booked", queue=c.queue, reservation=reservation, waited=round(waited))
            await _hang_up_quietly(c.call)
            return True
        now = self.clock()
        c.outcome = asyncio.get_running_loop().create_future()
        c.callback = None                      # offered once and it did not work out: no more
        self.acd.enqueue(c.call.id, c.queue, c.priority, now, arrived_at=c.arrived_at,
                         reason=c.reason, language=c.language, center=c.call.center)
        return False

    def _accept_callback(self, c: _Caller) -> None:
        if c.outcome.done() or c.ring is not None:
            return                              # an agent is being rung for this caller already
        self.acd.leave(c.call.id, self.clock(), "callback")
        c.outcome.set_result("callback")

    def _left_line(self, c: _Caller) -> float:
        """The caller is off the line for good (answered, gone, timed out): the record keeps
        the seconds waited since the place in line was taken."""
        waited = self.clock() - c.arrived_at
        c.record.waited = round(waited, 3)
        return waited

    def _abandon(self, c: _Caller, how: str | None = "hangup") -> None:
        waited = self.clock() - c.arrived_at
        if c.record.outcome is None:            # else ended already: that wait stands
            c.record.waited = round(waited, 3)
        if how == "lost":
            c.record.end(Outcome.LOST, f"{c.queue}: the switch lost the call after {waited:.0f} s in line")
        else:
            c.record.end(Outcome.ABANDONED, f"{c.queue}: hung up after {waited:.0f} s in line")
        log.info("acd.abandoned", queue=c.queue, waited=round(waited, 1), how=how)

    def _forget(self, c: _Caller) -> None:
        """The caller's part is over: off the line, any ringing phone stopped."""
        self.callers.pop(c.call.id, None)
        if not c.outcome.done():
            c.outcome.set_result("gone")
        left = self.acd.leave(c.call.id, self.clock(), "caller_hangup" if c.call.hung_up else "ended")
        if c.ring is not None and not c.ring.done():
            c.ring.cancel()             # the ring task hangs the phone up and frees the agent
        elif left is not None and left.offered_to is not None:
            self.acd.ring_cancelled(left.offered_to, self.clock())
        self._match()

    async def _say_sorry(self, call: Call, language: str) -> None:
        try:
            if self.catalogue.has(SORRY):
                await call.play([Prompt(SORRY, language)])
            await call.hangup()
        except CallEnded:
            pass

    # -- holding and announcements -----------------------------------------------------------

    async def _holding_bridge(self, call: Call) -> Bridge:
        async with self._holding_lock:
            bridge = self._holding.get(call.switch)
            if bridge is None:
                bridge = await self.switch.bridge("holding", name="ivr-holding", near=call)
                if self.music:
                    await bridge.start_moh(self.music)
                self._holding[call.switch] = bridge
            return bridge

    async def _enter_holding(self, c: _Caller) -> None:
        try:
            bridge = await self._holding_bridge(c.call)
            await bridge.add(c.call)
            c.in_holding = True
        except CallEnded:
            raise
        except CallError as exc:
            # Without the holding bridge the caller still waits (in silence between
            # announcements): better than losing the place in line.
            log.warning("acd.holding_failed", error=str(exc))

    async def _leave_holding(self, c: _Caller) -> None:
        holding = self._holding.get(c.call.switch)
        if c.in_holding and holding is not None:
            c.in_holding = False
            try:
                await holding.remove(c.call)
            except CallError as exc:
                log.info("acd.holding_remove_failed", error=str(exc))

    def announcement(self, call_id: str, language: str) -> list[Prompt]:
        """What a waiting caller hears now: place in line and the expected wait as a range."""
        now = self.clock()
        position = self.acd.position(call_id)
        media = self._media
        if position == 1:
            parts = [media(NEXT_IN_LINE, language)]
        else:
            parts = [media(POSITION_PRE, language), *self._words(say_ordinal(position, language), language),
                     media(POSITION_POST, language)]       # 세 번째 / third / 第三位
        estimate = self.acd.estimate_wait(call_id, now)
        if estimate is not None and position > 1:
            minutes = announce_range(estimate)
            if minutes == 0:
                parts.append(media(WAIT_LONG, language))
            else:
                parts += [media(WAIT_PRE, language), *self._words(say_number(minutes, language), language),
                          media(WAIT_POST, language)]      # 오 분 / five minutes
        return [p for p in parts if p is not None]

    def _media(self, prompt: str, language: str) -> Prompt | None:
        return Prompt(prompt, language) if self.catalogue.has(prompt) else None

    def _words(self, words: list[str], language: str) -> list[Prompt]:
        return [Prompt(word, language) for word in words if self.catalogue.has(word)]

    async def _announce(self, c: _Caller) -> None:
        delay = FIRST_ANNOUNCEMENT
        while True:
            if c.offered_at is not None and c.callback is not None:
                # Listening for the offer's key between announcements (music plays meanwhile).
                got = await c.call.gather(max_digits=1, first_timeout=delay, inter_timeout=1,
                                          terminator="")
                if got.digits == c.callback.key:
                    self._accept_callback(c)
                    return
            elif await c.call.wait_hangup(delay):
                return
            delay = self.specs[c.queue].announce_every
            if c.outcome.done() or c.call.hung_up:
                return
            if c.ring is not None:
                # An agent is being rung for this caller: no announcement now.  Asterisk plays
                # a prompt to a caller in a bridge to its end (stopping it does not cut it), and
                # the move to the agent's bridge would wait for it.
                delay = min(delay, RING_RECHECK)
                continue
            media = self.announcement(c.call.id, c.language)
            if self._offer_due(c):
                c.offered_at = self.clock()
                offer = self._media(CALLBACK_OFFER, c.language)
                if offer is not None:
                    media.append(offer)
                c.call.flush_digits()
            try:
                await c.call.play(media, barge_in=c.offered_at is not None)
            except CallEnded:
                return
            except CallError as exc:
                log.warning("acd.announce_failed", error=str(exc))

    def _offer_due(self, c: _Caller) -> bool:
        offer = c.callback
        if offer is None or c.ring is not None:
            return False
        now = self.clock()
        if c.offered_at is not None and (not offer.repeat or now - c.offered_at < offer.repeat):
            return False
        if offer.after is not None and now - c.arrived_at >= offer.after:
            return True
        if offer.above is not None:
            estimate = self.acd.estimate_wait(c.call.id, now)
            return estimate is not None and estimate > offer.above
        return False

    # -- matching callers and agents ---------------------------------------------------------

    def _match(self) -> None:
        for offer in self.acd.offers(self.clock()):
            on_turn = self._held.get(offer.call_id)
            if on_turn is not None:             # a reservation's turn: the agent is held for it
                try:
                    on_turn(Turn(offer.call_id, offer.queue, offer.agent_id))
                except Exception:
                    log.exception("acd.turn_failed", entry=offer.call_id)
                    self.release(Turn(offer.call_id, offer.queue, offer.agent_id), "failed")
                continue
            c = self.callers.get(offer.call_id)
            if c is None:                       # should not happen: the line and we disagree
                self.acd.leave(offer.call_id, self.clock(), "lost")
                self.acd.ring_cancelled(offer.agent_id, self.clock())
                continue
            c.ring = self._rings.spawn(self._ring(c, offer), name=f"acd.ring.{offer.agent_id}")
            # A ring cancelled before it ever ran (the caller left in the same instant) never
            # reaches its own clean-up: the agent is freed here (a no-op when it ran).
            c.ring.add_done_callback(self._freeing(offer.agent_id))

    def _freeing(self, agent_id: str) -> Callable[[asyncio.Task[None]], None]:
        def free_if_cancelled(task: asyncio.Task[None]) -> None:
            if task.cancelled():
                self.acd.ring_cancelled(agent_id, self.clock())     # a no-op when already freed
        return free_if_cancelled

    async def _ring(self, c: _Caller, offer: Offer) -> None:
        self._tell(c.call.id, "ringing", offer.agent_id)
        try:
            await self._ring_agent(c, offer)
        finally:
            if c.agent_id != offer.agent_id:     # answered: "connected" once in the bridge
                self._tell(c.call.id, "ring_ended", offer.agent_id)

    async def _ring_agent(self, c: _Caller, offer: Offer) -> None:
        agent = self.acd.agent(offer.agent_id)
        spec = self.specs[offer.queue]
        log.info("acd.ringing", agent=offer.agent_id, endpoint=agent.spec.endpoint, queue=offer.queue,
                 **({"spill": offer.note} if offer.note else {}))
        try:
            agent_call = await self.switch.dial(agent.spec.endpoint, timeout=spec.ring_timeout,
                                                near=c.call, home=agent.spec.center,
                                                # the agent sees who it is (for a call back: the
                                                # customer, not the center's own number)
                                                caller_id=c.record.caller or c.call.caller_number or None,
                                                args=("agent", offer.agent_id),
                                                variables=self._agent_variables(c),
                                                video=c.record.channel == "video")
        except asyncio.CancelledError:
            self.acd.ring_cancelled(offer.agent_id, self.clock())
            raise
        except CallError as exc:
            # The switch's own trouble (unreachable, or a ring it ended with cause 0 as it went
            # down) is not the agent's no-answer, and neither is a ring whose caller is gone:
            # the agent is simply free again.  After the switch's trouble the next offer waits
            # for the ticker, so a switch that is down is not asked again and again at once.
            switch_trouble = not isinstance(exc, DialFailed) or exc.cause == 0
            log.warning("acd.agent_no_answer" if not switch_trouble else "acd.ring_failed",
                        agent=offer.agent_id, error=str(exc), cause=getattr(exc, "cause", None))
            if (c.call.id in self.callers and not c.outcome.done() and not c.call.hung_up
                    and not switch_trouble):
                self.acd.ring_failed(c.call.id, offer.agent_id, self.clock())
            else:
                self.acd.ring_cancelled(offer.agent_id, self.clock())
            c.ring = None
            if not switch_trouble:
                self._match()
            return
        if c.outcome.done() or c.call.hung_up:
            self.acd.ring_cancelled(offer.agent_id, self.clock())
            await _hang_up_quietly(agent_call)
            self._match()
            return
        self.acd.answered(c.call.id, offer.agent_id, self.clock())
        c.agent_id, c.agent_call, c.ring = offer.agent_id, agent_call, None
        c.note = offer.note
        c.outcome.set_result("connected")

    def _agent_variables(self, c: _Caller) -> dict[str, str]:
        """What the agent's phone (and screen) is told about the call: why it came, how long
        the caller waited, in which language (channel variables of the agent's leg)."""
        return {
            "IVR_QUEUE": c.queue,
            "IVR_PRIORITY": c.priority,
            "IVR_REASON": c.reason or "",
            "IVR_WAITED": str(round(self.clock() - c.arrived_at)),
            "IVR_LANGUAGE": c.language,
            "IVR_CALL_ID": c.call.id,
            "IVR_CHANNEL": c.record.channel,
        }

    async def _converse(self, c: _Caller) -> None:
        call, agent_call, agent_id = c.call, c.agent_call, c.agent_id
        assert agent_call is not None and agent_id is not None
        waited = self._left_line(c)
        bridge: Bridge | None = None
        try:
            await self._leave_holding(c)
            bridge = await self.switch.bridge("mixing", name=f"ivr-call-{call.id}", near=call)
            await bridge.add(call)
            await bridge.add(agent_call)
            served = f"{agent_id} after {waited:.0f} s in line"
            c.record.end(Outcome.AGENT_CONNECTED, f"{served}; {c.note}" if c.note else served)
            log.info("acd.connected", agent=agent_id, waited=round(waited, 1))
            self._tell(call.id, "connected", agent_id)
            await _until_one_hangs_up(call, agent_call)
            log.info("acd.conversation_ended", agent=agent_id,
                     by="caller" if call.hung_up else "agent")
        except CallError as exc:
            if not call.hung_up:
                log.warning("acd.connect_failed", agent=agent_id, error=str(exc))
            c.record.end(Outcome.ABANDONED, f"{c.queue}: gone as {agent_id} answered")
        finally:
            await _hang_up_quietly(agent_call)
            await _hang_up_quietly(call)
            if bridge is not None:
                try:
                    await bridge.destroy()
                except IvrError as exc:
                    log.info("acd.bridge_destroy_failed", error=str(exc))
            self.acd.call_ended(agent_id, self.clock())
            self._match()

    # -- deadlines ---------------------------------------------------------------------------

    def _check_staffed(self, c: _Caller) -> None:
        on_duty, paused = self.acd.staffed(c.queue)
        if on_duty + paused == 0:
            self._time_out(c, "no agent logged in")

    def _time_out(self, c: _Caller, why: str) -> None:
        """``max_wait`` reached (or nobody to wait for): overflow, else the polite ending."""
        if c.outcome.done():
            return
        now = self.clock()
        spec = self.specs[c.queue]
        if spec.on_max_wait == "overflow" and spec.overflow and spec.overflow in self.specs:
            self.acd.leave(c.call.id, now, "overflow")
            target = self.specs[spec.overflow]
            log.info("acd.overflow", queue=c.queue, to=target.name, why=why)
            c.queue = c.record.queue = target.name
            c.deadline = now + target.max_wait
            heapq.heappush(self._deadlines, (c.deadline, c.call.id))
            self.acd.enqueue(c.call.id, target.name, c.priority, now, arrived_at=c.arrived_at,
                             reason=c.reason, language=c.language, center=c.call.center)
            self._check_staffed(c)
            return
        self.acd.leave(c.call.id, now, "max_wait")
        log.info("acd.timed_out", queue=c.queue, why=why)
        c.outcome.set_result(why)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.tick()
            except Exception:            # the ticker must survive any one bad step
                log.exception("acd.tick_failed")

    def tick(self) -> None:
        now = self.clock()
        self.acd.tick(now)
        # Deadlines from a heap, not a walk of every caller twice a second: with thousands
        # waiting, the walk was the loop's longest regular step.  An entry whose caller is
        # gone or has a later deadline (overflow) is stale; a caller being rung, or whose
        # outcome is being acted on, is looked at again next tick.
        heap, later = self._deadlines, []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            c = self.callers.get(entry[1])
            if c is None or c.deadline != entry[0]:
                continue
            if c.outcome.done() or c.ring is not None:
                later.append(entry)
                continue
            self._time_out(c, "max_wait")
        for entry in later:
            heapq.heappush(heap, entry)
        if len(heap) > 2 * len(self.callers) + 64:
            heap[:] = [(c.deadline, call_id) for call_id, c in self.callers.items()]
            heapq.heapify(heap)
        # A queue with nobody logged in (looked at once a tick per queue): its callers go.
        for queue in self.specs:
            on_duty, paused = self.acd.staffed(queue)
            if on_duty + paused:
                continue
            for w in self.acd.waiting(queue):
                c = self.callers.get(w.call_id)
                if c is not None and c.queue == queue and not c.outcome.done() and c.ring is None:
                    self._time_out(c, "no agent logged in")
        self._match()

    async def cancel_callbacks(self, number: str, queue: str | None = None) -> int:
        """A caller who calls again cancels their open reservations; how many were cancelled.
        (A flow's ``cancel_callback`` node.)"""
        if self._booking is None:
            return 0
        return await self._booking.cancel_for(number, queue)

    # -- after a restart: the queues as the event log left them -----------------------------

    def restore(self, restored: Restored) -> list[str]:
        """Before any call arrives: agents get their states back (a paused agent stays paused,
        an agent on a call stays busy with it); the callers who waited and talked are picked
        up by ``resume`` as their calls are re-adopted.  Returns what could not be restored."""
        self._restored = restored
        problems = restore_agents(self.acd, restored, wall_now=self.wall(), now=self.clock())
        for problem in [*restored.problems, *problems]:
            log.warning("acd.restore_problem", problem=problem)
        log.info("acd.restored", agents=len(restored.agents), waiting=len(restored.waiting),
                 talking=len(restored.talking))
        return problems

    def settle_restored(self, after: float) -> None:
        """``after`` seconds from now (time for the first reconciliation's calls to be picked
        up), agents whose restored call never came back are freed (wrap-up), and callers who
        never came back are forgotten: they hung up while no engine was listening.  A
        conversation whose caller came back is left alone: it goes on, and its agent is freed
        when it ends (``_resume_talk``)."""
        async def settle() -> None:
            await asyncio.sleep(after)
            for talk in list(self._restored.talking.values()):     # the caller never came back
                self._end_restored_talk(talk, "the call was gone when the engine came back")
                leg = self._legs.pop(talk.agent_id, None)
                if leg is not None and leg.done() and not leg.cancelled():
                    await _hang_up_quietly(leg.result())     # an agent's leg without its caller
                elif leg is not None:
                    leg.cancel()
            now = self.clock()
            for w in self._restored.waiting.values():
                if w.call_id not in self.callers and self.acd.waiting_call(w.call_id) is None:
                    # Gone while no engine listened (or a reservation's place: the desk claims
                    # it again from the reservations): the log no longer has it waiting.
                    self.acd.gone_during_restart(w.call_id, w.queue, now)
            self._restored = Restored({}, {}, {})
            self._match()
            await self._sweep()
        self._settle.spawn(settle(), name="acd.settle_restored")

    async def _sweep(self) -> None:
        """The bridges an earlier engine left behind (its holding room, its conversations once
        they ended) are destroyed when nobody is in them."""
        try:
            await self.switch.sweep_bridges()
        except CallError as exc:
            log.info("acd.sweep_failed", error=str(exc))

    async def resume(self, call: Call, record: CallRecord, args: Sequence[str]) -> bool:
        """A call re-adopted after a restart: True when the queues take it back.

        A caller who waited goes back into the line at the original place (arrival time) and
        priority, and so does a caller who was in the callback dialog and had not finished
        booking (one who had ends as ``callback_booked``); a caller who talked to an agent goes on
        talking, and the agent is freed with wrap-up when the conversation ends; an agent's leg
        is handed to its conversation (or hung up when there is none).  Anything else is the
        flow's (False)."""
        if args and args[0] == "agent":
            agent_id = args[1] if len(args) > 1 else ""
            leg = self._legs.get(agent_id)
            # Wanted by a conversation picked up already (it waits for this leg), or by one
            # whose caller has not come back yet.
            wanted = (leg is not None and not leg.done()) or any(
                t.agent_id == agent_id for t in self._restored.talking.values())
            if wanted:
                if leg is None:
                    leg = self._legs[agent_id] = asyncio.get_running_loop().create_future()
                if not leg.done():
                    leg.set_result(call)
                    await call.wait_hangup()          # the conversation's task ends it
                    return True
            await _hang_up_quietly(call)             # nobody is on the other end any more
            return True
        waiting = self._restored.waiting.get(call.id)
        booking = self._restored.booking.get(call.id)
        if waiting is None and booking is not None:
            # In the callback dialog when the engine died.  Booked already (perhaps hearing
            # "we will call you"): the call ends so.  Not booked: the offer is not repeated,
            # the place is kept.
            booked = await self._booking.booked_on(call.id) if self._booking is not None else None
            if booked is not None:
                record.end(Outcome.CALLBACK_BOOKED, f"{booking.queue}: reservation {booked}")
                log.info("acd.callback_booked", queue=booking.queue, reservation=booked, resumed=True)
                await _hang_up_quietly(call)
                return True
            waiting = booking
        if waiting is not None:
            log.info("acd.resumed_waiting", queue=waiting.queue, priority=waiting.priority,
                     arrived_at=waiting.arrived_at.isoformat(), from_callback_dialog=booking is not None)
            record.priority, record.reason = waiting.priority, waiting.reason
            await self.queue_handoff(call, record, waiting.queue, waiting.priority, waiting.reason,
                                     waiting.language or self.default_language,
                                     arrived_at=waiting.arrived_at)
            return True
        talk = self._restored.talking.get(call.id)
        if talk is not None:
            await self._resume_talk(call, record, talk)
            return True
        return False

    async def _resume_talk(self, call: Call, record: CallRecord, talk: RestoredTalk) -> None:
        """The caller of a conversation is back: pair it with the agent's leg (re-adopted
        before or after it) and carry it to its end; then the agent is freed with wrap-up.
        From here on the conversation is this task's: ``settle_restored`` leaves it alone."""
        agent_id = talk.agent_id
        self._restored = dataclasses.replace(
            self._restored, talking={k: v for k, v in self._restored.talking.items() if k != talk.call_id})
        leg = self._legs.get(agent_id)
        if leg is None:
            leg = self._legs[agent_id] = asyncio.get_running_loop().create_future()
        record.queue = record.queue or talk.queue
        record.end(Outcome.AGENT_CONNECTED, f"{agent_id} (the conversation went on through an engine restart)")
        agent_call: Call | None = None
        try:
            hangup = asyncio.ensure_future(call.wait_hangup())
            either: set[asyncio.Future[Any]] = {leg, hangup}
            try:
                await asyncio.wait(either, timeout=RESUME_WAIT, return_when=asyncio.FIRST_COMPLETED)
            finally:
                hangup.cancel()
            if leg.done() and not leg.cancelled():
                agent_call = leg.result()
            if agent_call is None or call.hung_up:
                log.info("acd.resume_talk_over", agent=agent_id, caller_gone=call.hung_up)
                return
            log.info("acd.resumed_talk", agent=agent_id)
            await _until_one_hangs_up(call, agent_call)
            log.info("acd.conversation_ended", agent=agent_id, by="caller" if call.hung_up else "agent")
        finally:
            if agent_call is not None:
                await _hang_up_quietly(agent_call)
            await _hang_up_quietly(call)
            if self._legs.get(agent_id) is leg:
                self._legs.pop(agent_id, None)
                if not leg.done():
                    leg.cancel()
            self._end_restored_talk(talk, "conversation ended")
            self._settle.spawn(self._sweep(), name="acd.sweep")     # its bridge is empty now

    def _end_restored_talk(self, talk: RestoredTalk, why: str) -> None:
        """A restored conversation is over (or its caller never came back): its agent, if
        still on it, is freed with wrap-up.  Safe to call more than once."""
        if talk.call_id in self._restored.talking:
            self._restored = dataclasses.replace(
                self._restored, talking={k: v for k, v in self._restored.talking.items() if k != talk.call_id})
        agent = self.acd.agent(talk.agent_id)
        if agent.state == AgentState.ON_CALL and agent.current_call == talk.call_id:
            self.acd.call_ended(talk.agent_id, self.clock())
            log.info("acd.restored_talk_ended", agent=talk.agent_id, why=why)
        self._match()

    # -- the Line port: places held for reservations -----------------------------------------

    # -- a center's server gone and back ---------------------------------------------------------

    def center_down(self, center: str) -> list[str]:
        """No server of ``center`` is left: its agents' phones cannot be rung.  Agents not on a
        call are logged out (a pause's reason is kept for their return); an agent ringing or
        on a call is paused ("server down") when the call ends.  Their callers elsewhere go to
        the other centers' agents.  The agents taken out, for ``center_up``."""
        now = self.clock()
        away = self._away.setdefault(center, {})
        for status in self.acd.agents():
            if status.spec.center != center or status.state is AgentState.OFFLINE:
                continue
            if status.state in (AgentState.RINGING, AgentState.ON_CALL):
                self.acd.pause(status.spec.id, SERVER_DOWN, now)
                away[status.spec.id] = None
            else:
                away[status.spec.id] = status.reason if status.state is AgentState.PAUSED else None
                self.acd.logout(status.spec.id, now)
        log.warning("acd.center_down", center=center, agents_out=sorted(away))
        self._match()
        return sorted(away)

    def center_up(self, center: str) -> list[str]:
        """A server of ``center`` is back: the agents ``center_down`` took out are on duty
        again, paused ones paused again with their reason (an agent someone has logged in,
        paused or resumed meanwhile is left as is)."""
        now = self.clock()
        back: list[str] = []
        for agent_id, reason in sorted(self._away.pop(center, {}).items()):
            status = self.acd.agent(agent_id)
            if status.state is AgentState.OFFLINE:
                self.acd.login(agent_id, now)
                if reason is not None:
                    self.acd.pause(agent_id, reason, now)
            elif status.state is AgentState.PAUSED and status.reason == SERVER_DOWN \
                    or status.pause_after == SERVER_DOWN:
                self.acd.resume(agent_id, now)
            else:
                continue
            back.append(agent_id)
        log.warning("acd.center_up", center=center, agents_back=back)
        self._match()
        return back

    def has_queue(self, queue: str) -> bool:
        return queue in self.specs

    def hold_place(self, entry: str, queue: str, priority: str | None, arrived_at: dt.datetime,
                   on_turn: Callable[[Turn], None]) -> int | None:
        if entry in self._held or self.acd.waiting_call(entry) is not None:
            return None
        now = self.clock()
        self.acd.enqueue(entry, queue, priority, now, arrived_at=min(now, self._mono(arrived_at)))
        self._held[entry] = on_turn
        position = self.acd.position(entry)
        self._match()
        return position

    def holds(self, entry: str) -> bool:
        return entry in self._held

    def withdraw(self, entry: str, why: str) -> bool:
        waiting = self.acd.waiting_call(entry)
        if waiting is not None and waiting.offered_to is not None:
            return False                          # its turn came: the holder releases it
        self._held.pop(entry, None)
        if waiting is not None:
            self.acd.leave(entry, self.clock(), why)
        return True

    def release(self, turn: Turn, why: str) -> None:
        self._held.pop(turn.entry, None)
        now = self.clock()
        self.acd.leave(turn.entry, now, why)
        self.acd.ring_cancelled(turn.agent_id, now)
        self._match()

    def take(self, turn: Turn) -> None:
        self._held.pop(turn.entry, None)
        now = self.clock()
        self.acd.leave(turn.entry, now, "called back")
        self.acd.ring_cancelled(turn.agent_id, now)

    def caller_number(self, call_id: str) -> str | None:
        """The number (E.164 when known, else as presented) of a caller this service holds in
        line or on a call; None for anyone else (a reservation's place, a call gone)."""
        c = self.callers.get(call_id)
        if c is None:
            return None
        return c.record.number or c.call.caller_number or None

    def caller_channel(self, call_id: str) -> str | None:
        """How a caller this service holds came in (``voice``, ``video``); None for anyone else."""
        c = self.callers.get(call_id)
        return c.record.channel if c is not None else None

    def free_agents(self) -> int:
        return sum(1 for a in self.acd.agents() if a.state == AgentState.AVAILABLE)

    # -- what flows may read -----------------------------------------------------------------

    def queue_variable(self, name: str) -> Any:
        """``queue.<name>.estimated_wait`` (seconds, rounded; None when nobody can serve),
        ``queue.<name>.waiting`` and ``queue.<name>.agents_available``; None for an unknown queue."""
        _, queue, what = name.split(".", 2)
        if queue not in self.specs:
            return None
        if what == "waiting":
            return len(self.acd.waiting(queue))
        if what == "agents_available":
            return sum(1 for a in self.acd.agents()
                       if a.state == AgentState.AVAILABLE and a.spec.serves(self.specs[queue]))
        if what == "estimated_wait":
            estimate = self.acd.estimate_newcomer(queue, self.clock())
            return None if estimate is None else round(estimate)
        return None

    # -- operators ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return self.acd.snapshot()

    def agent_statuses(self) -> list[AgentStatus]:
        """Every configured agent as it is now (``since`` on this service's ``clock``)."""
        return self.acd.agents()

    def agent_status(self, agent_id: str) -> AgentStatus:
        """One agent as it is now; ``KeyError`` for an unknown agent."""
        return self.acd.agent(agent_id)

    def agent_action(self, agent_id: str, action: str, reason: str = "paused") -> AgentStatus:
        """A supervisor's ``login``, ``logout``, ``pause`` (with ``reason``) or ``resume``;
        a freed agent takes a waiting caller at once.  The agent as it is after.
        ``KeyError`` for an unknown agent, ``ValueError`` (``AcdStateError``) for an action
        its state refuses (log out while on a call, pause while logged out)."""
        now = self.clock()
        if action == "login":
            self.acd.login(agent_id, now)
        elif action == "logout":
            self.acd.logout(agent_id, now)
        elif action == "pause":
            self.acd.pause(agent_id, reason, now)
        elif action == "resume":
            self.acd.resume(agent_id, now)
        else:
            raise ValueError(f"no agent action {action!r}: login, logout, pause or resume")
        self.tick()
        return self.acd.agent(agent_id)

    def queue_board(self) -> list[QueueBoard]:
        """Every queue as it is now: callers waiting (by priority), the oldest wait, the wait
        a newcomer would be told, agents staffed, paused and free."""
        now = self.clock()
        agents = self.acd.agents()
        board = []
        for name, spec in self.specs.items():
            waiting = self.acd.waiting(name)
            by_priority: dict[str, int] = {}
            for w in waiting:
                by_priority[w.priority] = by_priority.get(w.priority, 0) + 1
            staffed, paused = self.acd.staffed(name)
            estimate = self.acd.estimate_newcomer(name, now)
            board.append(QueueBoard(
                name=name, waiting=len(waiting), by_priority=by_priority,
                ringing=sum(1 for w in waiting if w.offered_to is not None),
                oldest_wait=round(max((now - w.arrived_at for w in waiting), default=0.0), 1),
                estimated_wait=None if estimate is None else round(estimate),
                staffed=staffed, paused=paused,
                available=sum(1 for a in agents
                              if a.state == AgentState.AVAILABLE and a.spec.serves(spec))))
        return board


@dataclasses.dataclass(frozen=True, slots=True)
class QueueBoard:
    """One queue at one moment (``QueueService.queue_board``).  ``oldest_wait`` and
    ``estimated_wait`` in seconds; ``estimated_wait`` None when nobody is on duty for it;
    ``staffed``: agents logged in and not paused; ``available``: free for a call now."""

    name: str
    waiting: int
    by_priority: dict[str, int]
    ringing: int
    oldest_wait: float
    estimated_wait: int | None
    staffed: int
    paused: int
    available: int


async def _until_one_hangs_up(call: Call, other: Call) -> None:
    """Wait until either side of a conversation hangs up."""
    ends = [asyncio.ensure_future(call.wait_hangup()), asyncio.ensure_future(other.wait_hangup())]
    try:
        await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in ends:
            task.cancel()


async def _hang_up_quietly(call: Call) -> None:
    try:
        await call.hangup()
    except IvrError:
        pass


def queue_specs(specs: Sequence[QueueSpec]) -> dict[str, QueueSpec]:
    return {s.name: s for s in specs}
