"""Search: query DSL, sorting, paging, collapse, source filtering, aggregations and by-query APIs."""

from __future__ import annotations

import typing as t

import pytest
from elasticsearch import BadRequestError, ConflictError, Elasticsearch, NotFoundError, helpers

from tests.testing import es_fixtures

es_server = es_fixtures.es_server
es = es_fixtures.es
index_name = es_fixtures.index_name

RUNS = [
    {
        "id": "1",
        "app": "a",
        "status": "succeeded",
        "elapsed": 1.5,
        "tokens": 10,
        "ts": "2024-03-01T15:30:00Z",
        "title": "Quick brown fox",
        "labels": {"env": "prod"},
    },
    {
        "id": "2",
        "app": "a",
        "status": "failed",
        "elapsed": 3.0,
        "tokens": 20,
        "ts": "2024-03-01T16:30:00Z",
        "title": "Lazy dog sleeps",
        "labels": {"env": "dev"},
    },
    {
        "id": "3",
        "app": "b",
        "status": "succeeded",
        "elapsed": 0.5,
        "tokens": 5,
        "ts": "2024-03-02T01:00:00Z",
        "title": "The quick dog",
        "labels": {"env": "prod"},
    },
    {
        "id": "4",
        "app": "b",
        "status": "running",
        "tokens": 0,
        "ts": "2024-03-03T12:00:00Z",
        "title": "Brown bear",
    },
    {
        "id": "5",
        "app": "c",
        "status": "succeeded",
        "elapsed": 2.0,
        "tokens": 7,
        "ts": "2024-03-05T23:59:59Z",
        "title": "fox and dog, quick",
    },
]
MAPPINGS = {
    "properties": {
        "id": {"type": "keyword"},
        "app": {"type": "keyword"},
        "status": {"type": "keyword"},
        "elapsed": {"type": "double"},
        "tokens": {"type": "long"},
        "ts": {"type": "date"},
        "title": {"type": "text"},
        "labels": {"type": "flattened"},
    }
}


@pytest.fixture
def runs(es: Elasticsearch, index_name: str) -> str:
    es.indices.create(index=index_name, mappings=MAPPINGS)
    helpers.bulk(es, ({"_index": index_name, "_id": r["id"], "_source": r} for r in RUNS), refresh=True)
    return index_name


def ids(res: t.Any) -> list[str]:
    return [h["_id"] for h in res["hits"]["hits"]]


def count(es: Elasticsearch, index: str, query: dict[str, t.Any]) -> int:
    return int(es.count(index=index, query=query)["count"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"match_all": {}}, 5),
        ({"match_none": {}}, 0),
        ({"term": {"status": "succeeded"}}, 3),
        ({"term": {"status": {"value": "SUCCEEDED", "case_insensitive": True}}}, 3),
        ({"terms": {"app": ["a", "c"]}}, 3),
        ({"range": {"elapsed": {"gte": 1.5, "lt": 3}}}, 2),
        ({"range": {"tokens": {"gt": 5}}}, 3),
        ({"range": {"ts": {"gte": "2024-03-02", "lte": "2024-03-03"}}}, 2),
        ({"range": {"ts": {"gte": "2024-03-02||/d", "lt": "2024-03-02||+1d/d"}}}, 1),
        ({"range": {"ts": {"gte": "01/03/2024", "lt": "02/03/2024", "format": "dd/MM/yyyy"}}}, 2),
        ({"range": {"ts": {"gte": "2024-03-02T00:00:00", "time_zone": "+08:00"}}}, 4),
        ({"match": {"title": "quick"}}, 3),
        ({"match": {"title": {"query": "quick dog", "operator": "and"}}}, 2),
        ({"match": {"title": {"query": "quick dog bear", "minimum_should_match": 2}}}, 2),
        ({"match_phrase": {"title": "quick dog"}}, 1),
        ({"multi_match": {"query": "fox", "fields": ["title", "app"]}}, 2),
        ({"query_string": {"query": "status:succeeded AND app:(a OR b)"}}, 2),
        ({"query_string": {"query": "title:quick -app:c"}}, 2),
        ({"query_string": {"query": "tokens:[5 TO 10]"}}, 3),
        ({"query_string": {"query": "stat*:fail*"}}, 1),
        ({"exists": {"field": "elapsed"}}, 4),
        ({"exists": {"field": "labels"}}, 3),
        ({"ids": {"values": ["1", "4", "nope"]}}, 2),
        ({"prefix": {"status": "succ"}}, 3),
        ({"wildcard": {"status": {"value": "*ai*"}}}, 1),
        ({"term": {"labels.env": "prod"}}, 2),
        ({"term": {"labels": "dev"}}, 1),
        ({"bool": {"must": [{"term": {"status": "succeeded"}}], "must_not": [{"term": {"app": "c"}}]}}, 2),
        ({"bool": {"should": [{"term": {"app": "a"}}, {"term": {"app": "c"}}]}}, 3),
        ({"bool": {"filter": [{"term": {"app": "a"}}], "should": [{"term": {"status": "x"}}]}}, 2),
        (
            {
                "bool": {
                    "should": [{"term": {"app": "a"}}, {"term": {"status": "succeeded"}}],
                    "minimum_should_match": 2,
                }
            },
            1,
        ),
        ({"constant_score": {"filter": {"term": {"app": "b"}}}}, 2),
        ({"term": {"no_such_field": "x"}}, 0),
    ],
)
def test_queries(es: Elasticsearch, runs: str, query: dict[str, t.Any], expected: int) -> None:
    assert count(es, runs, query) == expected
    assert es.search(index=runs, query=query)["hits"]["total"]["value"] == expected


def test_date_math_now(es: Elasticsearch, index_name: str) -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    docs = [{"ts": (now - dt.timedelta(days=d)).isoformat()} for d in (0, 3, 10)]
    helpers.bulk(es, ({"_index": index_name, "_source": d} for d in docs), refresh=True)
    assert count(es, index_name, {"range": {"ts": {"gte": "now-7d/d"}}}) == 2
    assert count(es, index_name, {"range": {"ts": {"lt": "now-7d/d"}}}) == 1


def test_sorting_and_paging(es: Elasticsearch, runs: str) -> None:
    assert ids(es.search(index=runs, sort=[{"elapsed": "desc"}])) == ["2", "5", "1", "3", "4"]
    assert ids(es.search(index=runs, sort=[{"elapsed": {"order": "asc", "missing": "_first"}}])) == [
        "4",
        "3",
        "1",
        "5",
        "2",
    ]
    res = es.search(index=runs, sort=[{"app": "asc"}, {"tokens": "desc"}], size=2, from_=1)
    assert ids(res) == ["1", "3"] and res["hits"]["hits"][0]["sort"] == ["a", 10]
    assert res["hits"]["hits"][0]["_score"] is None
    assert ids(es.search(index=runs, sort=["_doc"])) == ["1", "2", "3", "4", "5"]
    assert ids(es.search(index=runs, sort="tokens:desc", size=1)) == ["2"]
    top = es.search(index=runs, query={"match": {"title": "quick dog"}})
    assert ids(top)[0] in ("3", "5") and top["hits"]["max_score"] >= top["hits"]["hits"][-1]["_score"]
    with pytest.raises(BadRequestError):
        es.search(index=runs, sort=[{"title": "asc"}])
    with pytest.raises(BadRequestError):
        es.search(index=runs, sort=[{"nope": "asc"}])
    assert len(es.search(index=runs, sort=[{"nope": {"order": "asc", "unmapped_type": "long"}}])["hits"]["hits"]) == 5


def test_source_filtering_and_total_hits(es: Elasticsearch, runs: str) -> None:
    res = es.search(index=runs, source_includes=["app", "labels.*"], query={"ids": {"values": ["1"]}})
    assert res["hits"]["hits"][0]["_source"] == {"app": "a", "labels": {"env": "prod"}}
    res = es.search(index=runs, source={"excludes": ["title", "labels"]}, query={"ids": {"values": ["4"]}})
    assert set(res["hits"]["hits"][0]["_source"]) == {"id", "app", "status", "tokens", "ts"}
    assert "_source" not in es.search(index=runs, source=False)["hits"]["hits"][0]
    assert "total" not in es.search(index=runs, track_total_hits=False)["hits"]
    assert es.search(index=runs, track_total_hits=3)["hits"]["total"] == {"value": 3, "relation": "gte"}


def test_index_patterns(es: Elasticsearch, index_name: str) -> None:
    for suffix in ("a", "b", "c"):
        es.index(index=f"{index_name}-{suffix}", document={"s": suffix}, refresh=True)
    es.indices.put_alias(index=f"{index_name}-c", name=f"{index_name}-alias")
    assert es.count(index=f"{index_name}-*")["count"] == 3
    assert es.count(index=f"{index_name}-a,{index_name}-b")["count"] == 2
    assert es.count(index=f"{index_name}-alias")["count"] == 1
    assert es.count(index="_all")["count"] >= 3
    assert es.count(index=f"{index_name}-nomatch*")["count"] == 0
    with pytest.raises(NotFoundError):
        es.search(index=f"{index_name}-missing")
    res = es.search(index=f"{index_name}-*", query={"term": {"_index": f"{index_name}-b"}})
    assert [h["_index"] for h in res["hits"]["hits"]] == [f"{index_name}-b"]


def test_max_result_window(es: Elasticsearch, runs: str) -> None:
    with pytest.raises(BadRequestError) as exc:
        es.search(index=runs, from_=9995, size=10)
    assert "Result window is too large" in str(exc.value.info)
    es.indices.put_settings(index=runs, settings={"index.max_result_window": 3})
    with pytest.raises(BadRequestError):
        es.search(index=runs, size=4)


def test_collapse_with_inner_hits(es: Elasticsearch, runs: str) -> None:
    res = es.search(
        index=runs,
        collapse={"field": "app", "inner_hits": {"name": "latest", "size": 2, "sort": [{"ts": "desc"}]}},
        sort=[{"app": "asc"}],
    )
    assert ids(res) == ["1", "3", "5"]
    assert res["hits"]["hits"][0]["fields"] == {"app": ["a"]}
    inner = res["hits"]["hits"][1]["inner_hits"]["latest"]["hits"]
    assert [h["_id"] for h in inner["hits"]] == ["4", "3"] and inner["total"]["value"] == 2
    assert res["hits"]["total"]["value"] == 5


def test_search_after_pages_through_25k_docs(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(
        index=index_name,
        settings={"index.refresh_interval": "-1"},
        mappings={"properties": {"n": {"type": "long"}, "g": {"type": "keyword"}}},
    )
    helpers.bulk(
        es,
        ({"_index": index_name, "_id": str(i), "_source": {"n": i, "g": str(i % 7)}} for i in range(25_000)),
        chunk_size=5000,
        refresh=True,
    )
    assert es.count(index=index_name)["count"] == 25_000
    seen: list[int] = []
    after = None
    while True:
        kwargs: dict[str, t.Any] = {"search_after": after} if after else {}
        res = es.search(
            index=index_name, size=2000, sort=[{"g": "asc"}, {"n": "desc"}], source_includes=["n"], **kwargs
        )
        hits = res["hits"]["hits"]
        if not hits:
            break
        seen.extend(h["_source"]["n"] for h in hits)
        after = hits[-1]["sort"]
    assert len(seen) == 25_000 and len(set(seen)) == 25_000
    assert seen[:2] == [24997, 24990]
    res = es.search(index=index_name, size=0, track_total_hits=True)
    assert res["hits"]["total"] == {"value": 25_000, "relation": "eq"}
    assert es.search(index=index_name, size=0)["hits"]["total"] == {"value": 10_000, "relation": "gte"}


def test_terms_and_metric_aggs(es: Elasticsearch, runs: str) -> None:
    res = es.search(
        index=runs,
        size=0,
        query={"range": {"tokens": {"gte": 1}}},
        aggs={
            "apps": {
                "terms": {"field": "app", "size": 2},
                "aggs": {
                    "tok": {"sum": {"field": "tokens"}},
                    "avg_el": {"avg": {"field": "elapsed"}},
                    "last": {"top_hits": {"size": 1, "sort": [{"ts": "desc"}], "_source": ["id"]}},
                },
            },
            "by_sum": {
                "terms": {"field": "app", "order": {"tok": "desc"}},
                "aggs": {"tok": {"sum": {"field": "tokens"}}},
            },
            "statuses": {"terms": {"field": "status", "missing": "none", "min_doc_count": 1}},
            "n_apps": {"cardinality": {"field": "app"}},
            "min_el": {"min": {"field": "elapsed"}},
            "max_ts": {"max": {"field": "ts"}},
            "cnt": {"value_count": {"field": "elapsed"}},
            "ok": {"filter": {"term": {"status": "succeeded"}}, "aggs": {"t": {"sum": {"field": "tokens"}}}},
            "split": {
                "filters": {
                    "filters": {
                        "fast": {"range": {"elapsed": {"lt": 2}}},
                        "slow": {"range": {"elapsed": {"gte": 2}}},
                    }
                }
            },
        },
    )
    aggs = res["aggregations"]
    apps = aggs["apps"]
    assert [(b["key"], b["doc_count"]) for b in apps["buckets"]] == [("a", 2), ("b", 1)]
    assert apps["sum_other_doc_count"] == 1
    assert apps["buckets"][0]["tok"]["value"] == 30.0 and apps["buckets"][0]["avg_el"]["value"] == 2.25
    assert apps["buckets"][0]["last"]["hits"]["hits"][0]["_source"] == {"id": "2"}
    assert [b["key"] for b in aggs["by_sum"]["buckets"]] == ["a", "c", "b"]
    assert {b["key"]: b["doc_count"] for b in aggs["statuses"]["buckets"]} == {"succeeded": 3, "failed": 1}
    assert aggs["n_apps"]["value"] == 3 and aggs["min_el"]["value"] == 0.5 and aggs["cnt"]["value"] == 4
    assert aggs["max_ts"]["value_as_string"] == "2024-03-05T23:59:59.000Z"
    assert aggs["ok"] == {"doc_count": 3, "t": {"value": 22.0}}
    assert aggs["split"]["buckets"]["fast"]["doc_count"] == 2 and aggs["split"]["buckets"]["slow"]["doc_count"] == 2
    with pytest.raises(BadRequestError):
        es.search(index=runs, aggs={"x": {"terms": {"field": "title"}}})


def test_date_histogram_time_zones(es: Elasticsearch, runs: str) -> None:
    def hist(**params: t.Any) -> list[tuple[str, int]]:
        res = es.search(index=runs, size=0, aggs={"h": {"date_histogram": {"field": "ts", **params}}})
        return [(b["key_as_string"], b["doc_count"]) for b in res["aggregations"]["h"]["buckets"]]

    assert hist(calendar_interval="day", format="yyyy-MM-dd", min_doc_count=1) == [
        ("2024-03-01", 2),
        ("2024-03-02", 1),
        ("2024-03-03", 1),
        ("2024-03-05", 1),
    ]
    assert hist(calendar_interval="1d", time_zone="Asia/Shanghai", format="yyyy-MM-dd") == [
        ("2024-03-01", 1),
        ("2024-03-02", 2),
        ("2024-03-03", 1),
        ("2024-03-04", 0),
        ("2024-03-05", 0),
        ("2024-03-06", 1),
    ]
    utc = es.search(
        index=runs,
        size=0,
        aggs={"h": {"date_histogram": {"field": "ts", "calendar_interval": "month", "time_zone": "-05:00"}}},
    )["aggregations"]["h"]["buckets"]
    assert utc == [{"key_as_string": "2024-03-01T00:00:00.000-05:00", "key": 1709269200000, "doc_count": 5}]
    assert hist(fixed_interval="12h", min_doc_count=1, format="yyyy-MM-dd HH:mm")[0] == (
        "2024-03-01 12:00",
        2,
    )
    bounded = hist(
        calendar_interval="day",
        format="yyyy-MM-dd",
        extended_bounds={"min": "2024-02-28", "max": "2024-03-06"},
    )
    assert bounded[0] == ("2024-02-28", 0) and bounded[-1] == ("2024-03-06", 0) and len(bounded) == 8


def test_delete_and_update_by_query(es: Elasticsearch, runs: str) -> None:
    res = es.delete_by_query(index=runs, query={"term": {"status": "failed"}}, refresh=True)
    assert res["deleted"] == 1 and res["failures"] == []
    assert es.count(index=runs)["count"] == 4
    res = es.update_by_query(
        index=runs,
        query={"term": {"app": "b"}},
        refresh=True,
        script={"source": "ctx._source.status = params.s", "params": {"s": "archived"}},
    )
    assert res["updated"] == 2
    assert count(es, runs, {"term": {"status": "archived"}}) == 2
    es.index(index=runs, id="1", document={"app": "a", "status": "changed"})
    with pytest.raises(ConflictError):
        es.delete_by_query(index=runs, query={"term": {"app": "a"}})
    es.index(index=runs, id="5", document={"app": "c", "status": "changed"})
    res = es.delete_by_query(index=runs, query={"match_all": {}}, conflicts="proceed", refresh=True)
    assert res["version_conflicts"] == 2 and res["deleted"] == 2


def test_point_in_time(es: Elasticsearch, runs: str) -> None:
    pit = es.open_point_in_time(index=runs, keep_alive="1m")["id"]
    es.index(index=runs, id="6", document={"app": "z"}, refresh=True)
    res = es.search(pit={"id": pit, "keep_alive": "1m"}, size=10, sort=["_shard_doc"])
    assert len(res["hits"]["hits"]) == 5 and res["pit_id"] == pit
    assert es.close_point_in_time(id=pit)["succeeded"] is True


def test_query_errors(es: Elasticsearch, runs: str) -> None:
    with pytest.raises(BadRequestError) as exc:
        es.search(index=runs, query={"no_such_query": {}})
    assert exc.value.error == "parsing_exception"
    with pytest.raises(BadRequestError):
        es.search(index=runs, query={"term": {"tokens": "abc"}})


def test_scan_and_scroll(es: Elasticsearch, index_name: str) -> None:
    helpers.bulk(es, ({"_index": index_name, "_id": str(i), "n": i} for i in range(1200)), refresh=True)
    got = [
        h["_source"]["n"]
        for h in helpers.scan(es, index=index_name, size=500, query={"query": {"range": {"n": {"gte": 100}}}})
    ]
    assert sorted(got) == list(range(100, 1200))
    ordered = [
        h["_id"] for h in helpers.scan(es, index=index_name, preserve_order=True, query={"sort": [{"n": "desc"}]})
    ]
    assert ordered[:3] == ["1199", "1198", "1197"] and len(ordered) == 1200


def test_filter_path(es: Elasticsearch, runs: str) -> None:
    res = es.search(index=runs, filter_path=["hits.hits._id", "hits.total.value"], sort=[{"tokens": "asc"}], size=2)
    assert res.body == {"hits": {"total": {"value": 5}, "hits": [{"_id": "4"}, {"_id": "3"}]}}
