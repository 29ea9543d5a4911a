"""``AriAdapter``: the client, the event stream and the live calls of one Stasis application.

Events are routed by channel id to the channel's ``AriCall`` synchronously, in arrival order.
A ``StasisStart`` of an unknown channel creates an ``AriCall`` and runs the app's
``on_new_call`` handler as one tracked task per call.  After every (re)connection the adapter
reconciles with ``GET /channels``: calls whose channel vanished are marked hung up, channels
in our application that we do not know are adopted, and playbacks that may have ended unseen
are checked.

Events are checked before they are routed (``event_problem``): an event missing a field it
needs, or with a field the adapter or ``AriCall`` reads of the wrong type (a channel id that
is not a string, ``args`` that are not a list of strings, a key that is not a string …), is
refused with ``BadEvent`` — the event stream logs ``ari.bad_event`` and reads on — so no such
event creates a call, wakes one wrongly, or raises inside one.  Channels in ``GET /channels``
that are not described the way ARI describes one are skipped (``ari.bad_channel``).  Events
about channels or playbacks nobody knows, repeated or out of order, are ignored.
"""

from __future__ import annotations

import asyncio
import math
import types
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog

from ivr.call import Call
from ivr.errors import AriError, AriTimeout, CallEnded, ChannelGone, DialFailed
from ivr.ari.bridge import AriBridge
from ivr.ari.call import END_EVENTS, AriCall
from ivr.ari.client import AriClient
from ivr.ari.events import BadEvent, EventStream, backoff_delay, json_kind
from ivr.tasks import TaskSet
from ivr.ari.timeouts import Timeouts

log = structlog.get_logger(__name__)

# What a leg rung for a video caller offers (Switch.dial(video=True)): Opus for a browser,
# u-law for a phone, VP8 and H.264 for the picture.  Asterisk keeps the ones the endpoint allows.
VIDEO_FORMATS = "opus,ulaw,alaw,vp8,h264"
DIAL_PREFIX = "ivr-dial-"        # channels the engine dials (agents, callbacks): ivr-dial-<random>
BRIDGE_PREFIX = "ivr-"           # bridges the engine makes: ivr-holding-…, ivr-mixing-…


class NewCallHandler(Protocol):
    """Runs one call from its first event to its end.

    ``args`` are the ``Stasis(app,arg,…)`` arguments.  ``adopted`` is True when the call was
    already in progress when we found it (after an engine restart or a lost event socket):
    its flow position is unknown, its answer state is ``call.state``.
    """

    def __call__(self, call: AriCall, args: list[str], *, adopted: bool) -> Awaitable[None]: ...


# What the adapter and ``AriCall`` read of a channel, besides its id: the field and its type.
_CHANNEL_PARTS: dict[str, tuple[str, ...]] = {
    "caller": ("name", "number"),
    "connected": ("name", "number"),
    "dialplan": ("context", "exten", "app_name", "app_data"),
}
_CHANNEL_TEXT = ("state", "name", "language")

# Fields an event of each type must carry to mean anything.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "StasisStart": ("channel",),
    "StasisEnd": ("channel",),
    "ChannelStateChange": ("channel",),
    "ChannelHangupRequest": ("channel",),
    "ChannelDestroyed": ("channel",),
    "ChannelDtmfReceived": ("channel", "digit"),
    "PlaybackStarted": ("playback",),
    "PlaybackContinuing": ("playback",),      # the next item of a list starts: read, ignored
    "PlaybackFinished": ("playback",),
}

_ENDS_CALL = ("StasisEnd", "ChannelDestroyed")


def channel_problem(channel: object, where: str = "channel") -> str | None:
    """What is wrong with a channel object as ARI describes it, or None when it is usable:
    a non-empty string ``id``, and the fields the engine reads of the right types."""
    if not isinstance(channel, dict):
        return f"'{where}' is {json_kind(channel)}, expected an object"
    if "id" not in channel:
        return f"'{where}' has no 'id'"
    channel_id = channel["id"]
    if not isinstance(channel_id, str) or not channel_id:
        return f"'{where}.id' is {_kind(channel_id)}, expected the channel's id (a string)"
    for key in _CHANNEL_TEXT:
        if key in channel and not isinstance(channel[key], str):
            return f"'{where}.{key}' is {json_kind(channel[key])}, expected a string"
    for part, keys in _CHANNEL_PARTS.items():
        if part not in channel:
            continue
        value = channel[part]
        if not isinstance(value, dict):
            return f"'{where}.{part}' is {json_kind(value)}, expected an object"
        for key in keys:
            if key in value and not isinstance(value[key], str):
                return f"'{where}.{part}.{key}' is {json_kind(value[key])}, expected a string"
    return None


def event_problem(event: Mapping[str, Any]) -> str | None:
    """What keeps the adapter from reading ``event``, or None: a field it needs is missing,
    or a field it reads has the wrong type.  Fields it does not read are not checked."""
    kind = event.get("type")
    if not isinstance(kind, str) or not kind:
        return f"'type' is {_kind(kind)}, expected the event's name"
    problem = _event_problem(event)
    return None if problem is None else f"{kind}: {problem}"


def _event_problem(event: Mapping[str, Any]) -> str | None:
    for key in _REQUIRED.get(event["type"], ()):
        if key not in event:
            return f"no '{key}'"
    if "channel" in event:
        problem = channel_problem(event["channel"])
        if problem is not None:
            return problem
    if "playback" in event:
        playback = event["playback"]
        if not isinstance(playback, dict):
            return f"'playback' is {json_kind(playback)}, expected an object"
        playback_id = playback.get("id")
        if not isinstance(playback_id, str) or not playback_id:
            return f"'playback.id' is {_kind(playback_id)}, expected the playback's id (a string)"
        for key in ("target_uri", "state", "media_uri"):
            if key in playback and not isinstance(playback[key], str):
                return f"'playback.{key}' is {json_kind(playback[key])}, expected a string"
    if "args" in event:
        args = event["args"]
        if not isinstance(args, list):
            return f"'args' is {json_kind(args)}, expected a list of strings"
        for arg in args:
            if not isinstance(arg, str):
                return f"'args' holds {json_kind(arg)}, expected strings only"
    if "digit" in event and not isinstance(event["digit"], str):
        return f"'digit' is {json_kind(event['digit'])}, expected a string"
    if "cause" in event and (not isinstance(event["cause"], int) or isinstance(event["cause"], bool)):
        return f"'cause' is {json_kind(event['cause'])}, expected a number (Q.850 cause)"
    if "cause_txt" in event and not isinstance(event["cause_txt"], str):
        return f"'cause_txt' is {json_kind(event['cause_txt'])}, expected a string"
    return None


def _kind(value: object) -> str:
    if value is None:
        return "missing or null"
    if value == "":
        return "empty"
    return json_kind(value)


def channel_of(event: Mapping[str, Any]) -> str | None:
    """The channel an event is about, if any (None for a value that is not a channel id)."""
    channel = event.get("channel")
    if channel is not None:
        channel_id = channel.get("id") if isinstance(channel, dict) else None
        return channel_id if isinstance(channel_id, str) and channel_id else None
    playback = event.get("playback")
    if isinstance(playback, dict):
        target = playback.get("target_uri")
        if isinstance(target, str) and target.startswith("channel:"):
            return target[len("channel:"):] or None
    return None


def stasis_args(channel: object, app: str) -> list[str] | None:
    """The Stasis arguments when ``channel`` sits in ``Stasis(app,…)``; None otherwise
    (also when the channel is not described the way ARI describes one)."""
    if not isinstance(channel, dict):
        return None
    dialplan = channel.get("dialplan")
    if not isinstance(dialplan, dict) or dialplan.get("app_name") != "Stasis":
        return None
    app_data = dialplan.get("app_data")
    if not isinstance(app_data, str):
        return None
    parts = app_data.split(",")
    if parts[0].strip() != app:
        return None
    return parts[1:]


class AriAdapter:
    """``async with AriAdapter(...) as ari: await ari.wait_connected(5)`` — then calls flow in."""

    def __init__(self, base_url: str, username: str, password: str, app: str,
                 on_new_call: NewCallHandler, *, timeouts: Timeouts = Timeouts(),
                 max_connections: int = 100, name: str = "asterisk",
                 center: str | None = None, requests: str = "http") -> None:
        self.app = app
        self.name = name                     # the server's name (``switches:``), on every call
        self.center = center
        self.timeouts = timeouts
        self.client = AriClient(base_url, username, password, app, timeouts,
                                max_connections=max_connections, requests=requests)
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
        self._bridges: dict[str, AriBridge] = {}   # bridges this adapter made, by id

    # -- lifetime ----------------------------------------------------------------------------

    async def __aenter__(self) -> AriAdapter:
        await self.open()
        self.start()
        return self

    async def open(self) -> None:
        """Open the REST client: the adapter can dial and make bridges, but hears no event and
        takes no call until ``start``.  The engine opens it first, builds the services that
        use it as their ``Switch``, and starts the event stream last."""
        if not self._opened:
            await self.client.__aenter__()
            self._opened = True

    def start(self) -> None:
        """Connect the event stream: from now on calls arrive (``on_new_call``)."""
        self._events.start()

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

    async def drain(self, grace: float | None = None) -> None:
        """Stop taking calls and let calls in progress finish within ``grace`` seconds; cancel
        the rest.  Channels still in Stasis after that are sent on in the dialplan (after the
        ``Stasis()`` line), so the dialplan can apologise or route them elsewhere.  Events keep
        flowing meanwhile (calls in progress need them); the REST client stays open."""
        if not self._opened or not self._accepting:
            return
        self._accepting = False
        grace = self.timeouts.shutdown_grace if grace is None else grace
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

    async def close(self, grace: float | None = None,
                    cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
        """``drain`` (if not done yet), run ``cleanup`` while the client is still open (e.g.
        bridges of ours), then close the event stream and the client."""
        if not self._opened:
            return
        try:
            await self.drain(grace)
            if cleanup is not None and self._events.connected:
                try:
                    await asyncio.wait_for(cleanup(), self.timeouts.request * 2)
                except (AriError, TimeoutError) as exc:
                    log.warning("ari.cleanup_failed", error=str(exc))
        finally:
            self._opened = False
            await self._helpers.cancel_all(self.timeouts.ws_close)
            await self._events.close()
            await self.client.close()

    def lose_calls(self, why: str) -> int:
        """The server is taken for gone (its event socket has been down too long): every call
        on it ends as lost (``CallEnded`` reason ``lost``), so flows and queues record it and
        free what they held.  Should the server come back with some of them, the
        reconciliation finds them unknown and they are adopted as new.  How many."""
        lost = 0
        for channel_id in list(self._calls):
            call = self._calls.pop(channel_id)
            if not call.hung_up:
                call.mark_lost(why)
                lost += 1
        return lost

    async def _send_on(self, call: AriCall) -> None:
        try:
            await call.continue_in_dialplan()
        except (CallEnded, ChannelGone):
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
                   variables: Mapping[str, str] | None = None,
                   near: Call | None = None, home: str | None = None,
                   channel_id: str | None = None, video: bool = False) -> AriCall:
        """Ring ``endpoint`` (``PJSIP/agent1``) for up to ``timeout`` seconds; the answered call.
        On this one server: ``near`` and ``home`` are for ``Switchboard``, which picks the
        server (and the trunk) before it calls this.

        Raises ``DialFailed`` (with the Q.850 cause) when it is not answered, busy or
        unreachable.  Cancelling the wait hangs the ringing channel up.
        """
        if channel_id is None:
            channel_id = f"{DIAL_PREFIX}{uuid.uuid4().hex[:20]}"
        elif not channel_id.startswith(DIAL_PREFIX):
            raise ValueError(f"a dialled channel's id starts {DIAL_PREFIX!r}, not {channel_id!r}")
        future = self.expect(channel_id)
        self._dialling.add(channel_id)
        try:
            try:
                await self.client.originate(endpoint, app=self.app, app_args=list(args),
                                            caller_id=caller_id, timeout=max(1, math.ceil(timeout)),
                                            channel_id=channel_id, variables=variables,
                                            formats=VIDEO_FORMATS if video else None)
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

    async def bridge(self, kind: str = "mixing", *, name: str | None = None,
                     near: Call | None = None) -> AriBridge:
        """A new bridge: ``mixing`` (a conversation) or ``holding`` (a waiting room)."""
        bridge_id = f"{BRIDGE_PREFIX}{kind}-{uuid.uuid4().hex[:20]}"
        await self.client.create_bridge(kind, bridge_id=bridge_id, name=name)
        bridge = AriBridge(self.client, bridge_id, kind)
        self._bridges[bridge_id] = bridge
        return bridge

    async def sweep_bridges(self) -> int:
        """Destroy the engine's bridges nobody is in any more that this adapter did not make
        (an earlier engine's holding room and finished conversations, left behind when it was
        killed); how many.  Bridges of other applications are never touched."""
        for done in [b for b, bridge in self._bridges.items() if bridge.destroyed]:
            del self._bridges[done]
        swept = 0
        for found in await self.client.list_bridges():
            if not isinstance(found, dict):
                continue
            bridge_id: object = found.get("id")
            if (not isinstance(bridge_id, str) or not bridge_id.startswith(BRIDGE_PREFIX)
                    or bridge_id in self._bridges or found.get("channels")):
                continue
            try:
                await self.client.destroy_bridge(bridge_id)
                swept += 1
            except ChannelGone:
                pass                                   # gone meanwhile
        if swept:
            log.info("ari.bridges_swept", count=swept)
        return swept

    # -- events: synchronous, in order, on the reading task ----------------------------------

    def _dispatch(self, event: dict[str, Any]) -> None:
        """Route one event to its call.  Raises ``BadEvent`` for an event it cannot read;
        the event stream logs it and reads on."""
        problem = event_problem(event)
        if problem is not None:
            raise BadEvent(problem)
        kind = event["type"]
        if kind == "StasisStart":
            channel = event["channel"]
            if channel["id"] not in self._calls:
                self._start_call(channel, list(event.get("args", [])), adopted=False)
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
        try:
            call.on_event(event)
        except Exception:
            # Contained to this event and this call; an end still ends the call.
            log.exception("ari.call_event_failed", channel=channel_id, type=kind)
            if kind in END_EVENTS:
                call.mark_gone(kind)
        if kind in _ENDS_CALL:
            self._calls.pop(channel_id, None)

    def _start_call(self, channel: dict[str, Any], args: list[str], *, adopted: bool) -> None:
        """``channel`` passed ``channel_problem`` (``_dispatch`` and the reconciliation check it)."""
        channel_id: str = channel["id"]
        call = AriCall(self.client, channel, args, adopted=adopted, spawn=self._helpers.spawn,
                       generation=self._generation)
        call.switch, call.center = self.name, self.center
        self._calls[channel_id] = call
        expected = self._expected.pop(channel_id, None)
        if expected is not None:
            if not expected.done():
                expected.set_result(call)
            else:                                  # given up on while it rang: hang it up
                self._helpers.spawn(call.hangup(), name=f"ari.dial.late.{channel_id}")
            return
        if channel_id in self._dialling or (channel_id.startswith(DIAL_PREFIX) and not adopted):
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
        except CallEnded:
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
        live: dict[str, dict[str, Any]] = {}
        for channel in channels:
            problem = channel_problem(channel)
            if problem is None:
                live[channel["id"]] = channel
            else:
                log.warning("ari.bad_channel", problem=f"GET /channels: {problem}")
        vanished = [cid for cid in known if cid not in live]
        for channel_id in vanished:
            call = self._calls.pop(channel_id, None)
            if call is not None:
                call.mark_lost("vanished while the event socket was down")
        adopted = stale = 0
        for channel_id, channel in live.items():
            if channel_id in self._calls:
                continue
            args = stasis_args(channel, self.app)
            if args is None:
                if first and channel_id.startswith(DIAL_PREFIX) and channel_id not in self._dialling:
                    # A phone an engine before us was ringing (an agent, a customer called
                    # back): nobody waits for that answer any more; stop the ring.
                    self._helpers.spawn(self._hangup_quietly(channel_id), name=f"ari.stale_ring.{channel_id}")
                    stale += 1
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
                 vanished=len(vanished), adopted=adopted, playbacks_checked=len(rechecks),
                 stale_rings=stale)

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
