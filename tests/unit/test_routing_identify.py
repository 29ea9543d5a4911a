"""Knowing the caller before the first prompt: age, repeat calls, and never a caller left in silence."""

import asyncio
import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pytest
import structlog
from structlog.testing import capture_logs

from ivr.call import CallRecord
from ivr.errors import RegistryUnavailable, StoreError
from ivr.logs import configure_logging
from ivr.routing.identify import CallerFacts, RepeatPolicy, identify
from ivr.routing.numbers import normalize
from ivr.routing.registry import StoreRegistry
from ivr.store.base import Caller
from ivr.testing.memory_store import MemoryStore

SEOUL = ZoneInfo("Asia/Seoul")
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 15, 2, 0, tzinfo=UTC)          # 11:00 in Seoul
MOBILE = "+821012345678"


def store_with(*callers: Caller) -> MemoryStore:
    store = MemoryStore()
    store.callers.update({c.number: c for c in callers})
    return store


def past_call(call_id: str, ago: dt.timedelta, *, number: str = MOBILE, outcome: str | None = "completed",
              now: dt.datetime = NOW) -> CallRecord:
    return CallRecord(call_id=call_id, caller="010-1234-5678", dialled="15771000", started_at=now - ago,
                      outcome=outcome, number=number)


async def who(raw, store: MemoryStore, *, registry=None, now=NOW, repeat=RepeatPolicy(), budget=1.0,
              call_id="this-call") -> CallerFacts:
    return await identify(raw, now=now, tz=SEOUL, registry=registry or StoreRegistry(store), store=store,
                          repeat=repeat, budget=budget, call_id=call_id)


class HangingRegistry:
    """A registry that answers only when told to (never, in these tests)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.asked: list[str] = []
        self.cancelled = False

    async def lookup(self, e164: str) -> Caller | None:
        self.asked.append(e164)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return None


async def test_an_elderly_registered_caller_is_known_with_their_age():
    store = store_with(Caller(MOBILE, dt.date(1950, 3, 15), "ko", True))
    facts = await who("010-1234-5678", store)
    assert facts == CallerFacts(number=MOBILE, anonymous=False, known=True, age=76, recent_calls=1,
                                is_repeat=False, language="ko", needs_assistance=True)
    assert facts.variables() == {
        "caller.known": True, "caller.age": 76, "caller.recent_calls": 1, "caller.is_repeat": False,
        "caller.language": "ko", "caller.needs_assistance": True, "caller.number": MOBILE,
        "caller.anonymous": False,
    }


async def test_a_forty_year_old_is_known_but_young():
    store = store_with(Caller(MOBILE, dt.date(1985, 6, 1), "en"))
    facts = await who("+82 10 1234 5678", store)
    assert (facts.known, facts.age, facts.language, facts.needs_assistance) == (True, 40, "en", False)


async def test_an_unregistered_caller_is_unknown_with_no_age():
    facts = await who("010-1234-5678", MemoryStore())
    assert (facts.known, facts.age, facts.number, facts.recent_calls) == (False, None, MOBILE, 1)
    assert facts.variables()["caller.age"] is None


async def test_a_registered_caller_without_a_birth_date_has_no_age():
    facts = await who("01012345678", store_with(Caller(MOBILE, None, "vi")))
    assert (facts.known, facts.age, facts.language) == (True, None, "vi")


async def test_age_is_taken_on_the_day_of_the_call_in_seoul():
    # 23:30 UTC on 14 March is 08:30 on 15 March in Seoul: a birthday on 15 March counts.
    late = dt.datetime(2026, 3, 14, 23, 30, tzinfo=UTC)
    store = store_with(Caller(MOBILE, dt.date(1961, 3, 15)))
    assert (await who("01012345678", store, now=late)).age == 65
    assert (await identify("01012345678", now=late, tz=ZoneInfo("UTC"), registry=StoreRegistry(store),
                           store=store)).age == 64


async def test_the_third_call_in_a_week_is_a_repeat_call_this_call_included():
    store = MemoryStore()
    await store.call_started(past_call("a", dt.timedelta(days=6)))
    facts = await who("010-1234-5678", store)
    assert (facts.recent_calls, facts.is_repeat) == (2, False)

    await store.call_started(past_call("b", dt.timedelta(hours=1)))
    await store.call_started(past_call("old", dt.timedelta(days=8)))                 # outside the window
    await store.call_started(past_call("other", dt.timedelta(hours=1), number="+821099998888"))
    await store.call_started(past_call("this-call", dt.timedelta(0), outcome=None))  # counted once, not twice
    facts = await who("010-1234-5678", store)
    assert (facts.recent_calls, facts.is_repeat) == (3, True)


async def test_with_unserved_only_calls_that_reached_an_agent_do_not_count():
    store = MemoryStore()
    await store.call_started(past_call("served", dt.timedelta(days=1), outcome="agent_connected"))
    await store.call_started(past_call("gave-up", dt.timedelta(days=2), outcome="caller_hangup"))
    unserved = RepeatPolicy(calls=3, unserved_only=True)
    assert (await who("01012345678", store, repeat=unserved)).recent_calls == 2
    assert (await who("01012345678", store)).recent_calls == 3


async def test_a_registry_that_hangs_leaves_the_caller_unknown_within_the_budget():
    store = MemoryStore()
    await store.call_started(past_call("a", dt.timedelta(days=1)))
    await store.call_started(past_call("b", dt.timedelta(days=2)))
    registry = HangingRegistry()
    loop = asyncio.get_running_loop()
    with capture_logs() as logs:
        start = loop.time()
        facts = await who("010-1234-5678", store, registry=registry, budget=0.2)
        elapsed = loop.time() - start
    assert 0.2 <= elapsed < 0.2 + 0.15
    assert (facts.known, facts.age) == (False, None)
    assert (facts.recent_calls, facts.is_repeat) == (3, True)       # the history still answered
    assert registry.asked == [MOBILE]
    await asyncio.sleep(0)
    assert registry.cancelled                                        # nothing left running
    assert [(e["event"], e["log_level"], e["number"]) for e in logs] == [("caller.registry_timeout", "warning", MOBILE)]


async def test_a_slow_history_does_not_hold_the_caller_either():
    store = store_with(Caller(MOBILE, dt.date(1950, 1, 1)))
    store.gate["count_calls_since"] = asyncio.Event()
    loop = asyncio.get_running_loop()
    with capture_logs() as logs:
        start = loop.time()
        facts = await who("010-1234-5678", store, budget=0.1)
    assert loop.time() - start < 0.2
    assert (facts.known, facts.age, facts.recent_calls, facts.is_repeat) == (True, 76, None, False)
    assert [e["event"] for e in logs] == ["caller.history_unavailable"]


async def test_when_the_store_fails_the_caller_is_not_a_repeat_caller():
    store = store_with(Caller(MOBILE, dt.date(1950, 1, 1)))
    await store.call_started(past_call("a", dt.timedelta(days=1)))
    await store.call_started(past_call("b", dt.timedelta(days=2)))
    store.fail["count_calls_since"] = StoreError("database is locked")
    with capture_logs() as logs:
        facts = await who("010-1234-5678", store)
    assert (facts.recent_calls, facts.is_repeat, facts.known, facts.age) == (None, False, True, 76)
    assert logs[0]["event"] == "caller.history_unavailable"
    assert logs[0]["error"] == "database is locked"


async def test_a_failing_registry_leaves_the_caller_unknown():
    class Broken:
        async def lookup(self, e164):
            raise RegistryUnavailable("caller registry answered HTTP 503")

    class Buggy:
        def lookup(self, e164):                   # not even a coroutine
            raise KeyError(e164)

    for registry, error in ((Broken(), "caller registry answered HTTP 503"), (Buggy(), "KeyError")):
        with capture_logs() as logs:
            facts = await who("010-1234-5678", MemoryStore(), registry=registry)
        assert (facts.known, facts.age, facts.recent_calls) == (False, None, 1)
        assert [(e["event"], e["error"]) for e in logs] == [("caller.registry_unavailable", error)]


@pytest.mark.parametrize("raw, anonymous", [("", True), (None, True), ("anonymous", True), ("Restricted", True),
                                            ("sip:x@y", False), ("1" * 10_000, False)])
async def test_a_withheld_or_invalid_number_asks_nothing(raw, anonymous):
    store = MemoryStore()
    registry = HangingRegistry()
    facts = await who(raw, store, registry=registry)
    assert facts == CallerFacts(anonymous=anonymous)
    assert facts.variables()["caller.number"] is None
    assert store.asked == [] and registry.asked == []


async def test_a_number_already_normalised_is_not_normalised_again(monkeypatch):
    import ivr.routing.identify as identify_module

    store = store_with(Caller(MOBILE, dt.date(1950, 3, 15)))
    number = normalize("010-1234-5678")

    def never(*args, **kwargs):
        raise AssertionError("normalised twice")

    monkeypatch.setattr(identify_module, "normalize", never)
    facts = await identify("010-1234-5678", now=NOW, tz=SEOUL, registry=StoreRegistry(store),
                           store=store, call_id="this-call", number=number)
    assert (facts.number, facts.known, facts.age) == (MOBILE, True, 76)
    withheld = await identify("anonymous", now=NOW, tz=SEOUL, registry=StoreRegistry(store),
                              store=store, number=normalize("anonymous"))
    assert withheld == CallerFacts(anonymous=True)


async def test_a_hang_up_during_the_lookup_cancels_both_lookups():
    store = MemoryStore()
    store.gate["count_calls_since"] = asyncio.Event()
    registry = HangingRegistry()
    task = asyncio.create_task(who("010-1234-5678", store, registry=registry, budget=5.0))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert registry.cancelled


async def test_the_number_is_masked_in_the_log_lines(monkeypatch):
    # A logger of its own: a configured logger caches its pipeline on first use.
    monkeypatch.setattr("ivr.routing.identify.log", structlog.get_logger("test"))
    buf = io.StringIO()
    configure_logging("json", "info", stream=buf)
    try:
        await who("010-1234-5678", MemoryStore(), registry=HangingRegistry(), budget=0.01)
    finally:
        structlog.reset_defaults()
    line = json.loads(buf.getvalue().strip().splitlines()[-1])
    assert line["event"] == "caller.registry_timeout"
    assert line["number"] == "+821*****5678"
    assert "1012345678" not in buf.getvalue()


async def test_an_elderly_repeat_caller_is_known_through_the_real_store(store_url):
    from ivr.store import open_store

    async with open_store(store_url) as store:
        await store.put_callers([Caller(MOBILE, dt.date(1950, 3, 15), "ko", True)])
        for i, ago in enumerate((dt.timedelta(days=6), dt.timedelta(hours=2), dt.timedelta(days=9))):
            await store.call_started(past_call(f"past-{i}", ago))
        await store.call_started(past_call("this-call", dt.timedelta(0), outcome=None))
        facts = await identify("010-1234-5678", now=NOW, tz=SEOUL, registry=StoreRegistry(store), store=store,
                               call_id="this-call")
    assert facts == CallerFacts(number=MOBILE, known=True, age=76, recent_calls=3, is_repeat=True,
                                language="ko", needs_assistance=True)
