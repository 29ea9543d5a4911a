"""The call log survives a restart of the engine."""

import pytest

from ivr.call import CallRecord
from ivr.errors import ConfigError, StoreError
from ivr.store import open_store


async def test_a_recorded_call_is_read_back_after_reopening(tmp_path):
    url = f"sqlite:///{tmp_path}/ivr.db"
    rec = CallRecord("ch-1", "01012345678", "15771000", flow="main", flow_version="abc")
    rec.visit("welcome"); rec.visit("main_menu"); rec.pressed("1"); rec.end("queued", "general")
    async with open_store(url) as store:
        await store.record_call(rec)
    async with open_store(url) as store:
        (back,) = await store.recent_calls()
    assert back.nodes == ["welcome", "main_menu"]
    assert back.digits == ["1"]
    assert (back.outcome, back.detail) == ("queued", "general")
    assert back.started_at == rec.started_at


async def test_newest_calls_come_first(tmp_path):
    async with open_store(f"sqlite:///{tmp_path}/ivr.db") as store:
        for i in range(3):
            await store.record_call(CallRecord(f"c{i}", "", "15771000"))
        assert [r.call_id for r in await store.recent_calls(2)] == ["c2", "c1"]


async def test_unknown_store_scheme_is_a_config_error():
    with pytest.raises(ConfigError):
        async with open_store("mysql://x"):
            pass


async def test_unwritable_store_is_a_store_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError):
        async with open_store(f"sqlite:///{tmp_path}/file/sub/ivr.db"):
            pass
