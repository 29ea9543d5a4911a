"""Wiring: config → store → lease → engine → queues and callbacks → admin API → ARI events.

``serve`` is the one start-up order, in one place, and shutdown runs it in reverse:

    start                                           stop (SIGTERM, SIGINT)
    1. store (SQLite or PostgreSQL)                 8. store closed
    1b. the engine lease (PostgreSQL): a standby    7b. lease released (a standby takes over)
        waits here until it is the active engine
    2. HTTP session (the callers' registry)         7. session closed
    3. engine (flows, catalogue, call records)      6. records kept back written (last try)
    4. ARI clients, one per media server            5. ARI clients and event streams closed
       (REST only: no call yet)
    5. queues' event log, queues, callbacks         4. callbacks, queues (bridges), event log
       (agents and lines rebuilt from the log)
    6. admin listener (API, /metrics, wallboard)    3. admin listener closed
    7. flow watcher, signal handlers                2. watcher stopped
    8. ARI event stream: calls arrive               1. no new call; calls in progress get
                                                       ``engine.shutdown_grace`` to finish

So every call, including the calls re-adopted by the first reconciliation after a restart,
finds every service it may need; a standby engine taking over runs exactly this.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import gc
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import structlog

from ivr.call import Call, CallRecord, Outcome, Prompt, Queues, utcnow
from ivr.config import GC_YOUNG, Config
from ivr.errors import CallError, FlowError, IvrError
from ivr.flow.loader import FlowSet, flow_files, load_flows
from ivr.flow.model import Flow
from ivr.flow.runner import finish_exits, run_flow
from ivr.prompts import Catalogue, audio_problems, load_catalogue
from ivr.routing.identify import CallerFacts, identify
from ivr.routing.numbers import normalize
from ivr.routing.registry import CallerRegistry, StoreRegistry, registry_for
from ivr.stats.live import LiveStats
from ivr.stats.metrics import EngineGauges, Metrics
from ivr.store.base import OUTBOUND_DIALLED
from ivr.tasks import TaskSet
from ivr.video.call import VideoCall
from ivr.acd.model import Event
from ivr.acd.restore import Restored, load_restored
from ivr.acd.service import RESUME_WAIT

RESTORE_MARGIN = 3600.0   # seconds of the line's log read beyond the longest chain of max_wait

log = structlog.get_logger("ivr.app")

LEGS = ("agent", "callback", "wellness")   # Stasis arguments of the channels the engine dials itself
# Seconds between the notes of calls' progress in the store (all calls noted meanwhile in one write).
PROGRESS_EVERY = 0.5


class LagMonitor:
    """How late the event loop runs: a timer due every ``interval`` measures its own lateness.

    ``lag`` follows the worst recent lateness and decays when the loop recovers (the gauge
    ``ivr_event_loop_lag_seconds``).  ``sustained`` is the least lateness of the last
    ``SUSTAIN`` ticks: high only while the loop is late tick after tick, i.e. overloaded.  While
    it is above the engine's limit, new calls are shed at the door (they hear the busy message)
    so the calls in progress keep prompt answers: Asterisk drops an ARI consumer that stops
    reading for 100 ms.  One stall on its own (a full garbage collection with thousands of live
    calls, a device flooding one channel with keys) makes one tick late and sheds nobody: the
    callers who arrived during it are served a moment late instead of turned away.
    """

    SUSTAIN = 4

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.lag = 0.0
        self.sustained = 0.0
        self._recent: collections.deque[float] = collections.deque(maxlen=self.SUSTAIN)
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self.interval
        self._handle = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = max(0.0, now - self._due)
        self.lag = late if late > self.lag else self.lag * 0.7 + late * 0.3
        self._recent.append(late)
        self.sustained = min(self._recent) if len(self._recent) == self.SUSTAIN else 0.0
        self._due = now + self.interval
        self._handle = loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Engine:
    """Answers each new call with the flow for its dialled number and records what happened.

    Before the flow plays a prompt the engine learns who is calling (``identify``: registry and
    call history under ``callers.lookup_budget``); the caller hears ringing meanwhile, never
    silence.  Call records the store refuses (a database briefly away) are kept in memory, up
    to ``max_unsaved``, and written again every ``retry_interval`` seconds until it takes them.

    ``queues`` is the ``Queues`` port (None: the engine runs no queues).  A flow reload hands
    the new prompt catalogue to everyone registered with ``on_catalogue`` (the queues, the
    callback desk), so all of the engine speaks from one catalogue.
    """

    def __init__(self, config: Config, store, catalogue: Catalogue, flowset: FlowSet, *,
                 registry: CallerRegistry | None = None, queues: Queues | None = None,
                 clock=utcnow, retry_interval: float = 2.0, max_unsaved: int = 10_000) -> None:
        self.config = config
        self.store = store
        self.catalogue = catalogue
        self.flowset = flowset
        self.registry = registry if registry is not None else StoreRegistry(store)
        self.queues = queues
        self.clock = clock
        self.tz = ZoneInfo(config.callers.timezone)
        self.live_calls = 0
        self.calls_handled = 0
        self.lag = LagMonitor()
        self.retry_interval = retry_interval
        self.max_unsaved = max_unsaved
        self.unsaved: collections.OrderedDict[str, CallRecord] = collections.OrderedDict()
        self.records_lost = 0
        self._retrying: asyncio.Task[None] | None = None
        self._background = TaskSet("engine.background")
        self._catalogue_users: list[Callable[[Catalogue], None]] = []
        # Calls whose record has moved on since it was last noted in the store, and the one task
        # that notes them every ``progress_every`` seconds (None: not running).
        self._progress: dict[str, CallRecord] = {}
        self._progress_writer: asyncio.Task[None] | None = None
        self.progress_every = PROGRESS_EVERY
        # After a restart: the queues' part of a re-adopted call (None: no queues run).
        self.resume: Callable[[Call, CallRecord, Sequence[str]], Awaitable[bool]] | None = None
        # The wellness dialler: wellness calls re-adopted after a restart go to it (None: none).
        self.wellness: Any = None
        # The sign-language video entrance (ivr.video; None: video.enabled is false).
        self.video: Any = None
        # The wallboard's live figures (None: no queues run) and the Prometheus metrics.
        self.stats: LiveStats | None = None
        self.metrics = Metrics(service_level=config.wallboard.service_level)
        self.metrics.engine = EngineGauges(
            loop_lag=lambda: self.lag.lag, calls_in_progress=lambda: self.live_calls,
            records_unsaved=lambda: len(self.unsaved), records_lost=lambda: self.records_lost)

    def on_catalogue(self, use: Callable[[Catalogue], None]) -> None:
        """``use(catalogue)`` is called with every catalogue a reload brings."""
        self._catalogue_users.append(use)

    # -- flows -------------------------------------------------------------------------------
    def reload_flows(self) -> bool:
        """Load the flows again; on any error keep the ones that are serving now.  Never raises:
        a broken edit is logged (``flows.reload_rejected``, one ``file:line`` per problem) and a
        bug in loading is logged with its traceback (``flows.reload_failed``).  Loads on the
        calling thread: the engine itself uses ``reload_flows_off_loop``."""
        loaded = self._load_flows()
        return loaded is not None and self._take_flows(*loaded)

    async def reload_flows_off_loop(self) -> bool:
        """``reload_flows`` with the loading (YAML, checks: about 80 ms for the sample flows, more
        with a garbage collection inside) in a worker thread, so the event loop goes on serving
        calls meanwhile and a reload never makes it lag past ``engine.max_loop_lag`` (which
        would turn new callers away); the new flows are taken on the loop."""
        loaded = await asyncio.to_thread(self._load_flows)
        return loaded is not None and self._take_flows(*loaded)

    def _load_flows(self) -> tuple[Catalogue, FlowSet] | None:
        try:
            catalogue = load_catalogue(self.config.prompts / "catalog.yaml")
            return catalogue, load_flows(list(self.config.flows), catalogue)
        except FlowError as exc:
            log.error("flows.reload_rejected", problems=[str(p) for p in exc.problems])
        except IvrError as exc:
            log.error("flows.reload_rejected", error=str(exc))
        except Exception as exc:
            log.exception("flows.reload_failed", error=repr(exc))
        return None

    def _take_flows(self, catalogue: Catalogue, flowset: FlowSet) -> bool:
        self.catalogue, self.flowset = catalogue, flowset
        for use in self._catalogue_users:
            use(catalogue)
        log.info("flows.reloaded", flows=sorted(flowset.flow_names()))
        _warn_about_audio(catalogue)
        return True

    def _flow_stamp(self) -> tuple:
        """What the flow files and the prompt catalogue look like on disk (names, sizes, times)."""
        paths = [*flow_files(list(self.config.flows)), self.config.prompts / "catalog.yaml"]
        stamp = []
        for path in paths:
            try:
                st = path.stat()
            except OSError:
                continue
            stamp.append((str(path), st.st_size, st.st_mtime_ns))
        return tuple(stamp)

    async def watch_flows(self, interval: float) -> None:
        """Reload the flows when a file changes (as SIGHUP does); a broken edit is reported
        once and the flows serving now keep serving; calls in progress keep their version.
        Nothing ends the watch but cancellation: a failure to look is logged and retried."""
        seen: tuple | None = None
        while True:
            try:
                stamp = self._flow_stamp()
                if seen is not None and stamp != seen:
                    log.info("flows.changed_on_disk")
                    await self.reload_flows_off_loop()
                seen = stamp
            except Exception as exc:
                log.exception("flows.watch_failed", error=repr(exc))
            await asyncio.sleep(interval)

    # -- calls -------------------------------------------------------------------------------
    async def on_new_call(self, call: Call, args: list[str], *, adopted: bool = False) -> None:
        structlog.contextvars.bind_contextvars(call_id=call.id)
        leg = bool(args) and args[0] in LEGS
        if leg and args[0] == OUTBOUND_DIALLED:        # a wellness call of before a restart
            if adopted and self.wellness is not None:
                await self.wellness.adopt(call, args)
            else:
                await call.hangup()
            return
        resume = self.resume
        if leg and (not adopted or resume is None):
            await call.hangup()         # a leg nobody waits for (the dialler's own never come here)
            return
        if leg and args[0] == "agent" and resume is not None:   # after a restart: back to its
            await resume(call, CallRecord(call.id, "", ""), args)  # conversation, or hung up
            return
        video = self.video
        if video is not None and video.is_video(call, args):
            try:
                call = video.admit(call, args, adopted=adopted)
            except IvrError as exc:             # a page's call without its visit
                log.warning("video.refused", why=str(exc))
                record = CallRecord(call_id=call.id, caller=call.caller_number, dialled=call.dialled,
                                    channel="video")
                record.end(Outcome.ERROR, f"video: {exc}")
                await self._finish(call, record)
                return
        elif args and args[0] == "video":
            log.warning("video.off", why="a call of the video page, but video.enabled is false")
            record = CallRecord(call_id=call.id, caller=call.caller_number, dialled=call.dialled,
                                channel="video")
            record.end(Outcome.ERROR, "video: the video entrance is off (video.enabled)")
            await self._finish(call, record)
            return
        record = CallRecord(call_id=call.id, caller=call.caller_number, dialled=call.dialled)
        if video is not None and isinstance(call, VideoCall):
            await video.started(call, record)
        if adopted:
            await self._continue_record(record)
            if await self._resume(call, record, args):
                return
        if leg:                         # a customer's leg whose call back is over
            await call.hangup()
            return
        self.live_calls += 1
        try:
            await self._serve(call, record, adopted)
        finally:
            self.live_calls -= 1
            await self._finish(call, record)

    # -- calls the engine places (the wellness dialler's ``Outbound`` port) ---------------------
    def outbound_flow(self, name: str) -> Flow | None:
        return self.flowset.get(name)

    async def run_outbound(self, call: Call, record: CallRecord, flow_name: str, *, language: str,
                           variables: Mapping[str, Any], adopted: bool = False,
                           args: Sequence[str] = ()) -> None:
        """Run ``flow_name`` on an answered call the engine placed, to its end; the record is
        noted at once (so a successor finds it), finished and saved as any call's.  A call
        re-adopted after a restart goes back to the queues when it waited or talked there,
        else hears the flow again from its entry."""
        structlog.contextvars.bind_contextvars(call_id=call.id, flow=flow_name)
        flowset, catalogue = self.flowset, self.catalogue
        if adopted:
            await self._continue_record(record)
            record.flow = record.flow or flow_name
            if await self._resume(call, record, args):      # the queues took it, to its end
                return
        self.live_calls += 1
        try:
            flow = flowset.get(flow_name)
            if flow is None:
                record.end(Outcome.NO_FLOW, f"flow '{flow_name}' is not loaded")
                return
            record.flow, record.flow_version = flow.name, flowset.version(flow.name)
            if adopted:
                record.detail = "re-adopted: started again from the flow's entry"
            self._note_progress(record)
            if language not in catalogue.languages:
                language = flow.language
            await run_flow(flowset, flow, call, record, catalogue=catalogue, queues=self.queues,
                           language=language, variables=variables,
                           checkpoint=lambda: self._note_progress(record))
        finally:
            self.live_calls -= 1
            await self._finish(call, record)

    async def _finish(self, call: Call, record: CallRecord) -> None:
        """A call is over: its outcome (when nothing else said one), hung up, recorded."""
        self.calls_handled += 1
        if record.outcome is None:
            record.end(_ended(call))
        finish_exits(record)
        if not call.hung_up:
            try:
                await call.hangup()
            except CallError as exc:
                log.warning("call.hangup_failed", error=str(exc))
        await self._save(record)
        if self.video is not None and record.channel == "video":
            self.video.finished(record)
        log.info("call.ended", outcome=str(record.outcome), detail=record.detail,
                 caller=record.caller, nodes=len(record.nodes))

    async def _resume(self, call: Call, record: CallRecord, args: Sequence[str]) -> bool:
        """A call re-adopted after a restart that the queues take back (it waited, talked, or
        was in the callback dialog); False leaves it to the flow."""
        if self.resume is None:
            return False
        self.live_calls += 1
        try:
            taken = await self.resume(call, record, args)
        except CallError:
            taken = True
            record.end(Outcome.CALLER_HANGUP)
        finally:
            self.live_calls -= 1
        if taken:
            await self._finish(call, record)
        return taken

    async def _continue_record(self, record: CallRecord) -> None:
        """Fill ``record`` from what the store kept of the call before the restart."""
        try:
            async with asyncio.timeout(self.config.callers.lookup_budget):
                before = await self.store.get_call(record.call_id)
        except (IvrError, TimeoutError) as exc:
            log.warning("call.record_not_read", error=str(exc))
            before = None
        flow = self.flowset.for_number(record.dialled)
        if before is not None:
            record.started_at = before.started_at
            record.flow, record.flow_version = before.flow, before.flow_version
            record.nodes, record.digits = list(before.nodes), list(before.digits)
            # The node the last engine was in when it stopped was left for the one below.
            record.exits = list(before.exits[:len(before.nodes)])
            record.language, record.number = before.language, before.number
            record.queue, record.waited = before.queue, before.waited
        elif flow is not None:
            record.flow, record.flow_version = flow.name, self.flowset.version(flow.name)
            record.number = normalize(record.caller, self.config.callers.region).e164
        record.visit("resumed after an engine restart")

    async def _serve(self, call: Call, record: CallRecord, adopted: bool) -> None:
        flowset, catalogue = self.flowset, self.catalogue   # this call keeps this version
        overloaded = self.lag.sustained > self.config.engine.max_loop_lag
        if not adopted and (self.live_calls > self.config.engine.max_calls or overloaded):
            why = (f"engine overloaded (event loop {self.lag.sustained * 1000:.0f} ms late, "
                   f"{LagMonitor.SUSTAIN} ticks running)" if overloaded
                   else "engine at max_calls")
            record.end(Outcome.BUSY, why)
            self.metrics.call_shed("loop_lag" if overloaded else "max_calls")
            log.warning("call.shed", live_calls=self.live_calls, why=why)
            try:
                await call.answer()
                lang = self.config.engine.default_language
                if catalogue.has(self.config.engine.busy_prompt):
                    await call.play([Prompt(self.config.engine.busy_prompt, lang)])
            except CallError:
                pass
            return
        flow = flowset.for_number(call.dialled)
        if flow is None:
            log.warning("call.no_flow", dialled=call.dialled)
            record.end(Outcome.NO_FLOW, f"no flow answers {call.dialled}")
            return
        record.flow = flow.name
        record.flow_version = flowset.version(flow.name)
        structlog.contextvars.bind_contextvars(flow=flow.name)
        if adopted:
            # Picked up again after a restart or a lost event socket.  Where the call was in
            # the flow is not known: it starts again from the flow's entry (the safe point).
            record.detail = "re-adopted: started again from the flow's entry"
        facts = await self._identify(call, record, flow, adopted)
        variables, language = facts.variables(), facts.language
        if self.video is not None and isinstance(call, VideoCall):
            variables = {**variables, **self.video.variables(call)}
            language = self.video.language(call) or language
        await run_flow(flowset, flow, call, record, catalogue=catalogue, queues=self.queues,
                       language=language, variables=variables,
                       checkpoint=lambda: self._note_progress(record))

    async def _identify(self, call: Call, record: CallRecord, flow: Flow, adopted: bool) -> CallerFacts:
        """Who is calling: note the call in the history, ask the registry and the history; one
        ``call.started`` line says who called what and what the engine found out."""
        callers = self.config.callers
        number = normalize(call.caller_number, callers.region)
        record.number = number.e164
        if number.ok:
            # Noted at once so that concurrent calls from the same number count each other; it
            # runs beside the lookups (which leave this call out and add one) and never delays them.
            self._background.spawn(self._note_start(record), name=f"engine.note_start.{call.id}")
        facts = await identify(call.caller_number, now=self.clock(), tz=self.tz,
                               registry=self.registry, store=self.store, repeat=flow.repeat,
                               budget=callers.lookup_budget, call_id=call.id, region=callers.region,
                               number=number)
        log.info("call.started", caller=call.caller_number, dialled=call.dialled, adopted=adopted,
                 known=facts.known, age=facts.age, anonymous=facts.anonymous,
                 valid_number=facts.number is not None, recent_calls=facts.recent_calls,
                 is_repeat=facts.is_repeat)
        return facts

    async def _note_start(self, record: CallRecord) -> None:
        try:
            await self.store.call_started(record)
        except IvrError as exc:
            self.metrics.store_error("call_started")
            log.warning("call.start_not_recorded", error=str(exc))

    def _note_progress(self, record: CallRecord) -> None:
        """The record as it is will go to the store, so an engine taking over after a crash
        continues it: within ``progress_every`` seconds, with every other call's noted
        meanwhile in one write (a newer note of the same call replaces the older)."""
        self._progress[record.call_id] = record
        if self._progress_writer is None:
            self._progress_writer = self._background.spawn(self._write_progress(),
                                                           name="engine.progress")

    async def _write_progress(self) -> None:
        try:
            while self._progress:
                await asyncio.sleep(self.progress_every)
                due, self._progress = self._progress, {}
                records = [r for r in due.values() if r.outcome is None]   # ended: _save has it
                try:
                    await self.store.calls_progress(records)     # read before its first await
                except IvrError as exc:
                    log.debug("call.progress_not_recorded", calls=len(records), error=str(exc))
        finally:
            self._progress_writer = None

    async def save_record(self, record: CallRecord) -> None:
        """Store a finished call's record; kept in memory and retried when the store refuses."""
        await self._save(record)

    async def _save(self, record: CallRecord) -> None:
        self._progress.pop(record.call_id, None)
        self.metrics.call_ended(record)
        if self.stats is not None:
            self.stats.call_ended(record)
        try:
            await self.store.record_call(record)
        except IvrError as exc:
            self.metrics.store_error("record_call")
            # The caller is already served; the record waits in memory for the store to return.
            log.error("call.record_failed", error=str(exc), call=record.call_id,
                      unsaved=len(self.unsaved) + 1)
            self._keep_unsaved(record)

    def _keep_unsaved(self, record: CallRecord) -> None:
        self.unsaved[record.call_id] = record
        while len(self.unsaved) > self.max_unsaved:
            _, dropped = self.unsaved.popitem(last=False)
            self.records_lost += 1
            log.error("call.record_lost", call=dropped.call_id, lost=self.records_lost)
        if self._retrying is None or self._retrying.done():
            self._retrying = self._background.spawn(self._retry_unsaved(), name="engine.retry_unsaved")

    async def _retry_unsaved(self) -> None:
        while self.unsaved:
            await asyncio.sleep(self.retry_interval)
            if await self.flush_unsaved():
                log.info("call.records_recovered")

    async def flush_unsaved(self) -> bool:
        """Write the records kept back; True when none is left."""
        while self.unsaved:
            call_id, record = next(iter(self.unsaved.items()))
            try:
                await self.store.record_call(record)
            except IvrError as exc:
                log.warning("call.record_retry_failed", error=str(exc), unsaved=len(self.unsaved))
                return False
            if self.unsaved.get(call_id) is record:
                del self.unsaved[call_id]
        return True

    async def close(self) -> None:
        """Stop background work: the starts being noted, then one last try at unsaved records."""
        if self._retrying is not None:
            self._retrying.cancel()
        pending = await self._background.wait(5)
        if pending:
            await self._background.cancel_all(1)
        if not await self.flush_unsaved():
            self.records_lost += len(self.unsaved)
            log.error("engine.records_lost", lost=len(self.unsaved))


def _ended(call: Call) -> Outcome:
    """The outcome of a call that ended with nothing else said about it."""
    if not call.hung_up:
        return Outcome.COMPLETED
    return Outcome.LOST if call.ended_as == "lost" else Outcome.CALLER_HANGUP


def _warn_about_audio(catalogue: Catalogue) -> None:
    """Prompts without audio (or with audio older than their text) are said in the log."""
    for problem in audio_problems(catalogue):
        log.warning("prompts.audio_problem", problem=str(problem))


def settle_heap(young: int = GC_YOUNG) -> None:
    """Before the first call: what start-up made (modules, flows, the catalogue, the restored
    queues) lives as long as the engine, so it is put out of the collector's sight
    (``gc.freeze``): a full collection with thousands of live calls walks the calls' objects
    only.  ``young`` (``engine.gc_young``) objects are allocated between young collections:
    with Python's 700 an event's short-lived objects are often caught alive, promoted, and
    make full collections come every second or two under load."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the event loop ``ivr run`` runs on (``engine.event_loop``): ``asyncio``'s
    own, or ``uvloop``'s (the ``fast`` extra; the config refuses it when not installed)."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if name != "asyncio":
        raise ValueError(f"no event loop {name!r} (asyncio, uvloop)")
    return asyncio.new_event_loop


async def serve(config: Config, *, ready: asyncio.Event | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Run the engine until SIGTERM/SIGINT (or ``stop`` is set).

    The start-up order of the module docstring, in code: each step is entered into one
    ``AsyncExitStack``, so shutdown leaves them in reverse, every exit runs, and a failure
    half-way through start-up closes exactly what was opened."""
    from ivr.lease import engine_lease
    from ivr.store import open_store

    catalogue = load_catalogue(config.prompts / "catalog.yaml")
    flowset = load_flows(list(config.flows), catalogue)   # FlowError: refuse to start
    for w in flowset.warnings:
        log.warning("flows.warning", problem=str(w))
    _warn_about_audio(catalogue)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        # 1. store, 2. HTTP session
        store = await stack.enter_async_context(open_store(config.store_url))
        # 1b. the engine lease (PostgreSQL; None on SQLite): a standby waits here, connected
        # to nothing else, until it is the active engine; released on the way out, after the
        # calls.  Asked to stop while it waits, it stops at once.
        lease = await stack.enter_async_context(engine_lease(config.store_url,
                                                             ttl=config.engine.lease_ttl))
        if lease is not None:
            waiting = []
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
                    waiting.append(sig)
            try:
                active = await lease.acquire(stop)
            finally:
                for sig in waiting:
                    loop.remove_signal_handler(sig)
            if not active:
                log.info("engine.stopped", calls_handled=0, standby=True)
                return
        session = None
        if config.callers.registry is not None:
            session = await stack.enter_async_context(aiohttp.ClientSession())
        # 3. engine
        engine = Engine(config, store, catalogue, flowset,
                        registry=registry_for(config.callers, store, session))
        stack.push_async_callback(_closing("engine", engine.close))
        # 4. the ARI clients (one per media server): a switch for the services, no call yet
        ari = _switchboard(config, engine)
        for adapter in ari.adapters:
            adapter.client.on_request = engine.metrics.ari_request
        await ari.open()
        stack.push_async_callback(_closing("ari", ari.close))
        # 5. queues and callbacks
        queues = await _start_queues(config, ari, engine, stack, sole=lease is not None)
        if queues is not None:
            _follow_centers(ari, queues[0])
        if config.video.enabled:
            await _start_video(config, engine, queues, stack)
        # 6. the admin listener: the API and /metrics (admin token), the wallboard (users file)
        admin_root = _admin_app(config, engine, store, queues)
        if admin_root is not None:
            from ivr.web.api import AdminServer

            admin = AdminServer(admin_root, config.admin.host, config.admin.port)
            await admin.__aenter__()
            stack.push_async_callback(_closing("admin", admin.__aexit__), None, None, None)
        # 7. the flow watcher and the signals
        background = TaskSet("engine.watch")
        if config.engine.reload_interval > 0:
            background.spawn(engine.watch_flows(config.engine.reload_interval), name="flows.watch")
        stack.push_async_callback(background.cancel_all, 2)
        def reload() -> None:
            background.spawn(engine.reload_flows_off_loop(), name="flows.reload")

        for sig, handler in ((signal.SIGTERM, stop.set), (signal.SIGINT, stop.set), (signal.SIGHUP, reload)):
            try:
                loop.add_signal_handler(sig, handler)
            except (NotImplementedError, RuntimeError):
                continue
            stack.callback(loop.remove_signal_handler, sig)
        # 8. the ARI event stream, last: from now on calls arrive and find everything above
        log.info("engine.connecting", ari=[sw.ari.url for sw in config.switches])
        # The loop's lateness counts from here: the start-up's own work (flows, catalogue,
        # the restore) must not make the first callers hear the busy message.
        engine.lag.start()
        stack.callback(engine.lag.stop)
        settle_heap(config.engine.gc_young)
        ari.start()
        stack.push_async_callback(_closing("calls", ari.drain), config.engine.shutdown_grace)
        await ari.wait_connected()
        if queues is not None:
            await ari.wait_ready(10)                # the first reconciliation has run
            queues[0].settle_restored(after=RESUME_WAIT)
        if engine.wellness is not None:
            engine.wellness.ready()                 # re-adopted wellness calls are its own now
        log.info("engine.ready", flows=sorted(flowset.flow_names()),
                 numbers=sorted(flowset.numbers()), ari=[sw.ari.url for sw in config.switches])
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("engine.stopping", live_calls=engine.live_calls)
    log.info("engine.stopped", calls_handled=engine.calls_handled)


def _admin_app(config: Config, engine: Engine, store, queues):
    """The admin listener's application (``ivr.web.admin``) with the parts that are on; None
    when none is.  The API and ``/metrics`` need ``admin.token``; the wallboard needs the
    queues' live figures and ``admin.users_file`` (a broken users file refuses the start)."""
    from ivr.web.admin import admin_app
    from ivr.web.api import api_app
    from ivr.web.metrics import metrics_handler

    service, desk = queues if queues is not None else (None, None)
    token = config.admin.token
    api = None
    if token:
        api = api_app(token=token, queues=service, desk=desk, store=store,
                      region=config.callers.region, tz=ZoneInfo(config.callers.timezone),
                      wellness=engine.wellness)
    elif queues is not None:
        log.warning("admin.off", why="no admin token: set admin.token_file or IVR_ADMIN_TOKEN",
                    off="the API and /metrics")
    wallboard = None
    path = config.admin.users_file
    if engine.stats is None:
        if path is not None:
            log.info("wallboard.off", why="no queues run: the wallboard shows the queues (acd.queues)")
    elif path is None or not path.exists():
        log.info("wallboard.off", why="no users file: set admin.users_file and add users with "
                                      "'ivr users add NAME --role supervisor'",
                 users_file=None if path is None else str(path))
    else:
        from ivr.web.auth import Audit, UserDirectory
        from ivr.web.wallboard import TodayCharts, wallboard_app

        users = UserDirectory(path)
        if not len(users):
            log.warning("wallboard.no_users", users_file=str(path),
                        fix="ivr users add NAME --role supervisor")
        wallboard = wallboard_app(users=users, stats=engine.stats, audit=Audit(store),
                                  agents=service, desk=desk,
                                  charts=TodayCharts(store, lambda: engine.flowset, engine.tz),
                                  session_hours=config.admin.session_hours)
        log.info("wallboard.on", path="/wallboard/", users=len(users))
    video = None
    if engine.video is not None:
        from ivr.web.auth import Audit, UserDirectory
        from ivr.web.video import video_app

        directory = UserDirectory(path) if path is not None and path.exists() else None
        video = video_app(engine.video, users=directory, audit=Audit(store),
                          session_hours=config.admin.session_hours)
        log.info("video.on", page="/video/", agents_page="/video/agent/",
                 interpreters_log_in=directory is not None)
    if api is None and wallboard is None and video is None:
        return None
    return admin_app(api=api, metrics=metrics_handler(engine.metrics), token=token, wallboard=wallboard,
                     video=video)


async def _start_video(config: Config, engine: Engine, queues, stack: contextlib.AsyncExitStack) -> None:
    """The sign-language video entrance (``video.enabled``) on the queues."""
    from ivr.video.service import VideoService

    if queues is None:
        log.error("video.off", why="the video entrance hands its callers to a queue, and no queues run")
        return
    if not config.video.guest_password:
        log.error("video.off", why=f"no password for the page's SIP endpoint {config.video.guest_user}: "
                                   "set video.guest_password or video.guest_password_file (the sandbox "
                                   "writes .sandbox/video-guest-password on 'ivr sandbox up')")
        return
    service = queues[0]
    spec = next(q for q in config.acd.queues if q.name == config.video.queue)
    agents = {a.id: (a.name, a.endpoint.split("/", 1)[1]) for a in config.acd.agents if a.serves(spec)}
    video = VideoService(config.video, store=engine.store, catalogue=engine.catalogue,
                         region=config.callers.region,
                         allow_international=config.callbacks.allow_international, agents=agents)
    video.attach_queues(service)
    await video.start()
    stack.push_async_callback(_closing("video", video.close))
    engine.on_catalogue(video.set_catalogue)
    engine.video = video
    if config.video.number not in engine.flowset.numbers():
        log.warning("video.no_flow", number=config.video.number,
                    effect="video calls are answered by no flow (outcome no_flow)")
    log.info("video.ready", number=config.video.number, queue=config.video.queue,
             interpreters=sorted(agents))


def _switchboard(config: Config, engine: Engine):
    """One ARI adapter per media server of ``config.switches``, as one ``Switchboard``.  With
    one server, a lost event socket never ends its calls by itself (the reconciliation after
    the reconnection tells what is left); with several, a server down for ``DOWN_AFTER``
    seconds is taken for gone and its calls end as lost."""
    from ivr.ari.dispatcher import AriAdapter
    from ivr.ari.switchboard import DOWN_AFTER, Switchboard

    adapters = [AriAdapter(sw.ari.url, sw.ari.username, sw.ari.password, sw.ari.app,
                           on_new_call=engine.on_new_call, name=sw.name, center=sw.center,
                           requests=sw.ari.requests)
                for sw in config.switches]
    several = len(adapters) > 1
    return Switchboard(adapters, {sw.name: sw.trunk for sw in config.switches},
                       down_after=DOWN_AFTER if several else float("inf"))


def _follow_centers(board, service) -> None:
    """A center whose last server is gone has its agents taken out of the line; back when a
    server of it returns."""
    def down(name: str, center: str | None) -> None:
        if center is not None and center not in board.centers_up():
            service.center_down(center)

    def up(name: str, center: str | None) -> None:
        if center is not None:
            service.center_up(center)

    board.on_down, board.on_up = down, up


def _closing(what: str, close):
    """``close`` for the exit stack, logged as a step of the shutdown."""
    async def step(*args) -> None:
        log.debug("engine.closing", step=what)
        await close(*args)
    return step


async def _start_queues(config: Config, switch, engine: Engine,
                        stack: contextlib.AsyncExitStack, *, sole: bool = False):
    """The agent queues of ``config.acd`` on ``switch`` (and the callback desk when callbacks
    are configured), started and entered into ``stack``; ``(service, desk)``, or None when no
    queue is configured."""
    if not config.acd.queues:
        unknown = sorted(engine.flowset.queues())
        if unknown:
            log.warning("acd.not_configured", queues_in_flows=unknown,
                        effect="callers handed to a queue hear queue_hold and are hung up")
        return None
    from ivr.acd.core import Acd
    from ivr.acd.recorder import EventRecorder
    from ivr.acd.service import QueueService

    specs = {q.name: q for q in config.acd.queues}
    recorder = EventRecorder(engine.store)
    await recorder.start()
    stack.push_async_callback(_closing("queue events", recorder.close))
    # Every event goes to the event log first, then to the wallboard's figures.
    listeners: list[Callable[[Event], None]] = []

    def fan_out(event: Event) -> None:
        recorder(event)
        for listen in listeners:
            try:
                listen(event)
            except Exception as exc:        # the figures must never break a call's course
                log.exception("stats.event_failed", kind=event.kind, error=repr(exc))

    acd = Acd(specs, config.acd.agents, priorities=config.acd.priorities, on_event=fan_out,
              centers=config.acd.centers)
    service = QueueService(acd, specs, switch, engine.catalogue, music=config.acd.music,
                           default_language=config.engine.default_language)
    listeners.append(await _start_stats(config, engine, acd, service, recorder, stack))
    # Agents' states and the lines as the event log left them (a restart, a take-over);
    # ``login: true`` applies to agents the log has never seen.
    restored = await _read_restored(engine.store, specs)
    service.restore(restored)
    for agent_id in sorted(config.acd.auto_login - set(restored.agents)):
        acd.login(agent_id, service.clock())
    await service.start()
    stack.push_async_callback(_closing("queues", service.close))
    engine.on_catalogue(service.set_catalogue)
    desk = None
    callbacks = config.callbacks
    if callbacks.endpoint:
        from ivr.callbacks.desk import CallbackDesk

        desk = CallbackDesk(callbacks, engine.store, service, service, switch, engine.catalogue,
                            region=config.callers.region, save_record=engine.save_record)
        service.attach_booking(desk)
        await desk.start(sole=sole)
        stack.push_async_callback(_closing("callbacks", desk.close))
        engine.on_catalogue(desk.set_catalogue)
        log.info("callbacks.ready", owner=callbacks.owner, endpoint=callbacks.endpoint)
    engine.queues = service
    engine.resume = service.resume
    if config.wellness.campaigns:
        _start_wellness(config, switch, engine, service, fan_out, stack)
    unknown = sorted(engine.flowset.queues() - set(specs))
    if unknown:
        log.warning("acd.unknown_queues", queues_in_flows=unknown,
                    effect="callers handed to them hear queue_sorry")
    log.info("acd.ready", queues=sorted(specs), agents=len(config.acd.agents),
             logged_in=sorted(config.acd.auto_login))
    return service, desk


def _start_wellness(config: Config, switch, engine: Engine, service,
                    fan_out: Callable[[Event], None], stack: contextlib.AsyncExitStack) -> None:
    """The wellness dialler (``wellness.campaigns``), dialling through ``callbacks.endpoint``;
    it starts dialling once the engine is ready (``WellnessDesk.ready``)."""
    endpoint = config.callbacks.endpoint
    if not endpoint:
        log.error("wellness.off", campaigns=[c.name for c in config.wellness.campaigns],
                  why="wellness calls are dialled through callbacks.endpoint, which is not set")
        return
    from ivr.wellness.desk import WellnessDesk

    def note(kind: str, call_id: str | None, detail: str) -> None:
        fan_out(Event(service.clock(), kind, call_id=call_id, detail=detail))

    desk = WellnessDesk(config.wellness, engine.store, switch, engine, endpoint=endpoint,
                        owner=config.callbacks.owner, surge=service, note=note)
    desk.start()
    stack.push_async_callback(_closing("wellness", desk.close))
    engine.wellness = desk
    stats = engine.stats
    if stats is not None:
        async def show() -> None:
            while True:
                stats.set_wellness(desk.figures())
                await asyncio.sleep(config.wallboard.refresh)

        tasks = TaskSet("stats.wellness")
        tasks.spawn(show(), name="stats.wellness")
        stack.push_async_callback(tasks.cancel_all, 2)
    log.info("wellness.ready", campaigns=[c.name for c in config.wellness.campaigns],
             owner=config.callbacks.owner)


async def _start_stats(config: Config, engine: Engine, acd, service, recorder,
                       stack: contextlib.AsyncExitStack) -> LiveStats:
    """The wallboard's figures over ``acd``, with today's events read back from the store
    (before the queues are restored, whose events then follow), the metrics' queue gauges
    and counters, and the reservation counts read every ``wallboard.refresh`` seconds."""
    from ivr.stats.live import load_today

    stats = LiveStats(acd, config.wallboard, tz=engine.tz, clock=utcnow, mono=service.clock,
                      numbers=service.caller_number, channels=service.caller_channel)
    try:
        read = await load_today(stats, engine.store)
        log.info("stats.loaded", events=read, since=stats.midnight.isoformat())
    except IvrError as exc:
        engine.metrics.store_error("iter_events")
        log.error("stats.not_loaded", error=str(exc), effect="today's figures count from now")
    engine.stats = stats
    engine.metrics.follow(stats)
    if engine.metrics.engine is not None:
        engine.metrics.engine = dataclasses.replace(engine.metrics.engine,
                                                    events_dropped=lambda: recorder.dropped)
    if config.callbacks.endpoint:
        tasks = TaskSet("stats.reservations")
        tasks.spawn(_count_reservations(engine, stats, config.wallboard.refresh),
                    name="stats.reservations")
        stack.push_async_callback(tasks.cancel_all, 2)
    return stats


async def _count_reservations(engine: Engine, stats: LiveStats, every: float) -> None:
    """The reservation figures, read from the store every ``every`` seconds."""
    while True:
        try:
            stats.set_reservations(await engine.store.reservation_counts(utcnow(), stats.midnight))
        except IvrError as exc:
            engine.metrics.store_error("reservation_counts")
            log.debug("stats.reservations_not_read", error=str(exc))
        await asyncio.sleep(every)


async def _read_restored(store, specs) -> Restored:
    """The queues as the event log left them; empty (and said) when the store cannot tell."""
    horizon = RESTORE_MARGIN + sum(spec.max_wait for spec in specs.values())
    try:
        return await load_restored(store, dt.datetime.now(dt.timezone.utc), horizon=horizon)
    except IvrError as exc:
        log.error("acd.not_restored", error=str(exc),
                  effect="agents start as configured, lines start empty")
        return Restored({}, {}, {})


__all__ = ["Engine", "loop_factory", "serve", "settle_heap"]
