"""'ivr audit': the supervisors' audit log as the wallboard wrote it, read from the store."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.store import open_store
from ivr.store.base import AuditEntry

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    for name in ("IVR_STORE_URL", "IVR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    p = tmp_path / "ivr.yaml"
    p.write_text(f"ari: {{username: ivr, password: x}}\n"
                 f"store: {{url: 'sqlite:///{tmp_path}/ivr.db'}}\n", encoding="utf-8")

    async def write() -> None:
        async with open_store(f"sqlite:///{tmp_path}/ivr.db") as store:
            await store.record_audit(AuditEntry(NOW - dt.timedelta(days=3), "lee", "supervisor", "login"))
            await store.record_audit(AuditEntry(NOW - dt.timedelta(seconds=20), "kim", "-", "login_refused",
                                                detail="wrong name or password", source="10.1.2.3"))
            await store.record_audit(AuditEntry(NOW - dt.timedelta(seconds=10), "kim", "supervisor",
                                                "agent.pause", target="agent7", detail="lunch",
                                                source="10.1.2.3"))
    asyncio.run(write())
    return p


def test_the_audit_log_since_a_moment_newest_first(config, capsys):
    since = (NOW - dt.timedelta(minutes=1)).isoformat()
    assert main(["--config", str(config), "audit", "--since", since]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["time", "user", "role", "action", "target"]
    assert [line.split()[2:6] for line in lines[1:]] == [
        ["kim", "supervisor", "agent.pause", "agent7"], ["kim", "-", "login_refused", "-"]]
    assert lines[1].endswith("10.1.2.3         lunch")


def test_since_reaches_further_back_and_json_has_every_field(config, capsys):
    since = (NOW - dt.timedelta(days=4)).date().isoformat()
    assert main(["--config", str(config), "audit", "--since", since, "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [(e["user"], e["action"]) for e in entries] == [
        ("kim", "agent.pause"), ("kim", "login_refused"), ("lee", "login")]
    assert entries[0] == {**entries[0], "target": "agent7", "detail": "lunch", "source": "10.1.2.3",
                          "role": "supervisor"}


def test_without_since_it_is_today_in_the_center(config, capsys):
    assert main(["--config", str(config), "audit", "--json"]) == 0
    users = [e["user"] for e in json.loads(capsys.readouterr().out)]
    assert "lee" not in users                # three days ago


def test_a_date_it_cannot_read_is_refused(config, capsys):
    assert main(["--config", str(config), "audit", "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err
