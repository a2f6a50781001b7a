"""Request validation: unknown URL parameters and body keys get ES errors; unimplemented ones are refused."""

from __future__ import annotations

import typing as t

import pytest
from elasticsearch import ApiError, Elasticsearch

from tests.testing import es_fixtures

es_server = es_fixtures.es_server
es = es_fixtures.es
index_name = es_fixtures.index_name


def _error(
    es: Elasticsearch, method: str, path: str, body: t.Any = None, **params: str
) -> tuple[int, dict[str, t.Any]]:
    """The status and ``error`` object of a request the client would not let through its typed API."""
    headers = {"accept": "application/json"}
    if body is not None:
        headers["content-type"] = "application/json"
    with pytest.raises(ApiError) as info:
        es.perform_request(method, path, params=params or None, headers=headers, body=body)
    payload = info.value.body
    assert payload["status"] == info.value.meta.status  # the shape ES uses: error + status
    error = payload["error"]
    assert error["root_cause"] and {"type", "reason"} <= set(error["root_cause"][0])
    return info.value.meta.status, error


@pytest.fixture
def docs(es: Elasticsearch, index_name: str) -> str:
    es.indices.create(
        index=index_name,
        mappings={"properties": {"status": {"type": "keyword"}, "n": {"type": "long"}, "ts": {"type": "date"}}},
    )
    for i in range(3):
        es.index(index=index_name, id=str(i), document={"status": f"s{i}", "n": i, "ts": f"2024-01-0{i + 1}T00:00:00Z"})
    es.indices.refresh(index=index_name)
    return index_name


def test_unknown_url_parameter_is_refused_with_a_suggestion(es: Elasticsearch, docs: str) -> None:
    # BaseRestHandler#unrecognized: "request [...] contains unrecognized parameter: [x] -> did you mean [y]?"
    status, error = _error(es, "GET", f"/{docs}/_search", sizee="1")
    assert status == 400 and error["type"] == "illegal_argument_exception"
    assert (
        error["reason"] == f"request [/{docs}/_search] contains unrecognized parameter: [sizee] -> did you mean [size]?"
    )
    status, error = _error(es, "GET", f"/{docs}/_count", bogus="1", zzz="2")
    assert error["reason"] == f"request [/{docs}/_count] contains unrecognized parameters: [bogus], [zzz]"


def test_known_but_unimplemented_parameter_is_refused_not_ignored(es: Elasticsearch, docs: str) -> None:
    # rest-api-spec api/index.json lists `pipeline`; this server has no ingest pipelines.
    status, error = _error(es, "PUT", f"/{docs}/_doc/9", {"a": 1}, pipeline="p")
    assert status == 400 and "[pipeline]" in error["reason"] and "does not implement" in error["reason"]
    assert es.options(ignore_status=404).get(index=docs, id="9")["found"] is False
    status, error = _error(es, "GET", f"/{docs}/_search", explain="true")
    assert status == 400 and "explain" in error["reason"]


def test_query_clause_outside_query_is_a_parsing_exception(es: Elasticsearch, docs: str) -> None:
    # SearchSourceBuilder#parseXContent: "Unknown key for a START_OBJECT in [term]."
    status, error = _error(es, "POST", f"/{docs}/_search", '{"term": {"status": "s1"}}')
    assert (status, error["type"]) == (400, "parsing_exception")
    assert error["reason"] == "Unknown key for a START_OBJECT in [term]."
    assert (error["line"], error["col"]) == (1, 10)  # Jackson's location of the value token
    assert error["root_cause"][0]["col"] == 10
    status, error = _error(es, "POST", f"/{docs}/_search", {"query": {"match_all": {}}, "sizes": 3})
    assert error["reason"] == "Unknown key for a VALUE_NUMBER in [sizes]."
    # RestActions#getQueryContent (_count): "request does not support [term]"
    status, error = _error(es, "POST", f"/{docs}/_count", '{"query": {"match_all": {}},\n "term": {}}')
    assert (status, error["type"], error["reason"]) == (400, "parsing_exception", "request does not support [term]")
    assert (error["line"], error["col"]) == (2, 2)  # the field name's location


@pytest.mark.parametrize("key", ["highlight", "suggest", "rescore", "script_fields", "runtime_mappings"])
def test_unimplemented_search_features_are_refused(es: Elasticsearch, docs: str, key: str) -> None:
    status, error = _error(es, "POST", f"/{docs}/_search", {key: {}})
    assert status == 400 and error["type"] == "illegal_argument_exception" and f"[{key}]" in error["reason"]


def test_profile_true_is_refused_and_false_is_a_plain_search(es: Elasticsearch, docs: str) -> None:
    _error(es, "POST", f"/{docs}/_search", {"profile": True})
    assert es.search(index=docs, body={"profile": False})["hits"]["total"]["value"] == 3


def test_negative_from_and_size(es: Elasticsearch, docs: str) -> None:
    # search/30_limits.yml "Request with negative from value"; search/260_parameter_validation.yml
    status, error = _error(es, "GET", f"/{docs}/_search", **{"from": "-2"})
    assert status == 400 and error["type"] == "illegal_argument_exception"
    assert error["reason"].startswith("[from] parameter cannot be negative")
    _, error = _error(es, "POST", f"/{docs}/_search", {"from": -1})
    assert error["reason"] == "[from] parameter cannot be negative but was [-1]"
    _, error = _error(es, "GET", f"/{docs}/_search", size="-5")
    assert error["reason"] == "[size] parameter cannot be negative, found [-5]"


def test_scroll_batch_size_limit(es: Elasticsearch, docs: str) -> None:
    # search/30_limits.yml "Request window limits with scroll"
    _, error = _error(es, "GET", f"/{docs}/_search", scroll="1m", size="10010")
    assert error["type"] == "search_phase_execution_exception"
    assert error["root_cause"][0]["reason"].startswith(
        "Batch size is too large, size must be less than or equal to: [10000]"
    )


def test_rest_total_hits_as_int(es: Elasticsearch, docs: str) -> None:
    # search/220_total_hits_object.yml: rest_total_hits_as_int renders hits.total as a number
    found = es.search(index=docs, rest_total_hits_as_int=True)
    assert found["hits"]["total"] == 3
    _, error = _error(es, "GET", f"/{docs}/_search", rest_total_hits_as_int="true", track_total_hits="2")
    assert "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate" in error["reason"]
    page = es.search(index=docs, scroll="1m", size=1, rest_total_hits_as_int=True)
    assert page["hits"]["total"] == 3
    more = es.scroll(scroll_id=page["_scroll_id"], scroll="1m", rest_total_hits_as_int=True)
    assert more["hits"]["total"] == 3
    es.clear_scroll(scroll_id=page["_scroll_id"])


def test_unknown_aggregation_parameters_and_types(es: Elasticsearch, docs: str) -> None:
    # ObjectParser: "[terms] unknown field [x]"; AggregatorFactories: "Unknown aggregation type [x]"
    raw = '{"aggs": {"a": {"terms": {"field": "status",\n  "sizee": 1}}}}'
    _, error = _error(es, "POST", f"/{docs}/_search", raw)
    # XContentParseException carries Jackson's location of the field name: line 2, column 3
    assert (error["type"], error["reason"]) == ("x_content_parse_exception", "[2:3] [terms] unknown field [sizee]")
    _, error = _error(es, "POST", f"/{docs}/_search", {"aggs": {"a": {"termz": {"field": "status"}}}})
    assert error["type"] == "parsing_exception" and error["reason"].startswith("Unknown aggregation type [termz]")
    _, error = _error(es, "POST", f"/{docs}/_search", {"aggs": {"a": {"percentiles": {"field": "n"}}}})
    assert "[percentiles]" in error["reason"] and "not implemented" in error["reason"]
    _, error = _error(es, "POST", f"/{docs}/_search", {"aggs": {"a": {"nested": {"path": "x"}}}})
    assert "[nested]" in error["reason"] and "not implemented" in error["reason"]


def test_sort_parameters_are_checked(es: Elasticsearch, docs: str) -> None:
    _, error = _error(es, "POST", f"/{docs}/_search", {"sort": [{"n": {"orderr": "asc"}}]})
    assert (error["type"], error["reason"]) == ("x_content_parse_exception", "[field_sort] unknown field [orderr]")


def test_bulk_metadata_keys_are_checked(es: Elasticsearch, index_name: str) -> None:
    # BulkRequestParser: "Action/metadata line [1] contains an unknown parameter [x]"; 10_basic.yml "empty action"
    body = '{"index": {"_index": "' + index_name + '", "_idd": "1"}}\n{"a": 1}\n'
    _, error = _error(es, "POST", "/_bulk", body)
    assert error["reason"] == "Action/metadata line [1] contains an unknown parameter [_idd]"
    body = '{"index": {"_index": "' + index_name + '", "_id": "1"}}\n{"a": 1}\n{}\n'
    _, error = _error(es, "POST", "/_bulk", body)
    assert error["reason"] == "Malformed action/metadata line [3], expected FIELD_NAME but found [END_OBJECT]"


def test_source_parameter_carries_the_body_and_pretty_indents(es: Elasticsearch, docs: str) -> None:
    # api/_common.json: `source` (with source_content_type) and `pretty` are accepted by every API
    found = es.perform_request(
        "GET",
        f"/{docs}/_count",
        params={"source": '{"query": {"term": {"status": "s1"}}}', "source_content_type": "application/json"},
        headers={"accept": "application/json"},
    )
    assert found["count"] == 1
    raw = es.perform_request("GET", "/", params={"pretty": "true"}, headers={"accept": "application/json"})
    assert raw["tagline"] == "You Know, for Search"


def test_query_parameters_are_checked(es: Elasticsearch, docs: str) -> None:
    # MatchQueryBuilder#fromXContent: "[match] query does not support [x]"; features not implemented are refused
    _, error = _error(es, "POST", f"/{docs}/_search", {"query": {"match": {"status": {"query": "s1", "fuzzyness": 1}}}})
    assert (error["type"], error["reason"]) == ("parsing_exception", "[match] query does not support [fuzzyness]")
    _, error = _error(es, "POST", f"/{docs}/_search", {"query": {"match": {"status": {"query": "s1", "fuzziness": 1}}}})
    assert "[fuzziness]" in error["reason"] and "not implemented" in error["reason"]
    _, error = _error(es, "POST", f"/{docs}/_search", {"query": {"bool": {"must": [], "shoud": []}}})
    assert error["reason"] == "[bool] query does not support [shoud]"
    _, error = _error(es, "POST", f"/{docs}/_search", {"query": {"nested": {"path": "p", "query": {"match_all": {}}}}})
    assert "[nested]" in error["reason"] and "not implemented" in error["reason"]
    _, error = _error(es, "POST", f"/{docs}/_search", {"query": {"term": {"status": {"value": "s1", "_name": "q"}}}})
    assert "[_name]" in error["reason"]
    found = es.search(index=docs, query={"match_phrase": {"status": {"query": "s1", "slop": 0}}})
    assert found["hits"]["total"]["value"] == 1


def test_match_phrase_prefix_matches_a_prefix_of_the_last_term(es: Elasticsearch, index_name: str) -> None:
    # Reference "Match phrase prefix query": the last term is a prefix
    es.index(index=index_name, id="1", document={"t": "quick brown fox"}, refresh=True)
    assert es.count(index=index_name, query={"match_phrase_prefix": {"t": "quick bro"}})["count"] == 1
    assert es.count(index=index_name, query={"match_phrase_prefix": {"t": "quick fo"}})["count"] == 0


def test_mapping_parameters_are_checked(es: Elasticsearch, index_name: str) -> None:
    # FieldMapper.Builder#parse: "unknown parameter [x] on mapper [f] of type [keyword]"; RootObjectMapper:
    # "Root mapping definition has unsupported parameters"; CreateIndexRequest: "unknown key [x] for create index"
    with pytest.raises(ApiError) as info:
        es.indices.create(index=index_name, mappings={"properties": {"f": {"type": "keyword", "ignore_abov": 3}}})
    assert info.value.body["error"]["type"] == "mapper_parsing_exception"
    assert "unknown parameter [ignore_abov] on mapper [f] of type [keyword]" in info.value.body["error"]["reason"]
    with pytest.raises(ApiError) as info:
        es.indices.create(index=index_name, mappings={"propertiez": {}})
    assert "Root mapping definition has unsupported parameters" in info.value.body["error"]["reason"]
    with pytest.raises(ApiError) as info:
        es.indices.create(index=index_name, mappings={"properties": {"f": {"type": "keyword", "copy_to": "g"}}})
    assert "[copy_to: g]" in info.value.body["error"]["reason"]
    _, error = _error(es, "PUT", f"/{index_name}", {"setings": {}})
    assert (error["type"], error["reason"]) == ("parse_exception", "unknown key [setings] for create index")
    assert not es.indices.exists(index=index_name)


@pytest.mark.parametrize(
    "body",
    [
        {"aggs": {"a": {"terms": {"field": "status", "size": "x"}}}},
        {"aggs": {"a": {"composite": {"sources": 5}}}},
        {"aggs": {"a": {"range": {"field": "n", "ranges": [{"from": "x"}]}}}},
        {"aggs": {"a": {"date_histogram": {"field": "status", "fixed_interval": "1d"}}}},
        {"query": {"ids": {"values": 5}}},
        {"query": {"exists": {}}},
        {"_source": 5},
        {"stored_fields": [5]},
    ],
)
def test_malformed_bodies_are_client_errors(es: Elasticsearch, docs: str, body: dict[str, t.Any]) -> None:
    # Elasticsearch's parsers answer values of the wrong type with a 400 (x_content_parse_exception,
    # parsing_exception or illegal_argument_exception), never with an internal error.
    status, error = _error(es, "POST", f"/{docs}/_search", body)
    assert status == 400
    # parse-time refusals come as they are, shard-level ones wrapped in search_phase_execution_exception
    assert error["root_cause"][0]["type"] in (
        "x_content_parse_exception",
        "parsing_exception",
        "illegal_argument_exception",
    )


def test_time_values_and_point_in_time_keep_alive(es: Elasticsearch, docs: str) -> None:
    # OpenPointInTimeRequest#validate: "[keep_alive] is not specified"; TimeValue#parseTimeValue for `scroll`
    _, error = _error(es, "POST", f"/{docs}/_pit")
    assert (error["type"], error["reason"]) == (
        "action_request_validation_exception",
        "Validation Failed: 1: [keep_alive] is not specified;",
    )
    _, error = _error(es, "GET", f"/{docs}/_search", scroll="soon")
    assert "failed to parse setting [scroll] with value [soon] as a time value" in error["reason"]
    pit = es.open_point_in_time(index=docs, keep_alive="1m")["id"]
    assert es.search(pit={"id": pit}, size=0)["hits"]["total"]["value"] == 3
    es.close_point_in_time(id=pit)


def test_dynamic_template_parameters_are_checked(es: Elasticsearch, index_name: str) -> None:
    # DynamicTemplate#parse: "Illegal dynamic template parameter: [x]"; its mapping's parameters as for fields
    with pytest.raises(ApiError) as info:
        es.indices.create(index=index_name, mappings={"dynamic_templates": [{"s": {"match_typ": "string"}}]})
    assert "Illegal dynamic template parameter: [match_typ]" in info.value.body["error"]["reason"]
    with pytest.raises(ApiError) as info:
        es.indices.create(
            index=index_name,
            mappings={"dynamic_templates": [{"s": {"match": "*", "mapping": {"type": "keyword", "copy_to": "x"}}}]},
        )
    assert "[copy_to: x]" in info.value.body["error"]["reason"]


def test_unknown_endpoint(es: Elasticsearch) -> None:
    # RestController#handleBadRequest: "no handler found for uri [...] and method [...]" (400, a plain string)
    with pytest.raises(ApiError) as info:
        es.perform_request("GET", "/_no_such_api", headers={"accept": "application/json"})
    assert info.value.meta.status == 400
    assert info.value.body == {"error": "no handler found for uri [/_no_such_api] and method [GET]", "status": 400}


def test_wrong_method_on_a_known_endpoint(es: Elasticsearch, docs: str) -> None:
    # RestController: "Incorrect HTTP method for uri [...] and method [...], allowed: [...]" (405)
    with pytest.raises(ApiError) as info:
        es.perform_request("PUT", f"/{docs}/_search", headers={"accept": "application/json"})
    assert info.value.meta.status == 405
    assert info.value.body["error"] == (
        f"Incorrect HTTP method for uri [/{docs}/_search] and method [PUT], allowed: [GET, POST]"
    )


def test_cat_indices_headers_sort_and_formats(es: Elasticsearch, index_name: str) -> None:
    # cat.indices/10_basic.yml: `v` headers, `s` sort keys, aligned text; other formats refused here
    es.indices.create(index=f"{index_name}-b", settings={"number_of_replicas": 0})
    es.indices.create(index=f"{index_name}-a", settings={"number_of_replicas": 0})
    es.index(index=f"{index_name}-a", document={"x": 1}, refresh=True)
    text = es.cat.indices(index=f"{index_name}-*", v=True, s="index:desc", h="index,docs.count").body
    lines = text.splitlines()
    assert lines[0].split() == ["index", "docs.count"]
    assert [line.split()[0] for line in lines[1:]] == [f"{index_name}-b", f"{index_name}-a"]
    assert len({len(line) for line in lines}) == 1  # one column width for every row
    _, error = _error(es, "GET", f"/_cat/indices/{index_name}-*", format="yaml")
    assert "not implemented" in error["reason"]


def test_query_parse_errors_carry_line_and_col(es: Elasticsearch, docs: str) -> None:
    # AbstractQueryBuilder#parseInnerQueryBuilder / ParsingException: line and col of the offending token
    raw = '{"query": {"bool": {"must": [\n  {"match_all": {}},\n  {"nope": {}}]}}}'
    _, error = _error(es, "POST", f"/{docs}/_search", raw)
    assert (error["type"], error["reason"]) == ("parsing_exception", "unknown query [nope]")
    assert (error["line"], error["col"]) == (3, 4)
    raw = '{"query": {"match": {"status": {"query": "s1", "fuzzyness": 1}}}}'
    _, error = _error(es, "POST", f"/{docs}/_count", raw)
    assert error["reason"] == "[match] query does not support [fuzzyness]"
    assert (error["line"], error["col"]) == (1, raw.index('"fuzzyness"') + 1)
