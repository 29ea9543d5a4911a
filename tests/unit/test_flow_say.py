"""Digits, numbers and dates said the way each language says them."""

import datetime as dt

import pytest

from ivr.flow.say import SAY_PROMPT_IDS, parse_date, say, say_date, say_digits, say_number
from ivr.prompts import load_catalogue
from flow_helpers import PROMPTS


def words(ids, lang):
    catalogue = load_catalogue(PROMPTS)
    return " ".join(catalogue.text(i, lang) for i in ids)


def test_digits_one_by_one_with_star_and_hash():
    assert say_digits("10*#") == ["digit_1", "digit_0", "digit_star", "digit_hash"]
    assert say_digits("010-12") == ["digit_0", "digit_1", "digit_0", "digit_1", "digit_2"]
    with pytest.raises(ValueError):
        say_digits("12a")


@pytest.mark.parametrize("n, expected", [
    (0, "영"), (1, "일"), (10, "십"), (11, "십 일"), (20, "이십"), (100, "백"), (111, "백 십 일"),
    (1000, "천"), (1100, "천 백"), (10000, "만"), (12345, "만 이천 삼백 사십 오"),
    (110000, "십 일 만"), (100000000, "일 억"), (100010000, "일 억 만"),
    (123456789, "일 억 이천 삼백 사십 오 만 육천 칠백 팔십 구"),
])
def test_korean_counts_in_sino_korean_and_leaves_out_il_before_sip_baek_cheon_man(n, expected):
    assert words(say_number(n, "ko"), "ko").replace(" ", "") == expected.replace(" ", "")


def test_korean_twelve_thousand_three_hundred_forty_five_as_ids():
    assert say_number(12345, "ko") == ["num_10000", "num_2", "num_1000", "num_3", "num_100", "num_4",
                                       "num_10", "num_5"]


@pytest.mark.parametrize("n, expected", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (42, "forty two"),
    (100, "one hundred"), (105, "one hundred five"), (1000, "one thousand"),
    (12345, "twelve thousand three hundred forty five"),
    (2000000, "two million"), (1000000001, "one billion one"),
])
def test_english_numbers(n, expected):
    assert words(say_number(n, "en"), "en") == expected


@pytest.mark.parametrize("n, expected", [
    (0, "零"), (10, "十"), (15, "十五"), (20, "二十"), (110, "一百一十"), (105, "一百零五"),
    (200, "两百"), (1010, "一千零一十"), (2000, "两千"), (10050, "一万零五十"), (20000, "两万"),
    (12345, "一万两千三百四十五"), (100000005, "一亿零五"), (12000500, "一千两百万零五百"),
])
def test_chinese_numbers_group_by_wan_and_yi_with_ling_for_gaps(n, expected):
    assert words(say_number(n, "zh"), "zh").replace(" ", "") == expected


@pytest.mark.parametrize("n, expected", [
    (0, "không"), (10, "mười"), (11, "mười một"), (15, "mười lăm"), (21, "hai mươi mốt"),
    (25, "hai mươi lăm"), (24, "hai mươi bốn"), (105, "một trăm linh năm"), (110, "một trăm mười"),
    (1005, "một nghìn không trăm linh năm"), (2024, "hai nghìn không trăm hai mươi bốn"),
    (1000000, "một triệu"), (31, "ba mươi mốt"),
])
def test_vietnamese_numbers_with_muoi_mot_lam_and_linh(n, expected):
    assert words(say_number(n, "vi"), "vi") == expected


def test_numbers_out_of_range_or_not_numbers_are_refused():
    for bad in (-1, 10**12, "12a", True, 1.5):
        with pytest.raises(ValueError):
            say_number(bad, "ko")


def test_a_six_digit_birth_date_takes_the_century_that_is_not_in_the_future():
    today = dt.date(2025, 6, 1)
    assert parse_date("850315", today=today) == dt.date(1985, 3, 15)
    assert parse_date("200101", today=today) == dt.date(2020, 1, 1)
    assert parse_date("2024-03-05") == parse_date("20240305") == dt.date(2024, 3, 5)
    with pytest.raises(ValueError):
        parse_date("851315")


def test_dates_in_each_languages_order():
    d = dt.date(2024, 3, 5)
    assert words(say_date(d, "ko"), "ko").replace(" ", "") == "이천이십사년삼월오일"
    assert words(say_date(d, "zh"), "zh").replace(" ", "") == "二零二四年三月五日"
    assert words(say_date(d, "en"), "en") == "March fifth twenty twenty four"
    assert words(say_date(d, "vi"), "vi") == "ngày năm tháng ba năm hai nghìn không trăm hai mươi bốn"
    assert words(say_date(dt.date(1905, 6, 10), "en"), "en") == "June tenth nineteen oh five"
    assert words(say_date(dt.date(2005, 10, 1), "en"), "en") == "October first two thousand five"
    assert words(say_date(dt.date(1990, 6, 1), "ko"), "ko").replace(" ", "") == "천구백구십년유월일일"


def test_say_dispatches_by_kind():
    assert say("digits", 12, "ko") == ["digit_1", "digit_2"]
    assert say("number", "12", "en") == ["num_12"]
    with pytest.raises(ValueError):
        say("time", "12", "en")


def test_the_catalogue_has_every_word_say_can_use_in_every_language():
    catalogue = load_catalogue(PROMPTS)
    assert sorted(i for i in SAY_PROMPT_IDS if not catalogue.has(i)) == []
    for n in (0, 7, 19, 99, 101, 1015, 20000, 123456789, 999999999999):
        for lang in ("ko", "en", "zh", "vi"):
            assert set(say_number(n, lang)) <= SAY_PROMPT_IDS
