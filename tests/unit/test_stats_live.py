"""The wallboard's figures: counted from scripted queue events, by hand."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

import pytest

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, AgentState, CenterRouting, Event, QueueSpec
from ivr.acd.recorder import EventRecorder
from ivr.config import Levels, WallboardConfig
from ivr.stats.live import LiveStats, generated_state, load_today
from ivr.store.base import QueueEvent
from ivr.testing.memory_store import MemoryStore

SEOUL = ZoneInfo("Asia/Seoul")
MORNING = dt.datetime(2026, 12, 2, 9, 0, tzinfo=SEOUL)


class Clocks:
    """A wall clock and the queues' clock, moved together."""

    def __init__(self, start: dt.datetime = MORNING) -> None:
        self.wall_at = start.astimezone(dt.timezone.utc)
        self.t = 1000.0

    def wall(self) -> dt.datetime:
        return self.wall_at

    def mono(self) -> float:
        return self.t

    def at(self, t: float) -> float:
        """Move both clocks to ``t`` seconds after the start."""
        step = 1000.0 + t - self.t
        self.t += step
        self.wall_at += dt.timedelta(seconds=step)
        return self.t


def board(config: WallboardConfig | None = None, *, agents=(), centers: CenterRouting | None = None,
          queues=("general",), clocks: Clocks | None = None, numbers=lambda call_id: None):
    clocks = clocks or Clocks()
    specs = {q: QueueSpec(name=q, wrap_up=10.0) for q in queues}
    box: list = []
    acd = Acd(specs, list(agents), on_event=lambda e: box[0](e) if box else None, centers=centers)
    stats = LiveStats(acd, config or WallboardConfig(), tz=SEOUL, clock=clocks.wall,
                      mono=clocks.mono, numbers=numbers)
    box.append(stats)
    return acd, stats, clocks


def tell(stats: LiveStats, clocks: Clocks, t: float, kind: str, call_id: str | None = None,
         queue: str | None = "general", detail: str = "", agent_id: str | None = None) -> None:
    stats(Event(at=clocks.at(t), kind=kind, call_id=call_id, agent_id=agent_id, queue=queue,
                detail=detail))


def row(snapshot, queue="general", center=None):
    (found,) = [q for q in snapshot["queues"] if q["queue"] == queue and q["center"] == center]
    return found


def script(stats: LiveStats, clocks: Clocks) -> None:
    """Six callers: answered after 10 s and 30 s; hung up after 10 s, 40 s and 3 s; one took a
    callback after 45 s."""
    for t, kind, call, detail in [
        (0, "call.queued", "c1", "normal"), (0, "call.queued", "c2", "normal"),
        (0, "call.queued", "c5", "normal"), (0, "call.queued", "c6", "normal"),
        (3, "call.left", "c6", "caller_hangup"),
        (5, "call.queued", "c3", "elderly"), (5, "call.queued", "c4", "normal"),
        (10, "call.connected", "c1", "10"), (15, "call.left", "c3", "caller_hangup"),
        (30, "call.connected", "c2", "30"), (40, "call.left", "c5", "caller_hangup"),
        (50, "call.left", "c4", "callback"),
    ]:
        tell(stats, clocks, t, kind, call, detail=detail)


def test_service_level_by_both_formulas_speed_of_answer_and_abandons_without_callbacks():
    _, stats, clocks = board()
    script(stats, clocks)
    q = row(stats.snapshot())
    assert (q["answered"], q["abandoned"], q["callbacks"]) == (2, 3, 1)
    assert q["service_level"] == 0.5            # ServicelevelPerf: 1 of 2 answered within 20 s
    assert q["asa"] == 20.0                     # (10 + 30) / 2
    assert q["abandon_rate"] == 0.5             # 3 of the 6 who left the line
    _, stats2, clocks2 = board(WallboardConfig(service_level_formula="answered_and_abandoned"))
    script(stats2, clocks2)
    snap = stats2.snapshot()
    assert row(snap)["service_level"] == 0.6    # ServicelevelPerf2: (1 + 2) / (2 + 3)
    assert snap["service_level"] == {"seconds": 20.0, "formula": "answered_and_abandoned"}


def test_an_overflow_is_counted_once_where_the_wait_ends_with_the_whole_wait():
    _, stats, clocks = board(queues=("general", "spare"))
    tell(stats, clocks, 0, "call.queued", "c1", detail="normal")
    tell(stats, clocks, 15, "call.left", "c1", detail="overflow")
    tell(stats, clocks, 15, "call.queued", "c1", queue="spare", detail="normal; waited 15 s")
    tell(stats, clocks, 25, "call.connected", "c1", queue="spare", detail="25")
    tell(stats, clocks, 26, "call.queued", "c2", detail="normal")
    tell(stats, clocks, 30, "call.left", "c2", detail="max_wait")
    snap = stats.snapshot()
    general, spare = row(snap, "general"), row(snap, "spare")
    assert (general["answered"], general["abandoned"]) == (0, 1)     # max_wait: abandoned
    assert (spare["answered"], spare["asa"], spare["service_level"]) == (1, 25.0, 0.0)


def test_levels_follow_the_thresholds_and_say_alerts():
    config = WallboardConfig(longest_wait=Levels(warn=30, alert=60),
                             abandon_rate=Levels(warn=0.2, alert=0.4))
    _, stats, clocks = board(config)
    script(stats, clocks)
    levels = row(stats.snapshot())["levels"]
    assert levels == {"longest_wait": "ok", "service_level": "alert", "abandon_rate": "alert"}
    alerts = stats.snapshot()["alerts"]
    assert any(a["kind"] == "abandon_rate" and "hung up unserved" in a["text"] for a in alerts), alerts
    _, quiet, _ = board(config)
    assert row(quiet.snapshot())["levels"] == {"longest_wait": "ok", "service_level": None,
                                               "abandon_rate": None}


def agents(n: int, centers=(None,)) -> list[AgentSpec]:
    return [AgentSpec(id=f"a{i}", name=f"Agent {i}", endpoint=f"PJSIP/a{i}",
                      center=centers[i % len(centers)]) for i in range(1, n + 1)]


def test_occupancy_is_time_on_calls_and_wrap_up_over_time_logged_in_and_not_paused():
    acd, stats, clocks = board(agents=agents(1))
    acd.login("a1", clocks.at(0))
    acd.enqueue("c1", "general", None, clocks.at(100))
    acd.offers(clocks.at(100))
    acd.answered("c1", "a1", clocks.at(110))
    acd.call_ended("a1", clocks.at(170))          # wrap-up 10 s
    acd.tick(clocks.at(180))
    acd.pause("a1", "lunch", clocks.at(200))
    acd.resume("a1", clocks.at(300))
    clocks.at(400)
    snap = stats.snapshot()
    (everyone,) = snap["agents"]
    # on a call 110-170 and wrapping up 170-180: 70 s; logged in and not paused 0-200, 300-400
    assert everyone["occupancy"] == round(70 / 300, 3)
    assert everyone["available"] == 1 and snap["centers"] == []
    acd.pause("a1", "lunch", clocks.at(400))
    snap = stats.snapshot()
    assert snap["agents"][0]["paused_by_reason"] == {"lunch": 1}
    assert snap["agent_list"] == [{"id": "a1", "name": "Agent 1", "center": None, "state": "paused",
                                   "reason": "lunch", "for_seconds": 0.0, "queue": None}]
    assert row(snap)["answered"] == 1 and row(snap)["asa"] == 10.0


def test_per_center_figures_and_the_waiting_list_in_line_order_with_masked_numbers():
    numbers = {"c1": "+821012345678", "c2": "+821087654321", "c3": "+821055556666"}
    config = WallboardConfig(flash_after=60)
    acd, stats, clocks = board(config, agents=agents(4, centers=("seoul", "busan")),
                               centers=CenterRouting(spill_after=None, spill_margin=None),
                               numbers=numbers.get)
    for agent in ("a1", "a2"):                    # a1 seoul, a2 busan
        acd.login(agent, clocks.at(0))
    acd.enqueue("c1", "general", "normal", clocks.at(10), center="seoul")
    acd.enqueue("c2", "general", "normal", clocks.at(20), center="busan")
    for offer in acd.offers(clocks.at(20)):
        acd.answered(offer.call_id, offer.agent_id, clocks.at(25))
    acd.enqueue("c3", "general", "elderly", clocks.at(30), center="seoul", reason="bypass: elderly")
    acd.enqueue("c4", "general", "normal", clocks.at(40), center="busan")
    clocks.at(100)
    snap = stats.snapshot()
    assert snap["centers"] == ["busan", "seoul"]
    seoul, busan = row(snap, center="seoul"), row(snap, center="busan")
    assert (seoul["answered"], seoul["asa"], busan["answered"], busan["asa"]) == (1, 15.0, 1, 5.0)
    assert row(snap)["answered"] == 2 and row(snap)["waiting"] == 2
    assert seoul["waiting_by_priority"] == {"elderly": 1, "repeat": 0, "normal": 0}
    assert seoul["longest_wait"] == 70.0 and busan["longest_wait"] == 60.0
    by_center = {a["center"]: a for a in snap["agents"]}
    assert by_center["seoul"]["on_call"] == 1 and by_center["seoul"]["offline"] == 1
    assert by_center[None]["on_call"] == 2 and by_center[None]["offline"] == 2
    listed = snap["waiting_list"]
    assert [w["call_id"] for w in listed] == ["c3", "c4"]          # elderly first: line order
    assert listed[0]["number"] == "+821*****6666" and listed[1]["number"] is None
    assert listed[0]["reason"] == "bypass: elderly" and listed[0]["flash"] is True
    assert listed[1]["flash"] is False and listed[0]["waited"] == 70.0
    assert "12345678" not in json.dumps(snap) and "55556666" not in json.dumps(snap)
    detail = stats.waiting_caller("c3")
    assert detail is not None and detail["number"] == "+821055556666"
    assert stats.waiting_caller("c1") is None


def test_the_waiting_list_is_the_first_in_line_then_the_longest_waits_behind_them():
    """At the insurer's peak thousands wait: the list sends the first ``list_rows`` in line and,
    behind them, those waiting long enough to flash (the longest first), each with its place;
    the count is of everyone."""
    config = WallboardConfig(list_rows=3, flash_after=60)
    acd, stats, clocks = board(config)
    for i in range(6):                                          # n0 … n5 wait from 0 s to 50 s
        acd.enqueue(f"n{i}", "general", "normal", clocks.at(i * 10))
    for i in range(4):                                          # e0 … e3 come at 100 s, ahead of them
        acd.enqueue(f"e{i}", "general", "elderly", clocks.at(100 + i))
    clocks.at(115)                                              # n0 … n5 have waited 65 s or more
    snap = stats.snapshot()
    assert snap["waiting_total"] == 10 and row(snap)["waiting"] == 10
    listed = [(w["position"], w["call_id"], w["flash"]) for w in snap["waiting_list"]]
    assert listed == [(1, "e0", False), (2, "e1", False), (3, "e2", False),   # the first in line
                      (5, "n0", True), (6, "n1", True), (7, "n2", True)]      # the longest behind
    clocks.at(200)                                              # everyone flashes now
    assert [w["call_id"] for w in stats.snapshot()["waiting_list"]][3:] == ["n0", "n1", "n2"]
    calm = WallboardConfig(list_rows=3, flash_after=600)
    acd2, stats2, clocks2 = board(calm)
    for i in range(6):
        acd2.enqueue(f"n{i}", "general", "normal", clocks2.at(i * 10))
    clocks2.at(100)
    assert [w["position"] for w in stats2.snapshot()["waiting_list"]] == [1, 2, 3]  # nobody flashes


def test_the_counts_start_again_at_local_midnight_and_a_caller_in_line_then_carries_over():
    clocks = Clocks(dt.datetime(2026, 12, 2, 23, 59, 0, tzinfo=SEOUL))
    acd, stats, clocks = board(agents=agents(1), clocks=clocks)
    acd.login("a1", clocks.at(0))
    acd.enqueue("c1", "general", None, clocks.at(0))
    acd.offers(clocks.at(0))
    acd.answered("c1", "a1", clocks.at(5))
    acd.call_ended("a1", clocks.at(15))
    acd.tick(clocks.at(25))
    acd.enqueue("c2", "general", None, clocks.at(50))
    assert row(stats.snapshot())["answered"] == 1
    assert stats.snapshot()["day"] == "2026-12-02"
    clocks.at(70)                                  # 00:00:10
    snap = stats.snapshot()
    assert snap["day"] == "2026-12-03" and row(snap)["answered"] == 0
    assert row(snap)["waiting"] == 1 and snap["agents"][0]["occupancy"] == 0.0
    acd.offers(clocks.at(75))
    acd.answered("c2", "a1", clocks.at(80))
    snap = stats.snapshot()
    assert row(snap)["answered"] == 1 and row(snap)["asa"] == 30.0     # the whole wait
    clocks.at(90)
    assert stats.snapshot()["agents"][0]["occupancy"] == round(10 / 30, 3)   # since 00:00:00


async def test_a_restart_reads_todays_events_from_the_store_and_the_wallboard_is_not_zeroed():
    store = MemoryStore()
    clocks = Clocks()
    recorder = EventRecorder(store, clock=clocks.wall)
    specs = {"general": QueueSpec(name="general", wrap_up=10.0)}
    acd = Acd(specs, agents(1), on_event=recorder)
    acd.login("a1", clocks.at(0))
    acd.enqueue("c1", "general", None, clocks.at(0))
    acd.offers(clocks.at(0))
    acd.answered("c1", "a1", clocks.at(12))
    acd.enqueue("c2", "general", None, clocks.at(20))
    acd.leave("c2", clocks.at(50), "caller_hangup")
    yesterday = QueueEvent(at=MORNING - dt.timedelta(days=1), kind="call.connected", call_id="old",
                           queue="general", detail="3")
    await store.record_events([yesterday])
    assert await recorder.flush()
    clocks.at(60)
    _, restarted, _ = board(agents=agents(1), clocks=clocks)
    assert await load_today(restarted, store) == len(store.events) - 1
    q = row(restarted.snapshot())
    assert (q["answered"], q["abandoned"], q["asa"], q["service_level"]) == (1, 1, 12.0, 1.0)


async def test_a_change_wakes_a_waiter_and_reservations_are_shown_as_the_store_counts_them():
    _, stats, clocks = board()
    version = stats.version
    waiter = asyncio.ensure_future(stats.wait_changed(version, timeout=5))
    await asyncio.sleep(0)
    tell(stats, clocks, 1, "call.queued", "c1", detail="normal")
    assert await asyncio.wait_for(waiter, 1) > version
    now = stats.version
    assert await stats.wait_changed(now, timeout=0.01) == now          # nothing changed
    stats.set_reservations({"pending": 2, "due": 1, "in_progress": 0, "failed": 1, "done": 4})
    assert stats.version > now
    assert stats.snapshot()["reservations"] == {"pending": 2, "due": 1, "in_progress": 0,
                                                "failed": 1, "done": 4}


def test_a_finished_call_counts_in_todays_calls_by_outcome():
    from ivr.call import CallRecord, Outcome

    _, stats, clocks = board()
    record = CallRecord(call_id="x", caller="01012345678", dialled="1577")
    record.end(Outcome.AGENT_CONNECTED)
    record = dataclasses.replace(record, ended_at=clocks.wall())
    stats.call_ended(record)
    assert stats.snapshot()["calls"] == {"total": 1, "by_outcome": {"agent_connected": 1}}


def test_a_snapshot_of_the_insurers_size_is_quick():
    acd, stats = generated_state(agents=1562, centers=7, waiting=500)
    stats.snapshot()
    took = []
    for _ in range(5):
        start = time.perf_counter()
        snap = stats.snapshot()
        took.append(time.perf_counter() - start)
    assert snap["waiting_total"] == 500 and len(snap["agent_list"]) == 1562
    assert 50 <= len(snap["waiting_list"]) <= 100
    assert len(snap["centers"]) == 7
    assert sum(1 for a in acd.agents() if a.state is AgentState.ON_CALL) > 1000
    assert min(took) < 0.25, f"a snapshot took {min(took) * 1000:.0f} ms"


@pytest.mark.parametrize("formula", ["answered", "answered_and_abandoned"])
def test_the_snapshot_has_the_keys_the_wallboard_renders(formula):
    _, stats, clocks = board(WallboardConfig(service_level_formula=formula))
    script(stats, clocks)
    snap = stats.snapshot()
    assert list(snap) == ["as_of", "day", "timezone", "service_level", "priorities", "centers",
                          "queues", "agents", "agent_list", "waiting_list", "waiting_total",
                          "reservations", "calls", "alerts"]
    assert snap["timezone"] == "Asia/Seoul" and snap["day"] == "2026-12-02"
    assert snap["as_of"] == "2026-12-02T00:00:50+00:00"
    assert list(row(snap)) == ["queue", "center", "waiting", "waiting_by_priority", "longest_wait",
                               "answered", "abandoned", "callbacks", "service_level", "asa",
                               "abandon_rate", "levels"]
    json.dumps(snap)


def test_an_agents_state_restored_after_a_restart_is_not_counted_twice():
    from ivr.acd.model import StateDetail, state_detail

    clocks = Clocks()
    _, stats, clocks = board(agents=agents(1), clocks=clocks)
    start = clocks.wall()
    stats.seed([
        QueueEvent(at=start, kind="agent.state", agent_id="a1", detail="available"),
        QueueEvent(at=start + dt.timedelta(seconds=600), kind="agent.state", agent_id="a1",
                   call_id="c1", queue="general", detail="on_call"),
    ])
    clocks.at(1200)                 # the engine restarts 20 minutes in, the agent still talking
    stats(Event(at=clocks.mono(), kind="agent.state", agent_id="a1", call_id="c1", queue="general",
                detail=state_detail(StateDetail(AgentState.ON_CALL, restored=True, age=600.0))))
    clocks.at(1500)
    (everyone,) = stats.snapshot()["agents"]
    assert everyone["occupancy"] == round(900 / 1500, 3)     # on the call 600-1500 of 1500 s


def test_the_gauges_count_the_line_and_its_oldest_wait_per_queue_and_center():
    acd, stats, clocks = board(agents=agents(2, centers=("seoul", "busan")),
                               centers=CenterRouting(spill_after=None, spill_margin=None))
    acd.enqueue("c1", "general", "normal", clocks.at(10), center="seoul")
    acd.enqueue("c2", "general", "elderly", clocks.at(20), center="busan")
    acd.enqueue("c3", "general", "normal", clocks.at(30), center="seoul")
    clocks.at(100)
    waiting, oldest, agents_by = stats.line_counts()
    assert waiting[("general", "seoul", "normal")] == 2
    assert waiting[("general", "busan", "elderly")] == 1
    assert waiting[("general", "busan", "normal")] == 0
    assert oldest == {("general", None): 90.0, ("general", "seoul"): 90.0,
                      ("general", "busan"): 80.0}
    assert agents_by[("seoul", "offline")] == 1 and agents_by[("busan", "offline")] == 1
    acd.leave("c1", clocks.at(100), "caller_hangup")
    acd.leave("c3", clocks.at(100), "caller_hangup")
    acd.leave("c2", clocks.at(100), "caller_hangup")
    assert stats.line_counts()[1] == {("general", None): 0.0}
