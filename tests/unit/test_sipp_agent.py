"""The agent's phone for end-to-end tests: its scenario, its event log, its tone, its command line."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from ivr import sipp
from ivr.sipp import (
    AgentCallLog,
    AgentPhone,
    SippError,
    agent_errors,
    parse_agent_log,
    render_agent_scenario,
    tone_payload,
)

# Lines as SIPp writes them: [timestamp] is "date TAB time TAB epoch".
INVITED_1 = "IVR-AGENT invited 1 2026-11-29\t04:13:06.583562\t1795925586.583562 from=01012345678 rtp=127.0.0.1:29248"
ANSWERED_1 = "IVR-AGENT answered 1 2026-11-29\t04:13:06.888219\t1795925586.888219"
ENDED_1 = "IVR-AGENT ended 1 2026-11-29\t04:13:07.897026\t1795925587.897026 remote"


def scenario(**kw) -> ET.Element:
    text = render_agent_scenario(media_ip="127.0.0.1", media_port=40000, **kw)
    assert not re.findall(r"@[A-Z_]+@", re.sub(r"<!--.*?-->", "", text, flags=re.S)), "a placeholder was left"
    return ET.fromstring(text)


def jump_targets(root: ET.Element) -> set[str]:
    return {el.get(attr) for el in root.iter() for attr in ("next", "ontimeout") if el.get(attr)}


def labels(root: ET.Element) -> set[str]:
    return {el.get("id") for el in root.iter("label")}


# -- the scenario ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["answer", "no_answer", "busy"])
def test_every_jump_of_every_mode_lands_on_a_label(mode):
    root = scenario(mode=mode, talk=3)
    assert jump_targets(root) <= labels(root)


def test_answering_waits_the_ring_delay_for_a_cancel_then_answers():
    root = scenario(mode="answer", ring_delay=1.5)
    cancel = next(el for el in root.iter("recv") if el.get("request") == "CANCEL")
    assert (cancel.get("timeout"), cancel.get("ontimeout")) == ("1500", "answer")


def test_a_zero_ring_delay_answers_at_once_not_never():
    root = scenario(mode="answer", ring_delay=0)
    cancel = next(el for el in root.iter("recv") if el.get("request") == "CANCEL")
    assert cancel.get("timeout") == "1"  # SIPp reads timeout="0" as no timeout at all


def test_not_answering_rings_until_cancelled():
    root = scenario(mode="no_answer")
    cancel = next(el for el in root.iter("recv") if el.get("request") == "CANCEL")
    assert cancel.get("timeout") is None and cancel.get("ontimeout") is None


def test_without_a_talk_time_the_phone_waits_for_the_far_end_to_hang_up():
    root = scenario()
    bye = next(el for el in root.iter("recv") if el.get("request") == "BYE")
    assert bye.get("timeout") is None


def test_with_a_talk_time_the_phone_hangs_up_itself():
    root = scenario(talk=2.5)
    bye = next(el for el in root.iter("recv") if el.get("request") == "BYE")
    assert (bye.get("timeout"), bye.get("ontimeout")) == ("2500", "localbye")


def test_a_busy_phone_refuses_right_after_the_invite():
    root = scenario(mode="busy")
    steps = list(root)
    first_recv = next(i for i, el in enumerate(steps) if el.tag == "recv")
    after = [el for el in steps[first_recv + 1:] if el.tag != "Reference"]
    assert after[0].tag == "nop" and after[0].get("next") == "busy"
    assert "486 Busy Here" in render_agent_scenario(media_ip="127.0.0.1", media_port=1, mode="busy")
    assert not [el for el in scenario(mode="answer").iter("nop") if el.get("next") == "busy"]


def test_the_offer_answer_names_our_media_address_with_pcmu_and_telephone_events():
    text = render_agent_scenario(media_ip="127.0.0.2", media_port=41234)
    assert "c=IN IP4 127.0.0.2" in text
    assert "m=audio 41234 RTP/AVP 0 101" in text
    assert "a=rtpmap:101 telephone-event/8000" in text


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"mode": "ring"}, "mode"),
        ({"ring_delay": -1}, "ring_delay"),
        ({"talk": 0}, "talk"),
    ],
)
def test_arguments_that_make_no_sense_are_refused(kw, message):
    with pytest.raises(SippError, match=message):
        render_agent_scenario(media_ip="127.0.0.1", media_port=1, **kw)
    with pytest.raises(SippError, match=message):
        AgentPhone(5071, **kw)


# -- the event log --------------------------------------------------------------------------------


def test_a_call_answered_and_hung_up_by_the_far_end():
    [call] = parse_agent_log("\n".join([INVITED_1, ANSWERED_1, ENDED_1])).values()
    assert call == AgentCallLog(
        invited_at=1795925586.583562,
        answered_at=1795925586.888219,
        ended_at=1795925587.897026,
        ended_by="remote",
        caller="01012345678",
        rtp_packets_received=0,
        number=1,
        remote_rtp=("127.0.0.1", 29248),
        rtp_packets_sent=0,
    )
    assert call.answered and call.ended
    assert call.talk_time == pytest.approx(1.0088, abs=1e-3)


def test_a_call_that_still_rings_has_no_media_counts():
    [call] = parse_agent_log(INVITED_1).values()
    assert not call.answered and not call.ended and call.ended_by is None
    assert call.rtp_packets_received is None
    assert "ringing" in call.describe()


@pytest.mark.parametrize(
    "detail, ended_by, cancelled, busy",
    [
        ("remote", "remote", False, False),
        ("local", "local", False, False),
        ("cancelled", "remote", True, False),
        ("busy", "local", False, True),
    ],
)
def test_how_a_call_ended(detail, ended_by, cancelled, busy):
    log = f"{INVITED_1}\nIVR-AGENT ended 1 2026-11-29\t04:13:08.0\t1795925588.0 {detail}\n"
    [call] = parse_agent_log(log).values()
    assert (call.ended_by, call.cancelled, call.busy) == (ended_by, cancelled, busy)
    assert call.ended_at == 1795925588.0


def test_the_log_is_applied_in_pieces_as_sipp_writes_it():
    calls: dict[int, AgentCallLog] = {}
    parse_agent_log(INVITED_1, calls)
    assert not calls[1].answered
    parse_agent_log(ANSWERED_1, calls)
    calls[1].rtp_packets_received = 7  # counted by the phone meanwhile
    parse_agent_log(ENDED_1 + "\n" + INVITED_1.replace("invited 1", "invited 2"), calls)
    assert calls[1].ended_by == "remote" and calls[1].rtp_packets_received == 7
    assert sorted(calls) == [1, 2] and not calls[2].answered


def test_an_invite_without_a_caller_or_sdp_still_counts_as_a_call():
    [call] = parse_agent_log("IVR-AGENT invited 3 2026-11-29\t04:13:06.5\t1795925586.5 from= rtp=:").values()
    assert (call.number, call.caller, call.remote_rtp) == (3, "", None)


def test_lines_that_are_not_ours_are_ignored():
    assert parse_agent_log("Resolving remote host\nIVR-EVENT answered 408\n") == {}


def test_expected_timeout_jumps_are_not_errors():
    noise = (
        "The following events occurred:\n"
        "2026-11-29\t04:23:03.930216\t1795926183.930216: Call-Id: abc, receive timeout on message "
        "ivr agent:2, jumping to label 7"
        "2026-11-29\t04:23:04.934315\t1795926184.934315: Call-Id: def, receive timeout on message "
        "ivr agent:2, jumping to label 12"
    )
    assert agent_errors(noise) == ""
    real = "2026-11-29\t04:23:05.1\t1795926185.1: Aborting call on unexpected message for Call-Id x"
    assert agent_errors(noise + real).endswith(real)
    assert "2026-11-29\t04:23:05.1" in agent_errors(noise + real)  # the year of the next entry survives


# -- the tone -------------------------------------------------------------------------------------


def test_mu_law_corner_values():
    assert sipp._ulaw(0) == 0xFF
    assert sipp._ulaw(32767) == 0x80
    assert sipp._ulaw(-32768) == 0x00
    assert sipp._ulaw(-1) == 0x7F


def test_the_tone_is_one_packet_that_loops_without_a_click():
    tone = tone_payload()
    assert len(tone) == 160
    period = 8000 // sipp.TONE_HZ
    assert tone[:period] == tone[period : 2 * period] == tone[-period:]
    assert len(set(tone)) > 4  # not silence


# -- the phone's port -----------------------------------------------------------------------------


def test_a_bound_udp_port_is_seen_as_taken():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert sipp._udp_port_bound("127.0.0.1", port)
    finally:
        s.close()
    assert not sipp._udp_port_bound("127.0.0.1", port)


# -- the command line -----------------------------------------------------------------------------


def test_the_command_line_runs_an_agent_or_places_a_call(monkeypatch):
    seen = []
    monkeypatch.setattr(sipp, "agent_main", lambda argv: seen.append(("agent", argv)) or 0)
    monkeypatch.setattr(sipp, "call_main", lambda argv: seen.append(("call", argv)) or 0)
    sipp.main(["agent", "--port", "5072", "--no-answer"])
    sipp.main(["15771000", "--from", "01012345678"])  # the original form
    sipp.main(["call", "15771000", "--keys", "1"])
    assert seen == [
        ("agent", ["--port", "5072", "--no-answer"]),
        ("call", ["15771000", "--from", "01012345678"]),
        ("call", ["15771000", "--keys", "1"]),
    ]


def test_the_agent_command_line_builds_the_phone_asked_for(monkeypatch):
    built = []

    async def fake_run(phone, show_messages):
        built.append(phone)
        return 0

    monkeypatch.setattr(sipp, "_run_agent", fake_run)
    assert sipp.agent_main(["--port", "5073", "--busy"]) == 0
    assert sipp.agent_main(["--ring-delay", "2", "--talk", "5", "--no-audio"]) == 0
    busy, talker = built
    assert (busy.port, busy.mode) == (5073, "busy")
    assert (talker.port, talker.mode, talker.ring_delay, talker.talk, talker.audio) == (5071, "answer", 2.0, 5.0, False)
    with pytest.raises(SystemExit):
        sipp.agent_main(["--busy", "--no-answer"])


# -- the caller's voice, for the agent to hear ------------------------------------------------------


def rtp_payloads(pcap: bytes) -> list[tuple[int, bytes]]:
    """(payload type, payload) of each packet of a capture written by ``dtmf_pcap``."""
    out, offset = [], 24
    while offset < len(pcap):
        length = int.from_bytes(pcap[offset + 8 : offset + 12], "little")
        frame = pcap[offset + 16 : offset + 16 + length]
        rtp = frame[14 + 20 + 8 :]
        out.append((rtp[1] & 0x7F, rtp[12:]))
        offset += 16 + length
    return out


def test_a_caller_with_a_voice_speaks_after_the_keys():
    voice = tone_payload(sipp.CALLER_TONE_HZ)
    packets = rtp_payloads(sipp.dtmf_pcap([(0.2, "1")], voice=2))
    spoken = [i for i, (pt, payload) in enumerate(packets) if pt == 0 and payload == voice]
    keys = [i for i, (pt, _) in enumerate(packets) if pt == sipp.EVENT_PAYLOAD_TYPE]
    assert len(spoken) == 100  # 2 s of 20 ms packets
    assert max(keys) < min(spoken)
    assert voice != tone_payload()  # the caller and the agent are told apart by their tones


def test_a_caller_may_speak_without_pressing_keys():
    packets = rtp_payloads(sipp.dtmf_pcap([], voice=1))
    assert [pt for pt, _ in packets] == [0] * 55  # 0.1 s of lead-in silence, then 1 s of voice


def test_without_a_voice_the_keys_capture_is_as_before():
    packets = rtp_payloads(sipp.dtmf_pcap([(0.2, "1")]))
    assert tone_payload(sipp.CALLER_TONE_HZ) not in [payload for _, payload in packets]
    assert sipp.dtmf_pcap([]) == sipp._pcap([])


# -- keys pressed by the phone (a customer accepting a call-back) -----------------------------------


def rtp_fields(packet: bytes) -> dict:
    """The header fields of an RTP packet, and for a telephone-event its payload fields."""
    first, second, seq, ts, ssrc = struct.unpack("!BBHII", packet[:12])
    fields = {"version": first >> 6, "marker": bool(second & 0x80), "pt": second & 0x7F,
              "seq": seq, "ts": ts, "ssrc": ssrc, "payload": packet[12:]}
    if fields["pt"] == sipp.EVENT_PAYLOAD_TYPE:
        event, flags, duration = struct.unpack("!BBH", packet[12:16])
        fields.update(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)
    return fields


def test_one_key_is_a_start_updates_and_three_end_packets():
    packets = [rtp_fields(p) for p in sipp.key_packets("5", seq=100, timestamp=8000, ssrc=0xDEADBEEF)]
    assert len(packets) == 5 + 3  # 100 ms held in 20 ms steps, then the end three times
    assert {(p["version"], p["pt"], p["ssrc"], p["ts"], p["event"], p["volume"]) for p in packets} == {
        (2, 101, 0xDEADBEEF, 8000, 5, 10)
    }
    assert [p["seq"] for p in packets] == list(range(100, 108))
    assert [p["marker"] for p in packets] == [True] + [False] * 7
    assert [p["end"] for p in packets] == [False] * 5 + [True] * 3
    assert [p["duration"] for p in packets] == [160, 320, 480, 640, 800, 800, 800, 800]


@pytest.mark.parametrize("key, code", [("0", 0), ("9", 9), ("*", 10), ("#", 11), ("a", 12), ("D", 15)])
def test_key_event_codes(key, code):
    [first, *_] = sipp.key_packets(key, seq=0, timestamp=0, ssrc=1)
    assert rtp_fields(first)["event"] == code


def test_a_longer_key_and_wrapping_counters():
    packets = [rtp_fields(p) for p in sipp.key_packets("1", seq=0xFFFE, timestamp=0xFFFFFFFF, ssrc=7, key_ms=200)]
    assert len(packets) == 10 + 3
    assert [p["seq"] for p in packets][:4] == [0xFFFE, 0xFFFF, 0, 1]
    assert {p["ts"] for p in packets} == {0xFFFFFFFF}
    assert packets[-1]["duration"] == 1600


def test_not_a_key_is_refused():
    with pytest.raises(SippError, match="not a phone key"):
        sipp.key_packets("x", seq=0, timestamp=0, ssrc=1)


def test_callers_captures_are_built_from_the_same_key_packets():
    packets = rtp_payloads(sipp.dtmf_pcap([(0.2, "7")], ssrc=99))
    events = [payload for pt, payload in packets if pt == sipp.EVENT_PAYLOAD_TYPE]
    assert events == [p[12:] for p in sipp.key_packets("7", seq=0, timestamp=0, ssrc=99)]


def media(keys: str, keys_after: float = 1.0, *, tone: bytes | None = None, n: int | None = None, **kw):
    stream = sipp.phone_media(sipp.parse_keys(keys, keys_after) if keys else [], tone=tone,
                              ssrc=kw.get("ssrc", 0x1234), seq=kw.get("seq", 1000), timestamp=kw.get("ts", 5000))
    items = list(itertools.islice(stream, n)) if n is not None else list(stream)
    return [(rtp_fields(packet), key) for packet, key in items]


def test_the_phone_talks_then_presses_the_key_after_the_delay_then_talks_on():
    tone = tone_payload()
    items = media("1", 1.0, tone=tone, n=50 + 8 + 20)
    packets = [p for p, _ in items]
    assert {p["ssrc"] for p in packets} == {0x1234}  # one stream
    assert [p["seq"] for p in packets] == list(range(1000, 1000 + len(packets)))
    kinds = "".join("k" if p["pt"] == 101 else "t" for p in packets)
    assert kinds == "t" * 50 + "k" * 8 + "t" * 20  # 1 s of tone, the key (tone paused), the tone again
    assert all(p["payload"] == tone for p in packets if p["pt"] == 0)
    # Audio timestamps follow the clock, 160 a packet, across the key; the key starts at its slot.
    assert all(p["ts"] == 5000 + 160 * i for i, p in enumerate(packets) if p["pt"] == 0)
    assert {p["ts"] for p in packets if p["pt"] == 101} == {5000 + 160 * 50}
    assert [i for i, p in enumerate(packets) if p["marker"]] == [0, 50]  # stream start, key start
    assert [(i, key) for i, (_, key) in enumerate(items) if key] == [(57, "1")]  # after its last end


def test_several_keys_even_the_same_twice_are_separate_events_with_a_gap():
    items = media("11#", 0.5)
    events = [p for p, _ in items if p["pt"] == 101]
    starts = [p for p in events if p["marker"]]
    assert [p["event"] for p in starts] == [1, 1, 11]
    assert len({p["ts"] for p in starts}) == 3  # a new event each time, so a repeated key counts twice
    assert sum(p["end"] for p in events) == 9
    kinds = "".join("k" if p["pt"] == 101 else "s" for p, _ in items)
    assert kinds == "s" * 25 + "k" * 8 + "s" * 10 + "k" * 8 + "s" * 10 + "k" * 8  # 0.2 s between keys
    assert "".join(key for _, key in items) == "11#"


def test_without_a_tone_the_phone_sends_silence_until_its_last_key():
    items = media("w0.4,2,w1,3")
    packets = [p for p, _ in items]
    assert {p["payload"] for p in packets if p["pt"] == 0} == {b"\xff" * 160}
    assert packets[-1]["pt"] == 101 and packets[-1]["end"]  # and nothing after
    kinds = "".join("k" if p["pt"] == 101 else "s" for p in packets)
    assert kinds == "s" * 20 + "k" * 8 + "s" * 50 + "k" * 8


def test_the_first_key_waits_for_the_far_end_to_learn_our_media_address():
    packets = [p for p, _ in media("1", 0)]
    lead = next(i for i, p in enumerate(packets) if p["pt"] == 101)
    assert lead * sipp.PACKET_MS / 1000 == sipp.MIN_LEAD


def test_with_no_keys_the_tone_goes_on():
    items = media("", tone=tone_payload(), n=500)
    assert len(items) == 500 and {p["pt"] for p, _ in items} == {0}


def test_the_phone_checks_its_keys_when_built():
    with pytest.raises(SippError, match="not a phone key"):
        AgentPhone(5090, keys="1x")
    with pytest.raises(SippError, match="keys_after"):
        AgentPhone(5090, keys="1", keys_after=-1)
    phone = AgentPhone(5090, keys="1", keys_after=2)
    assert (phone.keys, phone.keys_after) == ("1", 2)


def test_the_display_name_of_the_caller_is_read_from_the_log():
    [call] = parse_agent_log(INVITED_1 + ' name=Acme Bank ').values()
    assert (call.caller, call.caller_name) == ("01012345678", "Acme Bank")
    assert '"Acme Bank" 01012345678' in call.describe()
    [call] = parse_agent_log(INVITED_1 + " name=").values()
    assert call.caller_name == ""


def test_the_scenario_logs_the_display_name_last():
    root = scenario()
    invite = next(el for el in root.iter("recv") if el.get("request") == "INVITE")
    message = next(el for el in invite.iter("log")).get("message")
    assert message.endswith(" name=[$caller_name]")
    ereg = next(el for el in invite.iter("ereg") if el.get("assign_to", "").endswith("caller_name"))
    pattern = re.compile(ereg.get("regexp").replace("[[:space:]]", r"\s"))
    for header, name in [
        (' "Acme Bank" <sip:15771000@127.0.0.1>;tag=x', "Acme Bank"),
        (" Acme <sip:15771000@127.0.0.1>;tag=x", "Acme "),
        (" <sip:15771000@127.0.0.1>;tag=x", ""),
    ]:
        assert pattern.search(header).group(1) == name
    assert pattern.search(" sip:15771000@127.0.0.1;tag=x") is None


def test_the_agent_command_line_presses_keys(monkeypatch):
    built = []

    async def fake_run(phone, show_messages):
        built.append(phone)
        return 0

    monkeypatch.setattr(sipp, "_run_agent", fake_run)
    assert sipp.agent_main(["--port", "5090", "--keys", "1", "--keys-after", "2.5"]) == 0
    assert sipp.agent_main(["--port", "5090"]) == 0
    customer, agent = built
    assert (customer.port, customer.keys, customer.keys_after) == (5090, "1", 2.5)
    assert (agent.keys, agent.keys_after) == ("", 1.0)
    assert sipp.agent_main(["--keys", "1z"]) == 2


# -- the agent phone as a user runs it: 'ivr call agent' ---------------------------------------------


def test_the_agent_phone_help_names_the_ivr_command(capsys):
    from ivr.cli import main as ivr_main

    with pytest.raises(SystemExit) as done:
        ivr_main(["call", "agent", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ivr call agent ")
    assert "python -m ivr.sipp" not in out


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    try:
        with open(path) as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"       # a zombie is gone too
    except FileNotFoundError:
        return True


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed (Debian: sip-tester)")
@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.parametrize("started_by", ["a terminal", "a script in the background"])
def test_ctrl_c_stops_the_agent_phone_and_its_sipp(started_by):
    """SIGINT ends 'ivr call agent' with exit 0 and no SIPp left on the port — also when the
    phone was started with '&' from a script, which starts it with SIGINT ignored."""
    port = _free_udp_port()

    def as_a_background_job() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    phone = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "call", "agent", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=as_a_background_job if started_by != "a terminal" else None)
    try:
        ready = phone.stdout.readline()                    # printed once SIPp listens
        assert f"agent phone on 127.0.0.1:{port}" in ready, phone.stderr.read()
        children = _children(phone.pid)
        assert children, "the phone runs SIPp"
        if started_by == "a terminal":
            os.killpg(phone.pid, signal.SIGINT)            # Ctrl-C: the whole foreground group
        else:
            phone.send_signal(signal.SIGINT)
        assert phone.wait(timeout=10) == 0, phone.stderr.read()
        assert all(_gone(child) for child in children), "SIPp was left running"
        assert not sipp._udp_port_bound("127.0.0.1", port)
    finally:
        if phone.poll() is None:
            phone.kill()
            phone.wait()


def test_the_sandbox_agent_contacts_are_5070_plus_n():
    assert sipp.sandbox_agent_port("PJSIP/agent1") == 5071
    assert sipp.sandbox_agent_port("PJSIP/agent12") == 5082
    for other in ("PJSIP/tester1", "PJSIP/agent0", "SIP/agent1", "PJSIP/agent1@trunk", "PJSIP/agent"):
        assert sipp.sandbox_agent_port(other) is None


def test_every_sample_agent_logged_in_at_start_gets_a_phone_from_scripts_run():
    """scripts/run starts 'ivr call agent --port P' for these: none may be rung without a phone."""
    from pathlib import Path

    from ivr.config import load_config

    repo = Path(__file__).resolve().parents[2]
    acd = load_config(repo / "ivr.yaml", env={}, need_ari=False).acd
    logged_in = [a for a in acd.agents if a.id in acd.auto_login]
    assert logged_in, "the sample has agents who take calls"
    ports = {a.id: sipp.sandbox_agent_port(a.endpoint) for a in logged_in}
    assert None not in ports.values(), ports
    # The sandbox renders the main instance's agents agent1..4 from one block each
    # (asterisk-conf/blocks/pjsip-agent.in), with the contact port 5070 + N.
    block = (repo / "asterisk-conf" / "blocks" / "pjsip-agent.in").read_text(encoding="utf-8")
    assert "contact = sip:@AGENT@@127.0.0.1:@AGENT_PORT@" in block
    script = (repo / "scripts" / "sandbox.sh").read_text(encoding="utf-8")
    assert 'for i in 1 2 3 4; do\n            out+=$(agent_block "agent$i" "Agent $i" $((5070 + i)))' in script
    for agent, port in ports.items():
        n = int(agent.removeprefix("agent"))
        assert 1 <= n <= 4 and port == 5070 + n, (agent, port)
