"""Browser tests: the wallboard page in Debian's Chromium, driven by Playwright (no browser is
downloaded).  Selected with ``-m browser``; skipped, with the reason, where /usr/bin/chromium
is absent.  Screenshots go to a scratch folder, or to $IVR_SCREENSHOTS (docs/screenshots/ for the README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser_helpers import browser  # noqa: F401 - the fixture, for every test of the folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)

