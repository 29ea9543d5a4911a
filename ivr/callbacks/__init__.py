"""Reservation callbacks: "call me back instead of waiting".

A caller waiting in a queue accepts the offer, confirms the number to call back and hangs
up; the reservation is kept in the store (``ivr.callbacks.model``) with the caller's place in
the line.  Engine instances claim due reservations from the store with a lease, dial them
within the center's opening hours and retry as ``RetryPolicy`` says (``ivr.callbacks.schedule``).
Only the numbers ``validate_callback_number`` accepts are called back (``ivr.callbacks.numbers``).
"""

from __future__ import annotations

from ivr.callbacks.model import FINAL_STATUSES, OPEN_STATUSES, STATUSES, Reservation
from ivr.callbacks.numbers import CallbackNumberRefused, validate_callback_number
from ivr.callbacks.schedule import OpeningHours, RetryPolicy

__all__ = ["FINAL_STATUSES", "OPEN_STATUSES", "STATUSES", "CallbackNumberRefused",
           "OpeningHours", "Reservation", "RetryPolicy", "validate_callback_number"]
