"""The 'callers:' config section and the 'ivr callers import | show' commands."""

import datetime as dt
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ivr.call import CallRecord, utcnow
from ivr.cli import main
from ivr.config import load_config
from ivr.errors import ConfigError
from ivr.store.base import Caller
from ivr.testing.memory_store import MemoryStore


def write_config(tmp_path: Path, extra: str = "") -> Path:
    p = tmp_path / "ivr.yaml"
    p.write_text("ari: {username: ivr, password: x}\nstore: {url: 'sqlite:///var/test.db'}\n" + extra,
                 encoding="utf-8")
    return p


# -- config --------------------------------------------------------------------------------------

def test_the_callers_section_has_defaults(tmp_path):
    c = load_config(write_config(tmp_path), env={}).callers
    assert (c.region, c.timezone, c.lookup_budget, c.registry) == ("KR", "Asia/Seoul", 1.0, None)


def test_the_registry_token_comes_from_the_environment_and_is_never_shown(tmp_path):
    cfg = write_config(tmp_path, "callers:\n  region: kr\n  lookup_budget: 0.5\n  registry:\n"
                                 "    url: https://crm.example/callers/{number}\n    token_env: CRM_TOKEN\n")
    c = load_config(cfg, env={"CRM_TOKEN": "s3cret"}).callers
    assert c.region == "KR"
    assert c.registry.url == "https://crm.example/callers/{number}"
    assert c.registry.timeout == 0.5                     # the budget unless given
    assert c.registry.headers() == {"Authorization": "Bearer s3cret"}
    assert "s3cret" not in repr(c)
    with pytest.raises(ConfigError, match="CRM_TOKEN is not set"):
        load_config(cfg, env={})


@pytest.mark.parametrize("section, message", [
    ("callers: {region: XX}", "callers.region"),
    ("callers: {timezone: Mars/Olympus}", "callers.timezone"),
    ("callers: {lookup_budget: 0}", "callers.lookup_budget"),
    ("callers: {lookup_budget: soon}", "callers.lookup_budget"),
    ("callers: {registry: {url: 'https://crm.example/callers'}}", r"\{number\}"),
    ("callers: {registry: {url: 'ftp://x/{number}'}}", "http"),
    ("callers: {registry: {url: 'https://x/{number}', token_env: 'Bearer abc'}}", "NAME of an environment"),
    ("callers: {regoin: KR}", "regoin"),
])
def test_a_bad_callers_section_says_what_to_fix(tmp_path, section, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, section + "\n"), env={})


# -- commands ------------------------------------------------------------------------------------

@pytest.fixture
def store(monkeypatch):
    store = MemoryStore()

    @asynccontextmanager
    async def fake_open_store(url):
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    monkeypatch.setattr("ivr.store.open_store", fake_open_store)
    return store


def run(tmp_path, *args):
    return main(["--config", str(write_config(tmp_path)), *args])


def test_import_writes_the_good_rows_and_names_the_bad_ones(tmp_path, store, capsys):
    csv = tmp_path / "callers.csv"
    csv.write_text("phone,birth_date,language\n010-1234-5678,1950-03-15,ko\nabc,1950-03-15,ko\n"
                   "02-123-4567,1960-01-01,en\n010-2222-3333,2999-01-01,ko\n", encoding="utf-8")
    assert run(tmp_path, "callers", "import", str(csv)) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "imported 2, rejected 2"
    assert err.splitlines() == [(f"{csv}:3: bad phone: not a phone number (only digits, spaces and + - . ( ) "
                                 "may appear)"), f"{csv}:5: birth date '2999-01-01' is in the future"]
    assert set(store.callers) == {"+821012345678", "+8221234567"}


def test_a_stray_quote_in_a_big_file_loses_only_its_row(tmp_path, store, capsys):
    csv = tmp_path / "callers.csv"
    rows = [f"010-3{i // 10000:03d}-{i % 10000:04d},1950-03-15,caller {i}" for i in range(1000)]
    rows[2] = '010-3000-0002,1950-03-15,"Kim'
    csv.write_text("phone,birth_date,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert run(tmp_path, "callers", "import", str(csv)) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "imported 999, rejected 1"
    assert err.startswith(f"{csv}:4: an unclosed quote") and len(err.splitlines()) == 1
    assert len(store.callers) == 999 and "+821030000002" not in store.callers


def test_import_fails_when_nothing_is_usable(tmp_path, store, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("phone,birth_date\nabc,1950-01-01\n", encoding="utf-8")
    assert run(tmp_path, "callers", "import", str(bad)) == 1
    assert run(tmp_path, "callers", "import", str(tmp_path / "missing.csv")) == 1
    nohead = tmp_path / "nohead.csv"
    nohead.write_text("010-1234-5678,1950-01-01\n", encoding="utf-8")
    assert run(tmp_path, "callers", "import", str(nohead)) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: bad phone" in err and "cannot be read" in err and f"{nohead}:1: the header" in err
    assert store.callers == {}


def test_show_prints_the_facts_in_e164_with_age_and_recent_calls(tmp_path, store, capsys):
    born = dt.date(1950, 1, 1)
    store.callers["+821012345678"] = Caller("+821012345678", born, "ko", True, updated_at=utcnow())
    for i in range(2):
        store.calls[f"c{i}"] = CallRecord(f"c{i}", "01012345678", "15771000",
                                          started_at=utcnow() - dt.timedelta(days=i + 1), number="+821012345678")
    assert run(tmp_path, "callers", "show", "010-1234-5678") == 0
    out = capsys.readouterr().out
    assert "number:" in out and "+821012345678" in out
    assert "registered:       yes" in out
    assert "1950-01-01 (age " in out
    assert "needs assistance: yes" in out
    assert "calls in 7 days:  2 (a call now would be number 3: a repeat caller)" in out


def test_show_an_unregistered_or_impossible_number(tmp_path, store, capsys):
    assert run(tmp_path, "callers", "show", "02-123-4567") == 0
    out = capsys.readouterr().out
    assert "+8221234567" in out and "registered:       no" in out
    assert run(tmp_path, "callers", "show", "anonymous") == 1
    assert "not a phone number" in capsys.readouterr().err


def test_operator_commands_work_without_the_ari_credentials_the_engine_needs(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("IVR_ARI_PASSWORD", raising=False)
    monkeypatch.delenv("NOT_SET_ARI_SECRET", raising=False)
    for ari in ("{username: ivr, password_file: missing/ari-password}",
                "{username: ivr, password: '${NOT_SET_ARI_SECRET}'}"):
        cfg = tmp_path / "ivr.yaml"
        cfg.write_text(f"ari: {ari}\nstore: {{url: 'sqlite:///var/test.db'}}\n", encoding="utf-8")
        (tmp_path / "var").mkdir(exist_ok=True)
        csv = tmp_path / "callers.csv"
        csv.write_text("phone,birth_date\n010-7000-0070,1956-01-01\n", encoding="utf-8")
        assert main(["--config", str(cfg), "callers", "import", str(csv)]) == 0
        assert main(["--config", str(cfg), "callers", "show", "01070000070"]) == 0
        assert main(["--config", str(cfg), "calls", "list"]) == 0
        out = capsys.readouterr()
        assert "1956-01-01" in out.out, out
        # The engine itself still refuses to start without them, and says what to set.
        assert main(["--config", str(cfg), "run"]) == 2
        err = capsys.readouterr().err
        assert "ari-password" in err or "NOT_SET_ARI_SECRET is not set" in err, err
