"""The bare ARI loop of bench/asterisk_load.py: the least Python that serves its call.

One WebSocket, one aiohttp session, a dict of timers; no flow language, no store, no logging.
Per call: answer, play the prompt list as one playback, wait up to ``--wait`` seconds after it
for a key (a key stops the prompts and ends the call at once), hang up.  Its CPU per call is
what the engine is measured against.  With ``--socket`` it sends its requests as RESTRequest
frames on the event socket (Asterisk 22.4+) instead of HTTP, and reads no answer: the least
Python on that transport.

    python bench/bare_ari.py --url http://127.0.0.1:8088/ari --user ivr --password-file F \\
        --app bench-bare --media sound:ivr/ko/queue_wait_post,sound:ivr/ko/digit_2 --wait 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp


async def serve(url: str, user: str, password: str, app: str, media: str, wait: float,
                socket: bool = False) -> None:
    auth = aiohttp.BasicAuth(user, password)
    timers: dict[str, asyncio.TimerHandle] = {}
    pending: set[asyncio.Task[Any]] = set()
    async with aiohttp.ClientSession(auth=auth, connector=aiohttp.TCPConnector(limit=100)) as http:

        events: list[aiohttp.ClientWebSocketResponse] = []      # the event socket, once open
        ids = iter(range(1, 1 << 62))

        def send(method: str, path: str, **params: str) -> None:
            if socket and events:
                frame = {"type": "RESTRequest", "request_id": str(next(ids)), "method": method,
                         "uri": path[1:], "query_strings": [{"name": k, "value": v}
                                                            for k, v in params.items()]}
                task = asyncio.ensure_future(events[0].send_str(json.dumps(frame)))
                pending.add(task)
                task.add_done_callback(pending.discard)
                return

            async def go() -> None:
                try:
                    async with http.request(method, url + path, params=params) as resp:
                        await resp.read()
                except aiohttp.ClientError:
                    pass
            task = asyncio.ensure_future(go())
            pending.add(task)
            task.add_done_callback(pending.discard)

        def hang_up(channel: str) -> None:
            timers.pop(channel, None)
            send("DELETE", f"/channels/{channel}")

        async with http.ws_connect(f"{url}/events", params={"app": app}) as ws:
            events.append(ws)
            print("ready", flush=True)
            async for msg in ws:
                event = json.loads(msg.data)
                kind = event["type"]
                if kind == "StasisStart":
                    channel = event["channel"]["id"]
                    send("POST", f"/channels/{channel}/answer")
                    send("POST", f"/channels/{channel}/play/{channel}-p", media=media)
                elif kind == "PlaybackFinished":
                    channel = event["playback"]["target_uri"].split(":", 1)[1]
                    if channel not in timers:
                        timers[channel] = asyncio.get_running_loop().call_later(wait, hang_up, channel)
                elif kind == "ChannelDtmfReceived":
                    channel = event["channel"]["id"]
                    if (timer := timers.pop(channel, None)) is not None:
                        timer.cancel()
                    else:
                        send("DELETE", f"/playbacks/{channel}-p")
                    hang_up(channel)
                elif kind == "StasisEnd":
                    if (timer := timers.pop(event["channel"]["id"], None)) is not None:
                        timer.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", type=Path, required=True)
    parser.add_argument("--app", default="bench-bare")
    parser.add_argument("--media", required=True, help="comma-separated media URIs, one playback")
    parser.add_argument("--wait", type=float, default=3.0)
    parser.add_argument("--socket", action="store_true",
                        help="send the requests on the event socket instead of HTTP")
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    task = loop.create_task(serve(args.url, args.user, args.password_file.read_text().strip(), args.app,
                                  args.media, args.wait, args.socket))
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass


if __name__ == "__main__":
    main()
