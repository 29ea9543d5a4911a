"""``ivr sandbox up|down|status|logs|rx CMD``: the sandbox Asterisk, run by scripts/sandbox.sh.

The script lives in the source tree (``<repo>/scripts/sandbox.sh``, beside this package); it
builds and runs Asterisk and renders ``asterisk-conf/``.  See docs/sandbox.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "sandbox.sh"
ACTIONS = ("up", "down", "status", "logs", "rx")


def run_sandbox(action: str, *args: str) -> int:
    """Run ``scripts/sandbox.sh ACTION ARGS…``; its output goes to ours; returns its exit code
    (``status``: 0 running, 3 stopped)."""
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
