"""What a flow author sees from the command line: ``ivr validate`` exits 0 (valid), 1 (problems,
one ``file:line: message`` line each) or 2 (it could not run: a bug, said in one line);
``ivr simulate`` and ``ivr graph`` take a flow file's path; ``ivr prompts build`` without
espeak-ng says so once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.cli import main
from flow_helpers import FLOWS, PROMPTS


def copy_project(tmp_path: Path) -> tuple[Path, Path]:
    flows, prompts = tmp_path / "flows", tmp_path / "prompts"
    shutil.copytree(FLOWS, flows)
    prompts.mkdir()
    shutil.copy(PROMPTS / "catalog.yaml", prompts / "catalog.yaml")
    return flows, prompts


def insert(path: Path, line: int, column: int, data: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1][:column - 1] + data + lines[line - 1][column - 1:]
    path.write_bytes(b"\n".join(lines))


def validate(capsys, *argv: str) -> tuple[int, list[str]]:
    code = main(["validate", *argv])
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("bad, name", [(b"\x00", "NUL"), (b"\x1b", "ESC"), (b"\x7f", "DEL"),
                                       (b"\x0c", "form-feed")])
def test_a_control_character_in_a_flow_is_one_file_line_message_and_exit_1(tmp_path, capsys, bad, name):
    flows, prompts = copy_project(tmp_path)
    insert(flows / "main.yaml", 12, 3, bad)
    code, err = validate(capsys, "--prompts", str(prompts), str(flows))
    assert code == 1
    assert [line for line in err if ": warning: " not in line] == [
        f"{flows}/main.yaml:12: column 3: the control character U+00{bad.hex().upper()} ({name}) is not allowed "
        "in YAML; delete it (tab and line breaks are the only control characters a flow file may hold)"]


def test_hundreds_of_nested_brackets_are_one_message_and_exit_1(tmp_path, capsys):
    flows, prompts = copy_project(tmp_path)
    (flows / "deep.yaml").write_text("flow: deep\nnodes: " + "[" * 500 + "]" * 500 + "\n", encoding="utf-8")
    code, err = validate(capsys, "--prompts", str(prompts), str(flows / "deep.yaml"))
    assert code == 1
    assert err == [f"{flows}/deep.yaml:2: lists and mappings are nested more than 64 levels deep here; "
                   "a flow file needs only a few (an unclosed '[' or '{'?)"]


def test_a_catalogue_with_bytes_that_are_not_utf8_is_one_message_and_exit_1(tmp_path, capsys):
    flows, prompts = copy_project(tmp_path)
    line = (prompts / "catalog.yaml").read_text(encoding="utf-8").split("\n").index(
        '  ko: "한국어는 1번."') + 1
    insert(prompts / "catalog.yaml", line, 8 + len("한국어".encode()), b"\xff")
    code, err = validate(capsys, "--prompts", str(prompts), str(flows))
    assert code == 1
    assert err == [f"{prompts}/catalog.yaml:{line}: column 11: the file is not UTF-8 text (byte 0xff: invalid "
                   "start byte); save it as UTF-8"]


def test_a_catalogue_that_is_a_folder_is_one_message_and_exit_1(tmp_path, capsys):
    flows, prompts = copy_project(tmp_path)
    (prompts / "catalog.yaml").unlink()
    (prompts / "catalog.yaml").mkdir()
    code, err = validate(capsys, "--prompts", str(prompts), str(flows))
    assert (code, err) == (1, [f"{prompts}/catalog.yaml:1: cannot read the prompt catalogue: it is a folder, "
                               "not a file"])


def test_a_bug_in_the_check_exits_2_with_one_line_and_the_traceback_only_with_ivr_debug(
        tmp_path, capsys, monkeypatch):
    from ivr.flow import loader

    flows, prompts = copy_project(tmp_path)

    def broken(*args, **kwargs):                 # a bug in the loader, as the user would meet it
        raise KeyError("menu")

    monkeypatch.setattr(loader, "_collect", broken)
    monkeypatch.delenv("IVR_DEBUG", raising=False)
    code, err = validate(capsys, "--prompts", str(prompts), str(flows))
    assert code == 2
    assert len(err) == 1 and err[0].startswith("ivr: internal error in 'ivr validate' (a bug, not a problem "
                                               "in your files): KeyError: 'menu' in loader.py:")
    assert err[0].endswith("run it again with IVR_DEBUG=1 for the traceback")
    monkeypatch.setenv("IVR_DEBUG", "1")
    code, err = validate(capsys, "--prompts", str(prompts), str(flows))
    assert code == 2 and err[0] == "Traceback (most recent call last):" and err[-1].startswith("ivr: internal")


def test_a_valid_folder_exits_0_and_says_ok(tmp_path, capsys):
    flows, prompts = copy_project(tmp_path)
    assert main(["validate", "--prompts", str(prompts), str(flows)]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {flows}")


# -- simulate and graph take a flow file, as validate does -------------------------------------

def test_simulate_takes_a_flow_files_path(tmp_path, capsys, monkeypatch):
    copy_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "flows/main.yaml", "--keys", "1,2,1,1"]) == 0
    out = capsys.readouterr().out
    assert "■ completed" in out and "path: start > choose_language > welcome > main_menu" in out


def test_graph_takes_a_flow_files_path_inside_or_outside_the_flows_folder(tmp_path, capsys, monkeypatch):
    flows, prompts = copy_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["graph", "flows/long_term_care.yaml"]) == 0
    assert capsys.readouterr().out.startswith('flowchart TD\n  start(["call to long_term_care"])')
    mine = tmp_path / "elsewhere"
    mine.mkdir()
    shutil.copy(flows / "long_term_care.yaml", mine / "care.yaml")      # its own folder is loaded
    assert main(["graph", str(mine / "care.yaml"), "--prompts", str(prompts)]) == 0
    assert 'start(["call to long_term_care"])' in capsys.readouterr().out
    assert main(["graph", "main"]) == 0 and main(["graph", "15771000"]) == 0   # names and numbers as before
    capsys.readouterr()


def test_simulate_and_graph_say_when_the_flow_file_does_not_exist(tmp_path, capsys, monkeypatch):
    copy_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["graph", "flows/mian.yaml"]) == 2
    assert capsys.readouterr().err == "ivr: no flow file 'flows/mian.yaml'\n"
    assert main(["simulate", "flows/mian.yaml", "--keys", "1"]) == 2
    assert capsys.readouterr().err == "ivr: no flow file 'flows/mian.yaml'\n"


# -- prompts build without espeak-ng -------------------------------------------------------------

def test_prompts_build_without_espeak_ng_says_so_once_with_the_fix_and_exits_1(tmp_path, capsys, monkeypatch):
    _, prompts = copy_project(tmp_path)
    bin_dir = tmp_path / "bin"                  # a PATH with sox (when installed) but no espeak-ng
    bin_dir.mkdir()
    if shutil.which("sox"):
        (bin_dir / "sox").symlink_to(shutil.which("sox"))
    monkeypatch.setenv("PATH", str(bin_dir))
    assert main(["prompts", "build", "--prompts", str(prompts)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "ivr: espeak-ng is not installed, so the prompts cannot be made; install it with "
        "'apt-get install espeak-ng' (or run scripts/setup)"]
    assert "espeak-ng" not in captured.out
    assert not list((prompts / "audio").rglob("*.wav"))
