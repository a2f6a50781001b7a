"""Fault injection through the public ``server.faults`` API, observed with the real client."""

from __future__ import annotations

import typing as t

import elasticsearch
import pytest
from elasticsearch import ApiError, Elasticsearch, helpers

from flask_difylogstore.testing.es import LocalElasticsearchServer
from tests.testing import es_fixtures

es_server = es_fixtures.es_server
es = es_fixtures.es
index_name = es_fixtures.index_name


def test_fail_next_429_is_rejected_execution(es: Elasticsearch, es_server: LocalElasticsearchServer) -> None:
    es_server.faults.fail_next(1, status=429)
    with pytest.raises(ApiError) as exc:
        es.info()
    assert exc.value.status_code == 429 and exc.value.error == "es_rejected_execution_exception"
    assert es.info()["tagline"]


def test_client_retries_through_transient_failures(es_server: LocalElasticsearchServer) -> None:
    client = es_server.client(max_retries=3, retry_on_status=(429, 503))
    es_server.faults.fail_next(2, status=503)
    assert client.info()["tagline"]
    es_server.faults.fail_next(1, status=500)
    with pytest.raises(ApiError) as exc:
        client.info()
    assert exc.value.status_code == 500
    client.close()


def test_partial_bulk_failures_by_count(
    es: Elasticsearch, es_server: LocalElasticsearchServer, index_name: str
) -> None:
    es_server.faults.fail_bulk_items(count=3)
    ok, errors = helpers.bulk(
        es,
        ({"_index": index_name, "_id": str(i), "n": i} for i in range(10)),
        raise_on_error=False,
        refresh=True,
    )
    errors = t.cast(list[dict[str, t.Any]], errors)
    assert ok == 7 and len(errors) == 3
    assert {e["index"]["status"] for e in errors} == {429}
    assert errors[0]["index"]["error"]["type"] == "es_rejected_execution_exception"
    assert es.count(index=index_name)["count"] == 7


def test_partial_bulk_failures_by_fraction_and_helper_retry(
    es: Elasticsearch, es_server: LocalElasticsearchServer, index_name: str
) -> None:
    es_server.faults.fail_bulk_items(fraction=0.25)
    res = es.bulk(operations=[x for i in range(8) for x in ({"index": {"_index": index_name}}, {"n": i})])
    assert res["errors"] is True
    assert sum(1 for item in res["items"] if item["index"]["status"] == 429) == 2
    es_server.faults.clear()
    es_server.faults.fail_bulk_items(count=2)
    results = list(
        helpers.streaming_bulk(
            es,
            ({"_index": f"{index_name}-r", "_id": str(i), "n": i} for i in range(5)),
            max_retries=2,
            initial_backoff=0.01,
            raise_on_error=False,
        )
    )
    assert all(ok for ok, _ in results)
    es.indices.refresh(index=f"{index_name}-r")
    assert es.count(index=f"{index_name}-r")["count"] == 5


def test_delay_triggers_client_timeout(es: Elasticsearch, es_server: LocalElasticsearchServer) -> None:
    es_server.faults.delay(0.5)
    with pytest.raises(elasticsearch.ConnectionTimeout):
        es.options(request_timeout=0.1).info()
    es_server.faults.delay(0)
    assert es.info()["tagline"]  # a new request is answered at once, whatever the timed-out one does


def test_refused_connections(es: Elasticsearch, es_server: LocalElasticsearchServer) -> None:
    assert es.ping()
    es_server.faults.refuse_connections()
    assert not es.ping()
    with pytest.raises(elasticsearch.ConnectionError):
        es.info()
    es_server.faults.refuse_connections(False)
    assert es.info()["tagline"]
