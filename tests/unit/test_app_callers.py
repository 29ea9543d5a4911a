"""The engine knows its callers: registry and history are asked before the flow, and whatever
fails (a corrupt registry answer, a slow registry, a database away) leaves the caller served."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from pathlib import Path

from aiohttp import web

from ivr.app import Engine
from ivr.call import CallRecord
from ivr.cli import main as cli_main
from ivr.config import load_config
from ivr.errors import StoreError
from ivr.flow.loader import load_flows
from ivr.prompts import load_catalogue
from ivr.store.base import Caller
from ivr.testing.fake_ari import FakeAri
from ivr.testing.memory_store import MemoryStore
from ivr.testing.scripted_call import ScriptedCall, press

from test_app import hangup_of, make_config, recorded_calls, running_engine

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.timezone.utc)       # 12:00 in Seoul


# certificates → how to get one → end the call: the menu walk of a caller who was not bypassed
MENU_WALK = (press("2"), press("1"), press("1"))
WALK = (press("1"), *MENU_WALK)          # 1 first: Korean, at the language choice
HEARD_FIRST = ["choose_language"] * 4    # offered in each language, then the greeting



def born_years_ago(years: int) -> dt.date:
    return dt.date(NOW.year - years, 1, 15)


def engine_with(tmp_path, store, *, extra: str = "", **kw) -> Engine:
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(
        "ari: {url: 'http://127.0.0.1:1', username: u, password: p}\n"
        f"flows: {REPO / 'flows'}\nprompts: {REPO / 'prompts'}\n"
        "store: {url: 'sqlite:///unused.db'}\n" + extra, encoding="utf-8")
    config = load_config(cfg, env={})
    catalogue = load_catalogue(config.prompts / "catalog.yaml")
    return Engine(config, store, catalogue, load_flows(list(config.flows), catalogue),
                  clock=lambda: NOW, **kw)


_ids = itertools.count(1)


def scripted(caller: str, *script) -> ScriptedCall:
    return ScriptedCall(*script, caller_number=caller, dialled="15771000", call_id=f"call-{next(_ids)}")


async def call(engine: Engine, caller: str, *script) -> tuple[ScriptedCall, CallRecord]:
    c = scripted(caller, *script)
    await engine.on_new_call(c, [])
    return c, engine.store.calls[c.id]


async def test_an_elderly_registered_caller_skips_the_menu_and_is_queued_with_priority(tmp_path):
    store = MemoryStore()
    await store.put_callers([Caller("+821055550070", birth_date=born_years_ago(70))])
    engine = engine_with(tmp_path, store)
    c, rec = await call(engine, "010-5555-0070")
    assert "main_menu" not in c.prompts
    assert c.prompts[0] == "priority_agent"
    assert (rec.nodes, rec.reason, rec.priority, rec.outcome) == (["bypass"], "bypass: elderly", "elderly", "queued")
    assert rec.number == "+821055550070"


async def test_a_forty_year_old_hears_the_menu(tmp_path):
    store = MemoryStore()
    await store.put_callers([Caller("+821055550040", birth_date=born_years_ago(40))])
    engine = engine_with(tmp_path, store)
    c, rec = await call(engine, "+82 10-5555-0040", *WALK)
    assert "main_menu" in c.prompts
    assert rec.reason is None and rec.priority is None
    assert rec.nodes[:4] == ["start", "choose_language", "welcome", "main_menu"]


async def test_the_third_call_in_the_window_bypasses_the_first_two_do_not(tmp_path):
    engine = engine_with(tmp_path, MemoryStore())
    reasons = []
    for spelling in ("01055550003", "010-5555-0003", "+82 10 5555 0003"):
        _, rec = await call(engine, spelling, *WALK)
        reasons.append(rec.reason)
    assert reasons == [None, None, "bypass: repeat"]


async def test_an_anonymous_or_garbage_caller_id_hears_the_menu(tmp_path):
    engine = engine_with(tmp_path, MemoryStore())
    for raw in ("", "anonymous", "Restricted", "12", "9" * 200, "'; DROP TABLE calls;--"):
        c, rec = await call(engine, raw, *WALK)
        assert "main_menu" in c.prompts, raw
        assert rec.number is None and rec.reason is None, raw
    assert "get_caller" not in engine.store.asked           # nothing asked for a non-number


async def test_a_registry_that_does_not_answer_in_time_leaves_the_caller_unknown(tmp_path):
    store = MemoryStore()
    await store.put_callers([Caller("+821055550071", birth_date=born_years_ago(71))])
    store.gate["get_caller"] = asyncio.Event()                # never answers
    engine = engine_with(tmp_path, store, extra="callers: {lookup_budget: 0.2}\n")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    c, rec = await call(engine, "01055550071", *WALK)
    assert c.prompts[:5] == [*HEARD_FIRST, "welcome"]                           # the menu, as for an unknown caller
    assert loop.time() - t0 < 1.5
    assert rec.reason is None


async def test_the_http_registry_timing_out_leaves_the_caller_unknown(tmp_path):
    async def slow(request):
        await asyncio.sleep(1.5)       # well past the registry timeout
        return web.json_response({"birth_date": "1950-01-01"})

    app = web.Application()
    app.router.add_get("/callers/{number}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            from ivr.routing.registry import registry_for

            store = MemoryStore()
            engine = engine_with(tmp_path, store, extra=(
                f"callers: {{lookup_budget: 2, registry: {{url: 'http://127.0.0.1:{port}/callers/{{number}}', "
                "timeout: 0.3}}\n"))
            engine.registry = registry_for(engine.config.callers, store, session)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            c, rec = await call(engine, "01055550072", *WALK)
            assert loop.time() - t0 < 1.5
    finally:
        await runner.cleanup()
    assert c.prompts[:5] == [*HEARD_FIRST, "welcome"]
    assert rec.reason is None


async def test_a_database_away_during_the_call_the_caller_is_served_and_the_record_kept(tmp_path):
    store = MemoryStore()
    await store.put_callers([Caller("+821055550073", birth_date=born_years_ago(73))])
    for method in ("call_started", "record_call", "count_calls_since", "get_caller"):
        store.fail[method] = StoreError("connection refused")
    engine = engine_with(tmp_path, store, retry_interval=0.05)
    c = scripted("01055550073", *WALK)
    await engine.on_new_call(c, [])
    assert c.prompts[:5] == [*HEARD_FIRST, "welcome"]              # registry unreadable: the menu, not silence
    assert c.id not in store.calls and c.id in engine.unsaved
    store.fail.clear()                            # the database is back
    async with asyncio.timeout(2):
        while engine.unsaved:
            await asyncio.sleep(0.02)
    assert store.calls[c.id].outcome == "completed"
    assert store.calls[c.id].number == "+821055550073"
    await engine.close()
    assert engine.records_lost == 0


async def test_records_beyond_the_memory_bound_are_counted_as_lost(tmp_path):
    store = MemoryStore()
    store.fail["record_call"] = StoreError("disk full")
    engine = engine_with(tmp_path, store, retry_interval=60, max_unsaved=2)
    for n in range(3):
        await call_without_record(engine, f"0105555010{n}")
    assert len(engine.unsaved) == 2 and engine.records_lost == 1
    await engine.close()                          # still failing: the rest are lost, and said so
    assert engine.records_lost == 3


async def call_without_record(engine, caller):
    c = scripted(caller, *WALK)
    await engine.on_new_call(c, [])


async def test_a_preferred_language_from_the_registry_sets_the_prompts(tmp_path):
    store = MemoryStore()
    await store.put_callers([Caller("+821055550074", birth_date=born_years_ago(30), language="en")])
    engine = engine_with(tmp_path, store)
    c, rec = await call(engine, "01055550074", *MENU_WALK)
    assert rec.language == "en"
    assert rec.nodes[:3] == ["start", "welcome", "main_menu"]           # not asked for a language
    assert c.played[:2] == ["en/welcome", "en/main_menu"]


async def test_serve_reads_the_registry_imported_into_the_store(tmp_path, capsys):
    """Through the real ARI client and the SQLite store: the elderly caller is queued."""
    from ivr.store import open_store

    async with FakeAri() as fake:
        config = load_config(make_config(tmp_path, fake), env={})
        async with open_store(config.store_url) as store:
            await store.put_callers([Caller("+821055550075", birth_date=born_years_ago(75))])
        async with running_engine(tmp_path, fake) as config:
            ch = await fake.start_call(caller="010-5555-0075", exten="15771000")
            await fake.wait_for_request(hangup_of(ch), timeout=5)
        plays = fake.played(ch)
        (rec,) = await recorded_calls(config)
    assert plays[0] == "sound:ivr/ko/priority_agent"
    assert (rec.reason, rec.priority, rec.number) == ("bypass: elderly", "elderly", "+821055550075")
    capsys.readouterr()
    assert await asyncio.to_thread(cli_main, ["--config", str(config.source), "calls", "list"]) == 0
    (line,) = capsys.readouterr().out.splitlines()[1:]
    assert "bypass: elderly [priority elderly]" in line and "010-****-0075" in line


async def test_a_postgresql_server_that_hangs_mid_call_the_caller_is_served_and_nothing_lost(
        tmp_path, postgres_server, postgres_url):
    """The real database stops answering (SIGSTOP) while a registered elderly caller calls."""
    from ivr.store import StoreTimeouts, open_store

    async with open_store(postgres_url, timeouts=StoreTimeouts(operation=0.5)) as store:
        await store.put_callers([Caller("+821055550076", birth_date=born_years_ago(76))])
        engine = engine_with(tmp_path, store, extra="callers: {lookup_budget: 0.3}\n", retry_interval=0.1)
        postgres_server.pause()
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            c = scripted("010-5555-0076", *WALK)
            await engine.on_new_call(c, [])
            assert c.prompts[4:6] == ["welcome", "main_menu"]     # unknown for now: the menu
            assert loop.time() - t0 < 3
            assert c.id in engine.unsaved
        finally:
            postgres_server.resume()
        async with asyncio.timeout(10):
            while engine.unsaved:
                await asyncio.sleep(0.05)
        (rec,) = [r for r in await store.recent_calls() if r.call_id == c.id]
        assert (rec.outcome, rec.number) == ("completed", "+821055550076")
        await engine.close()
        assert engine.records_lost == 0
        # The database is back: the next call from the same number is known and bypasses.
        c2 = scripted("01055550076")
        await engine.on_new_call(c2, [])
        assert c2.prompts[0] == "priority_agent"
