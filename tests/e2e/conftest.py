"""End-to-end fixtures: the sandbox Asterisk (scripts/sandbox.sh) and its ARI credentials.

These tests need root (a chroot, mounts, raw-socket RTP replay by SIPp); as another user they
are skipped with the reason.  As root they run: a sandbox that cannot start is a failure.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
