"""The relational baseline: Dify's repository contracts over the package's own ORM models.

It writes the way Dify's SQLAlchemy repositories do (one ``merge`` + ``commit`` per save; large
node payloads truncated, the full JSON uploaded as an ``upload_files`` row + storage object and
linked by a ``workflow_node_execution_offload`` row), so it serves as the reference the contract
suite compares the log store against, the baseline benchmarks measure, and the relational side of
dual write / dual read when Dify itself is not present (inside Dify, Dify's own SQLAlchemy
repositories take its place; see :func:`flask_difylogstore.repositories.relational_classes.relational_repositories`).
"""

from __future__ import annotations

import typing as t
import uuid
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload, sessionmaker

from flask_difylogstore import conversions, payloads
from flask_difylogstore.dify.entities import naive_utc_now
from flask_difylogstore.dify.enums import WorkflowNodeExecutionTriggeredFrom
from flask_difylogstore.dify.models import (
    UploadFile,
    WorkflowNodeExecutionModel,
    WorkflowNodeExecutionOffload,
    WorkflowRun,
)
from flask_difylogstore.repositories._context import creator_of, enum_value, tenant_of
from flask_difylogstore.state import get_state


def resolve_session_factory(source: t.Any) -> sessionmaker[Session]:
    """A sessionmaker from a sessionmaker, an Engine, or (``None``) the app's Flask-SQLAlchemy."""
    if isinstance(source, sessionmaker):
        return source
    if isinstance(source, Engine):
        return sessionmaker(bind=source, expire_on_commit=False)
    if source is None:
        from flask import current_app

        db = current_app.extensions.get("sqlalchemy")
        if db is None:
            raise ValueError("no session factory given and the app has no Flask-SQLAlchemy extension")
        return sessionmaker(bind=db.engine, expire_on_commit=False)
    raise ValueError(f"expected a sessionmaker or an Engine, got {type(source).__name__}")


class LocalFileStore:
    """A minimal object store (``save`` / ``load`` / ``delete`` by key) in a local directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"storage key escapes the store: {key!r}")
        return path

    def save(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def load(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def default_storage() -> LocalFileStore:
    """A file store under the current app's instance path."""
    from flask import current_app

    return LocalFileStore(Path(current_app.instance_path) / "difylogstore-files")


class _Core:
    """Constructor handling shared by the two core repositories (same signature as Dify's)."""

    def __init__(
        self,
        session_factory: t.Any = None,
        user: t.Any = None,
        app_id: str | None = None,
        triggered_from: t.Any = None,
        tenant_id: str | None = None,
        *,
        storage: t.Any = None,
        truncator: payloads.Truncator | None = None,
        **extra: t.Any,
    ) -> None:
        self._session_factory = resolve_session_factory(session_factory)
        self._tenant_id = str(tenant_id) if tenant_id else tenant_of(user)
        self._app_id = app_id
        role, creator = creator_of(user)
        self._owner = conversions.Owner(self._tenant_id, app_id, enum_value(triggered_from), role, creator)
        self._storage = storage
        self._truncator = truncator

    def storage(self) -> t.Any:
        if self._storage is None:
            self._storage = default_storage()
        return self._storage

    def truncator(self) -> payloads.Truncator:
        if self._truncator is None:
            try:
                limits = payloads.TruncationLimits.from_settings(get_state().settings)
            except Exception:
                limits = payloads.TruncationLimits()
            self._truncator = payloads.Truncator(limits)
        return self._truncator


class RelationalWorkflowExecutionRepository(_Core):
    """Runs in ``workflow_runs``: ``merge`` + ``commit`` per save."""

    def save(self, execution: t.Any) -> None:
        data = conversions.run_data(execution, self._owner)
        with self._session_factory() as session:
            session.merge(conversions.build_model(WorkflowRun, data))
            session.commit()


def _node_order(order_config: t.Any) -> list[t.Any]:
    if order_config is None or not getattr(order_config, "order_by", None):
        return [
            WorkflowNodeExecutionModel.created_at.asc(),
            WorkflowNodeExecutionModel.index.asc(),
            WorkflowNodeExecutionModel.id.asc(),
        ]
    desc = getattr(order_config, "order_direction", None) == "desc"
    columns = [getattr(WorkflowNodeExecutionModel, name, None) for name in order_config.order_by]
    order = [c.desc() if desc else c.asc() for c in columns if isinstance(c, sa.orm.InstrumentedAttribute)]
    order.append(WorkflowNodeExecutionModel.id.desc() if desc else WorkflowNodeExecutionModel.id.asc())
    return order


def load_full_payloads(rows: Sequence[WorkflowNodeExecutionModel], storage: t.Any) -> dict[str, dict[str, str]]:
    """node id -> type -> full JSON text, read from storage through each row's offload rows."""
    result: dict[str, dict[str, str]] = {}
    for row in rows:
        for offload in row.offload_data:
            if offload.file is not None:
                text = storage.load(offload.file.key).decode("utf-8")
                result.setdefault(row.id, {})[str(offload.type_)] = text
    return result


class RelationalWorkflowNodeExecutionRepository(_Core):
    """Node executions with Dify's truncation + offload (``upload_files`` + storage object)."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        if self._owner.triggered_from is None:
            raise ValueError("triggered_from is required for node execution repositories")

    def _row_data(self, execution: t.Any) -> dict[str, t.Any]:
        encoded = {
            name: payloads.EncodedPayload(payloads.dumps(getattr(execution, name), sort_keys=True))
            for name in conversions.PAYLOAD_TYPES
            if getattr(execution, name) is not None
        }
        data = conversions.node_data(execution, self._owner, encoded)
        for name in conversions.PAYLOAD_TYPES:
            if getattr(execution, name) is None:
                del data[name]  # None leaves the stored column unchanged
        return data

    def save(self, execution: t.Any) -> None:
        """Upsert by id; payloads present are written as they are (Dify's ``save``)."""
        data = self._row_data(execution)
        with self._session_factory() as session:
            row = session.get(WorkflowNodeExecutionModel, execution.id)
            if row is None:
                session.add(conversions.build_model(WorkflowNodeExecutionModel, data))
            else:
                for name, key in conversions.model_columns(WorkflowNodeExecutionModel).items():
                    if name in data:
                        setattr(row, key, data[name])
            session.commit()

    save_synchronously = save

    def save_execution_data(self, execution: t.Any) -> None:
        """Write payloads that are not ``None``, truncating and offloading large ones."""
        with self._session_factory() as session:
            row = session.scalar(
                sa.select(WorkflowNodeExecutionModel)
                .options(selectinload(WorkflowNodeExecutionModel.offload_data))
                .where(WorkflowNodeExecutionModel.id == execution.id)
            )
            if row is None:
                row = conversions.build_model(WorkflowNodeExecutionModel, self._row_data(execution))
                row.offload_data = []
                session.add(row)
            for name in conversions.PAYLOAD_TYPES:
                value = getattr(execution, name)
                if value is None:
                    continue
                encoded = payloads.encode_payload(value, self.truncator())
                setattr(row, name, encoded.text)
                setter = getattr(execution, f"set_truncated_{name}", None)
                if setter is not None:
                    setter(encoded.truncated_value)
                for old in [o for o in row.offload_data if o.type_ == name]:
                    row.offload_data.remove(old)
                    session.delete(old)
                if encoded.full_text is not None:
                    row.offload_data.append(self._offload(session, execution.id, name, encoded.full_text))
            session.commit()

    def _offload(self, session: Session, execution_id: str, name: str, full_text: str) -> WorkflowNodeExecutionOffload:
        content = full_text.encode("utf-8")
        file_id = str(uuid.uuid4())
        key = f"workflow_offload/{self._tenant_id}/{file_id}.json"
        self.storage().save(key, content)
        session.add(
            UploadFile(
                id=file_id,
                tenant_id=self._tenant_id,
                storage_type="local",
                key=key,
                name=f"node_execution_{execution_id}_{name}.json",
                size=len(content),
                extension="json",
                mime_type="application/json",
                created_by_role=self._owner.created_by_role,
                created_by=self._owner.created_by or self._tenant_id,
                created_at=naive_utc_now(),
                used=False,
            )
        )
        return WorkflowNodeExecutionOffload(
            id=str(uuid.uuid4()),
            created_at=naive_utc_now(),
            tenant_id=self._tenant_id,
            app_id=self._app_id or "",
            node_execution_id=execution_id,
            type_=name,
            file_id=file_id,
        )

    def get_db_models_by_workflow_run(
        self,
        workflow_run_id: str,
        order_config: t.Any = None,
        triggered_from: t.Any = WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN,
    ) -> Sequence[WorkflowNodeExecutionModel]:
        stmt = (
            sa.select(WorkflowNodeExecutionModel)
            .options(
                selectinload(WorkflowNodeExecutionModel.offload_data).selectinload(WorkflowNodeExecutionOffload.file)
            )
            .where(
                WorkflowNodeExecutionModel.workflow_run_id == workflow_run_id,
                WorkflowNodeExecutionModel.tenant_id == self._tenant_id,
                WorkflowNodeExecutionModel.triggered_from == enum_value(triggered_from),
            )
        )
        if self._app_id:
            stmt = stmt.where(WorkflowNodeExecutionModel.app_id == self._app_id)
        with self._session_factory() as session:
            return list(session.scalars(stmt.order_by(*_node_order(order_config))))

    def get_by_workflow_run(
        self,
        workflow_run_id: str,
        order_config: t.Any = None,
        triggered_from: t.Any = WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN,
    ) -> Sequence[t.Any]:
        rows = self.get_db_models_by_workflow_run(workflow_run_id, order_config, triggered_from)
        full = load_full_payloads(rows, self.storage())
        return [conversions.node_entity(conversions.node_data_from_model(r), full.get(r.id)) for r in rows]

    def get_by_workflow_execution(self, workflow_execution_id: str, order_config: t.Any = None) -> Sequence[t.Any]:
        return self.get_by_workflow_run(workflow_execution_id, order_config)

    def get_max_index(self, workflow_execution_id: str) -> int:
        stmt = sa.select(sa.func.max(WorkflowNodeExecutionModel.index)).where(
            WorkflowNodeExecutionModel.tenant_id == self._tenant_id,
            WorkflowNodeExecutionModel.workflow_run_id == workflow_execution_id,
        )
        if self._app_id:
            stmt = stmt.where(WorkflowNodeExecutionModel.app_id == self._app_id)
        with self._session_factory() as session:
            return int(session.scalar(stmt) or 0)


class SessionRepository:
    """Base of the API-side repositories: a session factory from ``session_maker`` (or the app's)."""

    def __init__(self, session_maker: t.Any = None, **extra: t.Any) -> None:
        self._session_factory = resolve_session_factory(session_maker)

    def _scalars(self, stmt: t.Any) -> list[t.Any]:
        with self._session_factory() as session:
            return list(session.scalars(stmt))

    def _delete(self, model: t.Any, *conditions: t.Any) -> int:
        with self._session_factory() as session:
            result = session.execute(sa.delete(model).where(*conditions))
            session.commit()
            return int(getattr(result, "rowcount", 0) or 0)


_LAZY = {
    "RelationalAPIWorkflowRunRepository": "relational_api",
    "RelationalAPIWorkflowNodeExecutionRepository": "relational_api_node",
    "RelationalWorkflowAppLogRepository": "relational_app_log",
}


def __getattr__(name: str) -> t.Any:
    """The API-side baseline classes live in sibling modules; they are re-exported here lazily."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{_LAZY[name]}"), name)
    raise AttributeError(name)
