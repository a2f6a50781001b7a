"""Writes, versioning, deletion and isolation of the Elasticsearch backend over the real client and HTTP."""

from __future__ import annotations

import random

import pytest

from flask_difylogstore.backends.base import AggregateQuery, Filter, Metric, RecordQuery, Scope
from flask_difylogstore.backends.elasticsearch import ElasticsearchBackend
from flask_difylogstore.records import LogRecord, RecordKind
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.testing.es import LocalElasticsearchServer
from tests.backends import es_fixtures
from tests.backends.es_fixtures import store
from tests.backends.records import RecordFactory

es_backend = es_fixtures.es_backend
es_prefix = es_fixtures.es_prefix
es_server = es_fixtures.es_server
es_settings = es_fixtures.es_settings
records = es_fixtures.records


def _statuses(backend: ElasticsearchBackend, scope: Scope | None = None) -> dict[str, str]:
    page = backend.search(RecordQuery(RecordKind.RUN, scope or Scope("t1"), limit=None))
    return {r.id: r.data["status"] for r in page.records}


def test_shuffled_and_duplicated_snapshots_converge_to_the_latest(
    es_backend: ElasticsearchBackend, records: RecordFactory
) -> None:
    history: list[LogRecord] = []
    final: dict[str, LogRecord] = {}
    for n in range(40):
        for status in ("running", "running", "succeeded"):
            history.append(records.run(id=f"r{n}", status=status, total_tokens=len(history)))
        final[f"r{n}"] = history[-1]
        # A late non-final snapshot (a lagging clock) must not overshadow the final one.
        history.append(records.run(id=f"r{n}", status="running", total_tokens=-1))
    rng = random.Random(7)
    deliveries = history + rng.sample(history, 50)  # duplicates, as retries produce
    rng.shuffle(deliveries)
    written = stale = 0
    for start in range(0, len(deliveries), 23):
        result = es_backend.write(deliveries[start : start + 23])
        assert result.ok
        written, stale = written + result.written, stale + result.stale
    assert written + stale == len(deliveries)
    es_backend.refresh()
    got = es_backend.get_latest(RecordKind.RUN, list(final), Scope("t1"))
    assert {k: (v.data, v.log_version) for k, v in got.items()} == {
        k: (v.data, v.log_version) for k, v in final.items()
    }
    assert es_backend.count(RecordKind.RUN, Scope("t1")) == 40


def test_rewriting_the_same_snapshot_is_a_stale_no_op(es_backend: ElasticsearchBackend, records: RecordFactory) -> None:
    record = records.run(id="same")
    assert es_backend.write([record]).written == 1
    again = es_backend.write([record, record])
    assert (again.written, again.stale, again.failed) == (0, 2, [])


def test_deleted_entities_stay_hidden_and_are_not_resurrected(
    es_backend: ElasticsearchBackend, records: RecordFactory
) -> None:
    old = records.run(id="gone", status="running")
    newer = records.run(id="gone", status="succeeded")
    keep = records.run(id="kept", status="succeeded")
    store(es_backend, [newer, keep])
    assert es_backend.delete(RecordKind.RUN, Scope("t1"), [Filter("id", "eq", "gone")]) == 1
    assert set(_statuses(es_backend)) == {"kept"}
    # A stale snapshot arriving after the delete (a retried batch) is refused, long after gc_deletes.
    late = es_backend.write([old, newer])
    assert (late.written, late.stale) == (0, 2)
    es_backend.refresh()
    assert set(_statuses(es_backend)) == {"kept"}
    assert es_backend.get_latest(RecordKind.RUN, ["gone", "kept"], Scope("t1")).keys() == {"kept"}
    assert es_backend.count(RecordKind.RUN, Scope("t1")) == 1
    assert es_backend.delete(RecordKind.RUN, Scope("t1"), [Filter("id", "eq", "gone")]) == 0


def test_tenant_and_app_scoping(es_backend: ElasticsearchBackend, records: RecordFactory) -> None:
    store(
        es_backend,
        [
            records.run(id="a", tenant="t1", app="a1"),
            records.run(id="b", tenant="t1", app="a2"),
            records.run(id="c", tenant="t2", app="a1"),
        ],
    )
    assert set(_statuses(es_backend, Scope("t1"))) == {"a", "b"}
    assert set(_statuses(es_backend, Scope("t1", "a1"))) == {"a"}
    assert set(_statuses(es_backend, Scope("t2"))) == {"c"}
    assert es_backend.get_latest(RecordKind.RUN, ["a", "b", "c"], Scope("t2")).keys() == {"c"}
    assert es_backend.get_latest(RecordKind.RUN, ["a", "b", "c"], Scope.unscoped()).keys() == {"a", "b", "c"}
    assert es_backend.delete(RecordKind.RUN, Scope("t2")) == 1
    assert set(_statuses(es_backend, Scope("t1"))) == {"a", "b"}
    hostile = Scope('t1" OR 1=1 --')
    assert _statuses(es_backend, hostile) == {}


def test_one_bad_record_never_fails_the_batch(es_backend: ElasticsearchBackend, records: RecordFactory) -> None:
    good = records.run(id="good")
    unknown_field = records.run(id="bad-field", not_a_column="x")
    bad_type = records.run(id="bad-type", total_tokens="many")
    result = es_backend.write([good, unknown_field, bad_type])
    assert result.written == 1
    assert {r.id for r, _, retryable in result.failed if not retryable} == {"bad-field", "bad-type"}
    assert all("strict" in reason or "parse" in reason for _, reason, _ in result.failed)


def test_rejected_items_are_reported_retryable(
    es_backend: ElasticsearchBackend, es_server: LocalElasticsearchServer, records: RecordFactory
) -> None:
    batch = [records.run(id=f"r{n}") for n in range(4)]
    es_server.faults.fail_bulk_items(count=2, status=429)
    result = es_backend.write(batch)
    assert result.written == 2
    assert [(r.id, retryable) for r, _, retryable in result.failed] == [("r0", True), ("r1", True)]
    again = es_backend.write([r for r, _, _ in result.failed])
    assert again.written == 2 and again.ok


def test_oversized_bulk_request_is_split(
    es_backend: ElasticsearchBackend, es_server: LocalElasticsearchServer, records: RecordFactory
) -> None:
    es_backend.write([records.run(id="warm-up")])  # the partition exists, so the next request is the bulk
    es_server.faults.fail_next(1, status=413)
    result = es_backend.write([records.run(id=f"r{n}") for n in range(6)])
    assert (result.written, result.failed) == (6, [])


def test_unreachable_cluster_fails_every_record_retryably(
    es_settings: LogStoreSettings, es_server: LocalElasticsearchServer, records: RecordFactory
) -> None:
    backend = ElasticsearchBackend.from_settings(es_settings)
    es_server.faults.refuse_connections()
    try:
        ping = backend.ping()
        assert not ping.ok and ping.error
        result = backend.write([records.run(id="x"), records.run(id="y")])
        assert result.written == 0
        assert [retryable for _, _, retryable in result.failed] == [True, True]
    finally:
        es_server.faults.clear()
        backend.close()


def test_fields_projection_keeps_owner_fields(es_backend: ElasticsearchBackend, records: RecordFactory) -> None:
    store(es_backend, [records.run(id="p", status="failed", total_tokens=3)])
    page = es_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"), fields=("status",)))
    (record,) = page.records
    assert record.data["status"] == "failed"
    assert "inputs" not in record.data and "total_tokens" not in record.data
    assert {"id", "tenant_id", "app_id", "created_at"} <= set(record.data)


def test_keyword_search_is_a_case_insensitive_substring(
    es_backend: ElasticsearchBackend, records: RecordFactory
) -> None:
    store(
        es_backend,
        [
            records.run(id="json", inputs='{"query": "What is the WEATHER in Paris?"}'),
            records.run(id="wild", outputs='{"text": "100% *done*? yes"}'),
            records.run(id="other", inputs='{"query": "nothing"}'),
        ],
    )

    def found(keyword: str) -> set[str]:
        return {r.id for r in es_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"), keyword=keyword)).records}

    assert found("weather in par") == {"json"}
    assert found('"query": "what') == {"json"}
    assert found("eathe") == {"json"}
    assert found("zzz") == set()
    assert found("*") <= {"wild"}  # a literal star, never "match everything"
    assert found("*done*?") == {"wild"}  # wildcard characters in the keyword are literal


@pytest.mark.parametrize("field", ["graph", "execution_metadata"])
def test_unindexable_payload_filters_are_refused_clearly(es_backend: ElasticsearchBackend, field: str) -> None:
    kind = RecordKind.NODE_EXECUTION if field == "execution_metadata" else RecordKind.RUN
    with pytest.raises(ValueError, match=field):
        es_backend.search(RecordQuery(kind, Scope("t1"), filters=(Filter(field, "eq", "{}"),)))
    assert es_backend.search(RecordQuery(kind, Scope("t1"), filters=(Filter(field, "not_null"),))).records == []


def test_reads_of_a_family_without_indices_are_empty(es_backend: ElasticsearchBackend) -> None:
    scope = Scope("t1")
    assert es_backend.search(RecordQuery(RecordKind.APP_LOG, scope)).records == []
    assert es_backend.count(RecordKind.APP_LOG, scope) == 0
    assert es_backend.get_latest(RecordKind.APP_LOG, ["x"], scope) == {}
    assert es_backend.delete(RecordKind.APP_LOG, scope) == 0


def test_microsecond_ordering(es_backend: ElasticsearchBackend, records: RecordFactory) -> None:
    """Dify's timestamps carry microseconds; rows within one millisecond keep their order."""
    store(
        es_backend,
        [
            records.run(id="z-first", offset_s=0.000100),
            records.run(id="a-second", offset_s=0.000900),
        ],
    )
    page = es_backend.search(RecordQuery(RecordKind.RUN, Scope("t1"), order_by=(("created_at", "asc"),)))
    assert [r.id for r in page.records] == ["z-first", "a-second"]
    later = es_backend.search(
        RecordQuery(
            RecordKind.RUN,
            Scope("t1"),
            order_by=(("created_at", "asc"),),
            after=(page.records[0].data["created_at"], "z-first"),
        )
    )
    assert [r.id for r in later.records] == ["a-second"]


def test_aggregates_see_this_process_writes_at_once(es_backend: ElasticsearchBackend, records: RecordFactory) -> None:
    """Aggregations cannot merge pending records, so they see acknowledged writes without waiting."""
    query = AggregateQuery(RecordKind.RUN, Scope("t1"), (Metric("count"),))
    assert es_backend.aggregate(query) == [{"count": 0}]
    assert es_backend.write([records.run(id="fresh")]).ok  # no refresh: the index refreshes every second
    assert es_backend.aggregate(query) == [{"count": 1}]
