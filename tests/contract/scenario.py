"""A deterministic workload driven through repositories the way Dify's engine drives them.

The same :class:`Scenario` is replayed against the log-store repositories and against the
relational baseline on PostgreSQL; the contract tests then compare every read.
"""

from __future__ import annotations

import random
import typing as t
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_difylogstore.dify.entities import WorkflowExecution, WorkflowNodeExecution
from flask_difylogstore.dify.enums import (
    NodeType,
    WorkflowExecutionStatus,
    WorkflowNodeExecutionMetadataKey,
    WorkflowNodeExecutionStatus,
    WorkflowNodeExecutionTriggeredFrom,
    WorkflowRunTriggeredFrom,
    WorkflowType,
)

BASE = datetime(2026, 3, 7, 15, 30)


def uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True)
class Account:
    id: str
    current_tenant_id: str


@dataclass(frozen=True)
class EndUser:
    id: str
    tenant_id: str


@dataclass
class RunSpec:
    id: str
    tenant_id: str
    app_id: str
    workflow_id: str
    user: Account | EndUser
    triggered_from: WorkflowRunTriggeredFrom
    started_at: datetime
    final: WorkflowExecutionStatus | None
    nodes: list[NodeSpec] = field(default_factory=list)


@dataclass
class NodeSpec:
    id: str
    node_id: str
    node_type: NodeType
    index: int
    created_at: datetime
    final: WorkflowNodeExecutionStatus
    retries: int = 0
    big: bool = False


@dataclass
class Scenario:
    tenants: list[str]
    apps: dict[str, list[str]]
    runs: list[RunSpec]
    app_logs: list[dict[str, t.Any]]

    def runs_of(self, tenant_id: str, app_id: str) -> list[RunSpec]:
        return [r for r in self.runs if r.tenant_id == tenant_id and r.app_id == app_id]


def build_scenario(seed: int = 7, runs_per_app: int = 9) -> Scenario:
    """Two tenants, two apps each; runs spread over days (some at midnight edges, some at equal times)."""
    rng = random.Random(seed)
    tenants = [uid(rng), uid(rng)]
    apps = {t_: [uid(rng), uid(rng)] for t_ in tenants}
    runs: list[RunSpec] = []
    app_logs: list[dict[str, t.Any]] = []
    offsets = [timedelta(hours=h) for h in (0, 8.6, 9, 20, 33, 47.99, 70, 100, 101)]
    finals = [
        WorkflowExecutionStatus.SUCCEEDED,
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.STOPPED,
        WorkflowExecutionStatus.PARTIAL_SUCCEEDED,
        None,
        WorkflowExecutionStatus.SUCCEEDED,
    ]
    for tenant in tenants:
        users: list[Account | EndUser] = [
            Account(uid(rng), tenant),
            EndUser(uid(rng), tenant),
            EndUser(uid(rng), tenant),
        ]
        for app in apps[tenant]:
            workflow_id = uid(rng)
            for i in range(runs_per_app):
                started = BASE + offsets[i % len(offsets)] + timedelta(seconds=rng.choice([0, 0, 1, 2]))
                run = RunSpec(
                    uid(rng),
                    tenant,
                    app,
                    workflow_id,
                    rng.choice(users),
                    rng.choice(
                        [
                            WorkflowRunTriggeredFrom.APP_RUN,
                            WorkflowRunTriggeredFrom.APP_RUN,
                            WorkflowRunTriggeredFrom.DEBUGGING,
                        ]
                    ),
                    started,
                    finals[i % len(finals)],
                )
                for index in range(1, rng.randint(2, 5)):
                    final = WorkflowNodeExecutionStatus.SUCCEEDED
                    if run.final is WorkflowExecutionStatus.FAILED and index > 1:
                        final = WorkflowNodeExecutionStatus.FAILED
                    run.nodes.append(
                        NodeSpec(
                            uid(rng),
                            f"node-{index}",
                            rng.choice([NodeType.LLM, NodeType.CODE, NodeType.TOOL]),
                            index,
                            started + timedelta(milliseconds=10 * index),
                            final,
                            retries=1 if index == 2 and i % 3 == 0 else 0,
                            big=index == 1 and i % 4 == 0,
                        )
                    )
                runs.append(run)
                if run.triggered_from is WorkflowRunTriggeredFrom.APP_RUN:
                    app_logs.append(
                        {
                            "id": uid(rng),
                            "tenant_id": tenant,
                            "app_id": app,
                            "workflow_id": workflow_id,
                            "workflow_run_id": run.id,
                            "created_from": rng.choice(["service-api", "web-app"]),
                            "created_by_role": "account" if isinstance(run.user, Account) else "end_user",
                            "created_by": run.user.id,
                            "created_at": started + timedelta(seconds=3),
                        }
                    )
    return scenario_with(tenants, apps, runs, app_logs)


def scenario_with(
    tenants: list[str], apps: dict[str, list[str]], runs: list[RunSpec], app_logs: list[dict[str, t.Any]]
) -> Scenario:
    return Scenario(tenants, apps, runs, app_logs)


def payload(run: RunSpec, node: NodeSpec, kind: str) -> dict[str, t.Any]:
    if node.big and kind == "outputs":
        return {"text": "long answer " * 400, "items": list(range(3000)), "nested": {"k": "v" * 5000}}
    return {"kind": kind, "node": node.node_id, "query": f"hello {run.id[:8]}", "n": node.index}


def drive(scenario: Scenario, exec_repo: t.Callable[[RunSpec], t.Any], node_repo: t.Callable[[RunSpec], t.Any]) -> None:
    """Save every run and node like Dify's persistence layer (2-3 saves per entity, retry, failure, pause)."""
    for run in scenario.runs:
        runs, nodes = exec_repo(run), node_repo(run)
        execution = WorkflowExecution.new(
            id_=run.id,
            workflow_id=run.workflow_id,
            workflow_type=WorkflowType.WORKFLOW,
            workflow_version="1",
            graph={"nodes": [n.node_id for n in run.nodes]},
            inputs={"query": f"hello {run.id[:8]}"},
            started_at=run.started_at,
        )
        runs.save(execution)
        tokens = 0
        for node in run.nodes:
            entity = WorkflowNodeExecution(
                id=node.id,
                node_execution_id=node.id,
                workflow_id=run.workflow_id,
                workflow_execution_id=run.id,
                index=node.index,
                node_id=node.node_id,
                node_type=node.node_type,
                title=f"Node {node.index}",
                created_at=node.created_at,
                metadata={WorkflowNodeExecutionMetadataKey.ITERATION_ID: None},
            )
            nodes.save(entity)
            for attempt in range(node.retries):
                retry = entity.model_copy(
                    update={
                        "id": f"{node.id[:-4]}{attempt:04d}",
                        "status": WorkflowNodeExecutionStatus.RETRY,
                        "error": "timeout",
                    }
                )
                retry.update_from_mapping(inputs=payload(run, node, "inputs"))
                nodes.save(retry)
                nodes.save_execution_data(retry)
            if run.final is None and node is run.nodes[-1]:
                continue  # still running (paused) at the end of the scenario
            entity.status = node.final
            entity.finished_at = node.created_at + timedelta(seconds=1)
            entity.elapsed_time = 1.0
            entity.error = "boom" if node.final is WorkflowNodeExecutionStatus.FAILED else None
            tokens += 10 * node.index
            entity.update_from_mapping(
                inputs=payload(run, node, "inputs"),
                process_data=payload(run, node, "process_data"),
                outputs=payload(run, node, "outputs"),
                metadata={
                    WorkflowNodeExecutionMetadataKey.TOTAL_TOKENS: 10 * node.index,
                    WorkflowNodeExecutionMetadataKey.CURRENCY: "USD",
                },
            )
            nodes.save(entity)
            nodes.save_execution_data(entity)
        if run.final is None:
            continue
        execution.status = run.final
        execution.outputs = {"answer": f"done {run.id[:8]}"}
        execution.error_message = "failed" if run.final is WorkflowExecutionStatus.FAILED else ""
        execution.total_tokens = tokens
        execution.total_steps = len(run.nodes)
        execution.finished_at = run.started_at + timedelta(seconds=5)
        runs.save(execution)


def node_triggered_from() -> WorkflowNodeExecutionTriggeredFrom:
    return WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN
