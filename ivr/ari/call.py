"""``AriCall``: the ``Call`` port for one Asterisk channel in our Stasis application.

The dispatcher feeds the channel's events to ``on_event`` synchronously and in order; it
updates state and wakes waiters.  Waiters are futures that only *wake* the waiting method
(their result says why); the method then looks at the call's state.  So a hang-up wakes
every waiter once, and no future ever holds an exception nobody reads.

At the port a call hears ``Prompt`` values; this adapter alone turns them into Asterisk media
(``sound:ivr/<language>/<id>``, the layout ``ivr prompts build`` renders into Asterisk's sounds
folder) and turns a gone channel into ``CallEnded`` with the way it ended.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import structlog

from ivr.call import Gathered, Prompt
from ivr.errors import CallEnded, ChannelGone
from ivr.ari.client import AriClient

log = structlog.get_logger(__name__)

# Why a waiter woke up.
_FINISHED = "finished"     # PlaybackFinished (state done/failed/canceled…)
_KEY = "key"               # a key was pressed
_GONE = "gone"             # the channel hung up or left Stasis

END_EVENTS = frozenset({"ChannelHangupRequest", "ChannelDestroyed", "StasisEnd"})   # a call ends

# Playback ids: unique per engine process (random prefix) without a system call per prompt.
_PLAYBACK_PREFIX = uuid.uuid4().hex[:16]
_playback_numbers = itertools.count(1)

Spawn = Callable[[Coroutine[Any, Any, Any]], Any]

SOUNDS_FOLDER = "ivr"           # under Asterisk's sounds folder: <folder>/<language>/<id>.wav

# What one channel's keys may cost.  A person keys at most about 10 a second (a DTMF tone and
# its gap last 80 ms or more); a broken or hostile device can send thousands.  Keys beyond the
# rate (a bucket of KEY_BURST refilled at KEY_RATE a second) are dropped, and so are keys that
# would make more than MAX_BUFFERED_KEYS wait unread, so that one device cannot lag the loop
# until callers are turned away.  Each second with drops is logged once (``call.keys_dropped``).
KEY_RATE = 15.0
KEY_BURST = 30.0
MAX_BUFFERED_KEYS = 64


def media_uri(prompt: Prompt) -> str:
    """The Asterisk media URI of a prompt: ``sound:ivr/ko/welcome``."""
    return f"sound:{SOUNDS_FOLDER}/{prompt.language}/{prompt.id}"


# How a call ended, from what the channel did (the port's ``CallEnded.reason``).
_HANGUP, _ENGINE, _TRANSFERRED, _LOST = "hangup", "engine", "transferred", "lost"


class _Playback:
    """One ARI playback: the whole prompt list of one ``play``, its items in order."""

    __slots__ = ("id", "media", "waiter", "state", "ended_on", "posted", "generation", "barge_in")

    def __init__(self, playback_id: str, media: tuple[str, ...], waiter: asyncio.Future[str],
                 generation: int, barge_in: bool) -> None:
        self.id = playback_id
        self.media = media
        self.waiter = waiter
        self.state: str | None = None
        self.ended_on = ""                 # the item PlaybackFinished named (its media_uri)
        self.posted = False
        self.generation = generation
        self.barge_in = barge_in


# States of a playback that still plays (``GET /playbacks/{id}``); "continuing" is the
# moment between two items of a list.
_PLAYING_STATES = frozenset({"queued", "playing", "paused", "continuing", ""})


class AriCall:
    """One live call on one channel.  Create through the dispatcher, not by hand."""

    # Thousands live at once: slots, not a dict per call.
    __slots__ = ("_client", "_id", "_caller_number", "_dialled", "_language", "args", "adopted",
                 "_spawn", "_generation", "_state", "_digits", "_key_tokens", "_key_time",
                 "keys_dropped", "_drops_logged_at", "_digit_waiter", "_playbacks",
                 "_gone_reason", "_ended_as", "_hanging_up", "_gone", "hangup_cause",
                 "left_stasis", "switch", "center")

    def __init__(self, client: AriClient, channel: dict[str, Any], args: Sequence[str], *,
                 adopted: bool = False, spawn: Spawn | None = None,
                 generation: Callable[[], int] = lambda: 0) -> None:
        self._client = client
        self._id: str = channel["id"]
        self._describe(channel)
        self.args: list[str] = list(args)
        self.adopted = adopted
        self._spawn = spawn
        self._generation = generation
        self._state: str = channel.get("state", "")
        self._digits: list[str] = []          # at most MAX_BUFFERED_KEYS: pop(0) is cheap
        self._key_tokens = KEY_BURST
        self._key_time: float | None = None
        self.keys_dropped = 0                     # keys dropped by the bound above, so far
        self._drops_logged_at: float | None = None
        self._digit_waiter: asyncio.Future[str] | None = None
        self._playbacks: dict[str, _Playback] = {}
        self._gone_reason: str | None = None
        self._ended_as = _HANGUP                  # CallEnded.reason once gone
        self._hanging_up = False                  # the engine asked Asterisk to hang up
        self._gone: asyncio.Future[str] | None = None
        self.hangup_cause: int | None = None
        self.left_stasis = False
        self.switch = ""                          # set by the adapter: its server's name
        self.center: str | None = None            # and that server's center

    def __repr__(self) -> str:
        return f"<AriCall {self._id} caller={self.caller_number!r} dialled={self.dialled!r}>"

    # -- what the call is --------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    def _describe(self, channel: dict[str, Any]) -> None:
        """What the call reads of the channel as Asterisk last described it; the rest of
        the description (a few dozen objects a call) is not kept."""
        self._caller_number: str = (channel.get("caller") or {}).get("number", "") or ""
        self._dialled: str = (channel.get("dialplan") or {}).get("exten", "") or ""
        self._language: str = channel.get("language", "") or ""

    @property
    def caller_number(self) -> str:
        return self._caller_number

    @property
    def dialled(self) -> str:
        return self._dialled

    @property
    def language(self) -> str:
        return self._language

    @property
    def state(self) -> str:
        """Asterisk's channel state: ``Ring``, ``Up`` …"""
        return self._state

    @property
    def hung_up(self) -> bool:
        return self._gone_reason is not None

    @property
    def pending_playbacks(self) -> list[str]:
        return list(self._playbacks)

    # -- events, fed by the dispatcher in order ----------------------------------------------

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "ChannelDtmfReceived":
            self._on_key(event.get("digit", ""))
        elif kind == "PlaybackFinished":
            playback = event.get("playback") or {}
            self._finish_playback(playback.get("id", ""), playback.get("state", "done"),
                                  playback.get("media_uri", ""))
        # PlaybackStarted (one per item of a list) and PlaybackContinuing (the next item
        # starts) change nothing: a list's waiter wakes only at its one PlaybackFinished.
        elif kind == "ChannelStateChange":
            channel = event.get("channel") or {}
            if channel:
                self._describe(channel)
            self._state = channel.get("state", self._state)
        elif kind in END_EVENTS:
            if kind == "StasisEnd":
                self.left_stasis = True
            cause = event.get("cause")
            if isinstance(cause, int) and self.hangup_cause is None:
                self.hangup_cause = cause
            # A soft hang-up is Asterisk's own doing (it shuts down or restarts, a module is
            # unloaded, an operator's 'channel request hangup'): the caller did not hang up.
            soft = kind == "ChannelHangupRequest" and event.get("soft") is True
            if self._hanging_up:                   # our own hang-up, seen before its answer
                self.mark_gone("hung up by the engine", ended_as=_ENGINE)
            else:
                self.mark_gone(kind if not soft else "ended by Asterisk (soft hang-up)",
                               ended_as=_LOST if soft else _HANGUP)

    def _on_key(self, digit: str) -> None:
        if not digit or self.hung_up:
            return
        now = asyncio.get_running_loop().time()
        if self._key_time is not None:
            self._key_tokens = min(KEY_BURST, self._key_tokens + (now - self._key_time) * KEY_RATE)
        self._key_time = now
        if self._key_tokens < 1 or len(self._digits) >= MAX_BUFFERED_KEYS:
            self._drop_key(now)
            return
        self._key_tokens -= 1
        self._digits.append(digit)
        waiter = self._digit_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(_KEY)
        for playback in self._playbacks.values():
            if playback.barge_in and not playback.waiter.done():
                playback.waiter.set_result(_KEY)

    def _drop_key(self, now: float) -> None:
        self.keys_dropped += 1
        if self._drops_logged_at is None or now - self._drops_logged_at >= 1.0:
            self._drops_logged_at = now
            log.warning("call.keys_dropped", channel=self._id, dropped=self.keys_dropped,
                        why=f"more than {KEY_RATE:g} keys a second (burst {KEY_BURST:g}) or "
                            f"{MAX_BUFFERED_KEYS} unread")

    def _finish_playback(self, playback_id: str, state: str, media: str = "") -> None:
        playback = self._playbacks.get(playback_id)
        if playback is None:
            return
        playback.state = state
        playback.ended_on = media
        if not playback.waiter.done():
            playback.waiter.set_result(_FINISHED)

    @property
    def ended_as(self) -> str | None:
        """How the call ended (``hangup``, ``engine``, ``transferred``, ``lost``); None while live."""
        return self._ended_as if self._gone_reason is not None else None

    def mark_gone(self, reason: str, *, ended_as: str = _HANGUP) -> None:
        """The channel hung up or left Stasis: wake every waiter; later calls raise."""
        if self._gone_reason is not None:
            return
        self._gone_reason = reason
        self._ended_as = ended_as
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(reason)
        log.debug("call.gone", channel=self._id, reason=reason)
        if self._digit_waiter is not None and not self._digit_waiter.done():
            self._digit_waiter.set_result(_GONE)
        for playback in self._playbacks.values():
            if not playback.waiter.done():
                playback.waiter.set_result(_GONE)

    def mark_lost(self, reason: str) -> None:
        """The switch lost the channel (it vanished while the engine was not listening)."""
        self.mark_gone(reason, ended_as=_LOST)

    def _raise_if_gone(self) -> None:
        if self._gone_reason is not None:
            raise CallEnded(f"call {self._id} is over ({self._gone_reason})", reason=self._ended_as)

    def _gone_from(self, exc: ChannelGone) -> CallEnded:
        self.mark_gone("not found")
        return CallEnded(f"call {self._id} is over (the channel is gone)", reason=self._ended_as)

    # -- the Call port -----------------------------------------------------------------------

    async def answer(self) -> None:
        self._raise_if_gone()
        if self._state == "Up":
            return
        try:
            await self._client.answer(self._id)
        except ChannelGone as exc:
            raise self._gone_from(exc) from exc
        self._state = "Up"

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> None:
        """Play ``prompts`` in order, as one Asterisk playback (a media playlist).

        With ``barge_in`` a key stops the rest of the list, and a key already buffered skips
        it.  Returns when the list has ended; raises ``CallEnded`` when the caller hangs up.
        """
        self._raise_if_gone()
        if not prompts or (barge_in and self._digits):
            return
        await self._play_list(tuple(media_uri(prompt) for prompt in prompts), barge_in)
        self._raise_if_gone()

    # What Asterisk 22 does with a list (res/res_stasis_playback.c, play_on_channel): one
    # Playback plays the items in order; each item that starts sends PlaybackStarted (its
    # media_uri), each item followed by another ends with PlaybackContinuing (state
    # "continuing", next_media_uri), and the last one ends with the list's one
    # PlaybackFinished.  An item that cannot be played (no such file in any format: the
    # stream cannot be opened) is logged by Asterisk ("Playback failed for ...") and skipped,
    # and is reported exactly like an item that played: PlaybackContinuing.  Only a failed
    # *last* item makes the PlaybackFinished "failed", naming that item.  So a missing prompt
    # inside a list is skipped as before, the rest plays, and the engine logs
    # ``call.media_failed`` for a failed last item only (Asterisk's own log names the others;
    # flows are checked against the catalogue and the rendered audio when they load, so a
    # missing file is a deployment mistake).  DELETE stops the whole list: state "done" (a
    # list still queued is cancelled before its first item).  Stopped in the instant between
    # two items, Asterisk may end the list without any PlaybackFinished; harmless here, as
    # the engine never waits for the end of a playback it stopped.

    async def _play_list(self, media: tuple[str, ...], barge_in: bool) -> None:
        """Play media items as one playback; return when it ends or a key stopped it."""
        loop = asyncio.get_running_loop()
        playback_id = f"{_PLAYBACK_PREFIX}-{next(_playback_numbers)}"
        # The waiter exists before the POST: a short file can finish before the 201.
        playback = _Playback(playback_id, media, loop.create_future(), self._generation(),
                             barge_in)
        self._playbacks[playback_id] = playback
        for uri in media:
            log.debug("call.play", media=uri, playback=playback_id)
        # The POST is not cancelled with the call's task: Asterisk may start the playback
        # anyway, so a cancelled play waits for the POST's answer and then stops it (else the
        # prompts play on, and the channel's next commands, a bridge move, wait behind them).
        post = asyncio.ensure_future(self._client.play(self._id, playback_id, media,
                                                       lang=self.language or None))
        try:
            try:
                await asyncio.shield(post)
            except ChannelGone as exc:
                raise self._gone_from(exc) from exc
            playback.posted = True
            if playback.generation != self._generation() and not playback.waiter.done():
                # The event socket was lost while the POST was in flight: the end of this
                # playback may have gone unseen.
                await self.recheck_playback(playback_id)
            why = await playback.waiter
            if why == _GONE:
                self._raise_if_gone()
            if why == _KEY:
                await self._stop_playback(playback_id)
                return
            if playback.state == "failed":
                log.warning("call.media_failed", channel=self._id,
                            media=playback.ended_on or media[-1])
        except asyncio.CancelledError:
            if not playback.waiter.done() and self._spawn is not None:
                self._spawn(self._stop_after(post, playback_id))
            elif not post.done():
                post.cancel()
            raise
        finally:
            self._playbacks.pop(playback_id, None)

    async def _stop_playback(self, playback_id: str) -> None:
        try:
            await self._client.stop_playback(playback_id)
        except ChannelGone:
            pass  # it ended on its own meanwhile
        self._raise_if_gone()

    async def _stop_after(self, post: asyncio.Future[Any], playback_id: str) -> None:
        """Stop a playback once its POST has been answered (at once when it has)."""
        try:
            await post
        except Exception:          # the POST failed: there is nothing to stop
            return
        await self._stop_quietly(playback_id)

    async def _stop_quietly(self, playback_id: str) -> None:
        try:
            await self._client.stop_playback(playback_id)
        except ChannelGone:
            pass

    async def recheck_playback(self, playback_id: str) -> None:
        """Ask Asterisk whether a playback still runs; wake its waiter when it does not."""
        playback = self._playbacks.get(playback_id)
        if playback is None or playback.waiter.done() or not playback.posted:
            return
        try:
            found = await self._client.get_playback(playback_id)
        except ChannelGone:
            self._finish_playback(playback_id, "done")
            return
        state = found.get("state", "") if isinstance(found, dict) else ""
        if isinstance(state, str) and state not in _PLAYING_STATES:
            media = found.get("media_uri", "") if isinstance(found, dict) else ""
            self._finish_playback(playback_id, state, media if isinstance(media, str) else "")

    async def recheck_playbacks(self) -> None:
        """After a reconnect: playbacks that ended during the gap must not hang the call."""
        for playback_id in list(self._playbacks):
            await self.recheck_playback(playback_id)

    async def gather(self, *, max_digits: int, first_timeout: float, inter_timeout: float,
                     terminator: str = "#") -> Gathered:
        if max_digits < 1:
            raise ValueError(f"gather: max_digits must be at least 1, got {max_digits}")
        self._raise_if_gone()
        digits: list[str] = []
        timeout = first_timeout
        while len(digits) < max_digits:
            if not self._digits:
                if not await self._wait_key(timeout):
                    return Gathered("".join(digits), "timeout")
            key = self._digits.pop(0)
            if terminator and key == terminator:
                return Gathered("".join(digits), "terminator")
            digits.append(key)
            timeout = inter_timeout
        return Gathered("".join(digits), "max_digits")

    async def _wait_key(self, timeout: float) -> bool:
        """Wait for a key to be buffered; False on timeout.  Raises when the caller hangs up."""
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._digit_waiter = waiter
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            return False
        finally:
            self._digit_waiter = None
        self._raise_if_gone()
        return True

    def flush_digits(self) -> None:
        self._digits.clear()

    async def transfer(self, context: str, extension: str, priority: int = 1) -> None:
        self._raise_if_gone()
        try:
            await self._client.continue_in_dialplan(self._id, context, extension, priority)
        except ChannelGone as exc:
            raise self._gone_from(exc) from exc
        self._left_for_dialplan()

    async def hangup(self) -> None:
        if self.hung_up:
            return
        self._hanging_up = True
        try:
            await self._client.hangup(self._id)
        except ChannelGone:
            pass
        self.mark_gone("hung up by the engine", ended_as=_ENGINE)

    # -- beyond the port: what queues will need ----------------------------------------------

    async def continue_in_dialplan(self) -> None:
        """Leave Stasis and go on after the ``Stasis()`` line of the dialplan."""
        self._raise_if_gone()
        try:
            await self._client.continue_in_dialplan(self._id)
        except ChannelGone as exc:
            raise self._gone_from(exc) from exc
        self._left_for_dialplan()

    def _left_for_dialplan(self) -> None:
        # Our part is over even before StasisEnd arrives: nobody may hang this channel up.
        self.left_stasis = True
        self.mark_gone("left for the dialplan", ended_as=_TRANSFERRED)

    async def wait_hangup(self, timeout: float | None = None) -> bool:
        """Wait until the channel is gone (hung up, left Stasis); False if ``timeout`` passed first."""
        if self._gone_reason is not None:
            return True
        loop = asyncio.get_running_loop()
        gone = self._gone
        if gone is None:
            gone = self._gone = loop.create_future()
        if timeout is None:
            await asyncio.shield(gone)
            return True
        # One future and one timer (what a waiting caller holds between announcements), not
        # wait_for's and shield's: ``gone`` itself is never cancelled by a waiter.
        waiter: asyncio.Future[bool] = loop.create_future()

        def wake(_: object) -> None:
            if not waiter.done():
                waiter.set_result(True)

        def time_out() -> None:
            if not waiter.done():
                waiter.set_result(False)

        gone.add_done_callback(wake)
        timer = loop.call_later(timeout, time_out)
        try:
            return await waiter
        finally:
            timer.cancel()
            gone.remove_done_callback(wake)

    async def set_variable(self, name: str, value: str) -> None:
        await self._channel_op(self._client.set_variable(self._id, name, value))

    async def start_moh(self, moh_class: str | None = None) -> None:
        await self._channel_op(self._client.moh_start(self._id, moh_class))

    async def stop_moh(self) -> None:
        await self._channel_op(self._client.moh_stop(self._id))

    async def start_ringing(self) -> None:
        await self._channel_op(self._client.ring_start(self._id))

    async def stop_ringing(self) -> None:
        await self._channel_op(self._client.ring_stop(self._id))

    async def _channel_op(self, op: Coroutine[Any, Any, None]) -> None:
        if self.hung_up:
            op.close()
            self._raise_if_gone()
        try:
            await op
        except ChannelGone as exc:
            raise self._gone_from(exc) from exc
