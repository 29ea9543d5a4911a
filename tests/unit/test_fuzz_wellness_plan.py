"""The wellness rules held over any run: a dialler loop on ``ivr.wellness.plan`` in virtual time,
looking at arbitrary moments over three weeks, with arbitrary results and call lengths.  Whatever
happens: no call outside the window or on a holiday, nobody rung again on a day they were reached,
no more tries a day than the campaign allows, each try at least ``retry_delay`` after the one
before, never more calls at once than ``max_concurrent``, and nobody forgotten: whoever was not
reached on a window day the loop looked at while lines were free was tried that day."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.callbacks.schedule import OpeningHours, PublicHolidays
from ivr.wellness.model import Attempt, AttemptResult, Campaign, Person
from ivr.wellness.plan import Candidate, local_day, pick

pytestmark = pytest.mark.fuzz

SEOUL = ZoneInfo("Asia/Seoul")
UTC = dt.UTC
START = dt.datetime(2026, 12, 21, 8, 0, tzinfo=SEOUL)     # a Monday; Christmas on Friday
NUMBERS = [f"+8210555500{i:02d}" for i in range(5)]
RESULTS = list(AttemptResult)


def campaign(attempts: int, delay_minutes: int, concurrent: int) -> Campaign:
    window = [(dt.time(10), dt.time(12)), (dt.time(14), dt.time(17))]
    hours = OpeningHours(SEOUL, {1: window, 4: window}, public_holidays=PublicHolidays("KR"))
    return Campaign(name="seniors", hours=hours, attempts_per_day=attempts,
                    retry_delay=dt.timedelta(minutes=delay_minutes), max_concurrent=concurrent)


@given(
    attempts=st.integers(1, 4), delay=st.integers(5, 120), concurrent=st.integers(1, 3),
    steps=st.lists(st.tuples(st.integers(1, 180),                      # minutes to the next look
                             st.lists(st.sampled_from(RESULTS), min_size=3, max_size=3),
                             st.integers(1, 30)),                      # call length, minutes
                   min_size=20, max_size=120),
)
def test_any_run_keeps_the_rules(attempts, delay, concurrent, steps) -> None:
    c = campaign(attempts, delay, concurrent)
    people = [Person(number=n, campaign="seniors") for n in NUMBERS]
    done: dict[str, list[Attempt]] = {n: [] for n in NUMBERS}
    calls: list[tuple[dt.datetime, dt.datetime, str]] = []            # start, end, number
    now = START
    for minutes, results, length in steps:
        now += dt.timedelta(minutes=minutes)
        # Calls that ended by now are finished attempts; the others are in progress.
        ringing = {n for start, end, n in calls if end > now}
        candidates = [Candidate(p, tuple(done[p.number])) for p in people if p.number not in ringing]
        chosen = pick(c, candidates, now, in_progress=len(ringing), paused=False)
        for i, person in enumerate(chosen):
            result = results[i % len(results)]
            if result is AttemptResult.OPTED_OUT:
                result = AttemptResult.NO_ANSWER
            end = now + dt.timedelta(minutes=length)
            calls.append((now, end, person.number))
            done[person.number].append(Attempt(number=person.number, campaign="seniors", at=now,
                                               result=result))
        # Never more calls at once than the cap.
        assert sum(1 for start, end, _ in calls if start <= now < end) <= c.max_concurrent
    for number, tried in done.items():
        by_day: dict[dt.date, list[Attempt]] = {}
        for a in tried:
            assert c.hours.is_open(a.at), f"rung outside the window at {a.at}"
            assert a.at.astimezone(SEOUL).date() != dt.date(2026, 12, 25), "rung on Christmas"
            by_day.setdefault(local_day(c, a.at), []).append(a)
        for day, day_attempts in by_day.items():
            reached = [i for i, a in enumerate(day_attempts) if a.result.contact]
            assert not reached or reached[0] == len(day_attempts) - 1, \
                f"{number} rung again on {day} after being reached"
            assert sum(a.result.failed_contact for a in day_attempts) <= c.attempts_per_day
            for before, after in zip(day_attempts, day_attempts[1:], strict=False):
                assert after.at - before.at >= c.retry_delay, f"{number}: a retry too soon on {day}"


def test_nobody_is_forgotten_on_a_day_with_free_lines() -> None:
    """Looking every 10 minutes with every phone unanswered: everyone is tried every window day,
    up to the attempts of a day, however many people there are for the lines."""
    c = campaign(2, 30, 1)
    numbers = [f"+8210666600{i:02d}" for i in range(8)]
    people = [Person(number=n, campaign="seniors") for n in numbers]
    done: dict[str, list[Attempt]] = {n: [] for n in numbers}
    now = START
    busy_until = START
    while now < START + dt.timedelta(days=9):
        now += dt.timedelta(minutes=10)
        in_progress = 1 if now < busy_until else 0
        candidates = [Candidate(p, tuple(done[p.number])) for p in people]
        for person in pick(c, candidates, now, in_progress=in_progress, paused=False):
            done[person.number].append(Attempt(number=person.number, campaign="seniors", at=now,
                                               result=AttemptResult.NO_ANSWER))
            busy_until = now + dt.timedelta(minutes=5)
    window_days = {dt.date(2026, 12, 22), dt.date(2026, 12, 25), dt.date(2026, 12, 29)} - {
        dt.date(2026, 12, 25)}                                         # Christmas is a holiday
    for number, tried in done.items():
        days = {local_day(c, a.at) for a in tried}
        assert days == window_days, number
        assert len(tried) == 2 * len(window_days), number
