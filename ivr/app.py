"""Wiring: config → store → flows → ARI → per-call tasks.  Start in order, stop in reverse."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import signal
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import structlog

from ivr.call import Call, CallRecord, utcnow
from ivr.config import Config
from ivr.errors import ChannelGone, FlowError, IvrError
from ivr.flow.loader import FlowSet, load_flows
from ivr.flow.runner import run_flow
from ivr.prompts import Catalogue, audio_problems, load_catalogue
from ivr.routing.identify import CallerFacts, RepeatRule, identify
from ivr.routing.numbers import normalize
from ivr.routing.registry import CallerRegistry, StoreRegistry, registry_for

log = structlog.get_logger("ivr.app")


class LagMonitor:
    """How late the event loop runs: a timer due every ``interval`` measures its own lateness.

    ``lag`` follows the worst recent lateness and decays when the loop recovers.  While it is
    above the engine's limit, new calls are shed at the door (they hear the busy message) so
    the calls in progress keep prompt answers: Asterisk drops an ARI consumer that stops
    reading for 100 ms.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.lag = 0.0
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
    """

    def __init__(self, config: Config, store, catalogue: Catalogue, flowset: FlowSet, *,
                 registry: CallerRegistry | None = None, services=None, clock=utcnow,
                 retry_interval: float = 2.0, max_unsaved: int = 10_000) -> None:
        self.config = config
        self.store = store
        self.catalogue = catalogue
        self.flowset = flowset
        self.registry = registry if registry is not None else StoreRegistry(store)
        self.services = services          # queue_handoff: the agent queues (None: none configured)
        self.queues = services
        self.recorder = None              # the queues' event log writer, when queues run
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
        self._background: set[asyncio.Task[None]] = set()

    # -- flows -------------------------------------------------------------------------------
    def reload_flows(self) -> bool:
        """Load the flows again; on any error keep the ones that are serving now."""
        try:
            catalogue = load_catalogue(self.config.prompts / "catalog.yaml")
            flowset = load_flows(list(self.config.flows), catalogue)
        except FlowError as exc:
            log.error("flows.reload_rejected", problems=[str(p) for p in exc.problems])
            return False
        except IvrError as exc:
            log.error("flows.reload_rejected", error=str(exc))
            return False
        self.catalogue, self.flowset = catalogue, flowset
        log.info("flows.reloaded", flows=sorted(flowset.flow_names()))
        _warn_about_audio(catalogue)
        return True

    def _flow_stamp(self) -> tuple:
        """What the flow files and the prompt catalogue look like on disk (names, sizes, times)."""
        from ivr.flow.loader import flow_files

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
        once and the flows serving now keep serving; calls in progress keep their version."""
        seen = self._flow_stamp()
        while True:
            await asyncio.sleep(interval)
            stamp = self._flow_stamp()
            if stamp != seen:
                seen = stamp
                log.info("flows.changed_on_disk")
                self.reload_flows()

    # -- calls -------------------------------------------------------------------------------
    async def on_new_call(self, call: Call, args: list[str], *, adopted: bool = False) -> None:
        structlog.contextvars.bind_contextvars(call_id=call.id)
        record = CallRecord(call_id=call.id, caller=call.caller_number, dialled=call.dialled)
        self.live_calls += 1
        try:
            await self._serve(call, record, adopted)
        finally:
            self.live_calls -= 1
            self.calls_handled += 1
            if record.outcome is None:
                record.end("caller_hangup" if call.hung_up else "completed")
            if not call.hung_up:
                try:
                    await call.hangup()
                except ChannelGone:
                    pass
                except IvrError as exc:
                    log.warning("call.hangup_failed", error=str(exc))
            await self._save(record)
            log.info("call.ended", outcome=record.outcome, detail=record.detail,
                     caller=record.caller, nodes=len(record.nodes))

    async def _serve(self, call: Call, record: CallRecord, adopted: bool) -> None:
        flowset, catalogue = self.flowset, self.catalogue   # this call keeps this version
        overloaded = self.lag.lag > self.config.engine.max_loop_lag
        if self.live_calls > self.config.engine.max_calls or overloaded:
            why = (f"engine overloaded (event loop {self.lag.lag * 1000:.0f} ms late)" if overloaded
                   else "engine at max_calls")
            record.end("busy", why)
            log.warning("call.shed", live_calls=self.live_calls, why=why)
            try:
                await call.answer()
                lang = self.config.engine.default_language
                if catalogue.has(self.config.engine.busy_prompt):
                    await call.play([catalogue.media(self.config.engine.busy_prompt, lang)])
            except ChannelGone:
                pass
            return
        flow = flowset.for_number(call.dialled)
        if flow is None:
            log.warning("call.no_flow", dialled=call.dialled)
            record.end("no_flow", f"no flow answers {call.dialled}")
            return
        record.flow = flow.name
        record.flow_version = flowset.version(flow.name)
        structlog.contextvars.bind_contextvars(flow=flow.name)
        log.info("call.started", caller=call.caller_number, dialled=call.dialled, adopted=adopted)
        if adopted:
            record.detail = "re-adopted after reconnect"
        facts = await self._identify(call, record, flow)
        await run_flow(flowset, flow, call, record, catalogue=catalogue, services=self.services,
                       language=facts.language, variables=facts.variables())

    async def _identify(self, call: Call, record: CallRecord, flow) -> CallerFacts:
        """Who is calling: note the call in the history, ask the registry and the history."""
        callers = self.config.callers
        number = normalize(call.caller_number, callers.region)
        record.number = number.e164
        if number.ok:
            # Noted at once so that concurrent calls from the same number count each other; it
            # runs beside the lookups (which leave this call out and add one) and never delays them.
            self._in_background(self._note_start(record))
        policy = flow.repeat
        rule = RepeatRule(calls=policy.calls, window=dt.timedelta(seconds=policy.window),
                          unserved_only=policy.unserved_only)
        facts = await identify(call.caller_number, now=self.clock(), tz=self.tz,
                               registry=self.registry, store=self.store, repeat=rule,
                               budget=callers.lookup_budget, call_id=call.id, region=callers.region)
        log.info("caller.identified", known=facts.known, age=facts.age, anonymous=facts.anonymous,
                 valid_number=facts.number is not None, recent_calls=facts.recent_calls,
                 is_repeat=facts.is_repeat)
        return facts

    async def _note_start(self, record: CallRecord) -> None:
        try:
            await self.store.call_started(record)
        except IvrError as exc:
            log.warning("call.start_not_recorded", error=str(exc))

    def _in_background(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _save(self, record: CallRecord) -> None:
        try:
            await self.store.record_call(record)
        except IvrError as exc:
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
            self._retrying = asyncio.ensure_future(self._retry_unsaved())

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
        if self._background:
            await asyncio.wait(set(self._background), timeout=5)
        if self._retrying is not None:
            self._retrying.cancel()
            try:
                await self._retrying
            except asyncio.CancelledError:
                pass
        if not await self.flush_unsaved():
            self.records_lost += len(self.unsaved)
            log.error("engine.records_lost", lost=len(self.unsaved))


def _warn_about_audio(catalogue: Catalogue) -> None:
    """Prompts without audio (or with audio older than their text) are said in the log."""
    for problem in audio_problems(catalogue):
        log.warning("prompts.audio_problem", problem=str(problem))


async def serve(config: Config, *, ready: asyncio.Event | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Run the engine until SIGTERM/SIGINT (or ``stop`` is set)."""
    from ivr.ari.dispatcher import AriAdapter
    from ivr.store import open_store

    catalogue = load_catalogue(config.prompts / "catalog.yaml")
    flowset = load_flows(list(config.flows), catalogue)   # FlowError: refuse to start
    for w in getattr(flowset, "warnings", []):
        log.warning("flows.warning", problem=str(w))
    _warn_about_audio(catalogue)
    stop = stop or asyncio.Event()
    async with contextlib.AsyncExitStack() as resources:
        store = await resources.enter_async_context(open_store(config.store_url))
        session = None
        if config.callers.registry is not None:
            session = await resources.enter_async_context(aiohttp.ClientSession())
        engine = Engine(config, store, catalogue, flowset,
                        registry=registry_for(config.callers, store, session))
        engine.lag.start()
        watcher = (asyncio.create_task(engine.watch_flows(config.engine.reload_interval), name="flows.watch")
                   if config.engine.reload_interval > 0 else None)
        loop = asyncio.get_running_loop()
        handlers = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
                handlers.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            loop.add_signal_handler(signal.SIGHUP, engine.reload_flows)
            handlers.append(signal.SIGHUP)
        except (NotImplementedError, RuntimeError):
            pass
        try:
            async with AriAdapter(config.ari.url, config.ari.username, config.ari.password,
                                  config.ari.app, on_new_call=engine.on_new_call) as ari:
                log.info("engine.connecting", ari=config.ari.url)
                await ari.wait_connected()
                queues = await _start_queues(config, ari, engine)
                if queues is not None and config.admin.token:
                    from ivr.web.api import AdminServer

                    await resources.enter_async_context(
                        AdminServer(queues, config.admin.host, config.admin.port, config.admin.token))
                elif queues is not None:
                    log.warning("admin.off", why="no admin token: set admin.token_file or IVR_ADMIN_TOKEN")
                log.info("engine.ready", flows=sorted(flowset.flow_names()),
                         numbers=sorted(flowset.numbers()), ari=config.ari.url)
                if ready is not None:
                    ready.set()
                await stop.wait()
                log.info("engine.stopping", live_calls=engine.live_calls)
                async def cleanup() -> None:
                    if queues is not None:
                        if queues.callbacks is not None:
                            await queues.callbacks.close()
                        await queues.close()

                await ari.close(grace=config.engine.shutdown_grace, cleanup=cleanup)
        finally:
            engine.lag.stop()
            if watcher is not None:
                watcher.cancel()
            await engine.close()
            if engine.recorder is not None:
                await engine.recorder.close()
            for sig in handlers:
                loop.remove_signal_handler(sig)
    log.info("engine.stopped", calls_handled=engine.calls_handled)


async def _start_queues(config: Config, switch, engine: Engine):
    """The agent queues of ``config.acd`` on ``switch``; None when none are configured."""
    if not config.acd.queues:
        unknown = sorted(engine.flowset.queues()) if hasattr(engine.flowset, "queues") else []
        if unknown:
            log.warning("acd.not_configured", queues_in_flows=unknown)
        return None
    from ivr.acd.core import Acd
    from ivr.acd.service import QueueService

    from ivr.acd.recorder import EventRecorder

    specs = {q.name: q for q in config.acd.queues}
    recorder = EventRecorder(engine.store)
    acd = Acd(specs, config.acd.agents, priorities=config.acd.priorities, on_event=recorder)
    service = QueueService(acd, specs, switch, engine.catalogue, music=config.acd.music,
                           default_language=config.engine.default_language)
    for agent_id in sorted(config.acd.auto_login):
        acd.login(agent_id, service.clock())
    await recorder.start()
    engine.recorder = recorder
    callbacks = getattr(config, "callbacks", None)
    if callbacks is not None and getattr(callbacks, "endpoint", None):
        from ivr.callbacks.desk import CallbackDesk

        desk = CallbackDesk(callbacks, engine.store, service, switch, engine.catalogue,
                            region=config.callers.region, save_record=engine._save)
        service.callbacks = desk
        await desk.start()
        log.info("callbacks.ready", owner=callbacks.owner, endpoint=callbacks.endpoint)
    await service.start()
    engine.services = service
    engine.queues = service
    log.info("acd.ready", queues=sorted(specs), agents=len(config.acd.agents),
             logged_in=sorted(config.acd.auto_login))
    return service


__all__ = ["Engine", "serve", "Path"]
