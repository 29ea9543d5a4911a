"""The caller's side of a callback offer: which number to call back, confirmed by the caller.

The caller ID is read back digit by digit (national format) and the caller presses 1 to
confirm or 2 to key another number ended by ``#``.  A withheld or unusable caller ID goes
straight to keying.  Keyed numbers pass ``validate_callback_number`` (domestic only by default:
no international, premium-rate or short service numbers); a refused number is explained and
asked again.  Three tries, then the caller keeps waiting in the line as before.

Then when: 1 (or nothing) for as soon as possible — the reservation keeps the caller's place
in line — or 2 and an hour (``14#``): the first one-hour slot at that hour, today or on the
next opening days, within opening hours and never on a holiday; the slot is read back.
"""

from __future__ import annotations

import datetime as dt

import phonenumbers
import structlog

from ivr.call import Call, Prompt
from ivr.callbacks.numbers import CallbackNumberRefused, validate_callback_number
from ivr.callbacks.schedule import OpeningHours
from ivr.flow.say import say, say_digits
from ivr.logs import mask_number
from ivr.prompts import Catalogue

log = structlog.get_logger(__name__)

__all__ = ["confirm_number", "national_digits", "choose_time", "slot_at_hour"]

NUMBER_IS, CONFIRM, ENTER, REFUSED = ("callback_number_is", "callback_confirm",
                                      "callback_enter_number", "callback_number_refused")
NO_INPUT = "no_input"
TRIES = 3


def national_digits(e164: str) -> str:
    """``+821012345678`` → ``01012345678``: the digits a caller knows as their number."""
    parsed = phonenumbers.parse(e164, None)
    text = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return "".join(ch for ch in text if ch.isdigit())


async def confirm_number(call: Call, catalogue: Catalogue, language: str, *, region: str = "KR",
                         allow_international: bool = False) -> str | None:
    """The E.164 number the caller confirmed, or None (no confirmation after the tries)."""
    def media(prompt: str) -> list[Prompt]:
        return [Prompt(prompt, language)] if catalogue.has(prompt) else []

    def digits(number: str) -> list[Prompt]:
        return [Prompt(w, language) for w in say_digits(national_digits(number))
                if catalogue.has(w)]

    candidate: str | None = None
    try:
        candidate = validate_callback_number(call.caller_number, region,
                                             allow_international=allow_international)
    except CallbackNumberRefused as exc:
        log.info("callback.caller_id_unusable", why=exc.why)
    for _ in range(TRIES):
        if candidate is None:
            call.flush_digits()
            await call.play(media(ENTER), barge_in=True)
            got = await call.gather(max_digits=16, first_timeout=10, inter_timeout=5, terminator="#")
            if not got.digits:
                await call.play(media(NO_INPUT))
                continue
            try:
                candidate = validate_callback_number(got.digits, region,
                                                     allow_international=allow_international)
            except CallbackNumberRefused as exc:
                log.info("callback.number_refused", why=exc.why, number=mask_number(got.digits))
                await call.play(media(REFUSED))
                continue
        call.flush_digits()
        await call.play([*media(NUMBER_IS), *digits(candidate), *media(CONFIRM)], barge_in=True)
        got = await call.gather(max_digits=1, first_timeout=8, inter_timeout=1, terminator="")
        if got.digits == "1":
            return candidate
        candidate = None               # 2 (or anything else): key another number
    return None


WHEN, ENTER_HOUR, HOUR_TAKEN, SLOT_IS, SLOT_POST = ("callback_when", "callback_enter_hour",
                                                    "callback_hour_unavailable", "callback_slot_is",
                                                    "callback_slot_post")
SLOT = dt.timedelta(hours=1)
DAYS_AHEAD = 7


def slot_at_hour(hours: OpeningHours, hour: int, now: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The first one-hour slot starting at ``hour`` (local) after ``now``, within opening hours,
    today or on the next opening days; None when the center is never open then."""
    today = now.astimezone(hours.tz).date()
    for day in hours.open_days(today, DAYS_AHEAD):
        for start, end in hours.slots(day, SLOT):
            if start.hour == hour and start.minute == 0 and start > now:
                return start, end
    return None


async def choose_time(call: Call, catalogue: Catalogue, language: str, hours: OpeningHours,
                      now: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """As soon as possible (None: keeps the caller's place in line) or an hour the caller keys,
    today or on the next opening day, within opening hours and not on holidays."""
    def media(prompt: str) -> list[Prompt]:
        return [Prompt(prompt, language)] if catalogue.has(prompt) else []

    call.flush_digits()
    await call.play(media(WHEN), barge_in=True)
    got = await call.gather(max_digits=1, first_timeout=6, inter_timeout=1, terminator="")
    if got.digits != "2":
        return None                       # 1, or nothing: as soon as possible
    for _ in range(TRIES - 1):
        call.flush_digits()
        await call.play(media(ENTER_HOUR), barge_in=True)
        got = await call.gather(max_digits=2, first_timeout=8, inter_timeout=4, terminator="#")
        slot = slot_at_hour(hours, int(got.digits), now) if got.digits.isdigit() and int(got.digits) < 24 else None
        if slot is None:
            await call.play(media(HOUR_TAKEN))
            continue
        start = slot[0]
        words = [Prompt(w, language) for w in
                 say("date", start.date().isoformat(), language) + say("time", start.time(), language)
                 if catalogue.has(w)]
        await call.play([*media(SLOT_IS), *words, *media(SLOT_POST)])
        return slot
    return None                            # no usable hour: as soon as possible
