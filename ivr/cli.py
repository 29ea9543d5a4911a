"""The ``ivr`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ivr.errors import ConfigError, FlowError, IvrError, StoreError

if TYPE_CHECKING:
    from ivr.config import Config
    from ivr.store import Store

T = TypeVar("T")


def _config(args: argparse.Namespace, *, need_ari: bool = False):
    """The config; only ``ivr run`` needs the ARI credentials (``need_ari``)."""
    from ivr.config import load_config

    return load_config(args.config, need_ari=need_ari)


class _Exit(SystemExit):
    """The command ends with this exit code, its reason already printed; ``main`` returns the code."""

    code: int


def _with_store(config: Config, fn: Callable[[Store], Awaitable[T]]) -> T:
    """What ``fn(store)`` returns, run in the config's store (opened for it, closed after).

    A store that cannot be opened or fails (``IvrError``) is said as ``ivr: …`` on stderr and
    ends the command with exit code 2 (``_Exit``)."""
    from ivr.store import open_store

    async def run() -> T:
        async with open_store(config.store_url) as store:
            return await fn(store)

    try:
        return asyncio.run(run())
    except IvrError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        raise _Exit(2) from exc


def cmd_run(args: argparse.Namespace) -> int:
    from ivr.app import loop_factory, serve
    from ivr.logs import configure_logging

    try:
        config = _config(args, need_ari=True)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log.format, config.log.level)
    try:
        # engine.event_loop: asyncio's loop or uvloop's, for the whole life of the engine
        with asyncio.Runner(loop_factory=loop_factory(config.engine.event_loop)) as runner:
            runner.run(serve(config))
    except FlowError as exc:
        print("ivr: the flows have errors; not starting:", file=sys.stderr)
        for p in exc.problems:
            print(str(p), file=sys.stderr)
        return 1
    except (ConfigError, StoreError) as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ivr.flow.loader import validate_paths

    paths = [Path(p) for p in args.paths] or [Path("flows")]
    catalogue = Path(args.prompts) if args.prompts else None
    problems = validate_paths(paths, catalogue)
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        print(str(p), file=sys.stderr)
    if errors:
        return 1
    if not args.quiet:
        print(f"ok: {', '.join(str(p) for p in paths)}"
              + (f" ({len(problems)} warning(s))" if problems else ""))
    return 0


def _fmt_time(value) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


# One call a line, as 'calls list' prints them and 'calls show' prints the one; ``via``: how the
# caller reached us (voice, video).
_CALL_HEADER = (f"{'time':19}  {'caller':15}  {'dialled':10}  {'via':5}  {'flow':12}  {'outcome':18}  "
                f"{'why':34}  path / keys")


def _call_line(r, caller: str) -> str:
    outcome = r.outcome or "in progress"
    if r.detail:
        outcome = f"{outcome}: {r.detail}"
    why = r.reason or "-"
    if r.priority:
        why = f"{why} [priority {r.priority}]"
    return (f"{_fmt_time(r.started_at):19}  {caller:15}  {r.dialled:10}  {r.channel:5}  "
            f"{(r.flow or '-'):12}  {outcome:18}  {why:34}  {' > '.join(r.nodes) or '-'}  "
            f"[{' '.join(r.digits)}]")


def _call_dict(r, caller: str) -> dict[str, Any]:
    """A call as 'calls list --json' and 'calls show --json' give it."""
    return {
        "call_id": r.call_id, "started_at": r.started_at.isoformat(),
        "ended_at": r.ended_at.isoformat() if r.ended_at else None,
        "caller": caller, "dialled": r.dialled, "channel": r.channel, "flow": r.flow,
        "flow_version": r.flow_version, "language": r.language, "nodes": r.nodes,
        "digits": r.digits, "outcome": r.outcome, "detail": r.detail,
        "priority": r.priority, "reason": r.reason,
        "exits": r.exits, "queue": r.queue, "waited": r.waited,
        "chat": [{"at": line.at.isoformat(), "sender": line.sender, "text": line.text}
                 for line in r.chat],
        "chat_dropped": r.chat_dropped,
    }


# Characters that reorder the text shown around them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _printable(text: str) -> str:
    """``text`` safe for a terminal: control characters and bidi overrides (a chat line is
    typed on a web page) shown as ``\\x1b``-style escapes instead of acting on the terminal."""
    import unicodedata

    return "".join(c.encode("unicode_escape").decode("ascii")
                   if c in _BIDI_CONTROLS or unicodedata.category(c) == "Cc" else c
                   for c in text)


def _chat_lines(r) -> list[str]:
    """A call's chat as 'calls show' prints it: time, who, what; a line said over several
    lines continues under its text."""
    out = []
    for line in r.chat:
        first, *rest = line.text.splitlines() or [""]
        out.append(f"  {_fmt_time(line.at):19}  {line.sender:6}  {_printable(first)}")
        out.extend(f"  {'':19}  {'':6}  {_printable(more)}" for more in rest)
    if r.chat_dropped:
        from ivr.call import CHAT_LINES_MAX

        out.append(f"  … and {r.chat_dropped} more line(s), not kept (a call keeps "
                   f"{CHAT_LINES_MAX})")
    return out


def cmd_calls_list(args: argparse.Namespace) -> int:
    from ivr.logs import mask_number

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    records = _with_store(config, lambda store: store.recent_calls(args.limit))
    if args.json:
        out = [_call_dict(r, mask_number(r.caller) if r.caller else "anonymous") for r in records]
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    if not records:
        print("no calls recorded yet")
        return 0
    print(_CALL_HEADER)
    for r in records:
        print(_printable(_call_line(r, mask_number(r.caller) if r.caller else "anonymous")))
    return 0


def cmd_calls_show(args: argparse.Namespace) -> int:
    """One call as 'calls list' prints it, then its queue events, oldest first."""
    from ivr.logs import mask_number

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2

    async def fetch(store):
        return await store.get_call(args.call_id), await store.call_events(args.call_id)

    r, events = _with_store(config, fetch)
    if r is None and not events:
        print(f"ivr: no call {args.call_id!r} is recorded", file=sys.stderr)
        return 1
    if r is None:
        # Queue events without the call's record (it could not be written when the call began).
        print(f"ivr: call {args.call_id!r} has queue events but no call record", file=sys.stderr)
    caller = (mask_number(r.caller) if r.caller else "anonymous") if r is not None else None
    if args.json:
        out: dict[str, Any] = {"call": None, "events": [
            {"at": e.at.isoformat(), "kind": e.kind, "agent_id": e.agent_id, "queue": e.queue,
             "detail": e.detail} for e in events]}
        if r is not None:
            assert caller is not None
            out["call"] = _call_dict(r, caller)
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    if r is not None:
        assert caller is not None
        print(_CALL_HEADER)
        print(_printable(_call_line(r, caller)))
        if r.exits:
            # How each node was left (the journey report's funnel counts these).
            print("left by: " + " > ".join(f"{node} ({how})" for node, how in zip(r.nodes, r.exits, strict=False)))
        if r.queue is not None:
            waited = "-" if r.waited is None else f"{r.waited:.1f} s"
            print(f"queue:   {r.queue}, waited {waited}")
        if r.chat or r.chat_dropped:
            print("chat:")
            for line in _chat_lines(r):
                print(line)
        print()
    if not events:
        print("no queue events")
        return 0
    print(f"{'time':19}  {'event':14}  {'agent':10}  {'queue':12}  detail")
    for e in events:
        print(f"{_fmt_time(e.at):19}  {e.kind:14}  {(e.agent_id or '-'):10}  {(e.queue or '-'):12}  "
              f"{e.detail}".rstrip())
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """The supervisors' audit log: who logged in, was refused, paused an agent … newest first."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from ivr.analytics.export import ExportError, parse_moment

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    tz = ZoneInfo(config.callers.timezone)
    try:
        since = (parse_moment(args.since, tz) if args.since
                 else dt.datetime.combine(_center_today(config), dt.time(), tz))
    except ExportError as exc:
        print(f"ivr: --since: {exc}", file=sys.stderr)
        return 2
    if args.limit < 1:
        print("ivr: --limit must be 1 or more", file=sys.stderr)
        return 2
    entries = _with_store(config, lambda store: store.audit_entries(since, args.limit))
    if args.json:
        json.dump([{"at": e.at.isoformat(), "user": e.user, "role": e.role, "action": e.action,
                    "target": e.target, "detail": e.detail, "source": e.source} for e in entries],
                  sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    if not entries:
        print(f"no audit entries since {since.isoformat()}")
        return 0
    print(f"{'time':19}  {'user':16}  {'role':10}  {'action':16}  {'target':16}  {'from':15}  detail")
    for e in entries:
        print(f"{e.at.astimezone(tz).strftime('%Y-%m-%d %H:%M:%S'):19}  {e.user[:16]:16}  {e.role:10}  "
              f"{e.action:16}  {(e.target or '-')[:16]:16}  {(e.source or '-'):15}  {e.detail}".rstrip())
    return 0


IMPORT_BATCH = 1000   # callers written per store call by 'ivr callers import'


def cmd_callers_import(args: argparse.Namespace) -> int:
    from ivr.errors import CallerFileError
    from ivr.routing.registry import import_callers_csv

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    try:
        report = import_callers_csv(args.file, config.callers.region, today=_center_today(config))
    except CallerFileError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 1
    for problem in report.problems:
        print(str(problem), file=sys.stderr)
    if not report.callers:
        print(f"imported 0, rejected {report.rejected}: nothing to import", file=sys.stderr)
        return 1

    async def write(store) -> int:
        written = 0
        for i in range(0, len(report.callers), IMPORT_BATCH):
            written += await store.put_callers(report.callers[i:i + IMPORT_BATCH])
        return written

    written = _with_store(config, write)
    line = f"imported {written}, rejected {report.rejected}"
    if report.warnings:
        line += f", {report.warnings} warning(s)"
    print(line)
    return 0


def _center_today(config):
    import datetime as dt
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(config.callers.timezone)).date()


def cmd_callers_show(args: argparse.Namespace) -> int:
    import datetime as dt

    from ivr.routing.identify import RepeatPolicy
    from ivr.routing.numbers import normalize
    from ivr.routing.registry import age_on

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    number = normalize(args.number, config.callers.region)
    if not number.ok or number.e164 is None:
        print(f"ivr: {args.number!r} is not a phone number one can look up: {number.reason}", file=sys.stderr)
        return 1
    e164 = number.e164
    rule = RepeatPolicy()
    now = dt.datetime.now(dt.timezone.utc)

    async def fetch(store):
        caller = await store.get_caller(e164)
        recent = await store.count_calls_since(e164, now - dt.timedelta(seconds=rule.window))
        return caller, recent

    caller, recent = _with_store(config, fetch)
    today = _center_today(config)
    days = round(rule.window / 86400)
    rows = [("number", e164)]
    if caller is None:
        rows.append(("registered", "no"))
    else:
        age = age_on(caller.birth_date, today) if caller.birth_date else None
        born = (f"{caller.birth_date.isoformat()} (age {age} today)" if caller.birth_date and age is not None
                else caller.birth_date.isoformat() if caller.birth_date else "-")
        rows += [("registered", "yes"), ("birth date", born), ("language", caller.language or "-"),
                 ("needs assistance", "yes" if caller.needs_assistance else "no"),
                 ("name", caller.name or "-"), ("wellness", caller.wellness or "-"),
                 ("updated", _fmt_time(caller.updated_at))]
    nth = recent + 1
    repeat = "a repeat caller" if nth >= rule.calls else "not a repeat caller"
    rows.append((f"calls in {days} days", f"{recent} (a call now would be number {nth}: {repeat})"))
    width = max(17, *(len(k) + 1 for k, _ in rows))
    for key, value in rows:
        print(f"{key + ':':{width}} {value}")
    return 0


def _fmt_wait(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def cmd_callbacks_list(args: argparse.Namespace) -> int:
    """Callback reservations, the most recently booked first; times in the center's zone.

    Through the running engine's admin API (v1, every page up to ``--limit``) when a token is
    configured; from the store when not, or when the engine does not answer."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from ivr.logs import mask_number

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2

    def iso(value):
        return value.isoformat() if value else None

    out: list[dict[str, Any]] | None = None
    if config.admin.token:
        try:
            out = _AdminApi(config).pages("/reservations", {"status": args.status}, args.limit)
        except _ApiDown as exc:
            print(f"ivr: {exc}; reading the store instead", file=sys.stderr)
        except _ApiRefused as exc:
            print(f"ivr: {exc}", file=sys.stderr)
            return 1
    if out is None:
        reservations = _with_store(config, lambda store: store.list_reservations(args.status, args.limit))
        out = [{"id": r.id, "number": mask_number(r.number), "queue": r.queue,
                "status": r.status, "priority": r.priority, "reason": r.reason,
                "language": r.language, "waited": r.waited, "arrived_at": iso(r.arrived_at),
                "created_at": iso(r.created_at), "due_at": iso(r.due_at),
                "slot_end": iso(r.slot_end), "attempts": r.attempts,
                "last_attempt_at": iso(r.last_attempt_at), "last_result": r.last_result,
                "claimed_by": r.claimed_by, "claim_until": iso(r.claim_until),
                "call_id": r.call_id, "updated_at": iso(r.updated_at)} for r in reservations]
    if args.json:
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    if not out:
        print(f"no {args.status} callback reservations" if args.status
              else "no callback reservations")
        return 0
    tz = ZoneInfo(config.callers.timezone)
    print(f"{'id':32}  {'number':15}  {'queue':12}  {'status':9}  {'due (' + tz.key + ')':22}  "
          f"{'tries':>5}  {'waited':>7}  last result")
    for r in out:
        due = dt.datetime.fromisoformat(r["due_at"]).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        if r["slot_end"] is not None:
            due += dt.datetime.fromisoformat(r["slot_end"]).astimezone(tz).strftime("-%H:%M")
        print(f"{r['id']:32}  {r['number']:15}  {r['queue']:12}  {r['status']:9}  {due:22}  "
              f"{r['attempts']:5}  {_fmt_wait(r['waited']):>7}  {r['last_result'] or '-'}")
    return 0


def cmd_callbacks_cancel(args: argparse.Namespace) -> int:
    """Cancel one pending (or being dialled) reservation: exit 1 when there is none to cancel."""
    from ivr.logs import mask_number

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2

    if config.admin.token:          # the engine withdraws it from the line at once
        try:
            done = _AdminApi(config).request("POST", f"/reservations/{_quoted(args.id)}/cancel")
        except _ApiRefused as exc:
            print(f"ivr: {exc}", file=sys.stderr)
            return 1
        except _ApiDown as exc:
            print(f"ivr: {exc}; cancelling in the store instead", file=sys.stderr)
        else:
            print(f"cancelled callback reservation {done['id']} ({done['number']}, "
                  f"queue {done['queue']})")
            return 0

    async def cancel(store):
        before = await store.get_reservation(args.id)
        if before is None or not before.open:
            return before, False
        return before, await store.cancel_reservation(args.id)

    before, cancelled = _with_store(config, cancel)
    if before is None:
        print(f"ivr: no callback reservation {args.id!r}", file=sys.stderr)
        return 1
    if not before.open:
        print(f"ivr: callback reservation {args.id} is already {before.status}; only pending "
              "reservations (or ones being dialled) can be cancelled", file=sys.stderr)
        return 1
    if not cancelled:
        print(f"ivr: callback reservation {args.id} was finished meanwhile", file=sys.stderr)
        return 1
    print(f"cancelled callback reservation {before.id} ({mask_number(before.number)}, "
          f"queue {before.queue})")
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from ivr.sandbox import run_sandbox

    return run_sandbox(args.action, *args.rest)


def cmd_prompts_build(args: argparse.Namespace) -> int:
    """Render what changed, with progress; recordings in <prompts>/recordings/<lang>/ win."""
    from ivr.prompts import ToolMissing, build, load_catalogue

    root = Path(args.prompts)
    try:
        catalogue = load_catalogue(root / "catalog.yaml")
    except FlowError as exc:
        for p in exc.problems:
            print(str(p), file=sys.stderr)
        return 1
    langs = args.lang or list(catalogue.languages)
    live = sys.stdout.isatty()
    step = 0

    def progress(done: int, total: int, key: str, what: str) -> None:
        nonlocal step
        line = f"[{done:{len(str(total))}}/{total}] {what:8} {key}"
        if live:                                  # one line, rewritten in place
            print(f"\r{line:<60}", end="" if done < total else "\n", flush=True)
        elif what == "failed" or done == total or done * 10 // total > step:
            step = done * 10 // total             # a log or CI: a line every tenth
            print(line, flush=True)

    try:
        result = build(catalogue, root / "audio", langs, recordings=root / "recordings", progress=progress)
    except ToolMissing as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 1
    for warning in result.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    print(result)
    return 0 if result.ok else 1


class _ApiDown(Exception):
    """The engine's admin API does not answer."""


class _ApiRefused(Exception):
    """The engine's admin API answered with an error (``str``: its message)."""


def _quoted(part: str) -> str:
    import urllib.parse

    return urllib.parse.quote(part, safe="")


class _AdminApi:
    """The running engine's operator API, version 1 (``ivr.web.api``), over loopback HTTP."""

    def __init__(self, config: Any) -> None:
        self.base = f"http://{config.admin.host}:{config.admin.port}/api/v1"
        self.token = config.admin.token

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}"})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            try:
                message = json.load(exc).get("error", exc.reason)
            except (ValueError, AttributeError):
                message = exc.reason
            raise _ApiRefused(message) from None
        except (urllib.error.URLError, OSError) as exc:
            raise _ApiDown(f"the engine's admin API at {self.base} does not answer ({exc}); "
                           f"is 'ivr run' running?") from None

    def pages(self, path: str, params: dict[str, str | None],
              limit: int | None = None) -> list[dict[str, Any]]:
        """Every item of a paged listing (up to ``limit``), following ``next``."""
        import urllib.parse

        items: list[dict[str, Any]] = []
        query = {k: v for k, v in params.items() if v is not None}
        while limit is None or len(items) < limit:
            if limit is not None:
                query["limit"] = str(min(500, limit - len(items)))
            page = self.request("GET", f"{path}?{urllib.parse.urlencode(query)}")
            items += page["items"]
            if page["next"] is None:
                break
            query["cursor"] = page["next"]
        return items


def cmd_users(args: argparse.Namespace) -> int:
    """The wallboard's users (``admin.users_file``): add (or change) one, list, remove."""
    import getpass

    from ivr.web.auth import Role, User, check_name, hash_password, read_users, write_users

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    path = config.admin.users_file
    if path is None:
        print("ivr: admin.users_file is not set: name the wallboard's users file in the config, "
              "e.g. admin: {users_file: wallboard-users.yaml}", file=sys.stderr)
        return 2
    users = read_users(path) if path.exists() else {}
    if args.users_command == "list":
        if not users:
            print(f"no wallboard users in {path}")
        for u in users.values():
            print(f"{u.name:24}  {u.role}")
        return 0
    try:
        check_name(args.name)
    except ValueError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    if args.users_command == "remove":
        if args.name not in users:
            print(f"ivr: no wallboard user {args.name!r} in {path}", file=sys.stderr)
            return 1
        del users[args.name]
        write_users(path, users.values())
        print(f"removed {args.name} (their sessions end at their next request)")
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("the same again: ") != password:
            print("ivr: the two passwords differ; nothing changed", file=sys.stderr)
            return 1
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        print(f"ivr: {exc}; nothing changed", file=sys.stderr)
        return 1
    changed = args.name in users
    users[args.name] = User(args.name, Role(args.role), hashed)
    write_users(path, users.values())
    print(f"{'changed' if changed else 'added'} {args.name} ({args.role}) in {path}")
    return 0


def _admin_api(args: argparse.Namespace) -> _AdminApi:
    """The running engine's admin API named by the config; a config that cannot be read or has
    no admin token ends the command (exit 2, said on stderr)."""
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        raise _Exit(2) from exc
    if not config.admin.token:
        print("ivr: the admin API needs a token: set admin.token_file in the config or IVR_ADMIN_TOKEN",
              file=sys.stderr)
        raise _Exit(2)
    return _AdminApi(config)


def cmd_agents(args: argparse.Namespace) -> int:
    """Agents of the running engine, through its admin API (v1, every page)."""
    api = _admin_api(args)
    action = args.agents_command
    data: Any
    try:
        if action == "list":
            data = rows = api.pages("/agents", {})
        else:
            data = api.request("POST", f"/agents/{_quoted(args.agent)}/{action}",
                               {"reason": args.reason} if action == "pause" else {})
            rows = [data]
    except _ApiRefused as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 1
    except _ApiDown as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    print(f"{'agent':10}  {'name':16}  {'center':8}  {'state':10}  {'for':>7}  {'handled':>7}  reason / call")
    for a in rows:
        extra = a.get("reason") or a.get("call") or ""
        if a.get("for_seconds") is None:          # never in any state since the engine started
            held, extra = f"{'-':>7}", extra or "never logged in"
        else:
            held = f"{a['for_seconds']:6.0f}s"
        print(f"{a['id']:10}  {a['name'][:16]:16}  {(a.get('center') or '-')[:8]:8}  {a['state']:10}  "
              f"{held}  {a['handled']:7}  {extra}")
    return 0


def _flows_and_prompts(args: argparse.Namespace):
    from ivr.flow.loader import load_flows
    from ivr.logs import configure_logging
    from ivr.prompts import load_catalogue

    configure_logging("console", "warning")
    catalogue = load_catalogue(Path(args.prompts) / "catalog.yaml")
    return load_flows([Path(p) for p in args.flows], catalogue), catalogue


def _looks_like_a_path(ref: str) -> bool:
    """Flow names and dialled numbers hold no '/' and no '.'; a flow file's path does."""
    return "/" in ref or os.sep in ref or ref.endswith((".yaml", ".yml"))


def _flows_for(args: argparse.Namespace):
    """The flows and catalogue for ``args.flow``, and the flow it means, for simulate and graph.

    ``args.flow`` is a flow's name, a number it answers, or the path of a flow file (as
    ``ivr validate`` takes).  A file among the ``--flows`` folders' files is loaded with them;
    any other file with the flow files of its own folder (where its subflows are).
    ``LookupError`` when the path is not a file; ``FlowError`` when the flows have errors.
    """
    from ivr.flow.loader import flow_files

    ref, folders = args.flow, [Path(p) for p in args.flows]
    path = Path(ref) if _looks_like_a_path(ref) else None
    if path is None:
        flowset, catalogue = _flows_and_prompts(args)
        return flowset, catalogue, ref
    if not path.is_file():
        raise LookupError(f"no flow file '{ref}'" + (": it is a folder; name a file in it, or a flow"
                                                      if path.is_dir() else ""))
    wanted = path.resolve()
    if wanted not in {f.resolve() for f in flow_files(folders)}:
        folders = [path.parent] if path.suffix in (".yaml", ".yml") else [path]
    flowset, catalogue = _flows_and_prompts(argparse.Namespace(flows=folders, prompts=args.prompts))
    for flow in flowset:
        if Path(flow.file).resolve() == wanted:
            return flowset, catalogue, flow.name
    raise LookupError(f"'{ref}' is not a flow file")       # pragma: no cover - a loaded file is a flow


def cmd_simulate(args: argparse.Namespace) -> int:
    """A call in the terminal: the prompts' texts, the keys, the routing, the end."""
    from ivr.errors import FlowError
    from ivr.simulate import caller_facts, simulate

    try:
        flowset, catalogue, target = _flows_for(args)
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    except LookupError as exc:
        print(f"ivr: {exc.args[0]}", file=sys.stderr)
        return 2
    keys = args.keys.split(",") if args.keys else []
    facts = caller_facts(args.caller, age=args.age, recent_calls=args.recent_calls,
                         language=args.caller_lang, anonymous=args.anonymous)
    ask = None if args.keys is not None or not sys.stdin.isatty() else input
    try:
        asyncio.run(simulate(flowset, catalogue, target, keys=keys, facts=facts,
                             language=args.lang, ask=ask))
    except LookupError as exc:
        print(f"ivr: {exc.args[0]}", file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print("\n■ the caller hung up")
    return 0


def cmd_test_flows(args: argparse.Namespace) -> int:
    """Run the scripted cases in <flows>/tests/*.yaml; exit 1 when one fails."""
    from ivr.errors import FlowError
    from ivr.simulate import run_cases

    failed = total = 0
    for folder in args.flows:
        try:
            flowset, catalogue = _flows_and_prompts(argparse.Namespace(flows=[folder], prompts=args.prompts))
        except FlowError as exc:
            print(exc, file=sys.stderr)
            return 1
        for result in asyncio.run(run_cases(Path(folder), catalogue, flowset)):
            total += 1
            if result.passed:
                print(f"PASS  {result.file.name}: {result.name}")
            else:
                failed += 1
                print(f"FAIL  {result.file.name}: {result.name}")
                for problem in result.problems:
                    print(f"        {problem}")
    if total == 0:
        print("no cases found: put them in <flows>/tests/*.yaml", file=sys.stderr)
        return 1
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_graph(args: argparse.Namespace) -> int:
    """A flow as Mermaid text (default) or Graphviz DOT; SVG through Graphviz when installed."""
    import shutil
    import subprocess

    from ivr.errors import FlowError
    from ivr.flow.graph import dot, mermaid

    try:
        flowset, _, target = _flows_for(args)
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    except LookupError as exc:
        print(f"ivr: {exc.args[0]}", file=sys.stderr)
        return 2
    flow = flowset.get(target) if target in flowset.flow_names() else flowset.for_number(target)
    if flow is None:
        print(f"ivr: no flow is named or answers '{args.flow}' "
              f"(flows: {', '.join(sorted(flowset.flow_names()))})", file=sys.stderr)
        return 2
    out = args.output
    fmt = args.format or ("svg" if out and out.endswith(".svg") else
                          "dot" if out and out.endswith(".dot") else "mermaid")
    if fmt == "mermaid":
        text = mermaid(flow)
    else:
        text = dot(flow)
    if fmt == "svg":
        graphviz = shutil.which("dot")
        if graphviz is None:
            print("ivr: drawing SVG needs Graphviz ('apt install graphviz'); "
                  "use --format mermaid or dot meanwhile", file=sys.stderr)
            return 2
        rendered = subprocess.run([graphviz, "-Tsvg"], input=text.encode(), capture_output=True, check=True)
        Path(out or f"{flow.name}.svg").write_bytes(rendered.stdout)
        return 0
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """The JSON Schema of flow files (or, with --cases, of scripted flow tests), for editors."""
    from ivr.flow.schema import cases_schema, flow_schema

    print(json.dumps(cases_schema() if args.cases else flow_schema(), indent=2, ensure_ascii=False))
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    """A scripted test call through SIPp (ivr.sipp): how it ended, then the engine's record of it
    (path, keys, language, outcome) read from the store of ``--config``."""
    import datetime as dt

    from ivr.sipp import agent_main, call_main

    if args.rest[:1] == ["agent"]:
        return agent_main(args.rest[1:], prog="ivr call agent")
    started = dt.datetime.now(dt.timezone.utc)
    return call_main(args.rest, prog="ivr call", report=lambda result: _print_engine_record(args, result, started))


RECORD_WAIT = 5.0   # seconds 'ivr call' waits for the engine to finish writing the call's record


def _print_engine_record(args: argparse.Namespace, result, started) -> None:
    import datetime as dt

    from ivr.logs import mask_number
    from ivr.routing.numbers import normalize
    from ivr.store import open_store

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"engine: no record read ({exc})")
        return

    def same_number(a: str | None, b: str) -> bool:
        na, nb = normalize(a), normalize(b)
        return (na.e164 or a) == (nb.e164 or b)

    async def find():
        async with open_store(config.store_url) as store:
            deadline = asyncio.get_running_loop().time() + RECORD_WAIT
            while True:
                mine = [r for r in await store.recent_calls(50)
                        if r.dialled == result.number and same_number(r.caller, result.caller)
                        and r.started_at >= started - dt.timedelta(seconds=2)]
                if (mine and mine[0].ended_at is not None) or asyncio.get_running_loop().time() > deadline:
                    return mine[0] if mine else None
                await asyncio.sleep(0.2)

    try:
        r = asyncio.run(find())
    except IvrError as exc:
        print(f"engine: no record read ({exc})")
        return
    if r is None:
        print("engine: no record of this call in the store (is the engine running with this config?)")
        return
    outcome = r.outcome or "in progress"
    if r.detail:
        outcome = f"{outcome}: {r.detail}"
    print(f"engine: call {r.call_id}  flow {r.flow or '-'} (version {r.flow_version or '-'})  "
          f"language {r.language or '-'}  caller {mask_number(r.caller) if r.caller else 'anonymous'}")
    print(f"  path:    {' > '.join(r.nodes) or '-'}")
    print(f"  keys:    {' '.join(r.digits) or '-'}")
    why = f"  ({r.reason}{f', priority {r.priority}' if r.priority else ''})" if r.reason else ""
    print(f"  outcome: {outcome}{why}")


def _date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01") from None


WELLNESS_IMPORT_BATCH = 1000   # people written per store call by 'ivr wellness import'


def cmd_wellness_import(args: argparse.Namespace) -> int:
    """Add or update wellness people from a CSV file (bad rows reported by line, good ones kept)
    or from the caller registry (``--from-registry``: its callers with a wellness campaign)."""
    from ivr.store import open_store
    from ivr.wellness.importer import WellnessFileError, import_wellness_csv

    if (args.file is None) == (not args.from_registry):
        print("ivr: wellness import: name a FILE.csv or give --from-registry (one of them)",
              file=sys.stderr)
        return 2
    if args.from_registry and args.campaign is not None:
        print("ivr: wellness import: --campaign is for a file; the registry names each caller's "
              "campaign (its wellness column)", file=sys.stderr)
        return 2
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    names = [c.name for c in config.wellness.campaigns]
    if not names:
        print("ivr: no wellness campaign in the config: add one under wellness.campaigns first",
              file=sys.stderr)
        return 2
    if args.from_registry:
        return _wellness_from_registry(config, names, allow_international=args.international)
    try:
        report = import_wellness_csv(args.file, region=config.callers.region, campaigns=names,
                                     campaign=args.campaign,
                                     default_language=config.engine.default_language,
                                     allow_international=args.international)
    except WellnessFileError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 1
    for problem in report.problems:
        print(str(problem), file=sys.stderr)
    if not report.people:
        print(f"imported 0, rejected {report.rejected}: nothing to import", file=sys.stderr)
        return 1

    async def write() -> int:
        written = 0
        async with open_store(config.store_url) as store:
            for i in range(0, len(report.people), WELLNESS_IMPORT_BATCH):
                written += await store.put_wellness_people(
                    report.people[i:i + WELLNESS_IMPORT_BATCH])
        return written

    try:
        written = asyncio.run(write())
    except IvrError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    line = f"imported {written}, rejected {report.rejected}"
    if report.warnings:
        line += f", {report.warnings} warning(s)"
    print(line)
    return 0


REGISTRY_PAGE = 1000        # registry callers read per store call by 'ivr wellness import --from-registry'
_SKIPPED_SHOWN = 10         # numbers named per unknown campaign (masked), the rest counted


def _wellness_from_registry(config: Config, campaigns: Sequence[str], *,
                            allow_international: bool) -> int:
    """Every registry caller with a wellness campaign becomes (or stays) a person of it; the
    callers of campaigns the config has not got, or whose number cannot be rung, are said
    (numbers masked) and skipped."""
    from ivr.logs import mask_number, mask_numbers_in
    from ivr.wellness.importer import people_from_registry
    from ivr.wellness.model import Person

    if config.callers.registry is not None:
        print("ivr: warning: callers.registry is a system asked number by number and cannot be "
              "listed; --from-registry reads the callers imported with 'ivr callers import'",
              file=sys.stderr)

    async def run(store: Store) -> tuple[int, dict[str, list[str]], list[tuple[str, str]]]:
        known: dict[str, Person] = {}
        after: str | None = None
        while True:             # the people already on the list keep what only it holds
            page = await store.list_wellness_people(limit=REGISTRY_PAGE, after=after)
            known.update((p.number, p) for p in page)
            if len(page) < REGISTRY_PAGE:
                break
            after = page[-1].number
        written = 0
        unknown: dict[str, list[str]] = {}
        refused: list[tuple[str, str]] = []
        after = None
        while True:
            callers = await store.list_callers(REGISTRY_PAGE, after=after)
            found = people_from_registry(callers, known, campaigns=campaigns,
                                         region=config.callers.region,
                                         default_language=config.engine.default_language,
                                         allow_international=allow_international)
            written += await store.put_wellness_people(found.people)
            for campaign, numbers in found.unknown.items():
                unknown.setdefault(campaign, []).extend(numbers)
            refused += found.refused
            if len(callers) < REGISTRY_PAGE:
                return written, unknown, refused
            after = callers[-1].number

    written, unknown, refused = _with_store(config, run)
    configured = ", ".join(sorted(campaigns))
    for campaign, numbers in sorted(unknown.items()):
        shown = ", ".join(mask_number(n) for n in numbers[:_SKIPPED_SHOWN])
        more = f" and {len(numbers) - _SKIPPED_SHOWN} more" if len(numbers) > _SKIPPED_SHOWN else ""
        print(f"registry: campaign {campaign!r} is not in wellness.campaigns ({configured}): "
              f"{len(numbers)} caller(s) skipped: {shown}{more}", file=sys.stderr)
    for number, why in refused:
        print(f"registry: {mask_number(number)}: {mask_numbers_in(why)}; skipped", file=sys.stderr)
    skipped = sum(len(n) for n in unknown.values()) + len(refused)
    print(f"imported {written} from the registry, skipped {skipped}")
    if written == 0:
        if skipped == 0:
            print("ivr: no caller in the registry names a wellness campaign (the wellness column "
                  "of 'ivr callers import')", file=sys.stderr)
        return 1
    return 0


def _shown(number: str, full: bool) -> str:
    from ivr.logs import mask_number

    return number if full else mask_number(number)


def _shown_text(text: str | None, full: bool) -> str:
    from ivr.logs import mask_numbers_in

    return (text or "") if full else mask_numbers_in(text or "")


def cmd_wellness_status(args: argparse.Namespace) -> int:
    """Each campaign now: from the store (people, today's attempts, the visit list) and, when
    the engine answers, its live view (window, surge pause, calls in progress)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    tz = ZoneInfo(config.callers.timezone)
    now = dt.datetime.now(dt.timezone.utc)
    midnight = dt.datetime.combine(_center_today(config), dt.time(0), tzinfo=tz)

    async def read(store: Any) -> tuple[dict[str, list[Any]], list[Any], list[Any], dict[str, int]]:
        people: dict[str, list[Any]] = {}
        for c in config.wellness.campaigns:
            after, listed = None, []
            while True:
                page = await store.list_wellness_people(c.name, 1000, after=after)
                listed += page
                if len(page) < 1000:
                    break
                after = page[-1].number
            people[c.name] = listed
        today = await store.wellness_attempts(midnight, limit=1_000_000)
        visits = await store.list_wellness_visits(open_only=True, limit=1_000_000)
        return people, today, visits, await store.wellness_in_progress(now)

    people, today, visits, in_progress = _with_store(config, read)
    live: dict[str, Any] | None = None
    live_error = None
    if config.admin.token:
        try:
            live = _AdminApi(config).request("GET", "/wellness")
        except (_ApiDown, _ApiRefused) as exc:
            live_error = str(exc)
    else:
        live_error = "no admin token in the config: the engine's live view is not asked"
    by_name = {c["name"]: c for c in (live or {}).get("campaigns", [])}
    out = []
    for c in config.wellness.campaigns:
        results: dict[str, int] = {}
        for a in today:
            if a.campaign == c.name:
                results[str(a.result)] = results.get(str(a.result), 0) + 1
        listed = people.get(c.name, [])
        entry = {"name": c.name, "people": len(listed), "opted_out": sum(p.opt_out for p in listed),
                 "window_open": c.hours.is_open(now), "in_progress": in_progress.get(c.name, 0),
                 "today": results, "visits_open": sum(1 for v in visits if v.campaign == c.name),
                 "max_concurrent": c.max_concurrent}
        if c.name in by_name:
            entry["paused"] = by_name[c.name]["paused"]
            entry["flow_problem"] = by_name[c.name]["flow_problem"]
        if not c.hours.is_open(now):
            try:
                entry["next_open"] = c.hours.next_open(now).astimezone(tz).isoformat()
            except ValueError:
                entry["next_open"] = None
        out.append(entry)
    if args.json:
        print(json.dumps({"campaigns": out, "engine": "answers" if live is not None else live_error},
                         ensure_ascii=False, indent=2))
        return 0
    if not out:
        print("no wellness campaign in the config (wellness.campaigns)")
        return 0
    for e in out:
        state = "open" if e["window_open"] else f"closed, opens {e.get('next_open') or 'never'}"
        if e.get("paused"):
            state += "; PAUSED by the inbound surge"
        if e.get("flow_problem"):
            state += f"; NOT RINGING: {e['flow_problem']}"
        print(f"{e['name']}: {state}")
        print(f"  people {e['people']} ({e['opted_out']} opted out); in progress "
              f"{e['in_progress']} of {e['max_concurrent']}; visits open {e['visits_open']}")
        done = ", ".join(f"{k} {v}" for k, v in sorted(e["today"].items())) or "none"
        print(f"  today: {done}")
    if live is None:
        print(f"(the engine's live view is missing: {live_error})")
    return 0


def cmd_wellness_run_now(args: argparse.Namespace) -> int:
    """Ask the running engine to look at the campaigns at once, or to ring one person now."""
    api = _admin_api(args)
    body = {} if args.number is None else {"number": args.number}
    try:
        answer = api.request("POST", "/wellness/run-now", body)
    except _ApiDown as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except _ApiRefused as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 1
    if answer.get("number"):
        print(f"the engine rings {answer['number']} now if the window is open, a line is free, "
              "they were not reached today and have tries left ('ivr wellness status' shows it)")
    else:
        print("the engine looks at the wellness campaigns now")
    return 0


def cmd_wellness_list(args: argparse.Namespace) -> int:
    """The people wellness campaigns ring, by number (every page up to ``--limit``)."""
    from ivr.store import open_store

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2

    async def fetch():
        people = []
        async with open_store(config.store_url) as store:
            while len(people) < args.limit:
                size = min(500, args.limit - len(people))
                page = await store.list_wellness_people(args.campaign, size,
                                                        after=people[-1].number if people else None)
                people += page
                if len(page) < size:
                    break
        return people

    try:
        people = asyncio.run(fetch())
    except IvrError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    full = args.full_numbers
    if args.json:
        print(json.dumps([{"number": _shown(p.number, full), "campaign": p.campaign,
                           "name": p.name, "language": p.language,
                           "contact": _shown_text(p.contact, full), "address_ref": p.address_ref,
                           "opt_out": p.opt_out,
                           "added_at": p.added_at.isoformat() if p.added_at else None}
                          for p in people], ensure_ascii=False, indent=2))
        return 0
    if not people:
        print("no wellness people" + (f" in campaign {args.campaign}" if args.campaign else ""))
        return 0
    print(f"{'NUMBER':16}  {'CAMPAIGN':12}  {'LANG':4}  {'OPT-OUT':7}  {'ADDRESS':10}  NAME / CONTACT")
    for p in people:
        print(f"{_shown(p.number, full):16}  {p.campaign[:12]:12}  {p.language:4}  "
              f"{'yes' if p.opt_out else 'no':7}  {p.address_ref[:10]:10}  "
              f"{p.name} / {_shown_text(p.contact, full)}".rstrip(" /"))
    return 0


def cmd_wellness_visits(args: argparse.Namespace) -> int:
    """The home-visit list, the longest waiting first; ``--done ID --note TEXT`` marks a visit made."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from ivr.store import open_store

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    if (args.done is None) != (args.note is None) or (args.note is not None and not args.note.strip()):
        print("ivr: --done ID and --note TEXT go together (say what the visit found)", file=sys.stderr)
        return 2
    tz = ZoneInfo(config.callers.timezone)
    full = args.full_numbers

    async def run():
        async with open_store(config.store_url) as store:
            if args.done is not None:
                done = await store.mark_wellness_visit_done(args.done, dt.datetime.now(dt.timezone.utc),
                                                            args.note.strip())
                return done, await store.get_wellness_visit(args.done), {}
            visits = await store.list_wellness_visits(open_only=not args.all,
                                                      campaign=args.campaign, limit=args.limit)
            people = {}              # the visitor needs the person's details
            for number in dict.fromkeys(v.number for v in visits):
                person = await store.get_wellness_person(number)
                if person is not None:
                    people[number] = person
            return None, visits, people

    try:
        done, got, people = asyncio.run(run())
    except IvrError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    if args.done is not None:
        if not done:
            why = "there is no such visit" if got is None else "it has ended already"
            print(f"ivr: visit {args.done} not marked done: {why} (ivr wellness visits --all)",
                  file=sys.stderr)
            return 1
        print(f"visit {args.done} ({_shown(got.number, full)}) done: {got.note}")
        return 0

    def local(at):
        return at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else None

    if args.json:
        print(json.dumps([{"id": v.id, "number": _shown(v.number, full), "campaign": v.campaign,
                           "since": v.since.isoformat(), "open": v.open,
                           "done_at": v.done_at.isoformat() if v.done_at else None,
                           "note": v.note,
                           "cleared_at": v.cleared_at.isoformat() if v.cleared_at else None,
                           "history": [{"at": a.at.isoformat(), "result": str(a.result),
                                        "detail": a.detail} for a in v.history]}
                          for v in got], ensure_ascii=False, indent=2))
        return 0
    if not got:
        print("no open visits" if not args.all else "no visits")
        return 0
    print(f"{'ID':>5}  {'SINCE':16}  {'NUMBER':16}  {'CAMPAIGN':12}  {'ADDRESS':10}  STATE / TRIED")
    for v in got:
        p = people.get(v.number)
        state = ("open" if v.open else f"done {local(v.done_at)}: {v.note}" if v.done_at
                 else f"cleared {local(v.cleared_at)} (a call reached them)")
        tried = ", ".join(f"{local(a.at)} {a.result}" for a in v.history)
        print(f"{v.id:>5}  {local(v.since):16}  {_shown(v.number, full):16}  {v.campaign[:12]:12}  "
              f"{(p.address_ref if p else '')[:10]:10}  {state}")
        if p is not None and (p.name or p.contact):
            print(f"{'':>5}  {p.name} / contact: {_shown_text(p.contact, full)}")
        if tried:
            print(f"{'':>5}  tried: {tried}")
    return 0


def cmd_wellness_opt_out(args: argparse.Namespace) -> int:
    """Opt a person out of wellness calls (kept with their history, never rung), or back in."""
    from ivr.callbacks.numbers import CallbackNumberRefused, validate_callback_number
    from ivr.logs import mask_number
    from ivr.store import open_store

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    try:
        number = validate_callback_number(args.number, config.callers.region,
                                          allow_international=True)
    except CallbackNumberRefused as exc:
        print(f"ivr: {args.number!r}: {exc}", file=sys.stderr)
        return 2

    async def change() -> bool:
        async with open_store(config.store_url) as store:
            return await store.set_wellness_opt_out(number, not args.undo)

    try:
        changed = asyncio.run(change())
    except IvrError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    if not changed:
        print(f"ivr: {mask_number(number)} is not on a wellness campaign (ivr wellness list)",
              file=sys.stderr)
        return 1
    print(f"{mask_number(number)} " + ("opted back in: rung again from the next window"
                                       if args.undo else "opted out: never rung, history kept"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The journey report of one flow over whole days (the center's dates, --until included)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from ivr.analytics.report import WINDOW, ReportBuilder, csv_tables, format_report, split_range

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    first, last = args.since, args.until or args.since
    if last < first:
        print(f"ivr: --until {last} is before --since {first}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"ivr: --jobs must be at least 1, not {args.jobs}", file=sys.stderr)
        return 2
    tz = ZoneInfo(config.callers.timezone)
    since = dt.datetime.combine(first, dt.time(), tz)
    until = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz)
    order = _report_order(config, args.flow)
    builder = ReportBuilder(args.flow, since, until, tz, order=order, top=args.top)
    followed = min(until + WINDOW, dt.datetime.now(dt.timezone.utc))
    parts = split_range(since, until, args.jobs, tz)
    if len(parts) == 1:
        builder.merge(_report_part(config.store_url, args.flow, since, until, tz, order, args.top))
    else:
        # Each process reads its days and the day on either side; the figures add up.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(len(parts), mp_context=multiprocessing.get_context("spawn")) as pool:
            done = [pool.submit(_report_part, config.store_url, args.flow, a, b, tz, order, args.top)
                    for a, b in parts]
            for future in done:
                builder.merge(future.result())
    report = builder.report(followed)
    sys.stdout.write(format_report(report))
    if args.csv:
        folder = Path(args.csv)
        folder.mkdir(parents=True, exist_ok=True)
        tables = csv_tables(report)
        for name, text in tables.items():
            (folder / name).write_text(text, encoding="utf-8")
        print(f"\ncsv: {folder}/ ({', '.join(tables)})")
    if args.charts:
        from ivr.analytics.charts import funnel_chart, wait_by_hour_chart

        folder = Path(args.charts)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, chart in (("funnel", funnel_chart), ("wait_by_hour", wait_by_hour_chart)):
            for fmt in ("svg", "png"):
                (folder / f"{name}.{fmt}").write_bytes(chart(report, fmt))
                written.append(f"{name}.{fmt}")
        print(f"charts: {folder}/ ({', '.join(written)})")
    return 0


def _report_part(store_url: str, flow: str, since, until, tz, order, top: int):
    """The figures of the calls of [since, until) (a ``ReportBuilder``, finished), read from the
    store with the day on either side; run in a process of its own when the range is split."""
    import gc

    from ivr.analytics.report import WINDOW, ReportBuilder
    from ivr.logs import configure_logging
    from ivr.store import open_store

    configure_logging("console", "warning")
    # Millions of records pass through and are freed as they go (none is kept in a cycle):
    # the cyclic collector, run every 700 allocations by default, would scan them for nothing.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    builder = ReportBuilder(flow, since, until, tz, order=order, top=top)

    async def read() -> None:
        async with open_store(store_url) as store:
            async for batch in store.iter_calls(since - WINDOW, until + WINDOW, flow=flow):
                builder.add(batch)

    asyncio.run(read())
    return builder.finished()


def _report_order(config, flow: str) -> list[str]:
    """The flow's nodes in flow order, from the flows of the config; none (nodes by reach) when
    the flows cannot be read or no longer have the flow (said on stderr)."""
    from ivr.analytics.report import flow_order
    from ivr.flow.loader import load_flows
    from ivr.logs import configure_logging

    configure_logging("console", "warning")
    try:
        flows = load_flows(list(config.flows), None)
    except FlowError as exc:
        print(f"ivr: the flows have errors ({len(exc.problems)}); the funnel's nodes are in order "
              "of reach", file=sys.stderr)
        return []
    found = flows.get(flow)
    if found is None:
        print(f"ivr: no flow '{flow}' in {', '.join(str(p) for p in config.flows)}; the funnel's "
              "nodes are in order of reach", file=sys.stderr)
        return []
    return flow_order(found, flows)


def cmd_export_calls(args: argparse.Namespace) -> int:
    """Every call of a range with its path, exits, keys, queue, wait and queue events, streamed
    to a CSV or Parquet file (or standard output); numbers masked unless --full-numbers."""
    from zoneinfo import ZoneInfo

    from ivr.analytics.export import ExportError, Format, atomic_file, export_range, write_calls

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    fmt: Format = args.format or ("parquet" if args.output.endswith(".parquet") else "csv")
    if fmt == "parquet" and args.output == "-" and sys.stdout.isatty():
        print("ivr: Parquet is binary: name a file with --output", file=sys.stderr)
        return 2
    try:
        since, until = export_range(args.since, args.until, ZoneInfo(config.callers.timezone))
    except ExportError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2

    import gc

    # Millions of records pass through and are freed as they go (none is kept in a cycle): the
    # cyclic collector, run every 700 allocations by default, would scan them for nothing.
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)

    def export(out) -> int:
        return _with_store(config, lambda store: write_calls(
            store, out, since=since, until=until, fmt=fmt, flow=args.flow, full_numbers=args.full_numbers))

    try:
        if args.output == "-":
            written = export(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            with atomic_file(args.output) as out:
                written = export(out)
    except (IvrError, OSError) as exc:      # the output file's (_with_store says the store's)
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
    where = "standard output" if args.output == "-" else args.output
    print(f"ivr: {written} call(s) that started from {since.isoformat()} to {until.isoformat()} "
          f"written to {where} ({fmt}{'' if args.full_numbers else ', numbers masked'})",
          file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="IVR/ARS voice-flow engine for Asterisk (ARI)")
    parser.add_argument("--config", "-c", default=None,
                        help="config file (default: $IVR_CONFIG or ./ivr.yaml)")
    from ivr import __version__

    parser.add_argument("--version", action="version", version=f"ivr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the engine (connects to Asterisk over ARI)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check flow files; exit 1 with file:line: message on errors",
                       description="Check flow files and the prompt catalogue.  Exit 0: valid (warnings "
                       "may be printed); 1: problems found, one 'file:line: message' line each on stderr; "
                       "2: the check could not run (wrong usage, or an internal error: a bug, said in one "
                       "line; set IVR_DEBUG=1 to see its traceback).")
    p.add_argument("paths", nargs="*", help="flow files or folders (default: flows/)")
    p.add_argument("--prompts", default=None, help="prompt catalogue folder (default: prompts/)")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("simulate", help="a call to a flow in the terminal (no Asterisk): "
                       "prompts as text, keys, routing, the end")
    p.add_argument("flow", help="a flow's name, a number it answers or a flow file, e.g. main, 15771000 "
                   "or flows/main.yaml")
    p.add_argument("--keys", default=None,
                   help="keys at each wait, comma-separated, '-' for none: 2,1,1 or 0101234#; "
                        "without it, asks in the terminal")
    p.add_argument("--caller", default="01012345678", help="the caller's number")
    p.add_argument("--anonymous", action="store_true", help="the number is withheld")
    p.add_argument("--age", type=int, default=None, help="the caller's age from the registry")
    p.add_argument("--recent-calls", type=int, default=1,
                   help="calls within the repeat window, this one included (3: a repeat caller)")
    p.add_argument("--caller-lang", default=None, help="the caller's registered language")
    p.add_argument("--lang", default=None, help="start in this language (ko, en, zh, vi)")
    p.add_argument("--flows", nargs="+", default=["flows"])
    p.add_argument("--prompts", default="prompts")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("graph", help="draw a flow: Mermaid text (default), Graphviz DOT, or SVG")
    p.add_argument("flow", help="a flow's name, a number it answers or a flow file (flows/main.yaml)")
    p.add_argument("-o", "--output", default=None, help="write here (.mmd, .dot or .svg); default stdout")
    p.add_argument("--format", choices=["mermaid", "dot", "svg"], default=None)
    p.add_argument("--flows", nargs="+", default=["flows"])
    p.add_argument("--prompts", default="prompts")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("call", help="place a SIPp test call: ivr call 15771000 --from 01012345678 "
                       "--keys w6,1,w4,2 (or 'ivr call agent --port 5071': an agent's phone)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_call)

    p = sub.add_parser("schema", help="print the JSON Schema of flow files (for editors)")
    p.add_argument("--cases", action="store_true", help="the schema of scripted tests (flows/tests/*.yaml)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("test-flows", help="run the scripted cases in <flows>/tests/*.yaml")
    p.add_argument("flows", nargs="*", default=["flows"], help="flow folders (default: flows)")
    p.add_argument("--prompts", default="prompts")
    p.set_defaults(func=cmd_test_flows)

    p = sub.add_parser("calls", help="recorded calls")
    calls = p.add_subparsers(dest="calls_command", required=True)
    q = calls.add_parser("list", help="recent calls, newest first")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.add_argument("--limit", type=int, default=50)
    q.set_defaults(func=cmd_calls_list)
    q = calls.add_parser("show", help="one call, its chat and its queue events (offered, connected, left …)")
    q.add_argument("call_id", metavar="CALL_ID", help="the call id, as 'calls list --json' shows it")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_calls_show)

    p = sub.add_parser("audit", help="the supervisors' audit log (log-ins, refusals, actions), newest first")
    p.add_argument("--since", help="a date (the center's) or a date and time; default: today")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("callers", help="the caller registry (age, language) and call history")
    callers = p.add_subparsers(dest="callers_command", required=True)
    q = callers.add_parser("import", help="add or update callers from a CSV file "
                           "(columns phone,birth_date[,language,needs_assistance,name,wellness])")
    q.add_argument("file", help="CSV file, UTF-8, with a header line")
    q.set_defaults(func=cmd_callers_import)
    q = callers.add_parser("show", help="what the engine knows about a number")
    q.add_argument("number", help="any spelling: 010-1234-5678, +82 10 1234 5678 …")
    q.set_defaults(func=cmd_callers_show)

    p = sub.add_parser("agents", help="agents of the running engine: list | login | logout | pause | resume")
    agents = p.add_subparsers(dest="agents_command", required=True)
    q = agents.add_parser("list", help="every agent with state and reason")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_agents)
    for name, text in (("login", "the agent starts taking calls"),
                       ("logout", "the agent stops (refused while on a call)"),
                       ("pause", "no calls until resumed"), ("resume", "back from a pause")):
        q = agents.add_parser(name, help=text)
        q.add_argument("agent", help="agent id, e.g. agent1")
        q.add_argument("--json", action="store_true")
        if name == "pause":
            q.add_argument("--reason", default="paused", help="why (shown on the wallboard)")
        q.set_defaults(func=cmd_agents)

    p = sub.add_parser("callbacks", help="callback reservations: list | cancel")
    cbs = p.add_subparsers(dest="callbacks_command", required=True)
    q = cbs.add_parser("list", help="reservations, the most recently booked first")
    q.add_argument("--status", choices=["pending", "claimed", "done", "failed", "cancelled"],
                   help="only reservations in this state")
    q.add_argument("--limit", type=int, default=200)
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_callbacks_list)
    q = cbs.add_parser("cancel", help="cancel a pending reservation (it is not dialled)")
    q.add_argument("id", metavar="ID", help="the reservation id, as 'callbacks list' shows it")
    q.set_defaults(func=cmd_callbacks_cancel)

    p = sub.add_parser("wellness", help="wellness calls: the people campaigns ring and the home-visit list")
    wel = p.add_subparsers(dest="wellness_command", required=True)
    q = wel.add_parser("import", help="add or update the people of wellness campaigns from a CSV file "
                       "(phone,campaign,name,language,contact,address_ref,opt_out; bad rows are "
                       "reported by line, the good ones kept) or from the caller registry")
    q.add_argument("file", metavar="FILE.csv", nargs="?")
    q.add_argument("--from-registry", action="store_true",
                   help="instead of a file: every registry caller with a wellness campaign (the "
                   "wellness column of 'ivr callers import'), keeping the contact, address and "
                   "opt-out of people already on the list")
    q.add_argument("--campaign", help="the campaign of rows that name none (of every row when the "
                   "file has no campaign column)")
    q.add_argument("--international", action="store_true",
                   help="accept numbers of other countries (default: the center's, callers.region)")
    q.set_defaults(func=cmd_wellness_import)
    q = wel.add_parser("list", help="the people wellness campaigns ring, by number")
    q.add_argument("--campaign", help="only this campaign's")
    q.add_argument("--limit", type=int, default=1000)
    q.add_argument("--json", action="store_true", help="print JSON")
    q.add_argument("--full-numbers", action="store_true",
                   help="numbers as stored (default: masked, +821*****5678)")
    q.set_defaults(func=cmd_wellness_list)
    q = wel.add_parser("visits", help="the home-visit list, the longest waiting first; "
                       "--done ID --note TEXT marks a visit made")
    q.add_argument("--done", type=int, metavar="ID", help="the visit made (its id in the list)")
    q.add_argument("--note", help="what the visit found (with --done)")
    q.add_argument("--all", action="store_true", help="ended visits too (done or cleared)")
    q.add_argument("--campaign", help="only this campaign's")
    q.add_argument("--limit", type=int, default=200)
    q.add_argument("--json", action="store_true", help="print JSON")
    q.add_argument("--full-numbers", action="store_true",
                   help="numbers as stored (default: masked); a visitor needs them to phone ahead")
    q.set_defaults(func=cmd_wellness_visits)
    q = wel.add_parser("opt-out", help="a person is never rung again (kept, with their history); "
                       "--undo opts them back in")
    q.add_argument("number", metavar="NUMBER")
    q.add_argument("--undo", action="store_true", help="opt back in")
    q.set_defaults(func=cmd_wellness_opt_out)
    q = wel.add_parser("status", help="each campaign now: window, surge pause, calls in progress, "
                       "today's attempts, the visit list (the running engine's view when it answers)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_wellness_status)
    q = wel.add_parser("run-now", help="the running engine looks at the campaigns at once, or rings "
                       "NUMBER now (inside the window, not reached today, tries left)")
    q.add_argument("number", metavar="NUMBER", nargs="?", default=None)
    q.set_defaults(func=cmd_wellness_run_now)

    p = sub.add_parser("report", help="journey analytics of a flow over days: containment, funnel, "
                       "paths, repeat contacts, bypasses, waits (table, --csv, --charts)",
                       description="The journey report of one flow, from the store of the config.  "
                       "Dates are the center's (callers.timezone), --until included; the calls of "
                       "the day before and the day after are read too (repeat callers, callers who "
                       "called again).  See 'Journey analytics' in the README for what each figure means.")
    p.add_argument("--flow", required=True, help="the flow's name, e.g. main")
    p.add_argument("--since", required=True, type=_date, help="first day, e.g. 2026-11-01")
    p.add_argument("--until", type=_date, default=None, help="last day, included (default: --since)")
    p.add_argument("--top", type=int, default=10, help="how many of the most common paths (default 10)")
    p.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes reading the store at once, each a part of the days "
                        "(default: the CPUs, at most 4)")
    p.add_argument("--csv", metavar="DIR", default=None, help="also write one CSV per section here")
    p.add_argument("--charts", metavar="DIR", default=None,
                   help="also write the funnel and the wait by hour here, as SVG and PNG")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="recorded calls for other tools: export calls (CSV, Parquet)")
    export = p.add_subparsers(dest="export_command", required=True)
    q = export.add_parser(
        "calls", help="every call of a range: path, exits, keys, outcome, queue, wait, events",
        description="Every call that started in the range, one row each, streamed from the store "
        "of the config.  Dates are the center's (callers.timezone), --until included; a date "
        "and time is a moment (--until excluded).  See 'Exporting calls' in the README.")
    q.add_argument("--since", required=True,
                   help="first day (2026-11-01) or a moment (2026-11-01T09:00, 2026-11-01T00:00Z)")
    q.add_argument("--until", default=None,
                   help="last day, included (default: the day of --since), or a moment, excluded")
    q.add_argument("--flow", default=None, help="only the calls of this flow")
    q.add_argument("--format", choices=("csv", "parquet"), default=None,
                   help="default: parquet when --output ends in .parquet, else csv")
    q.add_argument("--output", "-o", default="-",
                   help="the file to write (written whole or not at all; default -: standard output)")
    q.add_argument("--full-numbers", action="store_true",
                   help="the callers' numbers as stored (default: masked, 010****5678)")
    q.set_defaults(func=cmd_export_calls)

    p = sub.add_parser("users", help="the wallboard's users (admin.users_file): add | list | remove")
    users = p.add_subparsers(dest="users_command", required=True)
    q = users.add_parser("add", help="add a user, or give one a new password or role "
                         "(asks the password twice)")
    q.add_argument("name", help="the user name to log in with")
    q.add_argument("--role", required=True, choices=["viewer", "supervisor", "interpreter"],
                   help="viewer: reads the wallboard; supervisor: also acts on agents and reservations; "
                        "interpreter: the video agent page (/video/agent/), the name being their agent id")
    q.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    q.set_defaults(func=cmd_users)
    q = users.add_parser("list", help="every user and role")
    q.set_defaults(func=cmd_users)
    q = users.add_parser("remove", help="remove a user")
    q.add_argument("name")
    q.set_defaults(func=cmd_users)

    p = sub.add_parser("sandbox", help="the sandbox Asterisk: up | down | status | logs | rx CMD")
    p.add_argument("action", choices=["up", "down", "status", "logs", "rx"])
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser("prompts", help="the prompt catalogue")
    pr = p.add_subparsers(dest="prompts_command", required=True)
    q = pr.add_parser("build", help="render missing or changed prompts to 8 kHz audio (espeak-ng + sox); "
                      "a recording in <prompts>/recordings/<lang>/<id>.wav is used instead")
    q.add_argument("--prompts", default="prompts")
    q.add_argument("--lang", action="append", help="only this language (repeatable)")
    q.set_defaults(func=cmd_prompts_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    config, rest = None, argv
    if rest[:1] in (["--config"], ["-c"]) and len(rest) > 1:
        config, rest = rest[1], rest[2:]
    elif rest[:1] and rest[0].startswith("--config="):
        config, rest = rest[0].partition("=")[2], rest[1:]
    if rest[:1] == ["call"]:              # its own options (ivr.sipp), passed through whole
        return cmd_call(argparse.Namespace(config=config, rest=rest[1:]))
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _Exit as exc:                 # the command has said why
        return exc.code
    except FlowError as exc:             # a command that let its flows' problems through
        for problem in exc.problems:
            print(str(problem), file=sys.stderr)
        return 1
    except IvrError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug: one line, exit 2; the traceback with IVR_DEBUG=1
        return _internal_error(args, exc)


DEBUG_ENV = "IVR_DEBUG"


def _internal_error(args: argparse.Namespace, exc: Exception) -> int:
    """Say in one line that the command failed by a bug of its own (not the user's files)."""
    import traceback

    whole = bool(os.environ.get(DEBUG_ENV)) or args.command == "run"   # an engine's crash: always whole
    if whole:
        traceback.print_exception(exc, file=sys.stderr)
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(Path(__file__).resolve().parent)]
    innermost = ours or frames
    last = innermost[-1] if innermost else None
    where = f" in {Path(last.filename).name}:{last.lineno}" if last is not None else ""
    detail = " ".join(str(exc).split())[:200]
    print(f"ivr: internal error in 'ivr {args.command}' (a bug, not a problem in your files): "
          f"{type(exc).__name__}{': ' + detail if detail else ''}{where}"
          + ("" if whole else f"; run it again with {DEBUG_ENV}=1 for the traceback"), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
