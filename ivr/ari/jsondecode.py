"""Decoding ARI's JSON (events and REST answers): orjson when installed, else the stdlib.

orjson (the ``fast`` extra) decodes an event several times faster than ``json.loads``, which
matters most for the events that carry a whole bridge (``ChannelEnteredBridge`` lists every
channel of the holding bridge).  Whatever orjson refuses is decoded again by ``json.loads``:
orjson is stricter (no ``NaN``, no integers beyond 64 bits, no lone surrogates, nesting to 1024
levels), so what the stdlib accepts is still accepted, and what neither accepts fails with the
stdlib's own exception and message (``json.JSONDecodeError``, ``RecursionError``).  Bad frames
are rare, so the second try costs nothing in practice.  One difference stays: an integer
beyond 64 bits comes out of orjson as a float (ARI sends none: its numbers are causes,
durations, priorities).

``IVR_JSON=stdlib`` in the environment (read at import) forces the stdlib, to measure both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

__all__ = ["BACKEND", "decoder", "dumps", "loads", "pick"]


def _stdlib(data: str | bytes) -> Any:
    return json.loads(data)


def decoder(backend: str) -> Callable[[str | bytes], Any]:
    """The ``loads`` of ``backend`` (``"orjson"`` or ``"stdlib"``); ``ImportError`` when
    orjson is asked for and not installed."""
    if backend == "stdlib":
        return _stdlib
    if backend != "orjson":
        raise ValueError(f"no JSON backend {backend!r} (orjson, stdlib)")
    import orjson

    fast_loads = orjson.loads
    refused = orjson.JSONDecodeError

    def _orjson(data: str | bytes) -> Any:
        try:
            return fast_loads(data)
        except refused:
            return json.loads(data)      # the stdlib's verdict, and its message

    return _orjson


def pick() -> tuple[str, Callable[[str | bytes], Any]]:
    """The backend to use: ``IVR_JSON=stdlib`` forces the stdlib, else orjson when installed."""
    if os.environ.get("IVR_JSON", "").strip().lower() == "stdlib":
        return "stdlib", _stdlib
    try:
        return "orjson", decoder("orjson")
    except ImportError:
        return "stdlib", _stdlib


BACKEND, loads = pick()
"""``BACKEND``: ``"orjson"`` or ``"stdlib"``; ``loads(data)``: ``json.loads`` semantics."""


def _dumps_stdlib(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _encoder(backend: str) -> Callable[[Any], str]:
    if backend != "orjson":
        return _dumps_stdlib
    import orjson

    fast_dumps = orjson.dumps
    return lambda value: fast_dumps(value).decode()


dumps = _encoder(BACKEND)
"""Compact JSON text (a request frame for the event socket), with the same backend."""
