"""Booked video consultations: the slots on offer, their codes, and when a code serves.

Slots are cut back to back from ``video.hours`` (the callbacks' hours unless given), local
time in ``callers.timezone``, ``video.slot_minutes`` long, from the next one that starts at
least ``LEAD`` from now to ``video.days_ahead`` days ahead; a slot is free while it holds
fewer than ``video.per_slot`` bookings (the store checks that as it books).

A code is 8 characters of an alphabet without look-alikes (no 0/O, 1/I/L): 31⁸ ≈ 8.5 × 10¹¹
codes, drawn with ``secrets``.  It serves from ``video.early`` seconds before its slot to the
slot's end; before that the page says when to come back, after it that it has passed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

from ivr.config import VideoConfig
from ivr.store.base import VideoBooking

__all__ = ["ALPHABET", "CODE_LENGTH", "LEAD", "Slot", "new_code", "clean_code", "slots_ahead",
           "booking_window", "when_usable"]

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
LEAD = dt.timedelta(minutes=15)      # the first slot offered starts at least this far ahead
MAX_OFFERED = 12                     # slots listed on the page at once


@dataclasses.dataclass(frozen=True, slots=True)
class Slot:
    start: dt.datetime               # aware, in the center's time zone
    end: dt.datetime
    free: int                        # places left


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def clean_code(text: str) -> str | None:
    """A code as typed (spaces, dashes, lower case) in its stored form, or None when it cannot
    be one."""
    code = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(code) != CODE_LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def slots_ahead(config: VideoConfig, now: dt.datetime,
                taken: dict[dt.datetime, int], *, limit: int = MAX_OFFERED) -> list[Slot]:
    """The next free slots from ``now`` on; ``taken``: bookings per slot start (UTC)."""
    hours = config.hours
    length = dt.timedelta(minutes=config.slot_minutes)
    earliest = now + LEAD
    out: list[Slot] = []
    local = now.astimezone(hours.tz).date()
    for offset in range(config.days_ahead + 1):
        day = local + dt.timedelta(days=offset)
        if hours.is_holiday(day):
            continue
        for start, end in hours.slots(day, length):
            if start < earliest:
                continue
            used = taken.get(start.astimezone(dt.timezone.utc), 0)
            if used < config.per_slot:
                out.append(Slot(start, end, config.per_slot - used))
                if len(out) >= limit:
                    return out
    return out


def booking_window(config: VideoConfig, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The span of slot starts the page may offer from ``now`` (UTC), for the store's counts."""
    return now.astimezone(dt.timezone.utc), now.astimezone(dt.timezone.utc) + dt.timedelta(
        days=config.days_ahead + 1)


def when_usable(config: VideoConfig, booking: VideoBooking, now: dt.datetime) -> str:
    """``now`` (the code serves), ``early`` (come back later), ``past`` or ``cancelled``."""
    if booking.status == "cancelled":
        return "cancelled"
    if now < booking.slot_start - dt.timedelta(seconds=config.early):
        return "early"
    if now >= booking.slot_end:
        return "past"
    return "now"
