"""The real engine (`ivr run` as a subprocess) in front of the sandbox Asterisk.

ARI goes through a loopback TCP proxy so a test can cut the event WebSocket mid-call.
Calls are read back with `ivr calls list --json`, as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from tcp_proxy import TcpProxy

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


class ThreadedProxy:
    """A TcpProxy running in its own thread and event loop (the engine is another process)."""

    def __init__(self, host: str, port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._proxy = TcpProxy(host, port)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="ari-proxy", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            async with self._proxy:
                self._ready.set()
                await self._stop.wait()

        self._loop.run_until_complete(main())

    def start(self) -> int:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the ARI proxy did not start")
        return self._proxy.port

    def cut(self) -> int:
        """Drop every open connection (the ARI WebSocket among them); returns how many."""
        fut = asyncio.run_coroutine_threadsafe(self._cut(), self._loop)
        return fut.result(5)

    async def _cut(self) -> int:
        return self._proxy.cut()

    @property
    def connections(self) -> int:
        return self._proxy.connections

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class Engine:
    def __init__(self, workdir: Path, sandbox, extra_config: str = "", flows: list[Path] | None = None,
                 *, store_url: str | None = None, ari_requests: str | None = None) -> None:
        self.workdir = workdir
        self.ari_requests = ari_requests          # ari.requests (None: the default)
        self.sandbox = sandbox
        self.extra_config = extra_config
        # The store the engine (and every `ivr` command run through `cli`) uses; SQLite in the
        # work folder unless a test passes another URL (a PostgreSQL database).
        self.store_url = store_url or f"sqlite:///{workdir / 'ivr.db'}"
        self.flows = flows or [REPO / "flows", REPO / "tests" / "e2e" / "flows"]
        self.admin_token = "e2e-" + os.urandom(12).hex()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.admin_port = probe.getsockname()[1]
        self.proxy = ThreadedProxy("127.0.0.1", 8088)
        self.config = workdir / "ivr.yaml"
        self.log_path = workdir / "engine.log"
        self.previous_logs: list[Path] = []      # of the engines before a crash (start_again)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30, *, until: str = "engine.ready") -> None:
        """Write ivr.yaml and run ``ivr run``; returns once the engine logs ``until``
        (``engine.standby``: a second engine on one PostgreSQL store, waiting for the lease)."""
        port = self.proxy.start()
        self.config.write_text(
            "ari:\n"
            f"  url: http://127.0.0.1:{port}/ari\n"
            f"  username: {self.sandbox.user}\n"
            "  password: ${IVR_TEST_ARI_PASSWORD}\n"
            f"  app: {self.sandbox.app}\n"
            + (f"  requests: {self.ari_requests}\n" if self.ari_requests else "") +
            f"flows: [{', '.join(str(f) for f in self.flows)}]\n"
            f"prompts: {REPO / 'prompts'}\n"
            f"store: {{url: '{self.store_url}'}}\n"
            "log: {format: json, level: debug}\n"
            f"admin: {{listen: '127.0.0.1:{self.admin_port}', token: {self.admin_token}}}\n" + self.extra_config,
            encoding="utf-8",
        )
        self._launch(timeout, until)

    def _launch(self, timeout: float, until: str = "engine.ready") -> None:
        """``ivr run`` on ivr.yaml, logging to ``log_path``; returns once it logs ``until``."""
        env = dict(os.environ, IVR_TEST_ARI_PASSWORD=self.sandbox.password)
        for key in ("IVR_ARI_PASSWORD", "IVR_ARI_URL", "IVR_CONFIG", "IVR_STORE_URL", "IVR_FLOWS"):
            env.pop(key, None)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "ivr.cli", "--config", str(self.config), "run"],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.events(until):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the engine exited with {self.proc.returncode}:\n{self.log_text()}")
            time.sleep(0.1)
        raise RuntimeError(f"the engine did not log {until} within {timeout} s:\n{self.log_text()}")

    def stop(self) -> int | None:
        rc = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        self.proxy.stop()
        self._log.close()
        return rc

    def kill(self) -> None:
        """SIGKILL: the engine dies at once, as in a crash (nothing is cleaned up)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proxy.stop()
        self._log.close()

    def crash(self) -> None:
        """SIGKILL the engine process, as a crash would: nothing is cleaned up, the calls stay
        in Asterisk.  Unlike ``kill`` the ARI proxy and ivr.yaml stay, so that ``start_again``
        runs the next engine on the very same config (ARI URL, admin port and token, store)."""
        assert self.proc is not None and self.proc.poll() is None, "the engine is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def start_again(self, timeout: float = 30) -> None:
        """After ``crash``: ``ivr run`` again on the same ivr.yaml and store, as an operator
        restarting the engine would; returns once it is ready.  The new engine logs to a new
        file (engine.2.log, …): ``events`` and ``log_text`` read the running engine's log,
        ``previous_logs`` are the earlier ones."""
        assert self.proc is not None and self.proc.poll() is not None, "crash() the engine first"
        self.previous_logs.append(self.log_path)
        self.log_path = self.workdir / f"engine.{len(self.previous_logs) + 1}.log"
        self._launch(timeout)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self, name: str | None = None) -> list[dict]:
        out = []
        for line in self.log_text().splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if name is None or ev.get("event") == name:
                out.append(ev)
        return out

    def calls(self) -> list[dict]:
        out = subprocess.run([sys.executable, "-m", "ivr.cli", "--config", str(self.config),
                              "calls", "list", "--json", "--limit", "500"],
                             capture_output=True, text=True, cwd=self.workdir,
                             env=dict(os.environ, IVR_TEST_ARI_PASSWORD=self.sandbox.password))
        if out.returncode != 0:
            raise RuntimeError(f"ivr calls list failed: {out.stderr}")
        return json.loads(out.stdout)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``ivr ARGS`` against the engine's config and store, as an operator would run it."""
        return subprocess.run([sys.executable, "-m", "ivr.cli", "--config", str(self.config), *args],
                              capture_output=True, text=True, cwd=self.workdir,
                              env=dict(os.environ, IVR_TEST_ARI_PASSWORD=self.sandbox.password))

    def call_ids(self) -> set[str]:
        return {c["call_id"] for c in self.calls()}

    async def new_call_record(self, before: set[str], timeout: float = 10) -> dict:
        """The record of the call that ended after ``before`` was taken (exactly one)."""
        deadline = time.monotonic() + timeout
        while True:
            # A call is listed from its start (outcome None); wait until it has ended.
            new = [c for c in self.calls() if c["call_id"] not in before]
            if new and all(c["outcome"] is not None for c in new):
                assert len(new) == 1, f"expected one new call, got {new}"
                return new[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no call was recorded within {timeout} s; engine log:\n"
                                     + "\n".join(self.log_text().splitlines()[-40:]))
            await asyncio.sleep(0.2)


async def until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll ``predicate`` (an operator's command, run off the event loop so that the SIPp
    phones keep their media going) until it gives something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


@contextlib.contextmanager
def running_engine(sandbox, workdir: Path, extra_config: str = "") -> Iterator[Engine]:
    """An engine started on ``workdir`` with ``extra_config``, stopped at the end."""
    eng = Engine(workdir, sandbox, extra_config=extra_config)
    eng.start()
    try:
        yield eng
    finally:
        eng.stop()


def callbacks_config(owner: str, customer_port: int = 5090) -> str:
    """``ivr.yaml`` lines for one queue with agent1 and callbacks dialled to a SIPp phone on
    ``customer_port``, open every hour, quick polls and retries (``owner`` names the engine)."""
    return f"""
acd:
  queues:
    general: {{max_wait: 300, on_max_wait: message, announce_every: 30, ring_timeout: 6, wrap_up: 2}}
  agents:
    - {{id: agent1, name: Agent 1, endpoint: PJSIP/agent1, login: true}}
callbacks:
  owner: {owner}
  poll: 1
  lease: 20
  ring_timeout: 6
  max_attempts: 2
  retry_delay: 4
  caller_id: "15771000"
  endpoint: "PJSIP/sipp/sip:{{national}}@127.0.0.1:{customer_port}"
  hours: {{mon: ["00:00-23:59"], tue: ["00:00-23:59"], wed: ["00:00-23:59"], thu: ["00:00-23:59"],
          fri: ["00:00-23:59"], sat: ["00:00-23:59"], sun: ["00:00-23:59"]}}
"""


def masked(number: str) -> str:
    """A number as the engine shows it to operators: ``010****5678``."""
    return f"{number[:3]}****{number[-4:]}"


def records(engine: Engine) -> dict[str, dict]:
    """The latest record per masked caller."""
    out: dict[str, dict] = {}
    for rec in reversed(engine.calls()):
        out[rec["caller"]] = rec
    return out
