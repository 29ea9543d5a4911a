"""The engine's configuration: ``ivr.yaml`` plus environment overrides.

Nothing secret has a default in code.  The ARI password comes from ``ari.password``,
``ari.password_file`` or the environment (``IVR_ARI_PASSWORD``); without one the engine refuses
to start.  Relative paths are resolved against the folder of the config file.

``callers:`` — who is calling (``ivr.routing``); every key is optional:

* ``region`` (``KR``) — the country a number without ``+`` is dialled from (ISO 3166 code);
* ``timezone`` (``Asia/Seoul``) — the center's time zone: a caller's age is taken on the day
  of the call there;
* ``lookup_budget`` (``1.0``) — seconds the registry lookup and the call-history count may take,
  together, before the first prompt; what does not answer in time is treated as unknown;
* ``registry`` — a deployment's own system to ask instead of the registry in the store
  (``ivr callers import``):
  ``url`` (required, with ``{number}``, replaced by the E.164 number:
  ``https://crm.example/callers/{number}``), ``timeout`` (seconds, default ``lookup_budget``),
  ``token_env`` (the name of an environment variable holding a bearer token, sent as
  ``Authorization: Bearer …``; never written in the file, never logged).

``acd:`` — the agent queues the engine runs itself (``ivr.acd``):

* ``priorities`` (``[elderly, repeat, normal]``) — highest first; a call with a priority not
  listed is served as the last one;
* ``music`` (``default``) — the Asterisk music-on-hold class waiting callers hear;
* ``queues`` — ``NAME: {skills: [..], max_wait: 600, on_max_wait: message|overflow|callback,
  overflow: OTHER, announce_every: 45, ring_timeout: 15, wrap_up: 10}``;
* ``agents`` — a list of ``{id, name, endpoint: PJSIP/agent1, skills: [..], center, login:
  true|false}`` (``login: true``: logged in when the engine starts).

``callbacks:`` — reservation callbacks, "call me back instead of waiting" (``ivr.callbacks``);
every key is optional:

* ``endpoint`` — how to dial a customer, an Asterisk channel with ``{national}`` (``01012345678``),
  ``{e164}`` (``+821012345678``) or ``{digits}`` (``821012345678``) in it, e.g.
  ``PJSIP/{national}@trunk``; without it the engine offers no callbacks;
* ``owner`` (the host name) — this engine instance's name in the reservations it claims; give
  each instance sharing one store its own;
* ``lease`` (``60``) — seconds a claimed reservation stays this instance's without renewal;
  after that (the instance died) another one dials it;
* ``poll`` (``2``) — seconds between looks for due reservations;
* ``max_attempts`` (``3``) and ``retry_delay`` (``600``) — dial attempts per reservation, and
  seconds from the start of one attempt to the next (moved to the next opening when that
  falls outside opening hours);
* ``ring_timeout`` (``30``) — seconds the customer's phone rings;
* ``allow_international`` (``false``) — call back numbers of other countries than
  ``callers.region``;
* ``caller_id`` — the number the customer sees, e.g. ``'15771000'`` (quote it: YAML reads a
  number with a leading 0 as something else); unset: what the trunk presents;
* ``hours`` — the weekly opening hours callbacks are dialled in, local time in
  ``callers.timezone``: ``{mon: ["09:00-18:00"], …, sat: ["09:00-13:00"], sun: []}``; a day
  may have several intervals, ``24:00`` ends one at midnight; days not named are closed.
  Default: Monday to Friday, 09:00-18:00;
* ``holidays`` — dates with no callbacks, ``[2025-01-01, 2025-03-01]`` (``YYYY-MM-DD``).

``admin:`` — the operator API (``ivr agents …`` talks to it): ``listen`` (``127.0.0.1:8089``),
``token`` / ``token_file`` / ``IVR_ADMIN_TOKEN`` (a bearer token; without one the API is off).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import socket
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml

from ivr.callbacks.schedule import DAY_NAMES, OpeningHours, RetryPolicy
from ivr.errors import ConfigError

ENV_PREFIX = "IVR_"
_ENV_REF = re.compile(r"\$\{([A-Z0-9_]+)\}")


@dataclasses.dataclass(frozen=True, slots=True)
class AriConfig:
    url: str
    username: str
    password: str
    app: str = "ivr"


@dataclasses.dataclass(frozen=True, slots=True)
class LogConfig:
    format: str = "console"   # console | json
    level: str = "info"


@dataclasses.dataclass(frozen=True, slots=True)
class EngineConfig:
    max_calls: int = 5000          # calls beyond this hear a busy prompt and are released
    max_loop_lag: float = 0.1      # seconds; while the event loop lags more, new calls are shed
    shutdown_grace: float = 30.0   # seconds calls in progress get to finish on shutdown
    reload_interval: float = 2.0   # seconds between looks at the flow files (0: only on SIGHUP)
    busy_prompt: str = "system_busy"
    default_language: str = "ko"


@dataclasses.dataclass(frozen=True, slots=True)
class RegistryConfig:
    """A deployment's own caller registry, asked over HTTP."""

    url: str
    timeout: float
    token: str | None = dataclasses.field(default=None, repr=False)   # never printed

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclasses.dataclass(frozen=True, slots=True)
class CallersConfig:
    region: str = "KR"
    timezone: str = "Asia/Seoul"
    lookup_budget: float = 1.0
    registry: RegistryConfig | None = None     # None: the registry kept in the store


@dataclasses.dataclass(frozen=True, slots=True)
class CallbacksConfig:
    owner: str = dataclasses.field(default_factory=socket.gethostname)
    lease: float = 60.0                # seconds
    poll: float = 2.0                  # seconds
    ring_timeout: float = 30.0         # seconds
    allow_international: bool = False
    caller_id: str | None = None       # None: what the trunk presents
    endpoint: str | None = None        # PJSIP/{national}@trunk; None: no callbacks offered
    hours: OpeningHours = dataclasses.field(default_factory=OpeningHours.office)
    retry: RetryPolicy = RetryPolicy()


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    ari: AriConfig
    flows: tuple[Path, ...]
    prompts: Path
    store_url: str
    log: LogConfig
    engine: EngineConfig
    source: Path | None = None
    callers: CallersConfig = CallersConfig()
    acd: AcdConfig = dataclasses.field(default_factory=lambda: AcdConfig())
    admin: AdminConfig = dataclasses.field(default_factory=lambda: AdminConfig())
    callbacks: CallbacksConfig = dataclasses.field(default_factory=lambda: CallbacksConfig())


@dataclasses.dataclass(frozen=True, slots=True)
class AcdConfig:
    priorities: tuple[str, ...] = ("elderly", "repeat", "normal")
    music: str = "default"
    queues: tuple[Any, ...] = ()          # ivr.acd.model.QueueSpec
    agents: tuple[Any, ...] = ()          # ivr.acd.model.AgentSpec
    auto_login: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class AdminConfig:
    host: str = "127.0.0.1"
    port: int = 8089
    token: str | None = dataclasses.field(default=None, repr=False)   # None: the API is off


def _expand(value: Any) -> Any:
    """Replace ``${NAME}`` in strings by the environment variable NAME (error when unset)."""
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise ConfigError(f"config refers to ${{{name}}}, but the environment variable {name} is not set")
            return os.environ[name]
        return _ENV_REF.sub(repl, value)
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    return value


def _section(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"config: '{name}' must be a mapping, not {type(value).__name__}")
    return dict(value)


def _check_keys(section: str, given: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(f"config: unknown key(s) in '{section}': {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(known))})")


def load_config(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None, *, need_ari: bool = True) -> Config:
    """Read the config file (``path``, else ``$IVR_CONFIG``, else ``./ivr.yaml``) and the environment.

    ``need_ari=False`` is for commands that never talk to Asterisk (``calls list``, ``callers``):
    the ARI credentials may then be missing or unreadable (the password is left empty).
    """
    env = os.environ if env is None else env
    if path is None:
        path = env.get("IVR_CONFIG", "ivr.yaml")
    cfg_path = Path(path)
    raw: dict[str, Any] = {}
    if cfg_path.exists():
        try:
            loaded = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{cfg_path}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{cfg_path}: the top level must be a mapping")
        raw = {}
        for key, value in (loaded or {}).items():
            try:
                raw[key] = _expand(value)
            except ConfigError:
                if key != "ari" or need_ari or not isinstance(value, dict):
                    raise
                raw[key] = {k: _expand(v) for k, v in value.items() if k not in ("password", "password_file")}
        source: Path | None = cfg_path.resolve()
    elif env.get("IVR_CONFIG") or path != "ivr.yaml":
        raise ConfigError(f"config file {cfg_path} does not exist")
    else:
        source = None
    _check_keys("top level", raw, {"ari", "flows", "prompts", "store", "log", "engine", "callers",
                                   "acd", "admin", "callbacks"})
    base = source.parent if source else Path.cwd()

    def rel(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else (base / q)

    ari = _section(raw, "ari")
    _check_keys("ari", ari, {"url", "username", "password", "password_file", "app"})
    url = env.get("IVR_ARI_URL", ari.get("url", "http://127.0.0.1:8088/ari"))
    username = env.get("IVR_ARI_USERNAME", ari.get("username"))
    password = env.get("IVR_ARI_PASSWORD", ari.get("password"))
    password_file = env.get("IVR_ARI_PASSWORD_FILE", ari.get("password_file"))
    if not password and password_file and need_ari:
        pf = rel(str(password_file))
        try:
            password = pf.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"ari.password_file {pf} cannot be read ({exc.strerror}); "
                              "run 'ivr sandbox up' to create the sandbox credentials, "
                              "or set IVR_ARI_PASSWORD") from exc
    if not username and need_ari:
        raise ConfigError("ari.username is not set (config 'ari.username' or IVR_ARI_USERNAME)")
    if not password and need_ari:
        raise ConfigError("no ARI password: set ari.password, ari.password_file or IVR_ARI_PASSWORD")
    username, password = username or "", password or ""

    flows_raw = env.get("IVR_FLOWS", raw.get("flows", "flows"))
    if isinstance(flows_raw, str):
        flows_raw = [p for p in flows_raw.split(os.pathsep) if p]
    if not isinstance(flows_raw, list) or not flows_raw:
        raise ConfigError("config: 'flows' must be a path or a list of paths")

    store = _section(raw, "store")
    _check_keys("store", store, {"url"})
    store_url = env.get("IVR_STORE_URL", store.get("url", "sqlite:///var/ivr.db"))
    if store_url.startswith("sqlite:///") and not store_url.startswith("sqlite:////"):
        # sqlite:///relative/path → relative to the config folder
        store_url = "sqlite:///" + str(rel(store_url[len("sqlite:///"):]))

    log = _section(raw, "log")
    _check_keys("log", log, {"format", "level"})
    log_cfg = LogConfig(format=env.get("IVR_LOG_FORMAT", log.get("format", "console")),
                        level=env.get("IVR_LOG_LEVEL", log.get("level", "info")))
    if log_cfg.format not in ("console", "json"):
        raise ConfigError(f"log.format must be 'console' or 'json', not {log_cfg.format!r}")

    eng = _section(raw, "engine")
    fields = {f.name: f for f in dataclasses.fields(EngineConfig)}
    _check_keys("engine", eng, set(fields))
    try:
        engine = EngineConfig(**{k: type(getattr(EngineConfig(), k))(v) for k, v in eng.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config: bad value in 'engine': {exc}") from exc

    callers = _callers(raw, env)
    return Config(
        ari=AriConfig(url=str(url).rstrip("/"), username=str(username), password=str(password),
                      app=str(env.get("IVR_ARI_APP", ari.get("app", "ivr")))),
        flows=tuple(rel(str(p)) for p in flows_raw),
        prompts=rel(str(env.get("IVR_PROMPTS", raw.get("prompts", "prompts")))),
        store_url=store_url,
        log=log_cfg,
        engine=engine,
        source=source,
        callers=callers,
        acd=_acd(raw),
        admin=_admin(raw, env, rel),
        callbacks=_callbacks(raw, callers),
    )


_ON_MAX_WAIT = ("message", "overflow", "callback")


def _acd(raw: Mapping[str, Any]) -> AcdConfig:
    sec = _section(raw, "acd")
    if not sec:
        return AcdConfig()
    from ivr.acd.model import AgentSpec, QueueSpec

    _check_keys("acd", sec, {"priorities", "music", "queues", "agents"})
    default = AcdConfig()
    priorities = sec.get("priorities", list(default.priorities))
    if not isinstance(priorities, list) or not priorities or not all(isinstance(p, str) for p in priorities):
        raise ConfigError("acd.priorities must be a list of names, highest first, e.g. [elderly, repeat, normal]")
    music = str(sec.get("music", default.music))

    queues_raw = sec.get("queues") or {}
    if not isinstance(queues_raw, dict):
        raise ConfigError("acd.queues must be a mapping of queue name to its settings")
    queue_keys = {"skills", "max_wait", "on_max_wait", "overflow", "announce_every", "ring_timeout",
                  "wrap_up", "music"}
    queues = []
    for name, q in queues_raw.items():
        where = f"acd.queues.{name}"
        q = q or {}
        if not isinstance(q, dict):
            raise ConfigError(f"{where} must be a mapping")
        _check_keys(where, q, queue_keys)
        on_max = str(q.get("on_max_wait", "overflow" if q.get("overflow") else "message"))
        if on_max not in _ON_MAX_WAIT:
            raise ConfigError(f"{where}.on_max_wait must be one of {', '.join(_ON_MAX_WAIT)}, not {on_max!r}")
        overflow = q.get("overflow")
        if on_max == "overflow" and not overflow:
            raise ConfigError(f"{where}: on_max_wait is 'overflow' but no 'overflow' queue is named")
        if overflow is not None and str(overflow) not in queues_raw:
            raise ConfigError(f"{where}.overflow names '{overflow}', which is not a queue "
                              f"(queues: {', '.join(map(str, queues_raw))})")
        if overflow is not None and str(overflow) == str(name):
            raise ConfigError(f"{where}.overflow names the queue itself")
        queues.append(QueueSpec(
            name=str(name), skills=_names(f"{where}.skills", q.get("skills", [])),
            max_wait=_seconds(f"{where}.max_wait", q.get("max_wait", 600), upper=86400),
            overflow=str(overflow) if overflow is not None else None, on_max_wait=on_max,
            announce_every=_seconds(f"{where}.announce_every", q.get("announce_every", 45), upper=3600),
            ring_timeout=_seconds(f"{where}.ring_timeout", q.get("ring_timeout", 15), upper=120),
            wrap_up=_seconds(f"{where}.wrap_up", q.get("wrap_up", 10), upper=3600) if q.get("wrap_up", 10) else 0.0,
            music=str(q.get("music", music))))

    agents_raw = sec.get("agents") or []
    if not isinstance(agents_raw, list):
        raise ConfigError("acd.agents must be a list of {id, name, endpoint, skills, center, login}")
    agents, auto, seen = [], set(), set()
    for i, a in enumerate(agents_raw, 1):
        where = f"acd.agents[{i}]"
        if not isinstance(a, dict):
            raise ConfigError(f"{where} must be a mapping with id, name, endpoint")
        _check_keys(where, a, {"id", "name", "endpoint", "skills", "center", "login"})
        agent_id = a.get("id")
        if not isinstance(agent_id, str) or not agent_id:
            raise ConfigError(f"{where}: 'id' is required (text)")
        if agent_id in seen:
            raise ConfigError(f"{where}: agent id '{agent_id}' is used twice")
        seen.add(agent_id)
        endpoint = a.get("endpoint")
        if not isinstance(endpoint, str) or "/" not in endpoint:
            raise ConfigError(f"{where} ({agent_id}): 'endpoint' must be a channel technology and "
                              f"resource, e.g. PJSIP/{agent_id}")
        agents.append(AgentSpec(id=agent_id, name=str(a.get("name", agent_id)), endpoint=endpoint,
                                skills=_names(f"{where}.skills", a.get("skills", [])),
                                center=str(a["center"]) if a.get("center") is not None else None))
        if a.get("login", False) is True:
            auto.add(agent_id)
    return AcdConfig(priorities=tuple(priorities), music=music, queues=tuple(queues),
                     agents=tuple(agents), auto_login=frozenset(auto))


def _names(where: str, value: Any) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of names")
    return frozenset(value)


def _admin(raw: Mapping[str, Any], env: Mapping[str, str], rel) -> AdminConfig:
    sec = _section(raw, "admin")
    _check_keys("admin", sec, {"listen", "token", "token_file"})
    listen = str(env.get("IVR_ADMIN_LISTEN", sec.get("listen", "127.0.0.1:8089")))
    host, _, port = listen.rpartition(":")
    try:
        port_n = int(port)
    except ValueError:
        raise ConfigError(f"admin.listen must be HOST:PORT, not {listen!r}") from None
    token = env.get("IVR_ADMIN_TOKEN") or sec.get("token")
    if not token and sec.get("token_file"):
        tf = rel(str(sec["token_file"]))
        try:
            token = tf.read_text(encoding="utf-8").strip()
        except OSError:
            token = None          # the API stays off; 'ivr run' and 'ivr agents' say so
    return AdminConfig(host=host or "127.0.0.1", port=port_n, token=str(token) if token else None)


def _callers(raw: Mapping[str, Any], env: Mapping[str, str]) -> CallersConfig:
    sec = _section(raw, "callers")
    _check_keys("callers", sec, {"region", "timezone", "lookup_budget", "registry"})
    default = CallersConfig()
    region = str(sec.get("region", default.region)).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"callers.region {sec.get('region')!r} is not a country code phonenumbers knows "
                          "(e.g. KR, US, VN)")
    tz = str(sec.get("timezone", default.timezone))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"callers.timezone {tz!r} is not a time zone name (e.g. Asia/Seoul)") from exc
    budget = _seconds("callers.lookup_budget", sec.get("lookup_budget", default.lookup_budget), upper=10.0)

    registry: RegistryConfig | None = None
    reg = sec.get("registry")
    if reg is not None:
        if not isinstance(reg, dict):
            raise ConfigError("config: 'callers.registry' must be a mapping with url, timeout, token_env")
        _check_keys("callers.registry", reg, {"url", "timeout", "token_env"})
        url = reg.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or "{number}" not in url:
            raise ConfigError("callers.registry.url must be an http(s) URL with {number} in it, "
                              "e.g. https://crm.example/callers/{number}")
        timeout = _seconds("callers.registry.timeout", reg.get("timeout", budget), upper=10.0)
        token: str | None = None
        token_env = reg.get("token_env")
        if token_env is not None:
            if not isinstance(token_env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token_env):
                raise ConfigError("callers.registry.token_env must be the NAME of an environment variable "
                                  "(not the token itself)")
            token = env.get(token_env)
            if not token:
                raise ConfigError(f"callers.registry.token_env names {token_env}, but the environment "
                                  f"variable {token_env} is not set")
        registry = RegistryConfig(url=url, timeout=timeout, token=token)
    return CallersConfig(region=region, timezone=tz, lookup_budget=budget, registry=registry)


_CALLBACK_KEYS = {"endpoint", "owner", "lease", "poll", "max_attempts", "retry_delay", "ring_timeout",
                  "allow_international", "caller_id", "hours", "holidays"}
_HOURS = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")
_CALLER_ID = re.compile(r"\+?[0-9]{3,20}")


def _callbacks(raw: Mapping[str, Any], callers: CallersConfig) -> CallbacksConfig:
    sec = _section(raw, "callbacks")
    _check_keys("callbacks", sec, _CALLBACK_KEYS | {"public_holidays"})
    default = CallbacksConfig()
    owner = sec.get("owner", default.owner)
    if not isinstance(owner, (str, int)) or isinstance(owner, bool) or not str(owner).strip():
        raise ConfigError("callbacks.owner must be a name for this engine instance, e.g. ivr-1")
    international = sec.get("allow_international", False)
    if not isinstance(international, bool):
        raise ConfigError(f"callbacks.allow_international must be true or false, "
                          f"not {international!r}")
    caller_id = sec.get("caller_id")
    if caller_id is not None:
        if isinstance(caller_id, bool) or not isinstance(caller_id, (str, int)) \
                or not _CALLER_ID.fullmatch(str(caller_id).strip()):
            raise ConfigError(f"callbacks.caller_id must be a phone number in digits, e.g. "
                              f"'15771000', not {caller_id!r}")
        caller_id = str(caller_id).strip()
    endpoint = sec.get("endpoint")
    if endpoint is not None:
        endpoint = _callback_endpoint(endpoint)
    attempts = sec.get("max_attempts", default.retry.max_attempts)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise ConfigError(f"callbacks.max_attempts must be a whole number from 1 to 20, "
                          f"not {attempts!r}")
    delay = _seconds("callbacks.retry_delay", sec.get("retry_delay", 600), upper=86400.0)
    tz = ZoneInfo(callers.timezone)
    holidays = _holidays(sec.get("holidays"))
    # The public holidays of callers.region (holidays package) unless turned off.
    from ivr.callbacks.schedule import PublicHolidays

    calendar = sec.get("public_holidays", True)
    if not isinstance(calendar, bool):
        raise ConfigError(f"callbacks.public_holidays must be true (no callbacks on the public "
                          f"holidays of callers.region) or false (only the dates in "
                          f"callbacks.holidays), not {calendar!r}")
    public: PublicHolidays | None = None
    if calendar:
        try:
            public = PublicHolidays(callers.region)
        except ValueError:
            raise ConfigError(f"callbacks.public_holidays: the holidays package has no calendar "
                              f"for callers.region {callers.region}; set public_holidays: false "
                              f"and list the center's holidays in callbacks.holidays") from None
    if "hours" in sec:
        hours = OpeningHours(tz, _weekly_hours(sec["hours"]), holidays, public)
    else:
        hours = OpeningHours.office(tz, holidays, public)
    return CallbacksConfig(
        owner=str(owner).strip(),
        lease=_seconds("callbacks.lease", sec.get("lease", default.lease), upper=3600.0),
        poll=_seconds("callbacks.poll", sec.get("poll", default.poll), upper=300.0),
        ring_timeout=_seconds("callbacks.ring_timeout",
                              sec.get("ring_timeout", default.ring_timeout), upper=300.0),
        allow_international=international, caller_id=caller_id, endpoint=endpoint, hours=hours,
        retry=RetryPolicy(max_attempts=attempts, delay=dt.timedelta(seconds=delay)))


def _callback_endpoint(value: Any) -> str:
    example = "PJSIP/{national}@trunk"
    if not isinstance(value, str) or "/" not in value:
        raise ConfigError(f"callbacks.endpoint must be an Asterisk channel to dial, e.g. {example}, "
                          f"not {value!r}")
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ConfigError(f"callbacks.endpoint {value!r}: {exc}") from None
    if not fields or not fields <= {"national", "e164", "digits"}:
        raise ConfigError(f"callbacks.endpoint {value!r} must say where the number goes with "
                          f"{{national}}, {{e164}} or {{digits}} (and nothing else in braces), "
                          f"e.g. {example}")
    return value


def _weekly_hours(value: Any) -> dict[int, list[tuple[dt.time, dt.time]]]:
    example = '{mon: ["09:00-18:00"], sat: ["09:00-13:00"], sun: []}'
    if not isinstance(value, dict):
        raise ConfigError(f"callbacks.hours must be a mapping of weekday to opening hours, "
                          f"e.g. {example}")
    weekly: dict[int, list[tuple[dt.time, dt.time]]] = {}
    for day, spans in value.items():
        key = str(day).lower()
        if key not in DAY_NAMES:
            raise ConfigError(f"callbacks.hours: {day!r} is not a weekday "
                              f"(use {', '.join(DAY_NAMES)})")
        where = f"callbacks.hours.{key}"
        if spans is None:
            spans = []
        elif isinstance(spans, str):
            spans = [spans]
        if not isinstance(spans, list):
            raise ConfigError(f"{where} must be a list like [\"09:00-18:00\"], not {spans!r}")
        intervals = []
        for span in spans:
            m = _HOURS.fullmatch(span.replace(" ", "")) if isinstance(span, str) else None
            if m is None:
                raise ConfigError(f"{where}: {span!r} is not HH:MM-HH:MM")
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
                raise ConfigError(f"{where}: {span!r} is not a time of day (00:00 to 24:00)")
            start = dt.time(h1, m1)
            end = dt.time.max if h2 == 24 else dt.time(h2, m2)
            if end <= start:
                raise ConfigError(f"{where}: {span!r} does not end after it starts (an interval "
                                  "cannot span midnight: end it at 24:00 and go on the next day)")
            intervals.append((start, end))
        if DAY_NAMES.index(key) in weekly:
            raise ConfigError(f"callbacks.hours names {key} twice")
        weekly[DAY_NAMES.index(key)] = intervals
    try:
        hours = OpeningHours(ZoneInfo("UTC"), weekly)
    except ValueError as exc:
        raise ConfigError(f"callbacks.hours: {exc}") from None
    if not hours.weekly:
        raise ConfigError("callbacks.hours: no day has opening hours, so no callback could "
                          "ever be dialled")
    return weekly


def _holidays(value: Any) -> frozenset[dt.date]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ConfigError("callbacks.holidays must be a list of dates, e.g. [2025-01-01, 2025-03-01]")
    days = set()
    for item in value:
        if isinstance(item, dt.datetime):
            raise ConfigError(f"callbacks.holidays: {item!r} is not a date (YYYY-MM-DD)")
        if isinstance(item, dt.date):
            days.add(item)
            continue
        try:
            days.add(dt.date.fromisoformat(str(item).strip()))
        except ValueError:
            raise ConfigError(f"callbacks.holidays: {item!r} is not a date (YYYY-MM-DD)") from None
    return frozenset(days)


def _seconds(name: str, value: Any, *, upper: float) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}") from None
    if not 0 < seconds <= upper:
        raise ConfigError(f"{name} must be more than 0 and at most {upper:g} seconds, not {value!r}")
    return seconds
