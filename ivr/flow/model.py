"""The flow model: frozen dataclasses read from flow files.  The runner knows only these.

A ``Flow`` is a set of named ``Node``s and an entry node.  Each node type is its own class;
``targets()`` lists the nodes it can go to (with a label for messages), which is all the loader's
graph checks need.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from ivr.errors import FlowProblem
from ivr.flow.expr import Expr
from ivr.routing.identify import RepeatPolicy   # one type: what a flow says, what identify counts

__all__ = ["RepeatPolicy", "Bypass", "Node", "Play", "Menu", "Gather", "Say", "Set", "Branch", "Goto", "Subflow",
           "Return", "Queue", "Transfer", "Hangup", "CancelCallback", "Flow", "FlowSet", "NODE_TYPES"]

Prompts = tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    name: str
    line: int

    # Ends the call (or the subflow) by itself.
    ends: ClassVar[bool] = False
    # Runs without playing anything or waiting for the caller: a cycle of these would spin.
    instant: ClassVar[bool] = False

    def targets(self) -> tuple[tuple[str, str], ...]:
        """``(label, node name)`` for every node this one can go to."""
        return ()


@dataclasses.dataclass(frozen=True, slots=True)
class Play(Node):
    prompts: Prompts
    barge_in: bool
    next: str

    def targets(self) -> tuple[tuple[str, str], ...]:
        return (("next", self.next),)


@dataclasses.dataclass(frozen=True, slots=True)
class Menu(Node):
    prompts: Prompts
    options: Mapping[str, str]        # key pressed → node
    timeout: float                    # seconds to wait for a key after the prompt
    retries: int                      # tries after the first one
    invalid: Prompts                  # played after a key that is not an option
    no_input: Prompts                 # played after a timeout
    on_fail: str | None               # where to go when the tries run out (None: end the call)
    barge_in: bool

    def targets(self) -> tuple[tuple[str, str], ...]:
        found = tuple((f"option '{key}'", node) for key, node in self.options.items())
        return found + ((("on_fail", self.on_fail),) if self.on_fail else ())


@dataclasses.dataclass(frozen=True, slots=True)
class Gather(Node):
    prompts: Prompts
    into: str                         # variable that receives the digits
    min_digits: int
    max_digits: int
    terminator: str                   # '' for none
    timeout: float                    # for the first digit
    inter_digit_timeout: float
    valid: Expr | None
    pattern: re.Pattern[str] | None
    retries: int
    invalid: Prompts
    no_input: Prompts
    next: str
    on_fail: str | None
    barge_in: bool
    private: bool                     # keep the digits out of the call record

    def targets(self) -> tuple[tuple[str, str], ...]:
        return (("next", self.next),) + ((("on_fail", self.on_fail),) if self.on_fail else ())


@dataclasses.dataclass(frozen=True, slots=True)
class Say(Node):
    kind: str                         # digits | number | date
    value: Expr
    before: Prompts
    after: Prompts
    barge_in: bool
    next: str

    def targets(self) -> tuple[tuple[str, str], ...]:
        return (("next", self.next),)


@dataclasses.dataclass(frozen=True, slots=True)
class Set(Node):
    assignments: tuple[tuple[str, Expr], ...]
    next: str

    instant: ClassVar[bool] = True

    def targets(self) -> tuple[tuple[str, str], ...]:
        return (("next", self.next),)


@dataclasses.dataclass(frozen=True, slots=True)
class Branch(Node):
    cases: tuple[tuple[Expr, str], ...]   # first true condition wins
    otherwise: str

    instant: ClassVar[bool] = True

    def targets(self) -> tuple[tuple[str, str], ...]:
        found = tuple((f"condition {i} (`{expr.source}`)", node)
                      for i, (expr, node) in enumerate(self.cases, 1))
        return found + (("else", self.otherwise),)


@dataclasses.dataclass(frozen=True, slots=True)
class Goto(Node):
    target: str

    instant: ClassVar[bool] = True

    def targets(self) -> tuple[tuple[str, str], ...]:
        return (("goto", self.target),)


@dataclasses.dataclass(frozen=True, slots=True)
class Subflow(Node):
    flow: str
    next: str

    def targets(self) -> tuple[tuple[str, str], ...]:
        return (("next", self.next),)


@dataclasses.dataclass(frozen=True, slots=True)
class Return(Node):
    ends: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, slots=True)
class CallbackOffer:
    """Offer a waiting caller to be called back instead: when the expected wait is above
    ``above`` seconds and/or once the caller has waited ``after`` seconds (None: that condition
    is not used); again every ``repeat`` seconds (0: once).  The caller accepts with ``key``."""

    above: float | None = None
    after: float | None = None
    repeat: float = 0.0
    key: str = "1"


@dataclasses.dataclass(frozen=True, slots=True)
class Queue(Node):
    queue: str
    priority: str | None
    reason: str | None
    prompts: Prompts                  # played before the hand-off
    callback: CallbackOffer | None = None

    ends: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, slots=True)
class Transfer(Node):
    context: str
    extension: str
    priority: int
    prompts: Prompts

    ends: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, slots=True)
class Hangup(Node):
    prompts: Prompts                  # the goodbye

    ends: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True, slots=True)
class CancelCallback(Node):
    """Cancel the caller's open callback reservations (of ``queue``, or all); go to ``next``
    when one was cancelled, to ``none`` when there was none (or the number is withheld)."""

    queue: str | None
    next: str
    none: str

    instant: ClassVar[bool] = True

    def targets(self) -> tuple[tuple[str, str], ...]:
        return (("next", self.next), ("none", self.none))


NODE_TYPES: Mapping[str, type[Node]] = {
    "play": Play, "menu": Menu, "gather": Gather, "say": Say, "set": Set, "branch": Branch,
    "goto": Goto, "subflow": Subflow, "return": Return, "queue": Queue, "transfer": Transfer,
    "hangup": Hangup, "cancel_callback": CancelCallback,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Bypass:
    """A rule checked before the entry node: when ``condition`` holds, the caller skips the menu
    and goes to ``queue`` with ``priority``; the call records ``bypass: <reason>``."""

    line: int
    condition: Expr
    source: str
    queue: str
    priority: str | None
    reason: str
    prompts: Prompts


@dataclasses.dataclass(frozen=True, slots=True)
class Flow:
    name: str
    file: str
    line: int
    version: str                      # short sha256 of the file's bytes
    numbers: tuple[str, ...]          # dialled numbers it answers; () for a subflow
    entry: str
    language: str
    vars: Mapping[str, Any]           # defaults, copied into each call
    nodes: Mapping[str, Node]
    description: str = ""
    repeat: RepeatPolicy = RepeatPolicy()
    bypass: tuple[Bypass, ...] = ()
    outbound: bool = False            # the engine dials out with it (wellness calls); answers no number

    def node(self, name: str) -> Node:
        return self.nodes[name]


@dataclasses.dataclass(frozen=True, slots=True)
class FlowSet:
    """All flows that serve calls, by name and by dialled number."""

    flows: Mapping[str, Flow]
    by_number: Mapping[str, Flow]
    warnings: tuple[FlowProblem, ...] = ()

    def for_number(self, dialled: str) -> Flow | None:
        """The flow that answers ``dialled``, or None."""
        return self.by_number.get(dialled)

    def get(self, name: str) -> Flow | None:
        return self.flows.get(name)

    def __getitem__(self, name: str) -> Flow:
        return self.flows[name]

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows.values())

    def __len__(self) -> int:
        return len(self.flows)

    def version(self, name: str) -> str | None:
        flow = self.flows.get(name)
        return flow.version if flow else None

    def flow_names(self) -> list[str]:
        return list(self.flows)

    def numbers(self) -> list[str]:
        return list(self.by_number)

    def queues(self) -> set[str]:
        """Every queue a flow hands callers to (``queue`` nodes and bypass rules)."""
        names: set[str] = set()
        for flow in self.flows.values():
            names.update(rule.queue for rule in flow.bypass)
            names.update(node.queue for node in flow.nodes.values() if isinstance(node, Queue))
        return names
