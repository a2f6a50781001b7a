"""Synthetic Dify workflow runs for the demo and the benchmarks, driven the way Dify's engine drives them.

A run is saved when it starts and when it ends; each node is saved when it starts, and when it
finishes with ``save`` then ``save_execution_data`` (Dify's persistence layer); a retry writes a
``retry`` snapshot first. The same workload can target the log-store repositories or the
relational baseline, which is what makes the latency comparison fair.
"""

from __future__ import annotations

import random
import time
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
    WorkflowType,
)

NODE_PLAN = (
    ("start", NodeType.START, "Start"),
    ("classifier", NodeType.QUESTION_CLASSIFIER, "Intent"),
    ("retrieval", NodeType.KNOWLEDGE_RETRIEVAL, "Knowledge"),
    ("llm", NodeType.LLM, "Answer"),
    ("end", NodeType.END, "End"),
)
INTENTS = ("billing", "refund", "shipping", "technical", "other")


@dataclass(frozen=True)
class DemoUser:
    """An account as Dify's repositories see it (``id`` + ``current_tenant_id``)."""

    id: str
    current_tenant_id: str


@dataclass
class SaveTimer:
    """Collects the wall time of every ``save`` / ``save_execution_data`` call."""

    samples: list[float] = field(default_factory=list)

    def call(self, func: t.Callable[..., t.Any], *args: t.Any) -> None:
        started = time.perf_counter()
        func(*args)
        self.samples.append(time.perf_counter() - started)

    def percentile(self, q: float) -> float:
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class RunOutcome:
    run_id: str
    status: str
    nodes: int
    large_payload: bool = False


def payload(rng: random.Random, size: int) -> dict[str, t.Any]:
    """A JSON payload of about ``size`` bytes with some structure."""
    words = ["workflow", "token", "answer", "context", "query", "result", "score", "chunk"]
    text = " ".join(rng.choice(words) for _ in range(max(1, size // 7)))
    return {"text": text[:size], "items": [rng.randint(0, 1000) for _ in range(5)]}


def run_workflow(
    rng: random.Random,
    run_repo: t.Any,
    node_repo: t.Any,
    *,
    workflow_id: str,
    started_at: datetime,
    fail: bool = False,
    retry: bool = False,
    shuffle: bool = False,
    large_output_bytes: int = 0,
    payload_bytes: int = 5_000,
    timer: SaveTimer | None = None,
) -> RunOutcome:
    """Drive one run through ``run_repo`` / ``node_repo`` like Dify's engine and return its outcome."""
    timer = timer or SaveTimer()
    run = _new_run(rng, workflow_id, started_at)
    timer.call(run_repo.save, run)
    plan = NODE_PLAN[:3] if fail else NODE_PLAN
    saves, tokens, now = _node_snapshots(
        rng,
        run,
        plan,
        started_at,
        fail=fail,
        retry=retry,
        large_output_bytes=large_output_bytes,
        payload_bytes=payload_bytes,
    )
    if shuffle:
        rng.shuffle(saves)
    for action, snapshot in saves:
        if action == "save":
            timer.call(node_repo.save, snapshot)
        else:
            timer.call(node_repo.save_execution_data, snapshot)
    run.status = WorkflowExecutionStatus.FAILED if fail else WorkflowExecutionStatus.SUCCEEDED
    run.error_message = "node retrieval failed" if fail else ""
    run.outputs = {} if fail else {"answer": "done"}
    run.total_tokens = tokens
    run.total_steps = len(plan)
    run.finished_at = now + timedelta(milliseconds=5)
    timer.call(run_repo.save, run)
    return RunOutcome(run.id_, run.status.value, len(plan), bool(large_output_bytes))


def _new_run(rng: random.Random, workflow_id: str, started_at: datetime) -> WorkflowExecution:
    return WorkflowExecution.new(
        id_=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        workflow_id=workflow_id,
        workflow_type=WorkflowType.WORKFLOW,
        workflow_version="2026-11-01 10:00:00",
        graph={"nodes": [{"id": n[0], "type": n[1].value} for n in NODE_PLAN], "edges": []},
        inputs={"query": f"question #{rng.randint(1, 99999)}"},
        started_at=started_at,
    )


def _node_snapshots(
    rng: random.Random,
    run: WorkflowExecution,
    plan: tuple[tuple[str, NodeType, str], ...],
    now: datetime,
    *,
    fail: bool,
    retry: bool,
    large_output_bytes: int,
    payload_bytes: int,
) -> tuple[list[tuple[str, WorkflowNodeExecution]], int, datetime]:
    """Run the nodes one after the other (the failing run's last node fails).

    Returns every snapshot to save (``save`` or ``data``) in engine order, the tokens used and when the
    last node finished.
    """
    saves: list[tuple[str, WorkflowNodeExecution]] = []
    tokens = 0
    for index, (_, node_type, _) in enumerate(plan, start=1):
        now += timedelta(milliseconds=rng.randint(20, 400))
        node = _new_node(rng, run, plan, index, now)
        saves.append(("save", node.model_copy()))
        if retry and node_type is NodeType.LLM:
            saves += _retry_snapshots(node)
        node_tokens = rng.randint(50, 900) if node_type in (NodeType.LLM, NodeType.QUESTION_CLASSIFIER) else 0
        tokens += node_tokens
        finished = now + timedelta(milliseconds=rng.randint(50, 1500))
        outputs = _node_outputs(rng, node_type, payload_bytes, large_output_bytes)
        _finish_node(node, run, now, finished, outputs, node_tokens, failed=fail and index == len(plan))
        saves += [("save", node.model_copy()), ("data", node.model_copy())]
        now = finished
    return saves, tokens, now


def _new_node(
    rng: random.Random,
    run: WorkflowExecution,
    plan: tuple[tuple[str, NodeType, str], ...],
    index: int,
    created_at: datetime,
) -> WorkflowNodeExecution:
    """Node ``index`` (1-based) of ``plan`` as it starts running."""
    node_id, node_type, title = plan[index - 1]
    node = WorkflowNodeExecution(
        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        workflow_id=run.workflow_id,
        workflow_execution_id=run.id_,
        index=index,
        predecessor_node_id=plan[index - 2][0] if index > 1 else None,
        node_id=node_id,
        node_type=node_type,
        title=title,
        created_at=created_at,
    )
    node.node_execution_id = node.id
    return node


def _retry_snapshots(node: WorkflowNodeExecution) -> list[tuple[str, WorkflowNodeExecution]]:
    """A first attempt timing out: the node is saved as ``retry``, with its data, before it runs again."""
    node.status = WorkflowNodeExecutionStatus.RETRY
    node.error = "upstream model timed out"
    return [("save", node.model_copy()), ("data", node.model_copy())]


def _node_outputs(
    rng: random.Random, node_type: NodeType, payload_bytes: int, large_output_bytes: int
) -> dict[str, t.Any]:
    outputs: dict[str, t.Any] = payload(rng, payload_bytes)
    if node_type is NodeType.QUESTION_CLASSIFIER:
        outputs["class_name"] = rng.choice(INTENTS)
    if large_output_bytes and node_type is NodeType.LLM:
        outputs["text"] = "x" * large_output_bytes
    return outputs


def _finish_node(
    node: WorkflowNodeExecution,
    run: WorkflowExecution,
    started: datetime,
    finished: datetime,
    outputs: dict[str, t.Any],
    tokens: int,
    *,
    failed: bool,
) -> None:
    """The node's final state: status, timing, inputs, outputs (none when it failed) and token metadata."""
    node.status = WorkflowNodeExecutionStatus.FAILED if failed else WorkflowNodeExecutionStatus.SUCCEEDED
    node.error = "knowledge base unavailable" if failed else None
    node.finished_at = finished
    node.elapsed_time = (finished - started).total_seconds()
    node.update_from_mapping(
        inputs={"query": run.inputs["query"]},
        process_data={"model": "demo-llm"} if node.node_type is NodeType.LLM else None,
        outputs=None if failed else outputs,
        metadata={WorkflowNodeExecutionMetadataKey.TOTAL_TOKENS: tokens} if tokens else None,
    )
