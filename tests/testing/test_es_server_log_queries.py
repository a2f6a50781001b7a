"""The query shapes a log store relies on: date_nanos keyset paging, composite groups, wildcard search."""

from __future__ import annotations

import typing as t

import pytest
from elasticsearch import Elasticsearch, helpers

from tests.testing import es_fixtures

es_server = es_fixtures.es_server
es = es_fixtures.es
index_name = es_fixtures.index_name


@pytest.fixture
def logs(es: Elasticsearch, index_name: str) -> str:
    es.indices.create(
        index=index_name,
        mappings={
            "dynamic": "strict",
            "_meta": {"managed_by": "tests"},
            "properties": {
                "id": {"type": "keyword"},
                "app_id": {"type": "keyword", "ignore_above": 8191},
                "status": {"type": "keyword"},
                "created_at": {"type": "date_nanos"},
                "inputs": {"type": "text", "norms": False, "fields": {"wildcard": {"type": "wildcard"}}},
                "tokens": {"type": "long"},
            },
        },
    )
    docs = [
        ("a", "app1", "ok", "2024-05-01T10:00:00.000001Z", "Hello *World*", 5),
        ("b", "app1", "ok", "2024-05-01T10:00:00.000002Z", "say hello", 7),
        ("c", "app2", "failed", "2024-05-01T23:30:00.5Z", "other? text", 1),
        ("d", "app2", "ok", "2024-05-02T01:00:00Z", "back\\slash", 2),
        ("e", None, "ok", "2024-05-03T00:00:00Z", "no app", 3),
    ]
    fields = ("id", "app_id", "status", "created_at", "inputs", "tokens")
    actions = [
        {
            "_index": index_name,
            "_id": row[0],
            "_source": {k: v for k, v in zip(fields, row, strict=True) if v},
        }
        for row in docs
    ]
    helpers.bulk(es, actions, refresh=True)
    return index_name


def test_mapping_keeps_meta(es: Elasticsearch, logs: str) -> None:
    assert es.indices.get_mapping(index=logs)[logs]["mappings"]["_meta"] == {"managed_by": "tests"}


def test_date_nanos_sort_and_search_after(es: Elasticsearch, logs: str) -> None:
    sort: list[t.Any] = [
        {"created_at": {"order": "asc", "missing": "_last", "unmapped_type": "date_nanos"}},
        {"id": "asc"},
    ]
    first = es.search(index=logs, sort=sort, size=1, track_total_hits=False)["hits"]["hits"][0]
    assert first["_id"] == "a" and first["sort"] == [1714557600000001000, "a"]
    second = es.search(index=logs, sort=sort, size=1, search_after=first["sort"])["hits"]["hits"]
    assert [h["_id"] for h in second] == ["b"]
    exact = {"range": {"created_at": {"gt": "2024-05-01T10:00:00.000001Z"}}}
    assert es.count(index=logs, query=exact)["count"] == 4
    assert es.count(index=logs, query={"term": {"created_at": "2024-05-01T10:00:00.000002Z"}})["count"] == 1
    assert es.count(index=logs, query={"range": {"created_at": {"lte": "2024-05-01"}}})["count"] == 3


def test_date_nanos_histogram_and_max(es: Elasticsearch, logs: str) -> None:
    res = es.search(
        index=logs,
        size=0,
        aggs={
            "days": {"date_histogram": {"field": "created_at", "calendar_interval": "day", "format": "yyyy-MM-dd"}},
            "last": {"max": {"field": "created_at"}},
        },
    )["aggregations"]
    assert [(b["key_as_string"], b["doc_count"]) for b in res["days"]["buckets"]] == [
        ("2024-05-01", 3),
        ("2024-05-02", 1),
        ("2024-05-03", 1),
    ]
    assert res["last"]["value_as_string"] == "2024-05-03T00:00:00.000Z"


def test_wildcard_field_with_escapes(es: Elasticsearch, logs: str) -> None:
    def find(pattern: str) -> list[str]:
        q = {"wildcard": {"inputs.wildcard": {"value": pattern, "case_insensitive": True}}}
        return sorted(h["_id"] for h in es.search(index=logs, query=q)["hits"]["hits"])

    assert find("*hello*") == ["a", "b"]
    assert find("*\\*world\\**") == ["a"]
    assert find("*r\\?*") == ["c"]
    assert find("*\\\\*") == ["d"]
    assert find("*[a]*") == []


def test_composite_groups_with_missing_bucket_and_paging(es: Elasticsearch, logs: str) -> None:
    def page(after: dict[str, t.Any] | None = None) -> t.Any:
        composite: dict[str, t.Any] = {
            "size": 2,
            "sources": [
                {"g0": {"terms": {"field": "app_id", "missing_bucket": True}}},
                {
                    "g1": {
                        "date_histogram": {
                            "field": "created_at",
                            "calendar_interval": "day",
                            "time_zone": "+08:00",
                            "format": "yyyy-MM-dd",
                        }
                    }
                },
            ],
        }
        if after:
            composite["after"] = after
        body = {
            "composite": composite,
            "aggs": {
                "m0": {"sum": {"field": "tokens"}},
                "m1": {"cardinality": {"field": "status", "precision_threshold": 100}},
            },
        }
        return es.search(index=logs, size=0, track_total_hits=False, aggs={"groups": body})["aggregations"]["groups"]

    rows = []
    after = None
    while True:
        result = page(after)
        if not result["buckets"]:
            break
        rows += [
            (b["key"]["g0"], b["key"]["g1"], b["doc_count"], b["m0"]["value"], b["m1"]["value"])
            for b in result["buckets"]
        ]
        after = result["after_key"]
    assert rows == [
        (None, "2024-05-03", 1, 3.0, 1),
        ("app1", "2024-05-01", 2, 12.0, 1),
        ("app2", "2024-05-02", 2, 3.0, 2),
    ]
