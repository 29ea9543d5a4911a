"""Which numbers the center calls back.

``validate_callback_number(raw, region)`` answers the E.164 number to dial, or raises
``CallbackNumberRefused`` whose ``why`` says what is wrong (the message says it in words):

* ``invalid`` — not a phone number: empty, letters, more than ``MAX_LENGTH`` characters, or a
  number ``phonenumbers`` does not hold for possible and valid (unassigned ranges too).
* ``short`` — an emergency or service short code (112, 119, 114, … as ``phonenumbers``'
  short-number data knows them for ``region``) or a domestic number with fewer than
  ``MIN_NATIONAL_DIGITS`` (8) national digits.  The length rule applies to numbers of the
  default region only: some countries have valid shorter numbers, and they are judged by
  their validity when international callbacks are allowed.
* ``international`` — a valid number of another country than ``region`` (unless
  ``allow_international``): a callback is a call the center pays for.
* ``premium`` — premium-rate and shared-cost numbers (calling them costs the center extra and
  is the classic abuse of a callback service).  In Korea every ``060`` number is refused
  as premium, also in ranges ``phonenumbers`` does not list as assigned.
* ``not_dialable`` — numbers no person answers a call on, or where a callback is pointless
  because they are businesses' inbound lines, not a customer's phone: Korean "representative
  numbers" (대표번호: 15xx-xxxx, 16xx-xxxx, 18xx-xxxx, the type ``UAN``), toll-free numbers
  (``080``), voicemail access numbers, and pagers (``015x``: a pager shows a number, it
  cannot take a call; ``1588012904``, a representative number with two digits too many, reads
  as one).

Accepted are only the ``phonenumbers`` types in ``CALLABLE_TYPES``, the phones a person picks
up: mobile (``MOBILE``: ``010``, also ``011``, ``016``-``019``), geographic numbers
(``FIXED_LINE``: ``02`` Seoul, ``031``-``064`` the other area codes), ``FIXED_LINE_OR_MOBILE``
(countries whose ranges do not tell them apart, such as the US), ``070`` internet phones
(``VOIP``: many homes and small offices use them) and ``050x`` personal forwarding numbers
(``PERSONAL_NUMBER``: often the "safe numbers" delivery and market apps hand out, which ring the
customer's mobile).  Every other type is refused: ``PAGER``, ``PREMIUM_RATE``,
``SHARED_COST``, ``UAN``, ``TOLL_FREE``, ``VOICEMAIL``, and ``UNKNOWN`` (a range
``phonenumbers`` holds valid without saying what it is), so a type added to ``phonenumbers``
later is refused until it is judged here.

Spellings are read as ``ivr.routing.numbers.normalize`` reads them: ``010-1234-5678``,
``+82 10 1234 5678`` and ``82-10-1234-5678`` are the same phone; only digits, spaces and
``+ - . ( )`` may appear.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo

from ivr.errors import IvrError

__all__ = ["CALLABLE_TYPES", "MAX_LENGTH", "MIN_NATIONAL_DIGITS", "REFUSALS", "CallbackNumberRefused",
           "validate_callback_number"]

MAX_LENGTH = 20              # characters after stripping, as ivr.routing.numbers
MIN_NATIONAL_DIGITS = 8      # 02-123-4567, the shortest Korean subscriber number, has 8
REFUSALS = ("invalid", "international", "premium", "short", "not_dialable")

_ALLOWED = re.compile(r"\+?[0-9 .()\-]+")
_PREMIUM_TYPES = frozenset({PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST})
_NOT_DIALABLE_TYPES = {
    PhoneNumberType.UAN: "a company's representative number (such as 1588-xxxx)",
    PhoneNumberType.TOLL_FREE: "a toll-free number (a company's inbound line)",
    PhoneNumberType.VOICEMAIL: "a voicemail access number",
    PhoneNumberType.PAGER: "a pager number (015x), which cannot take a call",
}
# The phones a person answers: everything else is refused.
CALLABLE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE,
                            PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.VOIP,
                            PhoneNumberType.PERSONAL_NUMBER})
# National number prefixes refused as premium rate whatever phonenumbers knows of the range.
_PREMIUM_PREFIXES = {"KR": ("60",)}


class CallbackNumberRefused(IvrError):
    """The number cannot be called back; ``why`` is one of ``REFUSALS``."""

    def __init__(self, why: str, message: str) -> None:
        if why not in REFUSALS:
            raise ValueError(f"unknown refusal {why!r}")
        super().__init__(message)
        self.why = why


def validate_callback_number(raw: str, region: str = "KR", *,
                             allow_international: bool = False) -> str:
    """The E.164 number to call back for ``raw`` (as keyed or presented, read as dialled from
    ``region``), or ``CallbackNumberRefused``."""
    if not isinstance(raw, str):
        raise CallbackNumberRefused("invalid", "no number was given")
    text = raw.strip()
    if not text:
        raise CallbackNumberRefused("invalid", "no number was given")
    if len(text) > MAX_LENGTH:
        raise CallbackNumberRefused("invalid", f"the number is longer than {MAX_LENGTH} characters")
    if not _ALLOWED.fullmatch(text):
        raise CallbackNumberRefused(
            "invalid", "that is not a phone number (only digits, spaces and + - . ( ) may appear)")
    region = region.upper()
    digits = "".join(ch for ch in text if ch.isdigit())
    if not text.startswith("+") and _is_short_code(digits, region):
        raise CallbackNumberRefused(
            "short", f"{digits} is an emergency or service short code, not a phone to call back")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise CallbackNumberRefused("invalid", "that is not a phone number") from None

    home = phonenumbers.country_code_for_region(region)
    national = phonenumbers.national_significant_number(number)
    domestic = number.country_code == home
    if domestic:
        if _is_short_code(national, region):
            raise CallbackNumberRefused(
                "short", f"{national} is an emergency or service short code, "
                         "not a phone to call back")
        if len(national) < MIN_NATIONAL_DIGITS:
            raise CallbackNumberRefused(
                "short", f"the number is too short for a phone: {len(national)} digits without "
                         f"the leading 0, at least {MIN_NATIONAL_DIGITS} are needed")
        if national.startswith(_PREMIUM_PREFIXES.get(region, ())):
            raise CallbackNumberRefused("premium", "premium-rate numbers are not called back")
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        where = "" if domestic else f" (country code +{number.country_code})"
        raise CallbackNumberRefused("invalid", f"that is not a valid phone number{where}")
    if not domestic and not allow_international:
        raise CallbackNumberRefused(
            "international", f"only numbers in {region} (+{home}) are called back, not "
                             f"numbers with the country code +{number.country_code}")
    kind = phonenumbers.number_type(number)
    if kind in _PREMIUM_TYPES:
        what = "premium-rate" if kind == PhoneNumberType.PREMIUM_RATE else "shared-cost"
        raise CallbackNumberRefused("premium", f"{what} numbers are not called back")
    if kind not in CALLABLE_TYPES:
        what = _NOT_DIALABLE_TYPES.get(kind, "not a phone a person answers (a service or "
                                             "unknown kind of number)")
        raise CallbackNumberRefused(
            "not_dialable", f"the number is {what}; a callback needs the customer's own phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _is_short_code(digits: str, region: str) -> bool:
    """An emergency number or a short code of ``region`` (112, 119, 114, 1330 …)."""
    if not digits or len(digits) > 6:
        return False
    if shortnumberinfo.is_emergency_number(digits, region):
        return True
    try:
        parsed = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return False
    return shortnumberinfo.is_valid_short_number_for_region(parsed, region)
