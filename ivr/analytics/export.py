"""``ivr export calls``: every call of a range, one row each, as CSV or Parquet.

A row holds the call's record (times, flow, caller, ``channel``: voice or video, outcome), its
path through the flow (``path``), how it left each node (``exits``), the keys pressed (``keys``),
the queue and the seconds waited there, and the call's queue events as one JSON column (``events``: a list of
``{"at", "kind", "agent_id", "queue", "detail"}``, oldest first).

Streaming: the calls are read from the store a batch at a time (``Store.iter_calls``) with the
events of that batch in one query (``Store.events_for_calls``), and each batch is written
before the next is read (Parquet: one row group per batch), so a year of calls needs one
batch of memory.  A file is written as ``FILE.part`` and renamed when complete: an export
that fails leaves no half-written file behind.

Phone numbers (``caller``, ``number`` and numbers in the free-text ``detail`` fields) are
masked as the logs mask them (``ivr.logs.mask_number``) unless ``full_numbers``.

In CSV, times are ISO 8601 in UTC with their offset, lists are JSON arrays, an empty cell is
None; in Parquet, times are timestamps in UTC (microseconds), lists are lists of strings.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from ivr.call import CallRecord
from ivr.errors import IvrError
from ivr.logs import mask_number, mask_numbers_in
from ivr.store.base import QueueEvent, Store

__all__ = ["COLUMNS", "ExportError", "Format", "atomic_file", "export_range", "parse_moment",
           "write_calls"]

Format = Literal["csv", "parquet"]

COLUMNS = ("call_id", "started_at", "ended_at", "flow", "flow_version", "language", "caller",
           "number", "dialled", "channel", "outcome", "detail", "priority", "reason", "path", "exits", "keys",
           "queue", "waited", "events")


class ExportError(IvrError, ValueError):
    """The export was asked for something it cannot do (a date it cannot read, an empty
    range, a folder that does not exist); nothing was written."""


# -- the range ---------------------------------------------------------------------------------

def parse_moment(text: str, tz: dt.tzinfo, *, end: bool = False) -> dt.datetime:
    """``2026-11-01`` (a local date in ``tz``): its first instant, or with ``end`` the first
    instant of the next day (an ``--until`` date is included whole); ``2026-11-01T09:30``
    (local) or ``2026-11-01T09:30+09:00`` / ``…Z``: that instant."""
    text = text.strip()
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), tz)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ExportError(f"{text!r} is neither a date (2026-11-01) nor a date and time "
                          "(2026-11-01T09:30, 2026-11-01T09:30+09:00)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def export_range(since: str, until: str | None, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """[since, until) from the command line's texts; without ``until``, to the end of the
    (local) day ``since`` falls on."""
    start = parse_moment(since, tz)
    if until is None:
        next_day = start.astimezone(tz).date() + dt.timedelta(days=1)
        stop = dt.datetime.combine(next_day, dt.time(), tz)
    else:
        stop = parse_moment(until, tz, end=True)
    if stop <= start:
        raise ExportError(f"--until {until or since} is not after --since {since}: no call "
                          "can be in that range")
    return start, stop


# -- rows --------------------------------------------------------------------------------------

def _in_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:                 # naive: taken as UTC, as the stores do
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _in_utc(value)


class _Masks:
    """Masked numbers and texts of one batch: a repeat caller, a detail that repeats
    (``general: hung up after 42 s in line``) is masked once."""

    def __init__(self) -> None:
        self._numbers: dict[str, str] = {}
        self._texts: dict[str, str] = {}

    def number(self, value: str) -> str:
        got = self._numbers.get(value)
        if got is None:
            got = self._numbers[value] = mask_number(value)
        return got

    def text(self, value: str) -> str:
        got = self._texts.get(value)
        if got is None:
            got = self._texts[value] = mask_numbers_in(value)
        return got


def _events_json(events: Sequence[QueueEvent], masks: _Masks | None) -> str:
    if not events:
        return "[]"
    return json.dumps([{"at": _in_utc(e.at).isoformat(), "kind": e.kind, "agent_id": e.agent_id,
                        "queue": e.queue,
                        "detail": masks.text(e.detail) if masks is not None else e.detail}
                       for e in events], ensure_ascii=False)


def _rows(records: Sequence[CallRecord], events: dict[str, list[QueueEvent]], *,
          full_numbers: bool) -> list[tuple[Any, ...]]:
    """One tuple per record, in the order of COLUMNS (lists as lists, times as UTC)."""
    masks = None if full_numbers else _Masks()
    rows = []
    for r in records:
        caller, number, detail = r.caller, r.number, r.detail
        if masks is not None:
            caller = masks.number(caller) if caller else caller
            number = masks.number(number) if number else number
            detail = masks.text(detail) if detail else detail
        rows.append((r.call_id, _utc(r.started_at), _utc(r.ended_at), r.flow, r.flow_version,
                     r.language, caller, number, r.dialled, r.channel,
                     None if r.outcome is None else str(r.outcome), detail, r.priority, r.reason,
                     r.nodes, [str(e) for e in r.exits], r.digits, r.queue, r.waited,
                     _events_json(events.get(r.call_id, ()), masks)))
    return rows


# -- writers -------------------------------------------------------------------------------------

class _Writer(Protocol):
    def write(self, rows: list[tuple[Any, ...]]) -> None: ...

    def close(self) -> None: ...


class _CsvWriter:
    def __init__(self, out: IO[bytes]) -> None:
        import io

        self._text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        self._csv = csv.writer(self._text)
        self._csv.writerow(COLUMNS)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        # Paths, exits and keys repeat from call to call: each list is encoded once a batch.
        lists: dict[tuple[str, ...], str] = {}

        def listed(values: list[str]) -> str:
            key = tuple(values)
            text = lists.get(key)
            if text is None:
                text = lists[key] = json.dumps(values, ensure_ascii=False)
            return text

        # csv writes None as an empty cell.
        self._csv.writerows(
            (call_id, started.isoformat(), ended.isoformat() if ended is not None else None, flow,
             version, language, caller, number, dialled, channel, outcome, detail, priority,
             reason, listed(path), listed(exits), listed(keys), queue, waited, events)
            for (call_id, started, ended, flow, version, language, caller, number, dialled,
                 channel, outcome, detail, priority, reason, path, exits, keys, queue, waited,
                 events) in rows)

    def close(self) -> None:
        self._text.flush()
        self._text.detach()             # the caller closes the file itself


class _ParquetWriter:
    """One row group per batch written."""

    def __init__(self, out: IO[bytes]) -> None:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        self._pa = pa
        text, when, listed = pa.string(), pa.timestamp("us", tz="UTC"), pa.list_(pa.string())
        types = {"started_at": when, "ended_at": when, "path": listed, "exits": listed,
                 "keys": listed, "waited": pa.float64()}
        self._schema = pa.schema([pa.field(c, types.get(c, text), nullable=c != "call_id")
                                  for c in COLUMNS])
        self._writer = pq.ParquetWriter(out, self._schema, compression="zstd")

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
        table = self._pa.Table.from_arrays(
            [self._pa.array(col, type=field.type) for col, field in zip(columns, self._schema, strict=True)],
            schema=self._schema)
        self._writer.write_table(table, row_group_size=max(len(rows), 1))

    def close(self) -> None:
        self._writer.close()


def _writer(fmt: Format, out: IO[bytes]) -> _Writer:
    if fmt == "csv":
        return _CsvWriter(out)
    if fmt == "parquet":
        return _ParquetWriter(out)
    raise ExportError(f"format {fmt!r}: use csv or parquet")


async def write_calls(store: Store, out: IO[bytes], *, since: dt.datetime, until: dt.datetime,
                      fmt: Format = "csv", flow: str | None = None, full_numbers: bool = False,
                      batch: int = 5000) -> int:
    """Write every call that started in [``since``, ``until``) (of ``flow`` when given) to the
    binary stream ``out``, a batch at a time; how many calls were written.  ``out`` is left
    open (``sys.stdout.buffer`` stays usable)."""
    writer = _writer(fmt, out)
    written = 0
    try:
        async for records in store.iter_calls(since, until, flow=flow, batch=batch):
            events = await store.events_for_calls([r.call_id for r in records])
            writer.write(_rows(records, events, full_numbers=full_numbers))
            written += len(records)
    finally:
        writer.close()
    return written


@contextlib.contextmanager
def atomic_file(output: str | Path) -> Iterator[IO[bytes]]:
    """The binary file ``output``, all or nothing: written as ``output.part``, renamed to
    ``output`` when the block ends well, removed when it raises (the error goes on)."""
    target = Path(output)
    if not target.parent.is_dir():
        raise ExportError(f"{target}: the folder {target.parent} does not exist")
    if target.is_dir():
        raise ExportError(f"{target} is a folder: name the file to write")
    part = target.with_name(target.name + ".part")
    try:
        with open(part, "wb") as out:
            yield out
        os.replace(part, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise
