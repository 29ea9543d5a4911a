"""Editing flows under a running engine, with real calls: new calls take the edit, a call in
progress keeps the version it started with, and a broken edit changes nothing and is reported."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

from engine import REPO, Engine
from ivr.sipp import place_call
from test_calls import MAIN

pytestmark = pytest.mark.e2e

# 1 = Korean, 2 = certificates, then 1 = "how to get one" (after the edit: goodbye), 1 = end.
KEYS = "w1.5,1,w1.5,2,w8,1,w1.5,1"


def replace_file(path: Path, text: str) -> None:
    """Write ``path`` as an editor or a deployment does: a new file renamed over the old one,
    so the engine's watcher never reads it half-written (a truncated file is a broken flow
    the engine rightly rejects, and the test would see that rejection instead of its own)."""
    part = path.with_name(f".{path.name}.part")
    part.write_text(text, encoding="utf-8")
    os.replace(part, path)


@pytest.fixture(scope="module")
def engine(sandbox, tmp_path_factory):
    work = tmp_path_factory.mktemp("engine-reload")
    flows = work / "flows"
    shutil.copytree(REPO / "flows", flows)
    eng = Engine(work, sandbox, extra_config="engine: {reload_interval: 0.5}\n",
                 flows=[flows, REPO / "tests" / "e2e" / "flows"])
    eng.start()
    yield eng
    rc = eng.stop()
    assert rc == 0, f"the engine did not stop cleanly (exit {rc}):\n{eng.log_text()[-3000:]}"
    assert not eng.events("call.media_failed"), eng.events("call.media_failed")


async def wait_for_event(engine: Engine, name: str, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(engine.events(name)) < count:
        assert time.monotonic() < deadline, f"no {name} within {timeout} s:\n{engine.log_text()[-2000:]}"
        await asyncio.sleep(0.1)


async def test_an_edit_changes_new_calls_only_and_a_broken_edit_changes_nothing(engine: Engine):
    main_flow = engine.flows[0] / "main.yaml"
    original = main_flow.read_text(encoding="utf-8")
    before = engine.call_ids()
    first = asyncio.create_task(place_call(MAIN, caller="01061110001", keys=KEYS, max_duration=60))
    await asyncio.sleep(5)                                   # the first caller is in the certificates menu
    reloads = len(engine.events("flows.reloaded"))
    replace_file(main_flow, original.replace("      1: certificates_issue_info", "      1: goodbye", 1))
    await wait_for_event(engine, "flows.reloaded", reloads + 1)
    result = await first
    assert result.answered and result.ended_by == "remote"
    old = await engine.new_call_record(before)
    # The call in progress kept the flow it started with: 1 still meant "how to get one".
    assert old["nodes"][4:6] == ["certificates_menu", "certificates_issue_info"], old["nodes"]

    before = engine.call_ids()
    result = await place_call(MAIN, caller="01061110002", keys=KEYS, max_duration=60)
    assert result.answered
    new = await engine.new_call_record(before)
    assert new["nodes"][4:6] == ["certificates_menu", "goodbye"], new["nodes"]
    assert new["flow_version"] != old["flow_version"]

    # A broken edit: reported with file and line, and the edited version keeps serving.
    rejected = len(engine.events("flows.reload_rejected"))
    replace_file(main_flow, original.replace("next: main_menu", "next: main_menuu", 1))
    await wait_for_event(engine, "flows.reload_rejected", rejected + 1)
    problems = engine.events("flows.reload_rejected")[-1]["problems"]
    assert any("main.yaml:" in p and "main_menuu" in p for p in problems), problems
    before = engine.call_ids()
    result = await place_call(MAIN, caller="01061110003", keys=KEYS, max_duration=60)
    assert result.answered
    still = await engine.new_call_record(before)
    assert still["flow_version"] == new["flow_version"]
    assert still["nodes"][4:6] == ["certificates_menu", "goodbye"]
