"""Flows without a phone: ``ivr simulate`` (a call in the terminal) and ``ivr test-flows``
(an author's scripted cases).  Both run the real flow runner through the ``Call`` port.

Cases live beside the flows, in ``<flows>/tests/*.yaml`` (the flow loader does not read
sub-folders)::

    flow: main                          # the flow the cases call
    cases:
      - name: certificates, then goodbye
        keys: ["2", "1", "1"]           # what the caller presses at each wait; "-" is no key
        expect:
          path: [welcome, main_menu, certificates_menu, certificates_issue_info, after_info, goodbye]
          outcome: completed
      - name: a caller of 70 goes to an agent without the menu
        caller: {age: 70}
        expect: {path: [bypass], outcome: queued, reason: "bypass: elderly", heard: [priority_agent]}

``caller`` may give ``number``, ``age``, ``recent_calls`` (this call included), ``language``,
``needs_assistance``, ``anonymous``.  ``expect`` may give ``path`` (exactly the nodes
visited), ``outcome``, ``detail``, ``reason``, ``priority``, ``language`` and ``heard`` (these
prompt ids, in this order, among those played).
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ivr.call import CallRecord, Gathered, Prompt
from ivr.errors import FlowError
from ivr.flow.loader import FlowSet, load_flows
from ivr.flow.runner import run_flow
from ivr.flow.say import SAY_PROMPT_IDS
from ivr.flow.yamlsafe import YList, YMap, load_yaml_file
from ivr.prompts import Catalogue
from ivr.routing.identify import CallerFacts
from ivr.routing.numbers import normalize
from ivr.testing.scripted_call import ScriptedCall, press, silence

__all__ = ["SimulatedCall", "caller_facts", "simulate", "run_cases", "CaseResult"]


def caller_facts(number: str = "01012345678", *, age: int | None = None, recent_calls: int = 1,
                 repeat_calls: int = 3, language: str | None = None, needs_assistance: bool = False,
                 anonymous: bool = False) -> dict[str, Any]:
    """The ``caller.*`` variables of a simulated caller."""
    parsed = normalize("" if anonymous else number)
    known = age is not None or language is not None or needs_assistance
    return CallerFacts(number=parsed.e164, anonymous=parsed.anonymous or anonymous,
                       known=known and parsed.ok, age=age if parsed.ok else None,
                       recent_calls=recent_calls if parsed.ok else None,
                       is_repeat=parsed.ok and recent_calls >= repeat_calls,
                       language=language, needs_assistance=needs_assistance).variables()


class Output(Protocol):
    """Where a simulated call is printed: a terminal, a file, or a sink collecting the lines."""

    def write(self, text: str, /) -> int: ...


def _script(keys: Sequence[str]) -> list:
    return [silence() if k in ("-", "") else press(k) for k in keys]


class SimulatedCall(ScriptedCall):
    """A ``ScriptedCall`` that prints what the caller hears and does; when the scripted keys
    run out and ``ask`` is given, it asks for the next keys (empty: no key, the wait times out)."""

    def __init__(self, keys: Sequence[str], catalogue: Catalogue, *, out: Output,
                 ask: Callable[[str], str] | None = None, **kw: Any) -> None:
        super().__init__(*_script(keys), **kw)
        self.catalogue = catalogue
        self.out = out
        self.ask = ask

    def _say(self, line: str) -> None:
        print(line, file=self.out)

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> None:
        words: list[str] = []           # the words of a said value (digits, number, time …) on one line
        lang = ""
        for item in prompts:
            lang, prompt = item.language, item.id
            text = self.catalogue.text(prompt, lang) if self.catalogue.has(prompt) else f"({prompt})"
            if prompt in SAY_PROMPT_IDS:
                words.append(text)
                continue
            if words:
                self._say(f"  ▶ (said) [{lang}]: {' '.join(words)}")
                words = []
            self._say(f"  ▶ {prompt} [{lang}]: {text}")
        if words:
            self._say(f"  ▶ (said) [{lang}]: {' '.join(words)}")
        await super().play(prompts, barge_in=barge_in)

    async def gather(self, *, max_digits: int, first_timeout: float, inter_timeout: float,
                     terminator: str = "#") -> Gathered:
        if not self.script and not self.buffer and self.ask is not None:
            keys = self.ask(f"  ⌨ keys (up to {max_digits}, Enter: none, waits {first_timeout:g} s)> ").strip()
            self.script.append(press(keys) if keys else silence())
        got = await super().gather(max_digits=max_digits, first_timeout=first_timeout,
                                   inter_timeout=inter_timeout, terminator=terminator)
        if got.digits:
            self._say(f"  ⌨ pressed {got.digits} ({got.ended_by})")
        else:
            self._say(f"  … no key within {first_timeout:g} s")
        return got

    async def hangup(self) -> None:
        if not self.hung_up:
            self._say("  ☎ the IVR hangs up")
        await super().hangup()

    async def transfer(self, context: str, extension: str, priority: int = 1) -> None:
        self._say(f"  ☎ transferred to {context},{extension},{priority}")
        await super().transfer(context, extension, priority)


class _Queues:
    """Stands in for the agent queues (the ``Queues`` port): says where the call would go and
    ends it there."""

    def __init__(self, out: Output | None) -> None:
        self.out = out

    async def queue_handoff(self, call, record, queue, priority, reason, language=None, *,
                            callback=None, arrived_at=None):
        if self.out is not None:
            offer = f", callback offered above {callback.above} s / after {callback.after} s" if callback else ""
            print(f"  → queue {queue} (priority {priority or 'normal'}, reason {reason or '-'}{offer})",
                  file=self.out)
        record.end("queued", queue)

    def queue_variable(self, name: str) -> Any:
        return None

    def on_variable(self, name: str, value: Any) -> None:
        if self.out is not None:
            print(f"  ✎ {name} = {value!r}", file=self.out)

    async def cancel_callbacks(self, number: str, queue: str | None = None) -> int:
        return 0


async def simulate(flowset: FlowSet, catalogue: Catalogue, target: str, *, keys: Sequence[str] = (),
                   facts: dict[str, Any] | None = None, language: str | None = None,
                   out: Output | None = None, ask: Callable[[str], str] | None = None,
                   heard: list[str] | None = None) -> CallRecord:
    """Run the flow named ``target`` (or answering the number ``target``) in the terminal;
    ``heard`` (when given) receives the prompt ids played, in order."""
    out = sys.stdout if out is None else out
    flow = flowset.get(target) if target in flowset.flow_names() else flowset.for_number(target)
    if flow is None:
        raise LookupError(f"no flow is named or answers '{target}' "
                          f"(flows: {', '.join(sorted(flowset.flow_names()))})")
    facts = facts or caller_facts()
    number = facts.get("caller.number") or ""
    call = SimulatedCall(keys, catalogue, out=out, ask=ask, caller_number=number,
                         dialled=next(iter(flow.numbers), target), call_id="simulated")
    record = CallRecord(call.id, number, call.dialled)
    who = f"☎ {flow.name} calls {number}" if flow.outbound and number else \
        f"☎ call to {flow.name} from {number or 'a withheld number'}"
    print(who
          + (f", age {facts['caller.age']}" if facts.get("caller.age") is not None else "")
          + (", repeat caller" if facts.get("caller.is_repeat") else ""), file=out)
    queues = _Queues(out)
    await run_flow(flowset, flow, call, record, catalogue=catalogue, queues=queues,
                   language=language or facts.get("caller.language"), variables=facts,
                   on_variable=queues.on_variable)
    print(f"■ {record.outcome}" + (f": {record.detail}" if record.detail else "")
          + (f"  ({record.reason})" if record.reason else ""), file=out)
    print(f"  path: {' > '.join(record.nodes)}   keys: {' '.join(record.digits) or '-'}", file=out)
    if heard is not None:
        heard.extend(call.prompts)
    return record


# -- scripted cases ------------------------------------------------------------------------------

@dataclasses.dataclass
class CaseResult:
    file: Path
    name: str
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def _subsequence(wanted: Sequence[str], got: Sequence[str]) -> bool:
    it = iter(got)
    return all(any(w == g for g in it) for w in wanted)


async def run_cases(flows_dir: Path, catalogue: Catalogue, flowset: FlowSet | None = None) -> list[CaseResult]:
    """Every case of ``<flows_dir>/tests/*.yaml``; a malformed case is a failed case."""
    flowset = flowset or load_flows([flows_dir], catalogue)
    results: list[CaseResult] = []
    for file in sorted((flows_dir / "tests").glob("*.y*ml")):
        try:
            doc = load_yaml_file(file, "the test file")
        except FlowError as exc:
            results.append(CaseResult(file, "(file)", [str(p) for p in exc.problems]))
            continue
        if not isinstance(doc, YMap) or not isinstance(doc.get("cases"), YList):
            results.append(CaseResult(file, "(file)", ["needs 'flow:' and a list of 'cases:'"]))
            continue
        target = str(doc.get("flow", ""))
        bad = _unknown_keys(file, doc, FILE_KEYS, "a case file")
        if bad:
            results.append(CaseResult(file, "(file)", bad))
            continue
        for i, case in enumerate(doc["cases"], 1):
            name = str(case.get("name", f"case {i}")) if isinstance(case, YMap) else f"case {i}"
            results.append(await _run_case(file, name, case, target, flowset, catalogue))
    return results


# What a case file may say; the same tables give editors their schema (``ivr schema --cases``).
FILE_KEYS = ("flow", "cases")
CASE_KEYS = ("name", "flow", "caller", "keys", "expect")
CALLER_KEYS = ("number", "age", "recent_calls", "language", "needs_assistance", "anonymous")
EXPECT_KEYS = ("path", "outcome", "detail", "reason", "priority", "language", "heard")


def _unknown_keys(where_file: Path, raw: YMap, allowed: Sequence[str], what: str) -> list[str]:
    """A misspelt key would make a check that cannot fail: it is an error, with a suggestion."""
    problems = []
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{where_file}:{raw.key_line(key)}: unknown key '{key}' in {what}{hint}; "
                            f"{what} has {', '.join(allowed)}")
    return problems


async def _run_case(file: Path, name: str, case: Any, target: str, flowset: FlowSet,
                    catalogue: Catalogue) -> CaseResult:
    where = f"{file}:{getattr(case, 'line', '?')}"
    if not isinstance(case, YMap) or not isinstance(case.get("expect"), YMap):
        return CaseResult(file, name, [f"{where}: a case needs 'expect:'"])
    who = case.get("caller") or YMap(case.line)
    if not isinstance(who, YMap):
        return CaseResult(file, name, [f"{where}: 'caller' must be a mapping (age, language …)"])
    bad = (_unknown_keys(file, case, CASE_KEYS, "a case") + _unknown_keys(file, who, CALLER_KEYS, "'caller'")
           + _unknown_keys(file, case["expect"], EXPECT_KEYS, "'expect'"))
    if bad:
        return CaseResult(file, name, bad)
    try:
        facts = caller_facts(str(who.get("number", "01012345678")), age=who.get("age"),
                             recent_calls=int(who.get("recent_calls", 1)), language=who.get("language"),
                             needs_assistance=bool(who.get("needs_assistance", False)),
                             anonymous=bool(who.get("anonymous", False)))
    except (TypeError, ValueError) as exc:
        return CaseResult(file, name, [f"{where}: caller: {exc}"])
    keys = [str(k) for k in (case.get("keys") or [])]
    sink = _Null()
    heard: list[str] = []
    try:
        record = await simulate(flowset, catalogue, str(case.get("flow", target)), keys=keys,
                                facts=facts, out=sink, heard=heard)
    except LookupError as exc:
        return CaseResult(file, name, [f"{where}: {exc}"])
    expect = case["expect"]
    problems: list[str] = []
    checks = {"outcome": str(record.outcome) if record.outcome else None, "detail": record.detail,
              "reason": record.reason, "priority": record.priority, "language": record.language}
    for key, got in checks.items():
        if key in expect and expect[key] != got:
            problems.append(f"{where}: {key}: expected {expect[key]!r}, got {got!r}")
    if "path" in expect and list(expect["path"]) != record.nodes:
        problems.append(f"{where}: path: expected {' > '.join(expect['path'])}, got {' > '.join(record.nodes)}")
    if "heard" in expect and not _subsequence([str(p) for p in expect["heard"]], heard):
        problems.append(f"{where}: heard: expected {list(expect['heard'])} in order, heard {heard}")
    return CaseResult(file, name, problems)


class _Null:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.extend(t for t in text.split("\n") if t)
        return len(text)

    def flush(self) -> None:
        pass
