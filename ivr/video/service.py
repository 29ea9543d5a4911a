"""``VideoService``: video callers from the page or a video phone, on the engine's queues.

How a call from the page comes in: the page asks for a visit (``open_visit``: its choices are
checked, a number given is validated as a callback number is, a booking code is looked up),
then places a WebRTC call as the one guest endpoint with the visit's token in ``X-IVR-Visit``;
the dialplan hands it to the engine with ``Stasis(ivr,video,<token>)`` and ``admit`` pairs it
with the visit.  A call of the guest endpoint without a live, unused visit is refused (hung
up, recorded ``error``): the guest's password is in every page, the visit is not.  A video
phone simply dials ``video.number``; its call is a video call without a page.

Either way the call runs the flow that answers ``video.number`` with the variables
``call.channel`` (``video``), ``call.topic``, ``call.sign_language`` and ``call.booked`` (True
when a booking code serves now: the flow routes it at priority ``booked``), and its record
says ``channel: video``.  While the caller waits the page is told their place in line and the
expected wait (``status``), and offered the free slots when that wait is over
``video.offer_above``; a booking takes the caller out of the line (outcome
``callback_booked``, detail: the code and the slot).  The interpreter's page is told of a call
as it rings (topic, sign language, language, wait), and both pages carry a text chat that goes
into the call record (``CallRecord.said``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog

from ivr.acd.estimate import announce_range
from ivr.call import Call, CallRecord, ChatSender, Prompt, utcnow
from ivr.callbacks.numbers import CallbackNumberRefused, validate_callback_number
from ivr.config import VIDEO_LANGUAGES, VideoConfig
from ivr.errors import IvrError
from ivr.logs import mask_number
from ivr.prompts import Catalogue
from ivr.store.base import VideoBooking
from ivr.tasks import TaskSet
from ivr.video.bookings import Slot, booking_window, clean_code, new_code, slots_ahead, when_usable
from ivr.video.call import VideoCall
from ivr.video.visits import Pages, Visit, Visits

log = structlog.get_logger("ivr.video")

__all__ = ["VideoService", "VideoRefused", "VideoQueues", "VideoStore", "STATUS_EVERY", "MAX_CHAT"]

STATUS_EVERY = 1.0          # seconds between two looks at the waiting video callers' places
MAX_CHAT = 1000             # characters of one chat line


class VideoRefused(IvrError):
    """A page's request that cannot be served; ``reason`` is a word the page shows a text for
    (``topic``, ``sign_language``, ``language``, ``number``, ``code``, ``early``, ``past``,
    ``cancelled``, ``full``, ``busy``, ``not_waiting``, ``store``)."""

    def __init__(self, reason: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail


class VideoQueues(Protocol):
    """What the video entrance needs of the queues (``ivr.acd.service.QueueService``)."""

    def place(self, call_id: str) -> tuple[int, float | None] | None: ...

    def take_out(self, call_id: str, why: str) -> bool: ...

    def staffed(self, queue: str) -> tuple[int, int]: ...

    def watch(self, call_id: str, watcher: Any) -> None: ...

    def agent_action(self, agent_id: str, action: str, reason: str = "paused") -> Any: ...

    def agent_status(self, agent_id: str) -> Any: ...


class VideoStore(Protocol):
    async def put_video_booking(self, booking: VideoBooking, *, capacity: int) -> bool: ...

    async def get_video_booking(self, code: str) -> VideoBooking | None: ...

    async def video_slot_counts(self, since: dt.datetime, until: dt.datetime) -> dict[dt.datetime, int]: ...

    async def use_video_booking(self, code: str, call_id: str, at: dt.datetime) -> VideoBooking | None: ...


def read_passwords(path: Path | None) -> dict[str, str]:
    """``name password`` lines (the sandbox's ``.sandbox/interpreter-passwords``)."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("video.agent_passwords_unreadable", path=str(path), error=str(exc))
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.lstrip().startswith("#"):
            out[parts[0]] = parts[1]
    return out


class VideoService:
    def __init__(self, config: VideoConfig, *, store: VideoStore, catalogue: Catalogue,
                 region: str = "KR", allow_international: bool = False,
                 agents: Mapping[str, tuple[str, str]] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], dt.datetime] = utcnow) -> None:
        self.config = config
        self.store = store
        self.catalogue = catalogue
        self.region = region
        self.allow_international = allow_international
        # agent id → (name, SIP user of its endpoint) for the agents who serve the video queue
        self.agents = dict(agents or {})
        self.clock = clock
        self.wall = wall
        self.visits = Visits(config.max_visits, clock=clock)
        self.pages = Pages()
        self.queues: VideoQueues | None = None
        self._records: dict[str, CallRecord] = {}      # live video calls' records
        self._status: dict[str, dict[str, Any]] = {}   # call id → its last status message
        self._with_agent: dict[str, str] = {}          # agent id → the call ringing or talking
        self._tasks = TaskSet("video")

    def attach_queues(self, queues: VideoQueues) -> None:
        self.queues = queues

    def set_catalogue(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    async def start(self) -> None:
        self._tasks.spawn(self._status_loop(), name="video.status")

    async def close(self) -> None:
        await self._tasks.cancel_all(2)

    # -- the page ------------------------------------------------------------------------------
    def page_settings(self) -> dict[str, Any]:
        """What the caller's page is built from: its buttons in every language."""
        c = self.config
        return {
            "languages": list(VIDEO_LANGUAGES),
            "topics": [{"id": t.id, "labels": {lang: t.label(lang) for lang in VIDEO_LANGUAGES}}
                       for t in c.topics],
            "sign_languages": [{"id": s.id, "labels": {lang: s.label(lang) for lang in VIDEO_LANGUAGES}}
                               for s in c.sign_languages],
            "offer_above": c.offer_above,
            "early_minutes": round(c.early / 60),
        }

    def sip_settings(self, visit: Visit) -> dict[str, Any]:
        """How the page places its call (given with the visit, never before one)."""
        c = self.config
        return {"websocket": c.websocket, "uri": f"sip:{c.guest_user}@{c.sip_domain}",
                "username": c.guest_user, "password": c.guest_password,
                "target": f"sip:{c.number}@{c.sip_domain}",
                "headers": [f"X-IVR-Visit: {visit.token}"],
                "ice_servers": list(c.ice_servers)}

    async def open_visit(self, *, topic: Any, sign_language: Any, language: Any,
                         number: Any = None, code: Any = None) -> tuple[Visit, VideoBooking | None]:
        c = self.config
        if not isinstance(topic, str) or c.topic(topic) is None:
            raise VideoRefused("topic", "choose one of the topics offered")
        if not isinstance(sign_language, str) or c.sign_language(sign_language) is None:
            raise VideoRefused("sign_language", "choose one of the sign languages offered")
        if not isinstance(language, str) or language not in VIDEO_LANGUAGES:
            raise VideoRefused("language", f"the page's language is one of {', '.join(VIDEO_LANGUAGES)}")
        e164 = None
        if isinstance(number, str) and number.strip():
            try:
                e164 = validate_callback_number(number, self.region,
                                                allow_international=self.allow_international)
            except CallbackNumberRefused as exc:
                raise VideoRefused("number", str(exc)) from None
        elif number not in (None, ""):
            raise VideoRefused("number", "the phone number must be text")
        booking = None
        if isinstance(code, str) and code.strip():
            booking = await self._booking_for(code)
        elif code not in (None, ""):
            raise VideoRefused("code", "the booking code must be text")
        try:
            visit = self.visits.open(topic=topic, sign_language=sign_language, language=language,
                                     number=e164 or (booking.number if booking else None),
                                     booking=booking.code if booking else None)
        except OverflowError:
            raise VideoRefused("busy", "too many video calls are starting at once; try again "
                                       "in a minute") from None
        log.info("video.visit", topic=topic, sign_language=sign_language, language=language,
                 number_given=e164 is not None, booked=booking is not None)
        return visit, booking

    async def _booking_for(self, text: str) -> VideoBooking:
        code = clean_code(text)
        if code is None:
            raise VideoRefused("code", "that is not a booking code (8 letters and digits)")
        try:
            booking = await self.store.get_video_booking(code)
        except IvrError as exc:
            log.warning("video.booking_not_read", error=str(exc))
            raise VideoRefused("store", "bookings cannot be read just now; call without the code "
                                        "or try again") from None
        if booking is None:
            raise VideoRefused("code", "no booking has that code")
        when = when_usable(self.config, booking, self.wall())
        if when != "now":
            raise VideoRefused(when, {"early": "the booking is for later",
                                      "past": "the booking's time has passed",
                                      "cancelled": "the booking was cancelled"}[when],
                               slot_start=booking.slot_start.isoformat(),
                               slot_end=booking.slot_end.isoformat())
        return booking

    def on_duty(self) -> int:
        """Interpreters logged in now (paused ones included: they come back); 0 when none
        is, and the page offers a booked time instead of a call nobody can take."""
        if self.queues is None:
            return 0
        on_duty, paused = self.queues.staffed(self.config.queue)
        return on_duty + paused

    def visit(self, token: str | None) -> Visit | None:
        return self.visits.get(token)

    def current_status(self, visit: Visit) -> dict[str, Any] | None:
        return self._status.get(visit.call_id or "")

    # -- the engine: calls ------------------------------------------------------------------------
    def is_video(self, call: Call, args: Sequence[str]) -> bool:
        """A call for this entrance: the page's (``Stasis(ivr,video,…)``) or one to the video
        number."""
        return bool(args) and args[0] == "video" or call.dialled == self.config.number

    def admit(self, call: Call, args: Sequence[str], *, adopted: bool = False) -> VideoCall:
        """The video call as flows and queues see it; ``VideoRefused`` for a page's call
        without its visit (a call picked up again after a restart keeps going without one: the
        engine's visits are gone with it)."""
        visit = None
        if args and args[0] == "video":
            token = args[1] if len(args) > 1 else ""
            visit = self.visits.get(token)
            if visit is None and not adopted:
                raise VideoRefused("visit", "a call of the video page without a visit of this engine")
            if visit is not None and not self.visits.attach(visit, call.id):
                raise VideoRefused("visit", "this visit has a call already")
        number = visit.number if visit is not None else None
        video = VideoCall(call, number=number if visit is not None else None,
                          video_number=self.config.number,
                          caption=lambda prompts: self._caption(call.id, prompts))
        if visit is not None:
            self.pages.publish(visit.key, {"type": "call", "state": "arrived"})
        return video

    def variables(self, call: Call) -> dict[str, Any]:
        visit = self.visits.of_call(call.id)
        return {"call.channel": "video",
                "call.topic": visit.topic if visit else None,
                "call.sign_language": visit.sign_language if visit else None,
                "call.booked": bool(visit and visit.booking),
                "call.page": visit is not None}

    def language(self, call: Call) -> str | None:
        visit = self.visits.of_call(call.id)
        return visit.language if visit else None

    async def started(self, call: Call, record: CallRecord) -> None:
        """The call's record exists: it is a video call's, and its turns are watched."""
        record.channel = "video"
        self._records[call.id] = record
        visit = self.visits.of_call(call.id)
        if visit is not None:
            choices = [f"topic {visit.topic}", f"sign language {visit.sign_language}",
                       f"page language {visit.language}"]
            if visit.booking:
                choices.append(f"booking {visit.booking}")
            record.said("system", "page: " + ", ".join(choices))
            if visit.booking:
                try:
                    await self.store.use_video_booking(visit.booking, call.id, self.wall())
                except IvrError as exc:
                    log.warning("video.booking_not_marked", error=str(exc))
        if self.queues is not None:
            self.queues.watch(call.id, self)

    def finished(self, record: CallRecord) -> None:
        self._records.pop(record.call_id, None)
        self._status.pop(record.call_id, None)
        for agent_id, call_id in list(self._with_agent.items()):
            if call_id == record.call_id:
                del self._with_agent[agent_id]
                self.pages.publish(f"agent:{agent_id}", {"type": "call", "state": "ended",
                                                         "call_id": record.call_id}, keep=False)
        visit = self.visits.of_call(record.call_id)
        if visit is not None:
            self.visits.ended(visit)
            self.pages.publish(visit.key, {"type": "call", "state": "ended",
                                           "outcome": str(record.outcome) if record.outcome else None,
                                           "detail": record.detail})

    def _caption(self, call_id: str, prompts: Sequence[Prompt]) -> None:
        visit = self.visits.of_call(call_id)
        if visit is None:
            return
        words = []
        for p in prompts:
            try:
                words.append(self.catalogue.text(p.id, p.language))
            except KeyError:
                continue
        if words:
            self.pages.publish(visit.key, {"type": "caption", "text": " ".join(words)}, keep=False)

    # -- the queues' turns (``ivr.acd.service.Watcher``) -----------------------------------------
    def ringing(self, call_id: str, agent_id: str) -> None:
        record = self._records.get(call_id)
        visit = self.visits.of_call(call_id)
        self._with_agent[agent_id] = call_id
        if visit is not None:
            visit.state, visit.agent_id = "ringing", agent_id
            self._set_status(visit, {"type": "status", "state": "ringing"})
        self.pages.publish(f"agent:{agent_id}", {
            "type": "call", "state": "ringing", "call_id": call_id,
            "topic": visit.topic if visit else None,
            "sign_language": visit.sign_language if visit else None,
            "language": visit.language if visit else (record.language if record else None),
            "booked": bool(visit and visit.booking),
            "caller": _masked(record.number if record else None),
            "page": visit is not None}, keep=False)

    def connected(self, call_id: str, agent_id: str) -> None:
        visit = self.visits.of_call(call_id)
        name = self.agents.get(agent_id, (agent_id, ""))[0]
        record = self._records.get(call_id)
        if record is not None:
            record.said("system", f"connected to {agent_id}")
        if visit is not None:
            visit.state = "talking"
            self._set_status(visit, {"type": "status", "state": "talking", "agent": name})
        self.pages.publish(f"agent:{agent_id}", {"type": "call", "state": "talking", "call_id": call_id}, keep=False)

    def ring_ended(self, call_id: str, agent_id: str) -> None:
        if self._with_agent.get(agent_id) == call_id:
            del self._with_agent[agent_id]
        self.pages.publish(f"agent:{agent_id}", {"type": "call", "state": "missed", "call_id": call_id}, keep=False)
        visit = self.visits.of_call(call_id)
        if visit is not None and visit.state == "ringing":
            visit.state, visit.agent_id = "waiting", None

    # -- chat ----------------------------------------------------------------------------------
    def chat_from_caller(self, visit: Visit, text: Any) -> None:
        if visit.call_id is None or visit.state == "ended":
            raise VideoRefused("not_waiting", "the call is not going on")
        self._chat(visit.call_id, "caller", text)

    def chat_from_agent(self, agent_id: str, text: Any) -> None:
        call_id = self._with_agent.get(agent_id)
        if call_id is None:
            raise VideoRefused("not_waiting", "you have no call")
        self._chat(call_id, "agent", text)

    def _chat(self, call_id: str, sender: ChatSender, text: Any) -> None:
        if not isinstance(text, str) or not text.strip():
            raise VideoRefused("text", "a chat line is some text")
        text = text.strip()[:MAX_CHAT]
        record = self._records.get(call_id)
        if record is not None:
            record.said(sender, text)
        message = {"type": "chat", "from": sender, "text": text, "at": self.wall().isoformat()}
        visit = self.visits.of_call(call_id)
        if visit is not None:
            self.pages.publish(visit.key, message)
        for agent_id, their in self._with_agent.items():
            if their == call_id:
                self.pages.publish(f"agent:{agent_id}", {**message, "call_id": call_id}, keep=False)
        log.info("video.chat", sender=sender, characters=len(text))

    # -- interpreters ----------------------------------------------------------------------------
    def agent_settings(self, agent_id: str) -> dict[str, Any] | None:
        """The interpreter's SIP registration for their page; None when the agent does not
        serve the video queue or has no password in ``video.agent_passwords_file``."""
        if agent_id not in self.agents:
            return None
        name, user = self.agents[agent_id]
        password = read_passwords(self.config.agent_passwords_file).get(user)
        if password is None:
            return None
        c = self.config
        return {"name": name, "websocket": c.websocket, "uri": f"sip:{user}@{c.sip_domain}",
                "username": user, "password": password, "ice_servers": list(c.ice_servers)}

    def agent_call(self, agent_id: str) -> str | None:
        return self._with_agent.get(agent_id)

    # -- bookings -------------------------------------------------------------------------------
    async def free_slots(self) -> list[Slot]:
        now = self.wall()
        since, until = booking_window(self.config, now)
        try:
            taken = await self.store.video_slot_counts(since, until)
        except IvrError as exc:
            log.warning("video.slots_not_read", error=str(exc))
            raise VideoRefused("store", "bookings cannot be read just now") from None
        return slots_ahead(self.config, now, taken)

    async def book(self, visit: Visit, start: Any) -> VideoBooking:
        """Book the slot starting at ``start`` (ISO 8601) for the visit's caller; a caller
        waiting in line leaves it (their record: ``callback_booked``)."""
        if not isinstance(start, str):
            raise VideoRefused("slot", "choose one of the times offered")
        try:
            when = dt.datetime.fromisoformat(start)
        except ValueError:
            raise VideoRefused("slot", "choose one of the times offered") from None
        slot = next((s for s in await self.free_slots() if s.start == when), None)
        if slot is None:
            raise VideoRefused("full", "that time is no longer free; choose another")
        for _ in range(3):
            booking = VideoBooking(code=new_code(), slot_start=slot.start.astimezone(dt.timezone.utc),
                                   slot_end=slot.end.astimezone(dt.timezone.utc), topic=visit.topic,
                                   sign_language=visit.sign_language, language=visit.language,
                                   number=visit.number, created_at=self.wall())
            try:
                if not await self.store.put_video_booking(booking, capacity=self.config.per_slot):
                    raise VideoRefused("full", "that time is no longer free; choose another")
            except VideoRefused:
                raise
            except IvrError as exc:
                if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                    continue                         # the same code drawn twice: draw again
                log.warning("video.booking_not_stored", error=str(exc))
                raise VideoRefused("store", "the booking could not be stored; try again") from None
            break
        else:
            raise VideoRefused("store", "the booking could not be stored; try again")
        local = slot.start.astimezone(self.config.hours.tz)
        log.info("video.booked", slot=local.isoformat(), topic=visit.topic)
        if visit.call_id is not None:
            record = self._records.get(visit.call_id)
            if record is not None:
                record.said("system", f"booked consultation {booking.code} at {local:%Y-%m-%d %H:%M}")
            if self.queues is not None:
                self.queues.take_out(visit.call_id, f"booked: consultation {booking.code} at "
                                                    f"{local:%Y-%m-%d %H:%M}")
        return booking

    # -- the waiting callers' places --------------------------------------------------------------
    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY)
            try:
                self.update_statuses()
            except Exception:
                log.exception("video.status_failed")

    def update_statuses(self) -> None:
        for visit in self.visits.sweep():
            self.pages.forget(visit.key)
        queues = self.queues
        if queues is None:
            return
        for visit in self.visits:
            if visit.call_id is None or visit.state != "waiting":
                continue
            place = queues.place(visit.call_id)
            if place is None:
                continue
            position, estimate = place
            minutes = None if estimate is None else announce_range(estimate)
            self._set_status(visit, {
                "type": "status", "state": "waiting", "position": position,
                "minutes": minutes,           # "less than N minutes"; 0: more than 30
                "estimate": None if estimate is None else round(estimate),
                # A time is offered when the wait is long, or cannot be told (nobody on duty
                # now) with others ahead; never to the next in line.
                "offer_booking": (estimate > self.config.offer_above if estimate is not None
                                  else position > 1)})

    def _set_status(self, visit: Visit, status: dict[str, Any]) -> None:
        assert visit.call_id is not None
        shown = {k: v for k, v in status.items() if k != "estimate"}
        before = self._status.get(visit.call_id)
        if before is not None and {k: v for k, v in before.items() if k != "estimate"} == shown:
            return
        self._status[visit.call_id] = status
        self.pages.publish(visit.key, status, keep=False)


def _masked(number: str | None) -> str | None:
    return mask_number(number) if number else None
