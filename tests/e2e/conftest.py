"""End-to-end fixtures: the sandbox Asterisk (scripts/sandbox.sh) and its ARI credentials.

These tests need root (a chroot, mounts, raw-socket RTP replay by SIPp); as another user they
are skipped with the reason.  As root they run: a sandbox that cannot start is a failure.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.sandbox import read_centers

REPO = Path(__file__).resolve().parents[2]
SANDBOX = REPO / "scripts" / "sandbox.sh"


@dataclasses.dataclass(frozen=True)
class Sandbox:
    base_url: str  # http://127.0.0.1:8088/ari
    user: str
    password: str
    app: str = "ivr"
    sip: str = "127.0.0.1:5060"

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + f"/events?app={self.app}"

    @property
    def auth_header(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def rx(self, command: str) -> str:
        """An Asterisk CLI command's output."""
        out = subprocess.run([str(SANDBOX), "rx", command], capture_output=True, text=True, check=True)
        return out.stdout


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="end-to-end tests need root (chroot, mounts, SIPp raw RTP replay)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


def _sandbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SANDBOX), *args], capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    """The running sandbox Asterisk; started if needed and left running for the other tests.

    If this fixture started it, it is stopped at the end of the session (scripts/test and .ci
    also stop what they started)."""
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root (chroot, mounts, SIPp raw RTP replay)")
    if shutil.which("sipp") is None:
        pytest.fail("sipp is not installed: run scripts/setup (Debian package sip-tester)")
    started = _sandbox("status").returncode != 0
    up = _sandbox("up")
    if up.returncode != 0:
        pytest.fail(f"scripts/sandbox.sh up failed:\n{up.stdout}\n{up.stderr}")
    user = os.environ.get("IVR_ARI_USER", "ivr")
    password = os.environ.get("IVR_ARI_PASSWORD") or (REPO / ".sandbox" / "ari-password").read_text().strip()
    yield Sandbox(base_url="http://127.0.0.1:8088/ari", user=user, password=password)
    if started:
        _sandbox("down")


# ---------------------------------------------------------------------------------------------
# Several centers: scripts/sandbox.sh up --centers 2 (seoul, busan, Kamailio in front).

SANDBOX_LOCK = Path("/tmp/ivr-sandbox.lock")


@contextlib.contextmanager
def sandbox_lock() -> Iterator[None]:
    """Hold the shared sandbox's lock (/tmp/ivr-sandbox.lock) for a start or a stop.

    A run started as ``flock /tmp/ivr-sandbox.lock pytest …`` already holds it through a
    descriptor it inherited: that one is locked again (at once) and left locked; opening the
    file anew would wait for ourselves forever."""
    for entry in Path("/proc/self/fd").iterdir():
        try:
            if Path(os.readlink(entry)) == SANDBOX_LOCK:
                fcntl.flock(int(entry.name), fcntl.LOCK_EX)
                yield
                return
        except OSError:
            continue
    with open(SANDBOX_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclasses.dataclass(frozen=True)
class Center(Sandbox):
    """One center's Asterisk: its ARI (base_url, ws_url, auth_header), SIP address and agents."""

    name: str = ""
    agents: tuple[str, ...] = ()  # endpoint names: seoul1, seoul2
    agent_ports: tuple[int, ...] = ()  # their phones' SIP ports: 5201, 5202

    def rx(self, command: str) -> str:
        out = subprocess.run(
            [str(SANDBOX), "rx", "--center", self.name, command], capture_output=True, text=True, check=True
        )
        return out.stdout


@dataclasses.dataclass(frozen=True)
class Centers:
    kamailio: str  # the callers' SIP entry, 127.0.0.1:5300
    ctl: str  # kamcmd -s CTL
    centers: tuple[Center, ...]

    def __getitem__(self, name: str) -> Center:
        return next(c for c in self.centers if c.name == name)

    def dispatcher_list(self) -> str:
        out = subprocess.run(["kamcmd", "-s", self.ctl, "dispatcher.list"], capture_output=True, text=True, check=True)
        return out.stdout

    def script(self, *args: str) -> subprocess.CompletedProcess[str]:
        """scripts/sandbox.sh ARGS (e.g. "center", "stop", "busan")."""
        return _sandbox(*args)

    lock = staticmethod(sandbox_lock)
    repo = REPO


@pytest.fixture(scope="session")
def centers() -> Iterator[Centers]:
    """``scripts/sandbox.sh up --centers 2``: the main sandbox, seoul and busan with trunks between
    them, Kamailio in front.  Stopped at the end if this fixture started them (only the centers
    and Kamailio if the main instance was running before)."""
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root (chroot, mounts, SIPp raw RTP replay)")
    if shutil.which("sipp") is None:
        pytest.fail("sipp is not installed: run scripts/setup (Debian package sip-tester)")
    main_was_up = _sandbox("status").returncode == 0
    centers_were_up = _sandbox("status", "--centers").returncode == 0
    with sandbox_lock():
        up = _sandbox("up", "--centers", "2")
    if up.returncode != 0:
        pytest.fail(f"scripts/sandbox.sh up --centers 2 failed:\n{up.stdout}\n{up.stderr}")
    user = os.environ.get("IVR_ARI_USER", "ivr")
    password = os.environ.get("IVR_ARI_PASSWORD") or (REPO / ".sandbox" / "ari-password").read_text().strip()
    info = read_centers()
    yield Centers(
        kamailio=info.kamailio,
        ctl=info.ctl,
        centers=tuple(
            Center(
                base_url=c.ari,
                user=user,
                password=password,
                sip=c.sip,
                name=c.name,
                agents=tuple(c.agents),
                agent_ports=tuple(c.agent_port(a) for a in c.agents),
            )
            for c in info.centers
        ),
    )
    if _sandbox("status", "--centers").returncode == 3 and not (REPO / ".sandbox" / "centers").exists():
        return  # already stopped (the module's last test brings everything down itself)
    with sandbox_lock():
        if not main_was_up:
            _sandbox("down")
        elif not centers_were_up:
            _sandbox("down", "--centers")

