"""Which numbers are called back: domestic phones yes; international, premium-rate, short
codes and company lines no, each with its reason."""

from __future__ import annotations

import pytest

from ivr.callbacks.numbers import CallbackNumberRefused, validate_callback_number
from ivr.errors import IvrError


@pytest.mark.parametrize("raw, e164", [
    ("010-1234-5678", "+821012345678"),          # mobile, as keyed with dashes
    ("01012345678", "+821012345678"),            # as keyed on the phone
    ("+82 10 1234 5678", "+821012345678"),       # as presented by a carrier
    ("82-10-1234-5678", "+821012345678"),
    ("  010.1234.5678 ", "+821012345678"),
    ("011-123-4567", "+82111234567"),            # an old mobile prefix
    ("02-123-4567", "+8221234567"),              # Seoul, 7-digit subscriber number
    ("(02) 1234-5678", "+82212345678"),
    ("031-123-4567", "+82311234567"),            # Gyeonggi
    ("064-712-3456", "+82647123456"),            # Jeju
    ("070-1234-5678", "+827012345678"),          # internet phone: allowed
    ("0505-123-4567", "+825051234567"),          # personal forwarding ("safe") number
])
def test_domestic_phones_are_called_back(raw, e164):
    assert validate_callback_number(raw) == e164


def refusal(raw: str, **kwargs) -> CallbackNumberRefused:
    with pytest.raises(CallbackNumberRefused) as err:
        validate_callback_number(raw, **kwargs)
    assert isinstance(err.value, IvrError)
    return err.value


@pytest.mark.parametrize("raw", ["", "   ", "abc", "010-1234-567a", "sip:1000@pbx", "0",
                                 "010-1234-5678#", "+", "1" * 21, "030-1234-5678",
                                 "013-1234-5678", "+1 123"])
def test_what_is_not_a_number_is_invalid(raw):
    assert refusal(raw).why == "invalid"


def test_no_number_at_all_is_invalid():
    assert refusal(None).why == "invalid"        # type: ignore[arg-type]  # a withheld caller ID
    assert "no number" in str(refusal(""))


@pytest.mark.parametrize("raw", ["112", "119", "114", "1330", "+82 112", "+82119"])
def test_emergency_and_service_short_codes_are_refused(raw):
    err = refusal(raw)
    assert err.why == "short"
    assert "short code" in str(err)


@pytest.mark.parametrize("raw", ["1234", "12345", "02-1234", "02-12345", "0212345"])
def test_numbers_too_short_for_a_phone_are_refused(raw):
    err = refusal(raw)
    assert err.why == "short"


def test_the_short_message_says_how_long_a_number_must_be():
    assert "at least 8" in str(refusal("02-12345"))


@pytest.mark.parametrize("raw", ["060-700-1234", "0607001234", "+82 60 700 1234",
                                 "060-123-4567"])    # also a range not listed as assigned
def test_premium_rate_numbers_are_refused(raw):
    err = refusal(raw)
    assert err.why == "premium"
    assert "premium" in str(err)


@pytest.mark.parametrize("raw", ["+1 650 253 0000", "+44 20 7946 0958", "+84 91 234 56 78",
                                 "001-1-650-253-0000"])
def test_international_numbers_are_refused_by_default(raw):
    err = refusal(raw)
    assert err.why == "international"
    assert "KR" in str(err)


def test_international_numbers_may_be_allowed():
    assert validate_callback_number("+1 650 253 0000", allow_international=True) == "+16502530000"
    assert validate_callback_number("+44 20 7946 0958", allow_international=True) == "+442079460958"
    # Still no premium rate abroad, and still valid numbers only.
    assert refusal("+1 900 234 5678", allow_international=True).why == "premium"
    assert refusal("+1 123", allow_international=True).why == "invalid"


@pytest.mark.parametrize("raw", ["1588-1234", "15881234", "1577-1000", "1544-1234", "1600-1234",
                                 "1644-1234", "1800-1234", "080-123-4567"])
def test_company_lines_are_not_called_back(raw):
    err = refusal(raw)
    assert err.why == "not_dialable"
    assert "customer's own phone" in str(err)


@pytest.mark.parametrize("raw", ["1588012904", "015-1234-5678", "0151234567", "0155-123-456",
                                 "+82 15 1234 5678"])
def test_pager_numbers_are_not_called_back(raw):
    # 015x is the pager range: 1588012904 (a 1588 number with two digits too many) reads as one.
    err = refusal(raw)
    assert err.why == "not_dialable"
    assert "pager" in str(err)


def test_only_types_a_person_answers_are_accepted():
    from phonenumbers import PhoneNumberType

    from ivr.callbacks.numbers import CALLABLE_TYPES

    assert CALLABLE_TYPES == {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE,
                              PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.VOIP,
                              PhoneNumberType.PERSONAL_NUMBER}


def test_another_home_region():
    # Dialled from the US: a US number is domestic, a Korean one international.
    assert validate_callback_number("(650) 253-0000", "US") == "+16502530000"
    assert validate_callback_number("650-253-0000", "us") == "+16502530000"
    assert refusal("+82 10 1234 5678", region="US").why == "international"
    assert refusal("911", region="US").why == "short"


def test_a_refusal_never_has_an_unknown_reason():
    with pytest.raises(ValueError):
        CallbackNumberRefused("odd", "x")
