"""The caller registry: international age, the CSV import, lookups in the store and over HTTP."""

import asyncio
import datetime as dt
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.errors import (
    CallerFileError,
    IvrError,
    RegistryTimeout,
    RegistryUnavailable,
    StoreError,
)
import ivr.config
from ivr.config import CallersConfig, load_config
from ivr.errors import ConfigError
from ivr.routing.registry import (CACHE_REFRESH, CachedRegistry, HttpRegistry, StoreRegistry, age_on,
                                  import_callers_csv, registry_for)
from ivr.store import open_store
from ivr.store.base import Caller
from ivr.store.sqlite import SqliteStore
from ivr.testing.memory_store import MemoryStore

D = dt.date
TODAY = D(2026, 3, 15)


# -- age ---------------------------------------------------------------------------------------

def test_a_caller_turns_a_year_older_on_the_birthday():
    assert age_on(D(1961, 3, 15), D(2026, 3, 15)) == 65       # birthday today
    assert age_on(D(1961, 3, 16), D(2026, 3, 15)) == 64       # birthday tomorrow
    assert age_on(D(1961, 3, 14), D(2026, 3, 15)) == 65
    assert age_on(D(1961, 12, 31), D(2026, 1, 1)) == 64


def test_a_leap_day_baby_turns_older_on_the_first_of_march_in_common_years():
    born = D(1960, 2, 29)
    assert age_on(born, D(2025, 2, 28)) == 64
    assert age_on(born, D(2025, 3, 1)) == 65
    assert age_on(born, D(2024, 2, 28)) == 63
    assert age_on(born, D(2024, 2, 29)) == 64


def test_a_baby_born_today_is_zero_and_a_future_birth_date_has_no_age():
    assert age_on(TODAY, TODAY) == 0
    assert age_on(TODAY + dt.timedelta(days=1), TODAY) is None


# -- CSV import --------------------------------------------------------------------------------

def write(tmp_path: Path, text: str, *, bom: bool = False, name: str = "callers.csv") -> Path:
    p = tmp_path / name
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return p


def test_good_rows_are_imported_in_every_date_form(tmp_path):
    p = write(tmp_path, "phone,birth_date,language,needs_assistance,name\n"
                        "010-1234-5678,1950-03-15,ko,yes,caller one\n"
                        "+82 10 2222 3333,19600229,EN,0,\n"
                        "02-123-4567,1945.8.15,,,\n"
                        "010-9999-8888,,vi,Y,\n")
    report = import_callers_csv(p, today=TODAY)
    assert report.problems == []
    assert (report.rows, report.accepted, report.rejected) == (4, 4, 0)
    assert report.callers == [
        Caller("+821012345678", D(1950, 3, 15), "ko", True, "caller one"),
        Caller("+821022223333", D(1960, 2, 29), "en", False, None),
        Caller("+8221234567", D(1945, 8, 15), None, False, None),
        Caller("+821099998888", None, "vi", True, None),
    ]


def test_bad_rows_are_reported_by_line_and_the_good_ones_kept(tmp_path):
    p = write(tmp_path, "phone,birth_date,language,needs_assistance\n"
                        "010-1234-5678,1950-03-15,ko,no\n"        # 2 good
                        "not-a-phone,1950-03-15,ko,no\n"          # 3
                        ",1950-03-15,ko,no\n"                     # 4
                        "010-1111-2222,1950-02-30,ko,no\n"        # 5
                        "\n"                                      # 6 blank: skipped
                        "010-1111-3333,2027-01-01,ko,no\n"        # 7
                        "010-1111-4444,1899-12-31,ko,no\n"        # 8
                        "010-1111-5555,15/03/1950,ko,no\n"        # 9
                        "010-1111-6666,1950-03-15,jp,no\n"        # 10
                        "010-1111-7777,1950-03-15,ko,maybe\n"     # 11
                        "010-1111-8888,1950-03-15,ko,no,extra\n"  # 12
                        "anonymous,1950-03-15,ko,no\n"            # 13
                        "010-2222-3333,1951-01-01,en,true\n")     # 14 good
    report = import_callers_csv(p, today=TODAY)
    messages = [str(x) for x in report.problems]
    assert messages == [
        f"{p}:3: bad phone: not a phone number (only digits, spaces and + - . ( ) may appear)",
        f"{p}:4: bad phone: empty",
        f"{p}:5: birth date '1950-02-30' is not a date on the calendar",
        f"{p}:7: birth date '2027-01-01' is in the future",
        f"{p}:8: birth date '1899-12-31' is before 1900",
        f"{p}:9: birth date '15/03/1950' is not YYYY-MM-DD, YYYYMMDD or YYYY.MM.DD",
        f"{p}:10: unknown language 'jp' (known: ko, en, zh, vi)",
        f"{p}:11: needs_assistance 'maybe' is not one of true/false, yes/no, y/n, 1/0",
        f"{p}:12: 5 fields, but the header names 4 (a comma inside a value needs quotes)",
        f"{p}:13: bad phone: withheld",
    ]
    assert [c.number for c in report.callers] == ["+821012345678", "+821022223333"]
    assert (report.rows, report.accepted, report.rejected) == (12, 2, 10)


def test_the_wellness_column_names_a_campaign_and_a_bad_one_is_a_bad_row(tmp_path):
    p = write(tmp_path, "phone,birth_date,wellness\n"
                        "010-1234-5678,1941-03-15,seoul\n"          # 2 on campaign seoul
                        "010-2222-3333,1950-01-01,\n"               # 3 blank: on none
                        "010-3333-4444,1945-08-15, 서울_north-2 \n"  # 4 letters, digits, - and _
                        "010-4444-5555,1940-01-01,seoul east\n"     # 5
                        "010-5555-6666,1940-01-01,seoul;drop\n"     # 6
                        f"010-6666-7777,1940-01-01,{'x' * 201}\n")  # 7
    report = import_callers_csv(p, today=TODAY)
    assert [str(x) for x in report.problems] == [
        f"{p}:5: wellness campaign 'seoul east' is not a campaign name (letters, digits, - and _ only)",
        f"{p}:6: wellness campaign 'seoul;drop' is not a campaign name (letters, digits, - and _ only)",
        f"{p}:7: wellness campaign longer than 200 characters",
    ]
    assert [(c.number, c.wellness) for c in report.callers] == [
        ("+821012345678", "seoul"), ("+821022223333", None), ("+821033334444", "서울_north-2")]
    assert (report.rows, report.accepted, report.rejected) == (6, 3, 3)


def test_a_file_without_the_wellness_column_puts_nobody_on_a_campaign(tmp_path):
    report = import_callers_csv(write(tmp_path, "phone,birth_date\n010-1234-5678,1941-03-15\n"),
                                today=TODAY)
    assert report.problems == [] and report.callers[0].wellness is None


def test_a_number_given_twice_keeps_the_later_row_with_a_warning(tmp_path):
    p = write(tmp_path, "phone,birth_date\n010-1234-5678,1950-01-01\n02-123-4567,1960-01-01\n"
                        "+821012345678,1951-02-02\n")
    report = import_callers_csv(p, today=TODAY)
    assert [str(x) for x in report.problems] == [f"{p}:4: warning: same number as line 2; this row replaces it"]
    assert report.callers == [Caller("+8221234567", D(1960, 1, 1)), Caller("+821012345678", D(1951, 2, 2))]
    assert (report.accepted, report.rejected, report.warnings) == (2, 0, 1)


def test_a_bom_any_column_order_and_case_and_quoted_fields_are_fine(tmp_path):
    p = write(tmp_path, 'Name,Birth_Date,PHONE\n"caller, one",1950-03-15,010-1234-5678\r\n'
                        '"say ""hi""",1960-01-01,010-2222-3333\r\n010,bad,010\r\n', bom=True)
    report = import_callers_csv(p, today=TODAY)
    assert [c.name for c in report.callers] == ["caller, one", 'say "hi"']
    assert [str(x) for x in report.problems] == [f"{p}:4: bad phone: not a valid number (read from region KR)"]


def test_a_stray_quote_costs_its_own_line_only(tmp_path):
    rows = [f"010-1000-{i:04d},1950-03-15,caller {i}" for i in range(1000)]
    rows[2] = '010-1000-0002,1950-03-15,"Kim'                  # line 4: the quote never closes
    p = write(tmp_path, "phone,birth_date,name\n" + "\n".join(rows) + "\n")
    report = import_callers_csv(p, today=TODAY)
    assert [str(x) for x in report.problems] == [
        (f'{p}:4: an unclosed quote: a value in quotes must end on its own line (a line is one '
         'row); this row was left out')]
    assert (report.rows, report.accepted, report.rejected) == (1000, 999, 1)


@pytest.mark.parametrize("line, message", [
    ('010-1234-5678,"1950-03-15"x,Kim', "text after a closing quote"),
    ('010-1234-5678,1950-03-15,Kim "Bob" Lee', "a quote inside a value that is not in quotes"),
    ('"two', "an unclosed quote"),
    ('lines",1960-01-01,010-2222-3333', "a quote inside a value that is not in quotes"),
])
def test_every_kind_of_broken_quoting_is_named_on_its_line(tmp_path, line, message):
    p = write(tmp_path, f"phone,birth_date,name\n{line}\n010-2222-3333,1960-01-01,Lee\n")
    report = import_callers_csv(p, today=TODAY)
    assert [x.line for x in report.problems] == [2] and message in report.problems[0].message
    assert [c.number for c in report.callers] == ["+821022223333"]


def test_a_header_with_a_stray_quote_cannot_be_imported(tmp_path):
    with pytest.raises(CallerFileError, match="unclosed quote") as err:
        import_callers_csv(write(tmp_path, 'phone,"birth_date\n010-1234-5678,1950-03-15\n'), today=TODAY)
    assert err.value.line == 1


def test_lines_end_as_editors_end_them(tmp_path):
    # \r\n (Windows), \n, and a lone \r (old Macs); a form feed or U+2028 is not a line end.
    p = write(tmp_path, "phone,birth_date,name\r010-1234-5678,1950-03-15,a\u2028b\r\n"
                        "abc,1950-03-15,x\n010-2222-3333,1960-01-01,y\n")
    report = import_callers_csv(p, today=TODAY)
    assert [c.number for c in report.callers] == ["+821012345678", "+821022223333"]
    assert [x.line for x in report.problems] == [3]


def test_unknown_columns_are_a_warning_on_the_header_line(tmp_path):
    p = write(tmp_path, "phone,birth_date,email\n010-1234-5678,1950-03-15,x@example.org\n")
    report = import_callers_csv(p, today=TODAY)
    assert report.accepted == 1
    assert report.problems[0].line == 1 and report.problems[0].severity == "warning"
    assert "'email'" in report.problems[0].message


@pytest.mark.parametrize("text, message", [
    ("", "empty file"),
    ("010-1234-5678,1950-03-15\n", "the header has no column phone, birth_date"),
    ("phone,language\n010-1234-5678,ko\n", "no column birth_date"),
    ("phone,birth_date,phone\n", "appears twice"),
])
def test_a_file_without_a_usable_header_cannot_be_imported(tmp_path, text, message):
    with pytest.raises(CallerFileError, match=message) as err:
        import_callers_csv(write(tmp_path, text), today=TODAY)
    assert err.value.line == 1


def test_a_file_that_is_not_utf8_says_where_and_what_to_do(tmp_path):
    p = tmp_path / "cp949.csv"
    p.write_bytes("phone,birth_date,name\n010-1234-5678,1950-03-15,가나다\n".encode("cp949"))
    with pytest.raises(CallerFileError, match="CSV UTF-8") as err:
        import_callers_csv(p, today=TODAY)
    assert err.value.line == 2
    assert str(err.value).startswith(f"{p}:2: ")


@pytest.mark.timeout(10)
def test_a_device_or_a_folder_is_refused_not_read_forever(tmp_path):
    for path, message in (("/dev/zero", "not a regular file"), (tmp_path, "a folder")):
        with pytest.raises(CallerFileError, match=message):
            import_callers_csv(path)


def test_a_missing_file_is_a_caller_file_error(tmp_path):
    with pytest.raises(CallerFileError, match="cannot be read"):
        import_callers_csv(tmp_path / "nope.csv")
    assert issubclass(CallerFileError, IvrError)


async def test_reimporting_a_file_updates_the_callers(tmp_path):
    store = MemoryStore()
    first = import_callers_csv(write(tmp_path, "phone,birth_date,language\n010-1234-5678,1950-03-15,ko\n"),
                               today=TODAY)
    await store.put_callers(first.callers)
    second = import_callers_csv(write(tmp_path, "phone,birth_date,language\n01012345678,1950-03-16,en\n"),
                                today=TODAY)
    await store.put_callers(second.callers)
    caller = await store.get_caller("+821012345678")
    assert (caller.birth_date, caller.language) == (D(1950, 3, 16), "en")
    assert len(store.callers) == 1


# -- lookups -----------------------------------------------------------------------------------

async def test_the_store_registry_answers_from_the_store_and_wraps_its_errors():
    store = MemoryStore()
    await store.put_callers([Caller("+821012345678", D(1950, 3, 15))])
    registry = StoreRegistry(store)
    assert (await registry.lookup("+821012345678")).birth_date == D(1950, 3, 15)
    assert await registry.lookup("+821099999999") is None
    store.fail["get_caller"] = StoreError("database is locked")
    with pytest.raises(RegistryUnavailable, match="database is locked"):
        await registry.lookup("+821012345678")


class Crm:
    """A deployment's own caller registry, over real HTTP."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.requests: list[web.Request] = []
        self.records = {
            "+821012345678": {"birth_date": "1950-03-15", "language": "ko", "needs_assistance": True,
                              "name": "caller one"},
            "+821022223333": {"birth_date": "1990-13-01"},
            "+821033334444": {"birth_date": "1941-03-15", "wellness": "seoul"},
            "+821044445555": {"wellness": None},
            "+821055556666": {"wellness": "seoul east"},
            "+821066667777": {"wellness": 7},
        }
        app = web.Application()
        app.router.add_get("/callers/{number}", self.caller)
        app.router.add_get("/broken", self.broken)
        app.router.add_get("/slow/{number}", self.slow)
        app.router.add_get("/query", self.query)
        self.server = TestServer(app)

    async def caller(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        record = self.records.get(request.match_info["number"])
        if record is None:
            raise web.HTTPNotFound()
        return web.json_response(record)

    async def query(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        record = self.records.get(request.query["number"])
        return web.json_response(record) if record else web.Response(status=404)

    async def broken(self, request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async def slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.json_response({})

    def url(self, path: str) -> str:
        return f"http://{self.server.host}:{self.server.port}{path}"


@pytest.fixture
async def crm():
    crm = Crm()
    await crm.server.start_server()
    try:
        yield crm
    finally:
        crm.release.set()
        await crm.server.close()


async def test_http_registry_reads_a_registered_caller_and_sends_the_token(crm):
    async with aiohttp.ClientSession() as session:
        registry = HttpRegistry(crm.url("/callers/{number}"), 1.0, session,
                                headers={"Authorization": "Bearer s3cret"})
        caller = await registry.lookup("+821012345678")
    assert caller == Caller("+821012345678", D(1950, 3, 15), "ko", True, "caller one")
    assert crm.requests[0].headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(registry)


async def test_http_registry_reads_a_wellness_campaign_when_it_has_one(crm):
    async with aiohttp.ClientSession() as session:
        registry = HttpRegistry(crm.url("/callers/{number}"), 1.0, session)
        assert (await registry.lookup("+821033334444")).wellness == "seoul"
        assert (await registry.lookup("+821044445555")).wellness is None
        assert (await registry.lookup("+821012345678")).wellness is None      # no such key
        with pytest.raises(RegistryUnavailable, match="not a campaign name"):
            await registry.lookup("+821055556666")
        with pytest.raises(RegistryUnavailable, match="wellness must be a string"):
            await registry.lookup("+821066667777")


async def test_http_registry_puts_the_number_in_a_query_too(crm):
    async with aiohttp.ClientSession() as session:
        registry = HttpRegistry(crm.url("/query") + "?number={number}", 1.0, session)
        assert (await registry.lookup("+821012345678")).language == "ko"
        assert await registry.lookup("+821099999999") is None
    assert crm.requests[0].query_string == "number=%2B821012345678"


async def test_http_registry_404_is_an_unknown_caller(crm):
    async with aiohttp.ClientSession() as session:
        assert await HttpRegistry(crm.url("/callers/{number}"), 1.0, session).lookup("+821099999999") is None


async def test_http_registry_errors_and_bad_answers_are_unavailable_without_the_number(crm):
    async with aiohttp.ClientSession() as session:
        with pytest.raises(RegistryUnavailable, match="HTTP 500") as err:
            await HttpRegistry(crm.url("/broken?n={number}"), 1.0, session).lookup("+821012345678")
        assert "1012345678" not in str(err.value)
        with pytest.raises(RegistryUnavailable, match="not a date"):
            await HttpRegistry(crm.url("/callers/{number}"), 1.0, session).lookup("+821022223333")
        with pytest.raises(RegistryUnavailable, match="unreachable") as err:
            await HttpRegistry("http://127.0.0.1:9/callers/{number}", 1.0, session).lookup("+821012345678")
        assert "1012345678" not in str(err.value)


async def test_a_slow_http_registry_times_out(crm):
    async with aiohttp.ClientSession() as session:
        registry = HttpRegistry(crm.url("/slow/{number}"), 0.1, session)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(RegistryTimeout) as err:
            await registry.lookup("+821012345678")
        assert loop.time() - start < 0.5
    assert isinstance(err.value, RegistryUnavailable) and isinstance(err.value, TimeoutError)


def test_the_registry_url_must_hold_the_number():
    with pytest.raises(ValueError, match="{number}"):
        HttpRegistry("https://crm.example/callers", 1.0, None)  # type: ignore[arg-type]


# -- the cache in front of the store's registry -------------------------------------------------

KNOWN, UNKNOWN, THIRD = "+821012345678", "+821099999999", "+821033334444"


class Clock:
    """The cache's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Generation:
    """The registry generation a MemoryStore does not keep: the test says when it changes."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.fail: StoreError | None = None

    async def __call__(self) -> int:
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        return self.value


class GatedRegistry:
    """A registry that answers "not registered" when released, and says when it is asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def lookup(self, e164: str) -> Caller | None:
        self.asked.append(e164)
        self.entered.set()
        await self.release.wait()
        return None


async def test_the_cache_answers_a_number_asked_again_without_the_store():
    store = MemoryStore()
    await store.put_callers([Caller(KNOWN, D(1950, 3, 15))])
    generation = Generation()
    cache = CachedRegistry(StoreRegistry(store), generation, size=10, clock=Clock())
    assert (await cache.lookup(KNOWN)).birth_date == D(1950, 3, 15)
    assert await cache.lookup(UNKNOWN) is None
    store.fail["get_caller"] = StoreError("database is locked")      # not asked again
    assert (await cache.lookup(KNOWN)).birth_date == D(1950, 3, 15)
    assert await cache.lookup(UNKNOWN) is None                        # "not registered" is kept too
    assert store.asked.count("get_caller") == 2
    assert (cache.hits, cache.misses, generation.reads) == (2, 2, 1)  # within the refresh: one read


async def test_an_import_by_another_process_is_seen_within_the_refresh(tmp_path):
    url = f"sqlite:///{tmp_path}/ivr.db"
    clock = Clock()
    async with open_store(url) as engine_store, open_store(url) as cli_store:
        cache = CachedRegistry(StoreRegistry(engine_store), engine_store.registry_generation,
                               size=100, clock=clock)
        assert cache.refresh == CACHE_REFRESH
        assert await cache.lookup(KNOWN) is None                      # not registered yet
        await cli_store.put_callers([Caller(KNOWN, D(1950, 3, 15))])  # ivr callers import
        clock.now += CACHE_REFRESH - 0.1
        assert await cache.lookup(KNOWN) is None                      # within the bound: as before
        clock.now += 0.1
        assert (await cache.lookup(KNOWN)).birth_date == D(1950, 3, 15)
        clock.now += 3 * CACHE_REFRESH                                # no import since: still kept
        assert (await cache.lookup(KNOWN)).birth_date == D(1950, 3, 15)
        assert (cache.hits, cache.misses) == (2, 2)


def test_the_documented_bound_is_the_cache_s():
    assert f"within\n  {CACHE_REFRESH:g} seconds" in ivr.config.__doc__


async def test_an_answer_read_while_the_cache_is_emptied_is_not_kept():
    registry, generation, clock = GatedRegistry(), Generation(), Clock()
    cache = CachedRegistry(registry, generation, size=10, clock=clock)
    first = asyncio.ensure_future(cache.lookup(KNOWN))
    await registry.entered.wait()                 # read at generation 0 …
    generation.value = 1                          # … when an import lands
    clock.now += CACHE_REFRESH
    registry.release.set()
    assert await cache.lookup(UNKNOWN) is None    # sees generation 1: empties the cache
    assert await first is None
    assert len(cache) == 1                        # the answer from before the import was dropped
    assert await cache.lookup(KNOWN) is None
    assert registry.asked == [KNOWN, UNKNOWN, KNOWN]


async def test_a_lookup_does_not_wait_for_another_s_generation_read():
    store = MemoryStore()
    await store.put_callers([Caller(KNOWN, D(1950, 3, 15))])
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow_generation() -> int:
        entered.set()
        await release.wait()
        return 0

    cache = CachedRegistry(StoreRegistry(store), slow_generation, size=10, clock=Clock())
    first = asyncio.ensure_future(cache.lookup(KNOWN))
    await entered.wait()
    assert (await cache.lookup(KNOWN)).birth_date == D(1950, 3, 15)   # from the store, at once
    assert len(cache) == 0                                            # and not kept
    release.set()
    assert (await first).birth_date == D(1950, 3, 15)
    assert len(cache) == 1 and store.asked.count("get_caller") == 2


async def test_the_least_recently_asked_number_leaves_a_full_cache():
    store = MemoryStore()
    cache = CachedRegistry(StoreRegistry(store), Generation(), size=2, clock=Clock())
    for number in (KNOWN, UNKNOWN, KNOWN, THIRD):     # UNKNOWN is the least recently asked
        await cache.lookup(number)
    assert len(cache) == 2
    await cache.lookup(KNOWN)
    assert store.asked.count("get_caller") == 3
    await cache.lookup(UNKNOWN)
    assert store.asked.count("get_caller") == 4


async def test_a_generation_that_cannot_be_read_empties_the_cache_and_fails_the_lookup():
    store = MemoryStore()
    generation, clock = Generation(), Clock()
    cache = CachedRegistry(StoreRegistry(store), generation, size=10, clock=clock)
    await cache.lookup(KNOWN)
    generation.fail = StoreError("database is locked")
    clock.now += CACHE_REFRESH
    with pytest.raises(RegistryUnavailable, match="database is locked"):
        await cache.lookup(KNOWN)
    assert len(cache) == 0
    generation.fail = None
    assert await cache.lookup(KNOWN) is None
    assert store.asked.count("get_caller") == 2


async def test_a_failed_lookup_is_not_kept():
    store = MemoryStore()
    cache = CachedRegistry(StoreRegistry(store), Generation(), size=10, clock=Clock())
    store.fail["get_caller"] = StoreError("database is locked")
    with pytest.raises(RegistryUnavailable):
        await cache.lookup(KNOWN)
    del store.fail["get_caller"]
    assert await cache.lookup(KNOWN) is None
    assert store.asked.count("get_caller") == 2


def test_the_store_s_registry_is_cached_as_configured_and_an_http_one_never(tmp_path):
    store = SqliteStore(":memory:")       # not opened: nothing is asked
    cached = registry_for(CallersConfig(), store, None)
    assert isinstance(cached, CachedRegistry) and cached.size == 10_000
    assert isinstance(registry_for(CallersConfig(registry_cache=0), store, None), StoreRegistry)
    base = "ari: {username: ivr, password: x}\nstore: {url: 'sqlite:///var/test.db'}\n"
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text(base + "callers:\n  registry_cache: 0\n"
                   "  registry: {url: 'https://crm.example/callers/{number}'}\n", encoding="utf-8")
    config = load_config(cfg, env={}).callers
    assert config.registry_cache == 0
    assert isinstance(registry_for(config, store, object()), HttpRegistry)  # type: ignore[arg-type]
    cfg.write_text(base, encoding="utf-8")
    assert load_config(cfg, env={"IVR_CALLERS_REGISTRY_CACHE": "500"}).callers.registry_cache == 500


@pytest.mark.parametrize("value", ["-1", "lots", "1.5", "2000000", "true"])
def test_a_cache_size_that_makes_no_sense_is_named(tmp_path, value):
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("ari: {username: ivr, password: x}\n" f"callers: {{registry_cache: {value}}}\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError, match="callers.registry_cache"):
        load_config(cfg, env={})
