"""The sandbox works end to end: a SIPp caller reaches the ARI application, keys arrive in order
(repeats included), and a hang-up from ARI ends the caller's call."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from ivr.sipp import place_call

pytestmark = pytest.mark.e2e


async def next_event(ws: aiohttp.ClientWebSocketResponse, wanted: str, timeout: float = 10) -> dict:
    async def read() -> dict:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(msg.data)
            if event.get("type") == wanted:
                return event
        raise AssertionError(f"the ARI WebSocket closed while waiting for {wanted}")

    return await asyncio.wait_for(read(), timeout)


async def test_a_caller_reaches_the_ivr_and_keys_arrive_in_order(sandbox) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(sandbox.ws_url, headers=sandbox.auth_header, heartbeat=20) as ws:
            call = asyncio.create_task(
                place_call("15771000", caller="01012345678", keys="1122", key_delay=0.5, max_duration=30)
            )
            try:
                start = await next_event(ws, "StasisStart")
                channel = start["channel"]
                assert channel["dialplan"]["exten"] == "15771000"
                assert channel["dialplan"]["context"] == "ivr-inbound"
                assert channel["caller"]["number"] == "01012345678"
                assert channel["state"] == "Ring"
                assert start["args"] == []
                cid = channel["id"]

                url = f"{sandbox.base_url}/channels/{cid}"
                async with http.post(f"{url}/answer", headers=sandbox.auth_header) as resp:
                    assert resp.status == 204, await resp.text()

                digits = [(await next_event(ws, "ChannelDtmfReceived"))["digit"] for _ in range(4)]
                assert digits == ["1", "1", "2", "2"]

                async with http.delete(url, headers=sandbox.auth_header) as resp:
                    assert resp.status == 204, await resp.text()
                await next_event(ws, "StasisEnd")
                result = await asyncio.wait_for(call, 15)
            finally:
                if not call.done():
                    call.cancel()
    assert result.answered, result.describe() + "\n" + result.errors
    assert result.outcome == "remote-bye", result.describe() + "\n" + result.errors
    assert result.ended_by == "remote"
    assert result.exit_code == 0


async def test_ari_refuses_requests_without_credentials(sandbox) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sandbox.base_url}/asterisk/info") as resp:
            assert resp.status == 401
        async with http.get(f"{sandbox.base_url}/asterisk/info", headers=sandbox.auth_header) as resp:
            assert resp.status == 200
            info = await resp.json()
    assert info["system"]["version"].startswith("22.")
