"""Small Dify helpers the persistence layer calls, re-stated for graphon 0.8 (Dify is not importable here).

Sources (langgenius/dify): ``core/workflow/system_variables.py`` and ``variable_prefixes.py`` (keys),
``core/app/workflow/retry_history.py`` (``WorkflowNodeRetryAttempt``), ``core/workflow/node_execution_process_data.py``
(``preserve_workflow_agent_binding_id``), ``core/workflow/workflow_run_outputs.py``
(``project_node_outputs_for_workflow_run``), ``core/workflow/workflow_entry.py`` (``handle_special_values``),
``libs/datetime_utils.py`` (``naive_utc_now``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from graphon.enums import BuiltinNodeTypes
from graphon.file.models import File
from pydantic import BaseModel, ConfigDict, Field

SYSTEM_VARIABLE_NODE_ID = "sys"
WORKFLOW_EXECUTION_ID_KEY = "workflow_run_id"
CONVERSATION_ID_KEY = "conversation_id"
RETRY_HISTORY_PROCESS_DATA_KEY = "__dify_retry_history"
WORKFLOW_AGENT_BINDING_ID_KEY = "workflow_agent_binding_id"


class RetryAttempt(BaseModel):
    """Dify's ``WorkflowNodeRetryAttempt``: one failed attempt kept in ``process_data`` before a retry."""

    model_config = ConfigDict(extra="forbid")

    retry_index: int = Field(gt=0)
    inputs: Mapping[str, Any]
    process_data: Mapping[str, Any]
    outputs: Mapping[str, Any]
    error: str
    elapsed_time: float = Field(ge=0)
    execution_metadata: Mapping[str, Any]
    created_at: int
    finished_at: int


def naive_utc_now() -> datetime:
    """Dify's ``libs.datetime_utils.naive_utc_now`` (graphon stamps events the same way)."""
    return datetime.now(UTC).replace(tzinfo=None)


def preserve_workflow_agent_binding_id(
    identity_source: Mapping[str, Any] | None, process_data: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Dify's helper of the same name: keep an agent binding id across process-data replacements."""
    source_id = (identity_source or {}).get(WORKFLOW_AGENT_BINDING_ID_KEY)
    target_id = (process_data or {}).get(WORKFLOW_AGENT_BINDING_ID_KEY)
    if source_id is not None and target_id is not None and source_id != target_id:
        raise ValueError("workflow_agent_binding_id does not match")
    if process_data is None and source_id is None:
        return None
    merged = dict(process_data or {})
    if source_id is not None:
        merged[WORKFLOW_AGENT_BINDING_ID_KEY] = source_id
    return merged


def project_node_outputs_for_workflow_run(
    *, node_type: str, inputs: Mapping[str, Any], outputs: Mapping[str, Any]
) -> dict[str, Any]:
    """Dify's ``core/workflow/workflow_run_outputs.py``: a start node's public outputs are its inputs."""
    if node_type == BuiltinNodeTypes.START:
        return dict(inputs)
    return dict(outputs)


def handle_special_values(value: Any) -> Any:
    """Dify's ``WorkflowEntry.handle_special_values``: files become their dict form, recursively."""
    if isinstance(value, Mapping):
        return {key: handle_special_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [handle_special_values(item) for item in value]
    if isinstance(value, File):
        return value.to_dict()
    return value
