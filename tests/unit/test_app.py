"""The engine as a whole (`serve`): config → flows → ARI → recorded calls, over the fake ARI."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ivr.app import serve
from ivr.cli import main as cli_main
from ivr.config import load_config
from ivr.errors import StoreError
from ivr.testing.fake_ari import FakeAri

from engine_helpers import recorded_calls, serving_file, write_engine_config

REPO = Path(__file__).resolve().parents[2]


def make_config(tmp_path: Path, fake: FakeAri, *, max_calls: int = 100) -> Path:
    """The repository's flows on the fake ARI."""
    return write_engine_config(tmp_path, fake, engine=f"max_calls: {max_calls}, shutdown_grace: 2")


def running_engine(tmp_path: Path, fake: FakeAri, **kw):
    return serving_file(make_config(tmp_path, fake, **kw))


def hangup_of(channel_id):
    return lambda r: r.method == "DELETE" and r.path == f"/channels/{channel_id}"


async def test_a_caller_is_answered_walks_the_menu_by_keys_and_is_recorded(tmp_path):
    async with FakeAri() as fake:
        async with running_engine(tmp_path, fake) as config:
            ch = await fake.start_call(caller="010-1234-5678", exten="15771000")
            await fake.wait_for_request(lambda r: r.play_channel == ch
                                        and "sound:ivr/vi/choose_language" in r.media)
            await fake.press(ch, "1211")    # Korean → certificates → how to get one → end the call
            await fake.wait_for_request(hangup_of(ch), timeout=5)
        answered = [r for r in fake.requests if r.path == f"/channels/{ch}/answer"]
        assert answered, "the call was never answered"
        plays = fake.played(ch)
        # the language choice: each language offers itself, in its own voice
        assert plays[:4] == [
            "sound:ivr/ko/choose_language", "sound:ivr/en/choose_language", "sound:ivr/zh/choose_language",
            "sound:ivr/vi/choose_language"]
        assert plays[-1] == "sound:ivr/ko/goodbye"
        (rec,) = await recorded_calls(config)
    assert rec.nodes == ["start", "choose_language", "welcome", "main_menu", "certificates_menu",
                         "certificates_issue_info", "after_info", "goodbye"]
    assert rec.digits == ["1", "2", "1", "1"]
    assert rec.language == "ko"
    assert (rec.outcome, rec.flow, rec.dialled) == ("completed", "main", "15771000")
    assert rec.flow_version and len(rec.flow_version) == 12


async def test_a_number_no_flow_answers_is_released_and_recorded(tmp_path):
    async with FakeAri() as fake:
        async with running_engine(tmp_path, fake) as config:
            ch = await fake.start_call(exten="99999")
            await fake.wait_for_request(hangup_of(ch), timeout=5)
        (rec,) = await recorded_calls(config)
    assert rec.outcome == "no_flow"
    assert "99999" in rec.detail


async def test_calls_beyond_max_calls_hear_the_busy_message_and_are_released(tmp_path):
    async with FakeAri(durations={"sound:ivr/ko/welcome": None}) as fake:   # the first call stays
        async with running_engine(tmp_path, fake, max_calls=1) as config:
            first = await fake.start_call(caller="01011112222")
            await fake.wait_for_request(lambda r: r.path.startswith(f"/channels/{first}/play"))
            second = await fake.start_call(caller="01033334444")
            await fake.wait_for_request(hangup_of(second), timeout=5)
            assert fake.played(second) == ["sound:ivr/ko/system_busy"]
            await fake.caller_hangs_up(first)
        outcomes = {r.call_id: r.outcome for r in await recorded_calls(config)}
    assert outcomes == {first: "caller_hangup", second: "busy"}


async def test_a_broken_flow_edit_keeps_the_old_flows_serving(tmp_path, monkeypatch):
    from ivr import app as app_module

    engines = []
    real = app_module.Engine

    class Spy(real):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            engines.append(self)

    monkeypatch.setattr(app_module, "Engine", Spy)
    async with FakeAri() as fake:
        async with running_engine(tmp_path, fake) as config:
            (engine,) = engines
            # The reload blocks the loop (about 0.1 s, more when a full garbage collection falls
            # in it): the call after it must not be shed as "overloaded", not the point here.
            engine.lag.stop()
            engine.lag.lag = engine.lag.sustained = 0.0
            main = tmp_path / "flows" / "main.yaml"
            main.write_text(main.read_text().replace("next: main_menu", "next: main_menuu", 1))
            assert engine.reload_flows() is False            # rejected, reported
            ch = await fake.start_call()
            await fake.press(ch, "1211")     # 1: Korean at the start
            await fake.wait_for_request(hangup_of(ch), timeout=5)
        (rec,) = await recorded_calls(config)
    assert rec.outcome == "completed"          # the old version served the call


async def test_the_call_is_served_even_when_the_store_cannot_write(tmp_path, monkeypatch):
    from ivr.store.sqlite import SqliteStore

    async def broken(self, record):
        raise StoreError("disk full")

    monkeypatch.setattr(SqliteStore, "record_call", broken)
    async with FakeAri() as fake:
        async with running_engine(tmp_path, fake):
            ch = await fake.start_call()
            await fake.press(ch, "1211")     # 1: Korean at the start
            await fake.wait_for_request(hangup_of(ch), timeout=5)
        plays = fake.played()
    assert plays[-1] == "sound:ivr/ko/goodbye"


def test_ivr_run_refuses_to_start_with_a_broken_flow_and_says_where(tmp_path, capsys):
    cfg = tmp_path / "ivr.yaml"
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "bad.yaml").write_text(
        "flow: bad\nnumbers: ['1']\nentry: start\nnodes:\n  start:\n    play: welcome\n    next: nowhere\n")
    cfg.write_text(f"ari: {{username: ivr, password: x}}\nflows: flows\nprompts: {REPO / 'prompts'}\n")
    assert cli_main(["--config", str(cfg), "run"]) == 1
    err = capsys.readouterr().err
    assert "not starting" in err
    assert "bad.yaml:7:" in err and "nowhere" in err


def test_ivr_run_without_credentials_says_what_to_set(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("IVR_ARI_PASSWORD", raising=False)
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("ari: {username: ivr}\n")
    assert cli_main(["--config", str(cfg), "run"]) == 2
    assert "no ARI password" in capsys.readouterr().err


def test_ivr_validate_prints_file_line_messages_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("flow: bad\nnumbers: ['1']\nentry: start\nnodes:\n  start:\n    play: no_such_prompt\n"
                   "    next: done\n  done:\n    hangup: goodbye\n")
    assert cli_main(["validate", "--prompts", str(REPO / "prompts"), str(bad)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and all(line.startswith(f"{bad}:") for line in lines)
    assert any(":6:" in line and "no_such_prompt" in line for line in lines)


def test_ivr_validate_accepts_the_sample_flows(capsys):
    assert cli_main(["validate", "--prompts", str(REPO / "prompts"), str(REPO / "flows")]) == 0
    assert capsys.readouterr().err == ""


async def test_calls_list_masks_callers(tmp_path, capsys):
    async with FakeAri() as fake:
        async with running_engine(tmp_path, fake) as config:
            ch = await fake.start_call(caller="01012345678")
            await fake.press(ch, "1211")     # 1: Korean at the start
            await fake.wait_for_request(hangup_of(ch), timeout=5)
    capsys.readouterr()                      # the engine's own log lines: not what is tested here
    assert await asyncio.to_thread(cli_main, ["--config", str(config.source), "calls", "list"]) == 0
    out = capsys.readouterr().out
    assert "010****5678" in out and "01012345678" not in out
    assert "welcome > main_menu > certificates_menu" in out


async def test_while_the_engine_is_overloaded_new_calls_hear_the_busy_message(tmp_path, monkeypatch):
    from ivr import app as app_module

    engines = []
    real = app_module.Engine

    class Spy(real):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            engines.append(self)

    monkeypatch.setattr(app_module, "Engine", Spy)
    async with FakeAri() as fake:
        async with running_engine(tmp_path, fake) as config:
            (engine,) = engines
            engine.lag.stop()
            engine.lag.sustained = 0.5        # the loop runs half a second late, tick after tick
            ch = await fake.start_call()
            await fake.wait_for_request(hangup_of(ch), timeout=5)
            plays = fake.played(ch)
        (rec,) = await recorded_calls(config)
    assert plays == ["sound:ivr/ko/system_busy"]
    assert rec.outcome == "busy" and "overloaded" in rec.detail


async def test_the_lag_monitor_sees_a_blocked_loop():
    from ivr.app import LagMonitor

    mon = LagMonitor(interval=0.01)
    mon.start()
    try:
        await asyncio.sleep(0.03)
        import time
        time.sleep(0.2)  # noqa: ASYNC251 - block the loop, as a CPU-bound burst would
        await asyncio.sleep(0.001)
        assert mon.lag > 0.1
        assert mon.sustained < 0.1        # one stall: not an overload, nobody is shed for it
        await asyncio.sleep(0.3)          # recovered: the figure decays again
        assert mon.lag < 0.01
        for _ in range(3 * LagMonitor.SUSTAIN):    # late tick after tick: overloaded
            time.sleep(0.12)  # noqa: ASYNC251 - a loop too busy to keep up
            await asyncio.sleep(0)        # the tick runs, late; the next is due before the next block ends
        assert mon.sustained > 0.1
    finally:
        mon.stop()


async def test_an_edited_flow_file_is_picked_up_without_a_restart_and_a_broken_one_is_not(tmp_path, monkeypatch):
    from ivr import app as app_module

    engines = []
    real = app_module.Engine

    class Spy(real):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            engines.append(self)

    monkeypatch.setattr(app_module, "Engine", Spy)
    async with FakeAri() as fake:
        cfg = make_config(tmp_path, fake)
        cfg.write_text(cfg.read_text().replace("shutdown_grace: 2", "shutdown_grace: 2, reload_interval: 0.1"))
        config = load_config(cfg, env={})
        ready, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(config, ready=ready, stop=stop))
        await asyncio.wait_for(ready.wait(), 5)
        (engine,) = engines
        before = engine.flowset.version("main")
        main_flow = tmp_path / "flows" / "main.yaml"
        main_flow.write_text(main_flow.read_text().replace("barge_in: true", "barge_in: false", 1))
        async with asyncio.timeout(5):
            while engine.flowset.version("main") == before:
                await asyncio.sleep(0.05)
        edited = engine.flowset.version("main")
        main_flow.write_text(main_flow.read_text().replace("next: main_menu", "next: main_menuu", 1))
        await asyncio.sleep(0.5)
        assert engine.flowset.version("main") == edited          # the broken edit changed nothing
        ch = await fake.start_call()
        await fake.press(ch, "1211")     # 1: Korean at the start
        await fake.wait_for_request(hangup_of(ch), timeout=5)
        stop.set()
        await asyncio.wait_for(task, 10)
    (rec,) = await recorded_calls(config)
    assert rec.outcome == "completed" and rec.flow_version == edited
