"""The YAML flow language: safe YAML → checked frozen model → per-call runner.

* ``ivr.flow.loader`` — ``load_flows`` (a ``FlowSet``), ``load_flow_file``, ``validate_paths``;
* ``ivr.flow.runner`` — ``run_flow``: one call through one flow, on the ``Call`` port;
* ``ivr.flow.model`` — the frozen dataclasses; ``ivr.flow.expr`` — the expression language;
* ``ivr.flow.say`` — digits, numbers and dates as prompt ids; ``ivr.flow.yamlsafe`` — the YAML reader.

The file format is described in ``docs/flows.md``.
"""
