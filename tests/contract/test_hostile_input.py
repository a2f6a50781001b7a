"""Hostile values in read and delete parameters get the correct (empty) answer or a ValueError naming the
parameter — never another tenant's rows, never a raw transport or OS error — on every backend.

The corpus holds what breaks naive query building: quotes, backslashes, wildcards, pipes, boolean
words, SQL and query-string fragments, NUL, a lone surrogate and a 10 kB string. Saves with a missing
or malformed identity are refused at ``save()`` with the field named.
"""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from flask_difylogstore.errors import RecordRejectedError
from flask_difylogstore.repositories import (
    LogStoreAPIWorkflowNodeExecutionRepository,
    LogStoreAPIWorkflowRunRepository,
)
from tests.contract.conftest import flush, logstore_app
from tests.contract.test_newest_dify import START, Storage, new_id, node, run

CORPUS = [
    '"',
    "'",
    "\\",
    "*",
    "?",
    "|",
    "a or b",
    "a and not b",
    "' OR '1'='1",
    'x" or tenant_id:*',
    "* | select * from log",
    "tenant_id: *",
    "\x00",
    "\ud800",
    "y" * 10_000,
    "",
]


@dataclass
class World:
    storage: Storage
    run_id: str
    node_id: str


@pytest.fixture
def world(backend_values: dict[str, t.Any], tmp_path: Path) -> Iterator[World]:
    with logstore_app(backend_values, tmp_path):
        storage = Storage(tenant=new_id(), app=new_id())
        run_id, node_id = new_id(), new_id()
        storage.run_writer().save(run(run_id))
        storage.node_writer().save(node(node_id, run_id))
        flush()
        yield World(storage, run_id, node_id)


def _empty(result: t.Any) -> bool:
    if result is None or result == 0:
        return True
    if isinstance(result, dict):
        return all(not v for v in result.values())
    if hasattr(result, "data"):
        return not result.data
    return isinstance(result, list | tuple) and not result


def _reads(w: World, v: str) -> list[tuple[str, Callable[[], t.Any]]]:
    s, runs, nodes = w.storage, LogStoreAPIWorkflowRunRepository(), LogStoreAPIWorkflowNodeExecutionRepository()
    day = (START - timedelta(days=1), START + timedelta(days=1))
    return [
        ("runs page tenant", lambda: runs.get_paginated_workflow_runs(v, s.app, "app-run")),
        ("runs page app", lambda: runs.get_paginated_workflow_runs(s.tenant, v, "app-run")),
        ("runs page trigger", lambda: runs.get_paginated_workflow_runs(s.tenant, s.app, v)),
        ("runs page status", lambda: runs.get_paginated_workflow_runs(s.tenant, s.app, "app-run", status=v)),
        ("run by id", lambda: runs.get_workflow_run_by_id(s.tenant, s.app, v)),
        ("run by id tenant", lambda: runs.get_workflow_run_by_id(v, s.app, w.run_id)),
        ("run by id app", lambda: runs.get_workflow_run_by_id(s.tenant, v, w.run_id)),
        ("run by id and tenant", lambda: runs.get_workflow_run_by_id_and_tenant_id(v, w.run_id)),
        ("run without tenant", lambda: runs.get_workflow_run_by_id_without_tenant(v)),
        ("counts tenant", lambda: runs.get_workflow_runs_count(v, s.app, "app-run")),
        ("counts status", lambda: runs.get_workflow_runs_count(s.tenant, s.app, "app-run", status=v)),
        ("daily runs app", lambda: runs.get_daily_runs_statistics(s.tenant, v, "app-run", *day)),
        ("daily tokens trigger", lambda: runs.get_daily_token_cost_statistics(s.tenant, s.app, v, *day)),
        ("expired runs tenant", lambda: runs.get_expired_runs_batch(v, datetime(2100, 1, 1))),
        ("cleanup refs tenant", lambda: runs.get_cleanup_refs_batch_by_time_range(*day, None, 10, tenant_ids=[v])),
        ("last execution node", lambda: nodes.get_node_last_execution(s.tenant, s.app, "workflow-1", v)),
        ("last execution tenant", lambda: nodes.get_node_last_execution(v, s.app, "workflow-1", "node-1")),
        ("executions of run", lambda: nodes.get_executions_by_workflow_run(s.tenant, s.app, v)),
        ("executions app", lambda: nodes.get_executions_by_workflow_run(s.tenant, v, w.run_id)),
        ("execution by id", lambda: nodes.get_execution_by_id(v, s.tenant)),
        ("execution by id tenant", lambda: nodes.get_execution_by_id(w.node_id, v)),
        (
            "snapshots workflow",
            lambda: nodes.get_execution_snapshots_by_workflow_run(s.tenant, s.app, v, "x", w.run_id),
        ),
        ("message refs", lambda: runs.get_message_refs(app_id=v, workflow_run_ids=[v])),
    ]


def _deletes(w: World, v: str) -> list[tuple[str, Callable[[], t.Any]]]:
    s, runs, nodes = w.storage, LogStoreAPIWorkflowRunRepository(), LogStoreAPIWorkflowNodeExecutionRepository()
    return [
        ("delete runs by ids", lambda: runs.delete_runs_by_ids([v])),
        ("delete runs by app tenant", lambda: runs.delete_runs_by_app(v, s.app)),
        ("delete runs by app app", lambda: runs.delete_runs_by_app(s.tenant, v)),
        ("delete related by ids", lambda: runs.delete_runs_with_related_by_ids([v])),
        ("delete executions by ids", lambda: nodes.delete_executions_by_ids([v])),
        ("delete executions by app", lambda: nodes.delete_executions_by_app(s.tenant, v)),
        ("delete expired executions", lambda: nodes.delete_expired_executions(v, datetime(2100, 1, 1))),
    ]


def test_hostile_values_in_reads_and_deletes(world: World) -> None:
    unclean: list[str] = []
    for value in CORPUS:
        for name, call in [*_reads(world, value), *_deletes(world, value)]:
            if value == "" and "status" in name:
                continue  # Dify: an empty status is "any status", not an owner

            try:
                result = call()
            except ValueError:
                continue  # refused (a ValueError names what is wrong) — never a wider selection
            except Exception as exc:
                unclean.append(f"{name} with {value[:20]!r}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            if not _empty(result):
                unclean.append(f"{name} with {value[:20]!r} returned {str(result)[:120]}")
    assert unclean == []
    # Nothing of the owner was touched by any hostile delete.
    s = world.storage
    assert LogStoreAPIWorkflowRunRepository().get_workflow_run_by_id(s.tenant, s.app, world.run_id) is not None
    assert [n.id for n in LogStoreAPIWorkflowNodeExecutionRepository().get_executions_by_workflow_run(
        s.tenant, s.app, world.run_id)] == [world.node_id]  # fmt: skip


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "x" * 300, "UTC\x00", "../../etc/passwd"])
def test_unknown_time_zones_are_refused_by_name(world: World, timezone: str) -> None:
    s = world.storage
    with pytest.raises(ValueError, match="timezone"):
        LogStoreAPIWorkflowRunRepository().get_daily_runs_statistics(
            s.tenant, s.app, "app-run", START - timedelta(days=1), START + timedelta(days=1), timezone
        )


@pytest.mark.parametrize(
    ("update", "field"),
    [({"id": ""}, "id"), ({"id": "   "}, "id"), ({"index": "seven"}, "index"), ({"node_id": ""}, "node_id")],
)
def test_node_saves_with_a_bad_identity_are_refused_naming_the_field(
    world: World, update: dict[str, t.Any], field: str
) -> None:
    bad = node(new_id(), world.run_id).model_copy(update=update)
    with pytest.raises(RecordRejectedError, match=rf"workflow_node_execution\.{field}\b"):
        world.storage.node_writer().save(bad)


def test_run_saves_with_a_bad_identity_are_refused_naming_the_field(world: World) -> None:
    with pytest.raises(RecordRejectedError, match=r"workflow_execution\.id_"):
        world.storage.run_writer().save(run("").model_copy(update={"id_": ""}))
    assert uuid.UUID(world.run_id)
