"""A flow as a picture: Mermaid text (GitHub and most editors draw it), or Graphviz DOT.

Every node is a box named after it with its kind and first prompt; every way out is an
arrow labelled with the key, ``timeout``/``on_fail``, the branch condition or ``next``.  A
subflow is drawn as a call into the other flow; endings (queue, transfer, hangup) are rounded.
"""

from __future__ import annotations

import re

from ivr.flow.model import Branch, Flow, Menu, Node, Queue, Subflow

__all__ = ["mermaid", "dot"]

_SAFE = re.compile(r"[^A-Za-z0-9_]")


def _id(name: str) -> str:
    return "n_" + _SAFE.sub("_", name)


def _kind(node: Node) -> str:
    return type(node).__name__.lower()


def _caption(node: Node) -> str:
    parts = [node.name, _kind(node)]
    prompts = getattr(node, "prompts", None)
    if prompts:
        parts.append(str(prompts[0]))
    if isinstance(node, Queue):
        parts.append(f"queue {node.queue}" + (" + callback offer" if node.callback else ""))
    if isinstance(node, Subflow):
        parts.append(f"→ flow {node.flow}")
    return " · ".join(parts)


def _edges(node: Node) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(node, Branch):
        for expr, target in node.cases:
            out.append((f"if {getattr(expr, 'source', '')}", target))
        out.append(("else", node.otherwise))
        return out
    for label, target in node.targets():
        if isinstance(node, Menu) and label.startswith("option "):
            label = "key " + label.split("'")[1]
        out.append((label, target))
    return out


def _quote(text: str) -> str:
    return text.replace('"', "'")


def _start(flow: Flow) -> str:
    """The first box: who calls (a dialled number, a subflow's name, or the engine dialling out)."""
    if flow.outbound:
        return f"{_quote(flow.name)} calls out"
    return f"call to {_quote(', '.join(flow.numbers) or flow.name)}"


def mermaid(flow: Flow) -> str:
    lines = ["flowchart TD", f'  start(["{_start(flow)}"])']
    if flow.bypass:
        lines.append('  n__bypass(["bypass: straight to a queue"])')
        for rule in flow.bypass:
            lines.append(f'  start -- "{_quote(rule.reason or "")}: {_quote(rule.source)}" --> n__bypass')
    lines.append(f"  start --> {_id(flow.entry)}")
    for name, node in flow.nodes.items():
        caption = _quote(_caption(node))
        shape = f'(["{caption}"])' if node.ends else f'["{caption}"]'
        lines.append(f"  {_id(name)}{shape}")
        for label, target in _edges(node):
            lines.append(f'  {_id(name)} -- "{_quote(label)}" --> {_id(target)}')
    return "\n".join(lines) + "\n"


def dot(flow: Flow) -> str:
    lines = [f'digraph "{flow.name}" {{', "  rankdir=TB; node [shape=box, fontname=sans];",
             f'  start [shape=oval, label="{_start(flow)}"];',
             f"  start -> {_id(flow.entry)};"]
    for name, node in flow.nodes.items():
        style = ', style=rounded' if node.ends else ""
        lines.append(f'  {_id(name)} [label="{_quote(_caption(node))}"{style}];')
        for label, target in _edges(node):
            lines.append(f'  {_id(name)} -> {_id(target)} [label="{_quote(label)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
