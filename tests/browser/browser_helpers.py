"""What the browser tests share: where Chromium is, how it starts (the ``browser`` fixture),
where screenshots go.  A test folder or module imports ``browser`` to have the fixture."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    """Chromium, launched for the test and closed after; the test is skipped, with the reason,
    without Chromium or Playwright."""
    if not CHROMIUM.exists():       # noqa: ASYNC240 - one stat, before the test's first await
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("browser tests need the Python package playwright (pip install -e '.[test]')")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            await b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def logged_in(browser: Any, tmp_path: Path, stats: Any, *, role: str = "viewer",
                    agents: Any = None) -> AsyncIterator[Any]:
    """The wallboard over ``stats`` served on a free port, and a page of ``browser`` logged in
    as a user of ``role``; closed after."""
    from aiohttp.test_utils import TestServer

    from ivr.testing.memory_store import MemoryStore
    from ivr.web.admin import admin_app
    from ivr.web.auth import Audit, Role, User, UserDirectory, hash_password, write_users
    from ivr.web.wallboard import wallboard_app

    users_file = tmp_path / "users.yaml"
    write_users(users_file, [User("tester", Role(role), hash_password(f"{role}-pass-1"))])
    app = admin_app(wallboard=wallboard_app(users=UserDirectory(users_file), stats=stats,
                                            audit=Audit(MemoryStore()), agents=agents))
    server = TestServer(app)
    await server.start_server()
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        await page.goto(str(server.make_url("/wallboard/")))
        await page.fill("#login-name", "tester")
        await page.fill("#login-password", f"{role}-pass-1")
        await page.click("#login-submit")
        yield page
    finally:
        await context.close()
        await server.close()
