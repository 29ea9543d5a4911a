"""Say digits, numbers, counts, ordinals, amounts, dates and times as prompt ids, in the
caller's language.

Each function returns a list of prompt ids from the catalogue; the runner plays them in order.
The ids are shared by all languages and carry a text in each (``num_100`` is 백 / hundred /
百 / trăm).  A few ids exist for one language's grammar and read naturally in the others:

* ``num_1_after_tens`` — Vietnamese *mốt* (21 = hai mươi mốt);
* ``num_5_after_tens`` — Vietnamese *lăm* (15 = mười lăm, 25 = hai mươi lăm);
* ``num_2_counting``  — Chinese *两* (两百, 两千, 两万);
* ``num_zero_gap``    — Vietnamese *linh* (105 = một trăm linh năm), English *oh* (1905).

Korean has two ways of counting, and a prompt must use the right one:

* Sino-Korean (일, 이, 삼 … 만) for ``number``, ``amount`` (12,340원: 만 이천삼백사십 원), dates,
  minutes (오 분);
* native Korean (한, 두, 세, 네 … 스무, 서른) for ``count`` (세 명), ``ordinal`` (첫 번째, 두 번째,
  열한 번째) and the hour of a ``time`` (오후 두 시).  From 100 on the hundreds are Sino-Korean
  and the rest native (백스물세 번째).

The ``count_*`` ids carry the native Korean words and plain numerals in the other languages.
``ordinal`` gives English ordinal words (third, twenty-first); Chinese and Vietnamese say a
plain number there, their prompts carrying the marker (第…位, vị trí số …).

Numbers from 0 to 999,999,999,999 are supported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

__all__ = ["say", "say_digits", "say_number", "say_count", "say_ordinal", "say_amount", "say_date",
           "say_time", "parse_date", "parse_time", "KINDS", "SAY_PROMPT_IDS", "MAX_NUMBER"]

MAX_NUMBER = 10**12 - 1
KINDS = ("digits", "number", "count", "ordinal", "amount", "date", "time")

DIGIT_IDS = {**{str(d): f"digit_{d}" for d in range(10)}, "*": "digit_star", "#": "digit_hash"}
YEAR, DAY = "date_year", "date_day"
ZERO_GAP, ONE_AFTER_TENS, FIVE_AFTER_TENS, TWO_COUNTING = (
    "num_zero_gap", "num_1_after_tens", "num_5_after_tens", "num_2_counting")
COUNT_20_ALONE, COUNT_FIRST, ORDINAL_100 = "count_20_alone", "count_first", "ordinal_100"
WON = "currency_won"
HOUR, MINUTE = "time_hour", "time_minute"
MORNING, AFTERNOON, EVENING = "time_morning", "time_afternoon", "time_evening"


def _n(value: int) -> str:
    return f"num_{value}"


def say_digits(text: str) -> list[str]:
    """``"010-1234"`` → digit ids one by one (spaces, '-' and '.' are skipped)."""
    ids = []
    for ch in str(text):
        if ch in DIGIT_IDS:
            ids.append(DIGIT_IDS[ch])
        elif ch not in " -.":
            raise ValueError(f"cannot say {ch!r} as a digit")
    return ids


def say_number(value: object, lang: str) -> list[str]:
    """A whole number in words, the way the language counts."""
    n = _as_int(value)
    speak = _NUMBERS.get(lang)
    if speak is None:
        raise ValueError(f"cannot say numbers in language '{lang}'")
    return speak(n)


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("cannot say true/false as a number")
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        if not text.isdigit():
            raise ValueError(f"cannot say {value!r} as a number")
        value = int(text)
    if not isinstance(value, int):
        raise ValueError(f"cannot say {value!r} as a whole number")
    if not 0 <= value <= MAX_NUMBER:
        raise ValueError(f"can say numbers from 0 to {MAX_NUMBER}, not {value}")
    return value


# -- Korean: Sino-Korean counting in groups of 10,000 ----------------------------------------

def _ko(n: int) -> list[str]:
    if n == 0:
        return [_n(0)]
    ids: list[str] = []
    for big in (10**8, 10**4, 1):
        group = n // big % 10000
        if group == 0:
            continue
        if big == 10**4 and group == 1:
            ids.append(_n(big))              # 10,000 is 만, not 일만 (but 일억 keeps 일)
            continue
        ids += _ko_group(group)
        if big > 1:
            ids.append(_n(big))
    return ids


def _ko_group(group: int) -> list[str]:
    ids: list[str] = []
    for place in (1000, 100, 10):
        d = group // place % 10
        if d:
            if d != 1:                        # 십, 백, 천 without 일
                ids.append(_n(d))
            ids.append(_n(place))
    if group % 10:
        ids.append(_n(group % 10))
    return ids


# -- Chinese: groups of 万 and 亿, 零 for gaps, 两 for counting --------------------------------

def _zh(n: int) -> list[str]:
    if n == 0:
        return [_n(0)]
    ids: list[str] = []
    started = gap = False
    for big in (10**8, 10**4, 1):
        group = n // big % 10000
        if group == 0:
            gap = gap or started
            continue
        if started and (gap or group < 1000):
            ids.append(_n(0))                 # 一万零五十, 一亿零五
        gap = False
        part = _zh_group(group, leading=not started)
        if big > 1 and part == [_n(2)]:
            part = [TWO_COUNTING]             # 两万, 两亿
        ids += part
        if big > 1:
            ids.append(_n(big))
        started = True
    return ids


def _zh_group(group: int, *, leading: bool) -> list[str]:
    ids: list[str] = []
    begun = zero = False
    for place in (1000, 100, 10, 1):
        d = group // place % 10
        if d == 0:
            zero = zero or begun
            continue
        if zero:
            ids.append(_n(0))
            zero = False
        if place == 10 and d == 1 and leading and not begun:
            ids.append(_n(10))                # 十五, not 一十五, at the very start
        else:
            ids.append(TWO_COUNTING if d == 2 and place in (1000, 100) else _n(d))
            if place > 1:
                ids.append(_n(place))
        begun = True
    return ids


# -- English: short scale, no "and" -------------------------------------------------------------

def _en(n: int) -> list[str]:
    if n == 0:
        return [_n(0)]
    ids: list[str] = []
    for big in (10**9, 10**6, 10**3, 1):
        group = n // big % 1000
        if group:
            ids += _en_hundreds(group)
            if big > 1:
                ids.append(_n(big))
    return ids


def _en_hundreds(group: int) -> list[str]:
    hundreds, rest = divmod(group, 100)
    ids = [_n(hundreds), _n(100)] if hundreds else []
    if rest >= 20:
        ids.append(_n(rest // 10 * 10))
        if rest % 10:
            ids.append(_n(rest % 10))
    elif rest:
        ids.append(_n(rest))
    return ids


# -- Vietnamese: groups of a thousand; mươi, mốt, lăm, linh, không trăm -------------------------

def _vi(n: int) -> list[str]:
    if n == 0:
        return [_n(0)]
    ids: list[str] = []
    started = False
    for big in (10**9, 10**6, 10**3, 1):
        group = n // big % 1000
        if group == 0:
            continue
        ids += _vi_group(group, full=started)
        if big > 1:
            ids.append(_n(big))
        started = True
    return ids


def _vi_group(group: int, *, full: bool) -> list[str]:
    hundreds, tens, ones = group // 100, group // 10 % 10, group % 10
    ids: list[str] = []
    if hundreds or full:                     # inside a number: "không trăm"
        ids += [_n(hundreds), _n(100)]
    if tens == 0:
        if ones:
            if hundreds or full:
                ids.append(ZERO_GAP)          # một trăm linh năm
            ids.append(_n(ones))
        return ids
    ids.append(_n(tens * 10))                 # mười, hai mươi … chín mươi
    if ones == 1 and tens >= 2:
        ids.append(ONE_AFTER_TENS)            # hai mươi mốt
    elif ones == 5:
        ids.append(FIVE_AFTER_TENS)           # mười lăm, hai mươi lăm
    elif ones:
        ids.append(_n(ones))
    return ids


_NUMBERS: dict[str, Callable[[int], list[str]]] = {"ko": _ko, "zh": _zh, "en": _en, "vi": _vi}


# -- counting things: native Korean numerals ------------------------------------------------------

def _count(value: int) -> str:
    return f"count_{value}"


def _ko_native(n: int) -> list[str]:
    """1–99 in native Korean, in the form that stands before a counter (한 명, 스무 명)."""
    tens, ones = divmod(n, 10)
    if tens == 2 and ones == 0:
        return [COUNT_20_ALONE]               # 스무 (but 스물한, 스물두 …)
    ids = [_count(tens * 10)] if tens else []
    if ones:
        ids.append(_count(ones))
    return ids


def _ko_counted(n: int, *, ordinal: bool = False) -> list[str]:
    if n == 0:
        return [_n(0)]
    if ordinal and n == 1:
        return [COUNT_FIRST]                  # 첫 번째 (but 열한 번째)
    high, low = divmod(n, 100)
    ids = _ko(high * 100) if high else []     # 백, 이백 …: the hundreds are Sino-Korean
    return ids + (_ko_native(low) if low else [])


def say_count(value: object, lang: str) -> list[str]:
    """How many (people, calls, minutes …): native Korean counting in Korean (세 명)."""
    n = _as_int(value)
    if lang == "ko":
        return _ko_counted(n)
    if lang == "zh" and n == 2:
        return [TWO_COUNTING]                 # 两个, not 二个
    return say_number(n, lang)


def say_ordinal(value: object, lang: str) -> list[str]:
    """Which one in order: Korean 첫/두/세 (before 번째), English first/second/third; Chinese and
    Vietnamese a plain number (their prompts say 第 … / số …)."""
    n = _as_int(value)
    if n == 0:
        raise ValueError("there is no 0th place to say")
    if lang == "ko":
        return _ko_counted(n, ordinal=True)
    if lang == "en":
        return _en_ordinal(n)
    return say_number(n, lang)


def _en_ordinal(n: int) -> list[str]:
    high, low = divmod(n, 100)
    head = _en(high * 100) if high else []
    if low == 0:
        return [*head[:-1], ORDINAL_100] if high < 10 else head    # three hundredth; beyond: the number
    if low <= 31 or low % 10 == 0:
        return [*head, f"ordinal_{low}"]       # third, twenty-first, fortieth
    return [*head, _n(low // 10 * 10), f"ordinal_{low % 10}"]      # forty-second


def say_amount(value: object, lang: str) -> list[str]:
    """A sum of money in won: 12,340 → 만 이천삼백사십 원 / twelve thousand three hundred forty won."""
    if isinstance(value, str):
        value = value.strip().removesuffix("원").removesuffix("KRW").replace("₩", "").strip()
    return [*say_number(value, lang), WON]


# -- dates -------------------------------------------------------------------------------------

def parse_date(value: object, *, today: dt.date | None = None) -> dt.date:
    """A date from ``date``, ``"YYYY-MM-DD"``, ``"YYYYMMDD"`` or ``"YYMMDD"``.

    Six digits are a birth date: the century is the one that does not put it in the future.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip().replace("-", "").replace(".", "").replace("/", "")
    if not text.isdigit() or len(text) not in (6, 8):
        raise ValueError(f"cannot read {value!r} as a date (YYYY-MM-DD, YYYYMMDD or YYMMDD)")
    if len(text) == 6:
        today = today or dt.date.today()
        yy = int(text[:2])
        century = today.year // 100 * 100
        year = century + yy if century + yy <= today.year else century - 100 + yy
        text = f"{year:04d}{text[2:]}"
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def say_date(value: object, lang: str, *, today: dt.date | None = None) -> list[str]:
    """Year, month and day in the language's own order and words."""
    d = parse_date(value, today=today)
    month = f"month_{d.month}"
    if lang == "ko":
        return [*_ko(d.year), YEAR, month, *_ko(d.day), DAY]
    if lang == "zh":
        return [*say_digits(f"{d.year}"), YEAR, month, *_zh(d.day), DAY]     # 二零二四年三月五日
    if lang == "vi":
        return [DAY, *_vi(d.day), month, YEAR, *_vi(d.year)]               # ngày năm tháng ba năm …
    if lang == "en":
        return [month, f"ordinal_{d.day}", *_en_year(d.year)]               # March fifth, twenty twenty-four
    raise ValueError(f"cannot say dates in language '{lang}'")


def _en_year(year: int) -> list[str]:
    high, low = divmod(year, 100)
    if year < 1000 or 2000 <= year <= 2009 or year % 1000 == 0:
        return _en(year)                      # two thousand five
    if low == 0:
        return [*_en(high), _n(100)]          # nineteen hundred
    if low < 10:
        return [*_en(high), ZERO_GAP, _n(low)]  # nineteen oh five
    return [*_en(high), *_en(low)]            # nineteen eighty-five, twenty twenty-four


# -- times of day --------------------------------------------------------------------------------

def parse_time(value: object) -> tuple[int, int]:
    """(hour, minute) from ``time``/``datetime``, ``"14:30"``, ``"1430"``, ``"14"`` or ``14``."""
    if isinstance(value, (dt.datetime, dt.time)):
        return value.hour, value.minute
    if isinstance(value, bool):
        raise ValueError("cannot read true/false as a time")
    text = str(value).strip()
    if ":" in text:
        hour_text, _, minute_text = text.partition(":")
    elif text.isdigit() and len(text) in (3, 4):
        hour_text, minute_text = text[:-2], text[-2:]
    else:
        hour_text, minute_text = text, "0"
    if not (hour_text.isdigit() and minute_text.isdigit()):
        raise ValueError(f"cannot read {value!r} as a time (14:30, 1430 or 14)")
    hour, minute = int(hour_text), int(minute_text)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"{value!r} is not a time of day")
    return hour, minute


def say_time(value: object, lang: str) -> list[str]:
    """A time of day on the 12-hour clock: 오후 두 시 삼십 분 / two thirty p.m. / 下午两点三十分 /
    hai giờ ba mươi phút chiều."""
    hour, minute = parse_time(value)
    period = MORNING if hour < 12 else AFTERNOON if hour < 18 else EVENING
    h12 = hour % 12 or 12
    if lang == "ko":                           # the hour counts natively, the minutes do not
        return [period, *_ko_native(h12), HOUR, *([*_ko(minute), MINUTE] if minute else [])]
    if lang == "zh":
        return [period, *([TWO_COUNTING] if h12 == 2 else _zh(h12)), HOUR,
                *([*_zh(minute), MINUTE] if minute else [])]
    if lang == "vi":
        return [*_vi(h12), HOUR, *([*_vi(minute), MINUTE] if minute else []), period]
    if lang == "en":
        minutes = [] if not minute else [ZERO_GAP, _n(minute)] if minute < 10 else _en(minute)
        return [*_en(h12), *minutes, period]  # two oh five p.m.
    raise ValueError(f"cannot say times in language '{lang}'")


# -- the one entry point the runner uses ---------------------------------------------------------

def say(kind: str, value: object, lang: str) -> list[str]:
    """Prompt ids for ``value`` said as ``kind`` (one of ``KINDS``) in ``lang``."""
    if kind == "digits":
        return say_digits(value if isinstance(value, str) else str(value))
    if kind in _SAYERS:
        return _SAYERS[kind](value, lang)
    if kind == "date":
        return say_date(value, lang)
    if kind == "time":
        return say_time(value, lang)
    raise ValueError(f"cannot say a {kind!r}")


_SAYERS: dict[str, Callable[[object, str], list[str]]] = {
    "number": say_number, "count": say_count, "ordinal": say_ordinal, "amount": say_amount}


def _all_ids() -> frozenset[str]:
    ids = set(DIGIT_IDS.values())
    ids |= {_n(v) for v in range(20)} | {_n(v) for v in range(20, 100, 10)}
    ids |= {_n(v) for v in (100, 1000, 10**4, 10**6, 10**8, 10**9)}
    ids |= {ZERO_GAP, ONE_AFTER_TENS, FIVE_AFTER_TENS, TWO_COUNTING, YEAR, DAY}
    ids |= {f"month_{m}" for m in range(1, 13)} | {f"ordinal_{d}" for d in range(1, 32)}
    ids |= {f"ordinal_{d}" for d in range(40, 100, 10)} | {ORDINAL_100}
    ids |= {_count(v) for v in range(1, 10)} | {_count(v) for v in range(10, 100, 10)}
    ids |= {COUNT_20_ALONE, COUNT_FIRST, WON, HOUR, MINUTE, MORNING, AFTERNOON, EVENING}
    return frozenset(ids)


SAY_PROMPT_IDS: frozenset[str] = _all_ids()
"""Every prompt id ``say`` can produce; the catalogue must have them all."""
