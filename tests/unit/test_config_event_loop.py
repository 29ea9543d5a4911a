"""``engine.event_loop``: asyncio (the default) or uvloop, and the loop ``ivr run`` makes of it."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from ivr.app import loop_factory
from ivr.config import load_config
from ivr.errors import ConfigError


def _write(tmp_path, engine: str) -> object:
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "prompts").mkdir(exist_ok=True)
    path = tmp_path / "ivr.yaml"
    path.write_text("flows: flows\nprompts: prompts\n" + engine, encoding="utf-8")
    return path


def test_the_default_is_asyncio(tmp_path):
    config = load_config(_write(tmp_path, ""), env={}, need_ari=False)
    assert config.engine.event_loop == "asyncio"
    assert loop_factory(config.engine.event_loop) is asyncio.new_event_loop


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop not installed")
def test_uvloop_makes_a_uvloop_loop(tmp_path):
    config = load_config(_write(tmp_path, "engine:\n  event_loop: UVLoop\n"), env={}, need_ari=False)
    assert config.engine.event_loop == "uvloop"
    with asyncio.Runner(loop_factory=loop_factory(config.engine.event_loop)) as runner:
        assert type(runner.get_loop()).__module__.startswith("uvloop")
        assert runner.run(asyncio.sleep(0, "ran")) == "ran"


def test_another_loop_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "engine:\n  event_loop: trio\n"), env={}, need_ari=False)
    assert "engine.event_loop must be one of asyncio, uvloop" in str(err.value)


def test_uvloop_not_installed_is_said_at_load(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvloop" else real(name, *a))
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, "engine:\n  event_loop: uvloop\n"), env={}, need_ari=False)
    assert "uvloop is not installed" in str(err.value)


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop not installed")
def test_the_environment_sets_it(tmp_path):
    config = load_config(_write(tmp_path, ""), env={"IVR_ENGINE_EVENT_LOOP": "uvloop"},
                         need_ari=False)
    assert config.engine.event_loop == "uvloop"


def test_engine_gc_young_defaults_to_ten_thousand_and_refuses_what_is_not_a_count(tmp_path):
    import gc

    from ivr.app import settle_heap

    assert load_config(_write(tmp_path, "engine: {}\n"), env={}, need_ari=False).engine.gc_young == 10_000
    config = load_config(_write(tmp_path, "engine:\n  gc_young: 700\n"), env={}, need_ari=False)
    assert config.engine.gc_young == 700
    for bad in ("0", "-5", "lots", "2.5"):
        with pytest.raises(ConfigError) as err:
            load_config(_write(tmp_path, f"engine:\n  gc_young: {bad}\n"), env={}, need_ari=False)
        assert "engine.gc_young" in str(err.value)
    before = gc.get_threshold()
    try:
        settle_heap(config.engine.gc_young)
        assert gc.get_threshold() == (700, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
