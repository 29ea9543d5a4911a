"""Phone numbers never reach the logs in clear."""

import io
import json

import structlog

from ivr.logs import configure_logging, mask_number


def test_numbers_are_masked_keeping_prefix_and_last_four():
    assert mask_number("01012345678") == "010****5678"
    assert mask_number("+821012345678") == "+821*****5678"
    assert mask_number("010-1234-5678") == "010-****-5678"
    assert mask_number("1234") == "****"
    assert mask_number("anonymous") == "anonymous"


def test_log_lines_mask_caller_fields():
    buf = io.StringIO()
    configure_logging("json", "info", stream=buf)
    try:
        structlog.get_logger("t").info("call.started", caller="01012345678", dialled="15771000")
        line = json.loads(buf.getvalue().strip().splitlines()[-1])
    finally:
        structlog.reset_defaults()
    assert line["caller"] == "010****5678"
    assert line["dialled"] == "15771000"
    assert "01012345678" not in buf.getvalue()


def test_no_number_longer_than_four_digits_can_be_read():
    assert mask_number("1234567") == "****567"            # 7 digits: was shown whole
    assert mask_number("123-4567") == "***-*567"
    assert mask_number("12345") == "****5"
    assert mask_number("15881234") == "****1234"
    assert mask_number("0212345678") == "******5678"
    for digits in range(1, 16):
        number = "".join(str((i * 7 + 3) % 10) for i in range(digits))
        shown = mask_number(number)
        assert len(shown) == len(number)
        hidden = shown.count("*")
        assert hidden >= min(digits, 4)                   # never readable
        if digits > 4:
            assert shown.endswith(number[-min(4, digits - 4):])   # calls stay apart


def test_numbers_inside_messages_and_excerpts_are_masked_too():
    buf = io.StringIO()
    configure_logging("json", "info", stream=buf)
    log = structlog.get_logger("t")
    try:
        log.warning("ari.bad_event", excerpt='{"caller": {"number": "01012345678"}}',
                    error="dial PJSIP/01098765432@trunk failed", detail="callback to +82 10 2222 3333",
                    call_id="1715241234.56", reservation="ab12cd")
        try:
            raise ValueError("no such number 01055556666")
        except ValueError:
            log.exception("call.failed")
    finally:
        structlog.reset_defaults()
    text = buf.getvalue()
    for number in ("01012345678", "01098765432", "2222 3333", "01055556666"):
        assert number not in text
    first, second = (json.loads(line) for line in text.strip().splitlines())
    assert first["excerpt"] == '{"caller": {"number": "010****5678"}}'
    assert first["error"] == "dial PJSIP/010****5432@trunk failed"
    assert first["detail"] == "callback to +82 ** **** 3333"
    assert (first["call_id"], first["reservation"]) == ("1715241234.56", "ab12cd")
    assert "ValueError: no such number 010****6666" in second["exception"]
