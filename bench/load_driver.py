"""The load driver: a ``FakeAri`` whose callers walk scripted paths, in its own process.

It starts calls to 15771000 at a steady rate until the target number of live calls is
reached, then replaces every call that ends so the level holds (``peak-day``: then calls
arrive at the day's rate, whatever becomes of the others).  With the default shape
(``short``) every call does the same:

    StasisStart                      → engine answers            (latency sample)
    the language menu (the engine's sample flow; the baseline has none): its prompts end
    (1 s each), key "1" at once      → engine plays welcome      (latency sample)
    play welcome, ends by itself     → engine plays main_menu    (latency sample)
    key "2" during main_menu         → engine stops the prompt   (latency sample, barge-in)
    play certificates_menu, ends; a moment later key "0"
                                     → engine plays connecting_agent (latency sample)
    connecting_agent ends            → engine plays queue_hold   (latency sample)
    queue_hold ends                  → engine hangs up           (latency sample)

A call is *completed* when the engine hangs up after exactly that sequence of prompts (and
the barge-in stop); anything else, or no hang-up within the deadline, is *failed*.

The ``peak-day`` shape (the engine runs its queues): most calls (``queue``) walk the same path
up to connecting_agent, whose end makes the engine put them in the holding bridge (music on
hold: ``POST /bridges/…/moh`` once, ``addChannel`` per caller, latency sample); there they hear
an announcement of their place (a playlist starting with ``queue_position_pre`` or
``queue_next``) 3 s after joining and then every ``announce_every`` seconds after the previous
one ended, and hang up after their wait (exponential, capped at four times its mean): completed
when nothing else was asked of them.  The others (``self``: self-service) press "1" in the
certificates menu, hear certificates_issue_info, the after_info menu, "1", goodbye, and the
engine hangs up.  Announcements are not answers to an event: their lateness (the request's
arrival after it was due) is a figure of its own.

``flood``: one more call (``flood-1``), started when the window opens, sends ``N``
``ChannelDtmfReceived`` as fast as the socket takes them (batches of ``FLOOD_BATCH``, each
written before the next, so other calls' events interleave); it counts neither as completed
nor as failed.

A play whose media is a list (``media=a,b,c``, one playback) counts as those prompts in
order, and ends after the sum of their durations (``FakeAri``).

Latency is taken on this side only, with ``time.monotonic()``: from the moment the event is
handed to the socket writer to the moment the engine's resulting request reaches a handler.
The orchestrator (``engine_load.py``) talks to this process over a pipe.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import random
import resource
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import web

from ivr.testing.fake_ari import FakeAri

NUMBER = "15771000"


def media(prompt: str) -> str:
    return f"sound:ivr/ko/{prompt}"


WELCOME = media("welcome")
MAIN_MENU = media("main_menu")
CERTIFICATES = media("certificates_menu")
CONNECTING = media("connecting_agent")
HOLD = media("queue_hold")

ISSUE_INFO = media("certificates_issue_info")
AFTER_INFO = media("after_info")
GOODBYE = media("goodbye")

PATHS = {
    "short": (WELCOME, MAIN_MENU, CERTIFICATES, CONNECTING, HOLD),
    "queue": (WELCOME, MAIN_MENU, CERTIFICATES, CONNECTING),
    "self": (WELCOME, MAIN_MENU, CERTIFICATES, ISSUE_INFO, AFTER_INFO, GOODBYE),
}
PATH = PATHS["short"]
LANGUAGE_MENU = "/choose_language"    # the sample flow asks for a language first: "1" is Korean
ANNOUNCEMENTS = ("/queue_position_pre", "/queue_next")   # how a place-in-line announcement starts
# Prompts whose natural end must make the engine send something (a latency sample).
_ANSWERED_ENDS = frozenset({WELCOME, CONNECTING, HOLD, ISSUE_INFO, GOODBYE})
# The key pressed after the certificates menu: the agent, or the self-service "issue" option.
_AFTER_CERTIFICATES = {"short": "0", "queue": "0", "self": "1"}
FLOOD_ID = "flood-1"
FLOOD_BATCH = 100
CAP = 4.0                             # a queue wait is at most this many times its mean


@dataclasses.dataclass(frozen=True)
class Script:
    """Seconds.  ``scale`` stretches every figure (``--quick`` uses shorter calls)."""

    welcome: float = 3.0
    main_menu: float = 4.0          # the whole menu prompt; the caller barges in before its end
    press_menu_after: float = 2.0   # "2" this long after the menu prompt started
    certificates: float = 3.0
    press_agent_after: float = 1.0  # "0" this long after the certificates prompt ended
    connecting: float = 2.0
    hold: float = 3.0
    issue_info: float = 4.0         # self-service: the certificates_issue_info prompt
    after_info: float = 3.0         # … the after_info menu prompt
    press_after_info: float = 0.5   # "1" this long after after_info ended
    goodbye: float = 2.0
    scale: float = 1.0

    def s(self, value: float) -> float:
        return value * self.scale

    @property
    def call_seconds(self) -> float:
        """How long one call lasts when the engine answers at once."""
        return self.s(self.welcome + self.press_menu_after + self.certificates
                      + self.press_agent_after + self.connecting + self.hold)

    @property
    def to_queue_seconds(self) -> float:
        """From StasisStart to the holding bridge (engine: plus the language menu, 4 s)."""
        return self.s(self.welcome + self.press_menu_after + self.certificates
                      + self.press_agent_after + self.connecting)

    @property
    def self_service_seconds(self) -> float:
        return self.s(self.welcome + self.press_menu_after + self.certificates
                      + self.press_agent_after + self.issue_info + self.after_info
                      + self.press_after_info + self.goodbye)

    def durations(self) -> dict[str, float | None]:
        return {WELCOME: self.s(self.welcome), MAIN_MENU: self.s(self.main_menu),
                CERTIFICATES: self.s(self.certificates), CONNECTING: self.s(self.connecting),
                HOLD: self.s(self.hold), ISSUE_INFO: self.s(self.issue_info),
                AFTER_INFO: self.s(self.after_info), GOODBYE: self.s(self.goodbye)}


@dataclasses.dataclass(frozen=True)
class Shape:
    """What calls the driver makes.  ``short``: every call the scripted short path.
    ``peak-day``: a ``self_share`` of self-service calls, the rest wait in the queue
    ``queue_wait`` seconds on average (exponential, at most ``CAP`` times that)."""

    name: str = "short"
    self_share: float = 0.0
    queue_wait: float = 0.0
    announce_every: float = 45.0    # the engine's queue setting (QueueSpec.announce_every)
    first_announcement: float = 3.0  # ivr.acd.service.FIRST_ANNOUNCEMENT

    @property
    def queues(self) -> bool:
        return self.name == "peak-day"


LANGUAGE_MENU_SECONDS = 4.0           # the engine's language menu: four prompts of 1 s


def peak_wait(script: Script, level: int, rate: float, self_share: float) -> float:
    """The mean queue wait that holds ``level`` live calls with ``rate`` new calls a second
    (Little's law: level = rate × mean call length)."""
    mean_call = level / rate
    queue_call = (mean_call - self_share * (script.self_service_seconds + LANGUAGE_MENU_SECONDS)) \
        / (1.0 - self_share)
    return max(1.0, queue_call - script.to_queue_seconds - LANGUAGE_MENU_SECONDS)


class _Call:
    __slots__ = ("id", "started", "pending", "pending_kind", "plays", "stopped", "bad",
                 "menu_playback", "kind", "path", "wait", "deadline", "bridged", "due",
                 "announcements", "announcing")

    def __init__(self, channel_id: str, now: float, kind: str, wait: float,
                 deadline: float) -> None:
        self.id = channel_id
        self.started = now
        self.pending = now                 # when the event awaiting an answer was sent
        self.pending_kind = "StasisStart"
        self.plays = 0                     # prompts of its path played so far, in order
        self.stopped = False               # the barge-in stop arrived
        self.bad: str | None = None        # why the call went off the path
        self.menu_playback = ""            # the id of its main_menu playback
        self.kind = kind                   # short | queue | self | flood
        self.path = PATHS.get(kind, ())
        self.wait = wait                   # queue: seconds in the holding bridge
        self.deadline = deadline           # given up on (failed) after this
        self.bridged = 0.0                 # when it entered the holding bridge
        self.due = 0.0                     # when its next announcement is due
        self.announcements = 0
        self.announcing = ""               # the playback id of the announcement playing


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class LoadDriver(FakeAri):
    def __init__(self, script: Script, shape: Shape = Shape(), seed: int = 1) -> None:
        super().__init__(record=False, durations=script.durations(), playback_delay=1.0)
        self.script = script
        self.shape = shape
        self.random = random.Random(seed)
        self.live: dict[str, _Call] = {}
        self.menu_playbacks: dict[str, _Call] = {}   # main_menu playback id -> its call
        self._serial = 0
        self.level = 0
        self.phase = "idle"                # idle | ramp | hold | drain
        self.rate = 1.0
        self.arrivals = 0.0                # peak-day: new calls a second once the level is reached
        self.hold_t0 = 0.0
        self.hold_started = 0
        self.ramp_t0 = 0.0
        self.ramp_started = 0
        self.deadline = script.call_seconds + 30.0
        self.held: asyncio.Future[dict[str, Any]] | None = None
        # whole run
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.failures: Counter[str] = Counter()
        self.peak = 0
        # the measured window
        self.window = False
        self.w_latency: list[float] = []
        self.w_by_kind: dict[str, list[float]] = {}
        self.w_completed = 0
        self.w_failed = 0
        self.w_started = 0
        self.w_live: list[int] = []
        self.w_lag: list[float] = []
        self.w_announce: list[float] = []      # announcement lateness (s)
        self.w_t0 = 0.0
        self.w_cpu0 = 0.0
        self.kinds: Counter[str] = Counter()   # calls started, by kind
        self.flooded: dict[str, Any] = {}

    # -- calls ---------------------------------------------------------------------------------

    def _start_one(self, kind: str | None = None, channel_id: str | None = None) -> None:
        self._serial += 1
        channel_id = channel_id or f"load-{self._serial}"
        caller = f"010{self._serial % 100_000_000:08d}"
        channel = self.add_channel(caller=caller, exten=NUMBER, channel_id=channel_id)
        now = time.monotonic()
        wait = 0.0
        shape = self.shape
        if kind is None:
            if not shape.queues:
                kind = "short"
            elif self.random.random() < shape.self_share:
                kind = "self"
            else:
                kind = "queue"
                wait = min(self.random.expovariate(1.0 / shape.queue_wait),
                           CAP * shape.queue_wait)
        self.live[channel_id] = _Call(channel_id, now, kind, wait,
                                      now + self.deadline + wait)
        if kind != "flood":
            self.started += 1
            self.kinds[kind] += 1
            if self.window:
                self.w_started += 1
        self.emit(self.event("StasisStart", channel=channel, args=[]))

    def _caller_hangs_up(self, call: _Call) -> None:
        """The caller hangs up (Asterisk's order for a bridged channel: the hang-up request,
        leaving the bridge, StasisEnd, ChannelDestroyed)."""
        self.live.pop(call.id, None)
        self._forget_menu(call)
        channel = self.channels.pop(call.id, None)
        if channel is None:
            return
        self._end_playbacks_of(call.id)
        self.emit(self.event("ChannelHangupRequest", channel=channel, cause=16))
        for bridge in self.bridges.values():
            if call.id in bridge["channels"]:
                bridge["channels"].remove(call.id)
                self.emit(self.event("ChannelLeftBridge", bridge=bridge, channel=channel))
        self.emit(self.event("StasisEnd", channel=channel))
        self.emit(self.event("ChannelDestroyed", channel=channel, cause=16,
                             cause_txt="Normal Clearing"))

    def _queue_wait_over(self, channel_id: str) -> None:
        """A waiting caller's patience ran out: it hangs up, the call completed as scripted."""
        call = self.live.get(channel_id)
        if call is None:
            return
        if call.kind != "flood":
            heard = time.monotonic() - call.bridged > self.shape.first_announcement + 2.0
            if call.bad is None and heard and not call.announcements:
                call.bad = "no announcement in the queue"
            self._end(call, call.bad)
        self._caller_hangs_up(call)

    async def _flood(self, channel_id: str, count: int) -> None:
        """``count`` keys on one call, in batches, each batch written before the next."""
        channel = self.channels.get(channel_id)
        t0 = time.monotonic()
        sent = 0
        while channel is not None and sent < count:
            for _ in range(min(FLOOD_BATCH, count - sent)):
                self.emit(self.event("ChannelDtmfReceived", channel=channel, digit="5",
                                     duration_ms=100))
            sent += min(FLOOD_BATCH, count - sent)
            await self.flush()
            channel = self.channels.get(channel_id)
        self.flooded = {"sent": sent, "seconds": time.monotonic() - t0}

    def _answered(self, call: _Call, kind: str) -> None:
        """A request of the engine arrived for ``call``: take the latency sample, if any."""
        if call.pending:
            latency = time.monotonic() - call.pending
            call.pending = 0.0
            if self.window:
                self.w_latency.append(latency)
                self.w_by_kind.setdefault(call.pending_kind, []).append(latency)
        elif call.bad is None and kind != "play":
            # Only the prompt after the barge-in stop follows a response instead of an event.
            call.bad = f"unprompted {kind}"

    def _press(self, channel_id: str, digit: str) -> None:
        call = self.live.get(channel_id)
        channel = self.channels.get(channel_id)
        if call is None or channel is None:
            return
        call.pending = time.monotonic()
        call.pending_kind = "ChannelDtmfReceived"
        self.emit(self.event("ChannelDtmfReceived", channel=channel, digit=digit,
                             duration_ms=100))

    def _end(self, call: _Call, reason: str | None) -> None:
        if reason is None:
            self.completed += 1
            if self.window:
                self.w_completed += 1
        else:
            self.failed += 1
            self.failures[reason] += 1
            if self.window:
                self.w_failed += 1

    def _forget_menu(self, call: _Call) -> None:
        self.menu_playbacks.pop(call.menu_playback, None)

    def _give_up(self, call: _Call) -> None:
        """The call is stuck: the caller hangs up, and it counts as failed."""
        if call.kind != "flood":
            self._end(call, call.bad or f"{call.kind} call not completed within "
                                        f"{call.deadline - call.started:.0f}s "
                                        f"({call.plays} prompts played)")
        self._caller_hangs_up(call)

    # -- the fake's handlers, observed ----------------------------------------------------------

    async def _answer(self, request: web.Request) -> web.Response:
        call = self.live.get(request.match_info["id"])
        if call is not None:
            self._answered(call, "answer")
        return await super()._answer(request)

    async def _play(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["id"]
        call = self.live.get(channel_id)
        if call is not None:
            self._answered(call, "play")
            uri = request.query.get("media", "")
            first = uri.split(",")[0]
            path = call.path
            if call.kind == "flood":
                pass                        # wherever its keys take it
            elif call.plays == 0 and first.endswith(LANGUAGE_MENU):
                pass                        # "1" when its prompts have ended (finish_playback)
            elif call.bridged and first.endswith(ANNOUNCEMENTS) and not call.announcing:
                call.announcements += 1
                if self.window:
                    self.w_announce.append(time.monotonic() - call.due)
                response = await super()._play(request)
                call.announcing = request.match_info.get("pb", "")
                return response
            elif call.plays < len(path) and uri == path[call.plays]:
                call.plays += 1
                if uri == MAIN_MENU:
                    call.menu_playback = request.match_info.get("pb", "")
                    self.menu_playbacks[call.menu_playback] = call
                    self._later(self.script.s(self.script.press_menu_after),
                                self._press, channel_id, "2")
            elif call.bad is None:
                call.bad = f"unexpected prompt {uri} after {call.plays} prompts"
        return await super()._play(request)

    async def _add_to_bridge(self, request: web.Request) -> web.Response:
        response = await super()._add_to_bridge(request)
        now = time.monotonic()
        for channel_id in request.query.get("channel", "").split(","):
            call = self.live.get(channel_id)
            if call is None:
                continue
            self._answered(call, "bridge")
            if call.kind == "flood":
                continue
            if call.kind != "queue" or call.plays != len(call.path) or not call.stopped:
                if call.bad is None:
                    call.bad = f"{call.kind} call put in a bridge after {call.plays} prompts"
                continue
            if not call.bridged:
                call.bridged = now
                call.due = now + self.shape.first_announcement
                self._later(call.wait, self._queue_wait_over, channel_id)
        return response

    async def _stop_playback(self, request: web.Request) -> web.Response:
        menu_call = self.menu_playbacks.pop(request.match_info["pb"], None)
        playback = self.playbacks.get(request.match_info["pb"])
        if playback is None and menu_call is not None and menu_call.bad is None:
            # The engine reacted to the key after the whole menu prompt had been heard.
            menu_call.bad = "barge-in stop came after the menu prompt had ended"
            self._answered(menu_call, "stop")
        if playback is not None:
            call = self.live.get(playback["target_uri"][len("channel:"):])
            if call is not None and call.kind != "flood":
                self._answered(call, "stop")
                if playback["media_uri"] == MAIN_MENU:
                    call.stopped = True
                elif call.bad is None:
                    call.bad = f"unexpected stop of {playback['media_uri']}"
        return await super()._stop_playback(request)

    async def _hangup(self, request: web.Request) -> web.Response:
        call = self.live.pop(request.match_info["id"], None)
        if call is not None and call.kind != "flood":
            self._answered(call, "hangup")
            self._forget_menu(call)
            reason = call.bad
            if reason is None and (call.plays != len(call.path) or not call.stopped
                                   or call.kind == "queue"):
                reason = (f"engine hung up a {call.kind} call after {call.plays} prompts "
                          f"(stopped={call.stopped}, in the bridge={bool(call.bridged)})")
            self._end(call, reason)
        return await super()._hangup(request)

    def finish_playback(self, playback_id: str, state: str = "done", *,
                        announce: bool = True) -> None:
        playback = self.playbacks.get(playback_id)
        if playback is not None and announce:
            channel_id = playback["target_uri"][len("channel:"):]
            call = self.live.get(channel_id)
            if call is not None and call.kind != "flood":
                uri = playback["media_uri"]
                if playback_id == call.announcing:
                    call.announcing = ""
                    call.due = time.monotonic() + self.shape.announce_every
                elif uri in _ANSWERED_ENDS:
                    call.pending = time.monotonic()
                    call.pending_kind = f"PlaybackFinished {uri.rsplit('/', 1)[-1]}"
                elif uri == CERTIFICATES:
                    self._later(self.script.s(self.script.press_agent_after),
                                self._press, channel_id, _AFTER_CERTIFICATES[call.kind])
                elif uri == AFTER_INFO:
                    self._later(self.script.s(self.script.press_after_info),
                                self._press, channel_id, "1")
                elif uri.endswith(LANGUAGE_MENU) and call.plays == 0:
                    self._press(channel_id, "1")
        super().finish_playback(playback_id, state, announce=announce)

    # -- pacing --------------------------------------------------------------------------------

    async def ticker(self) -> None:
        """Every 10 ms: start calls (ramp / hold), measure this loop's lag, sweep stuck calls."""
        period = 0.01
        next_at = time.monotonic()
        next_sweep = next_at + 1.0
        while True:
            next_at += period
            delay = next_at - time.monotonic()
            await asyncio.sleep(max(delay, 0))
            now = time.monotonic()
            lag = now - next_at
            if lag > period:
                next_at = now            # behind: do not try to catch up the missed ticks
            live = len(self.live)
            if self.window:
                self.w_lag.append(lag)
                self.w_live.append(live)
            if self.phase == "ramp":
                allowed = int(self.rate * (now - self.ramp_t0)) - self.ramp_started
                n = max(0, min(allowed, self.level - live))
                self.ramp_started += n
            elif self.phase == "hold" and self.arrivals:
                # Calls arrive at their own rate, whatever becomes of the others (a call the
                # engine sheds is not replaced at once: that would raise the rate it sheds at).
                due = int(self.arrivals * (now - self.hold_t0)) - self.hold_started
                n = max(0, due)
                self.hold_started += n
            elif self.phase == "hold":
                n = max(0, min(self.level - live, int(self.rate) + 1))
            else:
                n = 0
            for _ in range(n):
                self._start_one()
            live = len(self.live)
            self.peak = max(self.peak, live)
            if self.phase == "ramp" and live >= self.level:
                self.phase = "hold"
                self.hold_t0, self.hold_started = now, 0
                if self.held is not None and not self.held.done():
                    self.held.set_result({"ramp_s": now - self.ramp_t0, "live": live})
            if now >= next_sweep:
                next_sweep = now + 1.0
                for call in [c for c in self.live.values() if c.deadline < now]:
                    self._give_up(call)

    # -- commands from the orchestrator ----------------------------------------------------------

    async def command(self, msg: tuple[Any, ...]) -> Any:
        what = msg[0]
        if what == "wait_connection":
            await self.wait_for_connection(timeout=msg[1])
            return "connected"
        if what == "ramp":
            _, self.level, self.rate, timeout, self.arrivals = msg
            loop = asyncio.get_running_loop()
            self.held = loop.create_future()
            self.ramp_t0 = time.monotonic()
            self.ramp_started = 0
            self.phase = "ramp"
            try:
                return await asyncio.wait_for(asyncio.shield(self.held), timeout)
            except TimeoutError:
                self.phase = "hold"
                self.hold_t0, self.hold_started = time.monotonic(), 0
                return {"ramp_s": timeout, "live": len(self.live), "timeout": True}
        if what == "window_start":
            self.window = True
            self.w_latency, self.w_by_kind, self.w_live, self.w_lag = [], {}, [], []
            self.w_announce = []
            self.w_completed = self.w_failed = self.w_started = 0
            self.w_t0 = time.monotonic()
            self.w_cpu0 = _cpu()
            return {"live": len(self.live)}
        if what == "flood_call":
            self._start_one("flood", FLOOD_ID)
            return {"channel": FLOOD_ID}
        if what == "flood":
            _, channel_id, count = msg
            await self._flood(channel_id, count)
            return self.flooded
        if what == "window_end":
            self.window = False
            wall = time.monotonic() - self.w_t0
            return {"wall": wall, "cpu": _cpu() - self.w_cpu0,
                    "latency": self.w_latency, "by_kind": self.w_by_kind,
                    "completed": self.w_completed, "failed": self.w_failed,
                    "started": self.w_started, "live": self.w_live, "lag": self.w_lag,
                    "announce": self.w_announce,
                    "bridged": sum(1 for c in self.live.values() if c.bridged)}
        if what == "drain":
            self.phase = "drain"
            # The callers waiting in the queue hang up now (as scripted, only sooner).
            for call in [c for c in self.live.values() if c.bridged or c.kind == "flood"]:
                self._queue_wait_over(call.id)
            end = time.monotonic() + msg[1]
            while self.live and time.monotonic() < end:
                await asyncio.sleep(0.1)
                for call in [c for c in self.live.values() if c.bridged]:
                    self._queue_wait_over(call.id)
            for call in list(self.live.values()):
                self._give_up(call)
            return {"started": self.started, "completed": self.completed, "failed": self.failed,
                    "failures": dict(self.failures.most_common(5)), "peak": self.peak,
                    "kinds": dict(self.kinds)}
        raise ValueError(f"unknown command {what!r}")


def main(conn: Connection, scale: float, shape: Shape = Shape()) -> None:
    """Process entry point (spawned by the orchestrator)."""
    from engine_load import raise_fd_limit

    raise_fd_limit()
    asyncio.run(_main(conn, Script(scale=scale), shape))


async def _main(conn: Connection, script: Script, shape: Shape) -> None:
    gc.freeze()
    driver = LoadDriver(script, shape)
    await driver.start()
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    ticker = loop.create_task(driver.ticker())

    async def run(msg: tuple[Any, ...]) -> None:
        conn.send(await driver.command(msg))

    tasks: set[asyncio.Task[None]] = set()

    def readable() -> None:
        msg = conn.recv()
        if msg[0] == "stop":
            if not done.done():
                done.set_result(None)
            return
        task = loop.create_task(run(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    loop.add_reader(conn.fileno(), readable)
    conn.send({"port": driver.port})
    try:
        await done
    finally:
        loop.remove_reader(conn.fileno())
        ticker.cancel()
        await driver.close()
