"""Which relational repository serves each Dify contract, and how to build one on any Dify line.

Inside Dify it is Dify's own SQLAlchemy repository (found by :func:`~flask_difylogstore.dify.compat.dify_sql_repository`
at the newest module paths first); standalone, the package's baseline in
:mod:`flask_difylogstore.repositories.relational`. Dify's constructors differ by line — S4 requires
``tenant_id`` and, for node writers, a keyword-only ``upload_file`` — so :func:`construct` passes
each keyword the class accepts and nothing it does not.
"""

from __future__ import annotations

import inspect
import typing as t

from flask_difylogstore.dify import compat


def relational_repositories() -> dict[str, t.Any]:
    """The relational repository class per contract key (``workflow_execution``, ``api_workflow_run``, ...)."""
    from flask_difylogstore.repositories import relational, relational_api, relational_api_node, relational_app_log

    classes: dict[str, t.Any] = {
        "workflow_execution": relational.RelationalWorkflowExecutionRepository,
        "workflow_node_execution": relational.RelationalWorkflowNodeExecutionRepository,
        "api_workflow_run": relational_api.RelationalAPIWorkflowRunRepository,
        "api_workflow_node_execution": relational_api_node.RelationalAPIWorkflowNodeExecutionRepository,
        "workflow_app_log": relational_app_log.RelationalWorkflowAppLogRepository,
    }
    for key in list(classes):
        dify_class = compat.dify_sql_repository(key)
        if dify_class is not None:
            classes[key] = dify_class
    return classes


def control_rows_required() -> bool:
    """Whether the host Dify line keeps run control state in SQL: its SQL run writer has ``save_control``.

    True on the newest Dify line, where pause, resume and Agent participant allocation read
    ``workflow_runs`` / ``workflow_node_executions`` rows inside SQL transactions.
    """
    cls = compat.dify_sql_repository("workflow_execution")
    return cls is not None and callable(getattr(cls, "save_control", None))


def _accepted(cls: t.Any) -> tuple[set[str], bool]:
    """Keyword names ``cls(...)`` accepts, and whether it takes ``**kwargs``."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # builtins or C classes: pass everything
        return set(), True
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in parameters)


def construct(cls: t.Any, **kwargs: t.Any) -> t.Any:
    """``cls(**kwargs)`` with only the keywords ``cls`` accepts; ``None`` values it does not need are dropped.

    A required keyword the caller cannot supply (e.g. S4's ``upload_file`` when none was given)
    surfaces as Dify's own ``TypeError`` naming it.
    """
    names, takes_any = _accepted(cls)
    passed = {key: value for key, value in kwargs.items() if takes_any or key in names}
    passed = {key: value for key, value in passed.items() if value is not None or key in names}
    return cls(**passed)


def core_repository(
    key: str,
    *,
    session_factory: t.Any,
    user: t.Any,
    app_id: str | None,
    triggered_from: t.Any,
    tenant_id: str,
    upload_file: t.Any = None,
) -> t.Any:
    """The relational core repository (``workflow_execution`` / ``workflow_node_execution``) for one owner."""
    cls = relational_repositories()[key]
    return construct(
        cls,
        session_factory=session_factory,
        tenant_id=tenant_id,
        user=user,
        app_id=app_id,
        triggered_from=triggered_from,
        upload_file=upload_file,
    )
