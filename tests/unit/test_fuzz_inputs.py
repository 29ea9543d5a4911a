"""Fuzzing what operators and callers hand the engine: ``ivr.yaml``, the environment, registry
CSV files, caller IDs, keyed callback numbers and admin API requests.

Each input gets a defined answer, never a traceback or a hang: a ``Config`` or a
``ConfigError``; an import report that names bad rows by line and keeps the good ones; a
``CallerNumber``; an accepted number or a ``CallbackNumberRefused``; an HTTP answer below 500
whose body is JSON (an object with ``error`` for every refusal).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import string
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import phonenumbers
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from ivr.acd.core import Acd
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.acd.service import QueueService
from ivr.callbacks.desk import CallbackDesk
from ivr.callbacks.model import Reservation
from ivr.callbacks.numbers import (
    CALLABLE_TYPES,
    REFUSALS,
    CallbackNumberRefused,
    validate_callback_number,
)
from ivr.config import CallbacksConfig, Config, environment_variables, load_config
from ivr.errors import CallerFileError, ConfigError
from ivr.prompts import load_catalogue
from ivr.routing.numbers import CallerNumber, normalize
from ivr.routing.registry import import_callers_csv
from ivr.testing.fake_switch import FakeSwitch
from ivr.testing.memory_store import MemoryStore
from ivr.web.api import api_app

pytestmark = pytest.mark.fuzz

REPO = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 3, 15)

# -- ivr.yaml ------------------------------------------------------------------------------------

SECTIONS: dict[str, list[str]] = {
    "ari": ["url", "username", "password", "password_file", "app"],
    "store": ["url"],
    "log": ["format", "level"],
    "engine": ["max_calls", "max_loop_lag", "shutdown_grace", "reload_interval", "busy_prompt", "event_loop",
               "default_language"],
    "callers": ["region", "timezone", "lookup_budget", "registry", "registry_cache"],
    "acd": ["priorities", "music", "queues", "agents"],
    "callbacks": ["endpoint", "owner", "lease", "poll", "max_attempts", "retry_delay", "ring_timeout",
                  "allow_international", "caller_id", "hours", "holidays", "public_holidays"],
    "admin": ["listen", "token", "token_file"],
}
QUEUE_KEYS = ["skills", "max_wait", "on_max_wait", "overflow", "announce_every", "ring_timeout",
              "wrap_up", "music"]
AGENT_KEYS = ["id", "name", "endpoint", "skills", "center", "login"]

# Scalars as YAML text: the odd ones operators write, and plausible good ones.
YAML_SCALARS = st.one_of(
    st.sampled_from([".nan", ".NaN", ".inf", "-.inf", "1e999", "-1e999", "-5", "-1", "0", "-0.0",
                     "0.000001", "1", "30", "5000", "99999999999999999999", "true", "false", "yes",
                     "no", "null", "~", "''", "'nan'", "'inf'", "'30'", "'-1'", "!!float nan",
                     "!!int '12'", "!!binary aGk=", "!!python/name:os.system", "2025-01-01",
                     "'2025-02-30'", "09:00-18:00", "'09:00-18:00'", "015771000", "'15771000'",
                     "KR", "xx", "Asia/Seoul", "'Mars/Olympus'", "PJSIP/agent1",
                     "'PJSIP/{national}@trunk'", "'PJSIP/{national:d}@t'", "'PJSIP/{e164!r}'",
                     "'PJSIP/{}'", "'PJSIP/{0}'", "'PJSIP/{national}{'", "'PJSIP/{digits[0]}'", "'{number}'", "'https://crm/{number}'",
                     "'127.0.0.1:8089'", "'127.0.0.1:99999'", "'[::1]:0'", "'${HOME}'",
                     "'${IVR_FUZZ_UNSET_VARIABLE}'", "/dev/zero", "/", "~nosuchuser-ivr/x", "'~0'",
                     "'토큰'", "'tok en'", "json",
                     "console", "debug", "message", "overflow", "callback", "general"]),
    st.integers(min_value=-10**6, max_value=10**7).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f)),
    st.text(alphabet=string.ascii_letters + string.digits + "-_./:{}$ ", max_size=20).map(json.dumps),
)
LEAF = YAML_SCALARS | st.lists(YAML_SCALARS, max_size=3).map(lambda xs: f"[{', '.join(xs)}]")


def _flow_map(items: dict[str, str]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in items.items()) + "}"


QUEUE = st.dictionaries(st.sampled_from(QUEUE_KEYS), LEAF, max_size=4).map(_flow_map)
AGENT = st.dictionaries(st.sampled_from(AGENT_KEYS), LEAF, max_size=5).map(_flow_map)
SPECIAL: dict[tuple[str, str], st.SearchStrategy[str]] = {
    ("acd", "queues"): st.dictionaries(st.sampled_from(["general", "backup", "a.b", "1", "", " x", "a\\tb"]), QUEUE,
                                       max_size=3).map(_flow_map) | LEAF,
    ("acd", "agents"): st.lists(AGENT, max_size=3).map(lambda xs: f"[{', '.join(xs)}]") | LEAF,
    ("callbacks", "hours"): st.dictionaries(st.sampled_from(["mon", "tue", "sun", "monday", "1"]), LEAF,
                                            max_size=3).map(_flow_map) | LEAF,
    ("callers", "registry"): st.dictionaries(st.sampled_from(["url", "timeout", "token_env"]), LEAF,
                                             max_size=3).map(_flow_map) | LEAF,
}


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    lines = []
    if draw(st.booleans()):                        # most examples get past the ARI credentials
        lines.append("ari: {username: ivr, password: x}")
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), unique=True, max_size=4)):
        if section == "ari" and lines:
            continue
        keys = draw(st.lists(st.sampled_from(SECTIONS[section]), unique=True, max_size=4))
        values = {k: draw(SPECIAL.get((section, k), LEAF)) for k in keys}
        form = draw(st.sampled_from(["flow", "block", "block", "scalar"]))
        if form == "scalar":                       # a section that is not a mapping
            lines.append(f"{section}: {draw(LEAF)}")
        elif form == "flow" or not values:
            lines.append(f"{section}: {_flow_map(values)}")
        else:
            lines.append(f"{section}:\n" + "".join(f"  {k}: {v}\n" for k, v in values.items()).rstrip("\n"))
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["flows: null", "flows: []", "flows: [a, null]", "prompts: 5",
                                           "unknown: 1", "engine: 5", "acd: [1]", "log: ~", "- a list"])))
    return "\n".join(lines) + "\n"


def alias_bomb(levels: int, width: int, where: str) -> str:
    text = f"a0: &a0 [{', '.join(['lol'] * width)}]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]\n"
    return f"ari: {{username: ivr, password: x}}\n{where}: *a{levels - 1}\nx:\n" + \
        "".join(f"  {line}\n" for line in text.splitlines())


def load_defined(path: Path, text: bytes, env: dict[str, str]) -> Config | ConfigError:
    path.write_bytes(text)
    try:
        return load_config(path, env=env)
    except ConfigError as exc:
        assert str(exc).strip(), "a ConfigError says what is wrong"
        return exc


@given(text=config_texts())
def test_any_ivr_yaml_gives_a_config_or_a_config_error(tmp_path: Path, text: str):
    t0 = time.monotonic()
    result = load_defined(tmp_path / "ivr.yaml", text.encode("utf-8"), {})
    assert time.monotonic() - t0 < 5
    event("config" if isinstance(result, Config) else "ConfigError")
    if isinstance(result, Config):
        assert result.engine.max_calls >= 1 and 0 < result.engine.max_loop_lag
        assert result.engine.shutdown_grace >= 0 and result.callers.lookup_budget > 0
        for q in result.acd.queues:
            assert q.max_wait > 0 and q.ring_timeout > 0 and q.wrap_up >= 0
        if result.callbacks.endpoint is not None:             # every callback can be dialled
            assert result.callbacks.endpoint.format(national="01012345678", e164="+821012345678",
                                                    digits="821012345678")


@given(data=st.binary(max_size=300), keep=st.booleans())
def test_any_bytes_as_ivr_yaml_give_a_config_or_a_config_error(tmp_path: Path, data: bytes, keep: bool):
    head = b"ari: {username: ivr, password: x}\n" if keep else b""
    load_defined(tmp_path / "ivr.yaml", head + data, {})


@settings(max_examples=20)
@given(levels=st.integers(2, 9), width=st.integers(2, 12),
       where=st.sampled_from(["engine", "acd", "flows", "callbacks", "x2"]))
@example(levels=9, width=9, where="engine")          # the 414-byte "billion laughs"
@example(levels=6, width=12, where="flows")
def test_aliases_never_expand_beyond_a_bounded_size(tmp_path: Path, levels: int, width: int, where: str):
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        load_defined(tmp_path / "ivr.yaml", alias_bomb(levels, width, where).encode(), {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - t0 < 10
    assert peak < 300 * 2**20


ENV_NAMES = sorted(environment_variables())


@given(env=st.dictionaries(st.sampled_from(ENV_NAMES), YAML_SCALARS | st.text(max_size=30), max_size=4))
def test_any_environment_gives_a_config_or_a_config_error_naming_the_variable(tmp_path: Path, env):
    env = {k: v for k, v in env.items() if "\x00" not in v}
    result = load_defined(tmp_path / "ivr.yaml", b"ari: {username: ivr, password: x}\n", env)
    if isinstance(result, ConfigError):
        named = [var for var in env if str(result).startswith(var + ":")]
        event("error names a variable" if named else "error from elsewhere")


# -- registry CSV ----------------------------------------------------------------------------------

GOOD_ROWS = st.lists(st.integers(0, 9999), unique=True, min_size=1, max_size=8)
CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
               max_size=12) | st.sampled_from(['"', '""', '"a,b"', '"x', 'x"', ",", "010-1234-5678",
                                                "1950-03-15", "ko", "yes", "\x00", "\ufeff", "\u2028"])
GARBAGE = st.lists(CELL, max_size=6).map(",".join) | st.text(max_size=40)


@given(good=GOOD_ROWS, garbage=st.lists(GARBAGE, max_size=6), positions=st.randoms(use_true_random=False),
       crlf=st.booleans())
def test_a_caller_file_keeps_its_good_rows_and_names_the_bad_ones_by_line(
        tmp_path: Path, good, garbage, positions, crlf: bool):
    rows = [("good", f"010-7777-{n:04d},1950-03-15,ko") for n in good]
    rows += [("garbage", g) for g in garbage]
    positions.shuffle(rows)
    newline = "\r\n" if crlf else "\n"
    text = "phone,birth_date,language" + newline + newline.join(r for _, r in rows) + newline
    path = tmp_path / "callers.csv"
    path.write_text(text, encoding="utf-8", newline="")
    report = import_callers_csv(path, today=TODAY)
    lines = text.count(newline) + sum(g.count("\r") + g.count("\n") for _, g in rows if _ == "garbage")
    for p in report.problems:
        assert 1 <= p.line <= lines + 1 and str(p).startswith(f"{path}:{p.line}: ")
    numbers = {c.number for c in report.callers}
    assert {f"+82107777{n:04d}" for n in good} <= numbers       # every good row is kept
    replaced = sum(1 for p in report.problems if p.severity == "warning" and p.line > 1)
    assert report.rows == report.accepted + report.rejected + replaced


@given(data=st.binary(max_size=400) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_as_a_caller_file_give_a_report_or_a_caller_file_error(tmp_path: Path, data: bytes):
    path = tmp_path / "callers.csv"
    path.write_bytes(b"phone,birth_date\n" + data)
    try:
        report = import_callers_csv(path, today=TODAY)
    except CallerFileError as exc:
        assert str(exc).startswith(str(path))
        event("refused whole")
    else:
        assert all(p.line >= 1 for p in report.problems)
        event("report")


# -- caller IDs and keyed numbers ------------------------------------------------------------------

NUMBERISH = st.text(alphabet="0123456789+-. ()", max_size=24)
# Plausible numbers: a prefix of each kind (mobile, pager, geographic, 070, 050x, premium, toll-free,
# representative, international), digits, and the separators people type.
PLAUSIBLE = st.builds(
    lambda prefix, digits, sep: prefix + sep + sep.join(digits[i:i + 4] for i in range(0, len(digits), 4)),
    st.sampled_from(["010", "011", "012", "013", "015", "0151", "016", "019", "02", "031", "051", "064",
                     "070", "050", "0505", "060", "080", "030", "1588", "1577", "15", "1", "0",
                     "+82 10", "+82", "82", "001-1", "+1 650", "+84 91", "+44 20", "+", "112", "119"]),
    st.integers(0, 10).flatmap(lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n))
    | st.sampled_from([6, 7, 8]).flatmap(lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)),
    st.sampled_from(["", "-", " ", "."]))
ANY_TEXT = st.one_of(
    NUMBERISH,
    PLAUSIBLE,
    PLAUSIBLE,
    st.text(max_size=30),
    st.text(alphabet="0123456789٠١٢٣٤٥٦٧٨٩０１２３４５６７８９²³", max_size=15),   # digits of other scripts
    st.text(alphabet=[chr(c) for c in range(32)] + ["\x7f", "1", "0"], max_size=15),
    st.integers(0, 10**6).map(lambda n: "1" * n),                     # huge
    st.sampled_from(["", "anonymous", "Anonymous", "+", "+82", "00000000", "+0", "sip:1000@pbx",
                     "010-1234-5678", "+82 10 1234 5678", "82-10-1234-5678", "1588012904"]),
)


@given(raw=ANY_TEXT | st.none() | st.integers() | st.binary(max_size=10))
def test_a_caller_id_never_breaks_normalize_and_is_read_consistently(raw: Any):
    number = normalize(raw)
    assert isinstance(number, CallerNumber) and number.status in ("ok", "anonymous", "invalid")
    assert number == normalize(raw)                        # the same answer every time
    if number.ok:
        assert number.e164 is not None and number.e164.startswith("+") and number.e164[1:].isdigit()
        assert normalize(number.e164).e164 == number.e164   # an E.164 number reads as itself
        assert normalize(number.e164, "US").e164 == number.e164
    else:
        assert number.e164 is None and number.reason


REGIONS = st.sampled_from(["KR", "US", "VN", "GB", "DE", "JP"])


@given(raw=PLAUSIBLE | PLAUSIBLE | ANY_TEXT, region=REGIONS | st.just("KR"), international=st.booleans())
def test_a_keyed_callback_number_is_accepted_or_refused_with_a_reason(raw: str, region: str, international):
    try:
        e164 = validate_callback_number(raw, region, allow_international=international)
    except CallbackNumberRefused as exc:
        assert exc.why in REFUSALS and str(exc)
        event(f"refused: {exc.why}")
        return
    event("accepted")
    parsed = phonenumbers.parse(e164)
    assert phonenumbers.number_type(parsed) in CALLABLE_TYPES
    assert validate_callback_number(e164, region, allow_international=international) == e164
    if not international:
        assert parsed.country_code == phonenumbers.country_code_for_region(region)


# -- admin API -------------------------------------------------------------------------------------

TOKEN = "t0ken-for-fuzz"


class Api:
    def __init__(self, runner: asyncio.Runner, client: TestClient) -> None:
        self.runner, self.client = runner, client


RESERVATION_IDS: list[str] = []


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    runner = asyncio.Runner()
    specs = {"general": QueueSpec(name="general")}

    async def start() -> TestClient:
        acd = Acd(specs, [AgentSpec(id="agent1", name="Kim", endpoint="PJSIP/agent1")])
        service = QueueService(acd, specs, FakeSwitch({}), load_catalogue(REPO / "prompts" / "catalog.yaml"))
        store = MemoryStore()
        now = dt.datetime.now(dt.UTC)
        for number in ("+821012345678", "+821022223333", "+8221234567"):
            r = await store.put_reservation(Reservation.new(number, "general", language="ko",
                                                            arrived_at=now, now=now))
            RESERVATION_IDS.append(r.id)
        desk = CallbackDesk(CallbacksConfig(owner="fuzz"), store, service, service, service.switch,
                            service.catalogue)
        root = web.Application()                 # mounted at /api, as on the admin listener
        root.add_subapp("/api", api_app(token=TOKEN, queues=service, desk=desk, store=store))
        client = TestClient(TestServer(root))
        await client.start_server()
        return client

    client = runner.run(start())
    try:
        yield Api(runner, client)
    finally:
        runner.run(client.close())
        runner.close()


SEGMENT = st.sampled_from(["api", "agents", "agent1", "nobody", "login", "logout", "pause", "resume",
                           "queues", "callbacks", "cancel", "", "..", "%00", quote('x", "a": "')]) | \
    st.text(max_size=8).map(lambda s: quote(s, safe=""))
KNOWN_PATHS = st.sampled_from(["/api/agents", "/api/queues", "/api/callbacks", "/api/agents/agent1/pause",
                         "/api/agents/agent1/login", "/api/agents/agent1/logout",
                         "/api/agents/agent1/resume", "/api/callbacks/x/cancel",
                         "/api/callbacks?status=pending", "/api/callbacks?status=nonsense",
                         "/api/v1/calls", "/api/v1/calls/x", "/api/v1/queues", "/api/v1/agents",
                         "/api/v1/agents/agent1/pause", "/api/v1/agents/nobody/login",
                         "/api/v1/reservations", "/api/v1/reservations/x/cancel",
                         "/api/v1/openapi.json"]) | \
    st.integers(0, 2).map(lambda i: f"/api/callbacks/{RESERVATION_IDS[i]}/cancel") | \
    st.integers(0, 2).map(lambda i: f"/api/v1/reservations/{RESERVATION_IDS[i]}/cancel")
PATHS = KNOWN_PATHS | KNOWN_PATHS | \
    st.lists(SEGMENT, min_size=1, max_size=5).map(lambda parts: "/api/" + "/".join(parts))
QUERY = st.none() | st.dictionaries(st.sampled_from(["status", "x", "", "since", "until", "number", "outcome",
                                                     "limit", "cursor", "state", "center"]),
                                    st.text(max_size=10),
                                    max_size=2).map(lambda q: "&".join(f"{quote(k)}={quote(v)}" for k, v in q.items()))
# Header values as bytes: visible ASCII and obs-text (bytes 0x80-0xff), as HTTP allows.
HEADER_BYTES = st.binary(max_size=30).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7f))
AUTHS = st.sampled_from([b"Bearer " + TOKEN.encode(), b"Bearer wrong", TOKEN.encode(), b"", b"Bearer ",
                         "Bearer 토큰".encode(), b"Bearer \xff\xfe"]) | HEADER_BYTES.map(lambda b: b"Bearer " + b)
BODIES = st.sampled_from([b"", b"{}", b'{"reason": "lunch"}', b"[1, 2]", b"5", b"null", b'"x"', b"{bad",
                          b'{"reason": [1]}', b'{"reason": null}', b'{"reason": "\\ud800"}', b"NaN",
                          b"[" * 5000 + b"]" * 5000, b"\xff\xfe", '{"reason": "점심"}'.encode()]) | \
    st.binary(max_size=60) | st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                                          lambda inner: st.lists(inner, max_size=3)
                                          | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                                          max_leaves=8).map(lambda v: json.dumps(v).encode())
METHODS = st.sampled_from(["GET", "POST"]) | st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH",
                                                              "OPTIONS", "HEAD"])


async def _request(client: TestClient, method: str, target: str, headers: list[bytes],
                   body: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        head = f"{method} {target} HTTP/1.1\r\nHost: fuzz\r\n".encode() + b"".join(h + b"\r\n" for h in headers)
        writer.write(head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()
        async with asyncio.timeout(5):
            answer = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@given(method=METHODS, path=PATHS, query=QUERY, right_token=st.booleans(), auth=AUTHS | st.none(),
       extra=st.lists(HEADER_BYTES, max_size=2), body=BODIES, json_type=st.booleans())
def test_no_admin_request_gets_a_5xx_and_every_answer_is_json(api: Api, method, path, query, right_token,
                                                              auth, extra, body, json_type):
    target = path + (f"?{query}" if query else "")
    assume("//" not in target[:2])
    if right_token:
        auth = b"Bearer " + TOKEN.encode()
    headers = [b"Authorization: " + auth] if auth is not None else []
    headers += [b"X-Fuzz: " + e for e in extra]
    if json_type:
        headers.append(b"Content-Type: application/json")
    status, answer = api.runner.run(_request(api.client, method, target, headers, body))
    event(f"status {status}")
    assert status < 500, (status, answer[:200])
    if method == "HEAD" or status in (204, 304):
        return
    value = json.loads(answer)
    if status >= 400:
        assert isinstance(value, dict) and isinstance(value.get("error"), str), value
    else:
        assert isinstance(value, (dict, list))
