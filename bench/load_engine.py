"""The measured side, in its own process: the real engine, or the hand-written baseline loop.

``engine``: ``Engine`` + ``AriAdapter`` + the sample flows + an SQLite store in a temporary
folder, wired as ``ivr.app.serve`` wires them (logs at warning and above only).

With the ``peak-day`` shape the engine also runs its queues, wired as ``serve`` wires them
(``Switchboard``, ``_start_queues``: the queues' event log, the wallboard's figures): one queue
``general`` (announcements every 45 s, ``max_wait`` an hour) and one agent, logged in and
paused, so that callers wait (a queue nobody is logged in to turns them away at once).

``baseline``: the simplest hand-written ARI loop on plain aiohttp — one WebSocket, one dict of
call states, one task per REST request — that sends exactly the requests the engine sends for
the benchmark's scripted paths (peak-day: one holding bridge with music, a timer per waiting
caller for its announcements), with no flow language, no store and no logging.

``loop`` (``asyncio`` | ``uvloop``) is the event loop this process runs on, made as ``ivr run``
makes it (``ivr.app.loop_factory``); ``json`` (``orjson`` | ``stdlib``) how ARI's JSON is
decoded (``IVR_JSON``, read by ``ivr.ari.jsondecode`` at import; the baseline decodes alike).

The orchestrator asks for samples over a pipe: process CPU (all threads, ``RUSAGE_SELF``),
VmRSS, calls handled, live calls, calls shed (``ivr_calls_shed_total``) and this loop's lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import resource
import tempfile
import time
from collections.abc import Callable
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

WELCOME, MAIN_MENU, CERTIFICATES, CONNECTING, HOLD, ISSUE_INFO, AFTER_INFO, GOODBYE = (
    f"sound:ivr/ko/{p}" for p in ("welcome", "main_menu", "certificates_menu",
                                   "connecting_agent", "queue_hold", "certificates_issue_info",
                                   "after_info", "goodbye"))
# What the baseline says to a waiting caller: about what the engine says to the thousandth.
ANNOUNCEMENT = ",".join(f"sound:ivr/ko/{p}" for p in (
    "queue_position_pre", "num_1000", "num_200", "num_30", "queue_position_post"))
ANNOUNCE_FIRST, ANNOUNCE_EVERY = 3.0, 45.0


class Baseline:
    """Answer, welcome, menu; "2" stops the menu and plays certificates; "0" plays
    connecting_agent; then queue_hold; then hang up.  ``queues`` (peak-day): after
    connecting_agent the caller joins one holding bridge (music on hold) and hears an
    announcement 3 s later and every 45 s after the previous one ended, until it hangs up;
    "1" after certificates plays certificates_issue_info, after_info, then on "1" goodbye and
    hangs up."""

    def __init__(self, base_url: str, max_connections: int, queues: bool = False,
                 loads: Callable[[str], Any] | None = None) -> None:
        import json

        self.base_url = base_url
        self.max_connections = max_connections
        self.queues = queues
        self.loads = loads or json.loads
        self.calls: dict[str, list[Any]] = {}   # channel id -> [step, current playback id, n]
        self.timers: dict[str, asyncio.TimerHandle] = {}   # the next announcement, per caller
        self.bridge: asyncio.Future[str] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.calls_handled = 0
        self.session: aiohttp.ClientSession | None = None
        self.connected = asyncio.Event()

    @property
    def live_calls(self) -> int:
        return len(self.calls)

    async def run(self) -> None:
        import base64

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
                        self.on_event(self.loads(msg.data))

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

    async def holding_bridge(self) -> str:
        """The one holding bridge, made (with its music) by the first caller who needs it."""
        if self.bridge is None:
            self.bridge = asyncio.get_running_loop().create_future()
            await self.request("POST", "/bridges", {"type": "holding", "name": "ivr-holding",
                                                    "bridgeId": "baseline-holding"})
            await self.request("POST", "/bridges/baseline-holding/moh", {"mohClass": "default"})
            self.bridge.set_result("baseline-holding")
        return await self.bridge

    async def enter_queue(self, channel_id: str) -> None:
        bridge = await self.holding_bridge()
        await self.request("POST", f"/bridges/{bridge}/addChannel", {"channel": channel_id})
        self.announce_later(channel_id, ANNOUNCE_FIRST)

    def announce_later(self, channel_id: str, delay: float) -> None:
        if channel_id in self.calls:
            self.timers[channel_id] = asyncio.get_running_loop().call_later(
                delay, lambda: self.spawn(self.play(channel_id, ANNOUNCEMENT)))

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
            elif uri == CONNECTING and self.queues:
                state[0] = "queue"
                self.spawn(self.enter_queue(channel_id))
            elif state[0] == "queue":
                self.announce_later(channel_id, ANNOUNCE_EVERY)
            elif uri == CONNECTING:
                self.spawn(self.play(channel_id, HOLD))
            elif uri == ISSUE_INFO:
                state[0] = "after_info"
                self.spawn(self.play(channel_id, AFTER_INFO))
            elif uri in (HOLD, GOODBYE):
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
            elif state[0] == "certificates" and digit == "1":
                state[0] = "info"
                self.spawn(self.play(channel_id, ISSUE_INFO))
            elif state[0] == "after_info" and digit == "1":
                state[0] = "goodbye"
                self.spawn(self.play(channel_id, GOODBYE))
        elif kind == "StasisEnd":
            channel_id = event["channel"]["id"]
            state = self.calls.pop(channel_id, None)
            timer = self.timers.pop(channel_id, None)
            if timer is not None:
                timer.cancel()
            if state is not None and state[0] == "queue":
                self.calls_handled += 1          # a waiting caller hung up: its call is over


# -- the process ----------------------------------------------------------------------------

def main(conn: Connection, base_url: str, mode: str, max_connections: int,
         max_calls: int, shape: str = "short", event_loop: str = "asyncio",
         json_backend: str = "orjson", gc_young: int | None = None) -> None:
    """Process entry point (spawned by the orchestrator); ``gc_young`` None: the engine's
    default ``engine.gc_young``."""
    from engine_load import raise_fd_limit

    raise_fd_limit()
    if json_backend == "stdlib":
        os.environ["IVR_JSON"] = "stdlib"       # before ivr.ari.jsondecode is imported
    from ivr.app import loop_factory

    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        runner.run(_main(conn, base_url, mode, max_connections, max_calls, shape, gc_young))


class GcPauses:
    """How long the collector stops the process, per generation (``gc.callbacks``): a full
    collection walks every tracked object, so its pause grows with the live calls."""

    def __init__(self) -> None:

        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._t0 = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._t0)

    def take(self) -> dict[int, list[float]]:
        pauses, self.pauses = self.pauses, {0: [], 1: [], 2: []}
        return pauses


def heap_growth(heap: dict[str, Any], top: int) -> list[tuple[str, float, int]]:
    """What the traced heap grew by since ``heap_start``, by the line that allocated it
    (``tracemalloc``, with the frames asked for): the ``top`` largest, as
    (where, KiB, blocks), after the sum of every line; tracing stops here."""
    import tracemalloc

    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = snapshot.filter_traces(filters).compare_to(heap.pop("base").filter_traces(filters),
                                                       "traceback")
    grown = sorted(stats, key=lambda s: -s.size_diff)[:top]
    total = ("(all lines)", sum(s.size_diff for s in stats) / 1024, sum(s.count_diff for s in stats))
    # A traceback runs from the oldest frame to the allocating one: caller -> callee.
    return [total] + [(" -> ".join(f"{Path(f.filename).name}:{f.lineno}" for f in s.traceback),
             s.size_diff / 1024, s.count_diff) for s in grown]


class _Watch:
    """The engine's side of one call the orchestrator follows (the flooding call)."""

    def __init__(self, calls: Callable[[], Any]) -> None:
        self.calls = calls            # () -> the adapter's live calls, by channel id
        self.call: Any = None

    def find(self, channel_id: str) -> bool:
        self.call = self.call or self.calls().get(channel_id)
        return self.call is not None

    def result(self) -> dict[str, Any]:
        call = self.call
        if call is None:
            return {"found": False}
        return {"found": True, "keys_dropped": call.keys_dropped, "hung_up": call.hung_up}


async def _main(conn: Connection, base_url: str, mode: str, max_connections: int,
                max_calls: int, shape: str, gc_young: int | None = None) -> None:
    loop = asyncio.get_running_loop()
    lag = LagMonitor()
    gc_pauses = GcPauses()
    done = loop.create_future()
    profiler: Any = None
    counter: Any = None      # has .calls_handled and .live_calls
    shed: Callable[[], dict[str, float]] = dict
    watch = _Watch(dict)
    heap: dict[str, Any] = {}
    from ivr.ari import jsondecode

    def sample() -> dict[str, Any]:
        return {"t": time.monotonic(), "cpu": cpu_seconds(), "rss_kib": rss_kib(),
                "calls_handled": counter.calls_handled, "live_calls": counter.live_calls,
                "lag": lag.take(), "gc": gc_pauses.take(), "shed": shed(),
                "json": jsondecode.BACKEND,
                "loop": type(loop).__module__.split(".")[0], "gc_threshold": gc.get_threshold()}

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
        elif what == "heap_start":
            import tracemalloc

            tracemalloc.start(msg[1])
            heap["base"] = tracemalloc.take_snapshot()
            conn.send("ok")
        elif what == "heap":
            kinds: dict[str, int] = {}
            for task in asyncio.all_tasks():
                kind = ".".join(task.get_name().split(".")[:2])
                kinds[kind] = kinds.get(kind, 0) + 1
            conn.send((heap_growth(heap, msg[1]), kinds))
        elif what == "watch":
            conn.send(watch.find(msg[1]))
        elif what == "watched":
            conn.send(watch.result())
        else:
            conn.send({"error": f"unknown command {what!r}"})

    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        if mode == "baseline":
            baseline = Baseline(base_url, max_connections, queues=shape == "peak-day",
                                loads=jsondecode.loads)
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

        from ivr.app import Engine, settle_heap
        from ivr.ari.dispatcher import AriAdapter
        from ivr.config import AcdConfig, AriConfig, Config, EngineConfig, LogConfig
        from ivr.flow.loader import load_flows
        from ivr.logs import configure_logging
        from ivr.prompts import load_catalogue
        from ivr.store import open_store

        # The engine logs every call at info; the bench keeps warnings and errors only.
        configure_logging("console", "warning")
        acd = AcdConfig()
        if shape == "peak-day":
            from ivr.acd.model import AgentSpec, QueueSpec

            acd = AcdConfig(queues=(QueueSpec("general", max_wait=3600.0, announce_every=45.0),),
                            agents=(AgentSpec(id=AGENT, name="Agent", endpoint="PJSIP/agent1"),),
                            auto_login=frozenset({AGENT}))
        config = Config(
            ari=AriConfig(url=base_url, username=USERNAME, password=PASSWORD, app=APP),
            flows=(REPO / "flows",), prompts=REPO / "prompts",
            store_url=f"sqlite:///{tmp}/ivr.db",
            log=LogConfig(level="warning"), engine=EngineConfig(max_calls=max_calls), acd=acd)
        catalogue = load_catalogue(config.prompts / "catalog.yaml")
        flowset = load_flows(list(config.flows), catalogue)
        async with open_store(config.store_url) as store, contextlib.AsyncExitStack() as stack:
            if gc_young is not None:
                config = dataclasses.replace(
                    config, engine=dataclasses.replace(config.engine, gc_young=gc_young))
            engine = Engine(config, store, catalogue, flowset)
            counter = engine

            def shed_now() -> dict[str, float]:
                # The counter itself: the registry's get_sample_value would collect every
                # metric, the queue gauges' walk of thousands of callers included.
                shed = engine.metrics.shed
                return {why: shed.labels(why)._value.get() for why in ("loop_lag", "max_calls")}

            shed = shed_now
            if shape == "peak-day":
                board = await _serve_with_queues(config, engine, stack)
                watch = _Watch(lambda: board.adapters[0].calls)
            else:
                ari = await stack.enter_async_context(AriAdapter(
                    config.ari.url, config.ari.username, config.ari.password, config.ari.app,
                    on_new_call=engine.on_new_call, max_connections=max_connections))
                stack.push_async_callback(ari.close, 1.0)
                await ari.wait_connected(20)
                watch = _Watch(lambda: ari.calls)
                # As serve(): while the loop lags past engine.max_loop_lag, new calls are shed,
                # and the start-up heap is frozen.
                engine.lag.start()
                stack.callback(engine.lag.stop)
                settle_heap(config.engine.gc_young)
            lag.start()
            loop.add_reader(conn.fileno(), readable)
            conn.send({"ready": True})
            try:
                await done
            finally:
                loop.remove_reader(conn.fileno())


AGENT = "agent1"


async def _serve_with_queues(config: Any, engine: Any, stack: contextlib.AsyncExitStack) -> Any:
    """Steps 4, 5 and 8 of ``ivr.app.serve`` (ARI clients, queues, the event stream), with
    the one agent paused before the first call, so that callers wait."""
    from ivr.acd.service import RESUME_WAIT
    from ivr.app import _start_queues, _switchboard, settle_heap

    board = _switchboard(config, engine)
    await board.open()
    stack.push_async_callback(board.close, 1.0)
    queues = await _start_queues(config, board, engine, stack)
    assert queues is not None
    service = queues[0]
    service.acd.pause(AGENT, "bench: nobody answers", service.clock())
    engine.lag.start()
    stack.callback(engine.lag.stop)
    settle_heap(config.engine.gc_young)
    board.start()
    await board.wait_connected(20)
    await board.wait_ready(10)
    service.settle_restored(after=RESUME_WAIT)
    return board
