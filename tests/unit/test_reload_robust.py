"""A broken save under a running engine: a control character, brackets nested hundreds deep, a
catalogue that is not UTF-8.  Each reload is refused and logged with its ``file:line``; the
flows that were serving keep serving; the next good edit is picked up."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path

from structlog.testing import capture_logs

from ivr.config import load_config
from ivr.store import open_store
from ivr.testing.fake_ari import FakeAri

from engine_helpers import serving

REPO = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def engine_with_own_files(tmp_path: Path, fake: FakeAri, monkeypatch):
    """A running engine whose flows and catalogue are copies in ``tmp_path`` (to break them)."""
    from ivr import app as app_module

    shutil.copytree(REPO / "flows", tmp_path / "flows")
    (tmp_path / "prompts").mkdir()
    shutil.copy(REPO / "prompts" / "catalog.yaml", tmp_path / "prompts" / "catalog.yaml")
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(
        f"ari: {{url: '{fake.base_url}', username: {fake.username}, password: {fake.password}}}\n"
        "flows: flows\nprompts: prompts\nstore: {url: 'sqlite:///ivr.db'}\n"
        # Load shedding is not what this tests: on a busy machine a loop late by 0.1 s (the
        # default) would turn the calls away as busy.
        "engine: {shutdown_grace: 2, reload_interval: 0, max_loop_lag: 1.0}\n", encoding="utf-8")
    engines = []

    class Spy(app_module.Engine):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            engines.append(self)

    monkeypatch.setattr(app_module, "Engine", Spy)
    config = load_config(cfg, env={})
    async with serving(config):
        (engine,) = engines
        yield config, engine


async def a_call_through_the_menu(fake: FakeAri, caller: str) -> str:
    ch = await fake.start_call(caller=caller, exten="15771000")      # a new caller: not a repeat one
    await fake.press(ch, "1211")          # Korean → certificates → how to get one → end the call
    await fake.wait_for_request(lambda r: r.method == "DELETE" and r.path == f"/channels/{ch}", timeout=5)
    return ch


def rejected(logs: list[dict]) -> list[str]:
    return [p for e in logs if e["event"] == "flows.reload_rejected" for p in e.get("problems", [])]


def version(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


async def test_broken_saves_are_refused_with_their_line_and_the_old_flows_keep_serving(tmp_path, monkeypatch):
    main = tmp_path / "flows" / "main.yaml"
    catalogue = tmp_path / "prompts" / "catalog.yaml"
    good_main = (REPO / "flows" / "main.yaml").read_bytes()
    good_catalogue = (REPO / "prompts" / "catalog.yaml").read_bytes()
    lines = good_main.split(b"\n")
    with_nul = b"\n".join([*lines[:11], lines[11][:2] + b"\x00" + lines[11][2:], *lines[12:]])
    deep = good_main + b"\nvars: {deep: " + b"[" * 500 + b"]" * 500 + b"}\n"
    not_utf8 = good_catalogue.replace("한국어".encode(), b"\xed\x95\xff", 1)
    not_utf8_line = good_catalogue.split("한국어".encode())[0].count(b"\n") + 1
    served = []
    async with FakeAri() as fake:
        async with engine_with_own_files(tmp_path, fake, monkeypatch) as (config, engine):
            serving = engine.flowset.version("main")
            for broken, edit, says in ((main, with_nul, "main.yaml:12: column 3: the control character U+0000 (NUL)"),
                                       (main, deep, "lists and mappings are nested more than 64 levels deep"),
                                       (catalogue, not_utf8, f"catalog.yaml:{not_utf8_line}: column ")):
                broken.write_bytes(edit)
                with capture_logs() as logs:
                    assert engine.reload_flows() is False
                problems = rejected(logs)
                assert any(says in p for p in problems), logs
                assert all(p.startswith(str(broken)) for p in problems), problems
                assert engine.flowset.version("main") == serving
                served.append(await a_call_through_the_menu(fake, f"0101234567{len(served)}"))  # old flows
                main.write_bytes(good_main)
                catalogue.write_bytes(good_catalogue)
            edited = good_main.replace(b"barge_in: true", b"barge_in: false", 1)
            assert edited != good_main
            main.write_bytes(edited)
            with capture_logs() as logs:
                assert engine.reload_flows() is True                          # the good edit is taken
            assert [e["event"] for e in logs if e["event"].startswith("flows.")] == ["flows.reloaded"]
            after = await a_call_through_the_menu(fake, "01098765432")
        async with open_store(config.store_url) as store:
            records = {r.call_id: r for r in await store.recent_calls()}
    assert [(records[ch].outcome, records[ch].flow_version) for ch in served] == [("completed", serving)] * 3
    assert (records[after].outcome, records[after].flow_version) == ("completed", version(main))
    assert version(main) != serving


async def test_a_reload_by_the_engine_loads_off_the_event_loop(tmp_path, monkeypatch):
    """The watcher and SIGHUP reload with ``reload_flows_off_loop``: loading (about 80 ms for
    the sample flows, more with a garbage collection inside) runs in a thread, so the loop
    keeps ticking and a reload never lags it into turning new callers away."""
    import asyncio
    import time

    from ivr import app as app_module

    real_load = app_module.load_flows

    def slow_load(*args, **kwargs):
        time.sleep(0.4)                   # a long load; loading on the loop would stall it this long
        return real_load(*args, **kwargs)

    async with FakeAri() as fake:
        async with engine_with_own_files(tmp_path, fake, monkeypatch) as (config, engine):
            monkeypatch.setattr(app_module, "load_flows", slow_load)
            ticks: list[float] = []

            async def tick() -> None:
                while True:
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.01)

            ticker = asyncio.ensure_future(tick())
            try:
                with capture_logs() as logs:
                    assert await engine.reload_flows_off_loop() is True
            finally:
                ticker.cancel()
            assert [e["event"] for e in logs if e["event"].startswith("flows.")] == ["flows.reloaded"]
            gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
            assert len(ticks) > 10 and max(gaps) < 0.3, f"the loop stalled {max(gaps):.2f} s during the reload"
            await a_call_through_the_menu(fake, "01098765431")     # the new flows serve
