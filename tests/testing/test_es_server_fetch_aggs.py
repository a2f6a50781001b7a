"""Search options and aggregations next to the core subset: fetch options, sort formats, regexps, histogram, limits."""

from __future__ import annotations

import typing as t

import pytest
from elasticsearch import ApiError, BadRequestError, Elasticsearch

from tests.testing import es_fixtures

es_server = es_fixtures.es_server
es = es_fixtures.es
index_name = es_fixtures.index_name

MAPPINGS = {
    "properties": {
        "status": {"type": "keyword"},
        "tags": {"type": "keyword"},
        "n": {"type": "long"},
        "x": {"type": "double", "store": True},
        "ts": {"type": "date"},
        "local": {"type": "date", "format": "yyyy-MM-dd HH:mm:ss.SSSSSS"},
        "title": {"type": "text"},
    }
}
DOCS = [
    {"status": "ok", "tags": ["b", "a"], "n": 3, "x": 1.5, "ts": "2024-03-01T10:00:00Z",
     "local": "2024-03-01 10:00:00.123456", "title": "first"},
    {"status": "ok", "tags": ["c"], "n": 1, "x": 2.5, "ts": "2024-03-02T10:00:00Z",
     "local": "2024-03-02 11:30:00.000001", "title": "second"},
    {"status": "bad", "n": 12, "ts": "2024-03-05T10:00:00Z", "title": "third"},
]  # fmt: skip


@pytest.fixture
def docs(es: Elasticsearch, index_name: str) -> str:
    es.indices.create(index=index_name, mappings=MAPPINGS)
    for i, doc in enumerate(DOCS):
        es.index(index=index_name, id=str(i), document=doc)
    es.indices.refresh(index=index_name)
    return index_name


def _raw(es: Elasticsearch, path: str, body: dict[str, t.Any]) -> t.Any:
    return es.perform_request(
        "POST", path, body=body, headers={"content-type": "application/json", "accept": "application/json"}
    )


def test_version_and_seq_no_in_hits(es: Elasticsearch, docs: str) -> None:
    # search/300_sequence_numbers.yml; reference "Search API" `version` / `seq_no_primary_term`
    es.index(index=docs, id="0", document=DOCS[0], refresh=True)
    hits = es.search(index=docs, query={"ids": {"values": ["0"]}}, version=True, seq_no_primary_term=True)
    hit = hits["hits"]["hits"][0]
    assert hit["_version"] == 2 and hit["_seq_no"] == 3 and hit["_primary_term"] == 1
    assert "_version" not in es.search(index=docs, query={"ids": {"values": ["0"]}})["hits"]["hits"][0]


def test_docvalue_fields(es: Elasticsearch, docs: str) -> None:
    # Reference "Retrieve selected fields" (doc value fields): keyword values sorted, dates formatted
    hits = es.search(
        index=docs,
        query={"ids": {"values": ["0"]}},
        docvalue_fields=t.cast(
            t.Any, ["tags", "n", {"field": "ts", "format": "epoch_millis"}, "local", "missing_field"]
        ),
    )["hits"]["hits"]
    fields = hits[0]["fields"]
    assert fields["tags"] == ["a", "b"] and fields["n"] == [3]
    assert fields["ts"] == ["1709287200000"]
    assert fields["local"] == ["2024-03-01 10:00:00.123000"]  # `date` keeps milliseconds, printed with the format
    assert "missing_field" not in fields
    with pytest.raises(BadRequestError) as info:
        es.search(index=docs, docvalue_fields=t.cast(t.Any, ["title"]))
    assert "Fielddata is disabled on [title]" in str(info.value.body)


def test_stored_fields(es: Elasticsearch, docs: str) -> None:
    # search/100_stored_fields.yml
    hit = es.search(index=docs, query={"ids": {"values": ["0"]}}, stored_fields=[])["hits"]["hits"][0]
    assert hit["_id"] == "0" and "_source" not in hit
    hit = es.search(index=docs, query={"ids": {"values": ["0"]}}, stored_fields="_none_")["hits"]["hits"][0]
    assert "_id" not in hit and "_source" not in hit
    hit = es.search(index=docs, query={"ids": {"values": ["0"]}}, stored_fields=["x", "n"])["hits"]["hits"][0]
    assert hit["fields"] == {"x": [1.5]}  # only `store: true` fields are stored fields
    hit = es.search(index=docs, query={"ids": {"values": ["0"]}}, stored_fields=["x"], source=True)["hits"]["hits"][0]
    assert hit["_source"]["status"] == "ok"


def test_sort_format_and_search_after_with_a_formatted_date(es: Elasticsearch, docs: str) -> None:
    # search/90_search_after.yml (date sort values); reference "Sort search results" `format`
    first = es.search(index=docs, sort=[{"ts": {"order": "asc", "format": "strict_date_optional_time"}}], size=1)
    hit = first["hits"]["hits"][0]
    assert hit["sort"] == ["2024-03-01T10:00:00.000Z"]
    page = es.search(
        index=docs, sort=[{"ts": {"order": "asc", "format": "strict_date_optional_time"}}], search_after=hit["sort"]
    )
    assert [h["_id"] for h in page["hits"]["hits"]] == ["1", "2"]
    plain = es.search(index=docs, sort=[{"ts": "asc"}], search_after=["2024-03-02T10:00:00Z"])
    assert [h["_id"] for h in plain["hits"]["hits"]] == ["2"]
    with pytest.raises(BadRequestError) as info:
        es.search(index=docs, sort=[{"n": "asc"}], search_after=["not-a-number"])
    assert "Failed to parse search_after value for field [n]" in str(info.value.body)


def test_sort_mode(es: Elasticsearch, docs: str) -> None:
    # Reference "Sort search results" `mode` (min/max/sum/avg/median) on multi-valued fields; on long fields
    # MultiValueMode.AVG rounds (Math.round) the average
    es.index(index=docs, id="m", document={"n": [1, 100]}, refresh=True)
    asc = es.search(index=docs, query={"ids": {"values": ["m"]}}, sort=[{"n": {"order": "asc", "mode": "avg"}}])
    assert asc["hits"]["hits"][0]["sort"] == [51]


def test_regexp_uses_lucene_syntax(es: Elasticsearch, docs: str) -> None:
    # Reference "Regular expression syntax": ^ and $ are ordinary characters, no (?i) flags; Lucene's errors
    def ids(pattern: str) -> list[str]:
        found = es.search(index=docs, query={"regexp": {"status": pattern}})["hits"]["hits"]
        return sorted(h["_id"] for h in found)

    assert ids("o.") == ["0", "1"]
    assert ids("^ok$") == []
    assert ids("(?i)OK") == []
    assert ids('"b"a[a-z]') == ["2"]
    with pytest.raises(BadRequestError) as info:
        es.search(index=docs, query={"regexp": {"status": "[ok"}})
    # a shard-level failure: search_phase_execution_exception "all shards failed", the cause in root_cause
    assert info.value.error == "search_phase_execution_exception"
    root = info.value.body["error"]["root_cause"][0]
    assert root["type"] == "query_shard_exception" and "expected ']' at position 3" in root["reason"]
    assert info.value.body["error"]["failed_shards"][0]["reason"]["type"] == "query_shard_exception"


def test_terms_include_exclude_regex(es: Elasticsearch, docs: str) -> None:
    # Reference "Terms aggregation" > "Filtering values with regular expressions"
    aggs = {"t": {"terms": {"field": "tags", "include": "[ab]", "exclude": "b"}}}
    buckets = es.search(index=docs, size=0, aggs=aggs)["aggregations"]["t"]["buckets"]
    assert [b["key"] for b in buckets] == ["a"]


def test_aggregation_errors_are_elasticsearch_errors(es: Elasticsearch, docs: str) -> None:
    # AggregationBuilder validation: terms without a field, filters without filters
    with pytest.raises(BadRequestError) as info:
        es.search(index=docs, size=0, aggs={"t": {"terms": {}}})
    assert info.value.body["error"]["reason"] == "Required one of fields [field, script], but none were specified. "
    with pytest.raises(BadRequestError) as info:
        es.search(index=docs, size=0, aggs={"f": {"filters": {}}})
    assert info.value.body["error"]["reason"] == "[filters] cannot be empty."


def test_missing_on_value_count_and_cardinality(es: Elasticsearch, docs: str) -> None:
    # Reference "Value count aggregation" / "Cardinality aggregation": `missing`
    aggs: dict[str, t.Any] = {
        "vc": {"value_count": {"field": "x", "missing": 0}},
        "card": {"cardinality": {"field": "x", "missing": 0}},
        "card_same": {"cardinality": {"field": "x", "missing": 1.5}},
        "vc_plain": {"value_count": {"field": "x"}},
    }
    found = es.search(index=docs, size=0, aggs=aggs)["aggregations"]
    assert found["vc"]["value"] == 3 and found["vc_plain"]["value"] == 2
    assert found["card"]["value"] == 3 and found["card_same"]["value"] == 2


def test_date_histogram_and_composite_formats(es: Elasticsearch, docs: str) -> None:
    # Reference "Date histogram aggregation" > format; "Composite aggregation" > date_histogram `format`
    aggs: dict[str, t.Any] = {
        "iso": {"date_histogram": {"field": "ts", "calendar_interval": "day", "format": "iso8601", "min_doc_count": 1}},
        "custom": {"date_histogram": {"field": "local", "calendar_interval": "day", "min_doc_count": 1}},
        "c": {
            "composite": {
                "sources": [
                    {"d": {"date_histogram": {"field": "ts", "calendar_interval": "day", "format": "yyyy/MM/dd"}}}
                ]
            }
        },
    }
    found = es.search(index=docs, size=0, aggs=aggs)["aggregations"]
    assert [b["key_as_string"] for b in found["iso"]["buckets"]][0] == "2024-03-01T00:00:00.000Z"
    assert found["custom"]["buckets"][0]["key_as_string"] == "2024-03-01 00:00:00.000000"
    keys = [b["key"]["d"] for b in found["c"]["buckets"]]
    assert keys == ["2024/03/01", "2024/03/02", "2024/03/05"]
    after = {"composite": {**aggs["c"]["composite"], "after": {"d": "2024/03/02"}}}
    more = es.search(index=docs, size=0, aggs={"c": after})["aggregations"]["c"]["buckets"]
    assert [b["key"]["d"] for b in more] == ["2024/03/05"]


def test_histogram(es: Elasticsearch, docs: str) -> None:
    # Reference "Histogram aggregation": keys floor((value - offset) / interval) * interval + offset, gaps filled
    found = es.search(index=docs, size=0, aggs={"h": {"histogram": {"field": "n", "interval": 5}}})["aggregations"]
    assert [(b["key"], b["doc_count"]) for b in found["h"]["buckets"]] == [(0.0, 2), (5.0, 0), (10.0, 1)]
    found = es.search(
        index=docs, size=0, aggs={"h": {"histogram": {"field": "n", "interval": 5, "min_doc_count": 1, "offset": 1}}}
    )["aggregations"]
    assert [(b["key"], b["doc_count"]) for b in found["h"]["buckets"]] == [(1.0, 2), (11.0, 1)]


def test_too_many_buckets(es: Elasticsearch, docs: str) -> None:
    # MultiBucketConsumerService: search.max_buckets (65,536) -> too_many_buckets_exception, 400
    aggs = {"h": {"histogram": {"field": "n", "interval": 0.0001}}}
    with pytest.raises(BadRequestError) as info:
        es.search(index=docs, size=0, aggs=aggs)
    cause = info.value.body["error"]["caused_by"]
    assert cause["type"] == "too_many_buckets_exception" and cause["max_buckets"] == 65536
    assert cause["reason"].startswith("Trying to create too many buckets. Must be less than or equal to: [65536]")


def test_date_format_mappings(es: Elasticsearch, index_name: str) -> None:
    # Reference "format" mapping parameter: custom Java patterns; an unknown letter is refused at mapping time
    es.indices.create(
        index=index_name, mappings={"properties": {"d": {"type": "date", "format": "dd/MMM/yyyy:HH:mm:ss Z"}}}
    )
    es.index(index=index_name, id="1", document={"d": "02/Jan/2024:03:04:05 +0100"}, refresh=True)
    found = es.search(index=index_name, query={"range": {"d": {"gte": "02/Jan/2024:02:04:05 +0000"}}})
    assert found["hits"]["total"]["value"] == 1
    with pytest.raises(BadRequestError) as info:
        es.indices.create(
            index=f"{index_name}-bad", mappings={"properties": {"d": {"type": "date", "format": "yyyy-qq"}}}
        )
    assert info.value.error == "mapper_parsing_exception"


def test_msearch(es: Elasticsearch, docs: str) -> None:
    # msearch/10_basic.yml: one response per search, errors in place, each with its status
    result = es.msearch(
        searches=[
            {"index": docs},
            {"query": {"term": {"status": "ok"}}},
            {"index": f"{docs}-missing"},
            {"query": {"match_all": {}}},
            {},
            {"query": {"match_all": {}}, "size": 0},
        ],
        index=docs,
        rest_total_hits_as_int=True,
    )
    first, missing, third = result["responses"]
    assert first["status"] == 200 and first["hits"]["total"] == 2
    assert missing["status"] == 404 and missing["error"]["type"] == "index_not_found_exception"
    assert third["hits"]["total"] == 3


def test_close_and_open(es: Elasticsearch, docs: str) -> None:
    # indices.open/10_basic.yml: a closed index refuses searches (index_closed_exception) until reopened
    assert es.indices.close(index=docs)["indices"] == {docs: {"closed": True}}
    with pytest.raises(BadRequestError) as info:
        es.search(index=docs)
    assert info.value.error == "index_closed_exception"
    assert es.search(index=docs, ignore_unavailable=True)["hits"]["total"]["value"] == 0
    with pytest.raises(ApiError):
        es.index(index=docs, id="9", document={"n": 1})
    assert es.indices.open(index=docs)["acknowledged"] is True
    assert es.count(index=docs)["count"] == 3


def test_bucket_order_and_formats_outside_the_subset(es: Elasticsearch, docs: str) -> None:
    # Reference "Date histogram aggregation" > order (`_count`, `_key`); a numeric `format` (DecimalFormat)
    # is not implemented here and is refused rather than ignored
    aggs: dict[str, t.Any] = {
        "d": {"date_histogram": {"field": "ts", "calendar_interval": "month", "order": {"_count": "asc"}}},
        "h": {"histogram": {"field": "n", "interval": 5, "order": {"_count": "desc"}}},
    }
    found = es.search(index=docs, size=0, aggs=aggs)["aggregations"]
    assert [b["doc_count"] for b in found["d"]["buckets"]] == [3]
    assert [(b["key"], b["doc_count"]) for b in found["h"]["buckets"]] == [(0.0, 2), (10.0, 1), (5.0, 0)]
    with pytest.raises(BadRequestError) as info:
        es.search(index=docs, size=0, aggs={"s": {"sum": {"field": "n", "format": "0.00"}}})
    assert "not implemented" in info.value.body["error"]["reason"]


def test_range_aggregation_on_dates(es: Elasticsearch, docs: str) -> None:
    # Reference "Range aggregation" on a date field: bounds parsed with the field's format, *_as_string keys
    aggs = {"r": {"range": {"field": "ts", "ranges": [{"to": "2024-03-02"}, {"from": "2024-03-02||+1d"}]}}}
    buckets = es.search(index=docs, size=0, aggs=aggs)["aggregations"]["r"]["buckets"]
    assert [(b["key"], b["doc_count"]) for b in buckets] == [
        ("*-2024-03-02T00:00:00.000Z", 1),
        ("2024-03-03T00:00:00.000Z-*", 1),
    ]
    assert buckets[0]["to"] == 1709337600000.0 and buckets[1]["from_as_string"] == "2024-03-03T00:00:00.000Z"


def test_typed_keys(es: Elasticsearch, docs: str) -> None:
    # search/aggregation typed_keys (rest-api-spec search.json `typed_keys`): result names get the type prefix
    aggs: dict[str, t.Any] = {
        "s": {"terms": {"field": "status"}, "aggs": {"m": {"max": {"field": "n"}}}},
        "l": {"terms": {"field": "n"}},
        "d": {"terms": {"field": "x"}},
        "h": {"date_histogram": {"field": "ts", "calendar_interval": "month"}},
    }
    found = es.search(index=docs, size=0, aggs=aggs, typed_keys=True)["aggregations"]
    assert set(found) == {"sterms#s", "lterms#l", "dterms#d", "date_histogram#h"}
    assert "max#m" in found["sterms#s"]["buckets"][0]
