"""Small graphon workflows that run with graphon's own engine and need no model, sandbox or network.

Shape of every graph (Dify's stored graph format: ``nodes[].data.type``, edges with ``sourceHandle``)::

    start ──▶ check (if-else: start.name is not empty)
                ├─ "true"  ──▶ greet    ──▶ end
                └─ "false" ──▶ fallback (template-transform) ──▶ end_fallback

What ``greet`` is decides the kind of run:

- ``ok``: template-transform ``Hello {{ name }}!``; every node succeeds, the run SUCCEEDED.
- ``fails``: template-transform with a Jinja2 syntax error and no error strategy; the node and the run FAILED.
- ``partial``: the same broken template with the ``default-value`` error strategy; the node ends EXCEPTION with
  its default output, ``end`` still runs, the run PARTIAL_SUCCEEDED.
- ``retried``: a Python code node that always raises, with one retry; the node goes RETRY, then FAILED.
- ``aborted``: a Python code node that would greet, but the run is aborted while it runs (see ``run_graph``);
  the run is STOPPED and the still-RUNNING node is saved FAILED with the abort reason.
"""

from __future__ import annotations

from typing import Any, Literal

from graphon.enums import BuiltinNodeTypes, ErrorStrategy

from tests.graphon.host_runtimes import jinja2_error_message

GraphKind = Literal["ok", "fails", "partial", "retried", "aborted"]

START_NODE_ID = "start"
IF_ELSE_NODE_ID = "check"
GREET_NODE_ID = "greet"
FALLBACK_NODE_ID = "fallback"
END_NODE_ID = "end"
END_FALLBACK_NODE_ID = "end_fallback"

GREETING_TEMPLATE = "Hello {{ name }}!"
FALLBACK_TEMPLATE = "Hello, whoever you are."
BROKEN_TEMPLATE = "Hello {{ name "
"""Unterminated expression: Jinja2 raises ``TemplateSyntaxError`` when the node renders it."""
DEFAULT_GREETING = "Hello, default"
"""``partial``: the output the ``default-value`` strategy gives the failed greet node."""
FAILING_CODE = 'def main(name: str) -> dict:\n    raise ValueError(f"no greeting for {name}")\n'
"""``retried``: the code node's program; every attempt raises."""
MAX_RETRIES = 1
GREETING_CODE = 'def main(name: str) -> dict:\n    return {"output": f"Hello {name}!"}\n'
"""``aborted``: the code node's program; it never gets to return."""
ABORT_REASON = "stopped while greet was running"

#: Node ids each graph runs, in start order, when ``name`` is not empty (the if-else takes ``true``).
TRUE_BRANCH_PATH: dict[str, tuple[str, ...]] = {
    "ok": (START_NODE_ID, IF_ELSE_NODE_ID, GREET_NODE_ID, END_NODE_ID),
    "fails": (START_NODE_ID, IF_ELSE_NODE_ID, GREET_NODE_ID),
    "partial": (START_NODE_ID, IF_ELSE_NODE_ID, GREET_NODE_ID, END_NODE_ID),
    "retried": (START_NODE_ID, IF_ELSE_NODE_ID, GREET_NODE_ID),
    "aborted": (START_NODE_ID, IF_ELSE_NODE_ID, GREET_NODE_ID),
}
FALSE_BRANCH_PATH = (START_NODE_ID, IF_ELSE_NODE_ID, FALLBACK_NODE_ID, END_FALLBACK_NODE_ID)


def _node(node_id: str, data: dict[str, Any], x: int) -> dict[str, Any]:
    # "type": "custom" / "position" / "width" are what Dify's editor stores next to "data".
    return {"id": node_id, "type": "custom", "position": {"x": x, "y": 0}, "width": 244, "height": 90, "data": data}


def _edge(source: str, target: str, handle: str, source_type: str, target_type: str) -> dict[str, Any]:
    return {
        "id": f"{source}-{handle}-{target}-target",
        "type": "custom",
        "source": source,
        "sourceHandle": handle,
        "target": target,
        "targetHandle": "target",
        "data": {"sourceType": source_type, "targetType": target_type, "isInIteration": False, "isInLoop": False},
    }


def _greet_data(kind: GraphKind) -> dict[str, Any]:
    variables = [{"variable": "name", "value_selector": [START_NODE_ID, "name"]}]
    if kind in ("retried", "aborted"):
        code: dict[str, Any] = {
            "type": BuiltinNodeTypes.CODE,
            "title": "Greet",
            "variables": variables,
            "code_language": "python3",
            "code": FAILING_CODE if kind == "retried" else GREETING_CODE,
            "outputs": {"output": {"type": "string", "children": None}},
        }
        if kind == "retried":
            code["retry_config"] = {"retry_enabled": True, "max_retries": MAX_RETRIES, "retry_interval": 0}
        return code
    data: dict[str, Any] = {
        "type": BuiltinNodeTypes.TEMPLATE_TRANSFORM,
        "title": "Greet",
        "variables": variables,
        "template": GREETING_TEMPLATE if kind == "ok" else BROKEN_TEMPLATE,
    }
    if kind == "partial":
        data["error_strategy"] = ErrorStrategy.DEFAULT_VALUE.value
        data["default_value"] = [{"key": "output", "type": "string", "value": DEFAULT_GREETING}]
    return data


def build_graph_config(kind: GraphKind) -> dict[str, Any]:
    """The stored graph (``WorkflowExecution.graph``) for ``kind``; a fresh copy on every call."""
    if kind not in TRUE_BRANCH_PATH:
        raise ValueError(f"unknown graph kind {kind!r}; expected one of {sorted(TRUE_BRANCH_PATH)}")
    start, if_else, template, end = (
        BuiltinNodeTypes.START,
        BuiltinNodeTypes.IF_ELSE,
        BuiltinNodeTypes.TEMPLATE_TRANSFORM,
        BuiltinNodeTypes.END,
    )
    name_variable = {"variable": "name", "label": "Name", "type": "text-input", "required": False, "max_length": 64}
    condition = {"variable_selector": [START_NODE_ID, "name"], "comparison_operator": "not empty", "value": ""}
    greet_data = _greet_data(kind)
    nodes = [
        _node(START_NODE_ID, {"type": start, "title": "Start", "variables": [name_variable]}, 0),
        _node(
            IF_ELSE_NODE_ID,
            {
                "type": if_else,
                "title": "Has a name",
                "cases": [{"case_id": "true", "logical_operator": "and", "conditions": [condition]}],
            },
            300,
        ),
        _node(GREET_NODE_ID, greet_data, 600),
        _node(
            FALLBACK_NODE_ID,
            {"type": template, "title": "Fallback", "variables": [], "template": FALLBACK_TEMPLATE},
            600,
        ),
        _node(
            END_NODE_ID,
            {
                "type": end,
                "title": "End",
                "outputs": [{"variable": "greeting", "value_selector": [GREET_NODE_ID, "output"]}],
            },
            900,
        ),
        _node(
            END_FALLBACK_NODE_ID,
            {
                "type": end,
                "title": "End (no name)",
                "outputs": [{"variable": "greeting", "value_selector": [FALLBACK_NODE_ID, "output"]}],
            },
            900,
        ),
    ]
    edges = [
        _edge(START_NODE_ID, IF_ELSE_NODE_ID, "source", start, if_else),
        _edge(IF_ELSE_NODE_ID, GREET_NODE_ID, "true", if_else, greet_data["type"]),
        _edge(IF_ELSE_NODE_ID, FALLBACK_NODE_ID, "false", if_else, template),
        _edge(GREET_NODE_ID, END_NODE_ID, "source", greet_data["type"], end),
        _edge(FALLBACK_NODE_ID, END_FALLBACK_NODE_ID, "source", template, end),
    ]
    return {"nodes": nodes, "edges": edges, "viewport": {"x": 0, "y": 0, "zoom": 1}}


def expected_path(kind: GraphKind, name: str) -> tuple[str, ...]:
    """Node ids that start, in order, for ``kind`` run with the start input ``name``."""
    return TRUE_BRANCH_PATH[kind] if name else FALSE_BRANCH_PATH


def expected_greet_error(kind: GraphKind, name: str) -> str:
    """The error the greet node reports in the ``fails`` / ``partial`` / ``retried`` runs."""
    if kind == "retried":
        return f"no greeting for {name}"
    if kind in ("fails", "partial"):
        return jinja2_error_message(BROKEN_TEMPLATE, {"name": name})
    raise ValueError(f"greet does not fail in a {kind!r} run")
