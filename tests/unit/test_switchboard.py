"""Several media servers as one switch: a caller on one server is served by an agent of
another center across the trunk, the choice is recorded, and a server that goes away loses
its calls and takes its center's agents out of the line until it comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr.acd.model import AgentState
from ivr.ari.dispatcher import AriAdapter
from ivr.ari.switchboard import Switchboard
from ivr.config import load_config
from ivr.errors import ConfigError, DialFailed
from ivr.store import open_store
from ivr.testing.fake_ari import FakeAri

from engine_helpers import QUEUE_FLOW, serving

REPO = Path(__file__).resolve().parents[2]

FLOW = QUEUE_FLOW


def two_centers(tmp_path: Path, seoul: FakeAri, busan: FakeAri, *, centers: str,
                agents: str = "", busan_login: bool = True) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "straight.yaml").write_text(FLOW, encoding="utf-8")
    text = f"""\
ari: {{username: {seoul.username}, password: {seoul.password}}}
switches:
  - {{name: seoul-1, center: seoul, url: '{seoul.base_url}'}}
  - {{name: busan-1, center: busan, url: '{busan.base_url}'}}
flows: flows
prompts: {REPO / 'prompts'}
store: {{url: 'sqlite:///ivr.db'}}
engine: {{shutdown_grace: 1, reload_interval: 0}}
acd:
  centers: {centers}
  queues:
    general: {{max_wait: 120, on_max_wait: message, announce_every: 600, wrap_up: 0}}
  agents:
    - {{id: seoul1, name: S, endpoint: PJSIP/seoul1, center: seoul{agents}}}
    - {{id: busan1, name: B, endpoint: PJSIP/busan1, center: busan, login: {str(busan_login).lower()}}}
    - {{id: busan2, name: B2, endpoint: PJSIP/busan2, center: busan, login: true}}
"""
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def originated(fake: FakeAri) -> list[str]:
    return [r.params["endpoint"] for r in fake.requests
            if r.method == "POST" and r.path == "/channels" and "endpoint" in r.params]


async def test_a_caller_on_seoul_is_served_by_a_busan_agent_across_the_trunk(tmp_path):
    async with FakeAri() as seoul, FakeAri() as busan:
        config = load_config(two_centers(tmp_path, seoul, busan,
                                         centers="{spill_after: 0, spill_margin: null}"), env={})
        assert [(s.name, s.center, s.trunk) for s in config.switches] == [
            ("seoul-1", "seoul", "to-seoul-1"), ("busan-1", "busan", "to-busan-1")]
        async with serving(config):
            caller = await seoul.start_call(caller="01012345678", exten="100")
            await seoul.wait_for_request(lambda r: r.path == "/channels" and r.method == "POST",
                                         timeout=5)
            # the agent's leg is placed on the caller's server, across the trunk to Busan
            assert originated(seoul) == ["PJSIP/busan1@to-busan-1"]
            assert originated(busan) == []

            def bridged():
                return next((b for b in seoul.bridges.values()
                             if b.get("bridge_type") == "mixing" and caller in b.get("channels", [])
                             and len(b.get("channels", [])) == 2), None)
            bridge = await asyncio.wait_for(_until(bridged), 5)
            assert bridge is not None and not busan.bridges
            await seoul.caller_hangs_up(caller)
            await asyncio.sleep(0.1)
        async with open_store(config.store_url) as store:
            calls = await store.recent_calls()
        record = next(c for c in calls if c.call_id == caller)
        assert record.outcome == "agent_connected"
        assert record.detail.startswith("busan1 after ")
        assert "served by busan: seoul caller after " in record.detail


async def test_a_busan_agent_does_not_take_a_seoul_caller_before_spill_after(tmp_path):
    async with FakeAri() as seoul, FakeAri() as busan:
        config = load_config(two_centers(tmp_path, seoul, busan,
                                         centers="{spill_after: 30, spill_margin: null}"), env={})
        async with serving(config):
            await seoul.start_call(caller="01012345678", exten="100")
            await seoul.wait_for_request(lambda r: "/play" in r.path, timeout=5)
            await asyncio.sleep(0.5)
            assert originated(seoul) == [] and originated(busan) == []


async def test_a_server_gone_too_long_loses_its_calls_and_its_center_s_agents(tmp_path):
    """The switchboard's check, driven with its own clock: Busan's event socket is refused;
    after ``down_after`` the caller waiting there is recorded as lost and Busan's agents are
    logged out; when Busan is back they are on duty again as they were (paused for lunch)."""
    async with FakeAri() as seoul, FakeAri() as busan:
        config = load_config(two_centers(tmp_path, seoul, busan, busan_login=False,
                                         centers="{spill_after: 600, spill_margin: null}"), env={})
        from ivr import app as app_module

        boards: list[Switchboard] = []
        made = app_module._switchboard

        def keep(cfg, engine):
            board = made(cfg, engine)
            boards.append(board)
            return board
        app_module._switchboard = keep
        try:
            async with serving(config):
                board = boards[0]
                board.watch_interval = 3600           # the test drives board.check itself
                service = _service(config)
                service.acd.pause("busan2", "lunch", service.clock())
                caller = await busan.start_call(caller="01012345678", exten="100")
                await busan.wait_for_request(lambda r: "/play" in r.path, timeout=5)
                await busan.drop_websocket(refuse_for=3600)
                await _until(lambda: not board.adapters[1].connected)
                board.check(0.0)
                board.check(board.down_after + 0.1)
                assert board.live() == ["seoul-1"]
                await _until(lambda: caller not in service.callers)      # the caller is lost
                assert service.acd.agent("busan2").state is AgentState.OFFLINE
                assert service.acd.agent("seoul1").state is AgentState.OFFLINE   # never logged in
                for channel_id in list(busan.channels):     # Asterisk restarted: no call left
                    busan.remove_channel(channel_id)
                busan.allow_websocket()
                await _until(lambda: board.adapters[1].connected, timeout=10)
                board.check(100.0)
                assert board.live() == ["seoul-1", "busan-1"]
                assert service.acd.agent("busan2").state is AgentState.PAUSED
                assert service.acd.agent("busan2").reason == "lunch"
        finally:
            app_module._switchboard = made
        async with open_store(config.store_url) as store:
            calls = await store.recent_calls()
        record = next(c for c in calls if c.call_id == caller)
        assert record.outcome == "lost"
        assert "the switch lost the call" in record.detail


async def test_dial_across_needs_a_pjsip_endpoint_and_a_server_of_the_center():
    async with FakeAri() as seoul:
        async def nothing(call, args, *, adopted):
            return None
        a = AriAdapter(seoul.base_url, seoul.username, seoul.password, seoul.app, nothing,
                       name="seoul-1", center="seoul")
        board = Switchboard([a], {"seoul-1": "to-seoul-1"})
        await board.open()
        try:
            with pytest.raises(DialFailed, match="center daegu"):
                await board.dial("PJSIP/daegu1", timeout=1, home="daegu")
        finally:
            await board.close()


def test_switches_are_checked_where_they_are_given(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "straight.yaml").write_text(FLOW, encoding="utf-8")
    base = f"flows: flows\nprompts: {REPO / 'prompts'}\n"
    bad = {
        "switches: []\n": "switches must be a list",
        "switches: [{name: a, url: 'http://127.0.0.1:1/ari', password: x, username: u}, "
        "{name: a, url: 'http://127.0.0.1:2/ari', password: x, username: u}]\n": "used twice",
        "switches: [{name: a, url: 'http://127.0.0.1:1/ari', username: u}]\n": "no ARI password",
        "switches: [{name: a, center: seoul, url: 'http://127.0.0.1:1/ari', password: x, username: u}]\n"
        "acd: {agents: [{id: b1, endpoint: PJSIP/b1, center: busan}]}\n": "center 'busan' has no server",
        "switches: [{name: a, url: 'http://127.0.0.1:1/ari', password: x, username: u, colour: red}]\n":
            "colour",
        "ari: {username: u, password: p}\nacd: {centers: {spill_after: -1}}\n": "spill_after",
    }
    for text, says in bad.items():
        cfg = tmp_path / "ivr.yaml"
        cfg.write_text(base + text, encoding="utf-8")
        with pytest.raises(ConfigError, match=says):
            load_config(cfg, env={})


def test_without_switches_the_ari_section_is_the_one_server(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "straight.yaml").write_text(FLOW, encoding="utf-8")
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(f"ari: {{url: 'http://127.0.0.1:8088/ari', username: u, password: p}}\n"
                   f"flows: flows\nprompts: {REPO / 'prompts'}\n", encoding="utf-8")
    config = load_config(cfg, env={})
    assert [(s.name, s.center, s.ari.url) for s in config.switches] == [
        ("asterisk", None, "http://127.0.0.1:8088/ari")]
    assert config.acd.centers is None


# -- helpers -------------------------------------------------------------------------------------

_services: list = []


def _service(config):
    return _services[-1]


@pytest.fixture(autouse=True)
def _catch_service(monkeypatch):
    from ivr.acd.service import QueueService

    original = QueueService.__init__

    def init(self, *args, **kw):
        original(self, *args, **kw)
        _services.append(self)
    monkeypatch.setattr(QueueService, "__init__", init)
    yield
    _services.clear()


async def _until(predicate, timeout: float = 5.0):
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(0.02)


def test_switches_take_the_ari_section_s_password_file_unless_they_name_their_own(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "straight.yaml").write_text(FLOW, encoding="utf-8")
    (tmp_path / "shared").write_text("shared-secret\n", encoding="utf-8")
    (tmp_path / "own").write_text("own-secret\n", encoding="utf-8")
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(f"ari: {{username: ivr, password_file: shared, app: ivr}}\n"
                   "switches:\n"
                   "  - {name: seoul, center: seoul, url: 'http://127.0.0.1:8100/ari'}\n"
                   "  - {name: busan, center: busan, url: 'http://127.0.0.1:8110/ari', password_file: own}\n"
                   f"flows: flows\nprompts: {REPO / 'prompts'}\n", encoding="utf-8")
    config = load_config(cfg, env={})
    assert [(s.ari.username, s.ari.password) for s in config.switches] == [
        ("ivr", "shared-secret"), ("ivr", "own-secret")]


def test_the_sample_configuration_for_two_centers_is_valid():
    config = load_config(REPO / "docs" / "ivr-centers.yaml", env={}, need_ari=False)
    assert [(s.name, s.center) for s in config.switches] == [("seoul", "seoul"), ("busan", "busan")]
    assert config.acd.centers is not None
    assert {a.center for a in config.acd.agents} == {"seoul", "busan"}
