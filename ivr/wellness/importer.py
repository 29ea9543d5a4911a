"""``ivr wellness import FILE.csv``: the people a wellness campaign rings, from a CSV file.

The same rules as ``ivr callers import`` (both read by ``ivr.csvimport``): a file that cannot
be used at all (missing, not UTF-8, no header naming ``phone``) raises ``WellnessFileError``; a
bad row is left out and reported as ``file:line: message``, the good rows are kept; a number
given twice is kept once, the later row's (with a warning); an unknown column is a warning.

Columns: ``phone`` (required), ``campaign`` (required unless the command names one for every
row), ``name``, ``language`` (ko, en, zh, vi; empty: the default), ``contact`` (whom to tell),
``address_ref`` (the visit list's reference to the home address, not the address itself) and
``opt_out`` (true/false, yes/no, 1/0).  A number is checked as a callback number is
(``ivr.callbacks.numbers.validate_callback_number``): a phone a person answers, of the center's
country unless ``allow_international``.

``ivr wellness import --from-registry``: the people are the caller registry's callers whose
``wellness`` names a campaign (``people_from_registry``).  The registry gives the campaign, the
name and the language; what only the wellness list keeps (the contact, the address reference,
an opt-out, when they were added) stays as it was for a person already on it.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from ivr.callbacks.numbers import CallbackNumberRefused, validate_callback_number
from ivr.csvimport import (FALSE_WORDS, TRUE_WORDS, ImportCounts, ImportProblem, column_index, header_columns,
                           read_lines, read_rows)
from ivr.errors import CallerFileError
from ivr.store.base import Caller
from ivr.wellness.model import Person

__all__ = ["COLUMNS", "LANGUAGES", "ImportProblem", "RegistryPeople", "WellnessFileError",
           "WellnessImport", "import_wellness_csv", "people_from_registry"]

LANGUAGES = ("ko", "en", "zh", "vi")
COLUMNS = ("phone", "campaign", "name", "language", "contact", "address_ref", "opt_out")
MAX_TEXT = 200


class WellnessFileError(CallerFileError):
    """A wellness people file cannot be read at all: missing, not UTF-8, no usable header."""


@dataclasses.dataclass(frozen=True, slots=True)
class WellnessImport(ImportCounts):
    """What the file holds: the good rows as people (file order), and the problems."""

    file: str
    people: tuple[Person, ...]
    problems: tuple[ImportProblem, ...]
    rows: int                               # data rows read (blank lines not counted)


def import_wellness_csv(path: str | Path, *, region: str = "KR",
                        campaigns: Collection[str] = (), campaign: str | None = None,
                        default_language: str = "ko",
                        allow_international: bool = False) -> WellnessImport:
    """Read a wellness people file.

    ``campaigns``: the campaigns the config knows (a row naming another is refused; empty: any
    name); ``campaign``: the campaign of rows that name none (and of every row when the file
    has no ``campaign`` column).  Raises ``WellnessFileError`` only when nothing in the file
    can be used."""
    name = str(path)
    lines = read_lines(Path(path), error=WellnessFileError)
    columns = header_columns(name, lines, _split, COLUMNS, error=WellnessFileError)
    if "phone" not in columns:
        raise WellnessFileError(name, f"the header has no column phone (found: {', '.join(columns)})",
                                line=1)
    if "campaign" not in columns and campaign is None:
        raise WellnessFileError(name, "the header has no column campaign: add one, or name the "
                                "campaign of every row (--campaign NAME)", line=1)
    index, problems = column_index(name, columns, COLUMNS, error=WellnessFileError)
    known = frozenset(campaigns)
    if campaign is not None and known and campaign not in known:
        raise WellnessFileError(name, f"campaign {campaign!r} is not in wellness.campaigns "
                                f"({', '.join(sorted(known))})")

    people, bad_rows, rows = read_rows(
        name, lines, len(columns), _split,
        lambda row: _person(row, index, region=region, known=known, campaign=campaign,
                            default_language=default_language, allow_international=allow_international))
    return WellnessImport(file=name, people=tuple(people), problems=tuple(problems + bad_rows), rows=rows)


def _split(line: str) -> list[str]:
    """One line is one row (a quoted value cannot span lines)."""
    try:
        return next(csv.reader([line], strict=True), [])
    except csv.Error as exc:
        raise ValueError(f"broken quotes ({exc}): a quote inside a value is written twice, and "
                         "a value in quotes ends on its own line") from None


def _person(row: Sequence[str], index: Mapping[str, int], *, region: str, known: frozenset[str],
            campaign: str | None, default_language: str, allow_international: bool) -> Person:
    def cell(col: str) -> str:
        i = index.get(col)
        return row[i].strip() if i is not None and i < len(row) else ""

    phone = cell("phone")
    try:
        number = validate_callback_number(phone, region, allow_international=allow_international)
    except CallbackNumberRefused as exc:
        raise ValueError(f"phone {phone!r}: {exc}; this row was left out") from None
    which = cell("campaign") or campaign
    if not which:
        raise ValueError("no campaign: name one in the campaign column; this row was left out")
    if known and which not in known:
        raise ValueError(f"campaign {which!r} is not in wellness.campaigns "
                         f"({', '.join(sorted(known))}); this row was left out")
    language = cell("language").lower() or default_language
    if language not in LANGUAGES:
        raise ValueError(f"language {cell('language')!r}: use one of {', '.join(LANGUAGES)}; "
                         "this row was left out")
    flag = cell("opt_out").lower()
    if flag not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError(f"opt_out {cell('opt_out')!r}: use true or false; this row was left out")
    for col in ("name", "contact", "address_ref"):
        if len(cell(col)) > MAX_TEXT:
            raise ValueError(f"{col} is longer than {MAX_TEXT} characters; this row was left out")
    return Person(number=number, campaign=which, name=cell("name"), language=language,
                  contact=cell("contact"), address_ref=cell("address_ref"), opt_out=flag in TRUE_WORDS)


@dataclasses.dataclass(frozen=True, slots=True)
class RegistryPeople:
    """What some registry callers make: the people to write, and the callers left out —
    ``unknown``: by campaign not in the config, the numbers naming it; ``refused``: numbers
    that cannot be rung, with why."""

    people: tuple[Person, ...]
    unknown: Mapping[str, tuple[str, ...]]
    refused: tuple[tuple[str, str], ...]


def people_from_registry(callers: Iterable[Caller], known: Mapping[str, Person], *,
                         campaigns: Collection[str], region: str = "KR",
                         default_language: str = "ko",
                         allow_international: bool = False) -> RegistryPeople:
    """The wellness people of the ``callers`` that name a campaign (``Caller.wellness``).

    Each becomes a person of that campaign with the caller's name and language (a caller
    without one keeps the person's, else ``default_language``); ``known`` (the people already
    on the list, by number) gives the contact, the address reference, the opt-out and
    ``added_at``, which the store's write would otherwise replace.  A caller naming a campaign
    not in ``campaigns``, or whose number is not one to ring (as the file import checks it),
    is left out and said."""
    wanted = frozenset(campaigns)
    people: list[Person] = []
    unknown: dict[str, list[str]] = {}
    refused: list[tuple[str, str]] = []
    for caller in callers:
        campaign = caller.wellness
        if not campaign:
            continue
        if campaign not in wanted:
            unknown.setdefault(campaign, []).append(caller.number)
            continue
        try:
            number = validate_callback_number(caller.number, region,
                                              allow_international=allow_international)
        except CallbackNumberRefused as exc:
            refused.append((caller.number, str(exc)))
            continue
        before = known.get(number)
        language = caller.language or (before.language if before else default_language)
        name = caller.name or (before.name if before else "")
        if before is None:
            people.append(Person(number=number, campaign=campaign, name=name, language=language))
        else:
            people.append(dataclasses.replace(before, campaign=campaign, name=name, language=language))
    return RegistryPeople(people=tuple(people),
                          unknown={c: tuple(numbers) for c, numbers in unknown.items()},
                          refused=tuple(refused))
