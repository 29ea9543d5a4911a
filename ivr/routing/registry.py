"""The caller registry: who owns a number, born when, speaking what.

Two sources answer ``CallerRegistry.lookup``: the engine's own store (filled from a CSV file with
``ivr callers import``) and a deployment's own system over HTTP (``HttpRegistry``).  Both answer
a ``Caller`` or None (not registered) and raise ``RegistryUnavailable`` when they cannot say.
The store's registry is asked through a cache of its answers (``CachedRegistry``,
``callers.registry_cache`` numbers), which sees an import ``CACHE_REFRESH`` seconds after it at
the latest; the HTTP registry is asked on every call (its changes cannot be seen).

Age is the international age (만 나이) on a given day: a year is added on each birthday.  A caller
born on 29 February becomes a year older on 1 March in common years: under the Korean Civil Act
(arts. 158 and 160) a year counted from 29 February ends on the last day of February, so the
new age starts the next day.

CSV files (UTF-8, with or without a BOM; Excel's "CSV UTF-8" is fine) have a header line naming
the columns, in any order and any case.  Each line is one row (lines end with ``\n``, ``\r\n``
or ``\r``): a value in double quotes may hold commas and ``""`` for a quote, but must end on its
own line.  So a stray quote costs its own line only (``callers.csv:4: an unclosed quote …``),
never the rows after it, and a file of 100,000 rows is read to its end whatever one line holds.
The columns:

* ``phone`` (required) — any spelling ``normalize`` understands;
* ``birth_date`` (required column; an empty cell means "not known") — ``YYYY-MM-DD``,
  ``YYYYMMDD`` or ``YYYY.MM.DD``, from 1900-01-01 up to today;
* ``language`` (optional) — one of ``ko en zh vi``;
* ``needs_assistance`` (optional) — ``true/false``, ``yes/no``, ``y/n``, ``1/0``; empty is false;
* ``name`` (optional);
* ``wellness`` (optional) — the wellness campaign the caller is on because they live alone
  (letters, digits, ``-`` and ``_``, as ``wellness.campaigns`` names it); empty: on none.
  ``ivr wellness import --from-registry`` makes each such caller a person of that campaign.

A bad row is left out and reported by line; the good rows are imported.  A number that appears
twice: the later row wins, with a warning.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

import aiohttp
import yarl

from ivr.csvimport import (FALSE_WORDS, TRUE_WORDS, ImportCounts, ImportProblem, column_index, header_columns,
                           read_lines, read_rows)
from ivr.errors import CallerFileError, RegistryTimeout, RegistryUnavailable, StoreError
from ivr.routing.numbers import normalize
from ivr.store.base import Caller, Store

if TYPE_CHECKING:
    from ivr.config import CallersConfig

__all__ = [
    "EARLIEST_BIRTH_DATE",
    "LANGUAGES",
    "CACHE_REFRESH",
    "CachedRegistry",
    "CallerRegistry",
    "HttpRegistry",
    "ImportProblem",
    "ImportReport",
    "StoreRegistry",
    "age_on",
    "import_callers_csv",
    "parse_birth_date",
    "parse_flag",
    "parse_language",
    "parse_wellness",
    "registry_for",
]

LANGUAGES = ("ko", "en", "zh", "vi")
EARLIEST_BIRTH_DATE = dt.date(1900, 1, 1)
REQUIRED_COLUMNS = ("phone", "birth_date")
OPTIONAL_COLUMNS = ("language", "needs_assistance", "name", "wellness")
MAX_NAME = 200
MAX_CAMPAIGN = 200
CACHE_REFRESH = 5.0             # seconds: the longest a cached answer outlives an import
_CAMPAIGN = re.compile(r"[\w-]+")           # letters, digits, - and _

_DATE_FORMS = (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), re.compile(r"(\d{4})(\d{2})(\d{2})"),
               re.compile(r"(\d{4})\.(\d{1,2})\.(\d{1,2})"))


# -- age ---------------------------------------------------------------------------------------

def age_on(birth_date: dt.date, day: dt.date) -> int | None:
    """International age (만 나이) on ``day``; None when ``birth_date`` is after ``day``."""
    if birth_date > day:
        return None
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - before_birthday


# -- field parsers (shared by the CSV import and the HTTP registry) ----------------------------

def parse_birth_date(text: str, today: dt.date) -> dt.date | None:
    """``YYYY-MM-DD``, ``YYYYMMDD`` or ``YYYY.MM.DD`` → a date; '' → None; else ValueError."""
    text = text.strip()
    if not text:
        return None
    for form in _DATE_FORMS:
        m = form.fullmatch(text)
        if m:
            try:
                born = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                raise ValueError(f"birth date {text!r} is not a date on the calendar") from None
            break
    else:
        raise ValueError(f"birth date {text!r} is not YYYY-MM-DD, YYYYMMDD or YYYY.MM.DD")
    if born > today:
        raise ValueError(f"birth date {text!r} is in the future")
    if born < EARLIEST_BIRTH_DATE:
        raise ValueError(f"birth date {text!r} is before 1900")
    return born


def parse_language(text: str) -> str | None:
    """``ko`` ``en`` ``zh`` ``vi`` (any case) → the code; '' → None; else ValueError."""
    code = text.strip().lower()
    if not code:
        return None
    if code not in LANGUAGES:
        raise ValueError(f"unknown language {text.strip()!r} (known: {', '.join(LANGUAGES)})")
    return code


def parse_wellness(text: str) -> str | None:
    """A wellness campaign's name (letters, digits, ``-`` and ``_``) → the name; '' → None (on
    no campaign); else ValueError.  Whether the config has that campaign is the wellness
    import's to say: the registry may name a campaign before it is configured."""
    name = text.strip()
    if not name:
        return None
    if len(name) > MAX_CAMPAIGN:
        raise ValueError(f"wellness campaign longer than {MAX_CAMPAIGN} characters")
    if not _CAMPAIGN.fullmatch(name):
        raise ValueError(f"wellness campaign {name!r} is not a campaign name "
                         "(letters, digits, - and _ only)")
    return name


def parse_flag(text: str, field: str = "needs_assistance") -> bool:
    """true/false, yes/no, y/n, 1/0 (any case; '' is false) → bool; else ValueError."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{field} {text.strip()!r} is not one of true/false, yes/no, y/n, 1/0")


# -- CSV import ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True)
class ImportReport(ImportCounts):
    """What a caller file holds: the good rows as ``Caller`` values, and the problems."""

    file: str
    callers: list[Caller]
    problems: list[ImportProblem]
    rows: int                       # data rows read (blank lines not counted)

    @property
    def accepted(self) -> int:
        """Distinct numbers to write (a number given twice counts once)."""
        return len(self.callers)


def import_callers_csv(path: str | Path, region: str = "KR", *, today: dt.date | None = None) -> ImportReport:
    """Read a caller file.  Raises ``CallerFileError`` only when nothing in it can be used
    (missing, not UTF-8, no header with ``phone`` and ``birth_date``); bad rows are reported."""
    path = Path(path)
    name = str(path)
    day = today or dt.date.today()
    lines = read_lines(path, error=CallerFileError)
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    columns = header_columns(name, lines, _split_line, known, error=CallerFileError)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CallerFileError(name, f"the header has no column {', '.join(missing)} "
                              f"(found: {', '.join(columns)}); it must name at least phone,birth_date",
                              line=1)
    index, problems = column_index(name, columns, known, error=CallerFileError)
    callers, bad_rows, rows = read_rows(name, lines, len(columns), _split_line,
                                        lambda row: _caller_from_row(row, index, region, day))
    return ImportReport(file=name, callers=callers, problems=problems + bad_rows, rows=rows)


def _split_line(line: str) -> list[str]:
    """One CSV line → its values (``,`` between them; ``"…"`` around a value with commas, ``""``
    for a quote inside it).  ValueError names what is wrong when the quotes are broken."""
    values: list[str] = []
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == '"':
            parts, j = [], i + 1
            while True:
                k = line.find('"', j)
                if k < 0:
                    raise ValueError("an unclosed quote: a value in quotes must end on its own line "
                                     "(a line is one row)")
                parts.append(line[j:k])
                if line.startswith('"', k + 1):        # "" is a quote inside the value
                    parts.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            if i < n and line[i] != ",":
                raise ValueError('text after a closing quote (a quote inside a quoted value is '
                                 'written twice: "")')
            values.append("".join(parts))
        else:
            k = line.find(",", i)
            end = n if k < 0 else k
            value = line[i:end]
            if '"' in value:
                raise ValueError('a quote inside a value that is not in quotes (put the value in '
                                 'quotes and write the quote twice: "Kim ""Bob"" Lee")')
            values.append(value)
            i = end
        if i >= n:
            return values
        i += 1                                          # the comma


def _caller_from_row(row: Sequence[str], index: Mapping[str, int], region: str, today: dt.date) -> Caller:
    def cell(col: str) -> str:
        i = index.get(col)
        return row[i] if i is not None and i < len(row) else ""

    phone = cell("phone")
    number = normalize(phone, region)
    if not number.ok:
        what = "empty" if not phone.strip() else number.reason
        raise ValueError(f"bad phone: {what}")
    assert number.e164 is not None
    name = cell("name").strip() or None
    if name is not None and len(name) > MAX_NAME:
        raise ValueError(f"name longer than {MAX_NAME} characters")
    return Caller(number=number.e164, birth_date=parse_birth_date(cell("birth_date"), today),
                  language=parse_language(cell("language")),
                  needs_assistance=parse_flag(cell("needs_assistance")), name=name,
                  wellness=parse_wellness(cell("wellness")))


# -- lookup --------------------------------------------------------------------------------------

class CallerRegistry(Protocol):
    async def lookup(self, e164: str) -> Caller | None:
        """The registered caller for an E.164 number; None when not registered.

        Raises ``RegistryUnavailable`` (``RegistryTimeout`` for a timeout) when it cannot say.
        """


class StoreRegistry:
    """The registry kept in the engine's store (``ivr callers import``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def lookup(self, e164: str) -> Caller | None:
        try:
            return await self._store.get_caller(e164)
        except StoreError as exc:
            raise RegistryUnavailable(f"caller registry (store) failed: {exc}") from exc


class CachedRegistry:
    """A registry behind a bounded cache of its answers, "not registered" included.

    Most callers are not registered, and a center's frequent callers call again and again: both
    kinds of answer are kept, for up to ``size`` numbers (the least recently asked leave
    first), so most calls ask the store nothing.  ``generation`` reads a number the store
    changes with every write to the registry, by whichever process (``ivr callers import``
    runs in its own): the cache reads it before a lookup when ``refresh`` seconds have passed
    since it last did, and empties itself when it changed.  So every lookup that starts
    ``refresh`` seconds after an import was committed sees the import; one sooner may be
    answered as before it.  An answer read while the cache was being emptied is not kept (it
    may be from before the import).  One lookup reads the generation; lookups that arrive
    meanwhile do not wait for it: they ask the registry itself (a current answer, not kept).

    Errors are never kept: a lookup that fails fails again on the store next time, and a
    generation that cannot be read empties the cache and fails the lookup
    (``RegistryUnavailable``): the cache cannot say whether it is current.
    """

    def __init__(self, registry: CallerRegistry, generation: Callable[[], Awaitable[int]], *,
                 size: int, refresh: float = CACHE_REFRESH,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if size < 1:
            raise ValueError(f"the cache must hold at least one number, not {size}")
        if refresh < 0:
            raise ValueError(f"refresh must be 0 or more seconds, not {refresh}")
        self.size = size
        self.refresh = float(refresh)
        self.hits = 0
        self.misses = 0
        self._registry = registry
        self._generation = generation
        self._clock = clock
        self._entries: collections.OrderedDict[str, Caller | None] = collections.OrderedDict()
        self._seen: int | None = None            # the generation the entries were read at
        self._checked_at: float | None = None    # when that generation was asked for
        self._epoch = 0                          # raised each time the entries are dropped
        self._checking = False                   # a lookup is reading the generation

    def __len__(self) -> int:
        return len(self._entries)

    async def lookup(self, e164: str) -> Caller | None:
        if self._due():
            if self._checking:
                self.misses += 1
                return await self._registry.lookup(e164)
            self._checking = True
            try:
                await self._check()
            finally:
                self._checking = False
        if e164 in self._entries:
            self._entries.move_to_end(e164)
            self.hits += 1
            return self._entries[e164]
        self.misses += 1
        epoch = self._epoch
        caller = await self._registry.lookup(e164)
        if epoch == self._epoch:
            self._entries[e164] = caller
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return caller

    def clear(self) -> None:
        """Forget every answer (and any answer being read now)."""
        self._entries.clear()
        self._epoch += 1

    def _due(self) -> bool:
        return self._checked_at is None or self._clock() - self._checked_at >= self.refresh

    async def _check(self) -> None:
        asked_at = self._clock()         # the bound counts from before the read
        try:
            generation = await self._generation()
        except StoreError as exc:
            self.clear()
            raise RegistryUnavailable(f"caller registry (store) failed: {exc}") from exc
        if generation != self._seen:
            self.clear()
            self._seen = generation
        self._checked_at = asked_at


class HttpRegistry:
    """A deployment's own system, asked over HTTP.

    ``url_template`` holds ``{number}``, replaced by the E.164 number percent-encoded
    (``+`` → ``%2B``): ``https://crm.example/callers/{number}`` or
    ``https://crm.example/callers?number={number}``.  ``GET`` answers:

    * 200 with a JSON object ``{"birth_date": "1950-03-15", "language": "ko",
      "needs_assistance": true, "name": "…", "wellness": "seoul"}`` (every key optional;
      ``birth_date`` in any form the CSV import takes, ``needs_assistance`` a JSON boolean or one
      of the CSV words, ``wellness`` a campaign name as in the CSV file, null or empty for none)
      → a ``Caller``;
    * 404 → not registered (None);
    * anything else, a malformed answer, no answer within ``timeout`` → ``RegistryUnavailable``.

    ``headers`` (e.g. an Authorization bearer token) are sent with every request and never
    logged or shown.  The session belongs to the caller of this class (opened and closed by it).
    """

    def __init__(self, url_template: str, timeout: float, session: aiohttp.ClientSession, *,
                 headers: Mapping[str, str] | None = None) -> None:
        if "{number}" not in url_template:
            raise ValueError("the registry URL must contain {number}")
        if not url_template.startswith(("http://", "https://")):
            raise ValueError("the registry URL must start with http:// or https://")
        self._template = url_template
        self._timeout = float(timeout)
        self._session = session
        self._headers = dict(headers or {})

    def __repr__(self) -> str:          # headers hold secrets: never show them
        return f"HttpRegistry({self._template!r}, timeout={self._timeout})"

    def url_for(self, e164: str) -> yarl.URL:
        return yarl.URL(self._template.replace("{number}", quote(e164, safe="")), encoded=True)

    async def lookup(self, e164: str) -> Caller | None:
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.get(self.url_for(e164), headers=self._headers,
                                             allow_redirects=False) as resp:
                    if resp.status == 404:
                        return None
                    if resp.status != 200:
                        raise RegistryUnavailable(f"caller registry answered HTTP {resp.status}")
                    body = await resp.read()
        except TimeoutError as exc:
            raise RegistryTimeout(f"caller registry did not answer within {self._timeout:g} s") from exc
        except aiohttp.ClientError as exc:
            # The message of aiohttp's errors may hold the URL, hence the number: name the class only.
            raise RegistryUnavailable(f"caller registry unreachable ({type(exc).__name__})") from exc
        return _caller_from_json(e164, body)


def _caller_from_json(e164: str, body: bytes) -> Caller:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryUnavailable("caller registry answered something that is not JSON") from exc
    if not isinstance(data, dict):
        raise RegistryUnavailable(f"caller registry answered a JSON {type(data).__name__}, not an object")
    try:
        born = data.get("birth_date")
        if born is not None and not isinstance(born, str):
            raise ValueError("birth_date must be a string")
        lang = data.get("language")
        if lang is not None and not isinstance(lang, str):
            raise ValueError("language must be a string")
        flag = data.get("needs_assistance", False)
        if flag is None:
            flag = False
        elif isinstance(flag, str):
            flag = parse_flag(flag)
        elif not isinstance(flag, bool):
            raise ValueError("needs_assistance must be true or false")
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise ValueError("name must be a string")
        campaign = data.get("wellness")
        if campaign is not None and not isinstance(campaign, str):
            raise ValueError("wellness must be a string (a campaign name) or null")
        return Caller(number=e164, birth_date=parse_birth_date(born or "", dt.date.today()),
                      language=parse_language(lang or ""), needs_assistance=flag,
                      name=(name.strip()[:MAX_NAME] or None) if name else None,
                      wellness=parse_wellness(campaign or ""))
    except ValueError as exc:
        raise RegistryUnavailable(f"caller registry answer: {exc}") from exc


def registry_for(config: CallersConfig, store: Store,
                 session: aiohttp.ClientSession | None) -> CallerRegistry:
    """The registry the config names: the deployment's HTTP system, else the store's registry
    (behind a cache of ``callers.registry_cache`` numbers; 0: none).

    ``session`` is needed only with ``callers.registry`` (and stays the caller's to close).
    """
    if config.registry is None:
        if config.registry_cache > 0:
            return CachedRegistry(StoreRegistry(store), store.registry_generation,
                                  size=config.registry_cache)
        return StoreRegistry(store)
    if session is None:
        raise ValueError("callers.registry is set: an aiohttp ClientSession is needed to ask it")
    return HttpRegistry(config.registry.url, config.registry.timeout, session,
                        headers=config.registry.headers())
