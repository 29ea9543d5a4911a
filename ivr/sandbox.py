"""``ivr sandbox up|down|status|logs|rx CMD``: the sandbox Asterisk, run by scripts/sandbox.sh.

The script lives in the source tree (``<repo>/scripts/sandbox.sh``, beside this package); it
builds and runs Asterisk and renders ``asterisk-conf/``.  ``ivr sandbox up --centers N`` also
starts N "center" Asterisks (seoul, busan, …) with trunks between them and Kamailio in front of
them; what runs is recorded in ``.sandbox/centers.json``, which ``read_centers`` reads.  See
docs/sandbox.md.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "sandbox.sh"
CENTERS_JSON = REPO / ".sandbox" / "centers.json"
ACTIONS = ("up", "down", "status", "logs", "rx")


def run_sandbox(action: str, *args: str) -> int:
    """Run ``scripts/sandbox.sh ACTION ARGS…``; its output goes to ours; returns its exit code
    (``status``: 0 running, 3 stopped).  ``up --centers N`` passes through to the script."""
    if action not in ACTIONS:
        print(f"sandbox: unknown action '{action}' (one of: {', '.join(ACTIONS)})", file=sys.stderr)
        return 2
    if not SCRIPT.is_file():
        print(
            f"sandbox: {SCRIPT} not found; the sandbox runs from a source checkout of ivr "
            "(pip install -e .)",
            file=sys.stderr,
        )
        return 2
    try:
        return subprocess.call(["bash", str(SCRIPT), action, *args], cwd=REPO)
    except KeyboardInterrupt:
        return 130


class CentersFileError(ValueError):
    """``.sandbox/centers.json`` is missing or not what ``sandbox.sh up --centers`` writes."""


@dataclasses.dataclass(frozen=True, slots=True)
class Center:
    """One center's Asterisk of ``sandbox.sh up --centers N``."""

    name: str  # seoul, busan, …
    index: int  # 1-based, in the order of the names
    sip: str  # its SIP transport, "127.0.0.1:5200"
    ari: str  # its ARI base URL, "http://127.0.0.1:8100/ari"
    rtp: tuple[int, int]  # its RTP port range
    dispatcher_set: int  # the Kamailio dispatcher set with only this center (2, 3, …)
    config: str  # its asterisk.conf, as Asterisk sees it (asterisk -C … -rx)
    agents: Mapping[str, str]  # agent endpoint -> its phone's static contact, "127.0.0.1:5201"

    @property
    def sip_port(self) -> int:
        return int(self.sip.rsplit(":", 1)[1])

    def agent_port(self, endpoint: str) -> int:
        """The SIP port an agent's phone must listen on (``seoul1`` -> 5201)."""
        return int(self.agents[endpoint].rsplit(":", 1)[1])


@dataclasses.dataclass(frozen=True, slots=True)
class Centers:
    """Everything ``sandbox.sh up --centers N`` started besides the main instance."""

    kamailio: str  # the callers' SIP entry, "127.0.0.1:5300"
    ctl: str  # Kamailio's control socket for kamcmd -s, "unix:…/kamailio.ctl"
    centers: tuple[Center, ...]

    def __getitem__(self, name: str) -> Center:
        for center in self.centers:
            if center.name == name:
                return center
        raise KeyError(f"no center '{name}' (running: {', '.join(c.name for c in self.centers)})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.centers)


def read_centers(path: Path = CENTERS_JSON) -> Centers:
    """The centers that ``sandbox.sh up --centers N`` recorded in ``.sandbox/centers.json``."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise CentersFileError(f"{path} not found: run scripts/sandbox.sh up --centers N") from None
    except json.JSONDecodeError as exc:
        raise CentersFileError(f"{path}: not JSON ({exc})") from None
    try:
        return Centers(
            kamailio=str(raw["kamailio"]["sip"]),
            ctl=str(raw["kamailio"]["ctl"]),
            centers=tuple(_center(c) for c in raw["centers"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CentersFileError(f"{path}: unexpected content ({exc!r})") from None


def _center(raw: Any) -> Center:
    low, high = raw["rtp"]
    return Center(
        name=str(raw["name"]),
        index=int(raw["index"]),
        sip=str(raw["sip"]),
        ari=str(raw["ari"]),
        rtp=(int(low), int(high)),
        dispatcher_set=int(raw["dispatcher_set"]),
        config=str(raw["config"]),
        agents={str(k): str(v) for k, v in raw["agents"].items()},
    )
