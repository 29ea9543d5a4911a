"""Logging: structlog configured once, here.  Logs are data; phone numbers are masked.

Every call's task binds ``call_id``, ``flow`` … with ``structlog.contextvars`` so each line of
that call carries them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Fields that hold a phone number somewhere in the engine.
PHONE_FIELDS = frozenset({"caller", "caller_number", "callee", "number", "phone", "from_number",
                          "to_number", "callback_number"})
_DIGITS = re.compile(r"\d")


def mask_number(value: str) -> str:
    """``01012345678`` → ``010****5678``; short or empty values are masked whole."""
    s = str(value)
    digits = sum(1 for _ in _DIGITS.finditer(s))
    if digits == 0:
        return s
    if digits < 7:
        return "*" * len(s)
    keep_head = 4 if s.startswith("+") else 3
    head, tail = s[:keep_head], s[-4:]
    middle = _DIGITS.sub("*", s[keep_head:-4])
    return head + middle + tail


def mask_phone_numbers(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask every field that holds a phone number."""
    for key in PHONE_FIELDS.intersection(event):
        value = event[key]
        if value:
            event[key] = mask_number(value)
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced after configuration)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(fmt: str = "console", level: str = "info", stream: Any = None) -> None:
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_phone_numbers,
            structlog.processors.format_exc_info if fmt == "json" else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(stream or _CurrentStderr()),
        cache_logger_on_first_use=True,
    )
