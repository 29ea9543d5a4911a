"""Digits, numbers, counts, ordinals, amounts, dates and times said the way each language says them."""

import datetime as dt

import pytest

from ivr.flow.say import (KINDS, SAY_PROMPT_IDS, parse_date, parse_time, say, say_amount, say_count, say_date,
                          say_digits, say_number, say_ordinal, say_time)
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
    assert say("time", "12", "en") == ["num_12", "time_afternoon"]
    with pytest.raises(ValueError):
        say("weight", "12", "en")


def test_the_catalogue_has_every_word_say_can_use_in_every_language():
    catalogue = load_catalogue(PROMPTS)
    assert sorted(i for i in SAY_PROMPT_IDS if not catalogue.has(i)) == []
    for n in (0, 7, 19, 99, 101, 1015, 20000, 123456789, 999999999999):
        for lang in ("ko", "en", "zh", "vi"):
            assert set(say_number(n, lang)) <= SAY_PROMPT_IDS
    for n in range(1, 1200):
        for lang in ("ko", "en", "zh", "vi"):
            assert set(say_count(n, lang)) | set(say_ordinal(n, lang)) | set(say_amount(n, lang)) <= SAY_PROMPT_IDS
    for hour in range(24):
        for minute in (0, 5, 30, 59):
            for lang in ("ko", "en", "zh", "vi"):
                assert set(say_time(f"{hour}:{minute:02d}", lang)) <= SAY_PROMPT_IDS


def joined(ids, lang):
    return words(ids, lang).replace(" ", "")


@pytest.mark.parametrize("n, expected", [
    (1, "한"), (2, "두"), (3, "세"), (4, "네"), (10, "열"), (11, "열한"), (12, "열두"), (20, "스무"),
    (21, "스물한"), (35, "서른다섯"), (99, "아흔아홉"), (100, "백"), (123, "백스물세"), (250, "이백쉰"),
])
def test_korean_counts_things_with_native_numerals(n, expected):
    # 세 명, 스무 명, 스물한 명: the form that stands before a counter
    assert joined(say_count(n, "ko"), "ko") == expected


@pytest.mark.parametrize("n, expected", [(1, "첫"), (2, "두"), (3, "세"), (11, "열한"), (20, "스무"), (101, "백한")])
def test_korean_ordinals_before_beonjjae(n, expected):
    assert joined(say_ordinal(n, "ko"), "ko") == expected       # 첫 번째, 두 번째, 열한 번째


@pytest.mark.parametrize("n, expected", [
    (1, "first"), (3, "third"), (12, "twelfth"), (21, "twenty-first"), (40, "fortieth"),
    (42, "forty second"), (100, "one hundredth"), (103, "one hundred third"), (300, "three hundredth"),
])
def test_english_ordinals(n, expected):
    assert words(say_ordinal(n, "en"), "en") == expected


def test_chinese_and_vietnamese_places_are_plain_numbers_their_prompts_carry_the_marker():
    assert joined(say_ordinal(3, "zh"), "zh") == "三"              # 第三位
    assert words(say_ordinal(21, "vi"), "vi") == "hai mươi mốt"    # vị trí số hai mươi mốt
    assert joined(say_count(2, "zh"), "zh") == "两"                # 两个人, not 二个人
    with pytest.raises(ValueError):
        say_ordinal(0, "ko")


@pytest.mark.parametrize("value, lang, expected", [
    ("12,340", "ko", "만이천삼백사십원"), (10000, "ko", "만원"), ("1,000,000원", "ko", "백만원"),
    (12340, "en", "twelve thousand three hundred forty won"),
    (20000, "zh", "两万韩元"), (105000, "vi", "một trăm linh năm nghìn won"),
])
def test_amounts_in_won(value, lang, expected):
    said = words(say_amount(value, lang), lang)
    assert (said.replace(" ", "") if lang in ("ko", "zh") else said) == expected


@pytest.mark.parametrize("value, lang, expected", [
    ("14:30", "ko", "오후두시삼십분"), ("9", "ko", "오전아홉시"), ("12:00", "ko", "오후열두시"),
    ("0:10", "ko", "오전열두시십분"), ("1905", "ko", "저녁일곱시오분"),
    ("14:30", "en", "two thirty p.m."), ("18:05", "en", "six oh five p.m."), ("9:00", "en", "nine a.m."),
    ("14:00", "zh", "下午两点"), ("9:15", "zh", "上午九点十五分"),
    ("14:30", "vi", "hai giờ ba mươi phút chiều"), ("8", "vi", "tám giờ sáng"),
])
def test_times_of_day_on_the_12_hour_clock(value, lang, expected):
    said = words(say_time(value, lang), lang)
    assert (said.replace(" ", "") if lang in ("ko", "zh") else said) == expected


def test_parse_time_accepts_the_usual_spellings_and_refuses_the_rest():
    assert parse_time("14:30") == parse_time("1430") == parse_time(dt.time(14, 30)) == (14, 30)
    assert parse_time(9) == (9, 0)
    for bad in ("24:00", "12:60", "noon", True):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_every_kind_is_offered_by_the_schema():
    import json

    from ivr.flow.schema import flow_schema

    assert json.dumps(list(KINDS)) in json.dumps(flow_schema())     # editors complete every kind
    assert {"count", "ordinal", "amount", "time"} <= set(KINDS)
