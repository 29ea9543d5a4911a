"""``AriAdapter``: the client, the event stream and the live calls of one Stasis application.

Events are routed by channel id to the channel's ``AriCall`` synchronously, in arrival order.
A ``StasisStart`` of an unknown channel creates an ``AriCall`` and runs the app's
``on_new_call`` handler as one tracked task per call.  After every (re)connection the adapter
reconciles with ``GET /channels``: calls whose channel vanished are marked hung up, channels
in our application that we do not know are adopted, and playbacks that may have ended unseen
are checked.
"""

from __future__ import annotations

import asyncio
import math
import types
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog

from ivr.errors import AriError, AriTimeout, CallerHungUp, ChannelGone, DialFailed
from ivr.ari.bridge import AriBridge
from ivr.ari.call import AriCall
from ivr.ari.client import AriClient
from ivr.ari.events import EventStream, backoff_delay
from ivr.tasks import TaskSet
from ivr.ari.timeouts import Timeouts

log = structlog.get_logger(__name__)


class NewCallHandler(Protocol):
    """Runs one call from its first event to its end.

    ``args`` are the ``Stasis(app,arg,…)`` arguments.  ``adopted`` is True when the call was
    already in progress when we found it (after an engine restart or a lost event socket):
    its flow position is unknown, its answer state is ``call.state``.
    """

    def __call__(self, call: AriCall, args: list[str], *, adopted: bool) -> Awaitable[None]: ...


def channel_of(event: dict[str, Any]) -> str | None:
    """The channel an event is about, if any."""
    channel = event.get("channel")
    if channel is not None:
        return channel.get("id")
    playback = event.get("playback")
    if playback is not None:
        target = playback.get("target_uri", "")
        if target.startswith("channel:"):
            return target[len("channel:"):]
    return None


def stasis_args(channel: dict[str, Any], app: str) -> list[str] | None:
    """The Stasis arguments when ``channel`` sits in ``Stasis(app,…)``; None otherwise."""
    dialplan = channel.get("dialplan") or {}
    if dialplan.get("app_name") != "Stasis":
        return None
    parts = (dialplan.get("app_data") or "").split(",")
    if parts[0].strip() != app:
        return None
    return parts[1:]


class AriAdapter:
    """``async with AriAdapter(...) as ari: await ari.wait_connected(5)`` — then calls flow in."""

    def __init__(self, base_url: str, username: str, password: str, app: str,
                 on_new_call: NewCallHandler, *, timeouts: Timeouts = Timeouts(),
                 max_connections: int = 100) -> None:
        self.app = app
        self.timeouts = timeouts
        self.client = AriClient(base_url, username, password, app, timeouts,
                                max_connections=max_connections)
        self._on_new_call = on_new_call
        self._events = EventStream(self.client, self._dispatch, on_connected=self._reconcile)
        self._calls: dict[str, AriCall] = {}
        self._expected: dict[str, asyncio.Future[AriCall]] = {}
        self._dialling: set[str] = set()
        self._call_tasks = TaskSet("ari.calls")
        self._helpers = TaskSet("ari.helpers")
        self._reconciling = asyncio.Lock()
        self._reconciled_for = 0             # the connection generation last reconciled
        self._reconciled = asyncio.Event()
        self._accepting = True
        self._opened = False

    # -- lifetime ----------------------------------------------------------------------------

    async def __aenter__(self) -> AriAdapter:
        await self.client.__aenter__()
        self._opened = True
        self._events.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once the event socket is up (Asterisk can route calls to Stasis then).

        Raises ``AriError`` (status 401) when Asterisk refuses the user, ``AriTimeout`` when
        not connected within ``timeout`` seconds.
        """
        await self._events.wait_connected(timeout)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Like ``wait_connected``, and also until the reconciliation after the current
        connection has run (calls left in Stasis adopted, vanished ones ended)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self._events.wait_connected()
                    if self._reconciled_for == self._events.connections:
                        return
                    self._reconciled.clear()
                    await self._reconciled.wait()
        except TimeoutError as exc:
            if isinstance(exc, AriError):
                raise
            raise AriTimeout(f"the ARI adapter was not ready within {timeout}s") from exc

    @property
    def connected(self) -> bool:
        return self._events.connected

    @property
    def calls(self) -> Mapping[str, AriCall]:
        """Live calls by channel id."""
        return types.MappingProxyType(self._calls)

    async def close(self, grace: float | None = None,
                    cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop taking calls, let calls finish within ``grace`` seconds, cancel the rest.

        Channels still in Stasis after that are sent on in the dialplan (after the
        ``Stasis()`` line), so the dialplan can apologise or route them elsewhere.
        """
        if not self._opened:
            return
        self._opened = False
        self._accepting = False
        grace = self.timeouts.shutdown_grace if grace is None else grace
        try:
            pending = await self._call_tasks.wait(grace)
            if pending:
                log.warning("ari.calls_cancelled", count=len(pending))
            await self._call_tasks.cancel_all(self.timeouts.ws_close)
            leftovers = [call for call in self._calls.values() if not call.hung_up]
            if leftovers and self._events.connected:
                await asyncio.wait(
                    [self._helpers.spawn(self._send_on(call)) for call in leftovers],
                    timeout=self.timeouts.request)
            for future in self._expected.values():
                future.cancel()
            self._expected.clear()
            if cleanup is not None and self._events.connected:
                try:                          # e.g. bridges of ours, while the client is open
                    await asyncio.wait_for(cleanup(), self.timeouts.request * 2)
                except (AriError, TimeoutError) as exc:
                    log.warning("ari.cleanup_failed", error=str(exc))
        finally:
            await self._helpers.cancel_all(self.timeouts.ws_close)
            await self._events.close()
            await self.client.close()

    async def _send_on(self, call: AriCall) -> None:
        try:
            await call.continue_in_dialplan()
        except (CallerHungUp, ChannelGone):
            pass
        except AriError as exc:
            log.warning("ari.send_on_failed", channel=call.id, error=str(exc))

    # -- calls we start ourselves ------------------------------------------------------------

    def expect(self, channel_id: str) -> asyncio.Future[AriCall]:
        """A future for the ``AriCall`` of a channel we are about to originate.

        When its ``StasisStart`` arrives the future gets the call and ``on_new_call`` is not
        run for it.  Pass the same id as ``channel_id`` to ``client.originate``.
        """
        future: asyncio.Future[AriCall] = asyncio.get_running_loop().create_future()
        self._expected[channel_id] = future
        future.add_done_callback(lambda _: self._expected.pop(channel_id, None))
        return future

    async def dial(self, endpoint: str, *, timeout: float, caller_id: str | None = None,
                   args: Sequence[str] = ("dialled",),
                   variables: Mapping[str, str] | None = None) -> AriCall:
        """Ring ``endpoint`` (``PJSIP/agent1``) for up to ``timeout`` seconds; the answered call.

        Raises ``DialFailed`` (with the Q.850 cause) when it is not answered, busy or
        unreachable.  Cancelling the wait hangs the ringing channel up.
        """
        channel_id = f"ivr-dial-{uuid.uuid4().hex[:20]}"
        future = self.expect(channel_id)
        self._dialling.add(channel_id)
        try:
            try:
                await self.client.originate(endpoint, app=self.app, app_args=list(args),
                                            caller_id=caller_id, timeout=max(1, math.ceil(timeout)),
                                            channel_id=channel_id, variables=variables)
            except ChannelGone as exc:
                raise DialFailed(f"cannot dial {endpoint}: {exc}", status=exc.status) from exc
            except AriError as exc:
                # Unknown or unusable endpoint; Asterisk 22 answers an endpoint it cannot
                # create a channel for (PJSIP/nobody, an unloaded technology) with 500
                # "Allocation failed".
                if exc.status in (400, 404, 409) or (exc.status == 500 and "Allocation failed" in str(exc)):
                    raise DialFailed(f"cannot dial {endpoint}: {exc}", status=exc.status) from exc
                raise
            try:
                async with asyncio.timeout(timeout + self.timeouts.request + 5):
                    return await future
            except TimeoutError:
                raise DialFailed(f"{endpoint} neither answered nor gave up within {timeout:g} s",
                                 cause=19) from None
        except BaseException:
            if not future.done():
                future.cancel()
            elif not future.cancelled() and future.exception() is None:
                call = future.result()           # answered just as we gave up: not wanted now
                self._helpers.spawn(call.hangup(), name=f"ari.dial.drop.{channel_id}")
            if channel_id not in self._calls:
                self._helpers.spawn(self._hangup_quietly(channel_id), name=f"ari.dial.cancel.{channel_id}")
            raise
        finally:
            self._dialling.discard(channel_id)

    async def _hangup_quietly(self, channel_id: str) -> None:
        try:
            await self.client.hangup(channel_id)
        except AriError:
            pass

    async def bridge(self, kind: str = "mixing", *, name: str | None = None) -> AriBridge:
        """A new bridge: ``mixing`` (a conversation) or ``holding`` (a waiting room)."""
        bridge_id = f"ivr-{kind}-{uuid.uuid4().hex[:20]}"
        await self.client.create_bridge(kind, bridge_id=bridge_id, name=name)
        return AriBridge(self.client, bridge_id, kind)

    # -- events: synchronous, in order, on the reading task ----------------------------------

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "StasisStart":
            channel = event.get("channel") or {}
            if channel.get("id") not in self._calls:
                self._start_call(channel, list(event.get("args") or []), adopted=False)
                return
        channel_id = channel_of(event)
        if channel_id is None:
            return
        call = self._calls.get(channel_id)
        if call is None:
            if kind == "ChannelDestroyed" and channel_id in self._expected:
                # A channel we dialled ended before it was answered.
                future = self._expected.pop(channel_id)
                if not future.done():
                    cause = event.get("cause")
                    future.set_exception(DialFailed(
                        f"not answered: {event.get('cause_txt') or 'cause ' + str(cause)}",
                        cause=cause if isinstance(cause, int) else None))
            return
        call.on_event(event)
        if kind in ("StasisEnd", "ChannelDestroyed"):
            self._calls.pop(channel_id, None)

    def _start_call(self, channel: dict[str, Any], args: list[str], *, adopted: bool) -> None:
        channel_id = channel["id"]
        call = AriCall(self.client, channel, args, adopted=adopted, spawn=self._helpers.spawn,
                       generation=self._generation)
        self._calls[channel_id] = call
        expected = self._expected.pop(channel_id, None)
        if expected is not None:
            if not expected.done():
                expected.set_result(call)
            else:                                  # given up on while it rang: hang it up
                self._helpers.spawn(call.hangup(), name=f"ari.dial.late.{channel_id}")
            return
        if channel_id in self._dialling or channel_id.startswith("ivr-dial-"):
            # Answered after the dialler gave up: nobody owns it.
            self._helpers.spawn(call.hangup(), name=f"ari.dial.late.{channel_id}")
            return
        if not self._accepting:
            log.info("ari.call_refused", channel=channel_id, reason="shutting down")
            self._helpers.spawn(self._send_on(call), name=f"ari.refuse.{channel_id}")
            return
        self._call_tasks.spawn(self._run_call(call, args, adopted),
                               name=f"ari.call.{channel_id}")

    def _generation(self) -> int:
        return self._events.connections

    async def _run_call(self, call: AriCall, args: list[str], adopted: bool) -> None:
        structlog.contextvars.bind_contextvars(channel=call.id)
        log.debug("ari.call_started", caller=call.caller_number, dialled=call.dialled,
                  args=args, adopted=adopted)
        try:
            await self._on_new_call(call, args, adopted=adopted)
        except CallerHungUp:
            log.debug("ari.call_hung_up")
        except Exception:
            log.exception("ari.call_failed")
        else:
            log.debug("ari.call_ended")
        # A handler that returns leaves nobody on the line: hang up what is still ours.
        if not call.hung_up:
            try:
                await call.hangup()
            except AriError as exc:
                log.warning("ari.hangup_failed", error=str(exc))

    # -- reconciliation after each (re)connection --------------------------------------------

    async def _reconcile(self, first: bool) -> None:
        generation = self._events.connections
        try:
            async with self._reconciling:
                await self._reconcile_now(first)
        finally:
            self._reconciled_for = max(self._reconciled_for, generation)
            self._reconciled.set()

    async def _reconcile_now(self, first: bool) -> None:
        known = set(self._calls)   # only calls known before the snapshot may have vanished
        channels = await self._list_channels()
        if channels is None:
            return
        live = {channel["id"]: channel for channel in channels}
        vanished = [cid for cid in known if cid not in live]
        for channel_id in vanished:
            call = self._calls.pop(channel_id, None)
            if call is not None:
                call.mark_gone("vanished while the event socket was down")
        adopted = 0
        for channel_id, channel in live.items():
            if channel_id in self._calls:
                continue
            args = stasis_args(channel, self.app)
            if args is None:
                continue
            self._start_call(channel, args, adopted=True)
            adopted += 1
        rechecks = [call.recheck_playbacks() for call in list(self._calls.values())
                    if call.pending_playbacks]
        results = await asyncio.gather(*rechecks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            if isinstance(result, Exception):
                log.warning("ari.playback_recheck_failed", error=str(result))
        log.info("ari.reconciled", first=first, live=len(self._calls),
                 vanished=len(vanished), adopted=adopted, playbacks_checked=len(rechecks))

    async def _list_channels(self) -> list[dict[str, Any]] | None:
        attempts = self.timeouts.reconcile_attempts
        for attempt in range(attempts):
            try:
                return await self.client.list_channels()
            except AriError as exc:
                if attempt + 1 == attempts:
                    log.error("ari.reconcile_failed", error=str(exc), attempts=attempts)
                    return None
                log.debug("ari.reconcile_retry", error=str(exc), attempt=attempt)
                await asyncio.sleep(backoff_delay(attempt, self.timeouts.reconnect_min,
                                                  self.timeouts.reconnect_max,
                                                  lambda: 0.5))
        return None
