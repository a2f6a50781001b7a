"""Documents: bulk item errors, request validation, versioning in bulk metadata and on GET, ``require_alias``."""

from __future__ import annotations

import typing as t

import orjson
import pytest
from elasticsearch import BadRequestError, ConflictError, Elasticsearch, NotFoundError

from tests.testing import es_fixtures

es_server = es_fixtures.es_server
es = es_fixtures.es
index_name = es_fixtures.index_name


def _bulk(es: Elasticsearch, lines: list[dict[str, t.Any]], **params: t.Any) -> dict[str, t.Any]:
    operations: t.Any = [orjson.dumps(line).decode() for line in lines]
    return dict(es.bulk(operations=operations, **params).body)


def test_empty_id_fails_only_its_item(es: Elasticsearch, index_name: str) -> None:
    # bulk/10_basic.yml "Empty _id"
    result = _bulk(
        es,
        [
            {"index": {"_index": index_name, "_id": ""}}, {"f": 1},
            {"index": {"_index": index_name, "_id": "id"}}, {"f": 2},
            {"index": {"_index": index_name}}, {"f": 3},
            {"create": {"_index": index_name}}, {"f": 4},
        ],
        refresh=True,
    )  # fmt: skip
    assert result["errors"] is True
    first = result["items"][0]["index"]
    assert first["status"] == 400 and first["error"]["type"] == "illegal_argument_exception"
    assert first["error"]["reason"] == "if _id is specified it must not be empty"
    assert [i[next(iter(i))]["result"] for i in result["items"][1:]] == ["created", "created", "created"]
    assert es.count(index=index_name)["count"] == 3


def test_require_alias_per_item_and_per_request(es: Elasticsearch, index_name: str) -> None:
    # bulk/10_basic.yml "When setting require_alias flag per request" / "When setting require_alias flag"
    es.indices.create(index=f"{index_name}-backing", aliases={f"{index_name}-alias": {}})
    result = _bulk(
        es,
        [
            {"index": {"_index": f"{index_name}-new", "require_alias": True}}, {"f": 1},
            {"index": {"_index": f"{index_name}-created"}}, {"f": 2},
            {"index": {"_index": f"{index_name}-alias", "require_alias": True}}, {"f": 3},
        ],
        refresh=True,
    )  # fmt: skip
    first = result["items"][0]["index"]
    assert first["status"] == 404 and first["error"]["type"] == "index_not_found_exception"
    assert first["error"]["reason"] == (
        f"no such index [{index_name}-new] and [require_alias] request flag is [true] and "
        f"[{index_name}-new] is not an alias"
    )
    assert result["items"][1]["index"]["result"] == "created" and result["items"][2]["index"]["result"] == "created"
    assert not es.indices.exists(index=f"{index_name}-new")
    result = _bulk(
        es,
        [{"index": {"_index": f"{index_name}-new2"}}, {"f": 1},
         {"index": {"_index": f"{index_name}-ok", "require_alias": False}}, {"f": 2}],
        require_alias=True,
    )  # fmt: skip
    assert result["items"][0]["index"]["status"] == 404 and result["items"][1]["index"]["status"] == 201
    # index API: the same flag (rest-api-spec api/index.json `require_alias`)
    with pytest.raises(NotFoundError):
        es.index(index=f"{index_name}-new3", document={"f": 1}, require_alias=True)
    assert es.index(index=f"{index_name}-alias", document={"f": 1}, require_alias=True)["result"] == "created"


def test_external_versions_in_bulk_metadata(es: Elasticsearch, index_name: str) -> None:
    # Reference "Bulk API" (version / version_type per action) and "Index API" versioning:
    # external accepts only a higher version, external_gte also an equal one; a stale write is a 409 item.
    def write(version: int, kind: str, value: int) -> dict[str, t.Any]:
        meta = {"_index": index_name, "_id": "d", "version": version, "version_type": kind}
        item: dict[str, t.Any] = _bulk(es, [{"index": meta}, {"v": value}])["items"][0]["index"]
        return item

    assert write(5, "external", 1)["_version"] == 5
    stale = write(5, "external", 2)
    assert stale["status"] == 409 and stale["error"]["type"] == "version_conflict_engine_exception"
    assert (
        stale["error"]["reason"]
        == "[d]: version conflict, current version [5] is higher or equal to the one provided [5]"
    )
    assert write(5, "external_gte", 3)["_version"] == 5
    older = write(4, "external_gte", 4)
    assert older["status"] == 409 and "is higher than the one provided [4]" in older["error"]["reason"]
    assert write(9, "external", 5)["_version"] == 9
    assert es.get(index=index_name, id="d")["_source"] == {"v": 5}
    deleted = _bulk(es, [{"delete": {"_index": index_name, "_id": "d", "version": 10, "version_type": "external"}}])
    assert deleted["items"][0]["delete"]["result"] == "deleted" and deleted["items"][0]["delete"]["_version"] == 10
    late = write(10, "external", 6)  # the delete's version is remembered (index.gc_deletes)
    assert late["status"] == 409


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"version": 3}, "internal versioning can not be used for optimistic concurrency control"),
        ({"version_type": "external"}, "illegal version value [-3] for version type [EXTERNAL]"),
        ({"version": -1, "version_type": "external"}, "illegal version value [-1] for version type [EXTERNAL]"),
        ({"if_seq_no": 1}, "ifSeqNo is set, but primary term is [0]"),
        ({"if_seq_no": 1, "if_primary_term": 1, "version": 2, "version_type": "external"},
         "compare and write operations can not use versioning"),
    ],
)  # fmt: skip
def test_bulk_item_validation_fails_the_whole_request(
    es: Elasticsearch, index_name: str, meta: dict[str, t.Any], message: str
) -> None:
    # BulkRequest#validate collects every item's DocWriteRequest validation errors into one 400
    with pytest.raises(BadRequestError) as info:
        _bulk(es, [{"index": {"_index": index_name, "_id": "1", **meta}}, {"f": 1}])
    assert info.value.error == "action_request_validation_exception"
    assert message in info.value.body["error"]["reason"]
    assert not es.indices.exists(index=index_name)


def test_bulk_create_refuses_external_versions_and_update_needs_an_id(es: Elasticsearch, index_name: str) -> None:
    # IndexRequest#validate (op_type create); DeleteRequest/UpdateRequest#validate "id is missing"
    with pytest.raises(BadRequestError) as info:
        _bulk(es, [{"create": {"_index": index_name, "_id": "1", "version": 2, "version_type": "external"}}, {"f": 1}])
    assert "create operations only support internal versioning. use index instead" in str(info.value.body)
    with pytest.raises(BadRequestError) as info:
        _bulk(es, [{"delete": {"_index": index_name}}])
    assert info.value.body["error"]["reason"] == "Validation Failed: 1: id is missing;"
    with pytest.raises(BadRequestError) as info:
        _bulk(es, [{"index": {"_index": index_name, "_id": "1", "version_type": "force", "version": 1}}, {"f": 1}])
    assert info.value.body["error"]["type"] == "illegal_argument_exception"


def test_get_with_a_version(es: Elasticsearch, index_name: str) -> None:
    # get/90_versions.yml: a GET whose version differs is a 409, for every version type
    es.index(index=index_name, id="1", document={"foo": "bar"})
    es.index(index=index_name, id="1", document={"foo": "bar"})
    assert es.get(index=index_name, id="1", version=2)["_id"] == "1"
    for kind in ("internal", "external", "external_gte"):
        for wrong in (1, 10):
            with pytest.raises(ConflictError) as info:
                es.get(index=index_name, id="1", version=wrong, version_type=kind)
            assert info.value.error == "version_conflict_engine_exception"
            assert f"current version [2] is different than the one provided [{wrong}]" in str(info.value.body)
        assert es.get(index=index_name, id="1", version=2, version_type=kind)["found"] is True


def test_mget_validation(es: Elasticsearch, index_name: str) -> None:
    # mget/13_missing_metadata.yml
    es.index(index=index_name, id="1", document={"foo": "bar"})
    cases = [
        ({"docs": [{"_index": index_name}]}, "id is missing"),
        ({"docs": [{"_id": "1"}]}, "index is missing"),
        ({"docs": []}, "no documents to get"),
        ({}, "no documents to get"),
    ]
    for body, message in cases:
        with pytest.raises(BadRequestError) as info:
            es.perform_request(
                "POST", "/_mget", body=body, headers={"content-type": "application/json", "accept": "application/json"}
            )
        assert info.value.error == "action_request_validation_exception" and message in str(info.value.body)
    found = es.mget(docs=[{"_index": index_name, "_id": "1"}])["docs"][0]
    assert found["found"] is True and found["_version"] == 1 and found["_source"] == {"foo": "bar"}
