"""Several centers (scripts/sandbox.sh up --centers 2: seoul, busan, Kamailio in front), without
the engine: raw ARI and SIPp.

- Kamailio spreads callers round-robin over the centers' Asterisks, each call reaches Stasis on
  its own server, and the caller's BYE reaches it through the proxy (record-route).
- ``X-IVR-Center: busan`` sends a call to busan.
- A trunk carries an agent's leg from the caller's Asterisk (seoul) to the agent's (busan):
  the agent's phone answers, caller and leg are bridged on seoul, RTP flows both ways; the
  trunk only rings agents, passes busy back, and callers never reach it.
- A stopped Asterisk is flagged inactive by Kamailio's probes within seconds and calls go to
  the other; started again, it is flagged active and takes calls.
- ``down`` leaves no Asterisk, no Kamailio and nothing mounted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import ivr.sipp
from ivr.sipp import AgentPhone, CallResult, place_call

pytestmark = pytest.mark.e2e

Event = dict[str, Any]
Center = Any  # conftest.Center: a center's ARI, SIP address and agents
Centers = Any  # conftest.Centers (the 'centers' fixture)


class Watch:
    """The ARI events of app ``ivr`` on one center's Asterisk, kept in order."""

    def __init__(self, center: Center, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.center = center
        self.ws = ws
        self.events: list[Event] = []
        self._taken: set[int] = set()
        self._changed = asyncio.Condition()

    async def read(self) -> None:
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                async with self._changed:
                    self.events.append(json.loads(msg.data))
                    self._changed.notify_all()

    def _find(self, kind: str, match: Callable[[Event], bool]) -> Event | None:
        for i, event in enumerate(self.events):
            if i not in self._taken and event.get("type") == kind and match(event):
                self._taken.add(i)
                return event
        return None

    async def next(self, kind: str, match: Callable[[Event], bool] = lambda e: True, timeout: float = 10) -> Event:
        """The first event of this kind (that ``match`` accepts) not returned before."""
        async with asyncio.timeout(timeout), self._changed:
            while (event := self._find(kind, match)) is None:
                await self._changed.wait()
            return event

    def seen(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.get("type") == kind]


@contextlib.asynccontextmanager
async def watching(http: aiohttp.ClientSession, center: Center) -> AsyncIterator[Watch]:
    ws = await http.ws_connect(center.ws_url, headers=center.auth_header, heartbeat=20)
    watch = Watch(center, ws)
    reader = asyncio.create_task(watch.read(), name=f"ari-{center.name}")
    try:
        yield watch
    finally:
        await ws.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def ari(http: aiohttp.ClientSession, center: Center, method: str, path: str, **params: str) -> Any:
    async with http.request(method, center.base_url + path, params=params, headers=center.auth_header) as resp:
        assert resp.status < 300, f"{center.name}: {method} {path}: {resp.status} {await resp.text()}"
        return await resp.json() if resp.content_type == "application/json" else None


def from_caller(number: str) -> Callable[[Event], bool]:
    return lambda e: e["channel"]["caller"]["number"] == number


async def first_stasis(watches: list[Watch], caller: str, timeout: float = 10) -> tuple[Watch, Event]:
    """Where a caller's call reached Stasis: the watch (center) and its StasisStart."""
    waits = {asyncio.create_task(w.next("StasisStart", from_caller(caller), timeout)): w for w in watches}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    task = done.pop()
    return waits[task], task.result()


def bye_confirmed(result: CallResult) -> bool:
    """The caller's BYE got its 200 OK (through the proxy, for calls placed through it)."""
    messages = re.split(r"^-{10,}.*$", result.messages, flags=re.MULTILINE)
    return any(
        "message received" in m
        and re.search(r"^SIP/2\.0 200 ", m, re.MULTILINE)
        and re.search(r"^CSeq:\s*2 BYE", m, re.MULTILINE | re.IGNORECASE)
        for m in messages
    )


def dispatcher_flags(centers: Centers) -> dict[tuple[int, str], str]:
    """(set, destination URI) -> flags ("AP" active, "IP" inactive; probing) from kamcmd."""
    flags: dict[tuple[int, str], str] = {}
    set_id, uri = 0, ""
    for line in centers.dispatcher_list().splitlines():
        key, _, value = line.strip().partition(":")
        value = value.strip()
        if key == "ID":
            set_id = int(value)
        elif key == "URI":
            uri = value
        elif key == "FLAGS":
            flags[(set_id, uri)] = value
    return flags


def states(centers: Centers, center: Center) -> set[str]:
    """The first flag letter of every dispatcher entry of a center ("A", "I", "T")."""
    return {f[0] for (_, uri), f in dispatcher_flags(centers).items() if uri == f"sip:{center.sip}"}


async def until(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> float:
    """Poll until the condition holds; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(every)
    return time.monotonic() - started


async def answered_call(
    http: aiohttp.ClientSession, watches: list[Watch], caller: str, target: str, *, server_hangs_up: bool = False
) -> tuple[Watch, CallResult]:
    """A SIPp call to ``target``: where it reached Stasis, answered there by ARI; the caller hangs
    up 0.5 s after the answer and the server sees the call end (or, ``server_hangs_up``, the
    server hangs up by ARI and the caller gets the BYE)."""
    call = asyncio.create_task(
        place_call("15771000", caller=caller, target=target, hangup_after=None if server_hangs_up else 0.5,
                   max_duration=15, voice=5 if server_hangs_up else 0)
    )
    try:
        watch, start = await first_stasis(watches, caller)
        channel = start["channel"]
        assert channel["dialplan"]["context"] == "ivr-inbound", channel
        await ari(http, watch.center, "POST", f"/channels/{channel['id']}/answer")
        if server_hangs_up:
            # Once the caller's voice arrives, it has had the answer and sent its ACK.
            url = f"/channels/{channel['id']}/rtp_statistics"
            deadline = time.monotonic() + 5
            while (await ari(http, watch.center, "GET", url))["rxcount"] == 0:
                assert time.monotonic() < deadline, "no RTP from the caller after the answer"
                await asyncio.sleep(0.05)
            await ari(http, watch.center, "DELETE", f"/channels/{channel['id']}")
        await watch.next("StasisEnd", lambda e: e["channel"]["id"] == channel["id"])
        result = await asyncio.wait_for(call, 15)
    finally:
        if not call.done():
            call.cancel()
    expected = "remote-bye" if server_hangs_up else "local-bye"
    assert result.answered and result.outcome == expected, result.describe() + "\n" + result.errors
    return watch, result


async def wait_all_active(centers: Centers, timeout: float = 10) -> None:
    await until(lambda: all(states(centers, c) == {"A"} for c in centers.centers), timeout,
                f"every center active in Kamailio's dispatcher:\n{centers.dispatcher_list()}")


# ---------------------------------------------------------------------------------------------


def test_nothing_up_started_keeps_the_sandbox_lock(centers: Centers) -> None:
    """The fixture ran 'up --centers 2' holding /tmp/ivr-sandbox.lock: Asterisk and Kamailio must
    not have inherited it, or every later start or stop would wait as long as they run."""
    holders = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or p.name == str(os.getpid()):
            continue
        with contextlib.suppress(OSError):
            comm = (p / "comm").read_text().strip()
            cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if comm in ("asterisk", "kamailio") or "sandbox.sh" in cmdline:
                if any(os.readlink(fd) == "/tmp/ivr-sandbox.lock" for fd in (p / "fd").iterdir()):
                    holders.append(f"{p.name} {cmdline}")
    assert holders == []


async def test_kamailio_spreads_callers_round_robin_and_their_bye_passes_it(centers: Centers) -> None:
    seoul, busan = centers["seoul"], centers["busan"]
    await wait_all_active(centers)
    async with aiohttp.ClientSession() as http, watching(http, seoul) as ws_s, watching(http, busan) as ws_b:
        landed = []
        for caller in ("01011110001", "01011110002"):
            watch, result = await answered_call(http, [ws_s, ws_b], caller, centers.kamailio)
            assert bye_confirmed(result), result.messages
            landed.append(watch.center.name)
        assert sorted(landed) == ["busan", "seoul"], landed
        # The other way: the server hangs up, its BYE reaches the caller through the proxy.
        for caller in ("01011110003", "01011110004"):
            watch, _ = await answered_call(http, [ws_s, ws_b], caller, centers.kamailio, server_hangs_up=True)
            landed.append(watch.center.name)
    assert sorted(landed[2:]) == ["busan", "seoul"], landed


async def test_x_ivr_center_sends_the_call_to_that_center(
    centers: Centers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = ivr.sipp.CALLER_SCENARIO.read_text()
    marker = "      User-Agent: ivr-sipp\n"
    assert scenario.count(marker) == 1
    with_header = tmp_path / "caller-busan.xml"
    with_header.write_text(scenario.replace(marker, marker + "      X-IVR-Center: busan\n"))
    monkeypatch.setattr(ivr.sipp, "CALLER_SCENARIO", with_header)
    seoul, busan = centers["seoul"], centers["busan"]
    await wait_all_active(centers)
    async with aiohttp.ClientSession() as http, watching(http, seoul) as ws_s, watching(http, busan) as ws_b:
        # Two in a row: round-robin alone would send one of them to seoul.
        for caller in ("01022220001", "01022220002"):
            watch, _ = await answered_call(http, [ws_s, ws_b], caller, centers.kamailio)
            assert watch.center.name == "busan"
        assert ws_s.seen("StasisStart") == []


async def test_an_agents_leg_crosses_the_trunk_and_rtp_flows_both_ways(centers: Centers) -> None:
    seoul, busan = centers["seoul"], centers["busan"]
    assert busan.agents[0] == "busan1"
    caller = "01033330001"
    async with (
        aiohttp.ClientSession() as http,
        watching(http, seoul) as ws_s,
        watching(http, busan) as ws_b,
        AgentPhone(busan.agent_ports[0], ring_delay=0.3) as phone,
    ):
        call = asyncio.create_task(
            place_call("15771000", caller=caller, target=seoul.sip, voice=8, hangup_after=15, max_duration=20)
        )
        try:
            start = await ws_s.next("StasisStart", from_caller(caller))
            caller_id = start["channel"]["id"]
            await ari(http, seoul, "POST", f"/channels/{caller_id}/answer")
            leg_id = f"trunk-{uuid.uuid4().hex[:12]}"
            await ari(http, seoul, "POST", "/channels", endpoint="PJSIP/busan1@to-busan", app="ivr",
                      appArgs="agent", channelId=leg_id, callerId=caller, timeout="15")
            leg = await ws_s.next("StasisStart", lambda e: e["channel"]["id"] == leg_id)
            assert leg["args"] == ["agent"]
            [answered] = await phone.wait_for_answered(1, timeout=5)
            assert answered.caller == caller  # the caller's number (From) crossed the trunk
            bridge_id = f"bridge-{uuid.uuid4().hex[:12]}"
            await ari(http, seoul, "POST", "/bridges", type="mixing", bridgeId=bridge_id)
            await ari(http, seoul, "POST", f"/bridges/{bridge_id}/addChannel", channel=f"{caller_id},{leg_id}")

            stats: dict[str, dict[str, Any]] = {}

            async def rtp_both_ways() -> bool:
                for cid in (caller_id, leg_id):
                    stats[cid] = await ari(http, seoul, "GET", f"/channels/{cid}/rtp_statistics")
                return (
                    phone.calls[0].rtp_packets_received > 0  # the caller's voice reached busan1
                    and stats[leg_id]["rxcount"] > 0  # busan1's voice came back over the trunk
                    and stats[caller_id]["txcount"] > 0  # ... and went on to the caller
                    and stats[caller_id]["rxcount"] > 0
                )

            on_busan = [c for c in await ari(http, busan, "GET", "/channels") if c["name"].startswith("PJSIP/")]
            assert {(c["name"].rsplit("-", 1)[0], c["dialplan"]["context"]) for c in on_busan} == {
                ("PJSIP/from-seoul", "ivr-trunk"),  # the trunk call, identified as from seoul
                ("PJSIP/busan1", "ivr-agents"),  # the leg it dialled to the agent (its endpoint's context)
            }, on_busan

            deadline = time.monotonic() + 5
            while not await rtp_both_ways():
                assert time.monotonic() < deadline, f"RTP: phone {phone.calls[0].rtp_packets_received}, {stats}"
                await asyncio.sleep(0.1)
            print(f"\ntrunk call: busan1 received {phone.calls[0].rtp_packets_received} RTP packets; on seoul the "
                  f"leg received {stats[leg_id]['rxcount']}, the caller was sent {stats[caller_id]['txcount']}")

            await ari(http, seoul, "DELETE", f"/channels/{leg_id}")
            [ended] = await phone.wait_for_ended(1, timeout=5)
            assert ended.ended_by == "remote"
            await ari(http, seoul, "DELETE", f"/channels/{caller_id}")
            await ari(http, seoul, "DELETE", f"/bridges/{bridge_id}")
            result = await asyncio.wait_for(call, 10)
        finally:
            if not call.done():
                call.cancel()
        assert result.outcome == "remote-bye", result.describe()
        assert ws_b.seen("StasisStart") == []  # the trunk call never went to busan's ivr-inbound


async def test_the_trunk_rings_only_agents_passes_busy_back_and_callers_never_reach_it(centers: Centers) -> None:
    seoul, busan = centers["seoul"], centers["busan"]
    async with (
        aiohttp.ClientSession() as http,
        watching(http, seoul) as ws_s,
        watching(http, busan) as ws_b,
        AgentPhone(busan.agent_ports[0], mode="no_answer") as ringing,
        AgentPhone(busan.agent_ports[1], mode="busy") as busy,
    ):
        async def leg(endpoint: str) -> str:
            leg_id = f"trunk-{uuid.uuid4().hex[:12]}"
            await ari(http, seoul, "POST", "/channels", endpoint=endpoint, app="ivr", channelId=leg_id, timeout="10")
            return leg_id

        def gone(leg_id: str) -> Callable[[Event], bool]:
            return lambda e: e["channel"]["id"] == leg_id

        # busan2 is busy: the leg on seoul ends with cause 17 (user busy).
        destroyed = await ws_s.next("ChannelDestroyed", gone(await leg("PJSIP/busan2@to-busan")))
        assert destroyed["cause"] == 17, destroyed
        assert [c.busy for c in busy.calls] == [True]

        # Not an agent: busan refuses it (404, cause 1), nothing rings, nothing reaches Stasis there.
        destroyed = await ws_s.next("ChannelDestroyed", gone(await leg("PJSIP/15771000@to-busan")))
        assert destroyed["cause"] == 1, destroyed

        # busan1 rings until seoul gives up: the CANCEL crosses the trunk.
        leg_id = await leg("PJSIP/busan1@to-busan")
        await ringing.wait_for_calls(1, timeout=5)
        await ari(http, seoul, "DELETE", f"/channels/{leg_id}")
        [cancelled] = await ringing.wait_for_ended(1, timeout=5)
        assert cancelled.cancelled and not cancelled.answered

        # A caller dialling an agent's name on busan gets ivr-inbound's answer to a name: none.
        result = await place_call("busan1", caller="01044440001", target=busan.sip, max_duration=5)
        assert result.outcome == "rejected" and result.status_code == 404, result.describe()
        assert len(ringing.calls) == 1
        assert ws_b.seen("StasisStart") == []


async def test_a_stopped_center_is_taken_out_and_comes_back(centers: Centers) -> None:
    seoul, busan = centers["seoul"], centers["busan"]
    await wait_all_active(centers)
    async with aiohttp.ClientSession() as http, watching(http, seoul) as ws_s:
        killed_at = time.monotonic()
        kill = centers.script("center", "kill", "busan")  # a crash: SIGKILL
        assert kill.returncode == 0, kill.stdout + kill.stderr
        gone = time.monotonic() - killed_at
        inactive = await until(lambda: states(centers, busan) == {"I"}, 8,
                               f"busan flagged inactive:\n{centers.dispatcher_list()}") + gone
        print(f"\nKamailio flagged busan inactive {inactive:.1f}s after its Asterisk was killed")
        assert inactive < 4
        assert states(centers, seoul) == {"A"}
        for caller in ("01055550001", "01055550002"):
            watch, _ = await answered_call(http, [ws_s], caller, centers.kamailio)
            assert watch.center.name == "seoul"

        started_at = time.monotonic()
        start = centers.script("center", "start", "busan")
        assert start.returncode == 0, start.stdout + start.stderr
        booted = time.monotonic() - started_at
        active = await until(lambda: states(centers, busan) == {"A"}, 8,
                             f"busan flagged active:\n{centers.dispatcher_list()}")
        print(f"busan's Asterisk booted in {booted:.1f}s; Kamailio flagged it active {active:.1f}s later")
        assert active < 4
        async with watching(http, busan) as ws_b:
            landed = set()
            for caller in ("01055550003", "01055550004"):
                watch, _ = await answered_call(http, [ws_s, ws_b], caller, centers.kamailio)
                landed.add(watch.center.name)
    assert landed == {"seoul", "busan"}


async def test_calls_sent_to_a_center_that_just_died_go_on_to_the_other(centers: Centers) -> None:
    """Before the probes notice a crash, an INVITE to the dead box gets no reply: after tm's
    fr_timer (1 s) the failure route flags the box and sends the call to the next one."""
    seoul = centers["seoul"]
    await wait_all_active(centers)
    try:
        async with aiohttp.ClientSession() as http, watching(http, seoul) as ws_s:
            kill = centers.script("center", "kill", "busan")
            assert kill.returncode == 0, kill.stdout + kill.stderr
            # Two at once, round-robin: one of them is sent to busan unless it is flagged already.
            placed = time.monotonic()
            calls = await asyncio.gather(*(
                answered_call(http, [ws_s], caller, centers.kamailio) for caller in ("01066660001", "01066660002")
            ))
            assert [watch.center.name for watch, _ in calls] == ["seoul", "seoul"]
            print(f"\ntwo calls placed right after busan was killed: both answered on seoul, both over "
                  f"{time.monotonic() - placed:.1f}s after they were placed (0.5 s of talk each)")
    finally:
        start = centers.script("center", "start", "busan")
        assert start.returncode == 0, start.stdout + start.stderr
        await wait_all_active(centers)


def _processes(comm: str) -> list[str]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                if (p / "comm").read_text().strip() == comm and (p / "stat").read_text().split()[2] != "Z":
                    out.append(p.name)
    return out


def test_down_leaves_no_asterisk_no_kamailio_and_nothing_mounted(centers: Centers) -> None:
    """Last: everything down (and the main sandbox brought back up if it was running)."""
    with centers.lock():
        main_was_up = centers.script("status").returncode == 0
        down = centers.script("down")
        try:
            assert down.returncode == 0, down.stdout + down.stderr
            root = str(centers.repo / ".sandbox" / "root")
            mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
            assert [m for m in mounts if m == root or m.startswith(root + "/")] == []
            assert _processes("asterisk") == []
            assert _processes("kamailio") == []
            assert not (centers.repo / ".sandbox" / "centers.json").exists()
            status = centers.script("status", "--centers")
            assert status.returncode == 3, status.stdout
        finally:
            if main_was_up:
                up = centers.script("up")
                assert up.returncode == 0, up.stdout + up.stderr
