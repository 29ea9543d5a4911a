"""The package as a user installs it: one version everywhere, a license setuptools accepts."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import ivr

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_ivr_version_prints_the_version_of_pyproject():
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "--version"], capture_output=True,
                          text=True, timeout=30, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ivr {PYPROJECT['project']['version']}"


def test_the_version_has_one_source():
    version = PYPROJECT["project"]["version"]
    assert ivr.__version__ == version
    assert version not in (REPO / "ivr" / "__init__.py").read_text(encoding="utf-8")   # read, not written


def test_the_license_is_an_spdx_expression_with_a_setuptools_that_reads_it():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"     # a table makes setuptools warn
    setuptools = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    assert setuptools == ["setuptools>=77"]                     # PEP 639 license strings
