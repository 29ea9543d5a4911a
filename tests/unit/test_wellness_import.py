"""'ivr wellness import FILE.csv', 'ivr wellness list' and 'ivr wellness visits' on a real
SQLite store; the importer's rules row by row."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.store import open_store
from ivr.wellness.importer import WellnessFileError, import_wellness_csv
from ivr.wellness.model import Attempt, AttemptResult, Person, Visit

UTC = dt.timezone.utc
SINCE = dt.datetime(2026, 3, 13, 8, 0, tzinfo=UTC)      # 17:00 in Seoul, a Friday

CONFIG = """ari: {{username: ivr, password: x}}
store: {{url: 'sqlite:///{dir}/var/ivr.db'}}
acd:
  priorities: [elderly, normal]
  queues:
    general: {{skills: [general]}}
    wellness: {{skills: [wellness]}}
wellness:
  campaigns:
    - {{name: seoul, days: [tue, fri], hours: ["10:00-17:00"]}}
    - {{name: busan, days: [mon], hours: ["10:00-12:00"]}}
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    for name in ("IVR_STORE_URL", "IVR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    p = tmp_path / "ivr.yaml"
    p.write_text(CONFIG.format(dir=tmp_path), encoding="utf-8")
    return p


def people_in(config: Path) -> list[Person]:
    async def read() -> list[Person]:
        async with open_store(f"sqlite:///{config.parent}/var/ivr.db") as store:
            return await store.list_wellness_people()
    return asyncio.run(read())


def csv_file(tmp_path: Path, text: str, name: str = "people.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


GOOD_AND_BAD = """phone,campaign,name,language,contact,address_ref,opt_out,floor
010-1234-5678,seoul,김순자,ko,딸 010-9999-0000,A-17,no,3
02-123-4567,busan,"Lee, Young",EN,,B-2,,
1588-1234,seoul,a company,ko,,,,
+1 212 555 0100,seoul,abroad,en,,,,
010-8765-4321,daegu,unknown campaign,ko,,,,
010-8765-4322,seoul,bad language,jp,,,,
010-8765-4323,seoul,bad flag,ko,,,maybe,
010 1234 5678,seoul,김순자 (again),vi,,A-18,yes,
"broken,seoul
010-8765-4324,seoul,too,many,fields,,,,,
"""


def test_import_keeps_good_rows_reports_bad_ones_by_line_and_masks_nothing_stored(
        config: Path, tmp_path: Path, capsys) -> None:
    f = csv_file(tmp_path, GOOD_AND_BAD)
    assert main(["--config", str(config), "wellness", "import", str(f)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "imported 2, rejected 7, 2 warning(s)"
    lines = err.splitlines()
    assert lines[0] == f"{f}:1: warning: column 'floor' is not used (known: phone, campaign, name, " \
                       "language, contact, address_ref, opt_out)"
    by_line = {int(x.split(":")[1]): x for x in lines}
    assert set(by_line) == {1, 4, 5, 6, 7, 8, 9, 10, 11}
    assert "representative number" in by_line[4]
    assert "+1 212 555 0100" in by_line[5]
    assert "campaign 'daegu' is not in wellness.campaigns (busan, seoul)" in by_line[6]
    assert "language 'jp': use one of ko, en, zh, vi" in by_line[7]
    assert "opt_out 'maybe'" in by_line[8]
    assert by_line[9] == f"{f}:9: warning: same number as line 2; this row replaces it"
    assert "quote" in by_line[10] and "10 fields, but the header names 8" in by_line[11]

    stored = {p.number: p for p in people_in(config)}
    assert set(stored) == {"+821012345678", "+8221234567"}
    kim = stored["+821012345678"]
    assert (kim.campaign, kim.name, kim.language, kim.address_ref, kim.opt_out) == (
        "seoul", "김순자 (again)", "vi", "A-18", True)
    lee = stored["+8221234567"]
    assert (lee.campaign, lee.name, lee.language, lee.contact, lee.opt_out) == (
        "busan", "Lee, Young", "en", "", False)


def test_a_second_import_updates_but_never_takes_back_an_opt_out(config: Path, tmp_path: Path,
                                                                 capsys) -> None:
    first = csv_file(tmp_path, "phone,name,opt_out\n01012345678,Kim,yes\n01087654321,Lee,\n")
    assert main(["--config", str(config), "wellness", "import", str(first), "--campaign", "seoul"]) == 0
    again = csv_file(tmp_path, "phone,name,campaign,language\n01012345678,Kim S.,busan,\n", "again.csv")
    assert main(["--config", str(config), "wellness", "import", str(again), "--campaign", "seoul"]) == 0
    assert capsys.readouterr().out.splitlines() == ["imported 2, rejected 0", "imported 1, rejected 0"]
    stored = {p.number: p for p in people_in(config)}
    assert (stored["+821012345678"].name, stored["+821012345678"].campaign,
            stored["+821012345678"].opt_out, stored["+821012345678"].language) == ("Kim S.", "busan", True, "ko")


@pytest.mark.parametrize(("text", "args", "message"), [
    ("name,campaign\nKim,seoul\n", [], "the header has no column phone"),
    ("phone,name\n01012345678,Kim\n", [], "no column campaign: add one, or name the campaign"),
    ("phone,name\n01012345678,Kim\n", ["--campaign", "jeju"], "campaign 'jeju' is not in wellness.campaigns"),
    ("", [], "empty file"),
    ("phone,phone,campaign\n", [], "column 'phone' appears twice"),
])
def test_a_file_that_cannot_be_used_is_refused_whole(config: Path, tmp_path: Path, capsys,
                                                    text: str, args: list[str], message: str) -> None:
    f = csv_file(tmp_path, text)
    assert main(["--config", str(config), "wellness", "import", str(f), *args]) == 1
    assert message in capsys.readouterr().err
    assert people_in(config) == []


def test_not_utf8_missing_and_nothing_good(config: Path, tmp_path: Path, capsys) -> None:
    f = tmp_path / "cp949.csv"
    f.write_bytes("phone,campaign,name\n01012345678,seoul,김순자\n".encode("cp949"))
    assert main(["--config", str(config), "wellness", "import", str(f)]) == 1
    assert f"{f}:2: not UTF-8 text" in capsys.readouterr().err
    assert main(["--config", str(config), "wellness", "import", str(tmp_path / "none.csv")]) == 1
    assert "cannot be read" in capsys.readouterr().err
    bad = csv_file(tmp_path, "phone,campaign\n1588-1234,seoul\n")
    assert main(["--config", str(config), "wellness", "import", str(bad)]) == 1
    assert "imported 0, rejected 1: nothing to import" in capsys.readouterr().err


def test_international_numbers_only_when_asked(tmp_path: Path) -> None:
    f = csv_file(tmp_path, "phone,campaign\n+1 212 555 0100,seoul\n")
    assert import_wellness_csv(f).people == ()
    got = import_wellness_csv(f, allow_international=True)
    assert [p.number for p in got.people] == ["+12125550100"]
    with pytest.raises(WellnessFileError):
        import_wellness_csv(tmp_path)


def test_no_campaign_configured_is_said(tmp_path: Path, monkeypatch, capsys) -> None:
    for name in ("IVR_STORE_URL", "IVR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    p = tmp_path / "ivr.yaml"
    p.write_text(f"ari: {{username: ivr, password: x}}\nstore: {{url: 'sqlite:///{tmp_path}/ivr.db'}}\n",
                 encoding="utf-8")
    f = csv_file(tmp_path, "phone,campaign\n01012345678,seoul\n")
    assert main(["--config", str(p), "wellness", "import", str(f)]) == 2
    assert "no wellness campaign in the config" in capsys.readouterr().err


def test_list_masks_numbers_unless_asked(config: Path, tmp_path: Path, capsys) -> None:
    f = csv_file(tmp_path, "phone,campaign,name,contact,address_ref\n"
                           "01012345678,seoul,김순자,딸 010-9999-0000,A-17\n02-123-4567,busan,Lee,,B-2\n")
    assert main(["--config", str(config), "wellness", "import", str(f)]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "wellness", "list", "--campaign", "seoul"]) == 0
    out = capsys.readouterr().out
    assert "12345678" not in out and "9999" not in out and "0000" in out
    assert "김순자" in out and "A-17" in out and "Lee" not in out
    assert main(["--config", str(config), "wellness", "list", "--json", "--full-numbers"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [(p["number"], p["campaign"], p["contact"]) for p in got] == [
        ("+821012345678", "seoul", "딸 010-9999-0000"), ("+8221234567", "busan", "")]
    assert main(["--config", str(config), "wellness", "list", "--limit", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_visits_list_history_and_done_with_a_note(config: Path, tmp_path: Path, capsys) -> None:
    f = csv_file(tmp_path, "phone,campaign,name,contact,address_ref\n01012345678,seoul,김순자,딸,A-17\n")
    assert main(["--config", str(config), "wellness", "import", str(f)]) == 0
    tried = (Attempt(number="+821012345678", campaign="seoul", at=SINCE - dt.timedelta(days=3),
                     result=AttemptResult.NO_ANSWER),
             Attempt(number="+821012345678", campaign="seoul", at=SINCE, result=AttemptResult.BUSY))

    async def put() -> int:
        async with open_store(f"sqlite:///{config.parent}/var/ivr.db") as store:
            v = await store.open_wellness_visit(Visit(number="+821012345678", campaign="seoul",
                                                      since=SINCE, history=tried))
            assert v.id is not None
            return v.id

    visit_id = asyncio.run(put())
    capsys.readouterr()
    assert main(["--config", str(config), "wellness", "visits"]) == 0
    out = capsys.readouterr().out
    assert "2026-03-13 17:00" in out and "A-17" in out and "김순자 / contact: 딸" in out
    assert "tried: 2026-03-10 17:00 no_answer, 2026-03-13 17:00 busy" in out
    assert "12345678" not in out

    assert main(["--config", str(config), "wellness", "visits", "--done", str(visit_id)]) == 2
    assert "--done ID and --note TEXT go together" in capsys.readouterr().err
    assert main(["--config", str(config), "wellness", "visits", "--done", str(visit_id),
                 "--note", "visited: well, the phone was unplugged"]) == 0
    assert capsys.readouterr().out.strip() == (f"visit {visit_id} (+821*****5678) done: "
                                               "visited: well, the phone was unplugged")
    assert main(["--config", str(config), "wellness", "visits", "--done", str(visit_id),
                 "--note", "again"]) == 1
    assert "it has ended already" in capsys.readouterr().err
    assert main(["--config", str(config), "wellness", "visits", "--done", "99", "--note", "x"]) == 1
    assert "there is no such visit" in capsys.readouterr().err

    assert main(["--config", str(config), "wellness", "visits"]) == 0
    assert capsys.readouterr().out.strip() == "no open visits"
    assert main(["--config", str(config), "wellness", "visits", "--all", "--json"]) == 0
    [kept] = json.loads(capsys.readouterr().out)
    assert (kept["open"], kept["note"], [h["result"] for h in kept["history"]]) == (
        False, "visited: well, the phone was unplugged", ["no_answer", "busy"])


def test_opt_out_and_back_in(config: Path, tmp_path: Path, capsys) -> None:
    f = csv_file(tmp_path, "phone,campaign\n01012345678,seoul\n")
    assert main(["--config", str(config), "wellness", "import", str(f)]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "wellness", "opt-out", "010-1234-5678"]) == 0
    assert capsys.readouterr().out.strip() == "+821*****5678 opted out: never rung, history kept"
    assert [p.opt_out for p in people_in(config)] == [True]
    assert main(["--config", str(config), "wellness", "import", str(f)]) == 0      # still out
    assert [p.opt_out for p in people_in(config)] == [True]
    assert main(["--config", str(config), "wellness", "opt-out", "01012345678", "--undo"]) == 0
    assert "opted back in" in capsys.readouterr().out
    assert [p.opt_out for p in people_in(config)] == [False]
    assert main(["--config", str(config), "wellness", "opt-out", "01087654321"]) == 1
    assert "+821*****4321 is not on a wellness campaign" in capsys.readouterr().err
    assert main(["--config", str(config), "wellness", "opt-out", "hello"]) == 2


# -- from the caller registry ------------------------------------------------------------------

REGISTRY = """phone,birth_date,language,name,wellness
010-1234-5678,1941-03-15,,김순자 할머니,seoul
010-8765-4321,1940-01-01,,,seoul
010-5555-0001,1942-05-05,zh,Wang,busan
010-2222-3333,1950-01-01,en,Park,
010-3333-4444,1945-01-01,,,daegu
010-3333-5555,1945-01-01,,,daegu
1588-1234,,,,seoul
"""


def test_from_the_registry_merges_with_the_people_already_on_the_list(
        config: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("ivr.cli.REGISTRY_PAGE", 2)          # several pages of both lists
    listed = csv_file(tmp_path, "phone,campaign,name,language,contact,address_ref,opt_out\n"
                                "010-1234-5678,busan,김순자,vi,딸 010-9999-0000,A-17,yes\n"
                                "010-5555-0001,busan,Wang,en,son,C-3,\n"
                                "010-7777-0000,busan,not in the registry,ko,,D-4,\n")
    assert main(["--config", str(config), "wellness", "import", str(listed)]) == 0
    callers = csv_file(tmp_path, REGISTRY, "callers.csv")
    assert main(["--config", str(config), "callers", "import", str(callers)]) == 0
    assert main(["--config", str(config), "callers", "show", "010-1234-5678"]) == 0
    assert "wellness:         seoul" in capsys.readouterr().out
    before = {p.number: p for p in people_in(config)}

    assert main(["--config", str(config), "wellness", "import", "--from-registry"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "imported 3 from the registry, skipped 3"
    assert err.splitlines() == [
        "registry: campaign 'daegu' is not in wellness.campaigns (busan, seoul): 2 caller(s) "
        "skipped: +821*****4444, +821*****5555",
        "registry: +******1234: the number is a company's representative number (such as "
        "1588-xxxx); a callback needs the customer's own phone; skipped",
    ]

    stored = {p.number: p for p in people_in(config)}
    assert set(stored) == {"+821012345678", "+821087654321", "+821055550001", "+821077770000"}
    kim = stored["+821012345678"]       # the registry's campaign and name; the rest kept
    assert (kim.campaign, kim.name, kim.language, kim.contact, kim.address_ref, kim.opt_out) == (
        "seoul", "김순자 할머니", "vi", "딸 010-9999-0000", "A-17", True)
    assert kim.added_at == before["+821012345678"].added_at
    new = stored["+821087654321"]       # no name, no language: the engine's default
    assert (new.campaign, new.name, new.language, new.contact, new.address_ref, new.opt_out) == (
        "seoul", "", "ko", "", "", False)
    wang = stored["+821055550001"]
    assert (wang.campaign, wang.language, wang.contact, wang.address_ref) == ("busan", "zh", "son", "C-3")
    assert stored["+821077770000"] == before["+821077770000"]     # not in the registry: untouched

    # Again: the same people, nothing doubled, what only the list holds still kept.
    assert main(["--config", str(config), "wellness", "import", "--from-registry"]) == 0
    assert capsys.readouterr().out.strip() == "imported 3 from the registry, skipped 3"
    assert {p.number: p for p in people_in(config)} == stored


def test_from_the_registry_says_when_nobody_names_a_campaign(config: Path, tmp_path: Path,
                                                              capsys) -> None:
    callers = csv_file(tmp_path, "phone,birth_date,wellness\n010-1234-5678,1941-03-15,\n"
                                 "010-3333-4444,1945-01-01,jeju\n", "callers.csv")
    assert main(["--config", str(config), "callers", "import", str(callers)]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "wellness", "import", "--from-registry"]) == 1
    out, err = capsys.readouterr()
    assert out.strip() == "imported 0 from the registry, skipped 1"
    assert "campaign 'jeju' is not in wellness.campaigns (busan, seoul): 1 caller(s) skipped: " \
           "+821*****4444" in err
    callers.write_text("phone,birth_date\n010-1234-5678,1941-03-15\n", encoding="utf-8")
    assert main(["--config", str(config), "callers", "import", str(callers)]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "wellness", "import", "--from-registry"]) == 1
    out, err = capsys.readouterr()
    assert out.strip() == "imported 0 from the registry, skipped 1"   # jeju's caller is still there
    assert people_in(config) == []


@pytest.mark.parametrize("args", [[], ["people.csv", "--from-registry"],
                                  ["--from-registry", "--campaign", "seoul"]])
def test_a_file_or_the_registry_exactly_one(config: Path, capsys, args: list[str]) -> None:
    assert main(["--config", str(config), "wellness", "import", *args]) == 2
    assert "wellness import: " in capsys.readouterr().err


def test_from_the_registry_with_an_http_registry_reads_the_store_and_says_so(
        config: Path, tmp_path: Path, capsys) -> None:
    config.write_text(config.read_text(encoding="utf-8")
                      + "callers: {registry: {url: 'https://crm.example/callers/{number}'}}\n",
                      encoding="utf-8")
    callers = csv_file(tmp_path, "phone,birth_date,wellness\n010-1234-5678,1941-03-15,seoul\n",
                       "callers.csv")
    assert main(["--config", str(config), "callers", "import", str(callers)]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "wellness", "import", "--from-registry"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "imported 1 from the registry, skipped 0"
    assert "callers.registry is a system asked number by number and cannot be listed" in err
