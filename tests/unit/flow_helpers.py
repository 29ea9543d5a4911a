"""Helpers for the flow tests: the repository's catalogue and a flow written to a file."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ivr.errors import FlowError
from ivr.flow.loader import load_flows, validate_paths
from ivr.prompts import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "prompts"
FLOWS = ROOT / "flows"


def catalogue():
    return load_catalogue(PROMPTS)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(folder: Path, name: str, text: str) -> list[str]:
    """Every problem (errors and warnings) of one flow file, as printed."""
    path = write(folder, name, text)
    return [str(p) for p in validate_paths([path], catalogue())]


def flowset(folder: Path, *files: tuple[str, str]):
    for name, text in files:
        write(folder, name, text)
    try:
        return load_flows(folder, catalogue())
    except FlowError as exc:  # pragma: no cover - shows the problems when a test flow is wrong
        raise AssertionError("\n".join(str(p) for p in exc.problems)) from None
