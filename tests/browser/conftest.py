"""Browser tests: the wallboard page in Debian's Chromium, driven by Playwright (no browser is
downloaded).  Selected with ``-m browser``; skipped, with the reason, where /usr/bin/chromium
is absent.  Screenshots go to a scratch folder, or to $IVR_SCREENSHOTS (docs/screenshots/ for the README)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from browser_helpers import ARGS, CHROMIUM


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not CHROMIUM.exists():
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

