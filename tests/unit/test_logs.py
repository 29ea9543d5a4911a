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
