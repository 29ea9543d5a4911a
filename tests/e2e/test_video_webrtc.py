"""WebRTC video through the sandbox Asterisk, with Debian's Chromium and the vendored JsSIP.

A page served here on http://127.0.0.1 (a secure context, so getUserMedia works) loads
ivr/web/static/vendor/jssip-3.10.0.min.js and reaches Asterisk's SIP over secure WebSocket at
wss://127.0.0.1:8443/ws, with Chromium's fake camera and microphone:

- the sandbox's HTTPS certificate names 127.0.0.1 and localhost and is what the WSS port serves;
  Chromium is told to accept exactly that certificate (by its public key), no other;
- video-guest calls the self-test ``video-echo``: what it sends (Opus, VP8 or H.264, over ICE and
  DTLS-SRTP) comes back, so frames are both encoded and decoded (``getStats``);
- interp1 registers over WSS (``pjsip show contacts``), a guest's call to the video number reaches
  Stasis with the visit header as its argument, the engine's way of ringing an interpreter
  (POST /channels?endpoint=PJSIP/interp1) rings the interpreter's page, and in one bridge each
  page decodes the other's video;
- a SIP video phone (SIPp, ivr/sipp_scenarios/video_caller.xml) offering audio and video gets an
  answer that accepts the video stream, and ARI shows its video format.

Needs root (the sandbox) and Chromium at /usr/bin/chromium (or $IVR_CHROMIUM) with the Python
package playwright; without them the tests are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ivr.sipp import place_call

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / ".sandbox"
JSSIP = REPO / "ivr" / "web" / "static" / "vendor" / "jssip-3.10.0.min.js"
VIDEO_CALLER = REPO / "ivr" / "sipp_scenarios" / "video_caller.xml"
WSS_PORT = 8443
WSS = f"wss://127.0.0.1:{WSS_PORT}/ws"
VIDEO_NUMBER = "15779000"  # any number: ivr-video sends every call but video-echo to Stasis
CHROMIUM = Path(os.environ.get("IVR_CHROMIUM", "/usr/bin/chromium"))
# As tests/browser/browser_helpers.py starts Chromium, plus the fake camera and microphone
# (there is no device here).  Camera and microphone permissions are granted to the page's
# context; the certificate is accepted by its public key (see chromium()).
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--use-fake-device-for-media-stream"]

Event = dict[str, Any]

# The page: JsSIP, one user agent, at most one call.  Calls in and out carry the fake camera and
# microphone; an incoming call is answered at once (an interpreter's page).
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>video test</title>
<link rel="icon" href="data:,">
<script src="/jssip.js"></script></head>
<body><video id="remote" autoplay playsinline muted></video>
<script>
"use strict";
const state = { log: [], confirmed: false, ended: null, incoming: 0 };
window.state = state;
let ua = null, session = null;

function note(s) { state.log.push(String(s)); }

function start(ws, user, password, register) {
  return new Promise((resolve, reject) => {
    ua = new JsSIP.UA({ sockets: [new JsSIP.WebSocketInterface(ws)], uri: "sip:" + user + "@127.0.0.1",
                        password, register, session_timers: false });
    ua.on("connected", () => { note("connected"); if (!register) resolve("connected"); });
    ua.on("disconnected", (e) => note("disconnected " + (e && e.code)));
    ua.on("registered", () => { note("registered"); resolve("registered"); });
    ua.on("registrationFailed", (e) => reject(new Error("registration failed: " + e.cause)));
    ua.on("newRTCSession", async (e) => {
      if (e.originator !== "remote") return;
      state.incoming += 1;
      note("incoming from " + e.request.from.uri.user);
      follow(e.session);
      e.session.answer({ mediaStream: await camera() });
    });
    ua.start();
  });
}

function camera() { return navigator.mediaDevices.getUserMedia({ audio: true, video: true }); }

function follow(s) {
  session = s;
  state.confirmed = false;
  state.ended = null;
  s.on("peerconnection", (e) => e.peerconnection.addEventListener("track", (t) => {
    if (t.track.kind === "video") document.getElementById("remote").srcObject = new MediaStream([t.track]);
  }));
  s.on("confirmed", () => { state.confirmed = true; note("confirmed"); });
  s.on("ended", (e) => { state.ended = e.cause; note("ended " + e.cause); });
  s.on("failed", (e) => { state.ended = e.cause; note("failed " + e.cause); });
}

async function call(target, headers) {
  const stream = await camera();
  follow(ua.call("sip:" + target + "@127.0.0.1", { mediaStream: stream, extraHeaders: headers,
                                                 pcConfig: { iceServers: [] } }));
}

async function media() {
  const pc = session && session.connection;
  const out = { in: {}, out: {}, codecs: {} };
  if (!pc) return out;
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type === "inbound-rtp")
      out.in[s.kind] = { packets: s.packetsReceived, frames: s.framesDecoded || 0, codec: s.codecId };
    if (s.type === "outbound-rtp")
      out.out[s.kind] = { packets: s.packetsSent, frames: s.framesEncoded || 0, codec: s.codecId };
    if (s.type === "codec") out.codecs[s.id] = s.mimeType;
  });
  for (const d of [out.in, out.out]) for (const k in d) d[k].codec = out.codecs[d[k].codec] || null;
  delete out.codecs;
  return out;
}

// Resolves with media() once video frames went both ways (at least `frames` each), or rejects
// after `ms` with the last figures.
function videoFlows(frames, ms) {
  return new Promise((resolve, reject) => {
    const until = Date.now() + ms;
    const tick = async () => {
      const m = await media();
      const v = (m.in.video || {}).frames || 0, w = (m.out.video || {}).frames || 0;
      if (v >= frames && w >= frames) return resolve(m);
      if (Date.now() > until) return reject(new Error("video did not flow: " + JSON.stringify(m)));
      setTimeout(tick, 200);
    };
    tick();
  });
}

function hangup() { if (session && !session.isEnded()) session.terminate(); }
function stop() { hangup(); if (ua) ua.stop(); }
</script></body></html>
"""


# ---------------------------------------------------------------------------------------------
# Fixtures: the certificate, the page's server, Chromium.


def served_certificate() -> str:
    """The PEM certificate the WSS port presents."""
    return ssl.get_server_certificate(("127.0.0.1", WSS_PORT))


def spki_hash(pem: str) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)), as Chromium's --ignore-certificate-errors-spki-list takes it."""
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem.encode(), capture_output=True, check=True)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub.stdout,
                         capture_output=True, check=True)
    return base64.b64encode(hashlib.sha256(der.stdout).digest()).decode()


def secret(name: str) -> str:
    return (STATE / name).read_text().strip()


def account_password(file: str, name: str) -> str:
    for line in (STATE / file).read_text().splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == name:
            return fields[1]
    raise AssertionError(f"no password for {name} in {STATE / file}")


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    """The test page and the vendored JsSIP, served on a free loopback port."""
    app = web.Application()

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def jssip(_: web.Request) -> web.FileResponse:
        return web.FileResponse(JSSIP, headers={"Content-Type": "text/javascript"})

    app.router.add_get("/", page)
    app.router.add_get("/jssip.js", jssip)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@pytest.fixture
async def chromium(sandbox: Any) -> AsyncIterator[Any]:
    """Chromium with the fake camera, accepting the sandbox's certificate (and only that one)."""
    if not CHROMIUM.exists():  # noqa: ASYNC240 - one stat before the first await
        pytest.skip(f"the WebRTC test needs Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("the WebRTC test needs the Python package playwright (pip install -e '.[test]')")
    pin = spki_hash(await asyncio.to_thread(served_certificate))
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=[*ARGS, f"--ignore-certificate-errors-spki-list={pin}"]
        )
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def opened(browser: Any, url: str) -> AsyncIterator[Any]:
    """The test page, in a browser context of its own with camera and microphone allowed."""
    context = await browser.new_context(permissions=["camera", "microphone"])
    try:
        page = await context.new_page()
        await page.goto(url)
        try:
            yield page
        finally:
            with contextlib.suppress(Exception):
                await page.evaluate("stop()")
    finally:
        await context.close()


# ---------------------------------------------------------------------------------------------
# ARI


class Ari:
    """The sandbox's ARI: REST calls and the events of app ``ivr``, kept in order."""

    def __init__(self, sandbox: Any, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.sandbox = sandbox
        self.http = http
        self.ws = ws
        self.events: list[Event] = []
        self._taken: set[int] = set()
        self._changed = asyncio.Condition()

    async def read(self) -> None:
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                async with self._changed:
                    self.events.append(json.loads(msg.data))
                    self._changed.notify_all()

    async def next(self, kind: str, match: Callable[[Event], bool] = lambda e: True, timeout: float = 15) -> Event:
        """The first event of this kind (that ``match`` accepts) not returned before."""
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for i, event in enumerate(self.events):
                    if i not in self._taken and event.get("type") == kind and match(event):
                        self._taken.add(i)
                        return event
                await self._changed.wait()

    async def request(self, method: str, path: str, **params: str) -> Any:
        url = f"{self.sandbox.base_url}{path}"
        async with self.http.request(method, url, params=params, headers=self.sandbox.auth_header) as resp:
            body = await resp.text()
            assert resp.status < 300, f"{method} {path} {params}: {resp.status} {body}"
            return json.loads(body) if body else None

    async def variable(self, channel: str, name: str) -> str:
        return (await self.request("GET", f"/channels/{channel}/variable", variable=name))["value"]

    async def hangup(self, channel: str) -> None:
        url = f"{self.sandbox.base_url}/channels/{channel}"
        async with self.http.delete(url, headers=self.sandbox.auth_header) as resp:
            assert resp.status in (204, 404), await resp.text()


@contextlib.asynccontextmanager
async def ari(sandbox: Any) -> AsyncIterator[Ari]:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(sandbox.ws_url, headers=sandbox.auth_header, heartbeat=20) as ws:
            client = Ari(sandbox, http, ws)
            reader = asyncio.create_task(client.read(), name="ari-events")
            try:
                yield client
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader


def stasis_start_of(endpoint: str) -> Callable[[Event], bool]:
    return lambda e: e["channel"]["name"].startswith(f"PJSIP/{endpoint}-")


# ---------------------------------------------------------------------------------------------
# The certificate


def test_the_wss_port_serves_the_sandbox_certificate_for_loopback(sandbox) -> None:
    pem = served_certificate()
    if not os.environ.get("IVR_SANDBOX_TLS_CERT"):
        cert, key = STATE / "tls" / "asterisk.crt", STATE / "tls" / "asterisk.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert spki_hash(pem) == spki_hash(cert.read_text()), "the WSS port serves another certificate"
        context = ssl.create_default_context(cafile=str(cert))
        for name in ("127.0.0.1", "localhost"):
            with socket.create_connection(("127.0.0.1", WSS_PORT), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname=name) as tls:
                    assert tls.version() in ("TLSv1.2", "TLSv1.3")
    status = sandbox.rx("http show status")
    assert f"HTTPS Server Enabled and Bound to 127.0.0.1:{WSS_PORT}" in status, status
    assert "/ws => Asterisk HTTP WebSocket" in status, status


# ---------------------------------------------------------------------------------------------
# Browsers


async def test_a_browser_video_call_to_the_echo_comes_back(sandbox, chromium, page_url) -> None:
    async with opened(chromium, page_url) as page:
        assert await page.evaluate("([ws, pw]) => start(ws, 'video-guest', pw, false)",
                                   [WSS, secret("video-guest-password")]) == "connected"
        await page.evaluate("call('video-echo', [])")
        await page.wait_for_function("state.confirmed || state.ended", timeout=15_000)
        assert await page.evaluate("state.ended") is None, await page.evaluate("state.log")
        flows = await page.evaluate("videoFlows(30, 20000)")
    video_in, video_out = flows["in"]["video"], flows["out"]["video"]
    assert video_in["frames"] > 0 and video_out["frames"] > 0, flows
    assert video_in["codec"] in ("video/VP8", "video/H264"), flows
    assert flows["in"]["audio"]["packets"] > 0 and flows["out"]["audio"]["packets"] > 0, flows
    print(f"\nvideo-echo: {flows}")


async def test_an_interpreter_registers_and_is_bridged_with_a_guest(sandbox, chromium, page_url) -> None:
    visit = uuid.uuid4().hex
    async with opened(chromium, page_url) as interp, opened(chromium, page_url) as guest, ari(sandbox) as a:
        assert await interp.evaluate("([ws, pw]) => start(ws, 'interp1', pw, true)",
                                     [WSS, account_password("interpreter-passwords", "interp1")]) == "registered"
        # The contact, rewritten to the WebSocket's source (the CLI cuts ";transport=ws" short).
        contacts = sandbox.rx("pjsip show contacts")
        assert re.search(r"Contact:\s+interp1/sip:\S+@127\.0\.0\.1:\d+;transport", contacts), contacts
        assert (await a.request("GET", "/endpoints/PJSIP/interp1"))["state"] == "online"
        assert await guest.evaluate("([ws, pw]) => start(ws, 'video-guest', pw, false)",
                                    [WSS, secret("video-guest-password")]) == "connected"

        # Without the header, then with it: the visit is Stasis' second argument.
        await guest.evaluate(f"call('{VIDEO_NUMBER}', [])")
        bare = await a.next("StasisStart", stasis_start_of("video-guest"))
        await a.hangup(bare["channel"]["id"])
        await guest.wait_for_function("state.ended !== null", timeout=10_000)
        await guest.evaluate(f"call('{VIDEO_NUMBER}', ['X-IVR-Visit: {visit}'])")
        start = await a.next("StasisStart", stasis_start_of("video-guest"))
        print(f"\nStasisStart args: without X-IVR-Visit {bare['args']}, with it {start['args']}")
        assert bare["args"] == ["video", ""], bare["args"]
        assert start["args"] == ["video", visit], start["args"]
        assert start["channel"]["dialplan"]["context"] == "ivr-video"
        guest_id = start["channel"]["id"]
        await a.request("POST", f"/channels/{guest_id}/answer")
        await guest.wait_for_function("state.confirmed", timeout=10_000)

        # Ring the interpreter as the engine does; the page answers.
        leg = await a.request("POST", "/channels", endpoint="PJSIP/interp1", app="ivr", appArgs="interpreter")
        await a.next("StasisStart", lambda e: e["channel"]["id"] == leg["id"])
        await interp.wait_for_function("state.confirmed", timeout=15_000)
        bridge = await a.request("POST", "/bridges", type="mixing")
        try:
            await a.request("POST", f"/bridges/{bridge['id']}/addChannel", channel=f"{guest_id},{leg['id']}")
            seen_by_guest = await guest.evaluate("videoFlows(30, 20000)")
            seen_by_interp = await interp.evaluate("videoFlows(30, 20000)")
            technology = (await a.request("GET", f"/bridges/{bridge['id']}"))["technology"]
            formats = {name: await a.variable(cid, "CHANNEL(videonativeformat)")
                       for name, cid in (("guest", guest_id), ("interpreter", leg["id"]))}
            print(f"bridge technology: {technology}; CHANNEL(videonativeformat): {formats}")
            print(f"guest sees: {seen_by_guest}\ninterpreter sees: {seen_by_interp}")
        finally:
            await a.request("DELETE", f"/bridges/{bridge['id']}")
            await a.hangup(guest_id)
            await a.hangup(leg["id"])
    assert technology == "simple_bridge", technology  # two parties, no mixing; media relayed as it is
    assert set(formats.values()) <= {"(vp8)", "(h264)"}, formats
    for seen in (seen_by_guest, seen_by_interp):
        assert seen["in"]["video"]["frames"] > 0 and seen["out"]["video"]["frames"] > 0, seen
        assert seen["in"]["audio"]["packets"] > 0, seen


# ---------------------------------------------------------------------------------------------
# A SIP video phone (SIPp)


def free_media_port() -> int:
    """An even port with itself and port + 2 free (SIPp's audio and video)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1] & ~1
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                a.bind(("127.0.0.1", base))
                b.bind(("127.0.0.1", base + 2))
                return base
        except OSError:
            continue
    raise AssertionError("no free UDP ports for SIPp")


async def video_call(number: str, work: Path) -> tuple[int, str]:
    """Run video_caller.xml once; its exit code and its log."""
    sipp = shutil.which("sipp")
    assert sipp, "sipp is not installed"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        sip_port = probe.getsockname()[1]
    log = work / "logs.log"
    proc = await asyncio.create_subprocess_exec(
        sipp, "127.0.0.1:5060", "-sf", str(VIDEO_CALLER), "-s", number, "-key", "caller", "01055550000",
        "-m", "1", "-l", "1", "-i", "127.0.0.1", "-p", str(sip_port), "-mi", "127.0.0.1",
        "-mp", str(free_media_port()), "-nostdin", "-aa", "-trace_logs", "-log_file", str(log),
        "-trace_msg", "-message_file", str(work / "messages.log"), "-timeout", "40s", "-timeout_error",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        cwd=work,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 50)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    text = log.read_text(errors="replace") if log.exists() else ""
    return proc.returncode or 0, text + err.decode(errors="replace")


async def test_a_sip_video_phone_gets_its_video_accepted(sandbox) -> None:
    async with ari(sandbox) as a:
        with tempfile.TemporaryDirectory(prefix="ivr-video-sipp-") as tmp:
            call = asyncio.create_task(video_call("15771000", Path(tmp)))
            try:
                start = await a.next("StasisStart", stasis_start_of("sipp"))
                cid = start["channel"]["id"]
                offered = await a.variable(cid, "CHANNEL(videonativeformat)")
                await a.request("POST", f"/channels/{cid}/answer")
                answered = await a.variable(cid, "CHANNEL(videonativeformat)")
                audio = await a.variable(cid, "CHANNEL(audionativeformat)")
                await a.next("StasisEnd", lambda e: e["channel"]["id"] == cid)  # the phone hangs up after 2 s
                code, log = await asyncio.wait_for(call, 30)
            finally:
                if not call.done():
                    call.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await call
            messages = (Path(tmp) / "messages.log").read_text(errors="replace")

        # An audio-only caller, for comparison: answered as before, no video in the answer.
        plain = asyncio.create_task(place_call("15771000", caller="01012345678", hangup_after=1, max_duration=20))
        try:
            start = await a.next("StasisStart", stasis_start_of("sipp"))
            pid = start["channel"]["id"]
            await a.request("POST", f"/channels/{pid}/answer")
            plain_video = await a.variable(pid, "CHANNEL(videonativeformat)")
            result = await asyncio.wait_for(plain, 20)
        finally:
            if not plain.done():
                plain.cancel()
    print(f"\nCHANNEL(videonativeformat): video phone offered {offered!r}, answered {answered!r} "
          f"(audio {audio!r}); audio-only phone {plain_video!r}")
    port = re.search(r"IVR-VIDEO answer-video-port (\d+)", log)
    assert code == 0 and port, log + messages
    assert int(port.group(1)) > 0, log
    line = re.search(r"IVR-VIDEO answer-video-line (.*)", log)
    assert line and re.search(r" RTP/AVP (96|97)\b", line.group(1)), log
    assert "IVR-RESULT local-bye" in log, log
    # ARI shows the video formats in parentheses: "(vp8|h264)" offered, one of them once
    # answered; "(nothing)" for a caller without video.
    assert offered == "(vp8|h264)", offered
    assert answered in ("(vp8)", "(h264)"), answered
    assert plain_video == "(nothing)", plain_video
    assert result.answered and result.outcome == "local-bye", result.describe() + "\n" + result.errors
    answer = result.messages.split("SIP/2.0 200 OK", 1)[-1].split("\n\n\n", 1)[0]
    assert "m=audio" in answer and "m=video" not in answer, result.messages
