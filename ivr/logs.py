"""Logging: structlog configured once, here.  Logs are data; phone numbers are masked.

Masking (``mask_phone_numbers``, the last processor before rendering): a field named in
``PHONE_FIELDS`` is masked whole (``mask_number``); in the free-text fields of ``TEXT_FIELDS``
(errors, details, excerpts of ARI frames, the traceback of ``log.exception`` in JSON) every run
of 7 or more digits that may be a phone number (``01012345678``, ``010-1234-5678``,
``+82 10 1234 5678``) is masked where it stands.  Ids such as ``1715241234.56`` (a dot, or
letters, next to the digits) are left alone.  The console format prints tracebacks itself:
they are not masked there (use ``log.format: json`` in production).

Every call's task binds ``call_id``, ``flow`` … with ``structlog.contextvars`` so each line of
that call carries them.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import structlog

# Fields that hold a phone number somewhere in the engine: masked whole.
PHONE_FIELDS = frozenset({"caller", "caller_number", "callee", "number", "phone", "from_number",
                          "to_number", "callback_number", "caller_id", "e164", "customer"})
# Free-text fields a number may appear in: every number-like run of digits in them is masked.
TEXT_FIELDS = frozenset({"error", "detail", "excerpt", "message", "problem", "problems", "reason",
                         "why", "result", "target", "exception"})
HIDDEN_DIGITS = 4        # at least this many digits of a number are never shown
SHOWN_DIGITS = 4         # the last digits shown, enough to tell calls apart
# 7 or more digits, single spaces or dashes between them, not next to a letter, digit or dot.
_NUMBER_IN_TEXT = re.compile(r"(?<![\w.])\+?\d(?:[ \-]?\d){6,}(?![\w.])")


def mask_number(value: object) -> str:
    """A phone number masked so that it cannot be read: ``01012345678`` → ``010****5678``.

    At least ``HIDDEN_DIGITS`` digits are hidden, the last ``SHOWN_DIGITS`` shown (fewer for a
    short number: ``1234567`` → ``****567``), and the digits of the first three characters
    (``010``, ``+821``, ``+82 ``) only when four digits stay hidden between; a number of 4
    digits or fewer is hidden whole.  Only digits are replaced: ``010-****-5678``.
    """
    return _masked(str(value))


@functools.lru_cache(maxsize=16384)
def _masked(s: str) -> str:
    # Cached: the wallboard masks every waiting caller's number at each push (5,000 at the
    # insurer's peak), and the log lines of one call mask the same number again and again.
    positions = [i for i, ch in enumerate(s) if ch.isdigit()]
    count = len(positions)
    if count <= HIDDEN_DIGITS:
        hidden = positions
    else:
        tail = min(SHOWN_DIGITS, count - HIDDEN_DIGITS)
        prefix = 4 if s.startswith("+") else 3          # "010", "+821", "+82 "
        head = sum(1 for i in positions if i < prefix)
        if count - head - tail < HIDDEN_DIGITS:
            head = 0
        hidden = positions[head:count - tail]
    chars = list(s)
    for i in hidden:
        chars[i] = "*"
    return "".join(chars)


def mask_numbers_in(text: str) -> str:
    """``text`` with every run of digits that may be a phone number masked (``mask_number``)."""
    return _NUMBER_IN_TEXT.sub(lambda m: mask_number(m.group()), text)


def _mask_text(value: Any) -> Any:
    if isinstance(value, str):
        return mask_numbers_in(value)
    if isinstance(value, (list, tuple)):
        return [_mask_text(v) for v in value]
    if isinstance(value, BaseException):
        return mask_numbers_in(str(value))
    return value


def mask_phone_numbers(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask every field that holds a phone number, and the numbers in
    free-text fields."""
    for key in PHONE_FIELDS.intersection(event):
        value = event[key]
        if value:
            event[key] = mask_number(value)
    for key in TEXT_FIELDS.intersection(event):
        event[key] = _mask_text(event[key])
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced after configuration)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _json_serializer() -> dict[str, Any]:
    """The JSON renderer's serializer: orjson when installed (a line in about half the time of
    ``json.dumps``; the same text for what the engine logs: UTF-8 as is, like
    ``ensure_ascii=False``, compact separators aside), else the stdlib."""
    try:
        import orjson
    except ImportError:
        return {"ensure_ascii": False}
    dumps, option = orjson.dumps, orjson.OPT_NON_STR_KEYS

    def serialize(obj: Any, default: Any = None, **_: Any) -> str:
        try:
            return dumps(obj, default=default, option=option).decode()
        except TypeError:               # what orjson will not take (an int beyond 64 bits …)
            return json.dumps(obj, default=default, ensure_ascii=False)

    return {"serializer": serialize}


def configure_logging(fmt: str = "console", level: str = "info", stream: TextIO | None = None) -> None:
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(**_json_serializer())
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if fmt == "json" else structlog.dev.set_exc_info,
            mask_phone_numbers,             # after the traceback became text: masked too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        # PrintLogger calls only write() and flush(), which _CurrentStderr has.
        logger_factory=structlog.PrintLoggerFactory(stream or cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=True,
    )
