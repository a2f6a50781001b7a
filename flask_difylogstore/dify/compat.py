"""The one place that decides whether Dify's own classes, graphon's, or the package's copies are used.

Three sources, in order:

* **Inside a Dify API or worker process** (``api/`` on ``sys.path``): Dify's ORM models, and the
  entities and enums Dify itself uses — ``core.workflow.entities`` on Dify 1.9–1.12, graphon's
  (``graphon.entities`` / ``graphon.enums``) from 1.13 on — so repositories return exactly the
  classes Dify's callers expect.
* **Standalone with graphon installed** (Python ≥ 3.12): graphon's entities and enums, the ones
  Dify's engine builds, with the package's own ORM models.
* **Standalone without graphon**: the package's copies in :mod:`flask_difylogstore.dify`.

Only a missing module (``ModuleNotFoundError`` naming the module asked for, or a parent of it)
means "not there"; any other error while importing Dify's or graphon's modules is a real fault
and is raised with the module named, never mistaken for "standalone". Nothing else in the package
imports Dify or graphon directly, and this module imports nothing from the package's upper layers.
"""

from __future__ import annotations

import functools
import importlib
import logging
import typing as t
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from flask_difylogstore.dify import entities as _entities
from flask_difylogstore.dify import enums as _enums
from flask_difylogstore.dify import models as _models

logger = logging.getLogger(__name__)


class DifyImportError(ImportError):
    """Importing one of Dify's (or graphon's) modules failed for a reason other than its absence."""


def import_optional(name: str) -> ModuleType | None:
    """``name`` imported, or ``None`` when it (or a parent package) does not exist.

    Any other failure — a broken Dify install, a circular import, a syntax error in a plugin — is
    raised as :class:`DifyImportError` naming the module.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            return None
        raise DifyImportError(f"importing {name} failed: {exc}") from exc
    except Exception as exc:
        raise DifyImportError(f"importing {name} failed: {type(exc).__name__}: {exc}") from exc


_dify_models = import_optional("models.workflow")

#: True when Dify's own models are importable (the package runs inside Dify).
DIFY_AVAILABLE = _dify_models is not None and hasattr(_dify_models, "WorkflowNodeExecutionModel")

_graphon_entities = import_optional("graphon.entities")
_graphon_enums = import_optional("graphon.enums") if _graphon_entities is not None else None

#: True when graphon (Dify's extracted workflow engine) provides the entities and enums.
GRAPHON_AVAILABLE = _graphon_entities is not None and _graphon_enums is not None


def _entity_sources() -> tuple[ModuleType | None, ModuleType | None, str]:
    """The (entities, enums) modules in use and a name for them.

    Inside Dify, Dify's own pre-graphon modules win when they still define the entities (1.9–1.12);
    otherwise graphon's (Dify 1.13 and later, and standalone when graphon is installed).
    """
    if DIFY_AVAILABLE:
        core_entities = import_optional("core.workflow.entities")
        if core_entities is not None and hasattr(core_entities, "WorkflowNodeExecution"):
            return core_entities, import_optional("core.workflow.enums"), "core.workflow"
    if GRAPHON_AVAILABLE:
        return _graphon_entities, _graphon_enums, "graphon"
    return None, None, "flask_difylogstore.dify"


_entity_module, _enum_module, ENTITY_SOURCE = _entity_sources()


def _pick(module: ModuleType | None, name: str, fallback: Any) -> Any:
    if module is not None and hasattr(module, name):
        return getattr(module, name)
    return fallback


def _pick_model(name: str, fallback: Any) -> Any:
    return _pick(_dify_models if DIFY_AVAILABLE else None, name, fallback)


WorkflowRun: type[_models.WorkflowRun] = _pick_model("WorkflowRun", _models.WorkflowRun)
WorkflowNodeExecutionModel: type[_models.WorkflowNodeExecutionModel] = _pick_model(
    "WorkflowNodeExecutionModel", _models.WorkflowNodeExecutionModel
)
WorkflowNodeExecutionOffload: type[_models.WorkflowNodeExecutionOffload] = _pick_model(
    "WorkflowNodeExecutionOffload", _models.WorkflowNodeExecutionOffload
)
WorkflowAppLog: type[_models.WorkflowAppLog] = _pick_model("WorkflowAppLog", _models.WorkflowAppLog)

WorkflowExecution: type[_entities.WorkflowExecution] = _pick(
    _entity_module, "WorkflowExecution", _entities.WorkflowExecution
)
WorkflowNodeExecution: type[_entities.WorkflowNodeExecution] = _pick(
    _entity_module, "WorkflowNodeExecution", _entities.WorkflowNodeExecution
)
WorkflowExecutionStatus: type[_enums.WorkflowExecutionStatus] = _pick(
    _enum_module, "WorkflowExecutionStatus", _enums.WorkflowExecutionStatus
)
WorkflowNodeExecutionStatus: type[_enums.WorkflowNodeExecutionStatus] = _pick(
    _enum_module, "WorkflowNodeExecutionStatus", _enums.WorkflowNodeExecutionStatus
)
WorkflowType: type[_enums.WorkflowType] = _pick(_enum_module, "WorkflowType", _enums.WorkflowType)
WorkflowNodeExecutionMetadataKey: type[_enums.WorkflowNodeExecutionMetadataKey] = _pick(
    _enum_module, "WorkflowNodeExecutionMetadataKey", _enums.WorkflowNodeExecutionMetadataKey
)
#: Dify's ``NodeType``: an enum before graphon 0.2.1, ``type NodeType = str`` (not callable) since.
NodeType: Any = _pick(_enum_module, "NodeType", _enums.NodeType)

InfiniteScrollPagination: type[_entities.InfiniteScrollPagination] = _pick(
    import_optional("libs.infinite_scroll_pagination") if DIFY_AVAILABLE else None,
    "InfiniteScrollPagination",
    _entities.InfiniteScrollPagination,
)


def _service_class(module: str, name: str, fallback: Any) -> Any:
    """A class from Dify's service layer, imported on first use (services import much of Dify)."""
    if not DIFY_AVAILABLE:
        return fallback
    return _pick(import_optional(module), name, fallback)


@functools.cache
def cleanup_ref_class() -> type[_entities.WorkflowRunCleanupRef]:
    """Dify's ``WorkflowRunCleanupRef`` (S4), or the package's copy."""
    return t.cast(
        type[_entities.WorkflowRunCleanupRef],
        _service_class("services.workflow.run_entities", "WorkflowRunCleanupRef", _entities.WorkflowRunCleanupRef),
    )


@functools.cache
def message_ref_class() -> type[_entities.WorkflowRunMessageRef]:
    """Dify's ``WorkflowRunMessageRef`` (S4), or the package's copy."""
    return t.cast(
        type[_entities.WorkflowRunMessageRef],
        _service_class("services.workflow.run_entities", "WorkflowRunMessageRef", _entities.WorkflowRunMessageRef),
    )


@functools.cache
def node_snapshot_class() -> type[_entities.WorkflowNodeExecutionSnapshot]:
    """Dify's ``WorkflowNodeExecutionSnapshot`` (S4), or the package's copy."""
    return t.cast(
        type[_entities.WorkflowNodeExecutionSnapshot],
        _service_class(
            "services.workflow.node_execution_queries",
            "WorkflowNodeExecutionSnapshot",
            _entities.WorkflowNodeExecutionSnapshot,
        ),
    )


#: The declarative base whose metadata holds the tables (Dify's own inside Dify).
Base: Any = _pick(import_optional("models.base") if DIFY_AVAILABLE else None, "Base", _models.Base)


def node_type(value: Any) -> Any:
    """A stored ``node_type`` as the entity class expects it.

    graphon ≥ 0.2.1 types node types as plain strings (``NodeType`` is a type alias, not a class);
    older lines use an enum, and a type that enum does not know stays a string.
    """
    text = str(getattr(value, "value", value))
    if isinstance(NodeType, type):
        try:
            return NodeType(text)
        except ValueError:
            return text
    return text


def metadata_keys(raw: Mapping[str, Any]) -> dict[Any, Any]:
    """Metadata with every key the running enum knows as a member; unknown keys stay strings.

    Keys a newer engine wrote (e.g. graphon's ``completed_reason`` read by an older line) are kept,
    so a read-modify-save never drops them.
    """
    result: dict[Any, Any] = {}
    for key, value in raw.items():
        try:
            result[WorkflowNodeExecutionMetadataKey(key)] = value
        except ValueError:
            result[str(key)] = value
    return result


def record_models() -> dict[str, Any]:
    """The ORM model of each record kind, keyed by :class:`~flask_difylogstore.records.RecordKind` value."""
    return {
        "workflow_execution": WorkflowRun,
        "workflow_node_execution": WorkflowNodeExecutionModel,
        "workflow_app_log": WorkflowAppLog,
    }


#: Where Dify keeps its SQL repositories, newest line first (S4: ``repositories.workflow.*``).
DIFY_SQL_REPOSITORIES: dict[str, tuple[str, ...]] = {
    "workflow_execution": (
        "repositories.workflow.execution_writer.SQLAlchemyWorkflowExecutionRepository",
        "core.repositories.sqlalchemy_workflow_execution_repository.SQLAlchemyWorkflowExecutionRepository",
    ),
    "workflow_node_execution": (
        "repositories.workflow.node_execution_writer.SQLAlchemyWorkflowNodeExecutionRepository",
        "core.repositories.sqlalchemy_workflow_node_execution_repository.SQLAlchemyWorkflowNodeExecutionRepository",
    ),
    "api_workflow_run": (
        "repositories.workflow.run_repository.DifyAPISQLAlchemyWorkflowRunRepository",
        "repositories.sqlalchemy_api_workflow_run_repository.DifyAPISQLAlchemyWorkflowRunRepository",
    ),
    "api_workflow_node_execution": (
        "repositories.workflow.node_execution_repository.DifyAPISQLAlchemyWorkflowNodeExecutionRepository",
        "repositories.sqlalchemy_api_workflow_node_execution_repository."
        "DifyAPISQLAlchemyWorkflowNodeExecutionRepository",
    ),
}


@functools.cache
def dify_sql_repository(key: str) -> Any | None:
    """Dify's own SQL repository class for ``key`` (see :data:`DIFY_SQL_REPOSITORIES`), or ``None``.

    Looked up once per process: the run writer asks on every save whether control rows are needed.
    """
    if not DIFY_AVAILABLE:
        return None
    for path in DIFY_SQL_REPOSITORIES.get(key, ()):
        module_name, _, class_name = path.rpartition(".")
        module = import_optional(module_name)
        if module is not None and hasattr(module, class_name):
            return getattr(module, class_name)
    return None
