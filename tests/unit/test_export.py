"""'ivr export calls': the calls of a range read back from CSV and Parquet as they were stored,
numbers masked unless asked, nothing half written, one batch of memory however many calls."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import json
import sqlite3
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ivr.analytics.export import COLUMNS, ExportError, atomic_file, export_range, write_calls
from ivr.call import CallRecord, NodeExit
from ivr.cli import main
from ivr.errors import StoreError
from ivr.logs import mask_number
from ivr.store import open_store, statements
from ivr.store.base import QueueEvent
from ivr.testing.memory_store import MemoryStore

UTC = dt.timezone.utc
SEOUL = dt.timezone(dt.timedelta(hours=9))
# 2025-03-10 in Seoul is [2025-03-09T15:00Z, 2025-03-10T15:00Z).
DAY_START = dt.datetime(2025, 3, 9, 15, 0, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    for name in ("IVR_STORE_URL", "IVR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    p = tmp_path / "ivr.yaml"
    p.write_text(f"ari: {{username: ivr, password: x}}\n"
                 f"store: {{url: 'sqlite:///{tmp_path}/var/ivr.db'}}\n"
                 "callers: {timezone: Asia/Seoul}\n", encoding="utf-8")
    return p


def url(config: Path) -> str:
    return f"sqlite:///{config.parent}/var/ivr.db"


def served(call_id: str, at: dt.datetime, *, flow: str = "main") -> CallRecord:
    r = CallRecord(call_id, "010-1234-5678", "15771000", started_at=at, flow=flow,
                   flow_version="v7", language="ko", number="+821012345678",
                   priority="elderly", reason="bypass: elderly")
    for node, left in (("welcome", NodeExit.NEXT), ("메인_메뉴", NodeExit.KEY),
                       ("to_agents", NodeExit.QUEUE)):
        r.visit(node)
        r.exits.append(left)
    r.pressed("1")
    r.queue, r.waited = "general", 42.125
    r.end("agent_connected", "agent1 after 42 s in line; called back on 01098765432")
    r.ended_at = at + dt.timedelta(seconds=300, microseconds=250)
    return r


def withheld(call_id: str, at: dt.datetime) -> CallRecord:
    r = CallRecord(call_id, "", "15771000", started_at=at, flow="main")
    r.visit("welcome")
    r.exits.append(NodeExit.HANGUP)
    r.end("caller_hangup")
    r.ended_at = at + dt.timedelta(seconds=3)
    return r


CALLS = [
    served("before", DAY_START - dt.timedelta(microseconds=1)),          # 23:59:59.999999 the day before
    served("first", DAY_START),                                          # 00:00 in Seoul
    withheld("anon", DAY_START + dt.timedelta(hours=3)),
    served("sales", DAY_START + dt.timedelta(hours=5), flow="sales"),
    CallRecord("live", "01011112222", "15771000", started_at=DAY_START + dt.timedelta(hours=6),
               flow="main", number="+821011112222"),                      # still in progress
    served("last", DAY_START + dt.timedelta(hours=24, microseconds=-1)),
    served("next-day", DAY_START + dt.timedelta(hours=24)),
]
EVENTS = [
    QueueEvent(DAY_START + dt.timedelta(seconds=30), "call.queued", "first", None, "general",
               "priority elderly"),
    QueueEvent(DAY_START + dt.timedelta(seconds=70), "call.offered", "first", "agent1", "general"),
    QueueEvent(DAY_START + dt.timedelta(seconds=72), "call.connected", "first", "agent1", "general"),
    QueueEvent(DAY_START + dt.timedelta(seconds=90), "agent.state", None, "agent1", None, "on_call"),
]


def store_calls(config: Path, calls=CALLS, events=EVENTS) -> None:
    async def write() -> None:
        async with open_store(url(config)) as store:
            for r in calls:
                if r.outcome is None:
                    await store.call_started(r)
                else:
                    await store.record_call(r)
            await store.record_events(events)

    asyncio.run(write())


def export(config: Path, *args: str) -> int:
    return main(["-c", str(config), "export", "calls", *args])


def expected(r: CallRecord, *, full: bool) -> dict:
    """A stored call as an export row should give it back (lists as lists, times as UTC)."""
    events = [{"at": e.at.isoformat(), "kind": e.kind, "agent_id": e.agent_id, "queue": e.queue,
               "detail": e.detail} for e in EVENTS if e.call_id == r.call_id]
    number = lambda n: (n if full else mask_number(n)) if n else None   # noqa: E731
    return {
        "call_id": r.call_id, "started_at": r.started_at, "ended_at": r.ended_at,
        "flow": r.flow, "flow_version": r.flow_version, "language": r.language,
        "caller": number(r.caller) or "", "number": number(r.number), "dialled": r.dialled,
        "channel": r.channel, "outcome": r.outcome, "priority": r.priority, "reason": r.reason,
        "detail": r.detail if full else r.detail.replace("01098765432", "010****5432"),
        "path": r.nodes, "exits": list(r.exits), "keys": r.digits, "queue": r.queue,
        "waited": r.waited, "events": events,
    }


def read_csv(path: Path) -> list[dict]:
    """The CSV's rows in the values they stand for (the inverse of what the README says)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    back = []
    for row in rows:
        assert tuple(row) == COLUMNS
        value = {k: (v if v != "" else None) for k, v in row.items()}
        for k in ("started_at", "ended_at"):
            value[k] = dt.datetime.fromisoformat(value[k]) if value[k] else None
        for k in ("path", "exits", "keys", "events"):
            value[k] = json.loads(value[k])
        value["waited"] = float(value["waited"]) if value["waited"] else None
        value["caller"] = value["caller"] or ""
        value["detail"] = value["detail"] or ""
        back.append(value)
    return back


def the_day(full: bool) -> list[dict]:
    return [expected(r, full=full) for r in CALLS[1:-1]]


def test_a_day_of_calls_reads_back_from_csv_with_numbers_masked(config, capsys):
    store_calls(config)
    out = config.parent / "calls.csv"
    assert export(config, "--since", "2025-03-10", "--output", str(out)) == 0
    assert "5 call(s)" in capsys.readouterr().err
    back = read_csv(out)
    assert [r["call_id"] for r in back] == ["first", "anon", "sales", "live", "last"]
    assert back == the_day(full=False)
    assert "+821012345678" not in out.read_text(encoding="utf-8")
    assert "01098765432" not in out.read_text(encoding="utf-8")
    assert not (config.parent / "calls.csv.part").exists()


def test_a_day_of_calls_reads_back_from_parquet_as_stored(config):
    store_calls(config)
    out = config.parent / "calls.parquet"
    assert export(config, "--since", "2025-03-10", "--until", "2025-03-10", "--output", str(out),
                  "--full-numbers") == 0
    table = pq.read_table(out)
    assert table.column_names == list(COLUMNS)
    assert table.schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("path").type == pa.list_(pa.string())
    back = table.to_pylist()
    for row in back:
        row["events"] = json.loads(row["events"])
        row["caller"] = row["caller"] or ""
    assert back == the_day(full=True)


def test_standard_output_a_flow_and_moments_instead_of_days(config, capsysbinary):
    store_calls(config)
    assert export(config, "--since", "2025-03-10", "--flow", "sales") == 0
    lines = capsysbinary.readouterr().out.decode().splitlines()
    assert len(lines) == 2 and lines[1].startswith("sales,")
    # From 00:00 Seoul (a moment, given in UTC) to 05:00 Seoul (a local moment, excluded).
    assert export(config, "--since", "2025-03-09T15:00Z", "--until", "2025-03-10T05:00") == 0
    text = capsysbinary.readouterr().out.decode()
    assert [line.split(",")[0] for line in text.splitlines()[1:]] == ["first", "anon"]


def test_a_range_it_cannot_read_is_refused_and_nothing_is_written(config, capsys):
    store_calls(config)
    out = config.parent / "calls.csv"
    assert export(config, "--since", "2025-13-01", "--output", str(out)) == 2
    assert "neither a date" in capsys.readouterr().err
    assert export(config, "--since", "2025-03-10", "--until", "2025-03-09", "--output", str(out)) == 2
    assert "not after" in capsys.readouterr().err
    assert export(config, "--since", "2025-03-10", "--output", str(config.parent / "no" / "x.csv")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists() and list(config.parent.glob("*.part")) == []


def test_the_range_is_the_center_s_days_until_included():
    since, until = export_range("2025-03-10", "2025-03-11", SEOUL)
    assert (since, until) == (DAY_START, DAY_START + dt.timedelta(days=2))
    assert export_range("2025-03-10T09:30+00:00", None, SEOUL) == (
        dt.datetime(2025, 3, 10, 9, 30, tzinfo=UTC), DAY_START + dt.timedelta(days=1))
    with pytest.raises(ExportError, match="not after"):
        export_range("2025-03-10T12:00", "2025-03-10T12:00", SEOUL)


async def test_an_export_that_fails_leaves_no_file_and_keeps_the_last_good_one(tmp_path):
    store = MemoryStore()
    for r in CALLS:
        await store.record_call(r)
    out = tmp_path / "calls.parquet"
    out.write_bytes(b"yesterday's export")
    store.fail["events_for_calls"] = StoreError("the database went away")
    with pytest.raises(StoreError, match="went away"):
        with atomic_file(out) as f:
            await write_calls(store, f, since=DAY_START, until=DAY_START + dt.timedelta(days=1),
                              fmt="parquet")
    assert out.read_bytes() == b"yesterday's export"
    assert list(tmp_path.glob("*.part")) == []


async def test_a_row_says_how_the_caller_reached_us(tmp_path):
    store = MemoryStore()
    video = dataclasses.replace(served("web-1", DAY_START + dt.timedelta(hours=1)), channel="video")
    video.said("caller", "private words")
    for r in (served("first", DAY_START), video):
        await store.record_call(r)
    day = {"since": DAY_START, "until": DAY_START + dt.timedelta(days=1)}
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"calls.{fmt}"
        with atomic_file(out) as f:
            assert await write_calls(store, f, fmt=fmt, **day) == 2
        rows = read_csv(out) if fmt == "csv" else pq.read_table(out).to_pylist()
        assert [(r["call_id"], r["channel"]) for r in rows] == [("first", "voice"), ("web-1", "video")]
    assert "private words" not in (tmp_path / "calls.csv").read_text(encoding="utf-8")   # no chat


async def test_one_row_group_per_batch(tmp_path):
    store = MemoryStore()
    for r in CALLS:
        await store.record_call(r)
    out = tmp_path / "calls.parquet"
    with atomic_file(out) as f:
        written = await write_calls(store, f, since=DAY_START - dt.timedelta(days=1),
                                    until=DAY_START + dt.timedelta(days=2), fmt="parquet", batch=3)
    assert written == 7
    assert pq.ParquetFile(out).metadata.num_row_groups == 3
    assert pq.read_table(out).column("call_id").to_pylist() == [r.call_id for r in CALLS]


# -- a long range in one batch of memory -----------------------------------------------------------

MANY = 200_000
LENGTH = dt.timedelta(seconds=300)


def generate(path: Path) -> None:
    """MANY calls over 200 days, every fourth with two queue events, written straight to the
    database the store created."""
    from ivr.store.sqlite import _call_row, _event_row

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    start = DAY_START - dt.timedelta(days=200)
    calls, events = [], []
    model = served("model", start)
    for i in range(MANY):
        at = start + dt.timedelta(seconds=i * 86.4)
        r = dataclasses.replace(model, call_id=f"c{i:07d}", started_at=at, ended_at=at + LENGTH,
                                flow="main" if i % 3 else "sales", number=f"+8210{i % 70_000:08d}",
                                caller=f"010{i % 70_000:08d}", detail="agent1 after 42 s in line")
        calls.append(_call_row(r))
        if i % 4 == 0:
            events.append(_event_row(QueueEvent(at + dt.timedelta(seconds=5), "call.queued",
                                                r.call_id, None, "general")))
            events.append(_event_row(QueueEvent(at + dt.timedelta(seconds=47), "call.connected",
                                                r.call_id, "agent1", "general")))
        if len(calls) == 20_000:
            db.executemany(statements.INSERT_CALL, calls)
            db.executemany(statements.INSERT_EVENT, events)
            calls, events = [], []
    db.execute("COMMIT")
    db.close()


@pytest.mark.timeout(240)
async def test_two_hundred_thousand_calls_export_in_one_batch_of_memory(tmp_path):
    path = tmp_path / "ivr.db"
    async with open_store(f"sqlite:///{path}"):
        pass
    generate(path)
    since, until = DAY_START - dt.timedelta(days=201), DAY_START
    parquet, text = tmp_path / "all.parquet", tmp_path / "all.csv"
    async with open_store(f"sqlite:///{path}") as store:
        # What the rows take: one batch of records and events measured, times the batches.
        tracemalloc.start()
        try:
            batches = store.iter_calls(since, until, batch=5000)
            records = await anext(batches)
            await batches.aclose()
            events = await store.events_for_calls([r.call_id for r in records])
            one_batch = tracemalloc.get_traced_memory()[0]
            del records, events
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            with atomic_file(parquet) as out:
                written = await write_calls(store, out, since=since, until=until, fmt="parquet")
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        with atomic_file(text) as out:           # the same stream, untraced (tracing is slow)
            assert await write_calls(store, out, since=since, until=until) == MANY
    all_rows = one_batch * MANY / 5000
    print(f"one batch {one_batch / 2**20:.1f} MiB, all rows {all_rows / 2**20:.0f} MiB, "
          f"peak while exporting {peak / 2**20:.1f} MiB, pyarrow pool peak "
          f"{pa.default_memory_pool().max_memory() / 2**20:.1f} MiB")
    assert written == MANY
    assert peak < all_rows / 8
    assert pa.default_memory_pool().max_memory() < all_rows / 8
    table = pq.read_table(parquet, columns=["call_id", "number"])
    assert table.num_rows == MANY and table.column("call_id")[MANY - 1].as_py() == f"c{MANY - 1:07d}"
    assert table.column("number")[1].as_py() == mask_number("+821000000001")
    assert pq.ParquetFile(parquet).metadata.num_row_groups == MANY // 5000
    assert csv_lines(text) == MANY + 1


def csv_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f)
