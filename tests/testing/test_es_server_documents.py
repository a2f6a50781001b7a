"""Documents: CRUD, versioning, bulk, refresh visibility and mappings, through the real client."""

from __future__ import annotations

import time
import typing as t

import pytest
from elasticsearch import BadRequestError, ConflictError, Elasticsearch, NotFoundError, helpers

from flask_difylogstore.testing.es import LocalElasticsearchServer
from tests.testing import es_fixtures

es_server = es_fixtures.es_server
es = es_fixtures.es
index_name = es_fixtures.index_name


def test_index_get_delete(es: Elasticsearch, index_name: str) -> None:
    created = es.index(index=index_name, id="1", document={"a": 1})
    assert created["result"] == "created" and created["_version"] == 1 and created["_seq_no"] == 0
    updated = es.index(index=index_name, id="1", document={"a": 2})
    assert updated["result"] == "updated" and updated["_version"] == 2 and updated["_seq_no"] == 1
    got = es.get(index=index_name, id="1")
    assert got["_source"] == {"a": 2} and got["_version"] == 2
    assert es.exists(index=index_name, id="1")
    assert es.get_source(index=index_name, id="1") == {"a": 2}
    auto = es.index(index=index_name, document={"a": 3})
    assert len(auto["_id"]) == 20
    assert es.delete(index=index_name, id="1")["result"] == "deleted"
    with pytest.raises(NotFoundError):
        es.get(index=index_name, id="1")
    with pytest.raises(NotFoundError):
        es.delete(index=index_name, id="1")
    assert not es.exists(index=index_name, id="1")
    with pytest.raises(NotFoundError) as exc:
        es.get(index="missing-index", id="1")
    assert exc.value.error == "index_not_found_exception"


def test_create_conflicts(es: Elasticsearch, index_name: str) -> None:
    es.create(index=index_name, id="x", document={"a": 1})
    with pytest.raises(ConflictError) as exc:
        es.create(index=index_name, id="x", document={"a": 2})
    assert exc.value.error == "version_conflict_engine_exception"
    with pytest.raises(ConflictError):
        es.index(index=index_name, id="x", document={"a": 2}, op_type="create")


def test_get_source_filtering(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"a": 1, "b": {"c": 2, "d": 3}})
    assert es.get(index=index_name, id="1", source_includes=["b.c"])["_source"] == {"b": {"c": 2}}
    assert es.get(index=index_name, id="1", source_excludes=["b"])["_source"] == {"a": 1}
    assert "_source" not in es.get(index=index_name, id="1", source=False)


def test_update_doc_and_upsert(es: Elasticsearch, index_name: str) -> None:
    with pytest.raises(NotFoundError) as exc:
        es.update(index=index_name, id="1", doc={"a": 1})
    assert exc.value.error in ("document_missing_exception", "index_not_found_exception")
    assert es.update(index=index_name, id="1", doc={"a": 1, "o": {"x": 1}}, doc_as_upsert=True)["result"] == "created"
    res = es.update(index=index_name, id="1", doc={"b": 2, "o": {"y": 2}})
    assert res["result"] == "updated" and res["_version"] == 2
    assert es.get(index=index_name, id="1")["_source"] == {"a": 1, "b": 2, "o": {"x": 1, "y": 2}}
    assert es.update(index=index_name, id="1", doc={"b": 2})["result"] == "noop"
    es.update(index=index_name, id="1", script={"source": "ctx._source.a = params.v", "params": {"v": 9}})
    assert es.get(index=index_name, id="1")["_source"]["a"] == 9
    es.update(index=index_name, id="2", doc={"z": 1}, upsert={"z": 0, "fresh": True})
    assert es.get(index=index_name, id="2")["_source"] == {"z": 0, "fresh": True}


def test_external_versioning_out_of_order(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="run", document={"status": "running"}, version=5, version_type="external")
    es.index(index=index_name, id="run", document={"status": "succeeded"}, version=9, version_type="external")
    with pytest.raises(ConflictError) as exc:
        es.index(index=index_name, id="run", document={"status": "running"}, version=7, version_type="external")
    assert exc.value.error == "version_conflict_engine_exception"
    with pytest.raises(ConflictError):
        es.index(index=index_name, id="run", document={"status": "x"}, version=9, version_type="external")
    es.index(index=index_name, id="run", document={"status": "again"}, version=9, version_type="external_gte")
    got = es.get(index=index_name, id="run")
    assert got["_version"] == 9 and got["_source"] == {"status": "again"}
    es.delete(index=index_name, id="run", version=12, version_type="external")
    with pytest.raises(ConflictError):
        es.index(index=index_name, id="run", document={"status": "late"}, version=10, version_type="external")


def test_bulk_external_versions_stale_items_are_conflicts(es: Elasticsearch, index_name: str) -> None:
    actions = [
        {
            "_index": index_name,
            "_id": "r1",
            "_version": 3,
            "_version_type": "external",
            "_source": {"s": "c"},
        },
        {
            "_index": index_name,
            "_id": "r1",
            "_version": 1,
            "_version_type": "external",
            "_source": {"s": "a"},
        },
        {
            "_index": index_name,
            "_id": "r1",
            "_version": 2,
            "_version_type": "external",
            "_source": {"s": "b"},
        },
    ]
    ok, failed = helpers.bulk(es, actions, raise_on_error=False, refresh="wait_for")
    errors = t.cast(list[dict[str, t.Any]], failed)
    assert ok == 1
    assert [e["index"]["status"] for e in errors] == [409, 409]
    assert errors[0]["index"]["error"]["type"] == "version_conflict_engine_exception"
    assert es.get(index=index_name, id="r1")["_source"] == {"s": "c"}


def test_if_seq_no_concurrency(es: Elasticsearch, index_name: str) -> None:
    first = es.index(index=index_name, id="1", document={"a": 1})
    es.index(index=index_name, id="1", document={"a": 2}, if_seq_no=first["_seq_no"], if_primary_term=1)
    with pytest.raises(ConflictError):
        es.index(index=index_name, id="1", document={"a": 3}, if_seq_no=first["_seq_no"], if_primary_term=1)


def test_bulk_all_operations(es: Elasticsearch, index_name: str) -> None:
    body: list[t.Any] = [
        {"index": {"_index": index_name, "_id": "1"}},
        {"a": 1},
        {"create": {"_index": index_name, "_id": "2"}},
        {"a": 2},
        {"create": {"_index": index_name, "_id": "2"}},
        {"a": 3},
        {"update": {"_index": index_name, "_id": "1"}},
        {"doc": {"b": 1}},
        {"update": {"_index": index_name, "_id": "9"}},
        {"doc": {"b": 1}},
        {"delete": {"_index": index_name, "_id": "2"}},
        {"update": {"_index": index_name, "_id": "3"}},
        {"doc": {"c": 1}, "doc_as_upsert": True},
    ]
    res = es.bulk(operations=body, refresh=True)
    assert res["errors"] is True
    statuses = [next(iter(item.values()))["status"] for item in res["items"]]
    assert statuses == [201, 201, 409, 200, 404, 200, 201]
    assert res["items"][4]["update"]["error"]["type"] == "document_missing_exception"
    assert es.count(index=index_name)["count"] == 2
    assert es.get(index=index_name, id="1")["_source"] == {"a": 1, "b": 1}


def test_streaming_bulk_and_mget(es: Elasticsearch, index_name: str) -> None:
    docs = ({"_index": index_name, "_id": str(i), "n": i} for i in range(500))
    results = list(helpers.streaming_bulk(es, docs, chunk_size=100))
    assert all(ok for ok, _ in results) and len(results) == 500
    got = es.mget(index=index_name, ids=["1", "499", "nope"])["docs"]
    assert [d["found"] for d in got] == [True, True, False]
    assert got[1]["_source"] == {"n": 499}
    other = es.mget(docs=[{"_index": index_name, "_id": "2"}, {"_index": "missing-idx", "_id": "1"}])["docs"]
    assert other[0]["_source"] == {"n": 2}
    assert other[1]["error"]["type"] == "index_not_found_exception"


def test_refresh_visibility(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "-1"}})
    es.index(index=index_name, id="1", document={"a": 1})
    assert es.get(index=index_name, id="1")["found"]
    assert es.count(index=index_name)["count"] == 0
    assert es.search(index=index_name)["hits"]["total"]["value"] == 0
    es.indices.refresh(index=index_name)
    assert es.count(index=index_name)["count"] == 1
    es.index(index=index_name, id="2", document={"a": 2}, refresh=True)
    assert es.count(index=index_name)["count"] == 2
    es.delete(index=index_name, id="1")
    assert es.count(index=index_name)["count"] == 2
    es.index(index=index_name, id="3", document={"a": 3}, refresh=True)
    assert es.count(index=index_name)["count"] == 2


def test_periodic_refresh(es: Elasticsearch, index_name: str, es_server: LocalElasticsearchServer) -> None:
    # Invisible until the interval has passed since the last refresh (an unrefreshed document is not
    # counted: test above): checked on the refresh rule, as on a slow machine the background refresher
    # may already have run by the time a request counts.
    es.indices.create(index=index_name, settings={"index": {"refresh_interval": "200ms"}})
    es.index(index=index_name, id="1", document={"a": 1})
    with es_server.cluster.lock:
        store = es_server.cluster.indices[index_name]
        assert store.refresh_interval == 0.2
        if store.pending:
            assert not store.due(1.0, store.last_refresh + 0.19)
            assert store.due(1.0, store.last_refresh + 0.21)
    deadline = time.monotonic() + 10
    while es.count(index=index_name)["count"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert es.count(index=index_name)["count"] == 1


def test_default_refresh_interval_is_one_second(
    es: Elasticsearch, index_name: str, es_server: LocalElasticsearchServer
) -> None:
    # Reference "index.refresh_interval": defaults to 1s; checked on the refresh rule, not on the wall clock
    assert LocalElasticsearchServer().cluster.default_refresh == 1.0
    es.index(index=index_name, id="1", document={"a": 1})
    with es_server.cluster.lock:
        store = es_server.cluster.indices[index_name]
        assert store.refresh_interval is None  # the index follows the server's default
        if store.pending:  # not refreshed yet by the background refresher
            assert not store.due(1.0, store.last_refresh + 0.9)
            assert store.due(1.0, store.last_refresh + 1.01)
    deadline = time.monotonic() + 10
    while es.count(index=index_name)["count"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert es.count(index=index_name)["count"] == 1


def test_strict_mapping_rejects_unknown_fields(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(
        index=index_name,
        mappings={
            "dynamic": "strict",
            "properties": {
                "a": {"type": "keyword"},
                "loose": {"type": "object", "dynamic": True},
                "quiet": {"type": "object", "dynamic": False},
            },
        },
    )
    with pytest.raises(BadRequestError) as exc:
        es.index(index=index_name, id="1", document={"a": "x", "b": 1})
    assert exc.value.error == "strict_dynamic_mapping_exception"
    assert "dynamic introduction of [b]" in str(exc.value)
    es.index(index=index_name, id="2", document={"a": "x", "loose": {"n": 1}, "quiet": {"m": 1}}, refresh=True)
    props = es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert props["loose"]["properties"] == {"n": {"type": "long"}}
    assert "properties" not in props["quiet"] or not props["quiet"]["properties"]
    assert es.get(index=index_name, id="2")["_source"]["quiet"] == {"m": 1}
    assert es.count(index=index_name, query={"term": {"quiet.m": 1}})["count"] == 0
    res = es.bulk(operations=[{"index": {"_index": index_name}}, {"zzz": 1}])
    assert res["items"][0]["index"]["error"]["type"] == "strict_dynamic_mapping_exception"


def test_dynamic_mapping_inference(es: Elasticsearch, index_name: str) -> None:
    es.index(
        index=index_name,
        id="1",
        document={
            "s": "hello",
            "i": 3,
            "f": 1.5,
            "b": True,
            "d": "2024-05-01T10:00:00Z",
            "o": {"k": "v"},
            "l": [1, 2],
        },
    )
    props = es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert props["s"] == {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    assert props["i"] == {"type": "long"} and props["f"] == {"type": "float"} and props["b"] == {"type": "boolean"}
    assert props["d"] == {"type": "date"} and props["l"] == {"type": "long"}
    assert props["o"]["properties"]["k"]["type"] == "text"


def test_coercion_and_parsing_errors(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(
        index=index_name,
        mappings={
            "properties": {
                "n": {"type": "integer"},
                "flag": {"type": "boolean"},
                "when": {"type": "date", "format": "yyyy-MM-dd"},
                "k": {"type": "keyword", "ignore_above": 5},
            }
        },
    )
    es.index(
        index=index_name,
        id="1",
        document={"n": "42", "flag": "true", "when": "2024-01-02", "k": 7},
        refresh=True,
    )
    assert es.count(index=index_name, query={"term": {"n": 42}})["count"] == 1
    assert es.count(index=index_name, query={"term": {"k": "7"}})["count"] == 1
    for bad in ({"n": "abc"}, {"n": 2**40}, {"flag": "yes"}, {"when": "2024/01/02"}):
        with pytest.raises(BadRequestError) as exc:
            es.index(index=index_name, document=bad)
        assert exc.value.error in ("document_parsing_exception", "mapper_parsing_exception")
    es.index(index=index_name, id="long", document={"k": "too long value"}, refresh=True)
    assert es.count(index=index_name, query={"term": {"k": "too long value"}})["count"] == 0
    assert es.get(index=index_name, id="long")["_source"]["k"] == "too long value"


def test_total_fields_limit(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index.mapping.total_fields.limit": 5})
    es.index(index=index_name, document={f"f{i}": i for i in range(5)})
    with pytest.raises(BadRequestError) as exc:
        es.index(index=index_name, document={"another": 1})
    assert "Limit of total fields [5]" in str(exc.value)
    assert len(es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]) == 5


def test_disabled_object_and_flattened(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(
        index=index_name,
        mappings={
            "properties": {
                "raw": {"type": "object", "enabled": False},
                "labels": {"type": "flattened"},
            }
        },
    )
    es.index(
        index=index_name,
        id="1",
        document={
            "raw": {"anything": [1, "x", {"deep": True}]},
            "labels": {"env": "prod", "team": {"name": "core"}},
        },
        refresh=True,
    )
    assert es.get(index=index_name, id="1")["_source"]["raw"]["anything"][2] == {"deep": True}
    assert es.count(index=index_name, query={"term": {"labels.env": "prod"}})["count"] == 1
    assert es.count(index=index_name, query={"term": {"labels.team.name": "core"}})["count"] == 1
    assert es.count(index=index_name, query={"term": {"labels": "core"}})["count"] == 1
    assert es.count(index=index_name, query={"term": {"labels.env": "core"}})["count"] == 0
    props = es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert set(props) == {"raw", "labels"}


def test_date_formats(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(
        index=index_name,
        mappings={"properties": {"ts": {"type": "date", "format": "strict_date_optional_time||epoch_millis"}}},
    )
    es.index(index=index_name, id="1", document={"ts": 1704067200000})
    es.index(index=index_name, id="2", document={"ts": "2024-01-01T00:00:00.000+08:00"})
    es.index(index=index_name, id="3", document={"ts": "2024-01-01"}, refresh=True)
    res = es.search(index=index_name, sort=[{"ts": "asc"}])
    assert [h["sort"][0] for h in res["hits"]["hits"]] == [1704038400000, 1704067200000, 1704067200000]


def test_server_fixture_is_shared(es_server: LocalElasticsearchServer) -> None:
    assert es_server.url.startswith("http://127.0.0.1:")
