"""The wellness call's contract between its flow (``flows/wellness.yaml``) and the dialler.

The dialler rings a person; a phone that is busy, not answered or unreachable never reaches
the flow, and ``dial_result`` turns the switch's refusal into ``busy``, ``no_answer`` or
``failed``.  An answered call runs the flow, and ``attempt_result`` reads what the person did
from the call record alone — its nodes, how each was left (``exits``) and its outcome — never
from variables that live only in the running call, so that a record the engine noted before
it stopped is judged the same way after a restart:

* the call went through ``well``, reached by a menu key → ``well``, even when the person hangs
  up during the closing;
* through ``talk``, reached by a menu key → ``talk``, whatever the queue made of it (the detail
  says: the agent, or that nobody answered) — they answered, so it is a contact day;
* neither, and the engine failed, lost the call or stopped before it ended → ``failed``;
* neither, otherwise (no key after the repeat, wrong keys, hung up first) → ``no_key``.

A person is never recorded ``well`` or ``talk`` unless a key of theirs took the call there:
``check_flow`` refuses a flow where anything else can (an ``on_fail``, a ``goto``, the entry, a
bypass rule) and one whose ``talk`` hands the call to another queue or priority than the
campaign's.  Pure functions; no I/O.
"""

from __future__ import annotations

from typing import NamedTuple

from ivr.call import CallRecord, NodeExit, Outcome
from ivr.errors import DialFailed, FlowProblem
from ivr.flow.model import Flow, Menu, Queue
from ivr.wellness.model import AttemptResult, Campaign

__all__ = ["WELL_NODE", "TALK_NODE", "Verdict", "attempt_result", "dial_result", "check_flow"]

WELL_NODE = "well"            # the person pressed "I am well"
TALK_NODE = "talk"            # the person asked to talk to someone: the campaign's queue

# Q.850 causes of a dialled phone that rang, or could have, and was not answered.
BUSY_CAUSES = frozenset({17})                   # user busy
NO_ANSWER_CAUSES = frozenset({16, 18, 19, 20, 21, 31})
# 16 normal clearing (the network gave up ringing), 18 no user responding, 19 no answer,
# 20 subscriber absent (a mobile switched off), 21 call rejected, 31 normal, unspecified.


class Verdict(NamedTuple):
    """An attempt's result and a short text for ``ivr wellness`` and the event log (never a
    phone number)."""

    result: AttemptResult
    detail: str


def _reached_by_key(record: CallRecord, node: str) -> bool:
    """``node`` was visited, and the node before it was left by an accepted key."""
    for i, name in enumerate(record.nodes):
        if name == node and i > 0 and i - 1 < len(record.exits) and record.exits[i - 1] == NodeExit.KEY:
            return True
    return False


def attempt_result(record: CallRecord) -> Verdict:
    """What an answered wellness call's ``record`` says of the person (see the module's rules).

    A record without an outcome is one the engine noted before it stopped: judged as far as it
    goes."""
    outcome = Outcome(record.outcome) if record.outcome is not None else None
    if _reached_by_key(record, WELL_NODE):
        return Verdict(AttemptResult.WELL, "pressed 1: well")
    if _reached_by_key(record, TALK_NODE):
        return Verdict(AttemptResult.TALK, _talk_detail(outcome, record.detail))
    if outcome is None:
        return Verdict(AttemptResult.FAILED, "cut off before an answer: the engine stopped")
    if outcome in (Outcome.ERROR, Outcome.LOST):
        return Verdict(AttemptResult.FAILED, f"{outcome} before an answer" + _also(record.detail))
    if outcome is Outcome.CALLER_HANGUP:
        where = record.nodes[-1] if record.nodes else "the start"
        return Verdict(AttemptResult.NO_KEY, f"hung up before answering, at {where}")
    last_try = next((e for e in reversed(record.exits) if e in (NodeExit.TIMEOUT, NodeExit.INVALID)), None)
    if last_try == NodeExit.INVALID:
        return Verdict(AttemptResult.NO_KEY, "no answer: a wrong key after the repeat")
    if last_try == NodeExit.TIMEOUT:
        return Verdict(AttemptResult.NO_KEY, "no answer: no key after the repeat")
    return Verdict(AttemptResult.NO_KEY, f"ended {outcome} without an answer")


def _also(detail: str) -> str:
    return f" ({detail})" if detail else ""


def _talk_detail(outcome: Outcome | None, detail: str) -> str:
    if outcome is None:
        return "pressed 2: talk; cut off while waiting for an agent (the engine stopped)"
    said = {Outcome.AGENT_CONNECTED: "talked to an agent", Outcome.ABANDONED: "hung up waiting for an agent",
            Outcome.QUEUE_TIMEOUT: "no agent answered", Outcome.CALLBACK_BOOKED: "booked a callback",
            Outcome.QUEUED: "handed to the queue", Outcome.CALLER_HANGUP: "hung up before the queue"}
    return f"pressed 2: talk; {said.get(outcome, str(outcome))}" + _also(detail)


def dial_result(error: DialFailed) -> Verdict:
    """The result of an attempt whose phone never answered, from the switch's Q.850 cause.

    ``busy`` (17); ``no_answer`` when it rang or could have (no answer, no response, switched
    off, rejected); ``failed`` when the call could not be placed at all (no cause: the switch
    refused the dial; any other cause: the number or the network).  The error's message names
    the endpoint, so the detail holds the cause only."""
    cause = error.cause
    if cause in BUSY_CAUSES:
        return Verdict(AttemptResult.BUSY, f"busy (cause {cause})")
    if cause in NO_ANSWER_CAUSES:
        return Verdict(AttemptResult.NO_ANSWER, f"not answered (cause {cause})")
    if cause is None:
        why = f"the switch refused the dial (status {error.status})" if error.status else "no cause given"
        return Verdict(AttemptResult.FAILED, f"could not be placed: {why}")
    return Verdict(AttemptResult.FAILED, f"could not be placed (cause {cause})")


def check_flow(flow: Flow, campaign: Campaign) -> list[FlowProblem]:
    """What stops ``flow`` from serving ``campaign``'s calls under the contract; [] when it may.

    ``well`` and ``talk`` must exist and be reached only through the options of a menu; ``talk``
    must hand the call to the campaign's queue (and priority, when the campaign names one); the
    flow must be ``outbound`` and have no bypass rules (they would skip the question)."""
    problems: list[FlowProblem] = []

    def problem(line: int, message: str, node: str | None = None) -> None:
        problems.append(FlowProblem(flow.file, line, message, node=node))

    if not flow.outbound:
        problem(flow.line, f"flow '{flow.name}' must say 'outbound: true' to ring wellness calls")
    if flow.bypass:
        problem(flow.bypass[0].line, "a wellness flow has no bypass rules: they would skip the question")
    for needed in (WELL_NODE, TALK_NODE):
        if needed not in flow.nodes:
            problem(flow.line, f"a wellness flow needs a node '{needed}', reached by a menu key")
        elif flow.entry == needed:
            problem(flow.line, f"the entry cannot be '{needed}': only the person's key may lead there")
    talk = flow.nodes.get(TALK_NODE)
    if talk is not None:
        if not isinstance(talk, Queue):
            problem(talk.line, f"must be a queue node handing the call to '{campaign.queue}'", TALK_NODE)
        else:
            if talk.queue != campaign.queue:
                problem(talk.line, f"hands the call to queue '{talk.queue}'; campaign '{campaign.name}' "
                        f"uses '{campaign.queue}'", TALK_NODE)
            if campaign.priority is not None and talk.priority != campaign.priority:
                problem(talk.line, f"gives priority '{talk.priority or 'normal'}'; campaign "
                        f"'{campaign.name}' uses '{campaign.priority}'", TALK_NODE)
    for node in flow.nodes.values():
        for label, target in node.targets():
            if target not in (WELL_NODE, TALK_NODE):
                continue
            if not (isinstance(node, Menu) and label.startswith("option ")):
                problem(node.line, f"{label} goes to '{target}', which only a menu key may reach", node.name)
    return problems
