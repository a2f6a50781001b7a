"""``CORE_WORKFLOW_NODE_EXECUTION_REPOSITORY``: the engine saves node executions here and reads them back."""

from __future__ import annotations

import hashlib
import typing as t

from flask_difylogstore import conversions, payloads
from flask_difylogstore.backends.base import Direction, Filter, RecordQuery
from flask_difylogstore.dify.enums import WorkflowNodeExecutionStatus, WorkflowNodeExecutionTriggeredFrom
from flask_difylogstore.records import LogRecord, RecordKind, default_clock
from flask_difylogstore.repositories._context import StateMixin, creator_of, enum_value, scope, tenant_of
from flask_difylogstore.repositories._reads import Reader
from flask_difylogstore.repositories.dual import report_write_failure
from flask_difylogstore.repositories.dual_merge import merge_entities
from flask_difylogstore.repositories.dual_read import cutover_of, relational_sessions, report_read_failure
from flask_difylogstore.repositories.relational_classes import control_rows_required, core_repository
from flask_difylogstore.schemas import schema
from flask_difylogstore.state import LogStoreState


class _Stored(t.NamedTuple):
    """What was last written for one payload column: text, whether it was cut, digest of the full value."""

    text: str | None
    truncated: bool
    digest: str | None


_NOTHING_STORED = _Stored(None, False, None)


def _digest(text: str) -> str:
    """Digest of a full payload, to tell whether it changed since the last save.

    Fed to blake2b in pieces that keep the GIL (hashlib releases it for inputs over 2 KiB; the
    saving thread would then wait to win it back from a busy writer thread).
    """
    raw = text.encode("utf-8")
    hasher = hashlib.blake2b(digest_size=16)
    view = memoryview(raw)
    for start in range(0, len(raw), _DIGEST_PIECE):
        hasher.update(view[start : start + _DIGEST_PIECE])
    return hasher.hexdigest()


_DIGEST_PIECE = 2047


def order_from_config(
    order_config: t.Any, kind: RecordKind = RecordKind.NODE_EXECUTION
) -> tuple[tuple[str, Direction], ...]:
    """Dify's ``OrderConfig`` as ``order_by``; unknown fields are ignored, as the SQL repository does."""
    if order_config is None or not getattr(order_config, "order_by", None):
        return (("created_at", "asc"), ("index", "asc"))
    direction: Direction = "desc" if getattr(order_config, "order_direction", None) == "desc" else "asc"
    fields = schema(kind).fields
    order = tuple((name, direction) for name in order_config.order_by if name in fields)
    return order or (("created_at", "asc"), ("index", "asc"))


def full_payloads(reader: Reader, records: t.Sequence[LogRecord], tenant_id: str | None) -> dict[str, dict[str, str]]:
    """Full payload texts of the truncated columns of ``records``: node id -> type -> JSON text."""
    ids = [r.id for r in records if conversions.truncated_types(r.data)]
    if not ids:
        return {}
    result: dict[str, dict[str, str]] = {}
    for start in range(0, len(ids), 200):
        query = RecordQuery(
            RecordKind.PAYLOAD,
            scope(tenant_id),
            filters=(Filter("node_execution_id", "in", ids[start : start + 200]),),
            order_by=(("id", "asc"),),
            limit=None,
        )
        for (node_id, type_), text in payloads.assemble_payloads(reader.search_all(query)).items():
            result.setdefault(node_id, {})[type_] = text
    return result


class LogStoreWorkflowNodeExecutionRepository(StateMixin):
    """Full snapshots per save; large payloads truncated as Dify does, with the full value kept aside.

    Implements both contract lines: S2 (``save``, ``save_execution_data``, ``get_by_workflow_run``)
    and S3 (``save_synchronously``, ``get_by_workflow_execution``, ``get_max_index``; also used as
    both writer and query when Dify's S3 factory builds a third-party class).
    """

    def __init__(
        self,
        session_factory: t.Any = None,
        user: t.Any = None,
        app_id: str | None = None,
        triggered_from: t.Any = None,
        tenant_id: str | None = None,
        **extra: t.Any,
    ) -> None:
        if triggered_from is None:
            raise ValueError("triggered_from is required for node execution repositories")
        self._session_factory = session_factory
        self._user = user
        self._tenant_id = str(tenant_id) if tenant_id else tenant_of(user)
        self._app_id = app_id
        self._triggered_from_raw = triggered_from
        role, creator = creator_of(user)
        self._owner = conversions.Owner(self._tenant_id, app_id, enum_value(triggered_from), role, creator)
        # S4 factories pass Dify's uploader for offloaded payloads; the relational writer needs it.
        self._upload_file = extra.get("upload_file")
        self._stored: dict[str, dict[str, _Stored]] = {}
        self._relational: t.Any = None
        self._truncator: tuple[t.Any, payloads.Truncator] | None = None

    # -- writes ---------------------------------------------------------------------------------

    def save(self, execution: t.Any) -> None:
        """Snapshot status, timing, metadata and whatever payloads the entity carries."""
        state = self.state
        self._persist(execution, state, load_missing=False)
        self._dual_write("save", execution, state)

    def save_execution_data(self, execution: t.Any) -> None:
        """Snapshot with new payloads; a payload that is ``None`` keeps its stored value."""
        state = self.state
        self._persist(execution, state, load_missing=True)
        self._dual_write("save_execution_data", execution, state)

    def save_synchronously(self, execution: t.Any) -> None:
        """A save that is durable when it returns.

        On the newest Dify line this is the relational *caller row* Agent participant allocation reads
        (``workflow_node_executions``), written through Dify's SQL repository before the log store
        sees the node; its failure propagates. Elsewhere the record is durable once spooled, and this
        process reads it back at once (read-your-writes), so nothing waits on the log store.
        """
        state = self.state
        if control_rows_required():
            self._relational_repository().save_synchronously(execution)
            self._persist(execution, state, load_missing=False)
            return
        self._persist(execution, state, load_missing=False)
        self._dual_write("save_synchronously", execution, state)

    def _truncator_for(self, state: LogStoreState) -> payloads.Truncator:
        """The truncator of the state's settings, built once per settings object (not per save)."""
        settings = state.settings
        cached = self._truncator
        if cached is None or cached[0] is not settings:
            cached = self._truncator = (settings, payloads.Truncator(payloads.TruncationLimits.from_settings(settings)))
        return cached[1]

    def _persist(self, execution: t.Any, state: LogStoreState, *, load_missing: bool) -> None:
        execution_id = execution.id
        previous = self._stored.get(execution_id)
        if previous is None and load_missing and any(getattr(execution, n) is None for n in conversions.PAYLOAD_TYPES):
            previous = self._load_stored(execution_id)
        truncator = self._truncator_for(state)
        encoded: dict[str, payloads.EncodedPayload] = {}
        stored: dict[str, _Stored] = {}
        offloaded: list[tuple[str, str]] = []
        for name in conversions.PAYLOAD_TYPES:
            value = getattr(execution, name)
            old = previous.get(name) if previous else None
            if value is None:
                kept = old or _NOTHING_STORED
                # A kept truncated column stays flagged; its full value is already stored.
                encoded[name] = payloads.EncodedPayload(kept.text, None, "" if kept.truncated else None)
                stored[name] = kept
                continue
            enc = payloads.encode_payload(value, truncator)
            if enc.full_text is None:
                encoded[name] = enc
                stored[name] = _Stored(enc.text, False, None)
                continue
            digest = _digest(enc.full_text)
            if old is None or old.digest != digest:
                offloaded.append((name, enc.full_text))
            setter = getattr(execution, f"set_truncated_{name}", None)
            if setter is not None:
                setter(enc.truncated_value)
            encoded[name] = enc
            stored[name] = _Stored(enc.text, enc.truncated, digest)
        data = conversions.node_data(execution, self._owner, encoded)
        version = default_clock.version_for(RecordKind.NODE_EXECUTION, data["status"])
        records = [LogRecord(RecordKind.NODE_EXECUTION, data, version)]
        for name, full_text in offloaded:
            records.extend(
                payloads.payload_records(
                    full_text,
                    node_execution_id=execution_id,
                    payload_type=name,
                    tenant_id=self._tenant_id,
                    app_id=self._app_id or "",
                    created_at=data["created_at"],
                    log_version=version,
                )
            )
        state.require_sink().submit(records)
        self._stored[execution_id] = stored

    def _load_stored(self, execution_id: str) -> dict[str, _Stored] | None:
        record = self._reader().get_one(RecordKind.NODE_EXECUTION, execution_id, scope(self._tenant_id))
        if record is None:
            return None
        return {
            name: _Stored(record.data.get(name), bool(record.data.get(f"{name}_truncated")), None)
            for name in conversions.PAYLOAD_TYPES
        }

    def _relational_repository(self) -> t.Any:
        """The relational node writer for this owner, built once (Dify's own inside Dify)."""
        if self._relational is None:
            from flask_difylogstore.repositories.relational import resolve_session_factory

            self._relational = core_repository(
                "workflow_node_execution",
                session_factory=self._session_factory or resolve_session_factory(None),
                user=self._user,
                app_id=self._app_id,
                triggered_from=self._triggered_from_raw,
                tenant_id=self._tenant_id,
                upload_file=self._upload_file,
            )
        return self._relational

    def _dual_write(self, method: str, execution: t.Any, state: LogStoreState) -> None:
        if not state.settings.dual_write_enabled:
            return
        try:
            repository = self._relational_repository()
            # Dify lines without save_synchronously save synchronously anyway.
            (getattr(repository, method, None) or repository.save)(execution)
        except Exception as exc:
            context = {"id": execution.id, "run": execution.workflow_execution_id, "tenant_id": self._tenant_id}
            report_write_failure(state, f"{method} of node execution", exc, **context)

    # -- reads ----------------------------------------------------------------------------------

    def _reader(self) -> Reader:
        return Reader(self.backend, self.state.sink)

    def get_db_records_by_workflow_run(
        self,
        workflow_run_id: str,
        order_config: t.Any = None,
        triggered_from: t.Any = WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN,
    ) -> list[LogRecord]:
        """The latest record of every node execution of a run, in ``order_config`` order."""
        query = RecordQuery(
            RecordKind.NODE_EXECUTION,
            scope(self._tenant_id, self._app_id),
            filters=(
                Filter("workflow_run_id", "eq", workflow_run_id),
                Filter("triggered_from", "eq", enum_value(triggered_from)),
            ),
            order_by=order_from_config(order_config),
            limit=None,
        )
        return self._reader().search_all(query)

    def get_by_workflow_run(
        self,
        workflow_run_id: str,
        order_config: t.Any = None,
        triggered_from: t.Any = WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN,
    ) -> t.Sequence[t.Any]:
        """Every node execution of a run as domain entities, full payloads restored (no row cap)."""
        records = self.get_db_records_by_workflow_run(workflow_run_id, order_config, triggered_from)
        full = full_payloads(self._reader(), records, self._tenant_id)
        entities = [conversions.node_entity(r.data, full.get(r.id)) for r in records]
        relational = self._dual_read_list(workflow_run_id, order_config, triggered_from)
        if not relational:
            return entities
        order = order_from_config(order_config)
        return merge_entities(
            entities,
            relational,
            cutover_of(self.state.settings),
            key=lambda e: (tuple(_sortable(getattr(e, name, None)) for name, _ in order), str(e.id)),
            reverse=order[0][1] == "desc",
        )

    def _dual_read_list(self, workflow_run_id: str, order_config: t.Any, triggered_from: t.Any) -> list[t.Any]:
        """The relational repository's entities of the run (its own payload loading), when dual read is on."""
        if not self.state.settings.dual_read_enabled:
            return []
        try:
            if self._session_factory is None and relational_sessions(None) is None:
                return []
            repository = self._relational_repository()
            if enum_value(triggered_from) != WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN.value:
                return list(repository.get_by_workflow_run(workflow_run_id, order_config, triggered_from))
            read = getattr(repository, "get_by_workflow_execution", None) or repository.get_by_workflow_run
            return list(read(workflow_run_id, order_config))
        except Exception as exc:
            report_read_failure(self.state, "node executions of a run", exc)
            return []

    def get_by_workflow_execution(self, workflow_execution_id: str, order_config: t.Any = None) -> t.Sequence[t.Any]:
        """The run's node executions the engine resumes from: every one but the paused ones.

        A paused node runs again when the workflow resumes, so Dify's persistence layer must not
        reload it (Dify's storage contract: "excludes paused nodes and respects ordering").
        """
        paused = WorkflowNodeExecutionStatus.PAUSED.value
        entities = self.get_by_workflow_run(workflow_execution_id, order_config)
        return [e for e in entities if enum_value(e.status) != paused]

    def get_max_index(self, workflow_execution_id: str) -> int:
        """Highest ``index`` among the run's node executions in either store (0 when there are none)."""
        query = RecordQuery(
            RecordKind.NODE_EXECUTION,
            scope(self._tenant_id, self._app_id),
            filters=(Filter("workflow_run_id", "eq", workflow_execution_id),),
            order_by=(("index", "desc"),),
            limit=1,
            fields=("index",),
        )
        page = self._reader().search(query)
        found = int(page.records[0].data.get("index") or 0) if page.records else 0
        return max(found, self._dual_read_max_index(workflow_execution_id))

    def _dual_read_max_index(self, workflow_execution_id: str) -> int:
        if not self.state.settings.dual_read_enabled:
            return 0
        try:
            if self._session_factory is None and relational_sessions(None) is None:
                return 0
            repository = self._relational_repository()
            if hasattr(repository, "get_max_index"):
                return int(repository.get_max_index(workflow_execution_id) or 0)
        except Exception as exc:
            report_read_failure(self.state, "get_max_index", exc)
            return 0
        entities = self._dual_read_list(workflow_execution_id, None, WorkflowNodeExecutionTriggeredFrom.WORKFLOW_RUN)
        return max((int(e.index or 0) for e in entities), default=0)


def _sortable(value: t.Any) -> tuple[bool, t.Any]:
    """Sort key that puts ``None`` last (ascending), as PostgreSQL does."""
    return (value is None, "" if value is None else getattr(value, "value", value))
