"""'ivr calls show CALL_ID': one recorded call and its queue events, from a real SQLite store."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path

import pytest

from ivr.call import CallRecord
from ivr.cli import main
from ivr.store import open_store
from ivr.store.base import QueueEvent

UTC = dt.timezone.utc
START = dt.datetime(2025, 3, 10, 9, 30, 0, 250000, tzinfo=UTC)     # 18:30:00 in Seoul


@pytest.fixture(autouse=True)
def seoul_time(monkeypatch):
    """Local time is Seoul's, whatever the machine's zone."""
    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    for name in ("IVR_STORE_URL", "IVR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    p = tmp_path / "ivr.yaml"
    p.write_text(f"ari: {{username: ivr, password: x}}\n"
                 f"store: {{url: 'sqlite:///{tmp_path}/var/ivr.db'}}\n", encoding="utf-8")
    return p


def at(seconds: float) -> dt.datetime:
    return START + dt.timedelta(seconds=seconds)


def fill(config: Path, records: list[CallRecord], events: list[QueueEvent]) -> None:
    url = f"sqlite:///{config.parent}/var/ivr.db"

    async def write() -> None:
        async with open_store(url) as store:
            for record in records:
                await store.record_call(record)
            await store.record_events(events)

    asyncio.run(write())


def served_call() -> CallRecord:
    rec = CallRecord("ch-1", "01012345678", "15771000", started_at=START, flow="main",
                     language="ko", priority="high", reason="bypass: elderly",
                     number="+821012345678")
    rec.visit("welcome")
    rec.visit("queue")
    rec.pressed("1")
    rec.end("agent_connected", "general")
    return rec


EVENTS = [
    QueueEvent(at(0), "call.queued", "ch-1", queue="general", detail="priority high"),
    QueueEvent(at(2), "agent.state", agent_id="agent1", detail="ringing"),
    QueueEvent(at(2), "call.offered", "ch-1", "agent1", "general"),
    QueueEvent(at(5), "call.connected", "ch-1", "agent1", "general"),
    QueueEvent(at(95), "call.left", "ch-1", "agent1", "general", "completed"),
    QueueEvent(at(3), "call.queued", "ch-2", queue="general"),
]


def test_show_prints_the_call_as_calls_list_does_and_then_its_events(config, capsys):
    fill(config, [served_call(), CallRecord("ch-2", "0212345678", "15771000", started_at=at(3))],
         EVENTS)
    assert main(["--config", str(config), "calls", "show", "ch-1"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "01012345678" not in out and "+821012345678" not in out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["time", "caller", "dialled", "via"]
    assert lines[1].startswith("2025-03-10 18:30:00  010****5678      15771000    voice  main")
    assert "agent_connected: general" in lines[1] and "bypass: elderly [priority high]" in lines[1]
    assert lines[1].endswith("welcome > queue  [1]")
    assert lines[2] == ""
    assert lines[3].split() == ["time", "event", "agent", "queue", "detail"]
    assert [line.split(None, 2)[2].split() for line in lines[4:]] == [
        ["call.queued", "-", "general", "priority", "high"],
        ["call.offered", "agent1", "general"],
        ["call.connected", "agent1", "general"],
        ["call.left", "agent1", "general", "completed"],
    ]
    assert [line[:19] for line in lines[4:]] == [
        "2025-03-10 18:30:00", "2025-03-10 18:30:02", "2025-03-10 18:30:05", "2025-03-10 18:31:35"]


def test_show_json_has_the_call_and_its_events(config, capsys):
    fill(config, [served_call()], EVENTS)
    assert main(["--config", str(config), "calls", "show", "ch-1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["call"]["call_id"] == "ch-1"
    assert data["call"]["caller"] == "010****5678"
    assert data["call"]["outcome"] == "agent_connected"
    assert [(e["kind"], e["agent_id"], e["detail"]) for e in data["events"]] == [
        ("call.queued", None, "priority high"), ("call.offered", "agent1", ""),
        ("call.connected", "agent1", ""), ("call.left", "agent1", "completed")]
    assert dt.datetime.fromisoformat(data["events"][0]["at"]) == START


def test_a_call_that_never_queued_says_so(config, capsys):
    fill(config, [CallRecord("ch-9", "", "15771000", started_at=START)], [])
    assert main(["--config", str(config), "calls", "show", "ch-9"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "anonymous" in lines[1] and "in progress" in lines[1]
    assert lines[-1] == "no queue events"


def test_an_unknown_call_id_is_an_error(config, capsys):
    fill(config, [served_call()], EVENTS)
    assert main(["--config", str(config), "calls", "show", "no-such-call"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "no-such-call" in err


def test_events_of_a_call_whose_record_is_missing_are_still_shown(config, capsys):
    fill(config, [], EVENTS)
    assert main(["--config", str(config), "calls", "show", "ch-2"]) == 0
    out, err = capsys.readouterr()
    assert "no call record" in err
    assert out.splitlines()[0].split() == ["time", "event", "agent", "queue", "detail"]
    assert "call.queued" in out.splitlines()[1]


def test_what_the_queues_tell_of_a_call_reads_as_text_restart_included(config, capsys):
    """The details a restarted engine reads back (wait so far, language, reason, a restored
    state) are shown as they are: plain words."""
    from ivr.acd.core import Acd
    from ivr.acd.model import AgentSpec, AgentState, QueueSpec

    told: list[QueueEvent] = []

    def record(e) -> None:
        told.append(QueueEvent(at(e.at), e.kind, e.call_id, e.agent_id, e.queue, e.detail))

    queues = {"general": QueueSpec(name="general")}
    agents = [AgentSpec(id="agent1", name="A", endpoint="PJSIP/agent1")]
    first = Acd(queues, agents, on_event=record)
    first.enqueue("ch-3", "general", "elderly", 0, reason="bypass: elderly", language="ko")
    first.leave("ch-3", 30, "callback")
    first.enqueue("ch-3", "general", "elderly", 41.5, arrived_at=0, reason="bypass: elderly",
                  language="ko")
    first.login("agent1", 42)
    first.offers(42)
    first.answered("ch-3", "agent1", 44)
    restarted = Acd(queues, agents, on_event=record)        # the engine was killed at 50 s
    restarted.restore_agent("agent1", AgentState.ON_CALL, None, 60, call_id="ch-3",
                            queue="general", since=44)
    fill(config, [], told)
    assert main(["--config", str(config), "calls", "show", "ch-3"]) == 0
    rows = [line.split(None, 2)[2] for line in capsys.readouterr().out.splitlines()[1:]]
    assert [" ".join(r.split()) for r in rows] == [
        "call.queued - general elderly; language ko; reason bypass: elderly",
        "call.left - general callback",
        "call.queued - general elderly; waited 41.5 s; language ko; reason bypass: elderly",
        "call.offered agent1 general",
        "agent.state agent1 general ringing",
        "call.connected agent1 general 44",
        "agent.state agent1 general on_call",
        "agent.state agent1 general on_call (restored, 16 s in state)",
    ]


def _sipp_result(number: str, caller: str):
    from ivr.sipp import CallResult

    return CallResult(number=number, caller=caller, exit_code=0, outcome="remote-bye", answered=True,
                      ended_by="remote", status_code=None, duration=9.0, elapsed=9.5, log="", errors="",
                      messages="")


def test_ivr_call_prints_the_engines_record_of_that_call(config, capsys):
    """'ivr call' finds its own call among others: same number dialled, same caller (any spelling)."""
    from ivr.cli import _print_engine_record

    started = dt.datetime.now(UTC)

    async def fill():
        async with open_store(f"sqlite:///{config.parent}/var/ivr.db") as store:
            older = CallRecord(call_id="c-old", caller="01012345678", dialled="15771000",
                               started_at=started - dt.timedelta(minutes=5), flow="main")
            older.end("completed")
            other = CallRecord(call_id="c-other", caller="01099998888", dialled="15771000",
                               started_at=started + dt.timedelta(seconds=1), flow="main")
            other.end("completed")
            mine = CallRecord(call_id="c-mine", caller="+82 10-1234-5678", dialled="15771000",
                              started_at=started + dt.timedelta(seconds=1), flow="main", flow_version="abc123",
                              language="en", nodes=["start", "choose_language", "start_english", "agent"],
                              digits=["2", "0"], reason="caller asked for an agent")
            mine.end("queued", "general")
            for r in (older, other, mine):
                await store.record_call(r)

    asyncio.run(fill())
    import argparse

    _print_engine_record(argparse.Namespace(config=str(config)), _sipp_result("15771000", "01012345678"), started)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "engine: call c-mine  flow main (version abc123)  language en  caller +82 **-****-5678"
    assert out[1:] == ["  path:    start > choose_language > start_english > agent",
                       "  keys:    2 0",
                       "  outcome: queued: general  (caller asked for an agent)"]


def test_ivr_call_says_when_the_engine_recorded_nothing(config, capsys, monkeypatch):
    from ivr import cli

    monkeypatch.setattr(cli, "RECORD_WAIT", 0.3)
    import argparse

    cli._print_engine_record(argparse.Namespace(config=str(config)), _sipp_result("15771000", "01012345678"),
                             dt.datetime.now(UTC))
    assert "no record of this call" in capsys.readouterr().out


def test_show_says_how_each_node_was_left_and_the_wait_in_line(config, capsys):
    rec = served_call()
    rec.exits = ["next", "queue"]
    rec.queue, rec.waited = "general", 5.25
    fill(config, [rec], EVENTS)
    assert main(["--config", str(config), "calls", "show", "ch-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "left by: welcome (next) > queue (queue)"
    assert lines[3] == "queue:   general, waited 5.2 s"
    assert main(["--config", str(config), "calls", "show", "ch-1", "--json"]) == 0
    call = json.loads(capsys.readouterr().out)["call"]
    assert (call["exits"], call["queue"], call["waited"]) == (["next", "queue"], "general", 5.25)
    assert main(["--config", str(config), "calls", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["exits"], listed["queue"], listed["waited"]) == (["next", "queue"], "general", 5.25)


def video_call() -> CallRecord:
    rec = CallRecord("web-1", "", "video", started_at=START, flow="sign", language="ko",
                     number="+821012345678", channel="video")
    rec.visit("interpreter")
    rec.said("system", "통역사를 연결하고 있습니다", at=at(1))
    rec.said("caller", "등본을 떼고 싶어요\n오늘 가능한가요?", at=at(12))
    rec.said("agent", "네, \x1b[2J가능합니다", at=at(20))
    rec.end("agent_connected", "interpreter1")
    return rec


def test_list_says_how_each_caller_reached_us(config, capsys):
    fill(config, [served_call(), video_call()], [])
    assert main(["--config", str(config), "calls", "list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[:5] == ["time", "caller", "dialled", "via", "flow"]
    via = header.index("via")
    assert {row[via:via + 5] for row in rows} == {"voice", "video"}
    assert all(row.index("main" if "voice" in row else "sign") == header.index("flow") for row in rows)
    assert main(["--config", str(config), "calls", "list", "--json"]) == 0
    listed = {c["call_id"]: c for c in json.loads(capsys.readouterr().out)}
    assert (listed["ch-1"]["channel"], listed["ch-1"]["chat"]) == ("voice", [])
    assert listed["web-1"]["channel"] == "video" and len(listed["web-1"]["chat"]) == 3


def test_show_prints_the_chat_with_time_and_who(config, capsys):
    rec = video_call()
    rec.chat_dropped = 7
    fill(config, [rec], [])
    assert main(["--config", str(config), "calls", "show", "web-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "video" in lines[1]
    assert lines[2] == "chat:"
    assert lines[3:9] == [
        "  2025-03-10 18:30:01  system  통역사를 연결하고 있습니다",
        "  2025-03-10 18:30:12  caller  등본을 떼고 싶어요",
        "                               오늘 가능한가요?",
        "  2025-03-10 18:30:20  agent   네, \\x1b[2J가능합니다",        # no terminal escape runs
        "  … and 7 more line(s), not kept (a call keeps 500)",
        "",
    ]
    assert lines[-1] == "no queue events"
    assert main(["--config", str(config), "calls", "show", "web-1", "--json"]) == 0
    call = json.loads(capsys.readouterr().out)["call"]
    assert call["channel"] == "video" and call["chat_dropped"] == 7
    assert [(c["sender"], c["text"]) for c in call["chat"]] == [
        ("system", "통역사를 연결하고 있습니다"), ("caller", "등본을 떼고 싶어요\n오늘 가능한가요?"),
        ("agent", "네, \x1b[2J가능합니다")]
    assert dt.datetime.fromisoformat(call["chat"][0]["at"]) == at(1)


def test_a_call_without_chat_prints_no_chat(config, capsys):
    fill(config, [served_call()], EVENTS)
    assert main(["--config", str(config), "calls", "show", "ch-1"]) == 0
    assert "chat:" not in capsys.readouterr().out.splitlines()
