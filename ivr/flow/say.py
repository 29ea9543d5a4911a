"""Say digits, numbers and dates as prompt ids, in the caller's language.

Each function returns a list of prompt ids from the catalogue; the runner plays them in order.
The ids are shared by all languages and carry a text in each (``num_100`` is 백 / hundred /
百 / trăm).  A few ids exist for one language's grammar and read naturally in the others:

* ``num_1_after_tens`` — Vietnamese *mốt* (21 = hai mươi mốt);
* ``num_5_after_tens`` — Vietnamese *lăm* (15 = mười lăm, 25 = hai mươi lăm);
* ``num_2_counting``  — Chinese *两* (两百, 两千, 两万);
* ``num_zero_gap``    — Vietnamese *linh* (105 = một trăm linh năm), English *oh* (1905).

Numbers from 0 to 999,999,999,999 are supported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

__all__ = ["say", "say_digits", "say_number", "say_date", "parse_date", "KINDS", "SAY_PROMPT_IDS",
           "MAX_NUMBER"]

MAX_NUMBER = 10**12 - 1
KINDS = ("digits", "number", "date")

DIGIT_IDS = {**{str(d): f"digit_{d}" for d in range(10)}, "*": "digit_star", "#": "digit_hash"}
YEAR, DAY = "date_year", "date_day"
ZERO_GAP, ONE_AFTER_TENS, FIVE_AFTER_TENS, TWO_COUNTING = (
    "num_zero_gap", "num_1_after_tens", "num_5_after_tens", "num_2_counting")


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


def say_number(value: int | str, lang: str) -> list[str]:
    """A whole number in words, the way the language counts."""
    n = _as_int(value)
    speak = _NUMBERS.get(lang)
    if speak is None:
        raise ValueError(f"cannot say numbers in language '{lang}'")
    return speak(n)


def _as_int(value: int | str) -> int:
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


# -- the one entry point the runner uses ---------------------------------------------------------

def say(kind: str, value: object, lang: str) -> list[str]:
    """Prompt ids for ``value`` said as ``kind`` (digits, number or date) in ``lang``."""
    if kind == "digits":
        return say_digits(value if isinstance(value, str) else str(value))
    if kind == "number":
        return say_number(value, lang)  # type: ignore[arg-type]
    if kind == "date":
        return say_date(value, lang)
    raise ValueError(f"cannot say a {kind!r}")


def _all_ids() -> frozenset[str]:
    ids = set(DIGIT_IDS.values())
    ids |= {_n(v) for v in range(20)} | {_n(v) for v in range(20, 100, 10)}
    ids |= {_n(v) for v in (100, 1000, 10**4, 10**6, 10**8, 10**9)}
    ids |= {ZERO_GAP, ONE_AFTER_TENS, FIVE_AFTER_TENS, TWO_COUNTING, YEAR, DAY}
    ids |= {f"month_{m}" for m in range(1, 13)} | {f"ordinal_{d}" for d in range(1, 32)}
    return frozenset(ids)


SAY_PROMPT_IDS: frozenset[str] = _all_ids()
"""Every prompt id ``say`` can produce; the catalogue must have them all."""
