"""``refresh=wait_for`` and ``index.gc_deletes``: the timing semantics of writes, through the real client."""

from __future__ import annotations

import threading
import typing as t

import pytest
from elasticsearch import BadRequestError, ConflictError, Elasticsearch, helpers

from flask_difylogstore.pipeline.lifecycle import wait_until
from flask_difylogstore.testing.es import LocalElasticsearchServer
from tests.testing import es_fixtures

es_server = es_fixtures.es_server
es = es_fixtures.es
index_name = es_fixtures.index_name


def _in_thread(action: t.Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``action`` (a request that is expected to wait) in a thread; its result lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(action())
        except Exception as exc:  # the connection may close before the answer
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _until_waiting(server: LocalElasticsearchServer, index: str, listeners: int = 1) -> None:
    """Poll (with a deadline) until ``listeners`` requests wait for a refresh of ``index``."""

    def waiting() -> bool:
        with server.cluster.lock:
            store = server.cluster.indices.get(index)
            return store is not None and store.refresh_listeners >= listeners

    if not wait_until(waiting, 10):
        raise AssertionError(f"no request started waiting for a refresh of {index}")


# Reference "?refresh" (docs/reference/docs/refresh.asciidoc): wait_for waits for a refresh, never forces one,
# unless index.max_refresh_listeners requests already wait.
def test_wait_for_waits_for_a_refresh_instead_of_forcing_one(
    es: Elasticsearch, index_name: str, es_server: LocalElasticsearchServer
) -> None:
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "-1"}})
    other = es.options()  # a second connection: the first one is busy waiting
    thread, outcome = _in_thread(
        lambda: es.options().index(index=index_name, id="1", document={"a": 1}, refresh="wait_for")
    )
    _until_waiting(es_server, index_name)
    assert not outcome  # still waiting ...
    assert other.count(index=index_name)["count"] == 0  # ... and the write was not made searchable by it
    other.indices.refresh(index=index_name)
    thread.join(10)
    assert outcome and "forced_refresh" not in t.cast(t.Any, outcome[0])
    assert es.count(index=index_name)["count"] == 1


def test_wait_for_returns_with_the_periodic_refresh(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "300ms"}})
    ok, errors = helpers.bulk(
        es.options(request_timeout=10),
        ({"_index": index_name, "_id": str(n), "n": n} for n in range(50)),
        refresh="wait_for",
    )
    assert (ok, errors) == (50, [])
    assert es.count(index=index_name)["count"] == 50


def test_refresh_true_elsewhere_releases_waiting_requests(
    es: Elasticsearch, index_name: str, es_server: LocalElasticsearchServer
) -> None:
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "-1"}})
    thread, outcome = _in_thread(
        lambda: es.options().index(index=index_name, id="1", document={"a": 1}, refresh="wait_for")
    )
    _until_waiting(es_server, index_name)
    assert not outcome
    es.options().index(index=index_name, id="2", document={"a": 2}, refresh=True)
    thread.join(10)
    assert outcome and not isinstance(outcome[0], Exception)
    assert es.count(index=index_name)["count"] == 2


def test_listener_limit_forces_a_refresh(
    es: Elasticsearch, index_name: str, es_server: LocalElasticsearchServer
) -> None:
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "-1", "max_refresh_listeners": 1}})
    thread, first = _in_thread(
        lambda: dict(es.options().index(index=index_name, id="1", document={"a": 1}, refresh="wait_for"))
    )
    _until_waiting(es_server, index_name)  # the first request now holds the only listener slot
    assert not first
    body = es.index(index=index_name, id="2", document={"a": 2}, refresh="wait_for")
    assert body["forced_refresh"] is True
    thread.join(10)
    assert first and "forced_refresh" not in t.cast(t.Any, first[0])  # released by the forced refresh
    assert es.count(index=index_name)["count"] == 2


def test_wait_for_without_changes_returns_at_once(es: Elasticsearch, index_name: str) -> None:
    # with refresh_interval -1 a request that waited would never return (the client would time out)
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "-1"}})
    es.index(index=index_name, id="1", document={"a": 1}, version=5, version_type="external", refresh=True)
    ok, errors = helpers.bulk(
        es.options(request_timeout=10),
        [{"_index": index_name, "_id": "1", "_version": 4, "_version_type": "external", "a": 0}],
        refresh="wait_for",
        raise_on_error=False,
    )
    assert ok == 0 and t.cast(t.Any, errors)[0]["index"]["status"] == 409


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
        thread, outcome = _in_thread(lambda: client.index(index="waits", id="1", document={"a": 1}, refresh="wait_for"))
        _until_waiting(server, "waits")
        server.stop()
        thread.join(10)
        assert outcome  # answered (or the connection closed) instead of hanging


def test_deleted_versions_are_remembered_for_gc_deletes(
    es: Elasticsearch, index_name: str, es_server: LocalElasticsearchServer
) -> None:
    # Reference "Index API" > versioning / index.gc_deletes: a delete's version is kept for gc_deletes
    es.indices.create(index=index_name, settings={"index": {"gc_deletes": "300ms"}})
    external = {"version_type": "external"}
    es.index(index=index_name, id="1", document={"a": 1}, version=5, **external)  # type: ignore[arg-type]
    es.delete(index=index_name, id="1", version=6, **external)  # type: ignore[arg-type]
    with pytest.raises(ConflictError):  # a late, older write cannot bring the document back ...
        es.index(index=index_name, id="1", document={"a": 0}, version=4, **external)  # type: ignore[arg-type]
    with es_server.cluster.lock:  # ... until gc_deletes has passed (the delete's clock moved back)
        es_server.cluster.indices[index_name].deleted_at["1"] -= 0.5
    created = es.index(index=index_name, id="1", document={"a": 0}, version=4, **external)  # type: ignore[arg-type]
    assert created["result"] == "created"


def test_gc_deletes_defaults_to_a_minute(
    es: Elasticsearch, index_name: str, es_server: LocalElasticsearchServer
) -> None:
    external: dict[str, t.Any] = {"version_type": "external"}
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
