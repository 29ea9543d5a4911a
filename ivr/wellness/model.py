"""Wellness calls' model: campaigns, the people they ring, attempts and the home-visit list.

A *campaign* (``wellness.campaigns`` in the config) rings its *people* within its own weekly
window, in the center's time zone, skipping holidays.  Each call is an *attempt* with a result;
a day on which some attempt reached the person (``well`` or ``talk``) is a contact day, a day
with attempts and no contact is a failed day.  After ``failed_days_to_visit`` failed days in a
row the person goes on the *visit* list with that history; a visit is ended by the person who
made it (``done_at`` with a note) or by a later call that reaches them (``cleared_at``).
Nothing here is ever deleted automatically.

Frozen dataclasses, keyword arguments only; all times are aware datetimes (the store gives
them back in UTC).  Phone numbers are E.164 (``+821012345678``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from ivr.callbacks.schedule import OpeningHours

__all__ = ["CONTACT_RESULTS", "FAILED_RESULTS", "Attempt", "AttemptResult", "Campaign",
           "Person", "PersonDay", "Surge", "Visit"]


class AttemptResult(enum.StrEnum):
    """How one wellness attempt ended."""

    WELL = "well"              # answered and pressed 1: "I am well"
    TALK = "talk"              # answered and pressed 2: put through to the wellness queue
    NO_KEY = "no_key"          # answered, pressed nothing (or nothing valid) after the repeat
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"          # the call could not be placed (trunk, endpoint, network)
    OPTED_OUT = "opted_out"    # not dialled: the person had opted out when the attempt came up

    @property
    def contact(self) -> bool:
        """The person was reached and answered (``well``, ``talk``): a contact day."""
        return self in CONTACT_RESULTS

    @property
    def failed_contact(self) -> bool:
        """A try that did not reach the person: counts towards a failed day."""
        return self in FAILED_RESULTS


CONTACT_RESULTS = frozenset({AttemptResult.WELL, AttemptResult.TALK})
FAILED_RESULTS = frozenset({AttemptResult.NO_KEY, AttemptResult.BUSY, AttemptResult.NO_ANSWER,
                            AttemptResult.FAILED})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Surge:
    """Pause a campaign while the inbound line is long: once ``queue``'s estimated wait reaches
    ``pause_over`` seconds no new attempt starts, until it falls below ``resume_under``
    (hysteresis: ``resume_under`` < ``pause_over``, so the campaign does not flap)."""

    queue: str
    pause_over: float             # seconds of estimated wait
    resume_under: float           # seconds of estimated wait

    def __post_init__(self) -> None:
        if not self.queue:
            raise ValueError("surge: a queue to watch is needed")
        if not 0 < self.pause_over:
            raise ValueError(f"surge.pause_over must be more than 0 seconds, not {self.pause_over!r}")
        if not 0 <= self.resume_under < self.pause_over:
            raise ValueError(f"surge.resume_under must be from 0 to less than pause_over "
                             f"({self.pause_over:g}), not {self.resume_under!r}")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Campaign:
    """One wellness campaign: whom it belongs to, when it rings, how hard it tries."""

    name: str
    hours: OpeningHours                      # the window (weekdays, times, tz, holidays)
    attempts_per_day: int = 3
    retry_delay: dt.timedelta = dt.timedelta(minutes=30)   # from one attempt's start to the next
    max_concurrent: int = 2                  # wellness calls of this campaign in progress at once
    failed_days_to_visit: int = 3            # consecutive failed days that bring a home visit
    queue: str = "wellness"                  # where "press 2" goes
    priority: str | None = None              # the priority in that queue (None: the highest)
    surge: Surge | None = None               # None: never paused for the inbound line
    flow: str = "wellness"                   # the check-in dialog (an ``outbound: true`` flow)
    caller_id: str | None = None             # the center's number the person sees

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a wellness campaign needs a name")
        if self.attempts_per_day < 1:
            raise ValueError(f"attempts_per_day must be at least 1, not {self.attempts_per_day!r}")
        if self.retry_delay <= dt.timedelta(0):
            raise ValueError(f"retry_delay must be more than zero, not {self.retry_delay}")
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {self.max_concurrent!r}")
        if self.failed_days_to_visit < 1:
            raise ValueError(f"failed_days_to_visit must be at least 1, "
                             f"not {self.failed_days_to_visit!r}")
        if not self.queue:
            raise ValueError("a wellness campaign needs a queue for 'press 2'")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Person:
    """Someone a campaign rings (``number`` is the key: one campaign per number)."""

    number: str                              # E.164
    campaign: str
    name: str = ""
    language: str = "ko"
    contact: str = ""                        # whom to tell, e.g. "daughter +821098765432"
    address_ref: str = ""                    # the visit list's reference to the home address
    opt_out: bool = False                    # True: never rung (kept, with the history)
    added_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One finished wellness attempt (``at``: when it started; ``detail``: free text such as
    the agent who took a ``talk`` or the cause of a ``failed``)."""

    number: str
    campaign: str
    at: dt.datetime
    result: AttemptResult
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(f"an attempt's time must be aware, not {self.at.isoformat()}")
        object.__setattr__(self, "result", AttemptResult(self.result))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PersonDay:
    """One local day of a person's history: the attempts made and whether one reached them."""

    day: dt.date                             # the center's local date
    attempts: tuple[Attempt, ...]

    @property
    def contacted(self) -> bool:
        return any(a.result.contact for a in self.attempts)

    @property
    def failed(self) -> bool:
        """Tried and never reached (opted-out entries alone are not a failed day)."""
        return not self.contacted and any(a.result.failed_contact for a in self.attempts)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Visit:
    """An entry of the home-visit list: open until ``done_at`` (visited, with ``note``) or
    ``cleared_at`` (a later call reached the person).  ``history``: the attempts of the failed
    days that put them there."""

    number: str
    campaign: str
    since: dt.datetime
    history: tuple[Attempt, ...] = ()
    done_at: dt.datetime | None = None
    note: str | None = None
    cleared_at: dt.datetime | None = None
    id: int | None = None                    # the store's id (None before it is stored)

    @property
    def open(self) -> bool:
        return self.done_at is None and self.cleared_at is None
