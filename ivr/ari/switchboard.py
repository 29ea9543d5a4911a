"""``Switchboard``: several media servers (``switches:``) as one ``Switch`` for the services.

One ``AriAdapter`` per Asterisk, each with its own REST client and event socket; calls
arrive from all of them into the same engine, each ``AriCall`` carrying its server's name
and center.  The switchboard decides where a leg or a bridge goes:

- ``bridge(near=call)`` and ``dial(near=call)`` go to the server of ``call``: a caller and
  the agent's leg must be on one server to share a bridge;
- ``dial(home=center)`` names where the phone sits: from a server of another center the
  leg crosses the trunk, ``PJSIP/agent3`` becoming ``PJSIP/agent3@<trunk of a server of
  that center>``, and that server's dialplan rings the phone (``ivr-trunk``);
- with neither, a connected server of ``home``'s center, else any connected server.

A server whose event socket stays down longer than ``down_after`` seconds is taken for
gone: its calls end as lost (``AriAdapter.lose_calls``) and ``on_down(name, center)`` is
told (the queues log that center's agents out when none of its servers is left); when it
connects again, ``on_up(name, center)``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import structlog

from ivr.ari.bridge import AriBridge
from ivr.ari.call import AriCall
from ivr.ari.dispatcher import AriAdapter
from ivr.call import Call
from ivr.errors import AriError, AriTimeout, DialFailed
from ivr.tasks import TaskSet

log = structlog.get_logger("ivr.ari.switchboard")

DOWN_AFTER = 5.0          # seconds without an event socket before a server is taken for gone
_PJSIP_RESOURCE = re.compile(r"PJSIP/(?P<resource>[^/@\s]+)")


class Switchboard:
    """``adapters``: one ``AriAdapter`` per server (each built with its ``name`` and
    ``center``); ``trunks``: server name → the endpoint the other servers reach it by."""

    def __init__(self, adapters: Sequence[AriAdapter], trunks: Mapping[str, str | None], *,
                 down_after: float = DOWN_AFTER, watch_interval: float = 0.5,
                 on_down: Callable[[str, str | None], None] | None = None,
                 on_up: Callable[[str, str | None], None] | None = None) -> None:
        if not adapters:
            raise ValueError("a switchboard needs at least one server")
        self.adapters = list(adapters)
        self._by_name = {a.name: a for a in self.adapters}
        if len(self._by_name) != len(self.adapters):
            raise ValueError("two servers have the same name")
        self.trunks = dict(trunks)
        self.down_after = down_after
        self.watch_interval = watch_interval
        self.on_down = on_down
        self.on_up = on_up
        self._down: set[str] = set()
        self._since: dict[str, float] = {}
        self._watch = TaskSet("ari.switchboard")

    # -- lifetime: the adapters', together ------------------------------------------------

    async def open(self) -> None:
        for a in self.adapters:
            await a.open()

    def start(self) -> None:
        for a in self.adapters:
            a.start()
        self._watch.spawn(self._watch_loop(), name="ari.switchboard.watch")

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Until every server's event socket is up.  With several servers a server that does
        not answer within ``timeout`` does not keep the engine from serving the others: it is
        logged and the wait returns; with one server its ``AriError`` is raised."""
        if len(self.adapters) == 1:
            await self.adapters[0].wait_connected(timeout)
            return
        await self._each("wait_connected", timeout)

    async def wait_ready(self, timeout: float | None = None) -> None:
        if len(self.adapters) == 1:
            await self.adapters[0].wait_ready(timeout)
            return
        await self._each("wait_ready", timeout)

    async def _each(self, method: str, timeout: float | None) -> None:
        results = await asyncio.gather(*(getattr(a, method)(timeout) for a in self.adapters),
                                       return_exceptions=True)
        for a, result in zip(self.adapters, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, (AriError, AriTimeout)):
                    raise result
                log.warning("ari.switch_unavailable", switch=a.name, center=a.center,
                            error=str(result))
        if all(isinstance(r, BaseException) for r in results):
            first = results[0]
            assert isinstance(first, BaseException)
            raise first

    async def drain(self, grace: float | None = None) -> None:
        await self._watch.cancel_all(1)
        await asyncio.gather(*(a.drain(grace) for a in self.adapters))

    async def close(self, grace: float | None = None) -> None:
        await self._watch.cancel_all(1)
        await asyncio.gather(*(a.close(grace) for a in self.adapters))

    def live(self) -> list[str]:
        """Names of the servers taken for up now."""
        return [a.name for a in self.adapters if a.name not in self._down]

    # -- the Switch port --------------------------------------------------------------------

    async def dial(self, endpoint: str, *, timeout: float, caller_id: str | None = None,
                   args: Sequence[str] = ("dialled",), variables: Mapping[str, str] | None = None,
                   near: Call | None = None, home: str | None = None,
                   channel_id: str | None = None, video: bool = False) -> AriCall:
        adapter = self._near(near) or self._of_center(home) or self._any()
        target = endpoint
        if home is not None and adapter.center is not None and adapter.center != home:
            target = self._across(endpoint, home)
        if target != endpoint:
            log.info("ari.dial_across", switch=adapter.name, to_center=home, endpoint=target)
        return await adapter.dial(target, timeout=timeout, caller_id=caller_id, args=args,
                                  variables=variables, channel_id=channel_id, video=video)

    async def bridge(self, kind: str = "mixing", *, name: str | None = None,
                     near: Call | None = None) -> AriBridge:
        adapter = self._near(near) or self._any()
        return await adapter.bridge(kind, name=name)

    async def sweep_bridges(self) -> int:
        swept = 0
        for a in self.adapters:
            if a.connected:
                try:
                    swept += await a.sweep_bridges()
                except AriError as exc:
                    log.info("ari.sweep_failed", switch=a.name, error=str(exc))
        return swept

    # -- inside ---------------------------------------------------------------------------

    def _near(self, call: Call | None) -> AriAdapter | None:
        if call is None:
            return None
        return self._by_name.get(call.switch)

    def _of_center(self, center: str | None) -> AriAdapter | None:
        if center is None:
            return None
        return next(self._up(a for a in self.adapters if a.center == center), None)

    def _any(self) -> AriAdapter:
        return next(self._up(self.adapters), self.adapters[0])

    def _up(self, adapters: Iterable[AriAdapter]) -> Iterator[AriAdapter]:
        return (a for a in adapters if a.connected and a.name not in self._down)

    def _across(self, endpoint: str, center: str) -> str:
        server = self._of_center(center) or next(
            (a for a in self.adapters if a.center == center), None)
        m = _PJSIP_RESOURCE.fullmatch(endpoint)
        trunk = self.trunks.get(server.name) if server is not None else None
        if server is None or trunk is None or m is None:
            raise DialFailed(f"cannot reach {endpoint} in center {center} from another center "
                             "(no server or trunk for it, or not a PJSIP/<name> endpoint)", cause=3)
        return f"PJSIP/{m.group('resource')}@{trunk}"

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self.watch_interval)
            try:
                self.check(time.monotonic())
            except Exception:                 # the watch must survive any one bad step
                log.exception("ari.switchboard_check_failed")

    def check(self, now: float) -> None:
        """Take servers down (and back up) by how long their event socket has been down."""
        for a in self.adapters:
            if a.connected:
                self._since.pop(a.name, None)
                if a.name in self._down:
                    self._down.discard(a.name)
                    log.warning("ari.switch_up", switch=a.name, center=a.center)
                    if self.on_up is not None:
                        self.on_up(a.name, a.center)
                continue
            since = self._since.setdefault(a.name, now)
            if a.name not in self._down and now - since >= self.down_after:
                self._down.add(a.name)
                lost = a.lose_calls(f"switch {a.name} down")
                log.error("ari.switch_down", switch=a.name, center=a.center, calls_lost=lost,
                          down_for_s=round(now - since, 1))
                if self.on_down is not None:
                    self.on_down(a.name, a.center)

    def centers_up(self) -> set[str]:
        """The centers with a server taken for up."""
        return {a.center for a in self.adapters if a.center and a.name not in self._down}


__all__ = ["Switchboard", "DOWN_AFTER"]
