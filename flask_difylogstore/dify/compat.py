"""The one place that decides whether Dify's own classes or the package's copies are used.

Inside a Dify API or worker process (``api/`` on ``sys.path``), Dify's models, entities and enums
are imported, so repositories return the exact classes Dify's callers expect and the index schema
follows Dify's real columns. Standalone (tests, the demo, other hosts) the package's copies in
:mod:`flask_difylogstore.dify` are used. Nothing else in the package imports Dify directly.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from flask_difylogstore.dify import entities as _entities
from flask_difylogstore.dify import enums as _enums
from flask_difylogstore.dify import models as _models


def _try_import(*names: str) -> ModuleType | None:
    for name in names:
        try:
            return importlib.import_module(name)
        except Exception:  # any failure means "not inside Dify"
            continue
    return None


_dify_models = _try_import("models.workflow")
_dify_entities = _try_import("graphon.entities", "core.workflow.entities")

#: True when Dify's own models are importable (the package runs inside Dify).
DIFY_AVAILABLE = _dify_models is not None and hasattr(_dify_models, "WorkflowNodeExecutionModel")


def _pick(module: ModuleType | None, name: str, fallback: Any) -> Any:
    if DIFY_AVAILABLE and module is not None and hasattr(module, name):
        return getattr(module, name)
    return fallback


WorkflowRun: type[_models.WorkflowRun] = _pick(_dify_models, "WorkflowRun", _models.WorkflowRun)
WorkflowNodeExecutionModel: type[_models.WorkflowNodeExecutionModel] = _pick(
    _dify_models, "WorkflowNodeExecutionModel", _models.WorkflowNodeExecutionModel
)
WorkflowNodeExecutionOffload: type[_models.WorkflowNodeExecutionOffload] = _pick(
    _dify_models, "WorkflowNodeExecutionOffload", _models.WorkflowNodeExecutionOffload
)
WorkflowAppLog: type[_models.WorkflowAppLog] = _pick(_dify_models, "WorkflowAppLog", _models.WorkflowAppLog)
WorkflowExecution: type[_entities.WorkflowExecution] = _pick(
    _dify_entities, "WorkflowExecution", _entities.WorkflowExecution
)
WorkflowNodeExecution: type[_entities.WorkflowNodeExecution] = _pick(
    _dify_entities, "WorkflowNodeExecution", _entities.WorkflowNodeExecution
)
WorkflowNodeExecutionMetadataKey: type[_enums.WorkflowNodeExecutionMetadataKey] = _pick(
    _try_import("graphon.enums", "core.workflow.enums"),
    "WorkflowNodeExecutionMetadataKey",
    _enums.WorkflowNodeExecutionMetadataKey,
)
NodeType: type[_enums.NodeType] = _pick(
    _try_import("graphon.enums", "core.workflow.enums"), "NodeType", _enums.NodeType
)

InfiniteScrollPagination: type[_entities.InfiniteScrollPagination] = _pick(
    _try_import("libs.infinite_scroll_pagination"),
    "InfiniteScrollPagination",
    _entities.InfiniteScrollPagination,
)

#: The declarative base whose metadata holds the tables (Dify's own inside Dify).
Base: Any = _pick(_try_import("models.base"), "Base", _models.Base)


def record_models() -> dict[str, Any]:
    """The ORM model of each record kind, keyed by :class:`~flask_difylogstore.records.RecordKind` value."""
    return {
        "workflow_execution": WorkflowRun,
        "workflow_node_execution": WorkflowNodeExecutionModel,
        "workflow_app_log": WorkflowAppLog,
    }


_DIFY_SQL_REPOSITORIES = {
    "workflow_execution": (
        "core.repositories.sqlalchemy_workflow_execution_repository.SQLAlchemyWorkflowExecutionRepository",
    ),
    "workflow_node_execution": (
        "core.repositories.sqlalchemy_workflow_node_execution_repository.SQLAlchemyWorkflowNodeExecutionRepository",
    ),
    "api_workflow_run": ("repositories.sqlalchemy_api_workflow_run_repository.DifyAPISQLAlchemyWorkflowRunRepository",),
    "api_workflow_node_execution": (
        "repositories.sqlalchemy_api_workflow_node_execution_repository."
        "DifyAPISQLAlchemyWorkflowNodeExecutionRepository",
    ),
}


def relational_repositories() -> dict[str, Any]:
    """The relational repository classes that dual write / dual read and Session-based methods use.

    Inside Dify these are Dify's own SQLAlchemy repositories; standalone (or when one of Dify's
    classes is missing) the package's :mod:`flask_difylogstore.repositories.relational` ones.
    """
    from flask_difylogstore.repositories import relational

    classes: dict[str, Any] = {
        "workflow_execution": relational.RelationalWorkflowExecutionRepository,
        "workflow_node_execution": relational.RelationalWorkflowNodeExecutionRepository,
        "api_workflow_run": relational.RelationalAPIWorkflowRunRepository,
        "api_workflow_node_execution": relational.RelationalAPIWorkflowNodeExecutionRepository,
        "workflow_app_log": relational.RelationalWorkflowAppLogRepository,
    }
    if DIFY_AVAILABLE:
        for key, paths in _DIFY_SQL_REPOSITORIES.items():
            for path in paths:
                module_name, _, class_name = path.rpartition(".")
                module = _try_import(module_name)
                if module is not None and hasattr(module, class_name):
                    classes[key] = getattr(module, class_name)
                    break
    return classes
