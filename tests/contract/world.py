"""One scenario stored twice (log store and relational baseline), and views to compare them."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime

import orjson

from flask_difylogstore.dify.models import WorkflowAppLog
from flask_difylogstore.payloads import TruncationLimits, Truncator
from flask_difylogstore.repositories import (
    LogStoreAPIWorkflowNodeExecutionRepository,
    LogStoreAPIWorkflowRunRepository,
    LogStoreWorkflowAppLogRepository,
    LogStoreWorkflowExecutionRepository,
    LogStoreWorkflowNodeExecutionRepository,
)
from flask_difylogstore.repositories.relational import (
    RelationalAPIWorkflowNodeExecutionRepository,
    RelationalAPIWorkflowRunRepository,
    RelationalWorkflowAppLogRepository,
    RelationalWorkflowExecutionRepository,
    RelationalWorkflowNodeExecutionRepository,
)
from tests.contract.scenario import Account, Scenario, drive, node_triggered_from

JSON_COLUMNS = ("graph", "inputs", "outputs", "process_data", "execution_metadata")


@dataclass
class Side:
    """The repositories of one storage (log store or relational)."""

    runs: t.Any
    nodes: t.Any
    app_logs: t.Any
    core_exec: t.Callable[..., t.Any]
    core_node: t.Callable[..., t.Any]


def logstore_side() -> Side:
    return Side(
        LogStoreAPIWorkflowRunRepository(),
        LogStoreAPIWorkflowNodeExecutionRepository(),
        LogStoreWorkflowAppLogRepository(),
        LogStoreWorkflowExecutionRepository,
        LogStoreWorkflowNodeExecutionRepository,
    )


def relational_side(sessions: t.Any, store: t.Any) -> Side:
    from tests.contract.conftest import TRUNCATION

    limits = TruncationLimits(
        TRUNCATION["truncation_max_size"],
        TRUNCATION["truncation_string_length"],
        TRUNCATION["truncation_array_length"],
    )

    def core_node(**kwargs: t.Any) -> t.Any:
        return RelationalWorkflowNodeExecutionRepository(
            session_factory=sessions, storage=store, truncator=Truncator(limits), **kwargs
        )

    def core_exec(**kwargs: t.Any) -> t.Any:
        return RelationalWorkflowExecutionRepository(session_factory=sessions, **kwargs)

    return Side(
        RelationalAPIWorkflowRunRepository(sessions),
        RelationalAPIWorkflowNodeExecutionRepository(sessions),
        RelationalWorkflowAppLogRepository(sessions),
        core_exec,
        core_node,
    )


def store_scenario(scenario: Scenario, side: Side) -> None:
    drive(
        scenario,
        lambda run: side.core_exec(user=run.user, app_id=run.app_id, triggered_from=run.triggered_from),
        lambda run: side.core_node(user=run.user, app_id=run.app_id, triggered_from=node_triggered_from()),
    )
    for log in scenario.app_logs:
        side.app_logs.save(WorkflowAppLog(**log))


def core_node_repo(side: Side, tenant_id: str, app_id: str) -> t.Any:
    return side.core_node(
        user=Account("00000000-0000-4000-8000-000000000000", tenant_id),
        app_id=app_id,
        triggered_from=node_triggered_from(),
    )


def _json(value: t.Any) -> t.Any:
    return orjson.loads(value) if isinstance(value, str) and value else value


def row_view(row: t.Any) -> dict[str, t.Any]:
    """Every column of an ORM row (JSON parsed), plus truncation flags for node rows."""
    from flask_difylogstore.conversions import model_columns

    view = {name: getattr(row, key) for name, key in model_columns(type(row)).items()}
    for name in JSON_COLUMNS:
        if name in view:
            view[name] = _json(view[name])
    for flag in ("inputs_truncated", "outputs_truncated", "process_data_truncated"):
        if hasattr(row, flag):
            view[flag] = getattr(row, flag)
    return view


def entity_view(entity: t.Any) -> dict[str, t.Any]:
    view = entity.model_dump()
    for name in ("inputs", "outputs", "process_data"):
        view[f"{name}_truncated"] = getattr(entity, f"get_truncated_{name}")()
    return view


def pagination_view(page: t.Any) -> tuple[list[dict[str, t.Any]], bool]:
    return [row_view(r) for r in page.data], bool(page.has_more)


def naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None)
