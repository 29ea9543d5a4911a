"""``VideoService`` on its own: visits, booking codes and slots, the waiting page's status,
captions, and a booking that takes the caller out of the line."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ivr.call import CallRecord, Prompt
from ivr.callbacks.schedule import OpeningHours
from ivr.config import VideoConfig
from ivr.prompts import Catalogue
from ivr.store.base import VideoBooking
from ivr.testing.memory_store import MemoryStore
from ivr.video.bookings import ALPHABET, clean_code, new_code, slots_ahead, when_usable
from ivr.video.service import VideoRefused, VideoService

SEOUL = ZoneInfo("Asia/Seoul")
UTC = dt.timezone.utc
# Monday 2026-12-07, 10:05 in Seoul
NOW = dt.datetime(2026, 12, 7, 10, 5, tzinfo=SEOUL).astimezone(UTC)
HOURS = OpeningHours(SEOUL, {d: [(dt.time(9), dt.time(12))] for d in range(5)})


class FakeCall:
    def __init__(self, call_id: str = "c1", dialled: str = "15771900", caller: str = "video-guest") -> None:
        self.id, self.dialled, self.caller_number = call_id, dialled, caller
        self.switch, self.center, self.hung_up, self.ended_as = "asterisk", None, False, None
        self.played: list[list[Prompt]] = []

    async def play(self, prompts, *, barge_in=False):
        self.played.append(list(prompts))


class FakeQueues:
    def __init__(self) -> None:
        self.places: dict[str, tuple[int, float | None]] = {}
        self.taken_out: list[tuple[str, str]] = []
        self.watched: dict[str, object] = {}
        self.on_duty = (1, 0)

    def place(self, call_id):
        return self.places.get(call_id)

    def take_out(self, call_id, why):
        self.taken_out.append((call_id, why))
        return True

    def watch(self, call_id, watcher):
        self.watched[call_id] = watcher

    def staffed(self, queue):
        return self.on_duty

    def agent_action(self, agent_id, action, reason="paused"):
        raise NotImplementedError

    def agent_status(self, agent_id):
        raise NotImplementedError


def service(**config) -> tuple[VideoService, FakeQueues, MemoryStore]:
    store = MemoryStore()
    cfg = dataclasses.replace(VideoConfig(enabled=True, guest_password="pw", hours=HOURS), **config)
    catalogue = Catalogue("catalog.yaml", ("ko", "en"), {"queue_next": {"ko": "곧 연결됩니다.",
                                                                       "en": "You are next."}})
    video = VideoService(cfg, store=store, catalogue=catalogue, wall=lambda: NOW, clock=lambda: 0.0)
    queues = FakeQueues()
    video.attach_queues(queues)
    return video, queues, store


def test_codes_use_an_alphabet_without_look_alikes_and_read_back_as_typed():
    codes = {new_code() for _ in range(200)}
    assert len(codes) == 200 and all(len(c) == 8 and set(c) <= set(ALPHABET) for c in codes)
    assert not set("01ILO") & set(ALPHABET)
    assert clean_code("abcd-efgh") == "ABCDEFGH"
    assert clean_code("ABCD EFG") is None and clean_code("ABCDEFG0") is None


def test_slots_start_a_quarter_hour_ahead_within_the_hours_and_skip_full_ones():
    cfg = VideoConfig(hours=HOURS, slot_minutes=30, per_slot=2, days_ahead=1)
    first = dt.datetime(2026, 12, 7, 10, 30, tzinfo=SEOUL)
    slots = slots_ahead(cfg, NOW, {first.astimezone(UTC): 2})
    starts = [s.start for s in slots]
    assert first not in starts                                   # full
    # 10:05 now: 10:30 is full, 11:00 and 11:30 are free (the day ends at 12:00), then Tuesday.
    assert starts[:3] == [dt.datetime(2026, 12, 7, 11, 0, tzinfo=SEOUL),
                          dt.datetime(2026, 12, 7, 11, 30, tzinfo=SEOUL),
                          dt.datetime(2026, 12, 8, 9, 0, tzinfo=SEOUL)]
    assert all(s.free == 2 for s in slots)


def test_a_booking_serves_from_early_before_its_slot_to_its_end():
    cfg = VideoConfig(early=600)
    start = NOW + dt.timedelta(minutes=30)
    b = VideoBooking("ABCDEFGH", start, start + dt.timedelta(minutes=30), "premiums", "ksl", "ko", None, NOW)
    assert when_usable(cfg, b, NOW) == "early"
    assert when_usable(cfg, b, start - dt.timedelta(minutes=10)) == "now"
    assert when_usable(cfg, b, start + dt.timedelta(minutes=29)) == "now"
    assert when_usable(cfg, b, start + dt.timedelta(minutes=30)) == "past"
    assert when_usable(cfg, dataclasses.replace(b, status="cancelled"), start) == "cancelled"


async def test_a_booked_caller_is_served_at_their_time_with_the_booking_and_not_before():
    video, queues, store = service()
    slot = dt.datetime(2026, 12, 7, 10, 0, tzinfo=SEOUL).astimezone(UTC)
    await store.put_video_booking(VideoBooking("ABCDEFGH", slot, slot + dt.timedelta(minutes=30), "benefits",
                                               "ksl", "ko", "+821023456789", NOW), capacity=2)
    later = dt.datetime(2026, 12, 7, 11, 0, tzinfo=SEOUL).astimezone(UTC)
    await store.put_video_booking(VideoBooking("HGFEDCBA", later, later + dt.timedelta(minutes=30), "benefits",
                                               "ksl", "ko", None, NOW), capacity=2)
    visit, booking = await video.open_visit(topic="premiums", sign_language="ksl", language="ko",
                                            code="abcd-efgh")
    assert booking is not None and visit.booking == "ABCDEFGH"
    assert visit.number == "+821023456789"                # the booking's number, when none is given
    call = video.admit(FakeCall(), ["video", visit.token])
    record = CallRecord("c1", call.caller_number, call.dialled)
    await video.started(call, record)
    assert record.channel == "video" and video.variables(call)["call.booked"] is True
    assert (await store.get_video_booking("ABCDEFGH")).status == "used"
    with pytest.raises(VideoRefused) as refused:
        await video.open_visit(topic="premiums", sign_language="ksl", language="ko", code="HGFEDCBA")
    assert refused.value.reason == "early" and refused.value.detail["slot_start"].startswith("2026-12-07T02:00")


async def test_the_waiting_page_sees_its_place_a_booking_offer_when_the_wait_is_long_and_captions():
    video, queues, store = service(offer_above=300)
    visit, _ = await video.open_visit(topic="premiums", sign_language="ksl", language="en")
    sub = video.pages.subscribe(visit.key)
    call = video.admit(FakeCall(), ["video", visit.token])
    await video.started(call, CallRecord("c1", "", "15771900"))
    assert queues.watched["c1"] is video
    queues.places["c1"] = (2, 200.0)
    video.update_statuses()
    queues.places["c1"] = (2, 210.0)
    video.update_statuses()                      # the same words on the page: not sent again
    queues.places["c1"] = (3, 400.0)
    video.update_statuses()
    queues.places["c1"] = (1, None)              # next, nobody on duty: no offer
    video.update_statuses()
    queues.places["c1"] = (2, None)              # others ahead, nobody on duty: a time is offered
    video.update_statuses()
    messages = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    statuses = [m for m in messages if m["type"] == "status"]
    assert [(s["position"], s["minutes"], s["offer_booking"]) for s in statuses] == [
        (2, 5, False), (3, 10, True), (1, None, False), (2, None, True)]
    await call.play([Prompt("queue_next", "en")])
    assert sub.queue.get_nowait() == {"type": "caption", "text": "You are next."}


async def test_booking_while_waiting_takes_the_caller_out_and_the_slot_fills_up():
    video, queues, store = service(per_slot=1)
    visit, _ = await video.open_visit(topic="premiums", sign_language="ksl", language="ko")
    call = video.admit(FakeCall(), ["video", visit.token])
    record = CallRecord("c1", "", "15771900")
    await video.started(call, record)
    slots = await video.free_slots()
    booking = await video.book(visit, slots[0].start.isoformat())
    assert booking.slot_start == slots[0].start.astimezone(UTC) and booking.topic == "premiums"
    assert queues.taken_out == [("c1", f"booked: consultation {booking.code} at 2026-12-07 10:30")]
    assert record.chat[-1].text.startswith(f"booked consultation {booking.code}")
    other, _ = await video.open_visit(topic="other", sign_language="is", language="en")
    with pytest.raises(VideoRefused) as refused:
        await video.book(other, slots[0].start.isoformat())    # one place per slot: taken
    assert refused.value.reason == "full"
    assert (await video.free_slots())[0].start == slots[1].start


async def test_a_visit_serves_one_call_and_chat_needs_a_call():
    video, queues, store = service()
    visit, _ = await video.open_visit(topic="premiums", sign_language="ksl", language="ko")
    with pytest.raises(VideoRefused):
        video.chat_from_caller(visit, "hello")
    video.admit(FakeCall("c1"), ["video", visit.token])
    again = video.admit(FakeCall("c1"), ["video", visit.token], adopted=True)   # a lost event socket
    assert video.variables(again)["call.page"] is True
    with pytest.raises(VideoRefused) as refused:
        video.admit(FakeCall("c2"), ["video", visit.token])
    assert refused.value.reason == "visit"
    with pytest.raises(VideoRefused):
        video.admit(FakeCall("c3"), ["video"])              # no token at all
    adopted = video.admit(FakeCall("c4"), ["video", "gone-after-restart"], adopted=True)
    assert adopted.caller_number == "video-guest"           # served on, without a page
    phone = video.admit(FakeCall("c5", caller="01023456789"), [])
    assert phone.caller_number == "01023456789" and video.variables(phone)["call.page"] is False
