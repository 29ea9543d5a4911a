"""The measured side, in its own process: the real engine, or the hand-written baseline loop.

``engine``: ``Engine`` + ``AriAdapter`` + the sample flows + an SQLite store in a temporary
folder, wired as ``ivr.app.serve`` wires them (logs at warning and above only).

``baseline``: the simplest hand-written ARI loop on plain aiohttp — one WebSocket, one dict of
call states, one task per REST request — that sends exactly the requests the engine sends for
the benchmark's scripted path, with no flow language, no store and no logging.

The orchestrator asks for samples over a pipe: process CPU (all threads, ``RUSAGE_SELF``),
VmRSS, calls handled, live calls and this loop's lag.
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
APP = "ivr"
USERNAME = "ivr"
PASSWORD = "secret"


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class LagMonitor:
    """How late a 50 ms sleep wakes up: the time an event waits before the loop reaches it."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        period = 0.05
        while True:
            before = time.monotonic()
            await asyncio.sleep(period)
            self.samples.append(time.monotonic() - before - period)

    def take(self) -> list[float]:
        samples, self.samples = self.samples, []
        return samples


# -- the baseline ---------------------------------------------------------------------------

WELCOME, MAIN_MENU, CERTIFICATES, CONNECTING, HOLD = (
    f"sound:ivr/ko/{p}" for p in ("welcome", "main_menu", "certificates_menu",
                                   "connecting_agent", "queue_hold"))


class Baseline:
    """Answer, welcome, menu; "2" stops the menu and plays certificates; "0" plays
    connecting_agent; then queue_hold; then hang up."""

    def __init__(self, base_url: str, max_connections: int) -> None:
        self.base_url = base_url
        self.max_connections = max_connections
        self.calls: dict[str, list[Any]] = {}   # channel id -> [step, current playback id, n]
        self.tasks: set[asyncio.Task[None]] = set()
        self.calls_handled = 0
        self.session: aiohttp.ClientSession | None = None
        self.connected = asyncio.Event()

    @property
    def live_calls(self) -> int:
        return len(self.calls)

    async def run(self) -> None:
        import base64
        import json

        auth = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        async with aiohttp.ClientSession(
                headers={"Authorization": auth},
                connector=aiohttp.TCPConnector(limit=self.max_connections)) as session:
            self.session = session
            async with session.ws_connect(self.base_url + "/events", params={"app": APP},
                                          max_msg_size=0) as ws:
                self.connected.set()
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        self.on_event(json.loads(msg.data))

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def request(self, method: str, path: str, params: dict[str, str] | None = None) -> None:
        assert self.session is not None
        async with self.session.request(method, self.base_url + path, params=params) as resp:
            await resp.read()

    async def play(self, channel_id: str, uri: str) -> None:
        state = self.calls.get(channel_id)
        if state is None:
            return
        state[2] += 1
        state[1] = f"{channel_id}-{state[2]}"
        await self.request("POST", f"/channels/{channel_id}/play/{state[1]}",
                           {"media": uri, "lang": "ko"})

    async def answer_and_welcome(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")
        await self.play(channel_id, WELCOME)

    async def barge_in(self, channel_id: str, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")
        await self.play(channel_id, CERTIFICATES)

    async def hangup(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}", {"reason": "normal"})
        self.calls_handled += 1

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "StasisStart":
            channel_id = event["channel"]["id"]
            self.calls[channel_id] = ["welcome", "", 0]
            self.spawn(self.answer_and_welcome(channel_id))
        elif kind == "PlaybackFinished":
            playback = event["playback"]
            channel_id = playback["target_uri"][len("channel:"):]
            state = self.calls.get(channel_id)
            if state is None or playback["id"] != state[1]:
                return
            uri = playback["media_uri"]
            if uri == WELCOME:
                state[0] = "menu"
                self.spawn(self.play(channel_id, MAIN_MENU))
            elif uri == CONNECTING:
                self.spawn(self.play(channel_id, HOLD))
            elif uri == HOLD:
                self.spawn(self.hangup(channel_id))
        elif kind == "ChannelDtmfReceived":
            channel_id = event["channel"]["id"]
            state = self.calls.get(channel_id)
            if state is None:
                return
            digit = event["digit"]
            if state[0] == "menu" and digit == "2":
                state[0] = "certificates"
                self.spawn(self.barge_in(channel_id, state[1]))
            elif state[0] == "certificates" and digit == "0":
                state[0] = "agent"
                self.spawn(self.play(channel_id, CONNECTING))
        elif kind == "StasisEnd":
            self.calls.pop(event["channel"]["id"], None)


# -- the process ----------------------------------------------------------------------------

def main(conn: Connection, base_url: str, mode: str, max_connections: int,
         max_calls: int) -> None:
    """Process entry point (spawned by the orchestrator)."""
    from engine_load import raise_fd_limit

    raise_fd_limit()
    asyncio.run(_main(conn, base_url, mode, max_connections, max_calls))


async def _main(conn: Connection, base_url: str, mode: str, max_connections: int,
                max_calls: int) -> None:
    loop = asyncio.get_running_loop()
    lag = LagMonitor()
    done = loop.create_future()
    profiler: Any = None
    counter: Any = None      # has .calls_handled and .live_calls

    def sample() -> dict[str, Any]:
        return {"t": time.monotonic(), "cpu": cpu_seconds(), "rss_kib": rss_kib(),
                "calls_handled": counter.calls_handled, "live_calls": counter.live_calls,
                "lag": lag.take()}

    def readable() -> None:
        nonlocal profiler
        msg = conn.recv()
        what = msg[0]
        if what == "stop":
            if not done.done():
                done.set_result(None)
            return
        if what == "sample":
            conn.send(sample())
        elif what == "profile_start":
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
            conn.send("ok")
        elif what == "profile_stop":
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(msg[1])
                profiler = None
            conn.send("ok")
        else:
            conn.send({"error": f"unknown command {what!r}"})

    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        if mode == "baseline":
            baseline = Baseline(base_url, max_connections)
            counter = baseline
            runner = loop.create_task(baseline.run())
            await asyncio.wait_for(baseline.connected.wait(), 20)
            lag.start()
            loop.add_reader(conn.fileno(), readable)
            conn.send({"ready": True})
            try:
                await done
            finally:
                loop.remove_reader(conn.fileno())
                runner.cancel()
            return

        from ivr.app import Engine
        from ivr.ari.dispatcher import AriAdapter
        from ivr.config import AriConfig, Config, EngineConfig, LogConfig
        from ivr.flow.loader import load_flows
        from ivr.logs import configure_logging
        from ivr.prompts import load_catalogue
        from ivr.store import open_store

        # The engine logs every call at info; the bench keeps warnings and errors only.
        configure_logging("console", "warning")
        config = Config(
            ari=AriConfig(url=base_url, username=USERNAME, password=PASSWORD, app=APP),
            flows=(REPO / "flows",), prompts=REPO / "prompts",
            store_url=f"sqlite:///{tmp}/ivr.db",
            log=LogConfig(level="warning"), engine=EngineConfig(max_calls=max_calls))
        catalogue = load_catalogue(config.prompts / "catalog.yaml")
        flowset = load_flows(list(config.flows), catalogue)
        async with open_store(config.store_url) as store:
            engine = Engine(config, store, catalogue, flowset)
            counter = engine
            async with AriAdapter(config.ari.url, config.ari.username, config.ari.password,
                                  config.ari.app, on_new_call=engine.on_new_call,
                                  max_connections=max_connections) as ari:
                await ari.wait_connected(20)
                lag.start()
                loop.add_reader(conn.fileno(), readable)
                conn.send({"ready": True})
                try:
                    await done
                finally:
                    loop.remove_reader(conn.fileno())
                    await ari.close(grace=1.0)
