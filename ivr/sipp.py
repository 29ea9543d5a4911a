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

From a shell (as root — replaying a capture needs raw sockets)::

    python -m ivr.sipp 15771000 --from 01012345678 --keys w6,1,w4,2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import random
import re
import shutil
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
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


def dtmf_pcap(
    presses: Iterable[tuple[float, str]],
    *,
    key_ms: int = KEY_MS,
    trailing: float = 0.5,
    ssrc: int | None = None,
) -> bytes:
    """An RTP capture (pcap, Ethernet/IPv4/UDP) of a caller pressing keys.

    Silence (PCMU) fills the pauses; each key is an RFC 4733 event: a first packet with the
    marker bit, updates every 20 ms with a growing duration, then the end packet three times.
    Sequence numbers and timestamps advance over the whole capture.  SIPp replays the RTP
    payloads to the far end's media address, at the captured pace.
    """
    ssrc = random.getrandbits(32) if ssrc is None else ssrc
    seq = random.getrandbits(15)
    ts_base = random.getrandbits(31)
    packets: list[tuple[int, bytes]] = []  # (time in ms, RTP packet)
    silence = b"\xff" * SAMPLES_PER_PACKET  # PCMU silence

    def rtp(pt: int, marker: bool, timestamp: int, payload: bytes) -> bytes:
        nonlocal seq
        header = struct.pack(
            "!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
        )
        seq += 1
        return header + payload

    now = 0  # ms since the start of the capture

    def audio_until(end_ms: int) -> None:
        nonlocal now
        first = not packets
        while now < end_ms:
            packets.append((now, rtp(PCMU_PAYLOAD_TYPE, first, ts_base + now * 8, silence)))
            first = False
            now += PACKET_MS

    for index, (pause, key) in enumerate(presses):
        lead = max(pause, MIN_LEAD) if index == 0 else pause
        audio_until(now + _ms(lead))
        event = DTMF_KEYS.index(key)
        start_ts = ts_base + now * 8
        steps = max(1, key_ms // PACKET_MS)
        for i in range(steps):
            duration = (i + 1) * SAMPLES_PER_PACKET
            payload = struct.pack("!BBH", event, 10, duration)  # volume 10 (-10 dBm0)
            packets.append((now, rtp(EVENT_PAYLOAD_TYPE, i == 0, start_ts, payload)))
            now += PACKET_MS
        end_payload = struct.pack("!BBH", event, 0x80 | 10, steps * SAMPLES_PER_PACKET)
        for _ in range(3):
            packets.append((now, rtp(EVENT_PAYLOAD_TYPE, False, start_ts, end_payload)))
            now += PACKET_MS
    if packets:
        audio_until(now + _ms(trailing))
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


def render_scenario(*, answer_timeout: float, bye_wait: float, pcap: Path | None) -> str:
    text = CALLER_SCENARIO.read_text()
    play = f'<exec play_pcap_audio="{pcap}"/>' if pcap is not None else ""
    return (
        text.replace("@ANSWER_TIMEOUT_MS@", str(max(1, int(answer_timeout * 1000))))
        .replace("@BYE_WAIT_MS@", str(max(1, int(bye_wait * 1000))))
        .replace("@PLAY@", play)
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
) -> CallResult:
    """Call ``number`` as ``caller``, press ``keys`` after the answer, and wait for the end.

    ``hangup_after``: the caller hangs up this many seconds after the answer (unless the IVR
    hangs up first); ``None`` waits up to ``max_duration`` for the IVR to hang up.  A call not
    answered within ``max_duration`` is cancelled.  Several calls may run at once: each gets
    free local SIP and media ports.
    """
    sipp = _sipp_binary()
    presses = parse_keys(keys, key_delay) if keys else []
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
            if presses:
                pcap = work / "keys.pcap"
                pcap.write_bytes(dtmf_pcap(presses))
            scenario = work / "caller.xml"
            scenario.write_text(render_scenario(answer_timeout=max_duration, bye_wait=bye_wait, pcap=pcap))
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
            except asyncio.TimeoutError:
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
# Command line: python -m ivr.sipp NUMBER --from CALLER --keys SPEC


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ivr.sipp", description="Place one SIPp test call.")
    parser.add_argument("number", help="the number dialled, e.g. 15771000")
    parser.add_argument("--from", dest="caller", default="01012345678", help="the caller's number")
    parser.add_argument("--keys", default="", help="keys to press, e.g. '1122' or 'w6,1,w4,2'")
    parser.add_argument("--key-delay", type=float, default=1.0, help="seconds after the answer before the first key")
    parser.add_argument("--hangup-after", type=float, help="hang up this many seconds after the answer")
    parser.add_argument("--max-duration", type=float, default=60)
    parser.add_argument("--target", default=os.environ.get("IVR_SIP_TARGET", "127.0.0.1:5060"))
    parser.add_argument("--messages", action="store_true", help="print the SIP messages exchanged")
    args = parser.parse_args(argv)
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
            )
        )
    except SippError as exc:
        print(f"sipp: {exc}", file=sys.stderr)
        return 2
    print(result.describe())
    if args.messages:
        print(result.messages)
    if not result.ok:
        if result.errors:
            print(result.errors, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
