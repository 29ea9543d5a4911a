"""Place test calls with SIPp: a caller who dials a number and presses keys over RTP (RFC 4733).

``place_call`` runs one ``sipp`` process per call with the scenario in ``sipp_scenarios/`` and
an RTP capture generated for the keys (``dtmf_pcap``): telephone-events on payload 101 with
advancing sequence numbers and timestamps, so repeated keys ("1122", a phone number) arrive as
separate digits — the captures SIPp ships all reuse one sequence, and a repeated key is lost.

    result = await place_call("15771000", caller="01012345678", keys="w2,1,w1,2")
    result.answered, result.ended_by        # True, "remote" (the IVR hung up)

Keys: a string of keys pressed 0.2 s apart ("01012345678#"), or comma-separated items where
``wN`` waits N seconds before the next key ("w6,1,w4,2"), or a list of ``(pause_seconds, key)``.
Pauses count from the answer: the first key comes after its own pause, or ``key_delay``.

From a shell (as root — replaying a capture needs raw sockets), through the ``ivr`` command
(``python -m ivr.sipp`` takes the same arguments)::

    ivr call 15771000 --from 01012345678 --keys w6,1,w4,2

``AgentPhone`` is the other side: an agent's softphone (one SIPp UAS, ``sipp_scenarios/agent.xml``)
on the port of the agent's static contact (agentN: 5070+N), taking calls one after another.  It
answers (or only rings), talks (a tone) and counts the RTP it receives per call::

    async with AgentPhone(5071, ring_delay=0.5) as phone:
        ...
        [call] = await phone.wait_for_ended(1, timeout=30)
        call.ended_by, call.rtp_packets_received          # "remote", 412

The same phone is a customer's phone that the engine calls back: ``keys="1"`` presses 1 (RFC 4733,
on its media stream) ``keys_after`` seconds after the answer, to accept the call; each call
records ``keys_sent``, and the caller-ID it saw (``caller``, ``caller_name``)::

    async with AgentPhone(5090, keys="1", keys_after=1.0) as phone:
        ...

    ivr call agent --port 5071 [--no-answer | --busy] [--ring-delay S] [--talk S] [--keys 1 --keys-after S]

Ctrl-C (SIGINT), SIGTERM or SIGHUP stops a phone run so, SIPp with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import random
import re
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

SCENARIO_DIR = Path(__file__).resolve().parent / "sipp_scenarios"
CALLER_SCENARIO = SCENARIO_DIR / "caller.xml"

DTMF_KEYS = "0123456789*#ABCD"  # RFC 4733 event codes 0..15, in order
EVENT_PAYLOAD_TYPE = 101
PCMU_PAYLOAD_TYPE = 0
PACKET_MS = 20
SAMPLES_PER_PACKET = 160  # 8 kHz * 20 ms
KEY_MS = 100  # how long a key is held
KEY_GAP = 0.2  # seconds between keys when no pause is given
CALLER_TONE_HZ = 800  # the caller's "voice" (``voice=``); 8000 / 800 = 10 samples a period
MIN_LEAD = 0.1  # RTP before the first key, so Asterisk's strict-RTP learning sees the source

KeySpec = str | Sequence[tuple[float, str]]


class SippError(RuntimeError):
    """SIPp could not be started, or the arguments of a call make no sense."""


# ---------------------------------------------------------------------------------------------
# Keys


def parse_keys(keys: KeySpec, key_delay: float) -> list[tuple[float, str]]:
    """Turn a key spec into ``[(pause_before_seconds, key), ...]``.

    >>> parse_keys("12", 1.0)
    [(1.0, '1'), (0.2, '2')]
    >>> parse_keys("w2,1,w0.5,22", 1.0)
    [(2.0, '1'), (0.5, '2'), (0.2, '2')]
    """
    out: list[tuple[float, str]] = []
    if isinstance(keys, str):
        pending: float | None = None
        items = keys.split(",") if "," in keys or keys.startswith("w") else [keys]
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            if item[0] in "wW":
                try:
                    pending = (pending or 0.0) + float(item[1:])
                except ValueError:
                    raise SippError(f"keys: '{item}' should be a pause like 'w2' or 'w0.5'") from None
                continue
            for key in item:
                pause = pending if pending is not None else (key_delay if not out else KEY_GAP)
                out.append((pause, _check_key(key)))
                pending = None
    else:
        for i, entry in enumerate(keys):
            try:
                pause, key = entry
            except (TypeError, ValueError):
                raise SippError(f"keys[{i}]: expected (pause_seconds, key), got {entry!r}") from None
            if float(pause) < 0:
                raise SippError(f"keys[{i}]: the pause must not be negative")
            out.append((float(pause), _check_key(str(key))))
    return out


def _check_key(key: str) -> str:
    k = key.upper()
    if len(k) != 1 or k not in DTMF_KEYS:
        raise SippError(f"keys: '{key}' is not a phone key (0-9, *, #, A-D)")
    return k


def rtp_packet(pt: int, marker: bool, seq: int, timestamp: int, ssrc: int, payload: bytes) -> bytes:
    """One RTP packet (version 2, no CSRC); ``seq`` and ``timestamp`` wrap around."""
    header = struct.pack(
        "!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF
    )
    return header + payload


def key_packets(
    key: str, *, seq: int, timestamp: int, ssrc: int, key_ms: int = KEY_MS, volume: int = 10, end_packets: int = 3
) -> list[bytes]:
    """The RFC 4733 telephone-event packets (payload 101) of one key press, one per 20 ms.

    A first packet with the marker bit, updates with a growing duration while the key is held
    (``key_ms``), then the end packet (end bit, final duration) ``end_packets`` times.  All carry
    the event's start ``timestamp``; sequence numbers run from ``seq``, one per packet, so the
    stream goes on at ``seq + len(packets)`` and, 20 ms a packet, at ``timestamp + 160 *
    len(packets)``.  ``volume``: the tone's power, -dBm0 (10 is -10 dBm0).
    """
    event = DTMF_KEYS.index(_check_key(key))
    steps = max(1, key_ms // PACKET_MS)
    packets = []
    for i in range(steps):
        payload = struct.pack("!BBH", event, volume & 0x3F, (i + 1) * SAMPLES_PER_PACKET)
        packets.append(rtp_packet(EVENT_PAYLOAD_TYPE, i == 0, seq + i, timestamp, ssrc, payload))
    end = struct.pack("!BBH", event, 0x80 | (volume & 0x3F), steps * SAMPLES_PER_PACKET)
    for i in range(end_packets):
        packets.append(rtp_packet(EVENT_PAYLOAD_TYPE, False, seq + steps + i, timestamp, ssrc, end))
    return packets


def dtmf_pcap(
    presses: Iterable[tuple[float, str]],
    *,
    key_ms: int = KEY_MS,
    trailing: float = 0.5,
    ssrc: int | None = None,
    voice: float = 0.0,
) -> bytes:
    """An RTP capture (pcap, Ethernet/IPv4/UDP) of a caller pressing keys.

    Silence (PCMU) fills the pauses; each key is an RFC 4733 event: a first packet with the
    marker bit, updates every 20 ms with a growing duration, then the end packet three times.
    Sequence numbers and timestamps advance over the whole capture.  SIPp replays the RTP
    payloads to the far end's media address, at the captured pace.  ``voice``: seconds of the
    caller speaking (an 800 Hz tone, PCMU) after the keys and the trailing silence.
    """
    ssrc = random.getrandbits(32) if ssrc is None else ssrc
    seq = random.getrandbits(15)
    ts_base = random.getrandbits(31)
    packets: list[tuple[int, bytes]] = []  # (time in ms, RTP packet)
    silence = b"\xff" * SAMPLES_PER_PACKET  # PCMU silence

    def rtp(pt: int, marker: bool, timestamp: int, payload: bytes) -> bytes:
        nonlocal seq
        packet = rtp_packet(pt, marker, seq, timestamp, ssrc, payload)
        seq += 1
        return packet

    now = 0  # ms since the start of the capture

    def audio_until(end_ms: int, payload: bytes = silence) -> None:
        nonlocal now
        first = not packets
        while now < end_ms:
            packets.append((now, rtp(PCMU_PAYLOAD_TYPE, first, ts_base + now * 8, payload)))
            first = False
            now += PACKET_MS

    for index, (pause, key) in enumerate(presses):
        lead = max(pause, MIN_LEAD) if index == 0 else pause
        audio_until(now + _ms(lead))
        for packet in key_packets(key, seq=seq, timestamp=ts_base + now * 8, ssrc=ssrc, key_ms=key_ms):
            packets.append((now, packet))
            seq += 1
            now += PACKET_MS
    if packets:
        audio_until(now + _ms(trailing))
    if voice > 0:
        audio_until(max(now, _ms(MIN_LEAD)))
        audio_until(now + _ms(voice), tone_payload(CALLER_TONE_HZ))
    return _pcap(packets)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000 / PACKET_MS)) * PACKET_MS


def _pcap(packets: list[tuple[int, bytes]]) -> bytes:
    # Addresses and ports are placeholders (like SIPp's own captures): SIPp sends each payload
    # from its media port to the address the far end gave in its SDP.
    src_mac, dst_mac = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    src_ip, dst_ip = socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1")
    src_port, dst_port = 6000, 10000
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # LINKTYPE_ETHERNET
    start = 1_700_000_000
    for ident, (at_ms, payload) in enumerate(packets):
        udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0, 64, 17, 0, src_ip, dst_ip
        )
        ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        frame = dst_mac + src_mac + b"\x08\x00" + ip + udp
        sec, usec = divmod(at_ms * 1000, 1_000_000)
        out.append(struct.pack("<IIII", start + sec, usec, len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# ---------------------------------------------------------------------------------------------
# Calls


@dataclasses.dataclass(frozen=True, slots=True)
class CallResult:
    """How a SIPp call went.

    ``outcome``: ``remote-bye`` (the IVR hung up), ``local-bye`` (the caller hung up after
    ``hangup_after`` or ``max_duration``), ``rejected`` (a final error response, see
    ``status_code``), ``no-answer`` (CANCELled after ``max_duration``), ``failed`` (SIPp saw
    something the scenario did not expect, see ``errors``) or ``timeout`` (SIPp was killed).
    """

    number: str
    caller: str
    exit_code: int
    outcome: str
    answered: bool
    ended_by: str | None  # "remote" | "local" | None
    status_code: int | None
    duration: float | None  # seconds from answer to hang-up
    elapsed: float  # seconds the sipp process ran
    log: str  # the scenario's outcome lines
    errors: str  # SIPp's unexpected-message log and stderr
    messages: str  # every SIP message sent and received

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.outcome in ("remote-bye", "local-bye")

    @property
    def video_port(self) -> int | None:
        """The video stream's port in the answer (0: refused; None: no video stream in it, or
        none offered): the second ``m=video`` line of the trace, the first being the offer's."""
        ports = re.findall(r"^\s*m=video (\d+)", self.messages, re.M)
        return int(ports[1]) if len(ports) > 1 else None

    def describe(self) -> str:
        parts = [f"call {self.caller} -> {self.number}: {self.outcome}"]
        if self.status_code:
            parts.append(f"status {self.status_code}")
        if self.duration is not None:
            parts.append(f"{self.duration:.1f}s after answer")
        parts.append(f"sipp exit {self.exit_code}")
        return ", ".join(parts)


_reserved_ports: set[int] = set()


def _free_udp_ports(count: int, *, step: int = 1, host: str = "127.0.0.1") -> int:
    """A base port with ``count`` free UDP ports every ``step`` ports, reserved in this process."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 2)
        ports = [base + i * step for i in range(count)]
        if any(p in _reserved_ports for p in ports):
            continue
        socks: list[socket.socket] = []
        try:
            for p in ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((host, p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        _reserved_ports.update(ports)
        return base
    raise SippError("found no free local UDP ports for SIPp")


def _sipp_binary() -> str:
    path = shutil.which("sipp")
    if not path:
        raise SippError("sipp is not installed (Debian package sip-tester: apt-get install -y sip-tester)")
    return path


_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{0,200}")


# A video phone's second stream (place_call(video=True)): VP8 and H.264 on SIPp's media port + 2.
_VIDEO_SDP = (
    "      m=video [media_port+2] RTP/AVP 96 97\n"
    "      a=rtpmap:96 VP8/90000\n"
    "      a=rtpmap:97 H264/90000\n"
    "      a=fmtp:97 profile-level-id=42e01f;packetization-mode=1\n"
    "      a=sendrecv\n"
)


def render_scenario(
    *, answer_timeout: float, bye_wait: float, pcap: Path | None, headers: dict[str, str] | None = None,
    video: bool = False,
) -> str:
    text = CALLER_SCENARIO.read_text()
    if video:
        audio_end = "      a=sendrecv\n"
        at = text.index(audio_end) + len(audio_end)
        text = text[:at] + _VIDEO_SDP + text[at:]
    play = f'<exec play_pcap_audio="{pcap}"/>' if pcap is not None else ""
    extra = ""
    for name, value in (headers or {}).items():
        if not _HEADER_NAME.fullmatch(name) or not _HEADER_VALUE.fullmatch(value) or "]]>" in value:
            raise SippError(f"not a header a test call can send: {name!r}: {value!r}")
        extra += f"\n      {name}: {value}"
    return (
        text.replace("@ANSWER_TIMEOUT_MS@", str(max(1, int(answer_timeout * 1000))))
        .replace("@BYE_WAIT_MS@", str(max(1, int(bye_wait * 1000))))
        .replace("@PLAY@", play)
        .replace("@HEADERS@", extra)
    )


async def place_call(
    number: str,
    *,
    caller: str = "01012345678",
    keys: KeySpec = "",
    key_delay: float = 1.0,
    hangup_after: float | None = None,
    max_duration: float = 60,
    sip_port: int | None = None,
    target: str = "127.0.0.1:5060",
    local_ip: str = "127.0.0.1",
    voice: float = 0.0,
    headers: dict[str, str] | None = None,
    video: bool = False,
) -> CallResult:
    """Call ``number`` as ``caller``, press ``keys`` after the answer, and wait for the end.

    ``hangup_after``: the caller hangs up this many seconds after the answer (unless the IVR
    hangs up first); ``None`` waits up to ``max_duration`` for the IVR to hang up.  A call not
    answered within ``max_duration`` is cancelled.  Several calls may run at once: each gets
    free local SIP and media ports.  ``voice``: after the keys the caller speaks (an 800 Hz
    tone) for this many seconds, so that whoever the call reaches (an agent) hears the caller;
    otherwise the caller sends no RTP once the keys are done.  ``headers``: extra INVITE
    headers (``{"X-IVR-Center": "busan"}`` picks a center through the sandbox's Kamailio).
    ``video``: a video phone: the offer has a second stream, VP8 and H.264 (no picture is
    sent); ``CallResult.video_port`` says what the answer made of it.
    """
    sipp = _sipp_binary()
    presses = parse_keys(keys, key_delay) if keys else []
    if voice < 0:
        raise SippError("voice must not be negative (seconds of the caller speaking)")
    if hangup_after is not None and hangup_after <= 0:
        raise SippError("hangup_after must be positive (seconds after the answer)")
    sip_port = sip_port or _free_udp_ports(1, host=local_ip)
    media_port = _free_udp_ports(2, step=2, host=local_ip)  # SIPp also binds media port + 2
    reserved = [sip_port, media_port, media_port + 2]
    bye_wait = hangup_after if hangup_after is not None else max_duration
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="ivr-sipp-") as tmp:
            work = Path(tmp)
            pcap = None
            if presses or voice > 0:
                pcap = work / "keys.pcap"
                pcap.write_bytes(dtmf_pcap(presses, voice=voice))
            scenario = work / "caller.xml"
            scenario.write_text(
                render_scenario(answer_timeout=max_duration, bye_wait=bye_wait, pcap=pcap, headers=headers,
                                video=video)
            )
            log_file, err_file, msg_file = work / "logs.log", work / "errors.log", work / "messages.log"
            hard_limit = max_duration + bye_wait + 15
            argv = [
                sipp, target,
                "-sf", str(scenario),
                "-s", number,
                "-key", "caller", caller,
                "-m", "1", "-l", "1",
                "-i", local_ip, "-p", str(sip_port),
                "-mi", local_ip, "-mp", str(media_port),
                "-nostdin", "-aa",
                "-trace_logs", "-log_file", str(log_file),
                "-trace_err", "-error_file", str(err_file),
                "-trace_msg", "-message_file", str(msg_file),
                "-timeout", f"{int(hard_limit)}s", "-timeout_error",
            ]  # fmt: skip
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                cwd=tmp,
            )
            killed = False
            try:
                _, stderr_b = await asyncio.wait_for(proc.communicate(), timeout=hard_limit + 5)
            except TimeoutError:
                killed = True
                proc.kill()
                _, stderr_b = await proc.communicate()
            except asyncio.CancelledError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                raise
            elapsed = time.monotonic() - started
            log = _read(log_file)
            errors = "\n".join(x for x in (_read(err_file), stderr_b.decode(errors="replace").strip()) if x)
            return _result(
                number, caller, proc.returncode if proc.returncode is not None else -1,
                log, errors, _read(msg_file), elapsed, killed,
            )  # fmt: skip
    finally:
        _reserved_ports.difference_update(reserved)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return ""


_RESULT = re.compile(r"IVR-RESULT (\S+)(?: (.*))?")
_ANSWERED = re.compile(r"IVR-EVENT answered (\d+)")


def _result(
    number: str, caller: str, exit_code: int, log: str, errors: str, messages: str, elapsed: float, killed: bool
) -> CallResult:
    answered_at = _ANSWERED.search(log)
    m = _RESULT.search(log)
    outcome = m.group(1) if m else ("timeout" if killed else "failed")
    detail = (m.group(2) or "") if m else ""
    status_code = None
    duration = None
    if outcome == "rejected":
        code = re.search(r"\b(\d{3})\b", detail)
        status_code = int(code.group(1)) if code else None
    elif answered_at and detail.isdigit():
        duration = (int(detail) - int(answered_at.group(1))) / 1000
    ended_by = {"remote-bye": "remote", "local-bye": "local"}.get(outcome)
    return CallResult(
        number=number,
        caller=caller,
        exit_code=exit_code,
        outcome=outcome,
        answered=answered_at is not None,
        ended_by=ended_by,
        status_code=status_code,
        duration=duration,
        elapsed=elapsed,
        log=log,
        errors=errors,
        messages=messages,
    )


# ---------------------------------------------------------------------------------------------
# Agents' phones


AGENT_SCENARIO = SCENARIO_DIR / "agent.xml"
AGENT_BASE_PORT = 5070  # agentN's phone listens on 5070 + N (asterisk-conf/pjsip.conf)
_SANDBOX_AGENT = re.compile(r"PJSIP/agent([1-9][0-9]?)")


def sandbox_agent_port(endpoint: str) -> int | None:
    """The SIP port of the sandbox's static contact for ``PJSIP/agentN`` (5070 + N), where an
    agent phone answers that agent's calls; None for any other endpoint."""
    m = _SANDBOX_AGENT.fullmatch(endpoint.strip())
    return AGENT_BASE_PORT + int(m.group(1)) if m else None
TONE_HZ = 400  # the agent's "voice": 8000 / 400 = 20 samples a period, so one packet loops cleanly


@dataclasses.dataclass(slots=True)
class AgentCallLog:
    """One call offered to an agent's phone.  Times are wall-clock seconds (``time.time()``).

    ``ended_by``: ``remote`` when the far end hung up or gave up ringing (CANCEL), ``local`` when
    the phone hung up after ``talk`` seconds or refused the call (busy), None while it lasts.
    ``rtp_packets_received``: RTP packets that reached the phone from the far end's media
    address (None until answered); ``rtp_packets_sent``: packets the phone sent (its tone and
    its keys).  ``caller``: the user of the From URI (the caller-ID the phone saw);
    ``caller_name``: the From display name, "" when there is none.  ``keys_sent``: the keys the
    phone has pressed so far in this call (each counted once its end packets are out).
    """

    invited_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    ended_by: str | None = None
    caller: str = ""
    rtp_packets_received: int | None = None
    number: int = 0  # SIPp's call number, 1, 2, … in the order the INVITEs arrived
    cancelled: bool = False  # ended by CANCEL before it was answered
    busy: bool = False  # refused with 486 Busy Here
    remote_rtp: tuple[str, int] | None = None  # the far end's media address (from its SDP)
    rtp_packets_sent: int | None = None
    caller_name: str = ""
    keys_sent: str = ""

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    @property
    def talk_time(self) -> float | None:
        """Seconds from the answer to the end."""
        if self.answered_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.answered_at

    def describe(self) -> str:
        who = f'"{self.caller_name}" {self.caller or "?"}' if self.caller_name else self.caller or "?"
        parts = [f"call {self.number} from {who}"]
        if self.busy:
            parts.append("refused (busy)")
        elif self.cancelled and self.ended_at is not None:
            parts.append(f"cancelled after {self.ended_at - self.invited_at:.1f}s ringing")
        elif self.ended_at is not None:
            talk = self.talk_time
            parts.append(f"ended by {self.ended_by}" + (f" after {talk:.1f}s" if talk is not None else ""))
        elif self.answered:
            parts.append("talking")
        else:
            parts.append("ringing")
        if self.rtp_packets_received is not None:
            parts.append(f"RTP received {self.rtp_packets_received}, sent {self.rtp_packets_sent or 0}")
        if self.keys_sent:
            parts.append(f"keys sent {self.keys_sent}")
        return ", ".join(parts)


AGENT_MODES = ("answer", "no_answer", "busy")


def render_agent_scenario(
    *, media_ip: str, media_port: int, mode: str = "answer", ring_delay: float = 0.5, talk: float | None = None
) -> str:
    """The agent scenario for one phone: ``answer`` after ``ring_delay`` s, then hang up after
    ``talk`` s (or wait for the far end's BYE); ``no_answer``: ring until cancelled; ``busy``:
    refuse with 486 at once."""
    if mode not in AGENT_MODES:
        raise SippError(f"mode must be one of {', '.join(AGENT_MODES)}, not {mode!r}")
    if ring_delay < 0:
        raise SippError("ring_delay must not be negative")
    if talk is not None and talk <= 0:
        raise SippError("talk must be positive (seconds after the answer), or None to wait for the BYE")
    ring_wait = f'timeout="{max(1, int(ring_delay * 1000))}" ontimeout="answer"' if mode == "answer" else ""
    talk_wait = f'timeout="{max(1, int(talk * 1000))}" ontimeout="localbye"' if talk is not None else ""
    return (
        AGENT_SCENARIO.read_text()
        .replace("@MEDIA_IP@", media_ip)
        .replace("@MEDIA_PORT@", str(media_port))
        .replace("@RING_WAIT@", ring_wait)
        .replace("@TALK_WAIT@", talk_wait)
        .replace("@BUSY@", '<nop next="busy"/>' if mode == "busy" else "")
    )


# IVR-AGENT <event> <call number> <[timestamp]: date TAB time TAB epoch> <detail>
_AGENT_EVENT = re.compile(r"IVR-AGENT (invited|answered|ended) (\d+) \S+\s+\S+\s+(\d+(?:\.\d+)?)\s*(.*)")
_INVITED_DETAIL = re.compile(r"from=(\S*) rtp=([0-9.]*):(\d*)(?: name=(.*))?")


def parse_agent_log(text: str, calls: dict[int, AgentCallLog] | None = None) -> dict[int, AgentCallLog]:
    """Apply the ``IVR-AGENT`` lines of an agent scenario's log to ``calls`` (by call number)."""
    calls = {} if calls is None else calls
    for line in text.splitlines():
        m = _AGENT_EVENT.search(line)
        if not m:
            continue
        event, number, at, detail = m.group(1), int(m.group(2)), float(m.group(3)), m.group(4).strip()
        call = calls.get(number)
        if call is None:
            call = calls[number] = AgentCallLog(invited_at=at, number=number)
        if event == "invited":
            call.invited_at = at
            d = _INVITED_DETAIL.search(detail)
            if d:
                call.caller = d.group(1)
                call.caller_name = (d.group(4) or "").strip()
                if d.group(2) and d.group(3):
                    call.remote_rtp = (d.group(2), int(d.group(3)))
        elif event == "answered":
            call.answered_at = at
            if call.rtp_packets_received is None:
                call.rtp_packets_received = 0
                call.rtp_packets_sent = 0
        elif event == "ended" and call.ended_at is None:
            call.ended_at = at
            call.cancelled = detail == "cancelled"
            call.busy = detail == "busy"
            call.ended_by = "local" if detail in ("local", "busy") else "remote"
    return calls


# SIPp logs every ``ontimeout`` jump as an error (ringing ends, the talk time is up): normal
# here.  Its entries are not separated by newlines: each starts with a [timestamp].
_TIMEOUT_JUMP = re.compile(
    r"\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: Call-Id: [^,]*, receive timeout on message [^,]*, "
    r"jumping to label \d+?(?=\d{4}-\d\d-\d\d\t|\s|$)"
)


def agent_errors(text: str) -> str:
    """SIPp's error log of an agent phone without the expected timeout jumps."""
    text = _TIMEOUT_JUMP.sub("", text).strip()
    return "" if text == "The following events occurred:" else text


def _ulaw(sample: int) -> int:
    """One 16-bit linear sample to G.711 mu-law."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), clip) + bias
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone_payload(hz: int = TONE_HZ, *, level: float = 0.3) -> bytes:
    """20 ms of a sine tone in PCMU (``hz`` should divide 8000 by a whole number of periods per packet)."""
    return bytes(
        _ulaw(int(level * 32767 * math.sin(2 * math.pi * hz * i / 8000))) for i in range(SAMPLES_PER_PACKET)
    )


PCMU_SILENCE = b"\xff" * SAMPLES_PER_PACKET


def phone_media(
    presses: Sequence[tuple[float, str]],
    *,
    tone: bytes | None,
    ssrc: int,
    seq: int,
    timestamp: int,
    key_ms: int = KEY_MS,
) -> Iterator[tuple[bytes, str]]:
    """What a phone sends from the answer on, one RTP packet every 20 ms: ``(packet, key)``.

    The audio is ``tone`` (PCMU, 20 ms) over and over; a key press (``presses``: ``(pause
    seconds, key)`` as ``parse_keys`` gives them, each pause counted from the end of the
    previous key or, for the first, from the answer) takes the place of the audio while it
    lasts (``key_packets``) — one SSRC, one run of sequence numbers, timestamps at 8 kHz over
    the whole stream.  ``key`` is the key whose last end packet this is, else "".  The first
    key comes no sooner than ``MIN_LEAD`` after the answer, so the far end has learnt where the
    media comes from (strict RTP).  ``tone=None``: silence instead, and the stream ends with the
    last key; with a tone it never ends.
    """
    payload = PCMU_SILENCE if tone is None else tone
    slot = 0  # 20 ms slots since the answer

    def audio(marker: bool = False) -> bytes:
        return rtp_packet(PCMU_PAYLOAD_TYPE, marker, seq + slot, timestamp + slot * SAMPLES_PER_PACKET, ssrc, payload)

    for index, (pause, key) in enumerate(presses):
        until = slot + _ms(max(pause, MIN_LEAD) if index == 0 else pause) // PACKET_MS
        while slot < until:
            yield audio(slot == 0), ""
            slot += 1
        event = key_packets(
            key, seq=seq + slot, timestamp=timestamp + slot * SAMPLES_PER_PACKET, ssrc=ssrc, key_ms=key_ms
        )
        for i, packet in enumerate(event):
            yield packet, (key if i == len(event) - 1 else "")
            slot += 1
    while tone is not None:
        yield audio(slot == 0), ""
        slot += 1


class _Media(asyncio.DatagramProtocol):
    """The phone's RTP socket: counts what arrives per call, sends the tone."""

    def __init__(self, phone: AgentPhone) -> None:
        self.phone = phone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 12 and data[0] >> 6 == 2:
            self.phone._on_rtp(addr)


class _Sink(asyncio.DatagramProtocol):
    """RTCP arrives on the media port + 1: take it so the far end gets no ICMP errors."""


class AgentPhone:
    """An agent's softphone for end-to-end tests: one SIPp UAS on ``host:port`` taking calls
    one after another until closed.

        async with AgentPhone(5071, ring_delay=0.5) as phone:     # agent1
            ...
            calls = await phone.wait_for_ended(1, timeout=30)
            assert calls[0].ended_by == "remote" and calls[0].rtp_packets_received > 0

    ``mode``: ``answer`` (180 Ringing, then 200 OK after ``ring_delay`` s), ``no_answer``
    (ring until cancelled) or ``busy`` (486 Busy Here at once).  ``talk``: the phone hangs up
    this many seconds after the answer; None waits for the far end's BYE.  ``audio``: the
    phone talks — it sends a 400 Hz tone (PCMU, 20 ms packets) to the far end from the answer
    to the end of the call.  Whatever ``audio``, the RTP that reaches the phone is counted per
    call (``rtp_packets_received``): in a two-party bridge Asterisk forwards only what the
    other side sends, so a count above zero means the phone heard the other side.

    ``keys``: the phone presses keys once the call is answered — a customer's phone that the
    engine calls back, where the customer accepts the call with a key::

        async with AgentPhone(5090, keys="1", keys_after=1.0) as phone:
            call = await ari.dial("PJSIP/sipp/sip:01012345678@127.0.0.1:5090", timeout=10)
            ...
            [log] = phone.calls
            log.keys_sent, log.caller, log.caller_name          # "1", "15771000", ""

    The keys take the same forms as a caller's (``parse_keys``): "12#", or "w2,1,w3,2" for
    pauses; the first key comes ``keys_after`` seconds after the answer (ACK).  They are sent as
    RFC 4733 telephone-events (payload 101) on the phone's media stream, in place of the tone
    while a key lasts.  Without ``audio`` the phone sends silence until its last key, then
    nothing.

    The media address in the phone's SDP is a socket of this object (a free port pair on
    ``host``), not SIPp's: it runs on the event loop of the ``async with``.
    """

    def __init__(
        self,
        port: int = AGENT_BASE_PORT + 1,
        mode: str = "answer",
        ring_delay: float = 0.5,
        talk: float | None = None,
        audio: bool = True,
        *,
        keys: str = "",
        keys_after: float = 1.0,
        host: str = "127.0.0.1",
        poll_interval: float = 0.02,
    ) -> None:
        if keys_after < 0:
            raise SippError("keys_after must not be negative (seconds after the answer)")
        self.port = port
        self.mode = mode
        self.ring_delay = ring_delay
        self.talk = talk
        self.audio = audio
        self.keys = keys
        self.keys_after = keys_after
        self._presses = parse_keys(keys, keys_after) if keys else []  # checks the keys early
        self.host = host
        self.poll_interval = poll_interval
        self.media_port: int | None = None
        render_agent_scenario(  # checks the arguments early
            media_ip=host, media_port=0, mode=mode, ring_delay=ring_delay, talk=talk
        )
        self._calls: dict[int, AgentCallLog] = {}
        self._by_source: dict[tuple[str, int], AgentCallLog] = {}
        self._senders: dict[int, asyncio.Task[None]] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._work: Path | None = None
        self._log_offset = 0
        self._log_rest = b""
        self._media: _Media | None = None
        self._sink: asyncio.DatagramTransport | None = None
        self._poller: asyncio.Task[None] | None = None
        self._reserved: list[int] = []
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._final_errors = ""  # what SIPp said, kept when the phone is closed
        self._final_messages = ""

    def __repr__(self) -> str:
        return f"<AgentPhone {self.host}:{self.port} {self.mode}>"

    # -- lifetime ----------------------------------------------------------------------------

    async def __aenter__(self) -> AgentPhone:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self, ready_timeout: float = 5.0) -> None:
        if self._proc is not None:
            raise SippError("this agent phone is already running")
        sipp = _sipp_binary()
        if _udp_port_bound(self.host, self.port):
            raise SippError(f"UDP {self.host}:{self.port} is already in use (another agent phone, or a softphone?)")
        loop = self._loop = asyncio.get_running_loop()
        self.media_port = _free_udp_ports(2, host=self.host)  # RTP, RTCP
        sipp_media = _free_udp_ports(2, step=2, host=self.host)  # SIPp binds its own media ports
        self._reserved = [self.media_port, self.media_port + 1, sipp_media, sipp_media + 2]
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Media(self), local_addr=(self.host, self.media_port)
            )
            self._media = protocol
            self._sink, _ = await loop.create_datagram_endpoint(_Sink, local_addr=(self.host, self.media_port + 1))
            self._tmp = tempfile.TemporaryDirectory(prefix="ivr-agent-")
            work = self._work = Path(self._tmp.name)
            scenario = work / "agent.xml"
            scenario.write_text(
                render_agent_scenario(
                    media_ip=self.host,
                    media_port=self.media_port,
                    mode=self.mode,
                    ring_delay=self.ring_delay,
                    talk=self.talk,
                )
            )
            argv = [
                sipp,
                "-sf", str(scenario),
                "-i", self.host, "-p", str(self.port),
                "-mi", self.host, "-mp", str(sipp_media),
                "-nostdin", "-aa",
                "-trace_logs", "-log_file", str(work / "logs.log"),
                "-trace_err", "-error_file", str(work / "errors.log"),
                "-trace_msg", "-message_file", str(work / "messages.log"),
            ]  # fmt: skip
            with open(work / "stderr.log", "wb") as stderr:  # noqa: ASYNC230 (a new local file: instant)
                self._proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=stderr,
                    cwd=work,
                    preexec_fn=_die_with_parent(),  # no phone left on the port if we are killed
                    # Out of the terminal's process group: Ctrl-C reaches this process, which
                    # then stops SIPp itself, rather than SIPp dying first as if it had failed.
                    start_new_session=True,
                )
            deadline = loop.time() + ready_timeout
            while not _udp_port_bound(self.host, self.port):
                if self._proc.returncode is not None or loop.time() > deadline:
                    why = self.errors or "no output"
                    raise SippError(f"the agent phone on port {self.port} did not start: {why}")
                await asyncio.sleep(0.02)
            self._poller = asyncio.create_task(self._poll(), name=f"agent-phone-{self.port}")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the phone (calls in progress are dropped without a BYE)."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await proc.wait()
        self._sync()
        for task in self._senders.values():
            task.cancel()
        if self._senders:
            await asyncio.gather(*self._senders.values(), return_exceptions=True)
        self._senders.clear()
        if self._media is not None and self._media.transport is not None:
            self._media.transport.close()
        self._media = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        if self._work is not None:
            self._final_errors = self._read_errors()
            self._final_messages = _read(self._work / "messages.log")
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self._work = None
        _reserved_ports.difference_update(self._reserved)
        self._reserved = []

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    # -- what happened -----------------------------------------------------------------------

    @property
    def calls(self) -> list[AgentCallLog]:
        """The calls offered so far, in order (copies: they do not change under you)."""
        self._sync()
        return [dataclasses.replace(call) for _, call in sorted(self._calls.items())]

    @property
    def errors(self) -> str:
        """SIPp's unexpected-message log and its stderr."""
        if self._work is None:
            return self._final_errors
        return self._read_errors()

    @property
    def messages(self) -> str:
        """Every SIP message the phone sent and received."""
        if self._work is None:
            return self._final_messages
        return _read(self._work / "messages.log")

    def _read_errors(self) -> str:
        assert self._work is not None
        return "\n".join(
            x for x in (agent_errors(_read(self._work / "errors.log")), _read(self._work / "stderr.log")) if x
        )

    async def wait_for_calls(self, n: int, timeout: float) -> list[AgentCallLog]:
        """Until ``n`` calls have been offered (INVITE received); the calls so far."""
        return await self._wait(lambda calls: len(calls) >= n, timeout, f"{n} call(s) offered")

    async def wait_for_answered(self, n: int, timeout: float) -> list[AgentCallLog]:
        """Until ``n`` calls have been answered (ACK received)."""
        return await self._wait(lambda calls: sum(c.answered for c in calls) >= n, timeout, f"{n} call(s) answered")

    async def wait_for_ended(self, n: int, timeout: float) -> list[AgentCallLog]:
        """Until ``n`` calls have ended (hung up by either side, or cancelled while ringing)."""
        return await self._wait(lambda calls: sum(c.ended for c in calls) >= n, timeout, f"{n} call(s) ended")

    async def _wait(
        self, done: Callable[[list[AgentCallLog]], bool], timeout: float, what: str
    ) -> list[AgentCallLog]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            calls = self.calls
            if done(calls):
                return calls
            if self._proc is None or self._proc.returncode is not None:
                raise SippError(f"agent phone {self.port} is not running (waiting for {what}): {self.errors}")
            left = deadline - loop.time()
            if left <= 0:
                summary = "; ".join(c.describe() for c in calls) or "no calls"
                raise TimeoutError(f"agent phone {self.port}: not {what} within {timeout:g}s ({summary})")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.25))

    # -- the log and the media ---------------------------------------------------------------

    async def _poll(self) -> None:
        while True:
            self._sync()
            if self._proc is not None and self._proc.returncode is not None:
                self._changed.set()  # wake waiters: the phone died
                return
            await asyncio.sleep(self.poll_interval)

    def _sync(self) -> None:
        """Read the log lines SIPp wrote since last time; start and stop the tone."""
        if self._work is None:
            return
        try:
            with open(self._work / "logs.log", "rb") as f:
                f.seek(self._log_offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        self._log_offset += len(chunk)
        data = self._log_rest + chunk
        complete, _, self._log_rest = data.rpartition(b"\n")
        if not complete:
            return
        before = {n: (c.answered, c.ended) for n, c in self._calls.items()}
        parse_agent_log(complete.decode(errors="replace"), self._calls)
        changed = False
        for number, call in self._calls.items():
            if before.get(number) == (call.answered, call.ended):
                continue
            changed = True
            if call.remote_rtp is not None:
                self._by_source[call.remote_rtp] = call
            if call.answered and not call.ended and (self.audio or self._presses) and number not in self._senders:
                assert self._loop is not None
                self._senders[number] = self._loop.create_task(self._send_media(call))
            if call.ended:
                sender = self._senders.pop(number, None)
                if sender is not None:
                    sender.cancel()
        if changed:
            self._changed.set()

    def _on_rtp(self, addr: tuple[str, int]) -> None:
        call = self._by_source.get(addr[:2])
        if call is None:
            self._sync()
            call = self._by_source.get(addr[:2])
        if call is None or call.ended:
            return  # from an address no call of ours announced, or after the call
        call.rtp_packets_received = (call.rtp_packets_received or 0) + 1

    async def _send_media(self, call: AgentCallLog) -> None:
        """The phone's RTP for one call, paced at 20 ms: the tone, and the keys in their turn."""
        if call.remote_rtp is None or self._media is None or self._media.transport is None:
            return
        transport = self._media.transport
        stream = phone_media(
            self._presses,
            tone=tone_payload() if self.audio else None,
            ssrc=random.getrandbits(32),
            seq=random.getrandbits(15),
            timestamp=random.getrandbits(31),
        )
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        for packet, key in stream:
            if call.ended or transport.is_closing():
                return
            transport.sendto(packet, call.remote_rtp)
            sent += 1
            call.rtp_packets_sent = sent
            call.keys_sent += key
            await asyncio.sleep(max(0.0, start + sent * PACKET_MS / 1000 - loop.time()))


def _die_with_parent() -> Callable[[], None] | None:
    """For ``preexec_fn``: the child gets SIGKILL when this process dies (Linux); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_death_signal() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))

    return set_death_signal


def _udp_port_bound(host: str, port: int) -> bool:
    """Whether some socket is bound to UDP ``host:port`` (or the wildcard address) — from
    /proc/net/udp, so no socket of ours takes the port even for a moment."""
    try:
        table = Path("/proc/net/udp").read_text()
    except OSError:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((host, port))
        except OSError:
            return True
        finally:
            s.close()
        return False
    want = {f"{_proc_ip(host)}:{port:04X}", f"00000000:{port:04X}"}
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 1 and fields[1] in want:
            return True
    return False


def _proc_ip(host: str) -> str:
    return socket.inet_aton(host)[::-1].hex().upper()


# ---------------------------------------------------------------------------------------------
# Command line:
#   python -m ivr.sipp [call] NUMBER --from CALLER --keys SPEC
#   python -m ivr.sipp agent --port 5071 [--no-answer | --busy] [--ring-delay S] [--talk S] [--keys 1 --keys-after S]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "agent":
        return agent_main(argv[1:])
    if argv and argv[0] == "call":
        argv = argv[1:]
    return call_main(argv)


def call_main(argv: list[str] | None = None, *, prog: str = "python -m ivr.sipp",
              report: Callable[[CallResult], None] | None = None) -> int:
    """Place one call and print how it ended; ``report(result)`` then adds more (``ivr call``
    prints the engine's record of the call)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Place one SIPp test call.  ('{prog} agent --help': run an agent's phone.)",
    )
    parser.add_argument("number", help="the number dialled, e.g. 15771000")
    parser.add_argument("--from", dest="caller", default="01012345678", help="the caller's number")
    parser.add_argument("--keys", default="", help="keys to press, e.g. '1122' or 'w6,1,w4,2'")
    parser.add_argument("--key-delay", type=float, default=1.0, help="seconds after the answer before the first key")
    parser.add_argument("--hangup-after", type=float, help="hang up this many seconds after the answer")
    parser.add_argument("--voice", type=float, default=0.0,
                        help="after the keys, speak (an 800 Hz tone) for this many seconds")
    parser.add_argument("--max-duration", type=float, default=60)
    parser.add_argument("--target", default=os.environ.get("IVR_SIP_TARGET", "127.0.0.1:5060"),
                        help="where the INVITE goes (the sandbox's Kamailio with several centers: 127.0.0.1:5300)")
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                        help="an extra INVITE header, e.g. 'X-IVR-Center: busan' (repeatable)")
    parser.add_argument("--video", action="store_true",
                        help="a video phone: offer a VP8/H.264 stream beside the audio (15771900)")
    parser.add_argument("--messages", action="store_true", help="print the SIP messages exchanged")
    args = parser.parse_args(argv)
    headers: dict[str, str] = {}
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep:
            parser.error(f"--header {item!r}: give NAME:VALUE")
        headers[name.strip()] = value.strip()
    try:
        result = asyncio.run(
            place_call(
                args.number,
                caller=args.caller,
                keys=args.keys,
                key_delay=args.key_delay,
                hangup_after=args.hangup_after,
                max_duration=args.max_duration,
                target=args.target,
                voice=args.voice,
                headers=headers,
                video=args.video,
            )
        )
    except SippError as exc:
        print(f"sipp: {exc}", file=sys.stderr)
        return 2
    print(result.describe())
    if args.video:
        port = result.video_port
        print("video: " + ("not in the answer" if port is None else "refused (port 0)" if port == 0
                           else f"accepted (the switch's port {port})"))
    if args.messages:
        print(result.messages)
    if report is not None and result.answered:
        report(result)
    if not result.ok:
        if result.errors:
            print(result.errors, file=sys.stderr)
        return 1
    return 0


def agent_main(argv: list[str] | None = None, *, prog: str = "python -m ivr.sipp agent") -> int:
    """Run an agent's phone until Ctrl-C (SIGINT), SIGTERM or SIGHUP; exit 0 when stopped so."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run an agent's phone (SIPp) that takes calls one after another until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=AGENT_BASE_PORT + 1,
                        help="SIP port: agentN's phone is 5070+N (agent1 = 5071, the default)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (the agent's contact)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--no-answer", action="store_true", help="ring and never answer")
    how.add_argument("--busy", action="store_true", help="refuse every call (486 Busy Here)")
    parser.add_argument("--ring-delay", type=float, default=0.5, help="seconds of ringing before the answer")
    parser.add_argument("--talk", type=float, help="hang up this many seconds after the answer "
                        "(default: wait for the caller to hang up)")
    parser.add_argument("--no-audio", action="store_true", help="send no tone (RTP received is still counted)")
    parser.add_argument("--keys", default="",
                        help="press these keys in every call once answered, e.g. '1' or 'w2,1,w1,2' "
                        "(a customer's phone accepting a call-back)")
    parser.add_argument("--keys-after", type=float, default=1.0,
                        help="seconds after the answer before the first key (default 1)")
    parser.add_argument("--messages", action="store_true", help="print the SIP messages exchanged at the end")
    args = parser.parse_args(argv)
    try:
        phone = AgentPhone(
            args.port,
            mode="no_answer" if args.no_answer else "busy" if args.busy else "answer",
            ring_delay=args.ring_delay,
            talk=args.talk,
            audio=not args.no_audio,
            keys=args.keys,
            keys_after=args.keys_after,
            host=args.host,
        )
        return asyncio.run(_run_agent(phone, args.messages))
    except SippError as exc:
        print(f"sipp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


async def _run_agent(phone: AgentPhone, show_messages: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGINT too, explicitly: a phone started in the background by a shell script ('… &') has
    # SIGINT ignored from birth, and asyncio's own Ctrl-C handling then never comes into play.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with phone:
        talk = f"hangs up after {phone.talk:g}s" if phone.talk else "waits for the caller to hang up"
        keys = f"presses {phone.keys} {phone.keys_after:g}s after the answer, " if phone.keys else ""
        how = {"no_answer": "never answers", "busy": "refuses every call (busy)"}.get(
            phone.mode, f"answers after {phone.ring_delay:g}s, {keys}{talk}")
        print(f"agent phone on {phone.host}:{phone.port} (media port {phone.media_port}): {how}. Ctrl-C stops.",
              flush=True)
        seen: dict[int, tuple[bool, bool]] = {}
        try:
            while phone.running and not stop.is_set():
                for call in phone.calls:
                    state = (call.answered, call.ended)
                    if seen.get(call.number) != state:
                        seen[call.number] = state
                        print(time.strftime("%H:%M:%S"), call.describe(), flush=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)
            died = not phone.running
        finally:
            if show_messages:
                print(phone.messages)
    if died:
        print(f"sipp stopped: {phone.errors}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
