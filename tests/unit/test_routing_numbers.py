"""Caller ID numbers: one phone, one E.164 number, whatever the spelling; never an exception."""

import time

import pytest

from ivr.routing.numbers import MAX_LENGTH, CallerNumber, normalize

MOBILE = "+821012345678"


@pytest.mark.parametrize("raw", ["010-1234-5678", "01012345678", "+82 10-1234-5678", "82-10-1234-5678",
                                 "821012345678", "+82 010 1234 5678", " 010.1234.5678 ", "(010) 1234-5678"])
def test_the_same_mobile_in_any_spelling_is_one_caller(raw):
    n = normalize(raw)
    assert n == CallerNumber(raw, MOBILE, "ok")
    assert n.ok and not n.anonymous


@pytest.mark.parametrize("raw", ["02-123-4567", "021234567", "+82 2 123 4567", "(02) 123-4567"])
def test_a_seoul_landline_has_one_number(raw):
    assert normalize(raw).e164 == "+8221234567"


def test_a_foreign_caller_keeps_their_country():
    assert normalize("+1 650 253 0000").e164 == "+16502530000"


def test_region_decides_how_a_national_number_is_read():
    assert normalize("(650) 253-0000", "US").e164 == "+16502530000"
    assert normalize("(650) 253-0000").status == "invalid"        # not a Korean number


@pytest.mark.parametrize("raw", [None, "", "   ", "anonymous", "Anonymous", "ANONYMOUS", "unknown", "restricted",
                                 "private", "withheld", "unavailable", "asterisk", "s", "0", "00000000000",
                                 "000-0000-0000", "+000"])
def test_a_withheld_number_is_anonymous(raw):
    n = normalize(raw)
    assert n.status == "anonymous"
    assert n.e164 is None and n.anonymous and not n.ok


@pytest.mark.parametrize("raw", ["abc", "010-1234-567O", "sip:01012345678@10.0.0.1", "<sip:anonymous@x>",
                                 "010\x001234\x005678", "010\n1234\n5678", "tel:+821012345678", "++821012345678",
                                 "1234", "112", "010-123", "+82 99 1234 5678", "０１０１２３４５６７８"])
def test_junk_and_numbers_that_do_not_exist_are_invalid(raw):
    n = normalize(raw)
    assert n.status == "invalid"
    assert n.e164 is None and n.reason


def test_absurdly_long_input_is_refused_without_parsing_and_fast():
    huge = "1" * 10_000
    start = time.perf_counter()
    for _ in range(1000):
        n = normalize(huge)
    assert time.perf_counter() - start < 0.5
    assert n.status == "invalid" and "longer than" in n.reason
    assert normalize("0" * (MAX_LENGTH + 1)).status == "invalid"


@pytest.mark.parametrize("raw", [1012345678, 821012345678, b"01012345678", 3.5, ["010"], object()])
def test_input_that_is_not_text_is_invalid_not_an_error(raw):
    n = normalize(raw)
    assert n.status == "invalid" and n.reason.startswith("not text")


def test_surrounding_whitespace_is_ignored_but_kept_in_raw():
    n = normalize("\t010-1234-5678\r\n")
    assert n.e164 == MOBILE and n.raw == "\t010-1234-5678\r\n"
