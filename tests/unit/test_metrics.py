"""``GET /metrics``: Prometheus' text, read back; the counters agree with the store."""

from __future__ import annotations

import collections
import datetime as dt
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, AgentState, CenterRouting, QueueSpec
from ivr.ari.client import route
from ivr.call import CallRecord, NodeExit, Outcome
from ivr.config import WallboardConfig, load_config
from ivr.stats.live import LiveStats, generated_state
from ivr.stats.metrics import EngineGauges, Metrics
from ivr.store import open_store
from ivr.testing.fake_ari import FakeAri
from ivr.web.metrics import metrics_handler

from engine_helpers import QUEUE_FLOW, serving, write_engine_config

REPO = Path(__file__).resolve().parents[2]
SEOUL = "Asia/Seoul"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the text format: (name, sorted labels) → value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def busy_metrics() -> tuple[Metrics, str]:
    """A busy center's metrics (1,562 agents, 7 centers, 500 waiting), with calls and ARI
    requests counted."""
    acd, stats = generated_state(agents=1562, centers=7, waiting=500)
    metrics = Metrics(service_level=25)
    metrics.follow(stats)
    metrics.engine = EngineGauges(loop_lag=lambda: 0.004, calls_in_progress=lambda: 812,
                                  records_unsaved=lambda: 0, records_lost=lambda: 0,
                                  events_dropped=lambda: 3)
    # waits ending from now on are counted
    waiting = acd.waiting("general")
    acd.leave(waiting[0].call_id, 5000.0, "caller_hangup")
    acd.leave(waiting[1].call_id, 5000.0, "callback")
    busy = next(a for a in acd.agents() if a.state is AgentState.ON_CALL)
    acd.call_ended(busy.spec.id, 5000.0)
    acd.tick(5031.0)
    (offer, *_) = acd.offers(5031.0)
    acd.answered(offer.call_id, offer.agent_id, 5032.0)
    record = CallRecord(call_id="1700000000.7", caller="01012345678", dialled="15771000", flow="main",
                        nodes=["start", "main_menu"], exits=[NodeExit.NEXT, NodeExit.KEY])
    record.end(Outcome.COMPLETED)
    metrics.call_ended(record)
    metrics.call_shed("max_calls")
    metrics.ari_request("POST", route("/channels/1700000000.7/play/pb-1"), 0.003)
    return metrics, metrics.text().decode()


def test_the_text_reads_back_with_the_gauges_of_the_line_and_no_id_or_number_in_a_label():
    metrics, text = busy_metrics()
    got = samples(text)
    waiting = sum(v for (name, _), v in got.items() if name == "ivr_queue_waiting_calls")
    assert waiting == 497                       # 500, less two who left and one answered
    agents = sum(v for (name, _), v in got.items() if name == "ivr_agents")
    assert agents == 1562
    centers = {dict(labels)["center"] for (name, labels) in got if name == "ivr_agents"}
    assert len(centers) == 7 and "" not in centers
    assert got[("ivr_queue_abandoned_total", (("center", _center_of(metrics, "abandoned")),
                                              ("queue", "general")))] == 1
    assert got[("ivr_calls_total", (("flow", "main"), ("outcome", "completed")))] == 1
    assert got[("ivr_flow_node_exits_total", (("exit", "key"), ("flow", "main"),
                                              ("node", "main_menu")))] == 1
    assert got[("ivr_calls_shed_total", (("why", "max_calls"),))] == 1
    assert got[("ivr_ari_request_seconds_count", (("method", "POST"),
                                                  ("route", "/channels/{id}/play/{id}")))] == 1
    assert got[("ivr_event_loop_lag_seconds", ())] == 0.004
    assert got[("ivr_queue_events_dropped_total", ())] == 3
    assert 'le="25.0"' in text                  # the service level's threshold is a bucket
    labels = " ".join(v for (_, ls) in got for _, v in ls)
    assert "1700000000" not in labels and "1234" not in labels and "+8210" not in labels


def _center_of(metrics: Metrics, counter: str) -> str:
    (sample,) = [s for s in metrics.abandoned_total.collect()[0].samples if s.name.endswith("_total")]
    return sample.labels["center"]


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool (Debian's prometheus package) is not installed")
def test_promtool_finds_nothing_wrong_in_a_busy_engines_metrics():
    _, text = busy_metrics()
    done = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                          capture_output=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), \
        (done.stdout + done.stderr).decode()


def test_one_pool_has_an_empty_center_and_an_answered_wait_in_the_histogram():
    clock = [dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.timezone.utc)]
    mono = [100.0]
    box: list = []
    acd = Acd({"general": QueueSpec(name="general")},
              [AgentSpec(id="a1", name="A", endpoint="PJSIP/a1")],
              on_event=lambda e: box[0](e))
    from zoneinfo import ZoneInfo

    stats = LiveStats(acd, WallboardConfig(), tz=ZoneInfo(SEOUL), clock=lambda: clock[0],
                      mono=lambda: mono[0])
    box.append(stats)
    metrics = Metrics()
    metrics.follow(stats)
    acd.login("a1", 100.0)
    acd.enqueue("c1", "general", None, 100.0)
    acd.offers(100.0)
    clock[0] += dt.timedelta(seconds=12)
    acd.answered("c1", "a1", 112.0)
    got = samples(metrics.text().decode())
    assert got[("ivr_queue_answered_total", (("center", ""), ("queue", "general")))] == 1
    assert got[("ivr_queue_answer_wait_seconds_bucket", (("le", "10.0"), ("queue", "general")))] == 0
    assert got[("ivr_queue_answer_wait_seconds_bucket", (("le", "15.0"), ("queue", "general")))] == 1
    assert got[("ivr_agents", (("center", ""), ("state", "on_call")))] == 1
    assert got[("ivr_queue_waiting_calls", (("center", ""), ("priority", "elderly"),
                                            ("queue", "general")))] == 0


def test_a_replay_of_todays_events_at_start_up_is_not_counted_again():
    from zoneinfo import ZoneInfo

    from ivr.store.base import QueueEvent

    acd = Acd({"general": QueueSpec(name="general")}, [], centers=CenterRouting())
    now = dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.timezone.utc)
    stats = LiveStats(acd, WallboardConfig(), tz=ZoneInfo(SEOUL), clock=lambda: now, mono=lambda: 0.0)
    metrics = Metrics()
    metrics.follow(stats)
    stats.seed([QueueEvent(at=now, kind="call.queued", call_id="c1", queue="general", detail="normal"),
                QueueEvent(at=now, kind="call.connected", call_id="c1", queue="general", detail="4")])
    got = samples(metrics.text().decode())
    assert not any(name == "ivr_queue_answered_total" for name, _ in got)
    assert stats.snapshot()["queues"][0]["answered"] == 1


async def test_the_handler_answers_the_text_format():
    metrics, _ = busy_metrics()
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(metrics))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                assert "ivr_queue_waiting_calls" in await resp.text()
    finally:
        await runner.cleanup()


# -- the engine over the fake ARI ------------------------------------------------------------

def engine_config(tmp_path: Path, fake: FakeAri) -> Path:
    return write_engine_config(tmp_path, fake, flow=QUEUE_FLOW, extra=(
        "acd:\n  queues:\n    general: {max_wait: 600, on_max_wait: message, announce_every: 600,"
        " wrap_up: 0}\n"
        "  agents:\n    - {id: agent1, name: A, endpoint: PJSIP/agent1, login: true}\n"))


async def test_the_counters_equal_the_stores_counts_after_calls_through_the_engine(tmp_path, monkeypatch):
    from ivr import app as app_module

    engines = []
    real = app_module.Engine

    class Spy(real):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            engines.append(self)

    monkeypatch.setattr(app_module, "Engine", Spy)
    async with FakeAri() as fake:
        config = load_config(engine_config(tmp_path, fake), env={})
        async with serving(config):
            (engine,) = engines
            for caller in ("01011112222", "01033334444"):
                ch = await fake.start_call(caller=caller, exten="100")
                # the agent's phone is dialled and answers; the caller is put through
                await fake.wait_for_request(lambda r, c=ch: r.method == "POST" and "addChannel" in r.path
                                            and r.params.get("channel") == c
                                            and "holding" not in r.path, timeout=5)
                await fake.caller_hangs_up(ch)
            lost = await fake.start_call(exten="99999")
            await fake.wait_for_request(lambda r: r.method == "DELETE" and r.path == f"/channels/{lost}",
                                        timeout=5)
        # the engine has stopped: every call is over and recorded
        text = engine.metrics.text().decode()
        assert engine.stats is not None
        snapshot = engine.stats.snapshot()
        async with open_store(config.store_url) as store:
            records = await store.recent_calls()
            connected = 0
            for r in records:
                connected += sum(1 for e in await store.call_events(r.call_id) if e.kind == "call.connected")
    got = samples(text)
    by_outcome = collections.Counter((r.flow or "", str(r.outcome)) for r in records)
    counted = {(dict(ls)["flow"], dict(ls)["outcome"]): v for (name, ls), v in got.items()
               if name == "ivr_calls_total"}
    assert counted == dict(by_outcome) and sum(by_outcome.values()) == 3
    assert got[("ivr_queue_answered_total", (("center", ""), ("queue", "general")))] == connected == 2
    assert snapshot["queues"][0]["answered"] == 2
    requests = sum(v for (name, _), v in got.items() if name == "ivr_ari_request_seconds_count")
    assert requests == len([r for r in fake.requests if r.path != "/events"]) > 0
    routes = {dict(ls)["route"] for (name, ls), _ in got.items() if name == "ivr_ari_request_seconds_count"}
    assert "/channels/{id}/answer" in routes and not any(ch in r for r in routes for ch in (lost,))


# -- the sample Grafana dashboard ------------------------------------------------------------

DASHBOARD = REPO / "docs" / "grafana-dashboard.json"


def dashboard_queries() -> list[str]:
    import json

    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"].replace("$queue", ".*").replace("$center", ".*").replace("$sl", "20.0")
            for p in board["panels"] for t in p["targets"]]


def test_the_dashboard_asks_only_for_metrics_the_engine_gives():
    import re

    _, text = busy_metrics()
    given = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    asked = {name for q in dashboard_queries() for name in re.findall(r"\b(ivr_[a-z_]+)", q)}
    assert asked and asked <= given, f"not given: {sorted(asked - given)}"


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool (Debian's prometheus package) is not installed")
def test_promtool_reads_every_query_of_the_dashboard(tmp_path):
    import json

    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"ivr:dashboard_query_{i}", "expr": q} for i, q in enumerate(dashboard_queries())]}]}
    path = tmp_path / "rules.yaml"
    path.write_text(json.dumps(rules), encoding="utf-8")      # JSON is YAML
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, timeout=60)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
