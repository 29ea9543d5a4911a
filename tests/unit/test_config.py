"""The engine's configuration: no secrets by default, clear errors."""

from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "ivr.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_engine_refuses_to_start_without_an_ari_password(tmp_path):
    cfg = write(tmp_path, "ari: {username: ivr}\n")
    with pytest.raises(ConfigError, match="no ARI password"):
        load_config(cfg, env={})


def test_password_comes_from_a_file_relative_to_the_config(tmp_path):
    (tmp_path / "secret").write_text("s3cret\n")
    cfg = write(tmp_path, "ari: {username: ivr, password_file: secret}\nflows: myflows\n")
    c = load_config(cfg, env={})
    assert c.ari.password == "s3cret"
    assert c.ari.url == "http://127.0.0.1:8088/ari"   # loopback by default
    assert c.flows == (tmp_path / "myflows",)


def test_a_missing_password_file_says_how_to_create_it(tmp_path):
    cfg = write(tmp_path, "ari: {username: ivr, password_file: nope}\n")
    with pytest.raises(ConfigError, match="ivr sandbox up"):
        load_config(cfg, env={})


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    cfg = write(tmp_path, "ari: {username: ivr, password: fromfile}\nstore: {url: 'sqlite:///var/x.db'}\n")
    c = load_config(cfg, env={"IVR_ARI_PASSWORD": "fromenv", "IVR_LOG_FORMAT": "json"})
    assert c.ari.password == "fromenv"
    assert c.log.format == "json"
    assert c.store_url == f"sqlite:///{tmp_path}/var/x.db"


def test_env_references_are_expanded_and_must_exist(tmp_path, monkeypatch):
    cfg = write(tmp_path, "ari: {username: ivr, password: '${ARI_SECRET_FOR_TEST}'}\n")
    monkeypatch.delenv("ARI_SECRET_FOR_TEST", raising=False)
    with pytest.raises(ConfigError, match="ARI_SECRET_FOR_TEST"):
        load_config(cfg, env={})
    monkeypatch.setenv("ARI_SECRET_FOR_TEST", "x")
    assert load_config(cfg, env={}).ari.password == "x"


def test_unknown_keys_are_named(tmp_path):
    cfg = write(tmp_path, "ari: {username: ivr, password: x, pasword: y}\n")
    with pytest.raises(ConfigError, match="pasword"):
        load_config(cfg, env={})


def test_bad_engine_value_is_a_config_error(tmp_path):
    cfg = write(tmp_path, "ari: {username: ivr, password: x}\nengine: {max_calls: lots}\n")
    with pytest.raises(ConfigError, match="engine"):
        load_config(cfg, env={})


def test_broken_yaml_is_a_config_error(tmp_path):
    cfg = write(tmp_path, "ari: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(cfg, env={})
