"""Opening hours, slots and retries of callbacks, in virtual time (no clock is read)."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from ivr.callbacks.dialog import slot_at_hour
from ivr.callbacks.schedule import OpeningHours, PublicHolidays, RetryPolicy

SEOUL = ZoneInfo("Asia/Seoul")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC
NINE, SIX = dt.time(9), dt.time(18)
SAMIL = dt.date(2025, 3, 3)        # a Monday, the substitute holiday for 3·1 in 2025


def seoul(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SEOUL)


@pytest.fixture
def hours() -> OpeningHours:
    """Monday to Friday 09:00-18:00 with a lunch break, Saturday 09:00-13:00, Seoul."""
    weekdays = [(NINE, dt.time(12)), (dt.time(13), SIX)]
    weekly = {day: weekdays for day in range(5)}
    weekly[5] = [(NINE, dt.time(13))]
    return OpeningHours(SEOUL, weekly, frozenset({SAMIL}))


# -- open or closed -------------------------------------------------------------------------------

@pytest.mark.parametrize("at, is_open", [
    (seoul(2025, 3, 4, 9, 0), True),                   # Tuesday, opening time: open
    (seoul(2025, 3, 4, 8, 59, 59), False),
    (seoul(2025, 3, 4, 11, 59, 59, 999999), True),
    (seoul(2025, 3, 4, 12, 0), False),                 # lunch
    (seoul(2025, 3, 4, 13, 0), True),
    (seoul(2025, 3, 4, 17, 59), True),                 # just before closing
    (seoul(2025, 3, 4, 18, 0), False),                 # closing time: closed
    (seoul(2025, 3, 8, 10, 0), True),                  # Saturday morning
    (seoul(2025, 3, 8, 13, 0), False),                 # Saturday after 13:00
    (seoul(2025, 3, 9, 10, 0), False),                 # Sunday
    (seoul(2025, 3, 3, 10, 0), False),                 # the holiday (a Monday)
])
def test_open_or_closed(hours, at, is_open):
    assert hours.is_open(at) is is_open


def test_the_same_instant_in_another_zone_is_judged_in_the_centers_zone(hours):
    # 00:30 UTC on Tuesday is 09:30 in Seoul: open.  23:30 UTC Monday = 08:30 Tuesday: closed.
    assert hours.is_open(dt.datetime(2025, 3, 4, 0, 30, tzinfo=UTC))
    assert not hours.is_open(dt.datetime(2025, 3, 3, 23, 30, tzinfo=UTC))


def test_a_naive_time_is_refused(hours):
    with pytest.raises(ValueError, match="aware"):
        hours.is_open(dt.datetime(2025, 3, 4, 10, 0))


# -- the next opening -------------------------------------------------------------------------------

@pytest.mark.parametrize("at, opens", [
    (seoul(2025, 3, 4, 10, 15), seoul(2025, 3, 4, 10, 15)),      # open: at itself
    (seoul(2025, 3, 4, 7, 0), seoul(2025, 3, 4, 9, 0)),          # before opening
    (seoul(2025, 3, 4, 12, 30), seoul(2025, 3, 4, 13, 0)),       # lunch: after it
    (seoul(2025, 3, 4, 18, 0), seoul(2025, 3, 5, 9, 0)),         # after closing: next morning
    (seoul(2025, 3, 4, 23, 59), seoul(2025, 3, 5, 9, 0)),
    (seoul(2025, 3, 7, 18, 30), seoul(2025, 3, 8, 9, 0)),        # Friday evening: Saturday
    (seoul(2025, 3, 8, 13, 0), seoul(2025, 3, 10, 9, 0)),        # Saturday 13:00: Monday
    (seoul(2025, 3, 9, 3, 0), seoul(2025, 3, 10, 9, 0)),         # Sunday
    (seoul(2025, 3, 1, 15, 0), seoul(2025, 3, 4, 9, 0)),         # weekend then the holiday
])
def test_the_next_opening(hours, at, opens):
    got = hours.next_open(at)
    assert got == opens and got.tzinfo is not None
    assert hours.is_open(got)


def test_a_center_that_never_opens_says_so():
    never = OpeningHours(SEOUL, {0: [(NINE, SIX)]}, frozenset(
        dt.date(2025, 1, 6) + dt.timedelta(weeks=w) for w in range(80)))
    with pytest.raises(ValueError, match="does not open"):
        never.next_open(seoul(2025, 1, 1, 0, 0))


def test_hours_until_midnight_and_from_midnight():
    late = OpeningHours(SEOUL, {4: [(dt.time(22), dt.time.max)], 5: [(dt.time(0), dt.time(2))]})
    assert late.is_open(seoul(2025, 3, 7, 23, 59, 59))
    assert late.is_open(seoul(2025, 3, 8, 0, 0))
    assert not late.is_open(seoul(2025, 3, 8, 2, 0))
    assert late.next_open(seoul(2025, 3, 7, 21, 0)) == seoul(2025, 3, 7, 22, 0)
    assert late.slots(dt.date(2025, 3, 7), dt.timedelta(hours=1))[-1] == (
        seoul(2025, 3, 7, 23, 0), seoul(2025, 3, 8, 0, 0))


def test_hours_that_make_no_sense_are_refused():
    with pytest.raises(ValueError, match="does not end after"):
        OpeningHours(SEOUL, {0: [(SIX, NINE)]})
    with pytest.raises(ValueError, match="overlap"):
        OpeningHours(SEOUL, {0: [(NINE, dt.time(13)), (dt.time(12), SIX)]})
    with pytest.raises(ValueError, match="weekday"):
        OpeningHours(SEOUL, {7: [(NINE, SIX)]})


def test_the_default_is_office_hours_in_seoul():
    office = OpeningHours.office()
    assert office.is_open(seoul(2025, 3, 7, 17, 59))
    assert not office.is_open(seoul(2025, 3, 8, 10, 0))
    assert office.next_open(seoul(2025, 3, 7, 18, 0)) == seoul(2025, 3, 10, 9, 0)


# -- slots and days ---------------------------------------------------------------------------------

def test_slots_fill_each_opening_interval_and_skip_a_short_remainder(hours):
    slots = hours.slots(dt.date(2025, 3, 4), dt.timedelta(minutes=90))
    assert [(a.strftime("%H:%M"), b.strftime("%H:%M")) for a, b in slots] == [
        ("09:00", "10:30"), ("10:30", "12:00"),
        ("13:00", "14:30"), ("14:30", "16:00"), ("16:00", "17:30")]
    assert all(a.tzinfo is not None and b - a == dt.timedelta(minutes=90) for a, b in slots)
    assert len(hours.slots(dt.date(2025, 3, 8), dt.timedelta(hours=1))) == 4    # Saturday


def test_no_slots_on_holidays_or_closed_days(hours):
    assert hours.slots(SAMIL, dt.timedelta(hours=1)) == []
    assert hours.slots(dt.date(2025, 3, 9), dt.timedelta(hours=1)) == []        # Sunday
    with pytest.raises(ValueError):
        hours.slots(dt.date(2025, 3, 4), dt.timedelta(0))


def test_open_days_skip_weekends_and_holidays(hours):
    # From Friday 28 February: Sat 1 March, (Sun 2, holiday Mon 3), Tue 4, Wed 5.
    assert hours.open_days(dt.date(2025, 2, 28), 4) == [
        dt.date(2025, 2, 28), dt.date(2025, 3, 1), dt.date(2025, 3, 4), dt.date(2025, 3, 5)]
    assert hours.open_days(dt.date(2025, 3, 2), 1) == [dt.date(2025, 3, 4)]
    assert hours.open_days(dt.date(2025, 3, 2), 0) == []


# -- daylight saving time (Berlin) -------------------------------------------------------------------

def test_opening_hours_keep_their_local_time_across_a_dst_change():
    berlin = OpeningHours.office(BERLIN)
    # Friday 28 March 2025 after closing (CET, UTC+1); clocks go forward on Sunday 30 March.
    friday_evening = dt.datetime(2025, 3, 28, 17, 30, tzinfo=UTC)          # 18:30 CET
    opens = berlin.next_open(friday_evening)
    assert opens == dt.datetime(2025, 3, 31, 7, 0, tzinfo=UTC)             # 09:00 CEST
    assert opens.utcoffset() == dt.timedelta(hours=2)
    assert berlin.is_open(dt.datetime(2025, 3, 31, 15, 59, tzinfo=UTC))   # 17:59 CEST
    assert not berlin.is_open(dt.datetime(2025, 3, 31, 16, 0, tzinfo=UTC))
    # And back in October: Monday 27 October opens at 09:00 CET = 08:00 UTC.
    assert berlin.next_open(dt.datetime(2025, 10, 24, 17, 0, tzinfo=UTC)) == dt.datetime(
        2025, 10, 27, 8, 0, tzinfo=UTC)


def test_slots_on_dst_days_last_their_length_in_real_time():
    nights = OpeningHours(BERLIN, {6: [(dt.time(0), dt.time(6))]})
    spring = nights.slots(dt.date(2025, 3, 30), dt.timedelta(hours=1))    # 02:00-03:00 missing
    autumn = nights.slots(dt.date(2025, 10, 26), dt.timedelta(hours=1))   # 02:00-03:00 twice
    assert len(spring) == 5 and len(autumn) == 7
    for slots in (spring, autumn):
        real = [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in slots]
        assert all(b - a == dt.timedelta(hours=1) for a, b in real)
        assert all(a2 == b1 for (_, b1), (a2, _) in itertools.pairwise(real))
    assert [a.strftime("%H:%M%z") for a, _ in autumn][2:4] == ["02:00+0200", "02:00+0100"]
    assert spring[2][0] == dt.datetime(2025, 3, 30, 1, 0, tzinfo=UTC)     # 03:00 CEST


# -- retries ----------------------------------------------------------------------------------------

def test_a_retry_comes_the_delay_after_the_attempt_started(hours):
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.delay) == (3, dt.timedelta(minutes=10))
    started = seoul(2025, 3, 4, 10, 0)
    assert policy.next_attempt(started, 1, hours) == seoul(2025, 3, 4, 10, 10)
    assert policy.next_attempt(started, 2, hours) == seoul(2025, 3, 4, 10, 10)
    assert policy.next_attempt(started, 3, hours) is None          # used up
    assert policy.next_attempt(started, 4, hours) is None


def test_a_retry_never_falls_outside_opening_hours(hours):
    policy = RetryPolicy(max_attempts=5, delay=dt.timedelta(minutes=10))
    assert policy.next_attempt(seoul(2025, 3, 4, 17, 55), 1, hours) == seoul(2025, 3, 5, 9, 0)
    assert policy.next_attempt(seoul(2025, 3, 4, 11, 50), 1, hours) == seoul(2025, 3, 4, 13, 0)
    # Friday just before closing: Saturday morning; Saturday 12:55: Monday morning.
    assert policy.next_attempt(seoul(2025, 3, 7, 17, 59), 2, hours) == seoul(2025, 3, 8, 9, 0)
    assert policy.next_attempt(seoul(2025, 3, 8, 12, 55), 2, hours) == seoul(2025, 3, 10, 9, 0)
    # Friday 28 February 17:55, office hours: the weekend, then the holiday Monday: Tuesday.
    office = OpeningHours.office(SEOUL, frozenset({SAMIL}))
    assert policy.next_attempt(seoul(2025, 2, 28, 17, 55), 2, office) == seoul(2025, 3, 4, 9, 0)


def test_a_retry_policy_that_makes_no_sense_is_refused():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(delay=dt.timedelta(seconds=-1))


# -- public holidays (the holidays package) ---------------------------------------------------------

KOREA = PublicHolidays("KR")


@pytest.fixture
def korean_office() -> OpeningHours:
    return OpeningHours.office(SEOUL, public_holidays=KOREA)


@pytest.mark.parametrize("day", [
    dt.date(2026, 9, 24), dt.date(2026, 9, 25),        # Chuseok 2026: the eve, the day (Thu, Fri)
    dt.date(2027, 2, 8), dt.date(2027, 2, 9),          # Seollal 2027: the second day, the substitute
])
def test_no_callbacks_on_chuseok_or_seollal(korean_office, day):
    assert day.weekday() < 5                            # an office day but for the holiday
    assert korean_office.is_holiday(day)
    assert not korean_office.is_open(dt.datetime.combine(day, dt.time(10), tzinfo=SEOUL))
    assert korean_office.slots(day, dt.timedelta(hours=1)) == []


def test_the_days_around_chuseok_2026():
    every_day = OpeningHours(SEOUL, {d: [(NINE, SIX)] for d in range(7)}, public_holidays=KOREA)
    # Wednesday 23 September is open; the eve, Chuseok and its second day (24-26) are closed;
    # Sunday 27 is an ordinary day again (no substitute: the holidays miss the Sunday).
    assert [d.day for d in every_day.open_days(dt.date(2026, 9, 23), 3)] == [23, 27, 28]
    assert KOREA.name(dt.date(2026, 9, 25)) == "Chuseok"
    # Office hours: from Wednesday evening the next opening is Monday 28 September.
    office = OpeningHours.office(SEOUL, public_holidays=KOREA)
    assert office.next_open(seoul(2026, 9, 23, 18, 0)) == seoul(2026, 9, 28, 9, 0)


def test_seollal_2027_and_its_substitute_holiday():
    every_day = OpeningHours(SEOUL, {d: [(NINE, SIX)] for d in range(7)}, public_holidays=KOREA)
    # 6-8 February 2027 is Seollal (Saturday to Monday); it takes a Sunday, so Tuesday 9 is off too.
    assert [d.day for d in every_day.open_days(dt.date(2027, 2, 5), 2)] == [5, 10]
    assert "Korean New Year" in KOREA.name(dt.date(2027, 2, 9))


def test_a_retry_due_on_chuseok_waits_for_the_next_working_day(korean_office):
    policy = RetryPolicy(max_attempts=3, delay=dt.timedelta(minutes=10))
    assert policy.next_attempt(seoul(2026, 9, 23, 17, 55), 1, korean_office) == seoul(2026, 9, 28, 9, 0)


def test_an_hour_asked_for_on_the_eve_of_chuseok_is_after_it(korean_office):
    start, _ = slot_at_hour(korean_office, 14, seoul(2026, 9, 23, 15, 0))
    assert start == seoul(2026, 9, 28, 14, 0)


def test_an_ordinary_tuesday_is_open(korean_office):
    assert not korean_office.is_holiday(dt.date(2026, 9, 15))
    assert korean_office.is_open(seoul(2026, 9, 15, 10, 0))


def test_the_centers_own_dates_and_the_public_holidays_both_close():
    hours = OpeningHours.office(SEOUL, frozenset({dt.date(2026, 9, 15)}), KOREA)
    assert not hours.is_open(seoul(2026, 9, 15, 10, 0))     # the center's date
    assert not hours.is_open(seoul(2026, 9, 25, 10, 0))     # Chuseok
    assert hours.is_open(seoul(2026, 9, 16, 10, 0))


def test_without_a_calendar_chuseok_is_an_ordinary_friday():
    assert OpeningHours.office(SEOUL).is_open(seoul(2026, 9, 25, 10, 0))


def test_a_country_the_holidays_package_does_not_know_is_refused():
    with pytest.raises(ValueError, match="no public holidays for the country 'XX'"):
        PublicHolidays("XX")
    assert PublicHolidays("kr") == KOREA
