"""``ivr users add|list|remove``: the wallboard's users file."""

from __future__ import annotations

import io

from ivr.cli import main
from ivr.web.auth import Role, check_password, read_users


def config(tmp_path):
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("admin: {users_file: users.yaml}\n")
    return str(cfg)


def test_users_are_added_with_a_hash_listed_changed_and_removed(tmp_path, monkeypatch, capsys):
    cfg = config(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert main(["-c", cfg, "users", "add", "kim", "--role", "supervisor", "--password-stdin"]) == 0
    users = read_users(tmp_path / "users.yaml")
    assert users["kim"].role == Role.SUPERVISOR and check_password(users["kim"].password_hash, "a long password")
    prompts = iter(["viewer password", "viewer password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(prompts))
    assert main(["-c", cfg, "users", "add", "wall", "--role", "viewer"]) == 0
    assert main(["-c", cfg, "users", "list"]) == 0
    out = capsys.readouterr().out
    assert "kim" in out and "supervisor" in out and "wall" in out and "viewer" in out
    text = (tmp_path / "users.yaml").read_text()
    assert "a long password" not in text and "viewer password" not in text
    assert main(["-c", cfg, "users", "remove", "kim"]) == 0
    assert list(read_users(tmp_path / "users.yaml")) == ["wall"]
    assert main(["-c", cfg, "users", "remove", "kim"]) == 1


def test_a_short_or_mistyped_password_changes_nothing(tmp_path, monkeypatch, capsys):
    cfg = config(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["-c", cfg, "users", "add", "kim", "--role", "viewer", "--password-stdin"]) == 1
    assert "at least 10" in capsys.readouterr().err
    prompts = iter(["first password", "other password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(prompts))
    assert main(["-c", cfg, "users", "add", "kim", "--role", "viewer"]) == 1
    assert "differ" in capsys.readouterr().err
    assert not (tmp_path / "users.yaml").exists()


def test_without_a_users_file_in_the_config_it_says_which_setting(tmp_path, capsys):
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("admin: {listen: '127.0.0.1:8089'}\n")
    assert main(["-c", str(cfg), "users", "list"]) == 2
    assert "admin.users_file" in capsys.readouterr().err
