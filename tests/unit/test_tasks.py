"""Background tasks are tracked: a failure is logged by name, never lost; cancelling works."""

from __future__ import annotations

import asyncio
import gc

import pytest
from structlog.testing import capture_logs

from ivr.tasks import TaskSet


async def _fail(message: str) -> None:
    await asyncio.sleep(0)
    raise RuntimeError(message)


async def _forever() -> None:
    await asyncio.Event().wait()


async def test_a_task_that_fails_is_logged_with_its_name_and_traceback():
    tasks = TaskSet("acd.offers")
    with capture_logs() as logs:
        tasks.spawn(_fail("agent phone exploded"), name="acd.offer.agent7")
        assert await tasks.wait(1) == set()
    failed = [e for e in logs if e["event"] == "task.failed"]
    assert len(failed) == 1
    assert failed[0]["tasks"] == "acd.offers"
    assert failed[0]["task"] == "acd.offer.agent7"
    assert "agent phone exploded" in failed[0]["error"]
    kind, _exc, tb = failed[0]["exc_info"]
    assert kind is RuntimeError and tb is not None
    assert failed[0]["log_level"] == "error"


async def test_an_unnamed_task_is_logged_under_its_coroutine():
    tasks = TaskSet("desk")
    with capture_logs() as logs:
        tasks.spawn(_fail("x"))
        await tasks.wait(1)
    assert [e["task"] for e in logs if e["event"] == "task.failed"] == ["desk:_fail"]


async def test_a_failed_task_is_never_reported_as_an_exception_nobody_retrieved():
    loop = asyncio.get_running_loop()
    unretrieved: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    try:
        tasks = TaskSet("t")
        with capture_logs():
            tasks.spawn(_fail("lost?"), name="t.one")
            await tasks.wait(1)
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert unretrieved == []


async def test_a_cancelled_task_is_not_a_failure_and_the_set_forgets_finished_tasks():
    tasks = TaskSet("t")
    with capture_logs() as logs:
        waiting = tasks.spawn(_forever(), name="t.waiting")
        tasks.spawn(asyncio.sleep(0), name="t.quick")
        assert len(tasks) == 2
        assert await tasks.wait(0.05) == {waiting}
        assert len(tasks) == 1
        await tasks.cancel_all(1)
        assert len(tasks) == 0
        assert waiting.cancelled()
    assert [e for e in logs if e["event"] in ("task.failed", "tasks.not_ended")] == []


async def test_cancel_all_is_bounded_and_names_a_task_that_will_not_end():
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()          # refuses to end when asked
            raise

    tasks = TaskSet("t")
    with capture_logs() as logs:
        task = tasks.spawn(stubborn(), name="t.stubborn")
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await tasks.cancel_all(0.1)
        assert loop.time() - began < 0.5
        assert not task.done()
        release.set()
        await asyncio.wait({task}, timeout=1)
    warned = [e for e in logs if e["event"] == "tasks.not_ended"]
    assert warned and warned[0]["names"] == ["t.stubborn"] and warned[0]["count"] == 1
    assert task.cancelled()


@pytest.mark.parametrize("waits", [lambda tasks: tasks.wait(5), lambda tasks: tasks.cancel_all(5)],
                         ids=["wait", "cancel_all"])
async def test_cancelling_whoever_waits_on_the_set_re_raises_the_cancellation(waits):
    tasks = TaskSet("t")
    started = asyncio.Event()
    release = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()
            raise

    tasks.spawn(stubborn(), name="t.stubborn")
    await started.wait()
    waiter = asyncio.ensure_future(waits(tasks))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await tasks.cancel_all(1)
    assert len(tasks) == 0


async def test_an_empty_set_waits_for_nothing():
    tasks = TaskSet("t")
    assert await tasks.wait(None) == set()
    await tasks.cancel_all(None)
    assert len(tasks) == 0


async def test_first_done_returns_when_one_is_done_and_cancels_none():
    from ivr.tasks import first_done

    loop = asyncio.get_running_loop()
    slow, quick = loop.create_future(), loop.create_future()
    loop.call_later(0.01, quick.set_result, "here")
    await asyncio.wait_for(first_done(slow, quick), 2)
    assert quick.result() == "here" and not slow.done()
    await first_done(slow, quick)                     # one already done: at once
    waiting = asyncio.ensure_future(first_done(slow))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not slow.cancelled()                        # giving up on the wait left it alone
    slow.set_result(1)
