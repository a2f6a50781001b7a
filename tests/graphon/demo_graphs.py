"""Small graphon workflows that run with graphon's own engine and need no model, sandbox or network.

Shape of every graph (Dify's stored graph format: ``nodes[].data.type``, edges with ``sourceHandle``)::

    start ──▶ check (if-else: start.name is not empty)
                ├─ "true"  ──▶ greet    (template-transform) ──▶ end
                └─ "false" ──▶ fallback (template-transform) ──▶ end_fallback

``ok`` renders ``Hello {{ name }}!``; ``fails`` gives ``greet`` a template with a Jinja2 syntax error, so the
node fails and, having no error strategy, fails the run. The template-transform node needs a host-provided
renderer (graphon only ships the abstract ``Jinja2TemplateRenderer``); :class:`SandboxedJinja2Renderer`
renders with ``jinja2``'s sandbox, as Dify's code executor does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

import jinja2
import jinja2.sandbox
from graphon.entities.graph_config import NodeConfigDict
from graphon.enums import BuiltinNodeTypes, NodeExecutionType
from graphon.nodes.base.node import Node
from graphon.nodes.end.end_node import EndNode
from graphon.nodes.if_else.if_else_node import IfElseNode
from graphon.nodes.start import StartNode
from graphon.nodes.template_transform import TemplateTransformNode
from graphon.runtime.init_params import InitParams
from graphon.runtime.runtime_state import RuntimeState
from graphon.template_rendering import Jinja2TemplateRenderer, TemplateRenderError

GraphKind = Literal["ok", "fails"]

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

#: Node ids each graph runs, in start order, when ``name`` is not empty (the if-else takes ``true``).
TRUE_BRANCH_PATH = {
    "ok": (START_NODE_ID, IF_ELSE_NODE_ID, GREET_NODE_ID, END_NODE_ID),
    "fails": (START_NODE_ID, IF_ELSE_NODE_ID, GREET_NODE_ID),
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
    greet_data = {
        "type": template,
        "title": "Greet",
        "variables": [{"variable": "name", "value_selector": [START_NODE_ID, "name"]}],
        "template": GREETING_TEMPLATE if kind == "ok" else BROKEN_TEMPLATE,
    }
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
        _edge(IF_ELSE_NODE_ID, GREET_NODE_ID, "true", if_else, template),
        _edge(IF_ELSE_NODE_ID, FALLBACK_NODE_ID, "false", if_else, template),
        _edge(GREET_NODE_ID, END_NODE_ID, "source", template, end),
        _edge(FALLBACK_NODE_ID, END_FALLBACK_NODE_ID, "source", template, end),
    ]
    return {"nodes": nodes, "edges": edges, "viewport": {"x": 0, "y": 0, "zoom": 1}}


def expected_path(kind: GraphKind, name: str) -> tuple[str, ...]:
    """Node ids that start, in order, for ``kind`` run with the start input ``name``."""
    return TRUE_BRANCH_PATH[kind] if name else FALSE_BRANCH_PATH


class SandboxedJinja2Renderer(Jinja2TemplateRenderer):
    """Renders template-transform nodes with ``jinja2``'s sandbox; Jinja2 errors become ``TemplateRenderError``."""

    def __init__(self) -> None:
        self._environment = jinja2.sandbox.SandboxedEnvironment(autoescape=False)

    def render_template(self, template: str, variables: Mapping[str, Any]) -> str:
        try:
            return self._environment.from_string(template).render(**dict(variables))
        except jinja2.TemplateError as error:
            raise TemplateRenderError(str(error)) from error


def jinja2_error_message(template: str, variables: Mapping[str, Any]) -> str:
    """The message the renderer (and so the failed node) reports for ``template``; raises if it renders."""
    try:
        SandboxedJinja2Renderer().render_template(template, variables)
    except TemplateRenderError as error:
        return str(error)
    raise AssertionError(f"template {template!r} renders without error")


_NODE_CLASSES: dict[str, type[Node[Any]]] = {
    BuiltinNodeTypes.START: StartNode,
    BuiltinNodeTypes.IF_ELSE: IfElseNode,
    BuiltinNodeTypes.TEMPLATE_TRANSFORM: TemplateTransformNode,
    BuiltinNodeTypes.END: EndNode,
}


class LocalNodeFactory:
    """graphon ``NodeFactory`` for the node kinds that run locally: start, if-else, template-transform, end.

    graphon's ``Graph.init`` first narrows the factory to one graph scope (``with_graph_config``), validates every
    node (``validate_node``) and then builds them (``create_node``); container frames rebind the runtime state.
    """

    def __init__(
        self,
        *,
        init_params: InitParams,
        runtime_state: RuntimeState,
        renderer: Jinja2TemplateRenderer | None = None,
    ) -> None:
        self.init_params = init_params
        self.runtime_state = runtime_state
        self.renderer = renderer or SandboxedJinja2Renderer()

    def with_runtime_state(self, runtime_state: RuntimeState) -> LocalNodeFactory:
        return LocalNodeFactory(init_params=self.init_params, runtime_state=runtime_state, renderer=self.renderer)

    def with_graph_config(self, graph_config: Mapping[str, Any]) -> LocalNodeFactory:
        scoped = self.init_params.model_copy(update={"graph_config": copy.deepcopy(dict(graph_config))})
        return LocalNodeFactory(init_params=scoped, runtime_state=self.runtime_state, renderer=self.renderer)

    def validate_node(self, node_config: NodeConfigDict) -> NodeExecutionType:
        node_class = self._node_class(node_config)
        node_class.validate_node_data(node_config["data"])
        return node_class.execution_type

    def create_node(self, node_config: NodeConfigDict) -> Node[Any]:
        node_class = self._node_class(node_config)
        data = node_class.validate_node_data(node_config["data"])
        if node_class is TemplateTransformNode:
            return TemplateTransformNode(
                node_id=node_config["id"],
                data=data,
                init_params=self.init_params,
                runtime_state=self.runtime_state,
                jinja2_template_renderer=self.renderer,
            )
        return node_class(
            node_id=node_config["id"], data=data, init_params=self.init_params, runtime_state=self.runtime_state
        )

    @staticmethod
    def _node_class(node_config: NodeConfigDict) -> type[Node[Any]]:
        node_type = node_config["data"].type
        node_class = _NODE_CLASSES.get(node_type)
        if node_class is None:
            raise ValueError(f"node {node_config['id']!r}: type {node_type!r} needs a host runtime this factory lacks")
        return node_class
