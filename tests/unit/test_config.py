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


# -- what an operator may get wrong in ivr.yaml: always a ConfigError naming the key ------------

BASE = "ari: {username: ivr, password: x}\n"


def config_error(tmp_path: Path, text: str | bytes, env: dict[str, str] | None = None) -> str:
    p = tmp_path / "ivr.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(ConfigError) as err:
        load_config(p, env=env or {})
    return str(err.value)


def test_an_alias_bomb_is_refused_quickly_in_little_memory(tmp_path):
    import time
    import tracemalloc

    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]   # 10**6 values
    text = BASE + "engine: {busy_prompt: system_busy}\nbomb:\n" + "".join(f"  {line}\n" for line in levels)
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        message = config_error(tmp_path, text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "aliases" in message and "ivr.yaml:" in message
    assert time.monotonic() - t0 < 5
    assert peak < 200 * 2**20


def test_bytes_that_are_not_utf8_say_where(tmp_path):
    message = config_error(tmp_path, BASE.encode() + b"engine:\n  busy_prompt: caf\xe9\n")
    assert "ivr.yaml:3:" in message and "UTF-8" in message


@pytest.mark.parametrize("text, key", [
    ("ari: {username: ivr, password: x, url: null}", "ari.url"),
    ("ari: {username: ivr, password: x, url: 5}", "ari.url"),
    ("ari: {username: [ivr], password: x}", "ari.username"),
    ("ari: {username: ivr, password: x, app: null}", "ari.app"),
    (BASE + "store: {url: null}", "store.url"),
    (BASE + "store: {url: 'mysql://db/ivr'}", "store.url"),
    (BASE + "log: {level: loud}", "log.level"),
    (BASE + "flows: [flows, null]", "flows"),
    (BASE + "prompts: {a: b}", "prompts"),
    (BASE + "engine: 5", "'engine' must be a mapping"),
    (BASE + "engine: {busy_prompt: null}", "engine.busy_prompt"),
    (BASE + "admin: {listen: '127.0.0.1:99999'}", "admin.listen"),
    (BASE + "admin: {listen: '127.0.0.1:８０８９'}", "admin.listen"),
    (BASE + "admin: {token: 'tok en'}", "admin.token"),
    (BASE + "admin: {token: '토큰'}", "admin.token"),
    (BASE + "acd: {music: null}", "acd.music"),
    (BASE + "acd: {priorities: [elderly, elderly]}", "acd.priorities"),
    (BASE + "acd: {agents: [{id: a1, endpoint: PJSIP/a1, login: yes}]}", "acd.agents[1].login"),
    (BASE + "acd: {agents: [{id: a1, endpoint: PJSIP/a1, name: null}]}", "acd.agents[1].name"),
    (BASE + "acd: {queues: {q: {music: [x]}}}", "acd.queues.q.music"),
    (BASE + "acd: {queues: {'': {}}}", "acd.queues: '' is not a queue name"),
    (BASE + "acd: {queues: {\"a\\tb\": {}}}", "is not a queue name"),
    (BASE + "callers: {timezone: '" + "x" * 5000 + "'}", "callers.timezone"),
])
def test_a_value_of_the_wrong_kind_is_named(tmp_path, text, key):
    message = config_error(tmp_path, text + "\n")
    assert key in message, message


NUMERIC_SETTINGS = [
    ("engine", "max_calls"), ("engine", "max_loop_lag"), ("engine", "shutdown_grace"),
    ("engine", "reload_interval"),
    ("callers", "lookup_budget"),
    ("callbacks", "lease"), ("callbacks", "poll"), ("callbacks", "ring_timeout"),
    ("callbacks", "retry_delay"), ("callbacks", "max_attempts"),
]
QUEUE_SETTINGS = ["max_wait", "announce_every", "ring_timeout", "wrap_up"]
BAD_NUMBERS = [".nan", ".inf", "-.inf", "-5", "-1", "true", "null", "lots", "[1]", "{a: 1}",
               "1e999", "!!float nan", "'nan'", "'inf'", "1" * 400, "'" + "1" * 400 + "'"]


@pytest.mark.parametrize("section, key", NUMERIC_SETTINGS)
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_every_number_refuses_nan_infinity_negatives_and_other_kinds(tmp_path, section, key, value):
    message = config_error(tmp_path, BASE + f"{section}:\n  {key}: {value}\n")
    assert f"{section}.{key}" in message, message
    assert f"ivr.yaml:3: {section}.{key} must be" in message, message


@pytest.mark.parametrize("key", QUEUE_SETTINGS)
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_every_queue_number_refuses_nan_infinity_negatives_and_other_kinds(tmp_path, key, value):
    message = config_error(tmp_path, BASE + f"acd:\n  queues:\n    general:\n      {key}: {value}\n")
    assert f"ivr.yaml:5: acd.queues.general.{key} must be" in message, message


def test_a_registry_timeout_refuses_nan(tmp_path):
    message = config_error(tmp_path, BASE + "callers:\n  registry:\n    url: 'https://x/{number}'\n"
                                            "    timeout: .nan\n")
    assert "ivr.yaml:5: callers.registry.timeout must be" in message


def test_numbers_written_as_text_still_count(tmp_path, monkeypatch):
    # What '${NAME}' gives is text: '100' is still a number.
    monkeypatch.setenv("IVR_TEST_MAX_CALLS", "100")
    p = tmp_path / "ivr.yaml"
    p.write_text(BASE + "engine: {max_calls: '${IVR_TEST_MAX_CALLS}', shutdown_grace: '2.5'}\n")
    engine = load_config(p, env={}).engine
    assert (engine.max_calls, engine.shutdown_grace) == (100, 2.5)


def test_zero_means_none_where_the_docs_say_so(tmp_path):
    p = tmp_path / "ivr.yaml"
    p.write_text(BASE + "engine: {shutdown_grace: 0, reload_interval: 0}\n"
                        "acd: {queues: {general: {wrap_up: 0}}}\n")
    c = load_config(p, env={})
    assert (c.engine.shutdown_grace, c.engine.reload_interval) == (0.0, 0.0)
    assert c.acd.queues[0].wrap_up == 0.0
    for text in ("engine: {max_calls: 0}", "engine: {max_loop_lag: 0}"):
        assert "must be" in config_error(tmp_path, BASE + text + "\n")


def test_no_secret_shows_in_the_repr_of_the_config(tmp_path):
    p = tmp_path / "ivr.yaml"
    p.write_text("ari: {username: ivr, password: ari-s3cret}\n"
                 "store: {url: 'postgresql://ivr:db-s3cret@db.example/ivr'}\n"
                 "admin: {token: admin-s3cret}\n"
                 "callers: {registry: {url: 'https://crm/{number}', token_env: CRM}}\n")
    config = load_config(p, env={"CRM": "crm-s3cret"})
    assert config.ari.password == "ari-s3cret" and "db-s3cret" in config.store_url
    shown = repr(config) + str(config)
    for secret in ("ari-s3cret", "db-s3cret", "admin-s3cret", "crm-s3cret"):
        assert secret not in shown


# -- the environment: IVR_<SECTION>_<KEY> for every scalar setting ------------------------------

def test_every_scalar_setting_can_be_set_from_the_environment(tmp_path):
    p = tmp_path / "ivr.yaml"
    p.write_text(BASE + "engine: {max_calls: 10}\n")
    c = load_config(p, env={
        "IVR_ENGINE_MAX_CALLS": "100", "IVR_ENGINE_SHUTDOWN_GRACE": "2.5",
        "IVR_ENGINE_DEFAULT_LANGUAGE": "en", "IVR_CALLBACKS_OWNER": "engine-b",
        "IVR_CALLBACKS_ALLOW_INTERNATIONAL": "true", "IVR_CALLBACKS_CALLER_ID": "015771000",
        "IVR_CALLBACKS_MAX_ATTEMPTS": "5", "IVR_CALLERS_LOOKUP_BUDGET": "0.5",
        "IVR_CALLERS_REGISTRY_URL": "https://crm.example/{number}", "IVR_ACD_MUSIC": "jazz",
        "IVR_ADMIN_LISTEN": "127.0.0.1:9000", "IVR_ADMIN_TOKEN": "1.50",
        "IVR_ARI_PASSWORD": "1.50", "IVR_ARI_APP": "ivr-b", "IVR_LOG_LEVEL": "debug",
    })
    assert (c.engine.max_calls, c.engine.shutdown_grace, c.engine.default_language) == (100, 2.5, "en")
    assert (c.callbacks.owner, c.callbacks.allow_international) == ("engine-b", True)
    assert (c.callbacks.caller_id, c.callbacks.retry.max_attempts) == ("015771000", 5)
    assert c.callers.lookup_budget == 0.5 and c.callers.registry.url == "https://crm.example/{number}"
    assert c.callers.registry.timeout == 0.5
    assert c.acd.music == "jazz" and (c.admin.port, c.admin.token) == (9000, "1.50")
    assert (c.ari.password, c.ari.app, c.log.level) == ("1.50", "ivr-b", "debug")   # text as written


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path):
    p = tmp_path / "ivr.yaml"
    p.write_text(BASE)
    for var, value in (("IVR_ENGINE_MAX_CALLS", "-5"), ("IVR_CALLBACKS_LEASE", ".nan"),
                       ("IVR_ENGINE_MAX_LOOP_LAG", "soon")):
        with pytest.raises(ConfigError) as err:
            load_config(p, env={var: value})
        assert str(err.value).startswith(f"{var}: "), err.value


def test_an_empty_variable_counts_as_unset(tmp_path):
    p = tmp_path / "ivr.yaml"
    p.write_text(BASE + "engine: {max_calls: 7}\n")
    assert load_config(p, env={"IVR_ENGINE_MAX_CALLS": ""}).engine.max_calls == 7


def test_every_documented_variable_is_one_setting():
    from ivr.config import environment_variables

    names = environment_variables()
    for old in ("IVR_ARI_URL", "IVR_ARI_USERNAME", "IVR_ARI_PASSWORD", "IVR_ARI_PASSWORD_FILE",
                "IVR_ARI_APP", "IVR_STORE_URL", "IVR_LOG_FORMAT", "IVR_LOG_LEVEL", "IVR_FLOWS",
                "IVR_PROMPTS", "IVR_ADMIN_LISTEN", "IVR_ADMIN_TOKEN"):
        assert old in names
    assert names["IVR_CALLERS_REGISTRY_TOKEN_ENV"] == "callers.registry.token_env"
    assert names["IVR_CALLBACKS_PUBLIC_HOLIDAYS"] == "callbacks.public_holidays"
    assert len(set(names.values())) == len(names)


@pytest.mark.timeout(10)
def test_files_that_never_end_are_refused_not_read(tmp_path):
    # A device or a pipe as a password, token or config file: refused at once, not read forever.
    message = config_error(tmp_path, "ari: {username: ivr, password_file: /dev/zero}\n")
    assert "ari.password_file" in message and "not a regular file" in message
    message = config_error(tmp_path, BASE + "admin: {token_file: /dev/zero}\n")
    assert "admin.token_file" in message and "not a regular file" in message
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config("/dev/zero", env={})
    big = tmp_path / "big-secret"
    big.write_bytes(b"x" * 100_000)
    assert "too large" in config_error(tmp_path, f"ari: {{username: ivr, password_file: {big}}}\n")


@pytest.mark.parametrize("endpoint", ["PJSIP/{national:d}@trunk", "PJSIP/{national!x}@trunk",
                                      "PJSIP/{national:>{e164}}@trunk", "PJSIP/{e164!r}@trunk"])
def test_a_callback_endpoint_that_could_not_be_dialled_is_refused_at_start(tmp_path, endpoint):
    # Accepted before, and then every callback failed when the number was put in.
    message = config_error(tmp_path, BASE + f"callbacks: {{endpoint: '{endpoint}'}}\n")
    assert "ivr.yaml:2: callbacks.endpoint" in message and "{national}" in message


@pytest.mark.parametrize("text, env, where", [
    (BASE + "flows: ~nosuchuser-ivr/flows\n", {}, "ivr.yaml:2: flows"),
    (BASE + "prompts: '~nosuchuser-ivr'\n", {}, "ivr.yaml:2: prompts"),
    ("ari: {username: ivr, password_file: '~nosuchuser-ivr/secret'}\n", {}, "ivr.yaml:1: ari.password_file"),
    (BASE, {"IVR_FLOWS": "~0"}, "IVR_FLOWS: flows"),
])
def test_a_home_folder_that_does_not_exist_is_named(tmp_path, text, env, where):
    message = config_error(tmp_path, text, env)
    assert message.startswith(f"{tmp_path}/{where}" if where.startswith("ivr.yaml") else where), message
    assert "no such user" in message
