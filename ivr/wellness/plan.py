"""When to ring whom: the wellness campaign's decisions, as pure functions of the times given.

Nothing here reads a clock or the store: the dialler passes ``now``, a person's attempts (the
store's, oldest or newest first, any order) and what it sees of the line, and gets back what to
do.  Tested in virtual time, like ``ivr.callbacks.schedule``.

The rules, per person and campaign, on the center's local days (``Campaign.hours.tz``):

* Rung only while the window is open (``OpeningHours.is_open``: the campaign's weekdays and
  times, never on a holiday), retries included: a retry that would fall outside it moves to the
  next opening, which is a new day with its own attempts.
* Once an attempt of a day reached the person (``well``, ``talk``) they are not rung again that
  day: next on the next window day.
* A day has at most ``attempts_per_day`` tries that did not reach them, each ``retry_delay``
  (real elapsed time) after the previous one started; then next on the next window day.
* Opted out: never due.  ``opted_out`` entries count neither as a try nor as contact.
* A missed day is not lost: whoever was not reached on a window day is due again at the next
  opening (``next_attempt`` never skips a window day the person has not been tried on).
* A day is *failed* when it is over for the person (a later local date, or no attempt left
  today) with tries and no contact.  Days without tries (outside the window, the engine down)
  neither count nor break a run.  ``failed_days_to_visit`` failed days in a row, after the last
  contact and after the last visit was made, put the person on the visit list
  (``visit_decision``); a later contact clears an open visit.
* At most ``max_concurrent`` calls of a campaign at once (``free_lines``), none while the
  surge pause holds (``surge_paused``: on at ``pause_over`` seconds of estimated wait, off only
  below ``resume_under``).

Daylight saving: days are local dates; the retry delay is real time (measured in UTC).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable, Sequence

from ivr.wellness.model import Attempt, Campaign, Person, PersonDay, Surge, Visit

__all__ = ["Candidate", "VisitAction", "VisitDecision", "day_over", "due_key", "failed_run", "free_lines",
           "history", "is_due", "local_day", "next_attempt", "next_wake", "pick",
           "surge_paused", "visit_decision"]

UTC = dt.UTC


def local_day(campaign: Campaign, at: dt.datetime) -> dt.date:
    """The center's local date of ``at`` (an aware datetime)."""
    if at.tzinfo is None:
        raise ValueError(f"an aware datetime is needed, not the naive {at.isoformat()}")
    return at.astimezone(campaign.hours.tz).date()


def history(campaign: Campaign, attempts: Iterable[Attempt]) -> list[PersonDay]:
    """The attempts grouped by local day, oldest day first, each day's attempts in order."""
    days: dict[dt.date, list[Attempt]] = {}
    for attempt in sorted(attempts, key=lambda a: a.at.astimezone(UTC)):
        days.setdefault(local_day(campaign, attempt.at), []).append(attempt)
    return [PersonDay(day=day, attempts=tuple(items)) for day, items in sorted(days.items())]


def _start_of_next_day(campaign: Campaign, day: dt.date) -> dt.datetime:
    midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0),
                                   tzinfo=campaign.hours.tz)
    return midnight.astimezone(UTC).astimezone(campaign.hours.tz)


def next_attempt(campaign: Campaign, person: Person, attempts: Iterable[Attempt],
                 now: dt.datetime) -> dt.datetime | None:
    """The earliest moment from ``now`` on at which ``person`` may be rung; None when never
    (opted out).  ``now`` itself when they are due now.

    Raises ``ValueError`` when the window does not open within about a year.
    """
    if person.opt_out:
        return None
    today = local_day(campaign, now)
    return _next_on(campaign, [a for a in attempts if local_day(campaign, a.at) == today], now)


def _next_on(campaign: Campaign, todays: Iterable[Attempt], now: dt.datetime) -> dt.datetime:
    """The next try from ``now`` given the attempts of now's local day."""
    hours = campaign.hours
    todays = list(todays)
    today = local_day(campaign, now)
    tries = sorted(a.at.astimezone(UTC) for a in todays if a.result.failed_contact)
    if any(a.result.contact for a in todays) or len(tries) >= campaign.attempts_per_day:
        return hours.next_open(_start_of_next_day(campaign, today))
    earliest = now.astimezone(UTC)
    if tries:
        earliest = max(earliest, tries[-1] + campaign.retry_delay)
    return hours.next_open(earliest)


def is_due(campaign: Campaign, person: Person, attempts: Iterable[Attempt],
           now: dt.datetime) -> bool:
    """Whether ``person`` may be rung at ``now`` (window open, not opted out, rules met)."""
    when = next_attempt(campaign, person, attempts, now)
    return when is not None and when.astimezone(UTC) <= now.astimezone(UTC)


def day_over(campaign: Campaign, day: PersonDay, now: dt.datetime) -> bool:
    """Whether no further attempt will be made on ``day`` (a past date, or today with contact,
    tries used up, or the next try falling on a later day)."""
    today = local_day(campaign, now)
    if day.day < today:
        return True
    if day.day > today:
        return False
    try:
        following = _next_on(campaign, day.attempts, now)
    except ValueError:
        return True                           # the window never opens again
    return local_day(campaign, following) != today


def failed_run(campaign: Campaign, attempts: Iterable[Attempt], now: dt.datetime, *,
               after: dt.datetime | None = None) -> list[PersonDay]:
    """The failed days in a row up to now (oldest first), after the last contact day and, when
    ``after`` is given, made only of attempts from then on.  Today counts only once it is over
    (``day_over``); days without tries are passed over."""
    chosen = [a for a in attempts
              if after is None or a.at.astimezone(UTC) > after.astimezone(UTC)]
    run: list[PersonDay] = []
    for day in reversed(history(campaign, chosen)):
        if day.contacted:
            break
        if not day.failed:
            continue                          # only opted-out entries: neither counts
        if not day_over(campaign, day, now):
            continue                          # today, still being tried
        run.append(day)
    run.reverse()
    return run


class VisitAction(enum.StrEnum):
    NONE = "none"
    OPEN = "open"        # put the person on the visit list (``VisitDecision.visit``)
    CLEAR = "clear"      # a call reached them: take the open visit off (``cleared_at``)


@dataclasses.dataclass(frozen=True, slots=True)
class VisitDecision:
    action: VisitAction
    visit: Visit | None = None                # OPEN: the entry to add; CLEAR: the open one
    cleared_at: dt.datetime | None = None     # CLEAR: the start of the attempt that reached them


def visit_decision(campaign: Campaign, number: str, attempts: Sequence[Attempt],
                   now: dt.datetime, last_visit: Visit | None) -> VisitDecision:
    """What the visit list should say of ``number`` after its ``attempts`` up to ``now``.

    ``last_visit`` is the person's newest visit entry, open or not (None: never listed).  An open
    visit is cleared by the first contact after it was opened; otherwise a run of
    ``failed_days_to_visit`` failed days after the last finished visit opens a new one, its
    history the attempts of those days.
    """
    if last_visit is not None and last_visit.open:
        since = last_visit.since.astimezone(UTC)
        reached = sorted((a for a in attempts if a.result.contact and a.at.astimezone(UTC) > since),
                         key=lambda a: a.at.astimezone(UTC))
        if reached:
            return VisitDecision(VisitAction.CLEAR, last_visit, reached[0].at.astimezone(UTC))
        return VisitDecision(VisitAction.NONE)
    after = None
    if last_visit is not None:
        after = last_visit.done_at or last_visit.cleared_at
    run = failed_run(campaign, attempts, now, after=after)
    if len(run) < campaign.failed_days_to_visit:
        return VisitDecision(VisitAction.NONE)
    visit = Visit(number=number, campaign=campaign.name, since=now.astimezone(UTC),
                  history=tuple(a for day in run for a in day.attempts))
    return VisitDecision(VisitAction.OPEN, visit)


def free_lines(campaign: Campaign, in_progress: int) -> int:
    """How many more calls of ``campaign`` may start now (``max_concurrent`` minus those in
    progress, never below zero)."""
    if in_progress < 0:
        raise ValueError(f"calls in progress cannot be negative, not {in_progress!r}")
    return max(0, campaign.max_concurrent - in_progress)


def surge_paused(surge: Surge | None, estimated_wait: float | None, paused: bool) -> bool:
    """Whether the campaign is paused after seeing ``estimated_wait`` (seconds; None: nobody
    waiting, no estimate) in the surge queue, given whether it was ``paused`` before.

    Pauses at ``pause_over`` or more, resumes only below ``resume_under``; in between the state
    holds, so a wait hovering near the threshold does not flap the campaign.
    """
    if surge is None:
        return False
    wait = 0.0 if estimated_wait is None else estimated_wait
    if wait >= surge.pause_over:
        return True
    if wait < surge.resume_under:
        return False
    return paused


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    """A person with their attempts, as the dialler reads them from the store."""

    person: Person
    attempts: tuple[Attempt, ...] = ()


def pick(campaign: Campaign, candidates: Iterable[Candidate], now: dt.datetime, *,
         in_progress: int, paused: bool) -> list[Person]:
    """Whom to ring now: at most ``free_lines`` of the due people; nobody while paused or outside
    the window.  First those not tried yet today, the longest unreached first (never reached,
    then the oldest last contact), then the retries, the longest overdue first; ties by number.
    A person being rung (claimed in the store) is no candidate: the store keeps them out."""
    if paused or not campaign.hours.is_open(now):
        return []
    room = free_lines(campaign, in_progress)
    if room == 0:
        return []
    due = [(key, candidate.person) for candidate in candidates
           if (key := due_key(campaign, candidate, now)) is not None]
    due.sort(key=lambda item: item[0])
    return [person for _, person in due[:room]]


def due_key(campaign: Campaign, candidate: Candidate,
            now: dt.datetime) -> tuple[int, dt.datetime, str] | None:
    """Where ``candidate`` stands in ``pick``'s order (smaller first), or None when not due
    now.  For a dialler that judges a large campaign a slice at a time."""
    if candidate.person.campaign != campaign.name:
        return None
    if not is_due(campaign, candidate.person, candidate.attempts, now):
        return None
    today = local_day(campaign, now)
    tries = sorted(a.at.astimezone(UTC) for a in candidate.attempts
                   if local_day(campaign, a.at) == today and a.result.failed_contact)
    if tries:
        return 1, tries[-1] + campaign.retry_delay, candidate.person.number
    contacts = [a.at.astimezone(UTC) for a in candidate.attempts if a.result.contact]
    return 0, max(contacts, default=_NEVER), candidate.person.number


_NEVER = dt.datetime.min.replace(tzinfo=UTC)


def next_wake(campaign: Campaign, candidates: Iterable[Candidate],
              now: dt.datetime) -> dt.datetime | None:
    """The earliest moment after ``now`` at which someone of ``campaign`` not due now becomes
    due (a retry's time, the next opening), so the dialler can wait until then, or until a line
    frees, instead of looking again and again.  None when there is no such moment: every
    candidate is due now or opted out, or there are none."""
    moments = []
    for candidate in candidates:
        if candidate.person.campaign != campaign.name:
            continue
        when = next_attempt(campaign, candidate.person, candidate.attempts, now)
        if when is not None and when.astimezone(UTC) > now.astimezone(UTC):
            moments.append(when.astimezone(UTC))
    return min(moments, default=None)
