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
* ``registry_cache`` (``10000``) — how many numbers' registry answers the engine keeps in
  memory, "not registered" included (the least recently asked go first; ``0``: none, every
  call asks the store).  An import (``ivr callers import``, from any process) is seen within
  5 seconds: a call that starts later is answered from the new registry.  Not used with
  ``registry`` (the HTTP system is asked on every call);
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
* ``public_holidays`` (``true``) — also no callbacks on the public holidays of
  ``callers.region`` (the ``holidays`` package: for Korea Seollal, Chuseok and substitute
  holidays included); ``false``: only the dates in ``holidays``.

``wellness:`` — wellness calls (``ivr.wellness``): ``campaigns``, a list of campaigns, each
``{name, days: [tue, fri], hours: ["10:00-17:00"], attempts_per_day: 3, retry_delay: 1800,
max_concurrent: 2, failed_days_to_visit: 3, queue: wellness, priority: elderly, holidays: [..],
surge: {queue: general, pause_over: 120, resume_under: 60}}``.  Only ``name``, ``days`` and
``hours`` are required.  ``hours`` are local times in ``callers.timezone`` on each of ``days``;
no calls on ``callbacks.holidays``, on the campaign's own ``holidays`` and (unless
``callbacks.public_holidays: false``) on public holidays.  ``retry_delay``: seconds from one
attempt's start to the next on a day; ``max_concurrent``: the campaign's calls in progress at
once; ``failed_days_to_visit``: failed days in a row that put a person on the home-visit list.
``queue`` (``wellness``) and ``priority`` (default: the first of ``acd.priorities``) are where
"press 2" goes; with ``acd.queues`` set, the queue must be one of them.  ``surge``: no new
wellness call while ``queue``'s estimated wait is ``pause_over`` seconds or more, until it is
below ``resume_under``.

``admin:`` — the operator API (``ivr agents …`` talks to it): ``listen`` (``127.0.0.1:8089``),
``token`` / ``token_file`` / ``IVR_ADMIN_TOKEN`` (a bearer token; without one the API is off),
``users_file`` (the wallboard's users, ``ivr users add``; without it the wallboard is off) and
``session_hours`` (``12``: a wallboard session ends this long after its log-in).

``wallboard:`` — the live figures (``ivr.stats.live``) and the wallboard's colours; every key is
optional:

* ``service_level`` (``20``) — seconds: a caller answered (or, by the second formula, gone)
  within them counts for the service level; also a bucket of ``ivr_queue_answer_wait_seconds``;
* ``service_level_formula`` (``answered``) — ``answered``: answered within the threshold over
  answered (Asterisk's ServicelevelPerf); ``answered_and_abandoned``: answered or abandoned
  within it over answered and abandoned (ServicelevelPerf2);
* ``flash_after`` (``120``) — seconds a caller waits before the wallboard flashes the caller;
* ``refresh`` (``5``) — seconds between two reads of the callback reservations' counts;
* ``list_rows`` (``50``, 1 to 1,000) — callers the waiting list sends: the first this many in
  line, then up to as many of those behind them who wait longer than ``flash_after``, the
  longest first (the count is of everyone);
* ``levels`` — when a figure turns ``warn`` and ``alert``: ``longest_wait: {warn: 60, alert:
  180}`` (seconds), ``service_level: {warn: 0.8, alert: 0.6}`` and ``abandon_rate: {warn: 0.05,
  alert: 0.1}`` (shares from 0 to 1).

The file is read as the flow files are (``ivr.flow.yamlsafe``): only ``true``/``false`` are
booleans (``yes``/``no`` stay text), a number with a leading zero stays text (``015771000``),
dates are text, a key appears once per mapping, and aliases may expand to at most
``MAX_VALUES`` values (a "billion laughs" file is refused, not expanded).  Every value is
checked for its kind and range: a number is never NaN, infinite, a boolean or negative (``0``
only where it means "none"), text is never ``null``.  A mistake is a ``ConfigError`` that names
the place and the key: ``ivr.yaml:17: engine.max_calls must be a whole number from 1 to
1000000, not -5``.  A number may also be written as text (``'30'``, what ``${NAME}`` gives).

Environment: every scalar setting can be set from the environment as ``IVR_<SECTION>_<KEY>``
(``IVR_ENGINE_MAX_CALLS=100``, ``IVR_CALLBACKS_OWNER=engine-b``,
``IVR_CALLERS_REGISTRY_TIMEOUT=0.8``; ``IVR_FLOWS`` and ``IVR_PROMPTS`` for the top-level
keys), which wins over the file.  Values are read as YAML scalars (``100``, ``0.5``, ``true``)
and checked like the file's, except text settings (passwords, tokens, names, URLs), which are
taken exactly as written; ``IVR_FLOWS`` is a list of paths separated by ``os.pathsep``.  An
empty variable counts as unset.  Lists and per-queue or per-agent entries (``acd.queues``,
``acd.agents``, ``acd.priorities``, ``callbacks.hours``, ``callbacks.holidays``,
``wellness.campaigns``) come from the file only.  ``environment_variables()`` lists every
name.  ``${NAME}`` inside a value of the file is replaced by the environment variable NAME.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import math
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
from ivr.errors import ConfigError, FlowError
from ivr.flow.yamlsafe import YList, YMap, load_yaml
from ivr.wellness.model import Campaign, Surge

ENV_PREFIX = "IVR_"
_ENV_REF = re.compile(r"\$\{([A-Z0-9_]+)\}")


@dataclasses.dataclass(frozen=True, slots=True)
class AriConfig:
    url: str
    username: str
    password: str = dataclasses.field(repr=False)   # never printed
    app: str = "ivr"
    # http: every request over HTTP (the default); socket: over the event socket and sockets of
    # their own when Asterisk answers them there (20.14, 21.9, 22.4 and later), else HTTP.
    requests: str = "http"


@dataclasses.dataclass(frozen=True, slots=True)
class SwitchConfig:
    """One media server (``switches:``): its ARI connection, its center, and ``trunk``: the
    endpoint the other servers dial it through (``PJSIP/<agent>@<trunk>``)."""

    name: str
    ari: AriConfig
    center: str | None = None
    trunk: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LogConfig:
    format: str = "console"   # console | json
    level: str = "info"


GC_YOUNG = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class EngineConfig:
    max_calls: int = 5000          # calls beyond this hear a busy prompt and are released
    max_loop_lag: float = 0.1      # seconds; while the event loop lags more, new calls are shed
    shutdown_grace: float = 30.0   # seconds calls in progress get to finish on shutdown
    reload_interval: float = 2.0   # seconds between looks at the flow files (0: only on SIGHUP)
    lease_ttl: float = 3.0         # seconds the active engine's lease lasts unrenewed (PostgreSQL)
    busy_prompt: str = "system_busy"
    default_language: str = "ko"
    event_loop: str = "asyncio"    # asyncio | uvloop (the ``fast`` extra): the loop ``ivr run`` runs on
    # Objects allocated between two young garbage collections (Python's own default is 700):
    # fewer collections promote fewer of a live call's objects, so full collections, which walk
    # every live call, come seldom (bench/engine_load.py --gc-young 700,10000).
    gc_young: int = GC_YOUNG


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
    registry_cache: int = 10_000               # numbers whose answers are kept; 0: no cache


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
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)


@dataclasses.dataclass(frozen=True, slots=True)
class WellnessConfig:
    """``wellness:``: the wellness campaigns (``ivr.wellness.model.Campaign``), in file order."""

    campaigns: tuple[Campaign, ...] = ()
    ring_timeout: float = 40.0         # seconds a person's phone rings (they answer slowly)
    poll: float = 5.0                  # seconds between two looks at the campaigns at most
    lease: float = 60.0                # seconds an attempt's claim lasts unrenewed (an engine died)
    history_days: int = 90             # days of attempts the dialler reads to decide

    def campaign(self, name: str) -> Campaign:
        """The campaign called ``name``; ``KeyError`` when there is none."""
        for campaign in self.campaigns:
            if campaign.name == name:
                return campaign
        raise KeyError(name)


@dataclasses.dataclass(frozen=True, slots=True)
class VideoChoice:
    """One large button of the video page: an id (a call variable's value) and its label in
    each of the page's languages (``ko``, ``en``, ``zh``, ``vi``)."""

    id: str
    labels: Mapping[str, str]

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels.get("en") or self.id


VIDEO_LANGUAGES = ("ko", "en", "zh", "vi")
DEFAULT_TOPICS = (
    VideoChoice("premiums", {"ko": "보험료", "en": "Premiums", "zh": "保险费", "vi": "Phí bảo hiểm"}),
    VideoChoice("benefits", {"ko": "급여·진료비", "en": "Benefits and medical costs",
                             "zh": "医疗费用与待遇", "vi": "Quyền lợi và chi phí khám chữa bệnh"}),
    VideoChoice("certificates", {"ko": "증명서 발급", "en": "Certificates", "zh": "证明书",
                                 "vi": "Giấy chứng nhận"}),
    VideoChoice("checkups", {"ko": "건강검진", "en": "Health check-ups", "zh": "健康体检",
                             "vi": "Khám sức khỏe"}),
    VideoChoice("other", {"ko": "기타 문의", "en": "Something else", "zh": "其他问题", "vi": "Việc khác"}),
)
DEFAULT_SIGN_LANGUAGES = (
    VideoChoice("ksl", {"ko": "한국수어", "en": "Korean Sign Language", "zh": "韩国手语",
                        "vi": "Ngôn ngữ ký hiệu Hàn Quốc"}),
    VideoChoice("is", {"ko": "국제수어", "en": "International Sign", "zh": "国际手语",
                       "vi": "Ngôn ngữ ký hiệu quốc tế"}),
    VideoChoice("asl", {"ko": "미국수어", "en": "American Sign Language", "zh": "美国手语",
                        "vi": "Ngôn ngữ ký hiệu Mỹ"}),
)


@dataclasses.dataclass(frozen=True, slots=True)
class VideoConfig:
    """``video:`` (``ivr.video``): the sign-language video entrance.  Off unless ``enabled``.

    ``number`` is what the page dials and what a video phone dials (a flow answers it);
    ``websocket`` the address browsers reach Asterisk's SIP-over-WebSocket at; the page's
    calls authenticate as the one ``guest_user`` endpoint, and a call is only served when it
    carries a visit made by the page (``X-IVR-Visit``).  Interpreters' SIP passwords are read
    from ``agent_passwords_file`` (``name password`` lines) and given to their page after
    they log in.  Bookings: slots of ``slot_minutes`` in ``hours``, ``per_slot`` bookings
    each, up to ``days_ahead`` days ahead; the page offers them when the expected wait is
    over ``offer_above`` seconds; a booked caller is served ahead of the line from ``early``
    seconds before the slot to its end."""

    enabled: bool = False
    number: str = "15771900"
    queue: str = "sign_language"
    websocket: str = "wss://127.0.0.1:8443/ws"
    sip_domain: str = "127.0.0.1"
    guest_user: str = "video-guest"
    guest_password: str | None = dataclasses.field(default=None, repr=False)
    agent_passwords_file: Path | None = None
    ice_servers: tuple[str, ...] = ()
    topics: tuple[VideoChoice, ...] = DEFAULT_TOPICS
    sign_languages: tuple[VideoChoice, ...] = DEFAULT_SIGN_LANGUAGES
    slot_minutes: int = 30
    per_slot: int = 2
    days_ahead: int = 7
    offer_above: float = 300.0
    early: float = 600.0
    hours: OpeningHours = dataclasses.field(default_factory=OpeningHours.office)
    max_visits: int = 500

    def topic(self, choice: str) -> VideoChoice | None:
        return next((c for c in self.topics if c.id == choice), None)

    def sign_language(self, choice: str) -> VideoChoice | None:
        return next((c for c in self.sign_languages if c.id == choice), None)


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    ari: AriConfig
    flows: tuple[Path, ...]
    prompts: Path
    store_url: str = dataclasses.field(repr=False)      # a PostgreSQL URL holds a password
    log: LogConfig
    engine: EngineConfig
    source: Path | None = None
    callers: CallersConfig = CallersConfig()
    acd: AcdConfig = dataclasses.field(default_factory=lambda: AcdConfig())
    admin: AdminConfig = dataclasses.field(default_factory=lambda: AdminConfig())
    callbacks: CallbacksConfig = dataclasses.field(default_factory=lambda: CallbacksConfig())
    wallboard: WallboardConfig = dataclasses.field(default_factory=lambda: WallboardConfig())
    wellness: WellnessConfig = WellnessConfig()
    video: VideoConfig = dataclasses.field(default_factory=lambda: VideoConfig())
    switches: tuple[SwitchConfig, ...] = ()      # the media servers; () before _build fills it

    def __post_init__(self) -> None:
        if not self.switches:
            object.__setattr__(self, "switches", (SwitchConfig(name="asterisk", ari=self.ari),))


@dataclasses.dataclass(frozen=True, slots=True)
class AcdConfig:
    priorities: tuple[str, ...] = ("elderly", "repeat", "normal")
    music: str = "default"
    queues: tuple[Any, ...] = ()          # ivr.acd.model.QueueSpec
    agents: tuple[Any, ...] = ()          # ivr.acd.model.AgentSpec
    auto_login: frozenset[str] = frozenset()
    centers: Any = None                   # ivr.acd.model.CenterRouting; None: one pool


@dataclasses.dataclass(frozen=True, slots=True)
class AdminConfig:
    host: str = "127.0.0.1"
    port: int = 8089
    token: str | None = dataclasses.field(default=None, repr=False)   # None: the API is off
    users_file: Path | None = None      # the wallboard's users (ivr.web.auth); None: wallboard off
    session_hours: float = 12.0         # a wallboard session ends this long after its log-in


SERVICE_LEVEL_FORMULAS = ("answered", "answered_and_abandoned")


@dataclasses.dataclass(frozen=True, slots=True)
class Levels:
    """When a wallboard figure turns ``warn`` and ``alert``: at or past ``warn``/``alert``,
    above them for figures where more is worse, below them where less is worse."""

    warn: float
    alert: float


@dataclasses.dataclass(frozen=True, slots=True)
class WallboardConfig:
    """``wallboard:`` (``ivr.stats.live``): the service level's threshold in seconds and its
    formula (``answered``: Asterisk's ServicelevelPerf, ``answered_and_abandoned``: its
    ServicelevelPerf2), when a waiting caller flashes, each figure's colour levels, the
    seconds between two reads of the reservation counts, and how many waiting callers a
    snapshot lists."""

    service_level: float = 20.0
    service_level_formula: str = "answered"
    flash_after: float = 120.0
    refresh: float = 5.0
    list_rows: int = 50
    longest_wait: Levels = Levels(warn=60.0, alert=180.0)        # seconds; more is worse
    service_level_levels: Levels = Levels(warn=0.8, alert=0.6)   # a share; less is worse
    abandon_rate: Levels = Levels(warn=0.05, alert=0.10)         # a share; more is worse


class _SettingError(ConfigError):
    """A setting's value is wrong; ``key`` (``engine.max_calls``, ``acd.agents[2].endpoint``)
    lets ``load_config`` say where it was given: ``ivr.yaml:17:`` or ``IVR_ENGINE_MAX_CALLS:``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _expand_text(value: str) -> str:
    """Replace ``${NAME}`` by the environment variable NAME (error when unset)."""
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ConfigError(f"config refers to ${{{name}}}, but the environment variable {name} is not set")
        return os.environ[name]
    return _ENV_REF.sub(repl, value)


def _expand(value: Any) -> Any:
    """``_expand_text`` on every string in ``value``, in place (lists and mappings keep their
    lines); at most ``MAX_VALUES`` values, as the YAML reader allows, and no recursion."""
    if isinstance(value, str):
        return _expand_text(value)
    stack = [value]
    while stack:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) \
            if isinstance(node, list) else []
        for key, item in items:
            if isinstance(item, str):
                node[key] = _expand_text(item)
            elif isinstance(item, (dict, list)):
                stack.append(item)
    return value


def _section(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _SettingError(name, f"config: '{name}' must be a mapping, not {_shown(value)}")
    return dict(value)


def _check_keys(section: str, given: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(map(str, given)) - known)
    if unknown:
        raise _SettingError(section, f"config: unknown key(s) in '{section}': {', '.join(unknown)} "
                                     f"(known: {', '.join(sorted(known))})")


# -- values: kinds and ranges ----------------------------------------------------------------------

_NUMBER_TEXT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_WHOLE_TEXT = re.compile(r"[-+]?[0-9]+")


def _shown(value: Any) -> str:
    """A value as a message shows it: short, and containers by their kind."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _real(value: Any) -> int | float | None:
    """An int or a finite float from a number or a number written as text; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if _WHOLE_TEXT.fullmatch(text) and len(text) <= 30:
            return int(text)
        if not _NUMBER_TEXT.fullmatch(text) or len(text) > 60:
            return None
        value = float(text)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, (int, float)) else None


def _caller_id(name: str, value: Any) -> str | None:
    """The number a called person sees (digits), or None (what the trunk presents)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) \
            or not _CALLER_ID.fullmatch(str(value).strip()):
        raise _SettingError(name, f"{name} must be a phone number in digits, e.g. '15771000', "
                                  f"not {_shown(value)}")
    return str(value).strip()


def _seconds(name: str, value: Any, *, upper: float, zero: bool = False) -> float:
    """A number of seconds, more than 0 (or 0 too with ``zero``) and at most ``upper``."""
    bounds = f"from 0 to {upper:g}" if zero else f"more than 0 and at most {upper:g}"
    number = _real(value)
    if number is None:
        raise _SettingError(name, f"{name} must be a number of seconds ({bounds}), not {_shown(value)}")
    if not (0 <= number if zero else 0 < number) or number > upper:
        raise _SettingError(name, f"{name} must be {bounds} seconds, not {_shown(value)}")
    return float(number)


def _whole(name: str, value: Any, *, lower: int, upper: int) -> int:
    number = _real(value)
    if not isinstance(number, int) or not lower <= number <= upper:
        raise _SettingError(name, f"{name} must be a whole number from {lower} to {upper}, "
                                  f"not {_shown(value)}")
    return number


def _flag(name: str, value: Any, meaning: str = "") -> bool:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise _SettingError(name, f"{name} must be true or false{meaning}, not {_shown(value)}")
    return value


def _text(name: str, value: Any, *, example: str, pattern: re.Pattern[str] | None = None,
          what: str = "text") -> str:
    """Text (a number is taken as its digits); not empty, and matching ``pattern`` when given."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or (
            pattern is not None and not pattern.fullmatch(value.strip())):
        raise _SettingError(name, f"{name} must be {what}, e.g. {example}, not {_shown(value)}")
    return value.strip()


_URL = re.compile(r"https?://[^\s/]+\S*")
_TOKEN = re.compile(r"[\x21-\x7e]{1,1000}")        # what an HTTP header carries as it is
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")     # one line, no control characters
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


# -- the environment ------------------------------------------------------------------------------

_ARI_KEYS = {"url", "username", "password", "password_file", "app", "requests"}
_ADMIN_KEYS = {"listen", "token", "token_file", "users_file", "session_hours"}
_WALLBOARD_KEYS = {"service_level", "service_level_formula", "flash_after", "refresh", "list_rows",
                   "levels"}
_CALLERS_KEYS = {"region", "timezone", "lookup_budget", "registry", "registry_cache"}
_REGISTRY_KEYS = {"url", "timeout", "token_env"}
_VIDEO_SCALARS = {"enabled", "number", "queue", "websocket", "sip_domain", "guest_user", "guest_password",
                  "guest_password_file", "agent_passwords_file", "slot_minutes", "per_slot", "days_ahead",
                  "offer_above", "early", "max_visits"}
_VIDEO_KEYS = _VIDEO_SCALARS | {"ice_servers", "topics", "sign_languages", "hours", "holidays"}
# Settings whose environment value is taken exactly as written (not read as a YAML scalar).
_TEXT_SETTINGS = frozenset({
    "flows", "prompts", "ari.url", "ari.username", "ari.password", "ari.password_file", "ari.app",
    "store.url", "log.format", "log.level", "engine.busy_prompt", "engine.default_language",
    "engine.event_loop",
    "callers.region", "callers.timezone", "callers.registry.url", "callers.registry.token_env",
    "acd.music", "callbacks.owner", "callbacks.endpoint", "callbacks.caller_id",
    "admin.listen", "admin.token", "admin.token_file", "admin.users_file",
    "video.number", "video.queue", "video.websocket", "video.sip_domain", "video.guest_user",
    "video.guest_password", "video.guest_password_file", "video.agent_passwords_file"})


def _env_settings() -> dict[tuple[str, ...], set[str]]:
    """Section path → its scalar keys, each settable as ``IVR_<SECTION>_<KEY>``."""
    return {
        (): {"flows", "prompts"},
        ("ari",): _ARI_KEYS,
        ("store",): {"url"},
        ("log",): {"format", "level"},
        ("engine",): {f.name for f in dataclasses.fields(EngineConfig)},
        ("callers",): _CALLERS_KEYS - {"registry"},
        ("callers", "registry"): _REGISTRY_KEYS,
        ("acd",): {"music"},
        ("acd", "centers"): {"spill_after", "spill_margin"},
        ("callbacks",): _CALLBACK_KEYS - _CALLBACK_LISTS,
        ("admin",): _ADMIN_KEYS,
        ("wallboard",): _WALLBOARD_KEYS - {"levels"},
        ("video",): _VIDEO_SCALARS,
    }


def environment_variables() -> dict[str, str]:
    """Every environment variable that sets a setting: ``IVR_ENGINE_MAX_CALLS`` → ``engine.max_calls``."""
    return {ENV_PREFIX + "_".join((*path, key)).upper(): ".".join((*path, key))
            for path, keys in _env_settings().items() for key in sorted(keys)}


def _env_value(dotted: str, text: str) -> Any:
    if dotted == "flows":
        return [p for p in text.split(os.pathsep) if p]
    if dotted in _TEXT_SETTINGS:
        return text
    try:
        value = load_yaml(text, "environment")
    except (FlowError, yaml.YAMLError, RecursionError):
        return text
    return text if isinstance(value, (dict, list)) else value


def _apply_environment(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Put ``IVR_<SECTION>_<KEY>`` values into ``raw``; answers {dotted key: variable}."""
    given: dict[str, str] = {}
    for var, dotted in environment_variables().items():
        text = env.get(var)
        if not text:
            continue
        *path, key = dotted.split(".")
        target: Any = raw
        for part in path:
            if target.get(part) is None:
                target[part] = {}
            target = target[part]
            if not isinstance(target, dict):
                break                   # the file's section is not a mapping: said below
        else:
            target[key] = _env_value(dotted, text)
            given[dotted] = var
    return given


def _line_of(raw: Any, key: str) -> int | None:
    """The line in the file of the value at ``key`` (``acd.queues.q.max_wait``,
    ``acd.agents[2].id``), or of the deepest part of it that is in the file."""
    parts = [p for p in re.split(r"\.|(?=\[)", key) if p]
    node, line = raw, None
    while parts and isinstance(node, (YMap, YList)):
        if isinstance(node, YList):
            m = re.fullmatch(r"\[(\d+)\]", parts[0])
            index = int(m.group(1)) - 1 if m else -1
            if not 0 <= index < len(node):
                break
            line, node, parts = node.item_line(index), node[index], parts[1:]
            continue
        for n in range(len(parts), 0, -1):       # a queue's name may hold a dot
            name = ".".join(parts[:n])
            if name in node:
                line, node, parts = node.value_line(name), node[name], parts[n:]
                break
        else:
            break
    return line


MAX_CONFIG_BYTES = 8 * 2**20     # ivr.yaml; a center with thousands of agents needs well under 1 MiB
MAX_SECRET_BYTES = 4096          # a password or token file


def _read_bounded(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file; ValueError for anything else (a device, a pipe,
    a folder or a larger file is never read: it might never end)."""
    if not path.is_file():
        raise ValueError("it is not a regular file" if path.exists() else "it does not exist")
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"it is too large (more than {limit} bytes)")
    return data


def _read_file(cfg_path: Path) -> Any:
    name = str(cfg_path)
    try:
        data = _read_bounded(cfg_path, MAX_CONFIG_BYTES)
    except OSError as exc:
        raise ConfigError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ConfigError(f"{name}: cannot be read: {exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{name}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                          "save the file as UTF-8") from None
    try:
        return load_yaml(text, name)
    except FlowError as exc:
        problems = [f"{p.file}:{p.line}: not valid YAML: "
                    f"{_clip(p.message.removeprefix('YAML syntax: ').removeprefix('YAML: '))}"
                    for p in exc.problems]
        raise ConfigError("\n".join(problems)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{name}: not valid YAML: lists and mappings are nested too deeply") from None


def load_config(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None, *, need_ari: bool = True) -> Config:
    """Read the config file (``path``, else ``$IVR_CONFIG``, else ``./ivr.yaml``) and the environment.

    ``need_ari=False`` is for commands that never talk to Asterisk (``calls list``, ``callers``):
    the ARI credentials may then be missing or unreadable (the password is left empty).
    Raises ``ConfigError`` and nothing else, whatever the file holds.
    """
    env = os.environ if env is None else env
    if path is None:
        path = env.get("IVR_CONFIG", "ivr.yaml")
    cfg_path = Path(path)
    raw: dict[str, Any] = YMap(1)
    source: Path | None = None
    if cfg_path.exists():
        loaded = _read_file(cfg_path)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{cfg_path}:1: the top level must be a mapping (key: value lines)")
        raw = loaded if loaded is not None else raw
        ari_raw = raw.get("ari")
        for key, value in raw.items():
            if key == "ari" and isinstance(ari_raw, dict):
                continue
            raw[key] = _expand(value)
        if isinstance(ari_raw, dict):
            for key, value in list(ari_raw.items()):
                try:
                    ari_raw[key] = _expand(value)
                except ConfigError:
                    if need_ari or key not in ("password", "password_file"):
                        raise
                    del ari_raw[key]
        source = cfg_path.resolve()
    elif env.get("IVR_CONFIG") or path != "ivr.yaml":
        raise ConfigError(f"config file {cfg_path} does not exist")
    given = _apply_environment(raw, env)
    try:
        return _build(raw, env, source, need_ari=need_ari)
    except _SettingError as exc:
        var = next((v for k, v in given.items() if exc.key == k or exc.key.startswith((k + ".", k + "["))),
                   None)
        line = _line_of(raw, exc.key) if var is None else None
        where = var if var else f"{cfg_path}:{line}" if line else str(cfg_path) if source else "config"
        raise ConfigError(f"{where}: {str(exc).removeprefix('config: ')}") from exc


def _build(raw: dict[str, Any], env: Mapping[str, str], source: Path | None, *,
           need_ari: bool) -> Config:
    _check_keys("top level", raw, {"ari", "switches", "flows", "prompts", "store", "log", "engine",
                                   "callers", "acd", "admin", "callbacks", "wallboard", "wellness",
                                   "video"})
    base = source.parent if source else Path.cwd()

    def rel(p: str, key: str) -> Path:
        try:
            q = Path(p).expanduser()
        except RuntimeError:                        # ~name of a user that does not exist
            user = p[1:].split("/", 1)[0]
            raise _SettingError(key, f"{key} {p!r} starts with ~{user}, but there is no such user "
                                     "(no home folder to put in its place)") from None
        return q if q.is_absolute() else (base / q)

    # With switches: the ari section only gives their defaults (user, password, app).
    ari_config = _ari(_section(raw, "ari"), "ari", rel,
                      need_ari=need_ari and raw.get("switches") is None)
    switches = _switches(raw.get("switches"), ari_config, _section(raw, "ari"), rel, need_ari=need_ari)

    flows_raw = raw.get("flows", "flows")
    if isinstance(flows_raw, str):
        flows_raw = [flows_raw]
    if not isinstance(flows_raw, list) or not flows_raw:
        raise _SettingError("flows", "config: 'flows' must be a path or a list of paths, "
                                     f"not {_shown(flows_raw)}")
    flow_keys = [f"flows[{i}]" if len(flows_raw) > 1 else "flows" for i in range(1, len(flows_raw) + 1)]
    flows = tuple(rel(_text(key, p, pattern=_NAME, what="a path", example="flows"), key)
                  for key, p in zip(flow_keys, flows_raw, strict=True))
    prompts = rel(_text("prompts", raw.get("prompts", "prompts"), pattern=_NAME, what="a path",
                        example="prompts"), "prompts")

    store = _section(raw, "store")
    _check_keys("store", store, {"url"})
    store_url = _text("store.url", store.get("url", "sqlite:///var/ivr.db"),
                      pattern=re.compile(r"(?:sqlite|postgresql|postgres)://\S+"),
                      what="sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
                      example="sqlite:///var/ivr.db")
    if store_url.startswith("sqlite:///") and not store_url.startswith("sqlite:////"):
        # sqlite:///relative/path → relative to the config folder
        store_url = "sqlite:///" + str(rel(store_url[len("sqlite:///"):], "store.url"))

    log = _section(raw, "log")
    _check_keys("log", log, {"format", "level"})
    log_format = log.get("format", "console")
    if log_format not in ("console", "json"):
        raise _SettingError("log.format", f"log.format must be 'console' or 'json', not {_shown(log_format)}")
    level = log.get("level", "info")
    if not isinstance(level, str) or level.strip().lower() not in _LOG_LEVELS:
        raise _SettingError("log.level", f"log.level must be one of {', '.join(_LOG_LEVELS)}, "
                                         f"not {_shown(level)}")

    callers = _callers(raw, env)
    acd = _acd(raw)
    callbacks = _callbacks(raw, callers)
    centers = {sw.center for sw in switches if sw.center}
    if centers:
        for i, agent in enumerate(acd.agents, 1):
            if agent.center is not None and agent.center not in centers:
                raise _SettingError(f"acd.agents[{i}].center",
                                    f"acd.agents[{i}] ({agent.id}): center '{agent.center}' has no "
                                    f"server in switches (centers: {', '.join(sorted(centers))})")
    return Config(
        ari=switches[0].ari,
        switches=switches,
        flows=flows,
        prompts=prompts,
        store_url=store_url,
        log=LogConfig(format=log_format, level=level.strip().lower()),
        engine=_engine(raw),
        source=source,
        callers=callers,
        acd=acd,
        admin=_admin(raw, rel),
        callbacks=callbacks,
        wallboard=_wallboard(raw),
        wellness=_wellness(raw, callers, acd, callbacks),
        video=_video(raw, rel, callers, acd, callbacks),
    )


def _ari(ari: Mapping[str, Any], where: str, rel, *, need_ari: bool) -> AriConfig:
    """An ARI connection's settings (``ari:``, or one of ``switches:``)."""
    _check_keys(where, ari, _ARI_KEYS | ({"name", "center", "trunk"} if where != "ari" else set()))
    url = _text(f"{where}.url", ari.get("url", "http://127.0.0.1:8088/ari"), pattern=_URL,
                what="the http(s) URL of Asterisk's REST interface", example="http://127.0.0.1:8088/ari")
    app = _text(f"{where}.app", ari.get("app", "ivr"), pattern=re.compile(r"[A-Za-z0-9_.\-]{1,80}"),
                what="the Stasis application's name (letters, digits, _ . -)", example="ivr")
    username = ari.get("username")
    if username is not None or need_ari:
        if username is None:
            raise _SettingError(f"{where}.username", f"{where}.username is not set (config "
                                                     f"'{where}.username' or IVR_ARI_USERNAME)")
        username = _text(f"{where}.username", username, pattern=_NAME, example="ivr")
    password = ari.get("password")
    if password == "":
        password = None                 # e.g. '${IVR_ARI_PASSWORD}' with the variable empty
    if password is not None:
        password = _text(f"{where}.password", password, pattern=_NAME, what="text on one line",
                         example="'${IVR_ARI_PASSWORD}'")
    password_file = ari.get("password_file")
    if not password and password_file is not None and need_ari:
        pf = rel(_text(f"{where}.password_file", password_file, pattern=_NAME, what="a path",
                       example=".sandbox/ari-password"), f"{where}.password_file")
        try:
            password = _read_bounded(pf, MAX_SECRET_BYTES).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text" \
                if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise _SettingError(f"{where}.password_file",
                                f"{where}.password_file {pf} cannot be read ({why}); "
                                "run 'ivr sandbox up' to create the sandbox credentials, "
                                "or set IVR_ARI_PASSWORD") from exc
        if not _NAME.fullmatch(password):
            raise _SettingError(f"{where}.password_file",
                                f"{where}.password_file {pf} must hold the password on one line")
    if not password and need_ari:
        raise ConfigError(f"no ARI password: set {where}.password, {where}.password_file"
                          + (" or IVR_ARI_PASSWORD" if where == "ari" else
                             " (e.g. password: '${IVR_SEOUL_ARI_PASSWORD}')"))

    requests = ari.get("requests", "http")
    if requests not in ("http", "socket"):
        raise _SettingError(f"{where}.requests",
                            f"{where}.requests is {requests!r}: use 'http' (the default) or "
                            f"'socket' (over the event socket when Asterisk answers there, "
                            f"else HTTP)")
    return AriConfig(url=url.rstrip("/"), username=username or "", password=password or "", app=app,
                     requests=requests)


def _switches(value: Any, ari: AriConfig, ari_raw: Mapping[str, Any], rel, *,
              need_ari: bool) -> tuple[SwitchConfig, ...]:
    """``switches:``: the media servers, each with its ARI connection (the keys of ``ari:``,
    whose values are the defaults) and its center.  Absent: the one server of ``ari:``."""
    if value is None:
        return (SwitchConfig(name="asterisk", ari=ari),)
    if not isinstance(value, list) or not value:
        raise _SettingError("switches", "switches must be a list of media servers, each "
                                        "{name, center, url, username, password_file, app}")
    out: list[SwitchConfig] = []
    names: set[str] = set()
    urls: set[str] = set()
    for i, item in enumerate(value, 1):
        where = f"switches[{i}]"
        if not isinstance(item, dict):
            raise _SettingError(where, f"{where} must be a mapping with name, center and url")
        name = _text(f"{where}.name", item.get("name"), pattern=re.compile(r"[a-z0-9][a-z0-9_\-]{0,39}"),
                     what="a server's name (lower-case letters, digits, - _)", example="seoul-1")
        if name in names:
            raise _SettingError(f"{where}.name", f"{where}: the name '{name}' is used twice")
        names.add(name)
        # The ari section's user, password (or password file) and app are the defaults.
        merged = {k: v for k, v in ari_raw.items() if k in ("username", "password", "password_file", "app")}
        if "password" in item or "password_file" in item:
            merged.pop("password", None)
            merged.pop("password_file", None)
        merged.update(item)
        if "url" not in item:
            raise _SettingError(where, f"{where} ({name}): 'url' is required "
                                       "(e.g. http://10.1.0.5:8088/ari)")
        conn = _ari(merged, where, rel, need_ari=need_ari)
        if conn.url in urls:
            raise _SettingError(f"{where}.url", f"{where} ({name}): {conn.url} is given twice")
        urls.add(conn.url)
        center = item.get("center")
        center = None if center is None else _text(f"{where}.center", center, pattern=_NAME,
                                                   example="seoul")
        trunk = _text(f"{where}.trunk", item.get("trunk", f"to-{name}"),
                      pattern=re.compile(r"[A-Za-z0-9_.\-]{1,80}"),
                      what="the PJSIP endpoint other servers reach this one by", example=f"to-{name}")
        out.append(SwitchConfig(name=name, ari=conn, center=center, trunk=trunk))
    return tuple(out)


def _engine(raw: Mapping[str, Any]) -> EngineConfig:
    eng = _section(raw, "engine")
    default = EngineConfig()
    _check_keys("engine", eng, {f.name for f in dataclasses.fields(EngineConfig)})
    return EngineConfig(
        max_calls=_whole("engine.max_calls", eng.get("max_calls", default.max_calls),
                         lower=1, upper=1_000_000),
        max_loop_lag=_seconds("engine.max_loop_lag", eng.get("max_loop_lag", default.max_loop_lag),
                              upper=60.0),
        shutdown_grace=_seconds("engine.shutdown_grace",
                                eng.get("shutdown_grace", default.shutdown_grace), upper=3600.0, zero=True),
        reload_interval=_seconds("engine.reload_interval",
                                 eng.get("reload_interval", default.reload_interval), upper=3600.0, zero=True),
        lease_ttl=_seconds("engine.lease_ttl", eng.get("lease_ttl", default.lease_ttl), upper=600.0),
        busy_prompt=_text("engine.busy_prompt", eng.get("busy_prompt", default.busy_prompt),
                          pattern=re.compile(r"[A-Za-z0-9_.\-]{1,100}"), what="a prompt id",
                          example="system_busy"),
        default_language=_text("engine.default_language",
                               eng.get("default_language", default.default_language),
                               pattern=re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})?"),
                               what="a language code", example="ko"),
        event_loop=_event_loop(eng.get("event_loop", default.event_loop)),
        gc_young=_whole("engine.gc_young", eng.get("gc_young", default.gc_young),
                        lower=100, upper=10_000_000))


_EVENT_LOOPS = ("asyncio", "uvloop")


def _event_loop(value: Any) -> str:
    """``engine.event_loop``: ``asyncio`` or ``uvloop``; uvloop must be installed to be named."""
    if not isinstance(value, str) or value.strip().lower() not in _EVENT_LOOPS:
        raise _SettingError("engine.event_loop", "engine.event_loop must be one of "
                            f"{', '.join(_EVENT_LOOPS)}, not {_shown(value)}")
    loop = value.strip().lower()
    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise _SettingError("engine.event_loop", "engine.event_loop is uvloop but uvloop is not "
                            "installed: pip install 'ivr[fast]' (or set it to asyncio)")
    return loop


_ON_MAX_WAIT = ("message", "overflow", "callback")


def _acd(raw: Mapping[str, Any]) -> AcdConfig:
    sec = _section(raw, "acd")
    if not sec:
        return AcdConfig()
    from ivr.acd.model import AgentSpec, QueueSpec

    _check_keys("acd", sec, {"priorities", "music", "queues", "agents", "centers"})
    default = AcdConfig()
    priorities = sec.get("priorities", list(default.priorities))
    if not isinstance(priorities, list) or not priorities \
            or not all(isinstance(p, str) and _NAME.fullmatch(p) for p in priorities) \
            or len(set(priorities)) != len(priorities):
        raise _SettingError("acd.priorities", "acd.priorities must be a list of different names, "
                                              "highest first, e.g. [elderly, repeat, normal]")
    music = _text("acd.music", sec.get("music", default.music), pattern=_NAME,
                  what="a music-on-hold class", example="default")

    queues_raw = sec.get("queues")
    if queues_raw is None:
        queues_raw = {}
    if not isinstance(queues_raw, dict):
        raise _SettingError("acd.queues", "acd.queues must be a mapping of queue name to its settings")
    queue_keys = {"skills", "max_wait", "on_max_wait", "overflow", "announce_every", "ring_timeout",
                  "wrap_up", "music"}
    queues = []
    for name, q in queues_raw.items():
        if not _NAME.fullmatch(name) or name != name.strip():
            raise _SettingError(f"acd.queues.{name}", f"acd.queues: {name!r} is not a queue name "
                                                      "(text on one line, e.g. general)")
        where = f"acd.queues.{name}"
        q = {} if q is None else q
        if not isinstance(q, dict):
            raise _SettingError(where, f"{where} must be a mapping")
        _check_keys(where, q, queue_keys)
        overflow = q.get("overflow")
        if overflow is not None:
            overflow = _text(f"{where}.overflow", overflow, pattern=_NAME, what="a queue's name",
                             example="backup")
        on_max = q.get("on_max_wait", "overflow" if overflow else "message")
        if on_max not in _ON_MAX_WAIT:
            raise _SettingError(f"{where}.on_max_wait", f"{where}.on_max_wait must be one of "
                                                        f"{', '.join(_ON_MAX_WAIT)}, not {_shown(on_max)}")
        if on_max == "overflow" and not overflow:
            raise _SettingError(where, f"{where}: on_max_wait is 'overflow' but no 'overflow' queue is named")
        if overflow is not None and overflow not in queues_raw:
            raise _SettingError(f"{where}.overflow", f"{where}.overflow names '{overflow}', which is not "
                                                     f"a queue (queues: {', '.join(map(str, queues_raw))})")
        if overflow is not None and overflow == str(name):
            raise _SettingError(f"{where}.overflow", f"{where}.overflow names the queue itself")
        queues.append(QueueSpec(
            name=str(name), skills=_names(f"{where}.skills", q.get("skills", [])),
            max_wait=_seconds(f"{where}.max_wait", q.get("max_wait", 600), upper=86400),
            overflow=overflow, on_max_wait=on_max,
            announce_every=_seconds(f"{where}.announce_every", q.get("announce_every", 45), upper=3600),
            ring_timeout=_seconds(f"{where}.ring_timeout", q.get("ring_timeout", 15), upper=120),
            wrap_up=_seconds(f"{where}.wrap_up", q.get("wrap_up", 10), upper=3600, zero=True),
            music=_text(f"{where}.music", q.get("music", music), pattern=_NAME,
                        what="a music-on-hold class", example="default")))

    agents_raw = sec.get("agents")
    if agents_raw is None:
        agents_raw = []
    if not isinstance(agents_raw, list):
        raise _SettingError("acd.agents", "acd.agents must be a list of {id, name, endpoint, skills, "
                                          "center, login}")
    agents, auto, seen = [], set(), set()
    for i, a in enumerate(agents_raw, 1):
        where = f"acd.agents[{i}]"
        if not isinstance(a, dict):
            raise _SettingError(where, f"{where} must be a mapping with id, name, endpoint")
        _check_keys(where, a, {"id", "name", "endpoint", "skills", "center", "login"})
        if a.get("id") is None:
            raise _SettingError(where, f"{where}: 'id' is required (text)")
        agent_id = _text(f"{where}.id", a["id"], pattern=re.compile(r"[^\s/]{1,80}"),
                         what="an agent's id (no spaces)", example="agent1")
        if agent_id in seen:
            raise _SettingError(f"{where}.id", f"{where}: agent id '{agent_id}' is used twice")
        seen.add(agent_id)
        endpoint = a.get("endpoint")
        if not isinstance(endpoint, str) or not re.fullmatch(r"[^\s/]+/\S+", endpoint.strip()):
            raise _SettingError(f"{where}.endpoint", f"{where} ({agent_id}): 'endpoint' must be a "
                                                     f"channel technology and resource, e.g. PJSIP/{agent_id}")
        center = a.get("center")
        agents.append(AgentSpec(
            id=agent_id, name=_text(f"{where}.name", a.get("name", agent_id), pattern=_NAME,
                                    example="Kim"),
            endpoint=endpoint.strip(), skills=_names(f"{where}.skills", a.get("skills", [])),
            center=None if center is None else _text(f"{where}.center", center, pattern=_NAME,
                                                     example="seoul")))
        if _flag(f"{where}.login", a.get("login", False), " (logged in when the engine starts)"):
            auto.add(agent_id)
    return AcdConfig(priorities=tuple(priorities), music=music, queues=tuple(queues),
                     agents=tuple(agents), auto_login=frozenset(auto),
                     centers=_center_routing(sec.get("centers")))


def _center_routing(value: Any) -> Any:
    """``acd.centers``: how the centers share the line (``ivr.acd.model.CenterRouting``);
    absent: one nationwide pool, the agents' centers ignored."""
    if value is None:
        return None
    from ivr.acd.model import CenterRouting

    if not isinstance(value, dict):
        raise _SettingError("acd.centers", "acd.centers must be a mapping: {spill_after: 60, "
                                           "spill_margin: 120} (seconds; null turns a rule off)")
    _check_keys("acd.centers", value, {"spill_after", "spill_margin"})
    default = CenterRouting()

    def rule(key: str, fallback: float | None) -> float | None:
        if key not in value:
            return fallback
        if value[key] is None:
            return None
        return _seconds(f"acd.centers.{key}", value[key], upper=86400, zero=True)

    return CenterRouting(spill_after=rule("spill_after", default.spill_after),
                         spill_margin=rule("spill_margin", default.spill_margin))


def _names(where: str, value: Any) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and _NAME.fullmatch(v) for v in value):
        raise _SettingError(where, f"{where} must be a list of names, e.g. [general]")
    return frozenset(value)


_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]]*)):(?P<port>[0-9]{1,5})")


def _wallboard(raw: Mapping[str, Any]) -> WallboardConfig:
    sec = _section(raw, "wallboard")
    _check_keys("wallboard", sec, _WALLBOARD_KEYS)
    default = WallboardConfig()
    formula = sec.get("service_level_formula", default.service_level_formula)
    if formula not in SERVICE_LEVEL_FORMULAS:
        raise _SettingError("wallboard.service_level_formula",
                            "wallboard.service_level_formula must be one of "
                            f"{', '.join(SERVICE_LEVEL_FORMULAS)}, not {_shown(formula)}")
    levels = sec.get("levels") or {}
    if not isinstance(levels, Mapping):
        raise _SettingError("wallboard.levels", "wallboard.levels must be a mapping of "
                                                "longest_wait, service_level, abandon_rate to "
                                                f"{{warn, alert}}, not {_shown(levels)}")
    _check_keys("wallboard.levels", levels, {"longest_wait", "service_level", "abandon_rate"})

    def pair(name: str, given: Levels, *, upper: float, worse: str) -> Levels:
        value = levels.get(name) or {}
        key = f"wallboard.levels.{name}"
        if not isinstance(value, Mapping):
            raise _SettingError(key, f"{key} must be {{warn: N, alert: N}}, not {_shown(value)}")
        _check_keys(key, value, {"warn", "alert"})
        def read(part: str, default: float) -> float:
            name, raw_value = f"{key}.{part}", value.get(part, default)
            if upper > 1:
                return _seconds(name, raw_value, upper=upper, zero=True)
            number = _real(raw_value)
            if number is None or not 0 <= number <= 1:
                raise _SettingError(name, f"{name} must be a share from 0 to 1 (0.8 is 80 %), "
                                          f"not {_shown(raw_value)}")
            return float(number)

        warn, alert = read("warn", given.warn), read("alert", given.alert)
        if (worse == "more" and alert < warn) or (worse == "less" and alert > warn):
            word = "above" if worse == "more" else "below"
            raise _SettingError(key, f"{key}: alert ({alert:g}) must be at or {word} warn ({warn:g})")
        return Levels(warn=warn, alert=alert)

    return WallboardConfig(
        service_level=_seconds("wallboard.service_level",
                               sec.get("service_level", default.service_level), upper=3600.0),
        service_level_formula=formula,
        flash_after=_seconds("wallboard.flash_after", sec.get("flash_after", default.flash_after),
                             upper=86400.0),
        refresh=_seconds("wallboard.refresh", sec.get("refresh", default.refresh), upper=3600.0),
        list_rows=_whole("wallboard.list_rows", sec.get("list_rows", default.list_rows), lower=1, upper=1000),
        longest_wait=pair("longest_wait", default.longest_wait, upper=86400.0, worse="more"),
        service_level_levels=pair("service_level", default.service_level_levels, upper=1.0,
                                  worse="less"),
        abandon_rate=pair("abandon_rate", default.abandon_rate, upper=1.0, worse="more"))


def _admin(raw: Mapping[str, Any], rel) -> AdminConfig:
    sec = _section(raw, "admin")
    _check_keys("admin", sec, _ADMIN_KEYS)
    listen = sec.get("listen", "127.0.0.1:8089")
    m = _LISTEN.fullmatch(listen.strip()) if isinstance(listen, str) else None
    if m is None or int(m.group("port")) > 65535:
        raise _SettingError("admin.listen", f"admin.listen must be HOST:PORT with a port from 0 to "
                                            f"65535, e.g. 127.0.0.1:8089, not {_shown(listen)}")
    host = m.group("v6") or m.group("host") or "127.0.0.1"
    what = "a bearer token: visible ASCII characters, no spaces"
    token = sec.get("token")
    if token is not None and token != "":
        token = _text("admin.token", token, pattern=_TOKEN, what=what, example="'${IVR_ADMIN_TOKEN}'")
    elif sec.get("token_file") is not None:
        tf = rel(_text("admin.token_file", sec["token_file"], pattern=_NAME, what="a path",
                       example=".sandbox/admin-token"), "admin.token_file")
        try:
            token = _read_bounded(tf, MAX_SECRET_BYTES).decode("utf-8").strip()
        except FileNotFoundError:
            token = None          # the API stays off; 'ivr run' and 'ivr agents' say so
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            if not tf.exists():
                token = None      # as above
            else:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text" \
                    if isinstance(exc, UnicodeDecodeError) else str(exc)
                raise _SettingError("admin.token_file", f"admin.token_file {tf} cannot be read "
                                                        f"({why})") from exc
        if token and not _TOKEN.fullmatch(token):
            raise _SettingError("admin.token_file", f"admin.token_file {tf} must hold {what}")
    users_file = None
    if sec.get("users_file") not in (None, ""):
        users_file = rel(_text("admin.users_file", sec["users_file"], pattern=_NAME, what="a path",
                               example=".sandbox/wallboard-users.yaml"), "admin.users_file")
    session_hours = _real(sec.get("session_hours", 12.0))
    if session_hours is None or not 0 < session_hours <= 24 * 30:
        raise _SettingError("admin.session_hours", f"admin.session_hours must be a number of hours, "
                                                   f"more than 0 and at most 720, e.g. 12, not "
                                                   f"{_shown(sec.get('session_hours'))}")
    return AdminConfig(host=host, port=int(m.group("port")), token=token or None,
                       users_file=users_file, session_hours=float(session_hours))


def _callers(raw: Mapping[str, Any], env: Mapping[str, str]) -> CallersConfig:
    sec = _section(raw, "callers")
    _check_keys("callers", sec, _CALLERS_KEYS)
    default = CallersConfig()
    given_region = sec.get("region", default.region)
    region = given_region.strip().upper() if isinstance(given_region, str) else ""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise _SettingError("callers.region", f"callers.region {_shown(given_region)} is not a country "
                                              "code phonenumbers knows (e.g. KR, US, VN)")
    tz = sec.get("timezone", default.timezone)
    try:
        if not isinstance(tz, str) or len(tz) > 100:
            raise ValueError(tz)
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise _SettingError("callers.timezone", f"callers.timezone {_shown(tz)} is not a time zone "
                                                "name (e.g. Asia/Seoul)") from exc
    budget = _seconds("callers.lookup_budget", sec.get("lookup_budget", default.lookup_budget), upper=10.0)
    cache = _whole("callers.registry_cache", sec.get("registry_cache", default.registry_cache),
                   lower=0, upper=1_000_000)

    registry: RegistryConfig | None = None
    reg = sec.get("registry")
    if reg is not None:
        if not isinstance(reg, dict):
            raise _SettingError("callers.registry", "config: 'callers.registry' must be a mapping with "
                                                    "url, timeout, token_env")
        _check_keys("callers.registry", reg, _REGISTRY_KEYS)
        url = reg.get("url")
        if not isinstance(url, str) or not _URL.fullmatch(url) or "{number}" not in url:
            raise _SettingError("callers.registry.url", "callers.registry.url must be an http(s) URL "
                                "with {number} in it, e.g. https://crm.example/callers/{number}")
        timeout = _seconds("callers.registry.timeout", reg.get("timeout", budget), upper=10.0)
        token: str | None = None
        token_env = reg.get("token_env")
        if token_env is not None:
            if not isinstance(token_env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token_env):
                raise _SettingError("callers.registry.token_env", "callers.registry.token_env must be "
                                    "the NAME of an environment variable (not the token itself)")
            token = env.get(token_env)
            if not token:
                raise _SettingError("callers.registry.token_env", f"callers.registry.token_env names "
                                    f"{token_env}, but the environment variable {token_env} is not set")
            if not _TOKEN.fullmatch(token):
                raise _SettingError("callers.registry.token_env", f"the environment variable {token_env} "
                                    "(callers.registry.token_env) must hold a bearer token: visible "
                                    "ASCII characters, no spaces")
        registry = RegistryConfig(url=url, timeout=timeout, token=token)
    return CallersConfig(region=region, timezone=tz, lookup_budget=budget, registry=registry,
                         registry_cache=cache)


_CALLBACK_KEYS = {"endpoint", "owner", "lease", "poll", "max_attempts", "retry_delay", "ring_timeout",
                  "allow_international", "caller_id", "hours", "holidays", "public_holidays"}
_CALLBACK_LISTS = {"hours", "holidays"}         # not settable from the environment
_HOURS = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")
_CALLER_ID = re.compile(r"\+?[0-9]{3,20}")


def _callbacks(raw: Mapping[str, Any], callers: CallersConfig) -> CallbacksConfig:
    sec = _section(raw, "callbacks")
    _check_keys("callbacks", sec, _CALLBACK_KEYS)
    default = CallbacksConfig()
    owner = _text("callbacks.owner", sec.get("owner", default.owner), pattern=_NAME,
                  what="a name for this engine instance", example="ivr-1")
    international = _flag("callbacks.allow_international", sec.get("allow_international", False))
    caller_id = _caller_id("callbacks.caller_id", sec.get("caller_id"))
    endpoint = sec.get("endpoint")
    if endpoint is not None:
        endpoint = _callback_endpoint(endpoint)
    attempts = _whole("callbacks.max_attempts", sec.get("max_attempts", default.retry.max_attempts),
                      lower=1, upper=20)
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
        owner=owner,
        lease=_seconds("callbacks.lease", sec.get("lease", default.lease), upper=3600.0),
        poll=_seconds("callbacks.poll", sec.get("poll", default.poll), upper=300.0),
        ring_timeout=_seconds("callbacks.ring_timeout",
                              sec.get("ring_timeout", default.ring_timeout), upper=300.0),
        allow_international=international, caller_id=caller_id, endpoint=endpoint, hours=hours,
        retry=RetryPolicy(max_attempts=attempts, delay=dt.timedelta(seconds=delay)))


def _callback_endpoint(value: Any) -> str:
    example = "PJSIP/{national}@trunk"
    key = "callbacks.endpoint"
    if not isinstance(value, str) or "/" not in value:
        raise _SettingError(key, f"callbacks.endpoint must be an Asterisk channel to dial, e.g. "
                                 f"{example}, not {_shown(value)}")
    try:
        parsed = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(value)
                  if name is not None]
        if any(spec or conversion for _, spec, conversion in parsed):
            raise ValueError("write {national}, {e164} or {digits} alone, without ':' or '!' after "
                             "the name")
        fields = {name for name, _, _ in parsed}
    except ValueError as exc:
        raise _SettingError(key, f"callbacks.endpoint {value!r}: {exc}") from None
    if not fields or not fields <= {"national", "e164", "digits"}:
        raise _SettingError(key, f"callbacks.endpoint {value!r} must say where the number goes with "
                                 f"{{national}}, {{e164}} or {{digits}} (and nothing else in braces), "
                                 f"e.g. {example}")
    return value


def _weekly_hours(value: Any, key: str = "callbacks.hours") -> dict[int, list[tuple[dt.time, dt.time]]]:
    example = '{mon: ["09:00-18:00"], sat: ["09:00-13:00"], sun: []}'
    if not isinstance(value, dict):
        raise _SettingError(key, f"{key} must be a mapping of weekday to opening hours, "
                          f"e.g. {example}")
    weekly: dict[int, list[tuple[dt.time, dt.time]]] = {}
    for day, spans in value.items():
        name = str(day).lower()
        if name not in DAY_NAMES:
            raise _SettingError(key, f"{key}: {day!r} is not a weekday "
                              f"(use {', '.join(DAY_NAMES)})")
        where = f"{key}.{name}"
        if spans is None:
            spans = []
        elif isinstance(spans, str):
            spans = [spans]
        if not isinstance(spans, list):
            raise _SettingError(where, f"{where} must be a list like [\"09:00-18:00\"], not {spans!r}")
        intervals = []
        for span in spans:
            m = _HOURS.fullmatch(span.replace(" ", "")) if isinstance(span, str) else None
            if m is None:
                raise _SettingError(where, f"{where}: {span!r} is not HH:MM-HH:MM")
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
                raise _SettingError(where, f"{where}: {span!r} is not a time of day (00:00 to 24:00)")
            start = dt.time(h1, m1)
            end = dt.time.max if h2 == 24 else dt.time(h2, m2)
            if end <= start:
                raise _SettingError(where, f"{where}: {span!r} does not end after it starts (an interval "
                                  "cannot span midnight: end it at 24:00 and go on the next day)")
            intervals.append((start, end))
        if DAY_NAMES.index(name) in weekly:
            raise _SettingError(key, f"{key} names {name} twice")
        weekly[DAY_NAMES.index(name)] = intervals
    try:
        hours = OpeningHours(ZoneInfo("UTC"), weekly)
    except ValueError as exc:
        raise _SettingError(key, f"{key}: {exc}") from None
    if not hours.weekly:
        raise _SettingError(key, f"{key}: no day has opening hours, so nothing could "
                          "ever be dialled")
    return weekly


def _holidays(value: Any, key: str = "callbacks.holidays") -> frozenset[dt.date]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise _SettingError(key,
                            f"{key} must be a list of dates, e.g. [2025-01-01, 2025-03-01]")
    days = set()
    for item in value:
        if isinstance(item, dt.datetime):
            raise _SettingError(key, f"{key}: {item!r} is not a date (YYYY-MM-DD)")
        if isinstance(item, dt.date):
            days.add(item)
            continue
        try:
            days.add(dt.date.fromisoformat(str(item).strip()))
        except ValueError:
            raise _SettingError(key,
                                f"{key}: {item!r} is not a date (YYYY-MM-DD)") from None
    return frozenset(days)


_WELLNESS_KEYS = {"campaigns", "ring_timeout", "poll", "lease", "history_days"}
_CAMPAIGN_KEYS = {"name", "days", "hours", "attempts_per_day", "retry_delay", "max_concurrent",
                  "failed_days_to_visit", "queue", "priority", "holidays", "surge", "flow",
                  "caller_id"}
_SURGE_KEYS = {"queue", "pause_over", "resume_under"}


def _wellness(raw: Mapping[str, Any], callers: CallersConfig, acd: AcdConfig,
              callbacks: CallbacksConfig) -> WellnessConfig:
    sec = _section(raw, "wellness")
    _check_keys("wellness", sec, _WELLNESS_KEYS)
    listed = sec.get("campaigns")
    if listed is None:
        return WellnessConfig()
    if not isinstance(listed, list):
        raise _SettingError("wellness.campaigns", "wellness.campaigns must be a list of campaigns, "
                            "e.g. [{name: seniors, days: [tue, fri], hours: [\"10:00-17:00\"]}]")
    queues = [q.name for q in acd.queues]
    campaigns: list[Campaign] = []
    for i, item in enumerate(listed, 1):
        where = f"wellness.campaigns[{i}]"
        if not isinstance(item, dict):
            raise _SettingError(where, f"{where} must be a mapping with name, days and hours, "
                                       f"not {_shown(item)}")
        _check_keys(where, item, _CAMPAIGN_KEYS)
        for key in ("name", "days", "hours"):
            if key not in item:
                raise _SettingError(where, f"{where} needs '{key}'")
        name = _text(f"{where}.name", item["name"], pattern=_NAME, what="a campaign name",
                     example="seniors")
        if any(c.name == name for c in campaigns):
            raise _SettingError(f"{where}.name", f"{where}: a campaign called {name!r} comes twice")
        days = item["days"]
        if isinstance(days, str):
            days = [days]
        if not isinstance(days, list) or not days or not all(isinstance(d, str) for d in days):
            raise _SettingError(f"{where}.days", f"{where}.days must be a list of weekdays, e.g. "
                                                 f"[tue, fri], not {_shown(days)}")
        if len({d.lower() for d in days}) != len(days):
            raise _SettingError(f"{where}.days", f"{where}.days names a day twice")
        weekly = _weekly_hours({day: item["hours"] for day in days}, f"{where}.hours")
        holidays = callbacks.hours.holidays | _holidays(item.get("holidays"), f"{where}.holidays")
        hours = OpeningHours(ZoneInfo(callers.timezone), weekly, holidays,
                             callbacks.hours.public_holidays)
        queue = _text(f"{where}.queue", item.get("queue", "wellness"), pattern=_NAME,
                      what="a queue name", example="wellness")
        if queues and queue not in queues:
            raise _SettingError(f"{where}.queue", f"{where}.queue: {queue!r} is not one of acd.queues "
                                                  f"({', '.join(queues)})")
        priority = item.get("priority", acd.priorities[0])
        if priority not in acd.priorities:
            raise _SettingError(f"{where}.priority", f"{where}.priority must be one of acd.priorities "
                                f"({', '.join(acd.priorities)}), not {_shown(priority)}")
        campaigns.append(Campaign(
            name=name, hours=hours,
            attempts_per_day=_whole(f"{where}.attempts_per_day", item.get("attempts_per_day", 3),
                                    lower=1, upper=20),
            retry_delay=dt.timedelta(seconds=_seconds(f"{where}.retry_delay",
                                                      item.get("retry_delay", 1800), upper=86400.0)),
            max_concurrent=_whole(f"{where}.max_concurrent", item.get("max_concurrent", 2),
                                  lower=1, upper=10000),
            failed_days_to_visit=_whole(f"{where}.failed_days_to_visit",
                                        item.get("failed_days_to_visit", 3), lower=1, upper=60),
            queue=queue, priority=priority,
            surge=_surge(item.get("surge"), f"{where}.surge", queues),
            flow=_text(f"{where}.flow", item.get("flow", "wellness"), pattern=_NAME,
                       what="a flow name", example="wellness"),
            caller_id=_caller_id(f"{where}.caller_id", item.get("caller_id", callbacks.caller_id))))
    lease = _seconds("wellness.lease", sec.get("lease", 60), upper=3600.0)
    if lease < 10:
        raise _SettingError("wellness.lease", f"wellness.lease must be at least 10 seconds, not {lease:g}")
    return WellnessConfig(
        campaigns=tuple(campaigns),
        ring_timeout=_seconds("wellness.ring_timeout", sec.get("ring_timeout", 40), upper=300.0),
        poll=_seconds("wellness.poll", sec.get("poll", 5), upper=600.0),
        lease=lease,
        history_days=_whole("wellness.history_days", sec.get("history_days", 90), lower=7, upper=3660))


def _surge(value: Any, where: str, queues: list[str]) -> Surge | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _SettingError(where, f"{where} must be a mapping like {{queue: general, pause_over: "
                                   f"120, resume_under: 60}}, not {_shown(value)}")
    _check_keys(where, value, _SURGE_KEYS)
    for key in sorted(_SURGE_KEYS):
        if key not in value:
            raise _SettingError(where, f"{where} needs '{key}'")
    queue = _text(f"{where}.queue", value["queue"], pattern=_NAME, what="a queue name",
                  example="general")
    if queues and queue not in queues:
        raise _SettingError(f"{where}.queue", f"{where}.queue: {queue!r} is not one of acd.queues "
                                              f"({', '.join(queues)})")
    pause = _seconds(f"{where}.pause_over", value["pause_over"], upper=86400.0)
    resume = _seconds(f"{where}.resume_under", value["resume_under"], upper=86400.0, zero=True)
    if resume >= pause:
        raise _SettingError(f"{where}.resume_under",
                            f"{where}.resume_under ({resume:g}) must be below pause_over "
                            f"({pause:g}), so the campaign does not pause and resume on every look")
    return Surge(queue=queue, pause_over=pause, resume_under=resume)


def _video(raw: Mapping[str, Any], rel, callers: CallersConfig, acd: AcdConfig,
           callbacks: CallbacksConfig) -> VideoConfig:
    sec = _section(raw, "video")
    _check_keys("video", sec, _VIDEO_KEYS)
    default = VideoConfig()
    enabled = _flag("video.enabled", sec.get("enabled", False), "serve the video page")
    number = _text("video.number", str(sec.get("number", default.number)),
                   pattern=re.compile(r"[+*#0-9]{1,32}"), what="a dialled number (digits, + * #)",
                   example="'15771900'")
    queue = _text("video.queue", sec.get("queue", default.queue), pattern=re.compile(r"[A-Za-z0-9_.\-]{1,80}"),
                  example="sign_language")
    websocket = _text("video.websocket", sec.get("websocket", default.websocket),
                      pattern=re.compile(r"wss?://\S{1,300}"), what="a ws:// or wss:// URL",
                      example="wss://127.0.0.1:8443/ws")
    domain = _text("video.sip_domain", sec.get("sip_domain", default.sip_domain),
                   pattern=re.compile(r"[A-Za-z0-9.\-:\[\]]{1,200}"), what="a host name or address",
                   example="127.0.0.1")
    guest = _text("video.guest_user", sec.get("guest_user", default.guest_user),
                  pattern=re.compile(r"[A-Za-z0-9_.\-]{1,80}"), example="video-guest")
    password = sec.get("guest_password")
    if password in (None, "") and sec.get("guest_password_file") not in (None, ""):
        pf = rel(_text("video.guest_password_file", sec["guest_password_file"], pattern=_NAME,
                       what="a path", example=".sandbox/video-guest-password"), "video.guest_password_file")
        try:
            password = _read_bounded(pf, MAX_SECRET_BYTES).decode("utf-8").strip() or None
        except FileNotFoundError:
            password = None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise _SettingError("video.guest_password_file",
                                f"video.guest_password_file {pf} cannot be read ({exc})") from exc
    elif password not in (None, ""):
        password = _text("video.guest_password", password, pattern=_TOKEN, what="a password",
                         example="'${IVR_VIDEO_GUEST_PASSWORD}'")
    else:
        password = None
    agents_file = None
    if sec.get("agent_passwords_file") not in (None, ""):
        agents_file = rel(_text("video.agent_passwords_file", sec["agent_passwords_file"], pattern=_NAME,
                                what="a path", example=".sandbox/interpreter-passwords"),
                          "video.agent_passwords_file")
    ice = sec.get("ice_servers") or []
    if not isinstance(ice, list) or not all(isinstance(u, str) and re.fullmatch(r"(stun|turns?):\S{1,300}", u)
                                            for u in ice):
        raise _SettingError("video.ice_servers", "video.ice_servers must be a list of stun:/turn: URLs, "
                                                 f"not {_shown(ice)}")

    def choices(key: str, given: tuple[VideoChoice, ...]) -> tuple[VideoChoice, ...]:
        value = sec.get(key)
        if value is None:
            return given
        where = f"video.{key}"
        if not isinstance(value, list) or not value or len(value) > 12:
            raise _SettingError(where, f"{where} must be a list of 1 to 12 {{id, ko, en, zh, vi}}, "
                                       f"not {_shown(value)}")
        out: list[VideoChoice] = []
        for i, item in enumerate(value, 1):
            if not isinstance(item, dict) or "id" not in item:
                raise _SettingError(f"{where}[{i}]", f"{where}[{i}] must be a mapping with an id and "
                                                     "a label per language")
            _check_keys(f"{where}[{i}]", item, {"id", *VIDEO_LANGUAGES})
            cid = _text(f"{where}[{i}].id", item["id"], pattern=re.compile(r"[a-z0-9_]{1,40}"),
                        what="lower-case letters, digits and _", example="premiums")
            labels = {lang: _text(f"{where}[{i}].{lang}", item[lang], pattern=_NAME, example="보험료")
                      for lang in VIDEO_LANGUAGES if lang in item}
            if "en" not in labels and "ko" not in labels:
                raise _SettingError(f"{where}[{i}]", f"{where}[{i}] ({cid}) needs at least a ko or en label")
            if any(c.id == cid for c in out):
                raise _SettingError(f"{where}[{i}]", f"{where}[{i}]: id {cid} is given twice")
            out.append(VideoChoice(cid, labels))
        return tuple(out)

    tz = ZoneInfo(callers.timezone)
    if "hours" in sec:
        hours = OpeningHours(tz, _weekly_hours(sec["hours"], "video.hours"),
                             _holidays(sec.get("holidays"), "video.holidays"), callbacks.hours.public_holidays)
    else:
        hours = dataclasses.replace(callbacks.hours,
                                    holidays=callbacks.hours.holidays | _holidays(sec.get("holidays"),
                                                                                  "video.holidays"))
    config = VideoConfig(
        enabled=enabled, number=number, queue=queue, websocket=websocket, sip_domain=domain,
        guest_user=guest, guest_password=password, agent_passwords_file=agents_file,
        ice_servers=tuple(ice), topics=choices("topics", default.topics),
        sign_languages=choices("sign_languages", default.sign_languages),
        slot_minutes=_whole("video.slot_minutes", sec.get("slot_minutes", default.slot_minutes),
                            lower=5, upper=240),
        per_slot=_whole("video.per_slot", sec.get("per_slot", default.per_slot), lower=1, upper=1000),
        days_ahead=_whole("video.days_ahead", sec.get("days_ahead", default.days_ahead), lower=1, upper=90),
        offer_above=_seconds("video.offer_above", sec.get("offer_above", default.offer_above),
                             upper=86400.0, zero=True),
        early=_seconds("video.early", sec.get("early", default.early), upper=86400.0, zero=True),
        hours=hours,
        max_visits=_whole("video.max_visits", sec.get("max_visits", default.max_visits), lower=1,
                          upper=100_000))
    if enabled:
        names = {q.name for q in acd.queues}
        if queue not in names:
            raise _SettingError("video.queue", f"video.queue {queue} is not one of acd.queues "
                                               f"({', '.join(sorted(names)) or 'none'})")
        if "booked" not in acd.priorities:
            raise _SettingError("video.enabled", "video needs the priority 'booked' in acd.priorities "
                                                 "(highest first, e.g. [booked, elderly, repeat, normal]): "
                                                 "a booked consultation is served ahead of the line")
    return config
