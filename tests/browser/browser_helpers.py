"""What the browser tests share: where Chromium is, how it starts, where screenshots go."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path

CHROMIUM = Path(os.environ.get("IVR_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]
# Screenshots go to a scratch folder, so a test run leaves the checkout as it was; the README's
# pictures are refreshed with IVR_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/browser.
SCREENSHOTS = Path(os.environ.get("IVR_SCREENSHOTS") or Path(tempfile.gettempdir()) / "ivr-screenshots")
SCREENSHOTS.mkdir(parents=True, exist_ok=True)
VIEWPORT = {"width": 1600, "height": 1000}

# The engine on the fake ARI, as the unit tests run it (tests/unit/engine_helpers.py).
sys.path.insert(0, str(REPO / "tests" / "unit"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
