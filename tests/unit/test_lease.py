"""The engine lease (``ivr.lease``) against a real throw-away PostgreSQL: one active engine,
the others standby; a dead holder is replaced within ``ttl + poll``; a stale holder steps
down; a database that is away makes nobody step down; and ``serve`` on PostgreSQL connects to
Asterisk only once it holds the lease."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from structlog.testing import capture_logs

from ivr.app import serve
from ivr.config import load_config
from ivr.lease import CHANNEL, EXIT_LEASE_LOST, EngineLease, engine_lease, holder_id
from ivr.testing.fake_ari import FakeAri

REPO = Path(__file__).resolve().parents[2]
TTL = 1.0          # short terms keep the tests quick; every bound below is in terms of it
POLL = 0.25


class Lost:
    """An ``on_lost`` that notes who took the lease."""

    def __init__(self) -> None:
        self.taken_by: list[str | None] = []
        self.event = asyncio.Event()

    def __call__(self, taken_by: str | None) -> None:
        self.taken_by.append(taken_by)
        self.event.set()


async def row(url: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchrow("SELECT holder, expires_at, acquired_at, expires_at > now() AS live "
                                   "FROM engine_lease WHERE name = 'engine'")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def standing_by(lease: EngineLease) -> AsyncIterator[asyncio.Task[bool]]:
    """``lease.acquire`` running in the background for the block; stopped at its end."""
    stop = asyncio.Event()
    task = asyncio.create_task(lease.acquire(stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await lease.release()


# -- a holder in a process of its own: what a crash or a freeze does to it ----------------------

HOLDER = """
import asyncio, sys
from ivr.lease import EngineLease
from ivr.logs import configure_logging

configure_logging("json", "info")

async def main():
    lease = EngineLease(sys.argv[1], ttl=float(sys.argv[2]), holder=sys.argv[3])
    assert await lease.acquire()
    print("held", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@contextlib.asynccontextmanager
async def holder_process(url: str, name: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """An engine process holding the lease (default ``on_lost``: it exits)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, url, str(TTL), name, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        assert line.strip() == b"held", (line, await proc.stderr.read() if proc.stderr else b"")
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def log_events(stderr: bytes) -> list[dict]:
    out = []
    for line in stderr.decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


# -- taking and keeping -------------------------------------------------------------------------

async def test_of_two_engines_starting_together_one_is_active_and_the_other_waits(postgres_url):
    a = EngineLease(postgres_url, ttl=TTL, holder="engine-a", poll=POLL)
    b = EngineLease(postgres_url, ttl=TTL, holder="engine-b", poll=POLL)
    stop = asyncio.Event()
    with capture_logs() as logs:
        tasks = {lease.holder: asyncio.create_task(lease.acquire(stop)) for lease in (a, b)}
        done, pending = await asyncio.wait(tasks.values(), timeout=5,
                                           return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1 and len(pending) == 1
        winner = a if a.held else b
        loser = b if winner is a else a
        assert not loser.held
        # The other keeps waiting through several terms of the lease.
        await asyncio.sleep(3 * TTL)
        assert not tasks[loser.holder].done() and winner.held and not loser.held
        stop.set()
        assert await asyncio.wait_for(tasks[loser.holder], 5) is False
    current = await row(postgres_url)
    assert current is not None and current["holder"] == winner.holder and current["live"]
    standby = [e for e in logs if e["event"] == "engine.standby"]
    assert [(e["holder"], e["active"]) for e in standby] == [(loser.holder, winner.holder)], standby
    (active,) = [e for e in logs if e["event"] == "engine.active"]
    assert active["holder"] == winner.holder and active["waited"] < 1
    await winner.release()
    await loser.release()
    assert await row(postgres_url) is None               # released: the row is gone


async def test_the_holder_renews_its_lease_on_the_database_clock(postgres_url):
    async with EngineLease(postgres_url, ttl=TTL, holder="engine-a", on_lost=Lost()) as a:
        assert await a.acquire()
        first = await row(postgres_url)
        seen = [first["expires_at"]]
        for _ in range(4):
            await asyncio.sleep(TTL)                      # each lasts a whole term: only renewals keep it
            current = await row(postgres_url)
            assert current["holder"] == "engine-a" and current["live"], current
            seen.append(current["expires_at"])
        assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
        assert current["acquired_at"] == first["acquired_at"]   # renewed, not taken again
        assert a.held


async def test_holder_ids_name_the_host_and_process_and_differ():
    ids = {holder_id() for _ in range(20)}
    assert len(ids) == 20
    assert all(i.startswith(f"{socket.gethostname()}/{os.getpid()}/") for i in ids)


# -- the holder dies ----------------------------------------------------------------------------

async def test_when_the_active_engine_is_killed_the_standby_takes_over_within_ttl_and_a_poll(postgres_url):
    async with holder_process(postgres_url, "engine-a") as proc:
        b = EngineLease(postgres_url, ttl=TTL, holder="engine-b", poll=POLL, on_lost=Lost())
        async with standing_by(b) as waiting:
            await asyncio.sleep(2 * TTL)
            assert not waiting.done(), "the standby took a lease that was being renewed"
            proc.kill()                                   # SIGKILL: no release, the row stays
            killed = time.monotonic()
            assert await asyncio.wait_for(waiting, TTL + POLL + 5)
            took = time.monotonic() - killed
            print(f"\n[lease] holder SIGKILLed: standby active {took:.2f} s later "
                  f"(ttl {TTL:g} s, poll {POLL:g} s)")
            assert took <= TTL + POLL + 0.5, took
            current = await row(postgres_url)
            assert current["holder"] == "engine-b" and current["live"]


async def test_a_clean_release_wakes_the_standby_at_once_without_waiting_for_its_poll(postgres_url):
    a = EngineLease(postgres_url, ttl=TTL, holder="engine-a")
    assert await a.acquire()
    slow = 10.0                                           # the standby's poll: far longer than a term
    b = EngineLease(postgres_url, ttl=TTL, holder="engine-b", poll=slow, on_lost=Lost())
    with capture_logs() as logs:
        async with standing_by(b) as waiting:
            async with asyncio.timeout(5):             # connected (and listening), and waiting
                while not any(e["event"] == "engine.standby" for e in logs):
                    await asyncio.sleep(0.05)
            before_release = len(logs)
            released = time.monotonic()
            await a.release()
            assert await asyncio.wait_for(waiting, slow / 2)
            took = time.monotonic() - released
    print(f"\n[lease] released on a clean shutdown: standby active {took:.3f} s later "
          f"(NOTIFY {CHANNEL}; its poll is {slow:g} s)")
    assert took < 1.0, took
    seen = [(e["event"], e["holder"]) for e in logs]
    # The standby took the lease only once it was given up: never before the release.  (Which of
    # the two log lines comes first after it is a race in one process: the standby's NOTIFY can
    # arrive before the releasing statement's answer does.)
    assert ("engine.active", "engine-b") not in seen[:before_release], seen
    assert ("engine.lease_released", "engine-a") in seen[before_release:], seen
    assert ("engine.active", "engine-b") in seen[before_release:], seen


# -- fencing ------------------------------------------------------------------------------------

async def test_a_holder_that_finds_another_holder_steps_down_at_its_next_renewal(postgres_url):
    lost = Lost()
    async with EngineLease(postgres_url, ttl=TTL, holder="engine-a", on_lost=lost) as a:
        assert await a.acquire()
        # While engine-a was frozen past its term, engine-b took the lease.
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute("UPDATE engine_lease SET holder = 'engine-b', "
                               "expires_at = now() + interval '30 seconds', acquired_at = now()")
        finally:
            await conn.close()
        with capture_logs() as logs:
            await asyncio.wait_for(lost.event.wait(), TTL)    # renewals come every ttl / 4
        assert lost.taken_by == ["engine-b"] and not a.held
        (event,) = [e for e in logs if e["event"] == "engine.lease_lost"]
        assert event["holder"] == "engine-a" and event["taken_by"] == "engine-b"
        await asyncio.sleep(TTL)
        assert lost.taken_by == ["engine-b"]                  # said once; no renewal after it
    current = await row(postgres_url)
    assert current["holder"] == "engine-b"                    # its release left engine-b's lease alone


async def test_a_frozen_engine_that_wakes_after_a_takeover_exits_at_once_with_the_fencing_code(postgres_url):
    async with holder_process(postgres_url, "engine-a") as proc:
        b = EngineLease(postgres_url, ttl=TTL, holder="engine-b", poll=POLL, on_lost=Lost())
        async with standing_by(b) as waiting:
            proc.send_signal(signal.SIGSTOP)              # frozen: a long pause, a stopped VM
            try:
                assert await asyncio.wait_for(waiting, TTL + POLL + 5)
            finally:
                proc.send_signal(signal.SIGCONT)
            woke = time.monotonic()
            code = await asyncio.wait_for(proc.wait(), TTL + 2)
            gone = time.monotonic() - woke
            assert proc.stderr is not None
            events = log_events(await proc.stderr.read())
            print(f"\n[lease] frozen holder woke after the takeover: exit {code} {gone:.2f} s later")
            assert code == EXIT_LEASE_LOST
            lost = [e for e in events if e["event"] == "engine.lease_lost"]
            assert [(e["holder"], e["taken_by"]) for e in lost] == [("engine-a", "engine-b")], events
            await asyncio.sleep(TTL)
            assert b.held and (await row(postgres_url))["holder"] == "engine-b"


async def test_renewals_that_break_on_a_bug_step_the_engine_down_rather_than_let_the_lease_lapse(
        postgres_url, monkeypatch):
    lost = Lost()
    async with EngineLease(postgres_url, ttl=TTL, holder="engine-a", on_lost=lost) as a:
        assert await a.acquire()

        async def broken(**_: object) -> tuple[str | None, bool]:
            raise RuntimeError("a bug in the renewal")

        monkeypatch.setattr(a, "_take", broken)
        with capture_logs() as logs:
            await asyncio.wait_for(lost.event.wait(), TTL)
        assert lost.taken_by == [None] and not a.held
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["engine.lease_lost"]


# -- the database away --------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["stopped", "frozen"])
async def test_a_database_outage_makes_nobody_step_down_and_the_holder_keeps_its_lease(
        postgres_url, postgres_server, how):
    lost_a, lost_b = Lost(), Lost()
    a = EngineLease(postgres_url, ttl=TTL, holder="engine-a", poll=POLL, on_lost=lost_a)
    b = EngineLease(postgres_url, ttl=TTL, holder="engine-b", poll=POLL, on_lost=lost_b)
    assert await a.acquire()
    outage = 4 * TTL
    try:
        async with standing_by(b) as waiting:
            await asyncio.sleep(TTL)
            with capture_logs() as logs:
                if how == "stopped":
                    await asyncio.to_thread(postgres_server.stop)
                else:
                    await asyncio.to_thread(postgres_server.pause)
                try:
                    await asyncio.sleep(outage)           # the outage: several terms long
                    assert a.held and not lost_a.taken_by, "the holder stepped down for an outage"
                finally:
                    if how == "stopped":
                        await asyncio.to_thread(postgres_server.start)
                    else:
                        await asyncio.to_thread(postgres_server.resume)
                back = time.monotonic()
                # The holder renews again; the standby, back too, leaves it the lease.
                async with asyncio.timeout(5 * TTL):
                    while not any(e["event"] == "engine.lease_renewed" for e in logs):
                        await asyncio.sleep(0.05)
                renewed_after = time.monotonic() - back
                await asyncio.sleep(3 * TTL)
            assert not waiting.done(), "the standby took the lease over after the outage"
            assert a.held and not lost_a.taken_by
            current = await row(postgres_url)
            assert current["holder"] == "engine-a" and current["live"]
            unreachable = [e for e in logs if e["event"] == "engine.lease_unreachable"]
            assert {e["role"] for e in unreachable} == {"active", "standby"}, unreachable
            assert sum(e["role"] == "active" for e in unreachable) == 1     # said once per outage
            (renewed,) = [e for e in logs if e["event"] == "engine.lease_renewed"]
            assert renewed["unrenewed"] >= outage - TTL
            print(f"\n[lease] database {how} {outage:g} s: holder kept the lease, renewed "
                  f"{renewed_after:.2f} s after the database was back")
    finally:
        if not postgres_server.running:
            await asyncio.to_thread(postgres_server.start)
        await a.release()


async def test_a_standby_started_while_the_database_is_away_waits_and_then_takes_a_free_lease(
        postgres_url, postgres_server):
    b = EngineLease(postgres_url, ttl=TTL, holder="engine-b", poll=POLL, on_lost=Lost())
    await asyncio.to_thread(postgres_server.stop)
    try:
        task = asyncio.create_task(b.acquire())
        await asyncio.sleep(2 * TTL)
        assert not task.done()
    finally:
        await asyncio.to_thread(postgres_server.start)
    try:
        assert await asyncio.wait_for(task, 5 * TTL)
        assert (await row(postgres_url))["holder"] == "engine-b"
    finally:
        await b.release()


# -- serve: a standby connects to nothing until it is active -----------------------------------

def engine_config(tmp_path: Path, fake: FakeAri, store_url: str, name: str):
    folder = tmp_path / name
    folder.mkdir()
    shutil.copytree(REPO / "flows", folder / "flows")
    cfg = folder / "ivr.yaml"
    cfg.write_text(
        f"ari: {{url: '{fake.base_url}', username: {fake.username}, password: {fake.password}}}\n"
        f"flows: flows\nprompts: {REPO / 'prompts'}\n"
        f"store: {{url: '{store_url}'}}\n"
        f"engine: {{shutdown_grace: 1, reload_interval: 0, lease_ttl: {TTL}}}\n", encoding="utf-8")
    return load_config(cfg, env={})


async def test_serve_on_postgres_waits_as_standby_without_touching_asterisk_and_takes_over_on_release(
        tmp_path, postgres_url):
    async with FakeAri() as fake_a, FakeAri() as fake_b:
        ready_a, stop_a = asyncio.Event(), asyncio.Event()
        ready_b, stop_b = asyncio.Event(), asyncio.Event()
        with capture_logs() as logs:
            a = asyncio.create_task(serve(engine_config(tmp_path, fake_a, postgres_url, "a"),
                                          ready=ready_a, stop=stop_a))
            await asyncio.wait_for(ready_a.wait(), 10)
            b = asyncio.create_task(serve(engine_config(tmp_path, fake_b, postgres_url, "b"),
                                          ready=ready_b, stop=stop_b))
            async with asyncio.timeout(5):
                while not any(e["event"] == "engine.standby" for e in logs):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(3 * TTL)
            assert not ready_b.is_set() and not b.done()
            assert fake_b.requests == [] and fake_b.connections == 0, "the standby talked to Asterisk"
            assert sum(e["event"] == "engine.connecting" for e in logs) == 1

            ch = await fake_a.start_call(exten="15771000")      # the active engine serves calls
            await fake_a.wait_for_request(lambda r: r.path.startswith(f"/channels/{ch}/answer"), timeout=5)

            stop_a.set()                                          # a clean shutdown of the active one
            await asyncio.wait_for(a, 15)
            await asyncio.wait_for(ready_b.wait(), 5)
            await fake_b.wait_for_connection(1, timeout=5)
            names = [e["event"] for e in logs]
            # The lease is released after every other step of the shutdown, then B goes on.
            assert names.index("engine.lease_released") > names.index("engine.stopping")
            assert "engine.active" in names[names.index("engine.lease_released"):]
            stop_b.set()
            await asyncio.wait_for(b, 15)
    active = [e for e in logs if e["event"] == "engine.active"]
    assert len(active) == 2 and active[1]["waited"] >= 3 * TTL, active


async def test_a_standby_asked_to_stop_while_it_waits_stops_at_once(tmp_path, postgres_url):
    holder = EngineLease(postgres_url, ttl=TTL, holder="engine-a")
    assert await holder.acquire()
    try:
        async with FakeAri() as fake:
            stop = asyncio.Event()
            with capture_logs() as logs:
                task = asyncio.create_task(serve(engine_config(tmp_path, fake, postgres_url, "b"), stop=stop))
                async with asyncio.timeout(5):
                    while not any(e["event"] == "engine.standby" for e in logs):
                        await asyncio.sleep(0.05)
                stop.set()
                await asyncio.wait_for(task, 2)
            assert fake.requests == [] and fake.connections == 0
            assert [e for e in logs if e["event"] == "engine.stopped"][0]["standby"] is True
    finally:
        await holder.release()


async def test_on_sqlite_there_is_no_lease_and_the_log_says_one_engine_only(tmp_path):
    with capture_logs() as logs:
        async with engine_lease(f"sqlite:///{tmp_path}/ivr.db", ttl=TTL) as lease:
            assert lease is None
    (off,) = [e for e in logs if e["event"] == "engine.lease_off"]
    assert "one engine only" in off["why"]
