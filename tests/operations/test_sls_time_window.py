"""SLS: a record whose log time SLS would drop is refused with the reason, never counted as written.

Follows Alibaba Cloud SLS's documented PutLogs behaviour (log time must lie within the logstore's
retention and at most a day ahead; other logs are discarded while the request succeeds) and the
pipeline's rule (docs/operations.md, "Dead letters"): a record refused for good is dead-lettered.
"""

from __future__ import annotations

import typing as t
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flask_difylogstore.backends.base import Scope
from flask_difylogstore.pipeline import SpoolingPipeline, read_dead_letters
from flask_difylogstore.records import LogRecord, RecordKind, VersionClock
from flask_difylogstore.settings import AliyunSLSSettings, PipelineSettings

if t.TYPE_CHECKING:
    from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend
    from flask_difylogstore.testing.sls import LocalSLSServer

CLOCK = VersionClock(tag=5)


def run(created_at: datetime) -> LogRecord:
    data = {
        "id": str(uuid.uuid4()),
        "tenant_id": "t1",
        "app_id": "a1",
        "workflow_id": "wf",
        "triggered_from": "app-run",
        "type": "workflow",
        "version": "draft",
        "status": "succeeded",
        "created_by_role": "account",
        "created_by": "u1",
        "created_at": created_at,
    }
    return LogRecord(RecordKind.RUN, data, CLOCK.version_for(RecordKind.RUN, "succeeded"))


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture
def settings(local_sls_server: LocalSLSServer) -> AliyunSLSSettings:
    return AliyunSLSSettings(
        access_key_id=local_sls_server.access_key_id,
        access_key_secret=local_sls_server.access_key_secret,  # type: ignore[arg-type]
        endpoint=local_sls_server.endpoint,
        region="cn-hangzhou",
        project_name=f"p-{uuid.uuid4().hex[:12]}",
        logstore_ttl=30,
    )


@pytest.fixture
def backend(settings: AliyunSLSSettings) -> t.Iterator[AliyunSLSBackend]:
    from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend

    built = AliyunSLSBackend(settings)
    built.provision()
    yield built
    built.close()


def test_far_dated_records_are_refused_with_the_reason(backend: AliyunSLSBackend) -> None:
    ahead, old = run(now() + timedelta(days=3)), run(now() - timedelta(days=45))
    fine, recent_future = run(now()), run(now() + timedelta(hours=2))
    result = backend.write([ahead, old, fine, recent_future])
    assert result.written == 2
    reasons = {record.id: (reason, retryable) for record, reason, retryable in result.failed}
    assert set(reasons) == {ahead.id, old.id}
    assert "days ahead of now" in reasons[ahead.id][0] and reasons[ahead.id][1] is False
    assert "retention of 30 days (ALIYUN_SLS_LOGSTORE_TTL)" in reasons[old.id][0]
    stored = backend.get_latest(RecordKind.RUN, [fine.id, recent_future.id], Scope("t1", "a1"))
    assert set(stored) == {fine.id, recent_future.id}  # what is counted as written can be read


def test_an_existing_logstore_keeps_its_own_retention(settings: AliyunSLSSettings) -> None:
    from flask_difylogstore.backends.aliyun_sls import AliyunSLSBackend

    first = AliyunSLSBackend(settings)
    first.provision()  # creates the logstores with a 30-day retention
    first.close()
    later = AliyunSLSBackend(settings.model_copy(update={"logstore_ttl": 365}))
    later.provision()  # keeps them as they are
    try:
        result = later.write([run(now() - timedelta(days=100))])
        assert result.written == 0 and "retention of 30 days" in result.failed[0][1]
    finally:
        later.close()


def test_pipeline_dead_letters_them_and_counts_nothing_as_written(backend: AliyunSLSBackend, tmp_path: Path) -> None:
    settings = PipelineSettings(flush_interval_ms=5, max_retry_delay_s=0.2)
    pipeline = SpoolingPipeline(backend, settings, tmp_path / "spool")
    pipeline.start()
    try:
        pipeline.submit([run(now() + timedelta(days=400)), run(now())])
        assert pipeline.flush(30)
        stats = pipeline.stats()
        assert stats["written"] == 1 and stats["dead_lettered"] == 1
        (letter,) = read_dead_letters(tmp_path / "spool")
        assert "SLS drops logs more than a day in the future" in letter["reason"]
    finally:
        pipeline.close(2)
