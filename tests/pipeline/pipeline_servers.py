"""The fault harness for the real backends: ``aliyun_sls`` on LocalSLSServer, ``elasticsearch`` on
LocalElasticsearchServer, faults injected by the servers (``server.faults``), records read back
through the backend as a reader would see them.

The backends talk to the servers over HTTP with the real SDK clients; :class:`Recording` only
counts what the pipeline hands to ``write`` (calls, batch sizes, threads) and delegates the rest.
Client-side retries are kept out of the way: the SLS backend's client raises transient failures
at once (no ten one-second sleeps inside a call), the Elasticsearch client runs with
``max_retries=0``; the pipeline is what retries.
"""

from __future__ import annotations

import threading
import typing as t
import uuid
from collections.abc import Sequence

from pipeline_fakes import make_record

from flask_difylogstore.backends.base import LogBackend, RecordQuery, Scope, WriteResult
from flask_difylogstore.records import LogRecord, RecordKind

if t.TYPE_CHECKING:
    from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
    from flask_difylogstore.backends.elasticsearch import ElasticsearchBackend
    from flask_difylogstore.testing.es import LocalElasticsearchServer
    from flask_difylogstore.testing.sls import LocalSLSServer

KINDS = (RecordKind.NODE_EXECUTION, RecordKind.APP_LOG)
TENANT = Scope("tenant-1")


class Recording:
    """A backend seen through: ``write`` calls and batch sizes are counted, everything else delegated."""

    def __init__(self, inner: LogBackend) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.calls = 0
        self.batches: list[int] = []
        self.thread_ids: set[int] = set()

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self.inner, name)

    def write(self, records: Sequence[LogRecord]) -> WriteResult:
        with self.lock:
            self.calls += 1
            self.batches.append(len(records))
            self.thread_ids.add(threading.get_ident())
        return self.inner.write(records)


class ServerHarness:
    """What the fault tests need from a backend; subclasses bind it to one local server."""

    name: str
    inner: t.Any

    def __init__(self) -> None:
        self.backend = t.cast(LogBackend, Recording(self.inner))

    @property
    def recording(self) -> Recording:
        return t.cast(Recording, self.backend)

    @property
    def calls(self) -> int:
        return self.recording.calls

    @property
    def batches(self) -> list[int]:
        return self.recording.batches

    def records(self) -> list[LogRecord]:
        """Every entity of the test tenant as a reader sees it (latest version, no tombstones)."""
        found: list[LogRecord] = []
        for kind in KINDS:
            query = RecordQuery(kind, TENANT, order_by=(("id", "asc"),), limit=None, fields=("id",))
            found.extend(self.inner.search(query).records)
        return found

    def delivered(self) -> set[tuple[str, int]]:
        return {(r.id, r.log_version) for r in self.records()}

    def error_text(self, status: int) -> str:
        return str(status)


class SLSHarness(ServerHarness):
    name = "aliyun_sls"

    def __init__(self, server: LocalSLSServer) -> None:
        from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
        from flask_difylogstore.settings import AliyunSLSSettings

        self.server = server
        server.faults.clear()
        self.settings = AliyunSLSSettings(
            access_key_id=server.access_key_id,
            access_key_secret=server.access_key_secret,  # type: ignore[arg-type]
            endpoint=server.endpoint,
            region="cn-hangzhou",
            project_name=f"pipe-{uuid.uuid4().hex[:12]}",
            check_connectivity_timeout=2.0,
        )
        self.inner: AliyunSLSBackend = AliyunSLSBackend(self.settings)
        self.inner.provision()
        super().__init__()

    def go_down(self) -> None:
        self.server.faults.refuse_connections()

    def come_back(self) -> None:
        self.server.faults.accept_connections()

    def fail_next(self, n: int, status: int = 503) -> None:
        code = "WriteQuotaExceed" if status == 429 else "ServerBusy"
        self.server.faults.fail_next(n, status=status, code=code, message=f"injected {status}", api="PutLogs")

    def error_text(self, status: int) -> str:
        return f"injected {status}"

    def slow(self, seconds: float) -> None:
        self.server.faults.delay(seconds, api="PutLogs")

    def fail_some(self) -> None:
        """PutLogs is all or nothing per logstore: one of the two requests of a mixed batch fails."""
        self.server.faults.fail_next(1, status=503, code="ServerBusy", api="PutLogs")

    def bad_record(self, i: int) -> LogRecord:
        """Dated ten days ahead: SLS would drop its log time, so the backend refuses it alone, for good.

        (An oversized record is no longer one: the write path bounds every field to fit a request.)
        """
        from datetime import UTC, datetime, timedelta

        record = make_record(i)
        record.data["created_at"] = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=10)
        return record

    def raw_count(self) -> int:
        """Stored log lines, every version and every duplicate included (SLS is append-only)."""
        from flask_difylogstore.backends.aliyun_sls.query import Statement

        total = 0
        for kind in KINDS:
            statement = Statement("*", "select count(1) as n", 0, 2**31 - 1)
            rows = self.inner.reader.run(self.inner.logstores[kind], statement)
            total += int(float(rows[0]["n"])) if rows else 0
        return total

    def close(self) -> None:
        self.server.faults.clear()
        client = self.server.client()
        try:
            for logstore in self.inner.logstores.values():
                client.delete_logstore(self.settings.project_name, logstore)
            client.delete_project(self.settings.project_name)
        except Exception:
            pass
        self.inner.close()


class ESHarness(ServerHarness):
    name = "elasticsearch"

    def __init__(self, server: LocalElasticsearchServer) -> None:
        from flask_difylogstore.backends.elasticsearch import ElasticsearchBackend
        from flask_difylogstore.settings import LogStoreSettings

        self.server = server
        server.faults.clear()
        self.prefix = f"pipe{uuid.uuid4().hex[:10]}"
        settings = LogStoreSettings(
            _env_file=None,  # type: ignore[call-arg]
            backend="elasticsearch",
            elasticsearch={
                "hosts": [server.url],
                "index_prefix": self.prefix,
                "max_retries": 0,
                "request_timeout": 5,
                "number_of_replicas": 0,
            },
        )
        self.inner: ElasticsearchBackend = ElasticsearchBackend.from_settings(settings)
        self.inner.provision()
        super().__init__()

    def go_down(self) -> None:
        self.server.faults.refuse_connections(True)

    def come_back(self) -> None:
        self.server.faults.refuse_connections(False)

    def fail_next(self, n: int, status: int = 503) -> None:
        self.server.faults.fail_next(n, status=status)

    def slow(self, seconds: float) -> None:
        self.server.faults.delay(seconds)

    def fail_some(self) -> None:
        """Items of a ``_bulk`` fail (429) while the others of the same request are stored."""
        self.server.faults.fail_bulk_items(count=40)

    def bad_record(self, i: int) -> LogRecord:
        """A value the mapping cannot take: the item fails with a 400, for good."""
        record = make_record(i)
        record.data["index"] = "not-a-number"
        return record

    def records(self) -> list[LogRecord]:
        self.inner.refresh()
        return super().records()

    def raw_count(self) -> int:
        """Documents stored (one per entity: a resent snapshot is a 409, counted as ``stale``)."""
        self.inner.refresh()
        return sum(self.inner.count(kind, TENANT) for kind in KINDS)

    def close(self) -> None:
        self.server.faults.clear()
        client = self.inner.client
        try:
            names = list(client.indices.get(index=f"{self.prefix}-*").body)
            if names:
                client.indices.delete(index=",".join(names))
        except Exception:
            pass
        self.inner.close()


def make_harness(name: str, servers: dict[str, t.Any]) -> t.Any:
    if name == "aliyun_sls":
        return SLSHarness(servers["aliyun_sls"])
    return ESHarness(servers["elasticsearch"])
