"""'ivr report': the hand-counted day of calls through real stores (SQLite, PostgreSQL) and the command."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.store import open_store
from test_report import DAY_OF_CALLS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path, monkeypatch, store_url: str) -> Path:
    """A config whose store (SQLite, then PostgreSQL) holds the hand-counted day of calls."""
    for name in ("IVR_STORE_URL", "IVR_CONFIG", "IVR_FLOWS", "IVR_CALLERS_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    p = tmp_path / "ivr.yaml"
    p.write_text(f"ari: {{username: ivr, password: x}}\n"
                 f"flows: {ROOT / 'flows'}\n"
                 f"store: {{url: '{store_url}'}}\n", encoding="utf-8")

    async def write() -> None:
        async with open_store(store_url) as store:
            for record in reversed(DAY_OF_CALLS):       # the store sorts them
                await store.record_call(record)

    asyncio.run(write())
    return p


def test_report_prints_the_figures_counted_by_hand(config, capsys):
    assert main(["--config", str(config), "report", "--flow", "main", "--since", "2026-11-02"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("journey report: flow main, 2026-11-02 to 2026-11-02 (Asia/Seoul)\n")
    assert "calls                                      20\n" in out
    assert "contained (completed in the IVR)            7   35.0%\n" in out
    assert "  and no recontact within 24 h              4   20.0%\n" in out
    assert "repeat contacts (within 24 h)               5   26.3%  of 19 calls with a number\n" in out
    # the funnel in the flow's order, bypass rules first
    funnel = out.split("\nfunnel\n")[1].split("\n\n")[0].splitlines()[1:]
    assert [line.split()[0] for line in funnel][:5] == ["bypass", "start", "welcome", "choose_language",
                                                        "main_menu"]
    assert "  agent " in out and "       4        3" in out.split("  agent ")[1].splitlines()[0]


def test_report_writes_csv_and_charts(config, tmp_path, capsys):
    out_csv, out_charts = tmp_path / "csv", tmp_path / "charts"
    assert main(["--config", str(config), "report", "--flow", "main", "--since", "2026-11-01",
                 "--until", "2026-11-02", "--csv", str(out_csv), "--charts", str(out_charts)]) == 0
    out = capsys.readouterr().out
    assert "2026-11-01 to 2026-11-02" in out
    # two days: the day before's two calls count now (B's call on the 2nd is exactly 24 h
    # after its first: still no repeat; A's 16 h later: a repeat, as before)
    summary = dict(csv.reader((out_csv / "summary.csv").open(encoding="utf-8")))
    assert summary["calls"] == "22" and summary["repeat_contacts"] == "5"
    # contained: 7 and the day before's 2; called again: 3 and A's first (c01, 16 h later)
    assert summary["contained"] == "9" and summary["contained_no_recontact"] == "5"
    assert sorted(p.name for p in out_charts.iterdir()) == ["funnel.png", "funnel.svg",
                                                            "wait_by_hour.png", "wait_by_hour.svg"]
    assert (out_charts / "funnel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"csv: {out_csv}/" in out and f"charts: {out_charts}/" in out


def test_the_days_read_by_two_processes_give_the_same_report(config, capsys):
    two_days = ["--config", str(config), "report", "--flow", "main", "--since", "2026-11-01",
                "--until", "2026-11-02"]
    assert main([*two_days, "--jobs", "1"]) == 0
    alone = capsys.readouterr().out
    assert main([*two_days, "--jobs", "2"]) == 0
    assert capsys.readouterr().out == alone
    assert "calls                                      22\n" in alone


def test_an_empty_range_and_an_unknown_flow_say_so(config, capsys):
    assert main(["--config", str(config), "report", "--flow", "nosuch", "--since", "2026-10-01"]) == 0
    captured = capsys.readouterr()
    assert "no calls in this range" in captured.out
    assert "no flow 'nosuch'" in captured.err


def test_dates_are_checked(config, capsys):
    assert main(["--config", str(config), "report", "--flow", "main", "--since", "2026-11-02",
                 "--until", "2026-11-01"]) == 2
    assert "--until 2026-11-01 is before --since 2026-11-02" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--config", str(config), "report", "--flow", "main", "--since", "1 Nov"])
    assert "'1 Nov' is not a date like 2026-11-01" in capsys.readouterr().err
    assert main(["--config", str(config), "report", "--flow", "main", "--since", "2026-11-02",
                 "--jobs", "0"]) == 2
    assert "--jobs must be at least 1, not 0" in capsys.readouterr().err
