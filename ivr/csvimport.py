"""People read from a CSV file, as ``ivr callers import`` and ``ivr wellness import`` read them.

The rules both keep: the file is UTF-8 (with or without a BOM) and read whole; each line is one
row (lines end with ``\\n``, ``\\r\\n`` or ``\\r``); the header line names the columns in any order
and any case.  A file that cannot be used at all (missing, not UTF-8, no usable header) raises
the importer's ``CallerFileError``; a bad row is left out and reported as ``file:line: message``
and the good rows are kept; a number given twice is kept once, the later row's (in its place),
with a warning; an unknown column is a warning.

What a cell means and how a line is split into cells is each importer's own (``parse`` and
``split``).  Logic only: no aiohttp, no store.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from ivr.errors import CallerFileError

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "ImportCounts", "ImportProblem", "column_index",
           "header_columns", "read_lines", "read_rows"]

TRUE_WORDS = frozenset({"true", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", ""})
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclasses.dataclass(frozen=True, slots=True)
class ImportProblem:
    """One problem in the file, printed as ``file:line: message``."""

    file: str
    line: int
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        label = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {label}{self.message}"


class ImportCounts:
    """The rows left out (``rejected``) and the ``warnings`` of an import's ``problems``."""

    __slots__ = ()
    problems: Sequence[ImportProblem]

    @property
    def rejected(self) -> int:
        return sum(1 for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.severity == "warning")


class _Numbered(Protocol):
    @property
    def number(self) -> str: ...


Row = TypeVar("Row", bound=_Numbered)


def read_lines(path: Path, *, error: type[CallerFileError]) -> list[str]:
    """The file's lines, without their line breaks; ``error`` when it cannot be read as text."""
    name = str(path)
    try:
        if path.is_dir():
            raise error(name, "cannot be read: it is a folder, not a CSV file")
        if path.exists() and not path.is_file():       # a device or a pipe might never end
            raise error(name, "cannot be read: it is not a regular file")
        data = path.read_bytes()
    except OSError as exc:
        raise error(name, f"cannot be read ({exc.strerror or exc})") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(name, "not UTF-8 text (a file saved as CP949/EUC-KR? save it as 'CSV UTF-8')",
                    line=data.count(b"\n", 0, exc.start) + 1) from exc
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()                          # the file's last line break
    return lines


def header_columns(name: str, lines: Sequence[str], split: Callable[[str], list[str]],
                   known: Sequence[str], *, error: type[CallerFileError]) -> list[str]:
    """The header's column names (stripped, lower case); ``error`` when it names none."""
    try:
        header = split(lines[0]) if lines else []
    except ValueError as exc:
        raise error(name, f"header: {exc}", line=1) from None
    columns = [h.strip().lower() for h in header]
    if not any(columns):
        raise error(name, "empty file: the first line must name the columns, e.g. " + ",".join(known),
                    line=1)
    return columns


def column_index(name: str, columns: Sequence[str], known: Sequence[str], *,
                 error: type[CallerFileError]) -> tuple[dict[str, int], list[ImportProblem]]:
    """Where each ``known`` column is, and a warning for each column that is not used;
    ``error`` when a known column appears twice."""
    problems: list[ImportProblem] = []
    index: dict[str, int] = {}
    for i, col in enumerate(columns):
        if col not in known:
            problems.append(ImportProblem(name, 1, f"column {col!r} is not used (known: "
                                          f"{', '.join(known)})", "warning"))
        elif col in index:
            raise error(name, f"column {col!r} appears twice in the header", line=1)
        else:
            index[col] = i
    return index, problems


def read_rows(name: str, lines: Sequence[str], width: int, split: Callable[[str], list[str]],
              parse: Callable[[Sequence[str]], Row]) -> tuple[list[Row], list[ImportProblem], int]:
    """The rows after the header as ``parse`` makes them (file order, one per number), the
    problems of the rows left out by line, and how many data rows were read (blank lines not
    counted).  ``split`` and ``parse`` raise ``ValueError`` for a row to leave out; ``width``
    is the number of columns the header names."""
    problems: list[ImportProblem] = []
    kept: dict[str, tuple[int, Row]] = {}
    rows = 0
    for line_no, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        try:
            row = split(line)
        except ValueError as exc:
            rows += 1
            problems.append(ImportProblem(name, line_no, f"{exc}; this row was left out"))
            continue
        if not any(cell.strip() for cell in row):
            continue
        rows += 1
        if len(row) > width:
            problems.append(ImportProblem(name, line_no, f"{len(row)} fields, but the header names "
                                          f"{width} (a comma inside a value needs quotes)"))
            continue
        try:
            item = parse(row)
        except ValueError as exc:
            problems.append(ImportProblem(name, line_no, str(exc)))
            continue
        earlier = kept.pop(item.number, None)           # the later row, in its own place
        if earlier is not None:
            problems.append(ImportProblem(name, line_no, f"same number as line {earlier[0]}; "
                                          "this row replaces it", "warning"))
        kept[item.number] = (line_no, item)
    return [item for _, item in kept.values()], problems, rows
