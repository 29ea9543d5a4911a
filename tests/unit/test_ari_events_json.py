"""orjson and the stdlib decode ARI's JSON alike: the same events, the same ``BadEvent`` texts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.ari import jsondecode
from ivr.ari.events import BadEvent, decode_event
from ivr.testing.fake_ari import FakeAri

pytest.importorskip("orjson")

BACKENDS = ("orjson", "stdlib")

# JSON values as ARI could send them: integers within 64 bits (orjson reads bigger ones as
# floats), no NaN (it is not JSON).
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(), inner, max_size=5)), max_leaves=30)

BAD = [
    "StasisStart for 01012345678",
    '{"type": "StasisStart", "channel": {"id": ',
    "[" * 100_000 + "]" * 100_000,
    "[1, 2]", "5", "null", '"StasisStart"', "{}", '{"type": 5}', '{"type": ""}',
    '{"type": "X", "n": NaN}',                    # the stdlib takes NaN; orjson does not
    '{"type": "X", "s": "\\ud800"}',              # a lone surrogate: the same
    '{"type": "X"} trailing',
    "",
]


def _events() -> list[dict[str, Any]]:
    fake = FakeAri(record=False)
    channel = fake.add_channel(caller="01012345678", channel_id="c1")
    playback = {"id": "p1", "media_uri": "sound:ivr/ko/welcome,sound:ivr/ko/main_menu",
                "target_uri": "channel:c1", "language": "ko", "state": "playing"}
    bridge = {"id": "b1", "technology": "simple_bridge", "bridge_type": "holding",
              "bridge_class": "stasis", "name": "ivr-holding",
              "channels": [f"load-{n}" for n in range(500)], "creator": "Stasis"}
    return [fake.event("StasisStart", channel=channel, args=["agent", "한국어"]),
            fake.event("PlaybackFinished", playback=playback),
            fake.event("ChannelDtmfReceived", channel=channel, digit="#", duration_ms=100),
            fake.event("ChannelEnteredBridge", bridge=bridge, channel=channel),
            fake.event("ChannelDestroyed", channel=channel, cause=16, cause_txt="Normal Clearing")]


def _verdict(backend: str, frame: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(jsondecode, "loads", jsondecode.decoder(backend))
    try:
        return ("event", decode_event(frame))
    except BadEvent as exc:
        return ("bad", str(exc))


@pytest.mark.parametrize("event", _events(), ids=lambda e: e["type"])
def test_an_ari_event_decodes_the_same_with_both(event, monkeypatch):
    frame = json.dumps(event, ensure_ascii=False)
    assert _verdict("orjson", frame, monkeypatch) == _verdict("stdlib", frame, monkeypatch) \
        == ("event", event)


@pytest.mark.parametrize("frame", BAD, ids=lambda f: f[:30] or "empty")
def test_a_bad_frame_is_refused_or_read_alike_with_both(frame, monkeypatch):
    assert _verdict("orjson", frame, monkeypatch) == _verdict("stdlib", frame, monkeypatch)


def test_the_refusals_keep_their_texts(monkeypatch):
    assert _verdict("orjson", "StasisStart", monkeypatch) == (
        "bad", "not JSON: Expecting value: line 1 column 1 (char 0)")
    assert _verdict("orjson", "[" * 100_000 + "]" * 100_000, monkeypatch) == (
        "bad", "not an event: JSON nested too deeply")


@given(value=VALUES)
def test_any_json_value_decodes_the_same_with_both(value):
    text = json.dumps(value)
    fast, slow = jsondecode.decoder("orjson"), jsondecode.decoder("stdlib")
    assert fast(text) == slow(text) == value
    assert fast(text.encode()) == slow(text.encode())


def test_the_environment_can_force_the_stdlib(monkeypatch):
    monkeypatch.setenv("IVR_JSON", "stdlib")
    assert jsondecode.pick()[0] == "stdlib"
    monkeypatch.setenv("IVR_JSON", "")
    assert jsondecode.pick()[0] == "orjson"
    with pytest.raises(ValueError):
        jsondecode.decoder("simdjson")
