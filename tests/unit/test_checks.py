"""The checks every run goes through (pyproject.toml): ruff, mypy strict on the engine's core,
a time limit on every test, and the aiohttp the code needs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "pyproject.toml"
BIN = Path(sys.executable).parent


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, cwd=cwd)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_ruff_reports_real_mistakes_with_file_and_line_at_the_codes_line_length(tmp_path):
    write(tmp_path / "ivr" / "pairs.py", f"""\
        def pairs(names, numbers):
            return list(zip(names, numbers))


        FITS = "{'x' * 100}"
        TOO_LONG = "{'x' * 110}"
        """)
    done = run(BIN / "ruff", "check", "--config", CONFIG, "--output-format", "concise", "ivr", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    found = [" ".join(line.split()[:2]) for line in done.stdout.splitlines() if ".py:" in line]
    assert found == ["ivr/pairs.py:2:17: B905", "ivr/pairs.py:6:121: E501"], done.stdout


def test_mypy_is_strict_on_the_core_only(tmp_path):
    untyped = "def passed_through(value):\n    return value\n"
    for module in ("ivr/__init__.py", "ivr/flow/__init__.py", "ivr/acd/__init__.py"):
        write(tmp_path / module, "")
    write(tmp_path / "ivr" / "flow" / "step.py", untyped)
    write(tmp_path / "ivr" / "acd" / "line.py", untyped)
    write(tmp_path / "ivr" / "cli.py", untyped)
    done = run(BIN / "mypy", "--config-file", CONFIG, "--no-incremental", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    flagged = sorted(line.split(":")[0] for line in done.stdout.splitlines() if ": error:" in line)
    assert flagged == ["ivr/acd/line.py", "ivr/flow/step.py"], done.stdout   # and not the CLI


def test_every_test_has_a_time_limit(tmp_path):
    done = run(sys.executable, "-m", "pytest", "-c", CONFIG, "--rootdir", tmp_path, "-p", "no:cacheprovider",
               "--collect-only", cwd=tmp_path)
    assert "timeout: 300.0s" in done.stdout and "timeout method: signal" in done.stdout, done.stdout


def test_a_hung_test_fails_instead_of_hanging(tmp_path):
    write(tmp_path / "test_hangs.py", """\
        import asyncio


        async def test_waits_for_an_event_nobody_sets():
            await asyncio.Event().wait()
        """)
    done = run(sys.executable, "-m", "pytest", "-c", CONFIG, "--rootdir", tmp_path, "-p", "no:cacheprovider",
               "-o", "timeout=1", "test_hangs.py", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Timeout (>1.0s) from pytest-timeout" in done.stdout     # with the traceback of the moment
    assert "1 failed" in done.stdout


def test_aiohttp_is_required_new_enough_for_the_websocket_timeouts():
    project = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["project"]
    (aiohttp_requirement,) = [d for d in project["dependencies"] if d.startswith("aiohttp")]
    assert aiohttp_requirement == "aiohttp>=3.11,<4"
    assert hasattr(aiohttp, "ClientWSTimeout")                  # what ivr.ari.client builds
