"""When a callback may be dialled: the center's opening hours, time slots, retries.

Pure functions of the times they are given: nothing here reads a clock, so everything can be
tested in virtual time.

Opening hours are local wall-clock intervals per weekday in the center's time zone (``tz``),
start included, end excluded; ``time.max`` as an end means "until midnight" (the config's
``24:00``).  An interval never spans midnight: write ``22:00-24:00`` on one day and
``00:00-02:00`` on the next.  A holiday (a local date) has no opening hours at all: the dates
given (``holidays``, the center's own) and a country's public holidays (``PublicHolidays``, from
the ``holidays`` package: for Korea the lunar ones too — Seollal and Chuseok with the days
around them — and the substitute holidays).  The package computes a year's calendar from the
year alone, never from today's date, so this stays a pure function of the times it is given.

Daylight saving time: whether a moment is open is decided on its local wall-clock time, so
``09:00-18:00`` means 09:00 to 18:00 local time on both sides of a change.  Slots are laid out
in real (elapsed) time from the interval's start, so a slot always lasts ``length``; on the
day clocks go forward an interval loses the hour that does not exist, and on the day they go
back it gains the repeated one.  Datetimes returned are aware, in ``tz``; mind that Python
subtracts and compares two datetimes of the same zone on their wall-clock times, so measure
across a change in UTC (``b.astimezone(UTC) - a.astimezone(UTC)``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import types
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

import holidays as holiday_calendars

__all__ = ["DAY_NAMES", "OpeningHours", "PublicHolidays", "RetryPolicy"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")   # index = date.weekday()
UTC = dt.UTC

# How far next_open looks ahead before deciding the center never opens.
_HORIZON_DAYS = 400


@dataclasses.dataclass(frozen=True, slots=True)
class PublicHolidays:
    """The public holidays of a country (ISO 3166 code, e.g. ``KR``), from the ``holidays`` package.

    ``day in PublicHolidays("KR")`` is true on Seollal, Chuseok, their eves and second days, the
    substitute holidays and every other public holiday of the package's calendar for that year.
    """

    country: str

    def __post_init__(self) -> None:
        country = self.country.strip().upper()
        if country not in holiday_calendars.list_supported_countries():
            raise ValueError(f"the holidays package has no public holidays for the country "
                             f"{self.country!r}")
        object.__setattr__(self, "country", country)

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
            return False
        return day in _public_holidays(self.country, day.year)

    def name(self, day: dt.date) -> str | None:
        """The holiday's name (``Chuseok``), None on a day that is not one."""
        return _public_holidays(self.country, day.year).get(day)


@functools.lru_cache(maxsize=64)
def _public_holidays(country: str, year: int) -> Mapping[dt.date, str]:
    calendar = holiday_calendars.country_holidays(country, years=year, language="en_US")
    return types.MappingProxyType(dict(calendar.items()))


@dataclasses.dataclass(frozen=True, slots=True)
class OpeningHours:
    """When callbacks may be dialled.  Closed on ``holidays`` (the center's own dates) and, when
    given, on the ``public_holidays`` of a country."""

    tz: ZoneInfo
    weekly: Mapping[int, Sequence[tuple[dt.time, dt.time]]]   # 0 = Monday … 6 = Sunday
    holidays: frozenset[dt.date] = frozenset()
    public_holidays: PublicHolidays | None = None

    def __post_init__(self) -> None:
        weekly: dict[int, list[tuple[dt.time, dt.time]]] = {}
        for day, intervals in self.weekly.items():
            if not isinstance(day, int) or not 0 <= day <= 6:
                raise ValueError(f"opening hours: weekday must be 0 (Monday) to 6 (Sunday), "
                                 f"not {day!r}")
            ordered = sorted((start, end) for start, end in intervals)
            for start, end in ordered:
                if start.tzinfo is not None or end.tzinfo is not None:
                    raise ValueError("opening hours are local wall-clock times: no tzinfo")
                if not start < end:
                    raise ValueError(f"opening hours on {DAY_NAMES[day]}: "
                                     f"{_hhmm(start)}-{_hhmm(end)} does not end after it starts")
            for (_, end), (start, _) in itertools.pairwise(ordered):
                if start < end:
                    raise ValueError(f"opening hours on {DAY_NAMES[day]} overlap at {_hhmm(start)}")
            if ordered:
                weekly[day] = ordered
        object.__setattr__(self, "weekly", weekly)
        object.__setattr__(self, "holidays", frozenset(self.holidays))

    @classmethod
    def office(cls, tz: ZoneInfo | str = "Asia/Seoul",
               holidays: frozenset[dt.date] = frozenset(),
               public_holidays: PublicHolidays | None = None) -> OpeningHours:
        """Monday to Friday, 09:00 to 18:00 (the default)."""
        zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        nine_to_six = [(dt.time(9), dt.time(18))]
        return cls(zone, {day: nine_to_six for day in range(5)}, holidays, public_holidays)

    def is_holiday(self, day: dt.date) -> bool:
        """Whether ``day`` (a local date) is one of the center's holidays or a public holiday."""
        return day in self.holidays or (self.public_holidays is not None
                                        and day in self.public_holidays)

    def intervals(self, day: dt.date) -> list[tuple[dt.time, dt.time]]:
        """The local opening intervals of ``day`` (none on a holiday)."""
        if self.is_holiday(day):
            return []
        return list(self.weekly.get(day.weekday(), ()))

    def is_open(self, at: dt.datetime) -> bool:
        local = self._local(at)
        wall = local.time().replace(fold=0)
        return any(start <= wall and (wall < end or end == dt.time.max)
                   for start, end in self.intervals(local.date()))

    def next_open(self, at: dt.datetime) -> dt.datetime:
        """``at`` itself when open, else the next moment the center opens.

        Raises ``ValueError`` when the center does not open within about a year.
        """
        local = self._local(at)
        if self.is_open(local):
            return local
        wall = local.time().replace(fold=0)
        day = local.date()
        for offset in range(_HORIZON_DAYS):
            current = day + dt.timedelta(days=offset)
            for start, _end in self.intervals(current):
                if offset == 0 and start <= wall:
                    continue                  # started already (and closed, or we were open)
                opens = self._aware(current, start)
                if opens.astimezone(UTC) > local.astimezone(UTC):   # real time, not wall time
                    return opens
        raise ValueError(f"the center does not open within {_HORIZON_DAYS} days of "
                         f"{local.isoformat()}")

    def slots(self, day: dt.date, length: dt.timedelta) -> list[tuple[dt.datetime, dt.datetime]]:
        """Back-to-back slots of ``length`` within the opening hours of ``day``, in order.

        Each interval is cut from its start; a remainder shorter than ``length`` is no slot.
        """
        if length <= dt.timedelta(0):
            raise ValueError(f"a slot must last more than zero, not {length}")
        out: list[tuple[dt.datetime, dt.datetime]] = []
        for start, end in self.intervals(day):
            begin = self._aware(day, start).astimezone(UTC)
            if end == dt.time.max:
                finish = self._aware(day + dt.timedelta(days=1), dt.time(0)).astimezone(UTC)
            else:
                finish = self._aware(day, end).astimezone(UTC)
            slot = begin
            while slot + length <= finish:
                out.append((slot.astimezone(self.tz), (slot + length).astimezone(self.tz)))
                slot += length
        return out

    def open_days(self, start: dt.date, n: int) -> list[dt.date]:
        """The first ``n`` days from ``start`` (included) with opening hours.

        Fewer when the center does not open that often within about a year from ``start``.
        """
        days: list[dt.date] = []
        if n < 1:
            return days
        for offset in range(_HORIZON_DAYS + 7 * n):
            day = start + dt.timedelta(days=offset)
            if self.intervals(day):
                days.append(day)
                if len(days) == n:
                    break
        return days

    def _local(self, at: dt.datetime) -> dt.datetime:
        if at.tzinfo is None:
            raise ValueError(f"an aware datetime is needed, not the naive {at.isoformat()}")
        return at.astimezone(self.tz)

    def _aware(self, day: dt.date, wall: dt.time) -> dt.datetime:
        # A wall time that does not exist (clocks going forward) comes out as the real
        # moment after the gap; normalising through UTC gives the proper local offset.
        return dt.datetime.combine(day, wall, tzinfo=self.tz).astimezone(UTC).astimezone(self.tz)


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how soon a callback that did not reach the customer is tried again."""

    max_attempts: int = 3
    delay: dt.timedelta = dt.timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts!r}")
        if self.delay < dt.timedelta(0):
            raise ValueError(f"the retry delay cannot be negative ({self.delay})")

    def next_attempt(self, attempt_started: dt.datetime, attempts_done: int,
                     hours: OpeningHours) -> dt.datetime | None:
        """When to dial again after an attempt that started at ``attempt_started``.

        ``attempts_done`` counts the attempts made, this one included.  None when they are
        used up; otherwise ``delay`` after the attempt started, moved to the next opening
        when that falls outside opening hours.
        """
        if attempts_done >= self.max_attempts:
            return None
        return hours.next_open(attempt_started + self.delay)


def _hhmm(value: dt.time) -> str:
    return "24:00" if value == dt.time.max else value.strftime("%H:%M")
