"""The wellness campaign's decisions in virtual time: window, holidays, retries, a day's
success, the concurrency cap, the surge pause and the run of failed days that brings a visit."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ivr.callbacks.schedule import OpeningHours, PublicHolidays
from ivr.wellness.model import Attempt, AttemptResult, Campaign, Person, Surge, Visit
from ivr.wellness.plan import (Candidate, VisitAction, day_over, failed_run, free_lines, history,
                               is_due, next_attempt, next_wake, pick, surge_paused, visit_decision)

SEOUL = ZoneInfo("Asia/Seoul")
UTC = dt.UTC
R = AttemptResult
NUMBER = "+821012345678"


def seoul(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SEOUL)


def campaign(**changes) -> Campaign:
    """Tuesdays and Fridays 10:00-17:00 Seoul time, Korean public holidays off."""
    window = [(dt.time(10), dt.time(17))]
    hours = OpeningHours(SEOUL, {1: window, 4: window}, public_holidays=PublicHolidays("KR"))
    settings = {"name": "seniors", "hours": hours, "attempts_per_day": 3,
                "retry_delay": dt.timedelta(minutes=30), "max_concurrent": 2,
                "failed_days_to_visit": 3}
    settings.update(changes)
    return Campaign(**settings)


def person(number: str = NUMBER, **changes) -> Person:
    return Person(number=number, campaign="seniors", name="Kim", language="ko", **changes)


def tried(at: dt.datetime, result: AttemptResult, number: str = NUMBER) -> Attempt:
    return Attempt(number=number, campaign="seniors", at=at.astimezone(UTC), result=result)


# 2026-03-03 and 2026-03-06 are a Tuesday and a Friday; 2026-03-10 the Tuesday after.


def test_due_at_the_window_only():
    c = campaign()
    assert is_due(c, person(), [], seoul(2026, 3, 3, 10, 0))
    assert is_due(c, person(), [], seoul(2026, 3, 3, 16, 59))
    assert not is_due(c, person(), [], seoul(2026, 3, 3, 9, 59))
    assert not is_due(c, person(), [], seoul(2026, 3, 3, 17, 0))
    assert not is_due(c, person(), [], seoul(2026, 3, 4, 11, 0))          # a Wednesday
    # At night the next attempt is the next opening, never the night itself.
    assert next_attempt(c, person(), [], seoul(2026, 3, 3, 23, 0)) == seoul(2026, 3, 6, 10, 0)


def test_public_holidays_are_skipped():
    c = campaign()
    # Tuesday 2026-02-17 is Seollal: from the Friday before, the next call is Friday the 20th.
    assert next_attempt(c, person(), [], seoul(2026, 2, 13, 18, 0)) == seoul(2026, 2, 20, 10, 0)
    assert not is_due(c, person(), [], seoul(2026, 2, 17, 11, 0))
    # Friday 2026-09-25 is Chuseok.
    assert next_attempt(c, person(), [], seoul(2026, 9, 22, 17, 0)) == seoul(2026, 9, 29, 10, 0)


def test_never_twice_on_a_day_once_a_call_succeeded():
    c = campaign()
    for result in (R.WELL, R.TALK):
        attempts = [tried(seoul(2026, 3, 3, 10, 0), R.NO_ANSWER),
                    tried(seoul(2026, 3, 3, 10, 30), result)]
        assert not is_due(c, person(), attempts, seoul(2026, 3, 3, 11, 30))
        assert not is_due(c, person(), attempts, seoul(2026, 3, 3, 16, 59))
        assert next_attempt(c, person(), attempts, seoul(2026, 3, 3, 11, 0)) == seoul(2026, 3, 6, 10)
        assert is_due(c, person(), attempts, seoul(2026, 3, 6, 10, 0))


def test_retry_after_the_delay_up_to_the_attempts_of_a_day():
    c = campaign()
    first = [tried(seoul(2026, 3, 3, 10, 0), R.NO_ANSWER)]
    assert not is_due(c, person(), first, seoul(2026, 3, 3, 10, 29))
    assert next_attempt(c, person(), first, seoul(2026, 3, 3, 10, 1)) == seoul(2026, 3, 3, 10, 30)
    assert is_due(c, person(), first, seoul(2026, 3, 3, 10, 30))
    three = [*first, tried(seoul(2026, 3, 3, 10, 30), R.BUSY),
             tried(seoul(2026, 3, 3, 11, 0), R.NO_KEY)]
    # Tries used up: not again today however late it gets, next the Friday.
    assert not is_due(c, person(), three, seoul(2026, 3, 3, 15, 0))
    assert next_attempt(c, person(), three, seoul(2026, 3, 3, 11, 1)) == seoul(2026, 3, 6, 10, 0)


def test_a_retry_never_falls_outside_the_window():
    c = campaign()
    late = [tried(seoul(2026, 3, 3, 16, 45), R.NO_ANSWER)]
    # 17:15 is closed: the retry moves to Friday's opening, a new day with its own tries.
    assert next_attempt(c, person(), late, seoul(2026, 3, 3, 16, 50)) == seoul(2026, 3, 6, 10, 0)
    assert not is_due(c, person(), late, seoul(2026, 3, 3, 17, 15))
    assert not is_due(c, person(), late, seoul(2026, 3, 3, 23, 0))


def test_opted_out_and_opted_out_entries():
    c = campaign()
    assert next_attempt(c, person(opt_out=True), [], seoul(2026, 3, 3, 10, 0)) is None
    assert not is_due(c, person(opt_out=True), [], seoul(2026, 3, 3, 10, 0))
    # An opted_out entry is no try: the day still has all its tries.
    attempts = [tried(seoul(2026, 3, 3, 10, 0), R.OPTED_OUT)]
    assert is_due(c, person(), attempts, seoul(2026, 3, 3, 10, 0))


def test_a_missed_window_day_is_not_lost():
    c = campaign()
    # Nobody rang on Tuesday (the engine was down): Friday the person is due at the opening,
    # and a day without tries neither counts as failed nor breaks a run.
    assert is_due(c, person(), [], seoul(2026, 3, 6, 10, 0))
    attempts = [tried(seoul(2026, 2, 27, h, 0), R.NO_ANSWER) for h in (10, 11, 12)] + \
               [tried(seoul(2026, 3, 6, h, 0), R.NO_ANSWER) for h in (10, 11, 12)]
    run = failed_run(c, attempts, seoul(2026, 3, 6, 13, 0))
    assert [d.day for d in run] == [dt.date(2026, 2, 27), dt.date(2026, 3, 6)]


def test_retry_delay_is_real_time_across_daylight_saving():
    berlin = ZoneInfo("Europe/Berlin")
    hours = OpeningHours(berlin, {6: [(dt.time(0), dt.time.max)]})   # Sundays, all day
    c = campaign(hours=hours, retry_delay=dt.timedelta(hours=1))
    # 2026-03-29 01:30 CET is 00:30 UTC; an hour later is 01:30 UTC, 03:30 CEST.
    start = dt.datetime(2026, 3, 29, 1, 30, tzinfo=berlin)
    attempts = [tried(start, R.NO_ANSWER)]
    when = next_attempt(c, person(), attempts, start + dt.timedelta(minutes=1))
    assert when is not None
    assert when.astimezone(UTC) == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert when.astimezone(berlin).hour == 3


def test_history_groups_by_local_day():
    c = campaign()
    # 23:30 UTC on the 2nd is 08:30 on the 3rd in Seoul.
    late = Attempt(number=NUMBER, campaign="seniors",
                   at=dt.datetime(2026, 3, 2, 23, 30, tzinfo=UTC), result=R.NO_ANSWER)
    days = history(c, [tried(seoul(2026, 3, 3, 11, 0), R.WELL), late])
    assert [d.day for d in days] == [dt.date(2026, 3, 3)]
    assert days[0].contacted and not days[0].failed
    assert [a.result for a in days[0].attempts] == [R.NO_ANSWER, R.WELL]


def failed_day(day: dt.date) -> list[Attempt]:
    return [tried(seoul(day.year, day.month, day.day, h, 0), R.NO_ANSWER) for h in (10, 11, 12)]


TUE1, FRI1, TUE2, FRI2 = (dt.date(2026, 3, 3), dt.date(2026, 3, 6), dt.date(2026, 3, 10),
                          dt.date(2026, 3, 13))


def test_three_failed_days_in_a_row_bring_a_visit_with_the_history():
    c = campaign()
    attempts = failed_day(TUE1) + failed_day(FRI1) + failed_day(TUE2)
    now = seoul(2026, 3, 10, 12, 5)
    decision = visit_decision(c, NUMBER, attempts, now, None)
    assert decision.action is VisitAction.OPEN
    assert decision.visit is not None
    assert decision.visit.number == NUMBER and decision.visit.campaign == "seniors"
    assert decision.visit.since == now.astimezone(UTC)
    assert decision.visit.history == tuple(sorted(attempts, key=lambda a: a.at))
    assert decision.visit.open


def test_today_counts_only_once_it_is_over():
    c = campaign()
    two_and_one = failed_day(TUE1) + failed_day(FRI1) + failed_day(TUE2)[:1]
    # Tuesday the 10th, 10:05: one try, two more to come today: not a failed day yet.
    assert visit_decision(c, NUMBER, two_and_one, seoul(2026, 3, 10, 10, 5), None).action \
        is VisitAction.NONE
    # The same tries seen at night: Tuesday is over, it failed.
    assert visit_decision(c, NUMBER, two_and_one, seoul(2026, 3, 10, 20, 0), None).action \
        is VisitAction.OPEN
    # A late try whose retry would fall after closing ends the day too.
    late = failed_day(TUE1) + failed_day(FRI1) + [tried(seoul(2026, 3, 10, 16, 40), R.BUSY)]
    assert day_over(c, history(c, late)[-1], seoul(2026, 3, 10, 16, 45))
    assert visit_decision(c, NUMBER, late, seoul(2026, 3, 10, 16, 45), None).action \
        is VisitAction.OPEN


def test_a_contact_day_breaks_the_run():
    c = campaign()
    attempts = failed_day(TUE1) + [tried(seoul(2026, 3, 6, 10, 0), R.WELL)] + failed_day(TUE2)
    assert visit_decision(c, NUMBER, attempts, seoul(2026, 3, 10, 20, 0), None).action \
        is VisitAction.NONE
    assert [d.day for d in failed_run(c, attempts, seoul(2026, 3, 10, 20, 0))] == [TUE2]


def test_an_open_visit_is_cleared_by_a_later_contact_only():
    c = campaign()
    attempts = failed_day(TUE1) + failed_day(FRI1) + failed_day(TUE2)
    visit = Visit(number=NUMBER, campaign="seniors", since=seoul(2026, 3, 10, 20).astimezone(UTC),
                  history=tuple(attempts), id=7)
    more = [*attempts, *failed_day(FRI2)]
    assert visit_decision(c, NUMBER, more, seoul(2026, 3, 13, 20), visit).action is VisitAction.NONE
    reached = tried(seoul(2026, 3, 17, 10, 30), R.TALK)
    decision = visit_decision(c, NUMBER, [*more, reached], seoul(2026, 3, 17, 10, 31), visit)
    assert decision.action is VisitAction.CLEAR
    assert decision.visit == visit and decision.cleared_at == reached.at


def test_after_a_visit_is_made_the_count_starts_again():
    c = campaign()
    attempts = failed_day(TUE1) + failed_day(FRI1) + failed_day(TUE2)
    done = Visit(number=NUMBER, campaign="seniors", since=seoul(2026, 3, 10, 20).astimezone(UTC),
                 history=tuple(attempts), done_at=seoul(2026, 3, 11, 15).astimezone(UTC),
                 note="visited, was in hospital")
    more = [*attempts, *failed_day(FRI2)]
    assert visit_decision(c, NUMBER, more, seoul(2026, 3, 13, 20), done).action is VisitAction.NONE
    more += failed_day(dt.date(2026, 3, 17)) + failed_day(dt.date(2026, 3, 20))
    decision = visit_decision(c, NUMBER, more, seoul(2026, 3, 20, 20), done)
    assert decision.action is VisitAction.OPEN and decision.visit is not None
    assert {local.astimezone(SEOUL).date() for local in (a.at for a in decision.visit.history)} \
        == {FRI2, dt.date(2026, 3, 17), dt.date(2026, 3, 20)}


def test_failed_days_to_visit_is_the_campaigns():
    c = campaign(failed_days_to_visit=1)
    assert visit_decision(c, NUMBER, failed_day(TUE1), seoul(2026, 3, 3, 20), None).action \
        is VisitAction.OPEN


def test_free_lines():
    c = campaign(max_concurrent=2)
    assert [free_lines(c, n) for n in (0, 1, 2, 5)] == [2, 1, 0, 0]
    with pytest.raises(ValueError):
        free_lines(c, -1)


def test_surge_pause_with_hysteresis():
    surge = Surge(queue="general", pause_over=120, resume_under=60)
    paused = False
    seen = []
    for wait in (30, 119, 120, 90, 61, 60, 59, 100, None):
        paused = surge_paused(surge, wait, paused)
        seen.append(paused)
    assert seen == [False, False, True, True, True, True, False, False, False]
    assert surge_paused(None, 10_000, False) is False
    with pytest.raises(ValueError, match="resume_under"):
        Surge(queue="general", pause_over=60, resume_under=60)


def test_pick_takes_the_due_up_to_the_cap_longest_overdue_first():
    c = campaign(max_concurrent=2)
    now = seoul(2026, 3, 3, 11, 0)
    fresh = Candidate(person(number="+821011110000"))
    retry = Candidate(person(number="+821022220000"),
                      (tried(seoul(2026, 3, 3, 10, 0), R.NO_ANSWER, "+821022220000"),))
    waiting = Candidate(person(number="+821033330000"),
                        (tried(seoul(2026, 3, 3, 10, 45), R.NO_ANSWER, "+821033330000"),))
    well = Candidate(person(number="+821044440000"),
                     (tried(seoul(2026, 3, 3, 10, 0), R.WELL, "+821044440000"),))
    out = Candidate(person(number="+821055550000", opt_out=True))
    other = Candidate(Person(number="+821066660000", campaign="other"))
    everyone = [well, retry, waiting, out, other, fresh]
    assert [p.number for p in pick(c, everyone, now, in_progress=0, paused=False)] \
        == ["+821011110000", "+821022220000"]
    assert [p.number for p in pick(c, everyone, now, in_progress=1, paused=False)] \
        == ["+821011110000"]
    assert pick(c, everyone, now, in_progress=2, paused=False) == []
    assert pick(c, everyone, now, in_progress=0, paused=True) == []
    assert pick(c, everyone, seoul(2026, 3, 3, 22, 0), in_progress=0, paused=False) == []


def test_pick_puts_the_longest_unreached_first():
    c = campaign(max_concurrent=3)
    now = seoul(2026, 3, 6, 10, 0)
    recent = Candidate(person(number="+821011110000"),
                       (tried(seoul(2026, 3, 3, 10, 0), R.WELL, "+821011110000"),))
    older = Candidate(person(number="+821022220000"),
                      (tried(seoul(2026, 2, 27, 10, 0), R.WELL, "+821022220000"),
                       *failed_day_of(TUE1, "+821022220000")))
    never = Candidate(person(number="+821099990000"))
    assert [p.number for p in pick(c, [recent, older, never], now, in_progress=0, paused=False)] \
        == ["+821099990000", "+821022220000", "+821011110000"]


def failed_day_of(day: dt.date, number: str) -> list[Attempt]:
    return [tried(seoul(day.year, day.month, day.day, h, 0), R.NO_ANSWER, number)
            for h in (10, 11, 12)]


def test_next_wake_is_the_next_retry_or_opening():
    c = campaign()
    retry = Candidate(person(number="+821022220000"),
                      (tried(seoul(2026, 3, 3, 10, 0), R.NO_ANSWER, "+821022220000"),))
    done = Candidate(person(number="+821044440000"),
                     (tried(seoul(2026, 3, 3, 10, 0), R.WELL, "+821044440000"),))
    out = Candidate(person(number="+821055550000", opt_out=True))
    assert next_wake(c, [retry, done, out], seoul(2026, 3, 3, 10, 5)) == seoul(2026, 3, 3, 10, 30)
    assert next_wake(c, [done, out], seoul(2026, 3, 3, 10, 5)) == seoul(2026, 3, 6, 10, 0)
    assert next_wake(c, [out], seoul(2026, 3, 3, 10, 5)) is None
    # Everyone due now (waiting for a free line): no timer to set.
    assert next_wake(c, [Candidate(person())], seoul(2026, 3, 3, 10, 5)) is None


def test_campaign_and_attempt_check_their_values():
    with pytest.raises(ValueError, match="attempts_per_day"):
        campaign(attempts_per_day=0)
    with pytest.raises(ValueError, match="retry_delay"):
        campaign(retry_delay=dt.timedelta(0))
    with pytest.raises(ValueError, match="aware"):
        Attempt(number=NUMBER, campaign="seniors", at=dt.datetime(2026, 3, 3, 10), result=R.WELL)
    assert Attempt(number=NUMBER, campaign="seniors", at=seoul(2026, 3, 3, 10),
                   result="busy").result is R.BUSY   # type: ignore[arg-type]
