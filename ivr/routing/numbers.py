"""Caller ID → one E.164 number per phone, whatever the spelling.

``normalize`` never raises.  It answers a ``CallerNumber`` whose ``status`` says what the caller
ID was:

* ``ok`` — a valid number; ``e164`` holds it (``+821012345678``).  ``010-1234-5678``,
  ``01012345678``, ``+82 10-1234-5678`` and ``82-10-1234-5678`` are the same phone.  A number
  that starts with the country code without ``+`` is read as international: no Korean
  domestic number starts with ``82`` (they start with ``0`` or ``1``), and carriers often
  present ``82…``.
* ``anonymous`` — the caller withheld the number: empty, ``anonymous``, ``unknown``,
  ``restricted``, ``private``, ``withheld``, ``unavailable``, ``asterisk``, ``s``, all zeros …
  (any case).  The caller is served as an unknown caller.
* ``invalid`` — anything else: letters, SIP URIs, control characters, more than
  ``MAX_LENGTH`` characters (not even parsed), not text at all, or a number that
  ``phonenumbers`` does not hold for valid.  ``reason`` says which.

Only digits, spaces, ``+ - . ( )`` may appear in a number.  Results are cached (bounded).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Literal

import phonenumbers

__all__ = ["CallerNumber", "NumberStatus", "normalize", "MAX_LENGTH"]

NumberStatus = Literal["ok", "anonymous", "invalid"]

MAX_LENGTH = 20          # characters after stripping; longer input is refused unparsed
CACHE_SIZE = 8192

# How switches and carriers spell a withheld number (compared in lower case).
WITHHELD = frozenset({"", "anonymous", "unknown", "restricted", "private", "withheld", "unavailable",
                      "asterisk", "s", "blocked", "privacy", "p", "o", "none", "null"})
_ALLOWED = re.compile(r"\+?[0-9 .()\-]+")
_ZEROS = re.compile(r"[0 .()\-+]+")


@dataclasses.dataclass(frozen=True, slots=True)
class CallerNumber:
    """A caller ID as presented (``raw``) and what it means."""

    raw: object
    e164: str | None
    status: NumberStatus
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def anonymous(self) -> bool:
        return self.status == "anonymous"


def normalize(raw: str | None, region: str = "KR") -> CallerNumber:
    """The caller ID ``raw`` as an E.164 number, read as dialled from ``region``; never raises."""
    if raw is None:
        return CallerNumber(raw, None, "anonymous", "no caller ID")
    if not isinstance(raw, str):
        return CallerNumber(raw, None, "invalid", f"not text ({type(raw).__name__})")
    text = raw.strip()
    if len(text) > MAX_LENGTH:
        return CallerNumber(raw, None, "invalid", f"longer than {MAX_LENGTH} characters")
    e164, status, reason = _parse(text, region)
    return CallerNumber(raw, e164, status, reason)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parse(text: str, region: str) -> tuple[str | None, NumberStatus, str]:
    if text.lower() in WITHHELD:
        return None, "anonymous", "withheld"
    if not _ALLOWED.fullmatch(text):
        return None, "invalid", "not a phone number (only digits, spaces and + - . ( ) may appear)"
    if _ZEROS.fullmatch(text):
        return None, "anonymous", "withheld (all zeros)"
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, "invalid", "not a phone number"
    if not phonenumbers.is_valid_number(number):
        return None, "invalid", f"not a valid number (read from region {region})"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), "ok", ""
