"""'ivr agents list' as a supervisor reads it, against the real operator API over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from ivr import cli
from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.acd.service import QueueService
from ivr.prompts import load_catalogue
from ivr.testing.fake_switch import FakeSwitch
from ivr.web.api import api_app

REPO = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-for-tests"
UPTIME = 1214.0          # the engine's monotonic clock: seconds since the machine started


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def agents_list(tmp_path: Path, service: QueueService, monkeypatch) -> None:
    """Run 'ivr agents list' against ``service``'s operator API on a free loopback port."""
    for name in ("IVR_ADMIN_TOKEN", "IVR_ADMIN_LISTEN", "IVR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    root = web.Application()
    root.add_subapp("/api", api_app(token=TOKEN, queues=service))
    runner = web.AppRunner(root)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        config = tmp_path / "ivr.yaml"
        config.write_text(f"ari: {{username: ivr, password: x}}\n"
                          f"admin: {{listen: '{host}:{port}', token: {TOKEN}}}\n", encoding="utf-8")
        code = await asyncio.to_thread(cli.main, ["--config", str(config), "agents", "list"])
        assert code == 0
    finally:
        await runner.cleanup()


async def test_an_agent_never_logged_in_says_so_not_the_machines_uptime(tmp_path, monkeypatch, capsys):
    clock = Clock(UPTIME)
    specs = {"general": QueueSpec(name="general")}
    acd = Acd(specs, [AgentSpec(id="agent1", name="Agent 1", endpoint="PJSIP/agent1"),
                      AgentSpec(id="agent4", name="Agent 4", endpoint="PJSIP/agent4")])
    service = QueueService(acd, specs, FakeSwitch({}), load_catalogue(REPO / "prompts" / "catalog.yaml"),
                           clock=clock)
    acd.login("agent1", UPTIME - 30)
    await agents_list(tmp_path, service, monkeypatch)
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "available" in lines["agent1"] and "30s" in lines["agent1"]
    assert "never logged in" in lines["agent4"], lines["agent4"]
    assert "1214s" not in lines["agent4"]
