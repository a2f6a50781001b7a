"""Dify-shaped historic data in the relational database: runs, node executions, app logs, offloads."""

from __future__ import annotations

import io
import random
import typing as t
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
import sqlalchemy as sa

from flask_difylogstore.dify.models import (
    UploadFile,
    WorkflowAppLog,
    WorkflowNodeExecutionModel,
    WorkflowNodeExecutionOffload,
    WorkflowRun,
)
from flask_difylogstore.repositories.relational import LocalFileStore

START = datetime(2026, 1, 28, 22, 0, 0)
NODE_TYPES = ("start", "llm", "code", "tool", "end")


@dataclass
class Seeded:
    tenants: list[str]
    apps: dict[str, str]  # app -> tenant
    run_ids: list[str] = field(default_factory=list)
    node_ids: list[str] = field(default_factory=list)
    app_log_ids: list[str] = field(default_factory=list)
    offloaded: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # node -> [(type, key)]
    payloads: dict[tuple[str, str], str] = field(default_factory=dict)  # (node, type) -> full text


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


_SPECIAL = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: t.Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    text = str(value)
    return text.translate(_SPECIAL) if "\\" in text or "\n" in text or "\t" in text or "\r" in text else text


def _insert(conn: sa.Connection, table: t.Any, rows: list[dict[str, t.Any]]) -> None:
    """Bulk insert: ``COPY`` on PostgreSQL (seeding 50k rows in about a second), executemany elsewhere."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(sa.insert(table), rows)
        return
    columns = [c.name for c in table.columns if c.name in rows[0]]
    buffer = io.StringIO("".join("\t".join(_text(row[c]) for c in columns) + "\n" for row in rows))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    quoted = ", ".join(f'"{c}"' for c in columns)
    cursor.copy_expert(f"COPY {table.name} ({quoted}) FROM STDIN", buffer)


def seed(
    engine: sa.Engine,
    *,
    runs: int,
    nodes_per_run: int,
    store: LocalFileStore | None = None,
    offload_every: int = 0,
    big_payload_bytes: int = 0,
    tenants: int = 2,
    apps_per_tenant: int = 2,
    start: datetime = START,
    step: timedelta = timedelta(seconds=37),
    seed_value: int = 7,
) -> Seeded:
    """Insert ``runs`` runs (each with an app log and ``nodes_per_run`` node executions)."""
    rng = random.Random(seed_value)
    tenant_ids = [_uuid(rng) for _ in range(tenants)]
    apps = {_uuid(rng): tenant for tenant in tenant_ids for _ in range(apps_per_tenant)}
    app_ids = list(apps)
    out = Seeded(tenant_ids, apps)
    run_rows, node_rows, log_rows, offload_rows, file_rows = [], [], [], [], []
    node_counter = 0
    for i in range(runs):
        app_id = app_ids[i % len(app_ids)]
        tenant_id = apps[app_id]
        run_id = _uuid(rng)
        created = start + step * i
        final = i % 10 != 0
        status = ("succeeded" if i % 7 else "failed") if final else "running"
        finished = created + timedelta(seconds=3, microseconds=i) if final else None
        workflow_id = _uuid(rng)
        user = _uuid(rng)
        run_rows.append(
            {
                "id": run_id,
                "tenant_id": tenant_id,
                "app_id": app_id,
                "workflow_id": workflow_id,
                "type": "workflow",
                "triggered_from": "app-run",
                "version": "v1",
                "graph": orjson.dumps({"nodes": [{"id": f"n{j}"} for j in range(nodes_per_run)]}).decode(),
                "inputs": orjson.dumps({"query": f"question {i} ünïcode"}).decode(),
                "status": status,
                "outputs": orjson.dumps({"answer": f"answer {i}"}).decode() if final else "{}",
                "error": "boom" if status == "failed" else None,
                "elapsed_time": 3.0 + i / 1000 if final else 0.0,
                "total_tokens": i * 3,
                "total_steps": nodes_per_run,
                "created_by_role": "account",
                "created_by": user,
                "created_at": created,
                "finished_at": finished,
                "exceptions_count": 0,
            }
        )
        out.run_ids.append(run_id)
        log_id = _uuid(rng)
        log_rows.append(
            {
                "id": log_id,
                "tenant_id": tenant_id,
                "app_id": app_id,
                "workflow_id": workflow_id,
                "workflow_run_id": run_id,
                "created_from": "web-app",
                "created_by_role": "end_user",
                "created_by": user,
                "created_at": created + timedelta(milliseconds=5),
            }
        )
        out.app_log_ids.append(log_id)
        for j in range(nodes_per_run):
            node_id = _uuid(rng)
            node_counter += 1
            node_created = created + timedelta(milliseconds=10 * j)
            node_final = final or j < nodes_per_run - 1
            node_rows.append(
                {
                    "id": node_id,
                    "tenant_id": tenant_id,
                    "app_id": app_id,
                    "workflow_id": workflow_id,
                    "triggered_from": "workflow-run",
                    "workflow_run_id": run_id,
                    "index": j + 1,
                    "predecessor_node_id": f"n{j - 1}" if j else None,
                    "node_execution_id": _uuid(rng),
                    "node_id": f"n{j}",
                    "node_type": NODE_TYPES[j % len(NODE_TYPES)],
                    "title": f"Node {j}",
                    "inputs": orjson.dumps({"x": j, "text": "a" * (j * 7)}).decode(),
                    "process_data": None if j % 3 else orjson.dumps({"step": j}).decode(),
                    "outputs": orjson.dumps({"y": j * 2}).decode() if node_final else None,
                    "status": "succeeded" if node_final else "running",
                    "error": None,
                    "elapsed_time": 0.25 * j,
                    "execution_metadata": orjson.dumps({"total_tokens": j}).decode(),
                    "created_at": node_created,
                    "created_by_role": "account",
                    "created_by": user,
                    "finished_at": node_created + timedelta(milliseconds=8) if node_final else None,
                }
            )
            out.node_ids.append(node_id)
            if store is not None and offload_every and node_counter % offload_every == 0:
                types = ["outputs"] if node_counter % (2 * offload_every) else ["inputs", "outputs"]
                for payload_type in types:
                    size = big_payload_bytes if big_payload_bytes and node_counter == offload_every else 3000
                    full = orjson.dumps({"blob": "z" * size, "node": node_id}, option=orjson.OPT_SORT_KEYS).decode()
                    file_id = _uuid(rng)
                    key = f"upload_files/{tenant_id}/{file_id}.json"
                    store.save(key, full.encode())
                    file_rows.append(
                        {
                            "id": file_id,
                            "tenant_id": tenant_id,
                            "storage_type": "opendal",
                            "key": key,
                            "name": f"node_execution_{node_id}_{payload_type}.json",
                            "size": len(full),
                            "extension": "json",
                            "mime_type": "application/json",
                            "created_by_role": "account",
                            "created_by": user,
                            "created_at": node_created,
                            "used": False,
                            "source_url": "",
                        }
                    )
                    offload_rows.append(
                        {
                            "id": _uuid(rng),
                            "created_at": node_created,
                            "tenant_id": tenant_id,
                            "app_id": app_id,
                            "node_execution_id": node_id,
                            "type": payload_type,
                            "file_id": file_id,
                        }
                    )
                    node_rows[-1][payload_type] = orjson.dumps({"blob": "z" * 10 + "..."}).decode()
                    out.offloaded.setdefault(node_id, []).append((payload_type, key))
                    out.payloads[(node_id, payload_type)] = full
    with engine.begin() as conn:
        _insert(conn, WorkflowRun.__table__, run_rows)
        _insert(conn, WorkflowNodeExecutionModel.__table__, node_rows)
        _insert(conn, WorkflowAppLog.__table__, log_rows)
        _insert(conn, UploadFile.__table__, file_rows)
        _insert(conn, WorkflowNodeExecutionOffload.__table__, offload_rows)
    return out
