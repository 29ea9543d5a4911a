"""The ``ivr`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ivr.errors import ConfigError, FlowError, IvrError, StoreError


def _config(args: argparse.Namespace):
    from ivr.config import load_config

    return load_config(args.config)


def cmd_run(args: argparse.Namespace) -> int:
    from ivr.app import serve
    from ivr.logs import configure_logging

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log.format, config.log.level)
    try:
        asyncio.run(serve(config))
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


def cmd_calls_list(args: argparse.Namespace) -> int:
    from ivr.logs import mask_number
    from ivr.store import open_store

    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2

    async def fetch():
        async with open_store(config.store_url) as store:
            return await store.recent_calls(args.limit)

    try:
        records = asyncio.run(fetch())
    except IvrError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out = []
        for r in records:
            out.append({
                "call_id": r.call_id, "started_at": r.started_at.isoformat(),
                "ended_at": r.ended_at.isoformat() if r.ended_at else None,
                "caller": mask_number(r.caller) if r.caller else "anonymous",
                "dialled": r.dialled, "flow": r.flow, "flow_version": r.flow_version,
                "language": r.language, "nodes": r.nodes, "digits": r.digits,
                "outcome": r.outcome, "detail": r.detail, "priority": r.priority, "reason": r.reason,
            })
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    if not records:
        print("no calls recorded yet")
        return 0
    print(f"{'time':19}  {'caller':15}  {'dialled':10}  {'flow':12}  {'outcome':18}  path / keys")
    for r in records:
        caller = mask_number(r.caller) if r.caller else "anonymous"
        outcome = r.outcome or "in progress"
        if r.detail:
            outcome = f"{outcome}: {r.detail}"
        print(f"{_fmt_time(r.started_at):19}  {caller:15}  {r.dialled:10}  {(r.flow or '-'):12}  "
              f"{outcome:18}  {' > '.join(r.nodes) or '-'}  [{' '.join(r.digits)}]")
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from ivr.sandbox import run_sandbox

    return run_sandbox(args.action, *args.rest)


def cmd_prompts_build(args: argparse.Namespace) -> int:
    from ivr.prompts import build, load_catalogue

    root = Path(args.prompts)
    catalogue = load_catalogue(root / "catalog.yaml")
    langs = args.lang or list(catalogue.languages)
    result = build(catalogue, root / "audio", langs)
    print(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="IVR/ARS voice-flow engine for Asterisk (ARI)")
    parser.add_argument("--config", "-c", default=None,
                        help="config file (default: $IVR_CONFIG or ./ivr.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the engine (connects to Asterisk over ARI)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check flow files; exit 1 with file:line: message on errors")
    p.add_argument("paths", nargs="*", help="flow files or folders (default: flows/)")
    p.add_argument("--prompts", default=None, help="prompt catalogue folder (default: prompts/)")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("calls", help="recorded calls")
    calls = p.add_subparsers(dest="calls_command", required=True)
    q = calls.add_parser("list", help="recent calls, newest first")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.add_argument("--limit", type=int, default=50)
    q.set_defaults(func=cmd_calls_list)

    p = sub.add_parser("sandbox", help="the sandbox Asterisk: up | down | status | logs | rx CMD")
    p.add_argument("action", choices=["up", "down", "status", "logs", "rx"])
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser("prompts", help="the prompt catalogue")
    pr = p.add_subparsers(dest="prompts_command", required=True)
    q = pr.add_parser("build", help="render missing or changed prompts to 8 kHz audio (espeak-ng + sox)")
    q.add_argument("--prompts", default="prompts")
    q.add_argument("--lang", action="append", help="only this language (repeatable)")
    q.set_defaults(func=cmd_prompts_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
