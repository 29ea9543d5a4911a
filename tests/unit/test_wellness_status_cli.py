"""'ivr wellness status' and 'ivr wellness run-now' as an operator runs them: the store's view
of each campaign (people, today's results, calls in progress, the visit list) with or without
the running engine, and run-now asking the engine through the admin API."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.store import open_store
from ivr.wellness.model import AttemptResult, Person, Visit

UTC = dt.timezone.utc

CONFIG = """ari: {{username: ivr, password: x}}
store: {{url: 'sqlite:///{dir}/ivr.db'}}
admin: {{listen: '127.0.0.1:{port}', token: t0ken}}
acd:
  queues:
    wellness: {{max_wait: 60}}
wellness:
  campaigns:
    - {{name: seniors, days: [mon, tue, wed, thu, fri, sat, sun], hours: ["00:00-23:59"]}}
    - {{name: night, days: [sun], hours: ["02:00-02:01"]}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    for name in ("IVR_STORE_URL", "IVR_CONFIG", "IVR_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    p = tmp_path / "ivr.yaml"
    p.write_text(CONFIG.format(dir=tmp_path, port=free_port()), encoding="utf-8")
    return p


def seed(config: Path) -> None:
    async def write() -> None:
        async with open_store(f"sqlite:///{config.parent}/ivr.db") as store:
            now = dt.datetime.now(UTC)
            await store.put_wellness_people([
                Person(number="+821011110001", campaign="seniors"),
                Person(number="+821011110002", campaign="seniors", opt_out=True),
                Person(number="+821011110003", campaign="seniors")])
            for number, result in (("+821011110001", AttemptResult.WELL),
                                   ("+821011110003", AttemptResult.NO_ANSWER)):
                claim = await store.claim_wellness_attempt(number, "a", now, 60)
                await store.finish_wellness_attempt(claim.id, "a", result=result, at=now)
            await store.claim_wellness_attempt("+821011110003", "a", now, 60)   # ringing now
            await store.open_wellness_visit(Visit(number="+821011110003", campaign="seniors", since=now))
    asyncio.run(write())


def test_status_from_the_store_when_the_engine_does_not_answer(config: Path, capsys) -> None:
    seed(config)
    assert main(["--config", str(config), "wellness", "status", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    seniors, night = out["campaigns"]
    assert (seniors["people"], seniors["opted_out"], seniors["in_progress"]) == (3, 1, 1)
    assert seniors["today"] == {"well": 1, "no_answer": 1} and seniors["visits_open"] == 1
    assert seniors["window_open"] is True and "paused" not in seniors
    assert night["people"] == 0 and night["next_open"] is not None
    assert "does not answer" in out["engine"]
    assert main(["--config", str(config), "wellness", "status"]) == 0
    text = capsys.readouterr().out
    assert "seniors: open" in text and "people 3 (1 opted out); in progress 1 of 2; visits open 1" in text
    assert "today: no_answer 1, well 1" in text and "night: closed, opens" in text
    assert "the engine's live view is missing" in text


def test_run_now_needs_the_running_engine(config: Path, capsys) -> None:
    assert main(["--config", str(config), "wellness", "run-now"]) == 2
    assert "does not answer" in capsys.readouterr().err
