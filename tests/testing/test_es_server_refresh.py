"""``refresh=wait_for`` and ``index.gc_deletes``: the timing semantics of writes, through the real client."""

from __future__ import annotations

import threading
import time
import typing as t

import pytest
from elasticsearch import BadRequestError, ConflictError, Elasticsearch, helpers

from flask_difylogstore.testing.es import LocalElasticsearchServer
from tests.testing import es_fixtures

es_server = es_fixtures.es_server
es = es_fixtures.es
index_name = es_fixtures.index_name


def _later(seconds: float, action: t.Callable[[], object]) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_wait_for_waits_for_a_refresh_instead_of_forcing_one(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "-1"}})
    other = es.options()  # a second connection: the first one is busy waiting
    seen_before: list[int] = []
    _later(0.2, lambda: seen_before.append(other.count(index=index_name)["count"]))
    refresher = _later(0.4, lambda: other.indices.refresh(index=index_name))
    started = time.monotonic()
    body = es.index(index=index_name, id="1", document={"a": 1}, refresh="wait_for")
    waited = time.monotonic() - started
    refresher.join()
    assert waited >= 0.35, waited  # returned after the explicit refresh, not before
    assert seen_before == [0]  # the write was not made searchable by the request itself
    assert "forced_refresh" not in body
    assert es.count(index=index_name)["count"] == 1


def test_wait_for_returns_with_the_periodic_refresh(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "300ms"}})
    started = time.monotonic()
    ok, errors = helpers.bulk(
        es, ({"_index": index_name, "_id": str(n), "n": n} for n in range(50)), refresh="wait_for"
    )
    assert (ok, errors) == (50, [])
    assert time.monotonic() - started < 2
    assert es.count(index=index_name)["count"] == 50


def test_refresh_true_elsewhere_releases_waiting_requests(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "-1"}})
    other = es.options()
    _later(0.2, lambda: other.index(index=index_name, id="2", document={"a": 2}, refresh=True))
    started = time.monotonic()
    es.index(index=index_name, id="1", document={"a": 1}, refresh="wait_for")
    assert 0.15 <= time.monotonic() - started < 3
    assert es.count(index=index_name)["count"] == 2


def test_listener_limit_forces_a_refresh(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "-1", "max_refresh_listeners": 1}})
    first: list[dict[str, t.Any]] = []
    waiting = threading.Thread(
        target=lambda: first.append(
            dict(es.options().index(index=index_name, id="1", document={"a": 1}, refresh="wait_for"))
        ),
        daemon=True,
    )
    waiting.start()
    time.sleep(0.3)  # the first request now holds the only listener slot
    assert not first
    body = es.index(index=index_name, id="2", document={"a": 2}, refresh="wait_for")
    assert body["forced_refresh"] is True
    waiting.join(3)
    assert first and "forced_refresh" not in first[0]  # released by the forced refresh
    assert es.count(index=index_name)["count"] == 2


def test_wait_for_without_changes_returns_at_once(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "-1"}})
    es.index(index=index_name, id="1", document={"a": 1}, version=5, version_type="external", refresh=True)
    started = time.monotonic()
    ok, errors = helpers.bulk(
        es,
        [{"_index": index_name, "_id": "1", "_version": 4, "_version_type": "external", "a": 0}],
        refresh="wait_for",
        raise_on_error=False,
    )
    assert ok == 0 and errors[0]["index"]["status"] == 409
    assert time.monotonic() - started < 0.5


def test_unknown_refresh_value_is_refused_before_writing(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    with pytest.raises(BadRequestError) as exc:
        es.perform_request(
            "PUT",
            f"/{index_name}/_doc/1",
            params={"refresh": "soon"},
            headers={"content-type": "application/json", "accept": "application/json"},
            body={"a": 1},
        )
    assert exc.value.error == "illegal_argument_exception"
    assert not es.exists(index=index_name, id="1")


def test_by_query_refuses_wait_for(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"a": 1}, refresh=True)
    with pytest.raises(BadRequestError) as exc:
        es.perform_request(
            "POST",
            f"/{index_name}/_delete_by_query",
            params={"refresh": "wait_for"},
            headers={"content-type": "application/json", "accept": "application/json"},
            body={"query": {"match_all": {}}},
        )
    assert exc.value.error == "illegal_argument_exception"


def test_stopping_the_server_releases_waiting_requests() -> None:
    with LocalElasticsearchServer() as server:
        client = server.client(max_retries=0, request_timeout=10)
        client.indices.create(index="waits", settings={"index": {"refresh_interval": "-1"}})
        outcome: list[object] = []

        def write() -> None:
            try:
                outcome.append(client.index(index="waits", id="1", document={"a": 1}, refresh="wait_for"))
            except Exception as exc:  # the connection may close before the answer
                outcome.append(exc)

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        time.sleep(0.2)
        started = time.monotonic()
        server.stop()
        thread.join(5)
        assert outcome and time.monotonic() - started < 5


def test_deleted_versions_are_remembered_for_gc_deletes(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index": {"gc_deletes": "300ms"}})
    external = {"version_type": "external"}
    es.index(index=index_name, id="1", document={"a": 1}, version=5, **external)
    es.delete(index=index_name, id="1", version=6, **external)
    with pytest.raises(ConflictError):  # a late, older write cannot bring the document back ...
        es.index(index=index_name, id="1", document={"a": 0}, version=4, **external)
    time.sleep(0.45)
    # ... until Elasticsearch has forgotten the delete
    assert es.index(index=index_name, id="1", document={"a": 0}, version=4, **external)["result"] == "created"


def test_gc_deletes_defaults_to_a_minute(
    es: Elasticsearch, index_name: str, es_server: LocalElasticsearchServer
) -> None:
    external = {"version_type": "external"}
    es.index(index=index_name, id="1", document={"a": 1}, version=5, **external)
    es.delete(index=index_name, id="1", version=6, **external)
    with es_server.cluster.lock:
        store = es_server.cluster.indices[index_name]
        assert store.gc_deletes == 60.0
        store.deleted_at["1"] -= 59  # just inside the minute
    with pytest.raises(ConflictError):
        es.index(index=index_name, id="1", document={"a": 0}, version=4, **external)
    with es_server.cluster.lock:
        store.deleted_at["1"] -= 2  # past it; the periodic pruning forgets it too
        store.forget_deletes()
        assert "1" not in store.tombstones
    assert es.index(index=index_name, id="1", document={"a": 0}, version=4, **external)["result"] == "created"
