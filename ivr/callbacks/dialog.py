"""The caller's side of a callback offer: which number to call back, confirmed by the caller.

The caller ID is read back digit by digit (national format) and the caller presses 1 to
confirm or 2 to key another number ended by ``#``.  A withheld or unusable caller ID goes
straight to keying.  Keyed numbers pass ``validate_callback_number`` (domestic only by default:
no international, premium-rate or short service numbers); a refused number is explained and
asked again.  Three tries, then the caller keeps waiting in the line as before.
"""

from __future__ import annotations

import phonenumbers
import structlog

from ivr.call import Call
from ivr.callbacks.numbers import CallbackNumberRefused, validate_callback_number
from ivr.flow.say import say_digits
from ivr.logs import mask_number
from ivr.prompts import Catalogue

log = structlog.get_logger(__name__)

__all__ = ["confirm_number", "national_digits"]

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
    def media(prompt: str) -> list[str]:
        return [catalogue.media(prompt, language)] if catalogue.has(prompt) else []

    def digits(number: str) -> list[str]:
        return [catalogue.media(w, language) for w in say_digits(national_digits(number))
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
