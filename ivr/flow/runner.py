"""The per-call runner: walks a ``Flow`` on a ``Call`` and writes the ``CallRecord``.

It speaks only to the ``Call`` port.  One runner per call, in that call's task; each step does
no I/O but the call's own, so thousands of calls share one event loop.

How a call ends (``record.outcome``):

* ``hangup`` node, or ``return`` from the top flow → ``completed`` (``retries_exhausted`` when the
  caller got there through a menu or gather that ran out of tries);
* a menu or gather without ``on_fail`` runs out of tries → ``retries_exhausted``;
* ``queue`` → what the queues record (``agent_connected``, ``abandoned`` …; ``queued`` when the
  engine runs no queues), ``transfer`` → ``transferred`` (detail: the target);
* the caller hangs up → ``caller_hangup``; the switch loses the call → ``lost``; anything
  unexpected → ``error`` (the caller hears ``system_error`` when possible and the call is hung up).

How each node was left (``record.exits``, one ``NodeExit`` per entry of ``record.nodes``): a
menu key or gathered digits accepted → ``key``; tries used up → ``timeout`` or ``invalid`` by
the last try (whether the flow goes on to ``on_fail`` or ends); a ``queue`` node (or a bypass)
→ ``queue`` once the call is handed over; ``transfer`` → ``transfer``; a ``hangup`` node or
``return`` from the top → ``end``; the caller hangs up in a node → ``hangup``, the switch loses
the call → ``lost``, an error → ``error``; any other node → ``next``.  The first exit noted for
a node stands; a node another part of the engine recorded before the walk (``resumed after an
engine restart``) is left by ``next`` when the walk goes on, and ``finish_exits`` gives every
node still without one the exit the call's outcome implies, so that ``len(record.exits) ==
len(record.nodes)`` once the call is over, however it ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import structlog

from ivr.call import Call, CallRecord, NodeExit, Outcome, Prompt, Queues
from ivr.errors import CallEnded, FlowRuntimeError
from ivr.flow.expr import ExprRuntimeError
from ivr.flow.model import (Branch, Bypass, CancelCallback, Flow, FlowSet, Gather, Goto, Hangup, Menu, Node, Play,
                            Queue, Return, Say, Set, Subflow, Transfer)
from ivr.flow.say import say
from ivr.prompts import Catalogue

__all__ = ["run_flow", "FlowRunner", "finish_exits", "left_node", "MAX_STEPS", "MAX_SUBFLOW_DEPTH",
           "QUEUE_HOLD_PROMPT", "ERROR_PROMPT"]

log = structlog.get_logger(__name__)

MAX_STEPS = 500
MAX_SUBFLOW_DEPTH = 8
QUEUE_HOLD_PROMPT = "queue_hold"
ERROR_PROMPT = "system_error"


def run_flow(flowset: FlowSet, flow: Flow, call: Call, record: CallRecord, *,
             catalogue: Catalogue, queues: Queues | None = None, language: str | None = None,
             variables: Mapping[str, Any] | None = None, max_steps: int = MAX_STEPS,
             on_variable: Callable[[str, Any], None] | None = None,
             checkpoint: Callable[[], None] | None = None) -> Coroutine[Any, Any, None]:
    """Run ``flow`` on ``call`` until it ends; the outcome is in ``record``.

    ``language`` overrides the flow's starting language (e.g. from the caller's history);
    ``variables`` adds facts the engine knows (``caller.age``, ``caller.repeat`` …).
    ``queues`` (the ``Queues`` port) takes the call into an agent queue; without it a
    ``queue`` node plays ``queue_hold`` and records ``queued``.  ``on_variable`` is told every
    variable the flow sets (the simulator shows them).  ``checkpoint`` is called where the call
    waits for the caller (a menu, a gather) and at the hand-off to a queue: the engine notes the
    record so far there.  Never raises, except ``CancelledError``.

    Returns the runner's coroutine to await (no frame of its own for the call's length).
    """
    runner = FlowRunner(flowset, call, record, catalogue=catalogue, queues=queues,
                        language=language, variables=variables, max_steps=max_steps,
                        on_variable=on_variable, checkpoint=checkpoint)
    return runner.run(flow)


def left_node(record: CallRecord, how: NodeExit) -> None:
    """Note how the call left the last node of ``record`` (nothing when it has its exit
    already: the first one stands); earlier nodes still without one were left by ``next``."""
    exits, visited = record.exits, len(record.nodes)
    if len(exits) < visited:
        exits.extend([NodeExit.NEXT] * (visited - 1 - len(exits)))
        exits.append(how)


# The exit a node still without one gets when the call is over, by the call's outcome.
_EXIT_BY_OUTCOME = {
    Outcome.CALLER_HANGUP: NodeExit.HANGUP, Outcome.LOST: NodeExit.LOST,
    Outcome.ERROR: NodeExit.ERROR, Outcome.TRANSFERRED: NodeExit.TRANSFER,
    Outcome.QUEUED: NodeExit.QUEUE, Outcome.AGENT_CONNECTED: NodeExit.QUEUE,
    Outcome.ABANDONED: NodeExit.QUEUE, Outcome.QUEUE_TIMEOUT: NodeExit.QUEUE,
    Outcome.CALLBACK_BOOKED: NodeExit.QUEUE,
}


def finish_exits(record: CallRecord) -> None:
    """A call is over: the last node without an exit gets the one its outcome implies (a call
    the queues took back after a restart: ``queue``; the caller gone: ``hangup`` …; ``end``
    otherwise), earlier ones ``next``."""
    if record.outcome is None:
        how = NodeExit.END
    else:
        how = _EXIT_BY_OUTCOME.get(Outcome(record.outcome), NodeExit.END)
    left_node(record, how)


class _Vars(dict[str, Any]):
    """The call's variables; ``queue.<name>.…`` are read live from the queue service."""

    def __init__(self, resolve: Any = None) -> None:
        super().__init__()
        self._resolve = resolve

    def __missing__(self, key: str) -> Any:
        if self._resolve is not None and key.startswith("queue."):
            return self._resolve(key)
        raise KeyError(key)


class _End(Exception):
    """Internal: the flow reached an ending node."""


class FlowRunner:
    __slots__ = ("flowset", "call", "record", "catalogue", "queues", "on_variable", "checkpoint", "vars", "vars_given",
                 "max_steps", "steps", "exhausted", "stack", "flow", "lang")

    def __init__(self, flowset: FlowSet, call: Call, record: CallRecord, *, catalogue: Catalogue,
                 queues: Queues | None = None, language: str | None = None,
                 variables: Mapping[str, Any] | None = None, max_steps: int = MAX_STEPS,
                 on_variable: Callable[[str, Any], None] | None = None,
                 checkpoint: Callable[[], None] | None = None) -> None:
        self.flowset = flowset
        self.call = call
        self.record = record
        self.catalogue = catalogue
        self.queues = queues
        self.on_variable = on_variable
        self.checkpoint = checkpoint
        self.vars: dict[str, Any] = {}
        self.vars_given: dict[str, Any] = dict(variables or {})
        self.max_steps = max_steps
        self.steps = 0
        self.exhausted = False            # a menu/gather ran out of tries; cleared by good input
        self.stack: list[tuple[Flow, str]] = []
        self.lang = language or ""
        if variables:
            self.vars.update(variables)

    # -- the walk ------------------------------------------------------------------------------
    async def run(self, flow: Flow) -> None:
        call, record = self.call, self.record
        self.flow = flow
        lang = self.lang or flow.language
        if lang not in self.catalogue.languages:
            lang = flow.language
        known = self.vars = _Vars(self.queues.queue_variable if self.queues is not None else None)
        known.update(flow.vars)
        known["caller.number"] = call.caller_number
        known.update(self.vars_given)
        known["lang"], known["call.dialled"], known["call.id"] = lang, call.dialled, call.id
        self.vars_given = {}                   # taken in: not kept beside them for the call
        self.lang = lang
        record.flow = record.flow or flow.name
        record.language = lang
        # Bound and reset by hand: ``bound_contextvars`` would keep a generator for the call.
        tokens = structlog.contextvars.bind_contextvars(call_id=call.id, flow=flow.name, node=None)
        try:
            await call.answer()
            rule = self._bypass_rule(flow)
            if rule is not None:
                await self._bypass(rule)
            else:
                await self._walk(flow)
        except CallEnded as exc:
            if exc.reason == "lost":
                left_node(record, NodeExit.LOST)
                record.end(Outcome.LOST, f"the switch lost the call ({exc})")
            else:
                left_node(record, NodeExit.HANGUP)
                record.end(Outcome.CALLER_HANGUP)
            log.info("flow.call_ended", reason=exc.reason,
                     node=record.nodes[-1] if record.nodes else None)
        except asyncio.CancelledError:
            raise
        except FlowRuntimeError as exc:
            log.error("flow.runtime_error", error=str(exc))
            left_node(record, NodeExit.ERROR)
            record.end(Outcome.ERROR, str(exc))
            await self._apologise()
        except Exception as exc:  # the call must end cleanly whatever happened
            log.exception("flow.crashed", error=repr(exc))
            left_node(record, NodeExit.ERROR)
            record.end(Outcome.ERROR, f"{type(exc).__name__}: {exc}")
            await self._apologise()
        finally:
            record.language = self.lang
            structlog.contextvars.reset_contextvars(**tokens)

    async def _walk(self, flow: Flow) -> None:
        name = flow.entry
        nodes = flow.nodes
        bind = structlog.contextvars.bind_contextvars
        while True:
            self.steps += 1
            if self.steps > self.max_steps:
                raise FlowRuntimeError(f"flow '{self.flow.name}' node '{name}': more than {self.max_steps} "
                                       "steps in one call; is the flow going round in circles?")
            node = nodes[name]
            self._visit(f"{self.flow.name}/{name}" if self.stack else name)
            bind(node=name)
            try:
                target = await self._step(node)
            except ExprRuntimeError as exc:
                raise FlowRuntimeError(f"flow '{self.flow.name}' node '{name}': {exc}") from exc
            # A step that ended the call or took a key noted its own exit; the rest went on.
            left_node(self.record, NodeExit.END if target is None and not self.stack else NodeExit.NEXT)
            if target is None:
                # return (or end of a subflow): back to the caller flow's next node
                if not self.stack:
                    self.record.end(Outcome.RETRIES_EXHAUSTED if self.exhausted else Outcome.COMPLETED)
                    await self.call.hangup()
                    return
                self.flow, name = self.stack.pop()
                nodes = self.flow.nodes
                continue
            if isinstance(target, Flow):
                self.flow = target
                nodes = target.nodes
                name = target.entry
                continue
            if target is _FINISHED:
                return
            name = target

    async def _step(self, node: Node) -> Any:
        """Do one node; return the next node name, a ``Flow`` to enter, None to return, or
        ``_FINISHED`` when the call has ended."""
        match node:
            case Menu():
                return await self._menu(node)
            case Play():
                await self._play(node.prompts, barge_in=node.barge_in)
                return node.next
            case Gather():
                return await self._gather(node)
            case Say():
                return await self._say(node)
            case Set():
                for var, expr in node.assignments:
                    self._assign(var, expr.evaluate(self.vars))
                return node.next
            case Branch():
                for expr, target in node.cases:
                    if expr.evaluate(self.vars):
                        return target
                return node.otherwise
            case Goto():
                return node.target
            case Subflow():
                return self._enter_subflow(node)
            case Return():
                return None
            case Queue():
                await self._handoff(node.queue, node.priority, node.reason, node.prompts, node.callback)
                return _FINISHED
            case CancelCallback():
                return await self._cancel_callback(node)
            case Transfer():
                await self._transfer(node)
                return _FINISHED
            case Hangup():
                await self._play(node.prompts)
                left_node(self.record, NodeExit.END)
                self.record.end(Outcome.RETRIES_EXHAUSTED if self.exhausted else Outcome.COMPLETED)
                await self.call.hangup()
                return _FINISHED
        raise FlowRuntimeError(f"node '{node.name}': unknown node type {type(node).__name__}")  # pragma: no cover

    # -- helpers -------------------------------------------------------------------------------
    def _visit(self, node: str) -> None:
        left_node(self.record, NodeExit.NEXT)      # a node noted before the walk: gone on from
        self.record.visit(node)

    def _media(self, prompts: Sequence[str]) -> list[Prompt]:
        """``welcome`` plays in the call's language; ``welcome@en`` always in English."""
        media = []
        for prompt in prompts:
            prompt_id, _, lang = prompt.partition("@")
            media.append(Prompt(prompt_id, lang or self.lang))
        return media

    async def _play(self, prompts: Sequence[str], *, barge_in: bool = False) -> None:
        if prompts:
            await self.call.play(self._media(prompts), barge_in=barge_in)

    def _assign(self, var: str, value: Any) -> None:
        if var == "lang":
            if value not in self.catalogue.languages:
                raise FlowRuntimeError(f"flow '{self.flow.name}': language {value!r} is not in the prompt "
                                       f"catalogue ({', '.join(self.catalogue.languages)})")
            self.lang = value
            self.record.language = value
        self.vars[var] = value
        if self.on_variable is not None:      # the simulator shows every change
            self.on_variable(var, value)

    def _enter_subflow(self, node: Subflow) -> Flow:
        target = self.flowset.get(node.flow)
        if target is None:
            raise FlowRuntimeError(f"flow '{self.flow.name}' node '{node.name}': subflow '{node.flow}' "
                                   "is not loaded")
        if len(self.stack) >= MAX_SUBFLOW_DEPTH:
            raise FlowRuntimeError(f"flow '{self.flow.name}' node '{node.name}': subflows nested more "
                                   f"than {MAX_SUBFLOW_DEPTH} deep")
        self.stack.append((self.flow, node.next))
        for var, value in target.vars.items():
            self.vars.setdefault(var, value)
        return target

    async def _menu(self, node: Menu) -> str | _Finished:
        call, record = self.call, self.record
        if self.checkpoint is not None:
            self.checkpoint()
        tries = 0
        prompts = node.prompts
        while True:
            await self._play(prompts, barge_in=node.barge_in)
            got = await call.gather(max_digits=1, first_timeout=node.timeout, inter_timeout=node.timeout,
                                    terminator="")
            key = got.digits
            if key:
                record.pressed(key)
                target = node.options.get(key)
                if target is not None:
                    self.exhausted = False
                    left_node(record, NodeExit.KEY)
                    return target
                retry_prompts = node.invalid
            else:
                retry_prompts = node.no_input
            tries += 1
            if tries > node.retries:
                return await self._exhausted(node, invalid=bool(key))
            call.flush_digits()
            await self._play(retry_prompts, barge_in=node.barge_in)

    async def _gather(self, node: Gather) -> str | _Finished:
        call, record = self.call, self.record
        if self.checkpoint is not None:
            self.checkpoint()
        tries = 0
        while True:
            await self._play(node.prompts, barge_in=node.barge_in)
            # With a terminator, input ends at the terminator (or the inter-digit timeout): ask for
            # one key more than allowed so that "850315#" ends on '#' and leaves no stray '#' behind.
            got = await call.gather(max_digits=node.max_digits + (1 if node.terminator else 0),
                                    first_timeout=node.timeout, inter_timeout=node.inter_digit_timeout,
                                    terminator=node.terminator)
            digits = got.digits
            if digits:
                record.pressed("*" * len(digits) if node.private else digits)
                if self._acceptable(node, digits):
                    self.exhausted = False
                    left_node(record, NodeExit.KEY)
                    return node.next
                retry_prompts = node.invalid
            else:
                retry_prompts = node.no_input
            tries += 1
            if tries > node.retries:
                return await self._exhausted(node, invalid=bool(digits))
            call.flush_digits()
            await self._play(retry_prompts, barge_in=node.barge_in)

    def _acceptable(self, node: Gather, digits: str) -> bool:
        if not node.min_digits <= len(digits) <= node.max_digits:
            return False
        if node.pattern is not None and not node.pattern.fullmatch(digits):
            return False
        previous = self.vars.get(node.into, _MISSING)
        self.vars[node.into] = digits
        if node.valid is not None and not node.valid.evaluate(self.vars):
            if previous is _MISSING:
                del self.vars[node.into]
            else:
                self.vars[node.into] = previous
            return False
        return True

    async def _exhausted(self, node: Menu | Gather, *, invalid: bool) -> str | _Finished:
        """Tries used up; ``invalid``: the last try was a wrong key (else no key at all)."""
        self.exhausted = True
        left_node(self.record, NodeExit.INVALID if invalid else NodeExit.TIMEOUT)
        log.info("flow.retries_exhausted", node=node.name)
        if node.on_fail is not None:
            return node.on_fail
        self.record.end(Outcome.RETRIES_EXHAUSTED, node.name)
        await self.call.hangup()
        return _FINISHED

    async def _say(self, node: Say) -> str:
        value = node.value.evaluate(self.vars)
        try:
            ids = say(node.kind, value, self.lang)
        except ValueError as exc:
            raise FlowRuntimeError(f"flow '{self.flow.name}' node '{node.name}': {exc}") from exc
        await self._play([*node.before, *ids, *node.after], barge_in=node.barge_in)
        return node.next

    def _bypass_rule(self, flow: Flow) -> Bypass | None:
        """The first bypass rule whose condition holds for this caller, if any."""
        for rule in flow.bypass:
            try:
                if rule.condition.evaluate(self.vars):
                    return rule
            except ExprRuntimeError as exc:
                # A rule that cannot be decided does not send anyone past the menu.
                log.warning("flow.bypass_undecided", rule=rule.source, error=str(exc))
        return None

    async def _bypass(self, rule: Bypass) -> None:
        self._visit("bypass")
        log.info("flow.bypass", reason=rule.reason, queue=rule.queue, priority=rule.priority)
        await self._handoff(rule.queue, rule.priority, f"bypass: {rule.reason}", rule.prompts)

    async def _cancel_callback(self, node: CancelCallback) -> str:
        number = self.vars.get("caller.number")
        if self.queues is None or not number or not str(number).startswith("+"):
            return node.none
        count = await self.queues.cancel_callbacks(str(number), node.queue)
        log.info("flow.callback_cancelled", count=count, queue=node.queue)
        return node.next if count else node.none

    async def _handoff(self, queue: str, priority: str | None, reason: str | None,
                       prompts: Sequence[str], callback: Any = None) -> None:
        record = self.record
        if priority is not None:
            record.priority = priority
        if reason is not None:
            record.reason = reason
        await self._play(prompts)
        if self.checkpoint is not None:
            self.checkpoint()
        if self.queues is not None:
            left_node(record, NodeExit.QUEUE)      # handed over: the queues say what came of it
            await self.queues.queue_handoff(self.call, record, queue, record.priority, record.reason,
                                            language=self.lang, callback=callback)
            record.end(Outcome.QUEUED, queue)
            return
        log.info("flow.queue", queue=queue, priority=record.priority, reason=record.reason)
        if self.catalogue.has(QUEUE_HOLD_PROMPT):
            await self._play((QUEUE_HOLD_PROMPT,))
        left_node(record, NodeExit.QUEUE)
        record.end(Outcome.QUEUED, queue)
        await self.call.hangup()

    async def _transfer(self, node: Transfer) -> None:
        await self._play(node.prompts)
        target = f"{node.context},{node.extension},{node.priority}"
        log.info("flow.transfer", target=target)
        await self.call.transfer(node.context, node.extension, node.priority)
        left_node(self.record, NodeExit.TRANSFER)
        self.record.end(Outcome.TRANSFERRED, target)

    async def _apologise(self) -> None:
        """After an error: say sorry when the caller is still there, then hang up."""
        call = self.call
        try:
            if not call.hung_up:
                if self.catalogue.has(ERROR_PROMPT):
                    await call.play(self._media((ERROR_PROMPT,)))
                await call.hangup()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # already failing: never raise from here
            log.info("flow.apology_failed", error=repr(exc))


class _Finished:
    """What a step returns when the call has ended."""


_FINISHED = _Finished()
_MISSING = object()
