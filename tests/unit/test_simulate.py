"""Flows without a phone: 'ivr simulate' prints the call; 'ivr test-flows' runs an author's cases."""

from __future__ import annotations

import shutil
from pathlib import Path

from ivr.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_simulate_prints_the_prompts_the_keys_and_the_end(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["simulate", "15771000", "--keys", "1,2,1,1"]) == 0
    out = capsys.readouterr().out
    assert "▶ choose_language [en]: For English, press 2." in out    # each language offers itself
    assert "▶ welcome [ko]: 안녕하십니까" in out
    assert "⌨ pressed 2" in out
    assert "■ completed" in out
    assert "path: start > choose_language > welcome > main_menu > certificates_menu" in out
    assert main(["simulate", "main", "--keys", "2,9"]) == 0
    out = capsys.readouterr().out
    assert "✎ lang = 'en'" in out                              # variable changes are shown
    assert "▶ welcome [en]: Hello" in out
    assert main(["simulate", "main", "--caller-lang", "vi", "--keys", "0"]) == 0
    out = capsys.readouterr().out
    assert "choose_language" not in out and "▶ welcome [vi]" in out  # a known language: not asked


def test_simulate_says_a_value_on_one_line(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["simulate", "main", "--keys", "1,1,1,850315#,1,2"]) == 0
    out = capsys.readouterr().out
    assert "▶ you_entered [ko]: 입력하신 번호는\n  ▶ (said) [ko]: 팔 오 공 삼 일 오\n" in out


def test_simulate_shows_a_bypass_and_a_timeout(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["simulate", "main", "--age", "81"]) == 0
    assert "→ queue general (priority elderly, reason bypass: elderly)" in capsys.readouterr().out
    assert main(["simulate", "main", "--keys=-,-,-"]) == 0
    out = capsys.readouterr().out
    assert "… no key within 5 s" in out and "■ queued: general" in out


def test_simulate_an_unknown_flow_says_which_exist(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["simulate", "nosuch", "--keys", ""]) == 2
    assert "main" in capsys.readouterr().err


def test_the_sample_flows_cases_pass(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["test-flows", "flows"]) == 0
    assert "0 failed" in capsys.readouterr().out


def test_a_failing_case_names_the_file_line_and_what_differs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "flows", flows)
    (flows / "tests" / "main.yaml").write_text(
        "flow: main\ncases:\n  - name: wrong\n    keys: ['1', '2', '1', '1']\n"
        "    expect: {outcome: queued, path: [welcome]}\n", encoding="utf-8")
    assert main(["test-flows", str(flows)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  main.yaml: wrong" in out
    assert "main.yaml:3: outcome: expected 'queued', got 'completed'" in out
    assert "path: expected welcome, got start > choose_language > welcome > main_menu" in out


def test_graph_draws_every_node_key_and_exit_of_the_sample_flow(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["graph", "15771000"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart TD")
    assert 'n_main_menu -- "key 2" --> n_certificates_menu' in out
    assert 'n_main_menu -- "on_fail" --> n_agent_no_choice' in out
    assert "caller.age >= 65" in out                       # the bypass rule is drawn
    assert "queue general + callback offer" in out
    assert main(["graph", "main", "--format", "dot"]) == 0
    assert "n_main_menu -> n_certificates_menu [label=\"key 2\"]" in capsys.readouterr().out


def test_the_schema_accepts_every_sample_flow_and_flags_an_unknown_key(capsys, monkeypatch):
    import json

    import jsonschema
    import yaml

    monkeypatch.chdir(REPO)
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    validator = jsonschema.Draft202012Validator(schema)
    for path in [*sorted((REPO / "flows").glob("*.yaml")), *sorted((REPO / "tests/e2e/flows").glob("*.yaml"))]:
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8"))))
        assert not errors, (path, [e.message for e in errors][:3])
    broken = yaml.safe_load((REPO / "flows/main.yaml").read_text(encoding="utf-8"))
    broken["nodes"]["welcome"]["nxet"] = "main_menu"
    assert list(validator.iter_errors(broken))
    broken = yaml.safe_load((REPO / "flows/main.yaml").read_text(encoding="utf-8"))
    broken["nodes"]["welcome"]["play"] = "welcome@English"          # not a language code
    assert list(validator.iter_errors(broken))


def test_the_vscode_settings_map_flows_and_their_tests_to_the_schemas_ivr_schema_prints(capsys, monkeypatch):
    """.vscode/settings.json is ready to use: its schema files are the current ones, and each
    sample file validates against the schema it is mapped to."""
    import json
    import re
    from pathlib import PurePosixPath

    import jsonschema
    import yaml

    monkeypatch.chdir(REPO)
    printed = {}
    for args, name in ((["schema"], "flows"), (["schema", "--cases"], "cases")):
        assert main(args) == 0
        printed[name] = json.loads(capsys.readouterr().out)
    settings_text = (REPO / ".vscode" / "settings.json").read_text(encoding="utf-8")
    settings = json.loads(re.sub(r"^\s*//.*$", "", settings_text, flags=re.M))    # JSON with comments
    mapping = settings["yaml.schemas"]
    assert len(mapping) == 2

    def matches(path: str, glob: str) -> bool:              # VS Code's '*' stays within a folder
        return PurePosixPath(path).match(glob) and path.count("/") == glob.count("/")

    files = [str(p.relative_to(REPO)) for p in [*REPO.glob("flows/**/*.yaml"), *REPO.glob("tests/e2e/flows/*.yaml")]]
    for schema_file, globs in mapping.items():
        committed = json.loads((REPO / schema_file).read_text(encoding="utf-8"))
        which = "cases" if "cases" in schema_file else "flows"
        hint = "ivr schema" + (" --cases" if which == "cases" else "")
        assert committed == printed[which], f"{schema_file} is out of date: run  {hint} > {schema_file[2:]}"
        validator = jsonschema.Draft202012Validator(committed)
        mine = [f for f in files if any(matches(f, g) for g in globs)]
        assert mine
        for f in mine:
            errors = list(validator.iter_errors(yaml.safe_load((REPO / f).read_text(encoding="utf-8"))))
            assert not errors, (f, [e.message for e in errors][:3])
    assert all(sum(any(matches(f, g) for g in globs) for globs in mapping.values()) == 1 for f in files)


def test_a_misspelt_expectation_fails_the_case_instead_of_passing_unchecked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    flows = tmp_path / "flows"
    shutil.copytree(REPO / "flows", flows)
    (flows / "tests" / "main.yaml").write_text(
        "flow: main\ncases:\n  - name: typo\n    keys: ['0']\n    caller: {age: 40, langauge: en}\n"
        "    expect: {outcom: queued}\n", encoding="utf-8")
    assert main(["test-flows", str(flows)]) == 1
    out = capsys.readouterr().out
    assert "main.yaml:5: unknown key 'langauge' in 'caller' (did you mean 'language'?)" in out
    assert "main.yaml:6: unknown key 'outcom' in 'expect' (did you mean 'outcome'?)" in out


def test_graph_writes_an_svg_with_graphviz(tmp_path, monkeypatch):
    import os
    import shutil

    import pytest

    if shutil.which("dot") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Graphviz (dot) is missing: scripts/setup installs it")
        pytest.skip("Graphviz (dot) is not installed")
    monkeypatch.chdir(REPO)
    out = tmp_path / "main.svg"
    assert main(["graph", "main", "-o", str(out)]) == 0
    svg = out.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "main_menu" in svg and "<svg" in svg
