"""'ivr callbacks list' and 'ivr callbacks cancel ID' on a real SQLite store."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from ivr.callbacks.model import Reservation
from ivr.cli import main
from ivr.store import open_store

UTC = dt.timezone.utc
BOOKED = dt.datetime(2025, 3, 10, 5, 0, tzinfo=UTC)       # 14:00 in Seoul


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    for name in ("IVR_STORE_URL", "IVR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    p = tmp_path / "ivr.yaml"
    p.write_text(f"ari: {{username: ivr, password: x}}\n"
                 f"store: {{url: 'sqlite:///{tmp_path}/var/ivr.db'}}\n", encoding="utf-8")
    return p


def store_url(config: Path) -> str:
    return f"sqlite:///{config.parent}/var/ivr.db"


def book(config: Path) -> dict[str, Reservation]:
    """Three reservations: one pending with a slot, one failed after retries, one done."""
    def new(number: str, queue: str, minutes: int, **kw) -> Reservation:
        at = BOOKED + dt.timedelta(minutes=minutes)
        return Reservation.new(number, queue, language="ko", now=at,
                               arrived_at=at - dt.timedelta(seconds=330), waited=330, **kw)

    slot = new("+821012345678", "general", 0, due_at=BOOKED + dt.timedelta(hours=2),
               slot_end=BOOKED + dt.timedelta(hours=3), priority="elderly",
               reason="bypass: elderly", call_id="ch-1")
    failing = new("+8221234567", "sales", 1)
    served = new("+821099998888", "general", 2)

    async def write() -> dict[str, Reservation]:
        async with open_store(store_url(config)) as store:
            for r in (slot, failing, served):
                await store.put_reservation(r)
            now = BOOKED + dt.timedelta(minutes=5)
            await store.claim_reservations(now, "ivr-1", 60, 10)
            await store.finish_attempt(failing.id, "ivr-1", result="no answer", at=now,
                                       next_due=None, final_status="failed")
            await store.finish_attempt(served.id, "ivr-1", result="connected to agent1", at=now,
                                       next_due=None, final_status="done")
            await store.release_claims("ivr-1")
            return {r.id: r for r in await store.list_reservations()}

    got = asyncio.run(write())
    return {"slot": got[slot.id], "failed": got[failing.id], "done": got[served.id]}


def status_of(config: Path, reservation_id: str) -> str:
    async def read() -> str:
        async with open_store(store_url(config)) as store:
            r = await store.get_reservation(reservation_id)
            assert r is not None
            return r.status

    return asyncio.run(read())


def test_list_shows_masked_numbers_due_times_in_the_centers_zone_and_results(config, capsys):
    made = book(config)
    assert main(["-c", str(config), "callbacks", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "due (Asia/Seoul)" in lines[0]
    # Newest first: done, failed, then the slot reservation.
    assert [line.split()[0] for line in lines[1:]] == [made["done"].id, made["failed"].id,
                                                       made["slot"].id]
    slot_line = lines[3]
    assert "+821*****5678" in slot_line and "+821012345678" not in out
    assert "2025-03-10 16:00-17:00" in slot_line and "pending" in slot_line
    assert "5m30s" in slot_line
    assert "failed" in lines[2] and "no answer" in lines[2] and "sales" in lines[2]
    assert "connected to agent1" in lines[1]


def test_list_one_status_as_json(config, capsys):
    made = book(config)
    assert main(["-c", str(config), "callbacks", "list", "--status", "pending", "--json"]) == 0
    (only,) = json.loads(capsys.readouterr().out)
    slot = made["slot"]
    assert only["id"] == slot.id and only["number"] == "+821*****5678"
    assert (only["queue"], only["status"], only["priority"], only["reason"]) == (
        "general", "pending", "elderly", "bypass: elderly")
    assert only["due_at"] == "2025-03-10T07:00:00+00:00"
    assert only["slot_end"] == "2025-03-10T08:00:00+00:00"
    assert (only["waited"], only["attempts"], only["call_id"]) == (330.0, 0, "ch-1")


def test_list_with_nothing_to_show(config, capsys):
    assert main(["-c", str(config), "callbacks", "list"]) == 0
    assert capsys.readouterr().out.strip() == "no callback reservations"
    book(config)
    assert main(["-c", str(config), "callbacks", "list", "--status", "claimed"]) == 0
    assert capsys.readouterr().out.strip() == "no claimed callback reservations"


def test_an_unknown_status_is_refused_by_the_parser(config, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["-c", str(config), "callbacks", "list", "--status", "open"])
    assert exit_.value.code == 2


def test_cancel_a_pending_reservation(config, capsys):
    made = book(config)
    assert main(["-c", str(config), "callbacks", "cancel", made["slot"].id]) == 0
    out = capsys.readouterr().out
    assert f"cancelled callback reservation {made['slot'].id}" in out
    assert "+821*****5678" in out and "+821012345678" not in out
    assert status_of(config, made["slot"].id) == "cancelled"
    # A second time: already cancelled.
    assert main(["-c", str(config), "callbacks", "cancel", made["slot"].id]) == 1
    assert "already cancelled" in capsys.readouterr().err


def test_cancel_refuses_a_finished_or_unknown_reservation(config, capsys):
    made = book(config)
    assert main(["-c", str(config), "callbacks", "cancel", made["done"].id]) == 1
    assert "is already done" in capsys.readouterr().err
    assert status_of(config, made["done"].id) == "done"
    assert main(["-c", str(config), "callbacks", "cancel", "0123abcd"]) == 1
    assert "no callback reservation '0123abcd'" in capsys.readouterr().err


def test_a_broken_config_is_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    p = tmp_path / "ivr.yaml"
    p.write_text("callbacks: {lease: never}\n", encoding="utf-8")
    assert main(["-c", str(p), "callbacks", "list"]) == 2
    assert "callbacks.lease" in capsys.readouterr().err
