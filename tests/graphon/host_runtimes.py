"""The host-provided pieces graphon's nodes need, in their smallest real form, and a node factory using them.

graphon ships only the contracts: ``Jinja2TemplateRenderer`` for template-transform nodes and
``CodeExecutorProtocol`` for code nodes (Dify plugs in its sandbox service, which needs the network). Here
templates render with ``jinja2``'s sandbox and Python code runs in-process, which is enough for the trusted
snippets in :mod:`tests.graphon.demo_graphs`.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any

import jinja2
import jinja2.sandbox
from graphon.entities.graph_config import NodeConfigDict
from graphon.enums import BuiltinNodeTypes, NodeExecutionType
from graphon.nodes.base.node import Node
from graphon.nodes.code.code_node import CodeNode
from graphon.nodes.code.entities import CodeLanguage
from graphon.nodes.code.limits import CodeNodeLimits
from graphon.nodes.code.protocols import CodeExecutorProtocol
from graphon.nodes.end.end_node import EndNode
from graphon.nodes.if_else.if_else_node import IfElseNode
from graphon.nodes.start import StartNode
from graphon.nodes.template_transform import TemplateTransformNode
from graphon.runtime.init_params import InitParams
from graphon.runtime.runtime_state import RuntimeState
from graphon.template_rendering import Jinja2TemplateRenderer, TemplateRenderError

# Dify's defaults for CODE_MAX_* (api/configs/feature/__init__.py, CodeExecutionSandboxConfig).
DIFY_CODE_LIMITS = CodeNodeLimits(
    max_string_length=400_000,
    max_number=9_223_372_036_854_775_807,
    min_number=-9_223_372_036_854_775_808,
    max_precision=20,
    max_depth=5,
    max_number_array_length=1000,
    max_string_array_length=30,
    max_object_array_length=30,
)


class SandboxedJinja2Renderer(Jinja2TemplateRenderer):
    """Renders template-transform nodes with ``jinja2``'s sandbox; Jinja2 errors become ``TemplateRenderError``."""

    def __init__(self) -> None:
        self._environment = jinja2.sandbox.SandboxedEnvironment(autoescape=False)

    def render_template(self, template: str, variables: Mapping[str, Any]) -> str:
        try:
            return self._environment.from_string(template).render(**dict(variables))
        except jinja2.TemplateError as error:
            raise TemplateRenderError(str(error)) from error


class CodeExecutionError(RuntimeError):
    """The node's own code raised; the code node turns it into a failed (or retried) run."""


class InProcessPythonExecutor(CodeExecutorProtocol):
    """Runs a code node's ``main(**inputs)`` in this process (Python 3 only), as Dify's sandbox would remotely."""

    def execute(self, *, language: CodeLanguage, code: str, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        if language != CodeLanguage.PYTHON3:
            raise CodeExecutionError(f"only python3 runs in-process, not {language}")
        namespace: dict[str, Any] = {}
        try:
            exec(compile(code, "<code node>", "exec"), namespace)  # trusted snippets from demo_graphs only
            result = namespace["main"](**dict(inputs))
        except Exception as error:
            raise CodeExecutionError(str(error)) from error
        if not isinstance(result, Mapping):
            raise CodeExecutionError(f"main() must return a dict, got {type(result).__name__}")
        return result

    def is_execution_error(self, error: Exception) -> bool:
        return isinstance(error, CodeExecutionError)


class GatedPythonExecutor(InProcessPythonExecutor):
    """Calls ``on_enter`` when code starts, then holds the node RUNNING until ``release`` is set (or a deadline).

    Lets a test stop a run while a node is mid-flight without sleeping: ``on_enter`` requests the abort, the
    caller sets ``release`` once it has seen the engine's terminal event.
    """

    def __init__(self, *, deadline_seconds: float = 30.0) -> None:
        self.on_enter: Callable[[], None] | None = None
        self.entered = threading.Event()
        self.release = threading.Event()
        self._deadline_seconds = deadline_seconds

    def execute(self, *, language: CodeLanguage, code: str, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        self.entered.set()
        if self.on_enter is not None:
            self.on_enter()
        if not self.release.wait(self._deadline_seconds):
            raise CodeExecutionError(f"not released within {self._deadline_seconds} s")
        return super().execute(language=language, code=code, inputs=inputs)


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
    BuiltinNodeTypes.CODE: CodeNode,
    BuiltinNodeTypes.END: EndNode,
}


class LocalNodeFactory:
    """graphon ``NodeFactory`` for node kinds that run locally: start, if-else, template-transform, code, end.

    graphon's ``Graph.init`` first narrows the factory to one graph scope (``with_graph_config``), validates every
    node (``validate_node``) and then builds them (``create_node``); container frames rebind the runtime state.
    """

    def __init__(
        self,
        *,
        init_params: InitParams,
        runtime_state: RuntimeState,
        renderer: Jinja2TemplateRenderer | None = None,
        code_executor: CodeExecutorProtocol | None = None,
    ) -> None:
        self.init_params = init_params
        self.runtime_state = runtime_state
        self.renderer = renderer or SandboxedJinja2Renderer()
        self.code_executor = code_executor or InProcessPythonExecutor()

    def _copy(self, *, init_params: InitParams, runtime_state: RuntimeState) -> LocalNodeFactory:
        return LocalNodeFactory(
            init_params=init_params,
            runtime_state=runtime_state,
            renderer=self.renderer,
            code_executor=self.code_executor,
        )

    def with_runtime_state(self, runtime_state: RuntimeState) -> LocalNodeFactory:
        return self._copy(init_params=self.init_params, runtime_state=runtime_state)

    def with_graph_config(self, graph_config: Mapping[str, Any]) -> LocalNodeFactory:
        scoped = self.init_params.model_copy(update={"graph_config": copy.deepcopy(dict(graph_config))})
        return self._copy(init_params=scoped, runtime_state=self.runtime_state)

    def validate_node(self, node_config: NodeConfigDict) -> NodeExecutionType:
        node_class = self._node_class(node_config)
        node_class.validate_node_data(node_config["data"])
        return node_class.execution_type

    def create_node(self, node_config: NodeConfigDict) -> Node[Any]:
        node_class = self._node_class(node_config)
        node_id = node_config["id"]
        data = node_class.validate_node_data(node_config["data"])
        common: dict[str, Any] = {"init_params": self.init_params, "runtime_state": self.runtime_state}
        if node_class is TemplateTransformNode:
            return TemplateTransformNode(node_id, data, jinja2_template_renderer=self.renderer, **common)
        if node_class is CodeNode:
            return CodeNode(node_id, data, code_executor=self.code_executor, code_limits=DIFY_CODE_LIMITS, **common)
        return node_class(node_id, data, **common)

    @staticmethod
    def _node_class(node_config: NodeConfigDict) -> type[Node[Any]]:
        node_type = node_config["data"].type
        node_class = _NODE_CLASSES.get(node_type)
        if node_class is None:
            raise ValueError(f"node {node_config['id']!r}: type {node_type!r} needs a host runtime this factory lacks")
        return node_class
