"""Wiring: config → store → flows → ARI → per-call tasks.  Start in order, stop in reverse."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import structlog

from ivr.call import Call, CallRecord
from ivr.config import Config
from ivr.errors import ChannelGone, FlowError, IvrError
from ivr.flow.loader import FlowSet, load_flows
from ivr.flow.runner import run_flow
from ivr.prompts import Catalogue, load_catalogue

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
    """Answers each new call with the flow for its dialled number and records what happened."""

    def __init__(self, config: Config, store, catalogue: Catalogue, flowset: FlowSet) -> None:
        self.config = config
        self.store = store
        self.catalogue = catalogue
        self.flowset = flowset
        self.live_calls = 0
        self.calls_handled = 0
        self.lag = LagMonitor()

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
        return True

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
        await run_flow(flowset, flow, call, record, catalogue=catalogue)

    async def _save(self, record: CallRecord) -> None:
        try:
            await self.store.record_call(record)
        except IvrError as exc:
            # The caller is already served; losing the record is logged, never raised.
            log.error("call.record_failed", error=str(exc), call=record.call_id)


async def serve(config: Config, *, ready: asyncio.Event | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Run the engine until SIGTERM/SIGINT (or ``stop`` is set)."""
    from ivr.ari.dispatcher import AriAdapter
    from ivr.store import open_store

    catalogue = load_catalogue(config.prompts / "catalog.yaml")
    flowset = load_flows(list(config.flows), catalogue)   # FlowError: refuse to start
    for w in getattr(flowset, "warnings", []):
        log.warning("flows.warning", problem=str(w))
    stop = stop or asyncio.Event()
    async with open_store(config.store_url) as store:
        engine = Engine(config, store, catalogue, flowset)
        engine.lag.start()
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
                log.info("engine.ready", flows=sorted(flowset.flow_names()),
                         numbers=sorted(flowset.numbers()), ari=config.ari.url)
                if ready is not None:
                    ready.set()
                await stop.wait()
                log.info("engine.stopping", live_calls=engine.live_calls)
                await ari.close(grace=config.engine.shutdown_grace)
        finally:
            engine.lag.stop()
            for sig in handlers:
                loop.remove_signal_handler(sig)
    log.info("engine.stopped", calls_handled=engine.calls_handled)


__all__ = ["Engine", "serve", "Path"]
