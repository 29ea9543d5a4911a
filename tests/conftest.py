"""Fixtures for every test folder: a real PostgreSQL server for the session, a database per test.

- ``postgres_server`` (session): a running ``ivr.testing.postgres.PostgresServer`` on a free
  loopback port, in its own temporary folder; stopped and removed at the end of the session.
- ``postgres_url`` (per test): ``postgresql://postgres@127.0.0.1:PORT/test_…``, an empty
  database of its own, dropped after the test.
- ``store_url`` (per test, parametrised ``sqlite`` / ``postgres``): a store URL for each
  backend, so one test runs against both.

Where PostgreSQL cannot run (no server binaries, no ``postgres`` system user when root, no
asyncpg), the PostgreSQL tests are skipped with the reason, or fail with it when ``CI=true``.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from ivr.testing.postgres import PostgresServer, running_postgres, unavailable_reason


def _cannot_run_postgres(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    reason = unavailable_reason()
    if reason is None and importlib.util.find_spec("asyncpg") is None:
        reason = "the Python package asyncpg is not installed (pip install -e .)"
    if reason is not None:
        _cannot_run_postgres(reason)
    with running_postgres() as server:
        yield server


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = await postgres_server.create_database(name)
    yield url
    if postgres_server.running:
        await postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ivr.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Undo ``configure_logging`` after each test: it caches loggers on first use, which would
    keep later tests' ``capture_logs`` from seeing what those loggers write."""
    yield
    import structlog

    structlog.reset_defaults()


# Fuzzing (hypothesis): a bounded run by default (CI), a long one with IVR_FUZZ=long.
try:
    from hypothesis import HealthCheck, settings as _hyp_settings
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass
else:
    _hyp_settings.register_profile(
        "ci", max_examples=60, deadline=None, derandomize=True, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    _hyp_settings.register_profile(
        "long", max_examples=5000, deadline=None, print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    _hyp_settings.load_profile("long" if os.environ.get("IVR_FUZZ") == "long" else "ci")
