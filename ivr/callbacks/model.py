"""A reservation: "call me back instead of waiting", kept in the store until it is done.

A reservation is ``pending`` until an engine instance takes it to dial (``claimed``, with a
lease: ``claim_until``), and back to ``pending`` after an attempt that did not reach the
customer (with a later ``due_at``), until it ends ``done`` (the customer was connected),
``failed`` (attempts used up) or ``cancelled`` (by an operator, or the customer called again
and was served).  A number has at most one open (``pending`` or ``claimed``) reservation per
queue: booking again updates the open one and keeps its place in the line (``arrived_at``).

All times are aware datetimes in UTC as the store gives them back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

__all__ = ["FINAL_STATUSES", "OPEN_STATUSES", "STATUSES", "Reservation", "check_attempt_outcome",
           "check_status"]

STATUSES = ("pending", "claimed", "done", "failed", "cancelled")
OPEN_STATUSES = frozenset({"pending", "claimed"})
FINAL_STATUSES = frozenset({"done", "failed", "cancelled"})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    """One callback reservation (keyword arguments only; ``Reservation.new`` books one)."""

    id: str                                  # uuid4 hex
    number: str                              # E.164, the number to call back
    queue: str
    priority: str | None = None
    reason: str | None = None
    language: str
    waited: float = 0.0                      # seconds waited in line before accepting the offer
    arrived_at: dt.datetime                  # when the caller joined the line: their place
    created_at: dt.datetime                  # when the reservation was first booked
    due_at: dt.datetime                      # earliest time to dial (created_at: "as soon as possible")
    slot_end: dt.datetime | None = None      # the end of a chosen time slot (None: no slot)
    status: str = "pending"
    attempts: int = 0                        # dial attempts finished
    last_attempt_at: dt.datetime | None = None
    last_result: str | None = None           # "no answer", "busy", "no key", "connected to agent1"
    claimed_by: str | None = None            # the engine instance dialling (or that finished) it
    claim_until: dt.datetime | None = None   # the claim lapses then unless renewed
    call_id: str | None = None               # the call on which the callback was booked
    updated_at: dt.datetime

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"reservation status must be one of {', '.join(STATUSES)}, "
                             f"not {self.status!r}")

    @classmethod
    def new(cls, number: str, queue: str, *, language: str, arrived_at: dt.datetime,
            now: dt.datetime, due_at: dt.datetime | None = None,
            slot_end: dt.datetime | None = None, priority: str | None = None,
            reason: str | None = None, waited: float = 0.0,
            call_id: str | None = None) -> Reservation:
        """A fresh pending reservation booked at ``now`` (due at once unless ``due_at``)."""
        return cls(id=uuid.uuid4().hex, number=number, queue=queue, language=language,
                   arrived_at=arrived_at, created_at=now, due_at=due_at or now,
                   updated_at=now, priority=priority, reason=reason, waited=waited,
                   slot_end=slot_end, call_id=call_id)

    @property
    def open(self) -> bool:
        """Still to be dialled (``pending``) or being dialled (``claimed``)."""
        return self.status in OPEN_STATUSES


def check_attempt_outcome(next_due: dt.datetime | None, final_status: str | None) -> None:
    """What ``Store.finish_attempt`` accepts: a final status (done, failed) or a next due time."""
    if final_status is not None and final_status not in ("done", "failed"):
        raise ValueError(f"an attempt ends a reservation as 'done' or 'failed', "
                         f"not {final_status!r}")
    if final_status is None and next_due is None:
        raise ValueError("finish_attempt needs next_due (try again) or final_status (done, failed)")


def check_status(status: str | None) -> None:
    """A status filter: None (all) or one of ``STATUSES``."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"reservation status must be one of {', '.join(STATUSES)}, "
                         f"not {status!r}")
