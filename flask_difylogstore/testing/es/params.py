"""URL query parameters: each endpoint accepts what Elasticsearch's REST API spec lists for it, nothing else.

Elasticsearch refuses a parameter its handler does not consume with ``illegal_argument_exception``
"request [/path] contains unrecognized parameter: [x] -> did you mean [y]?" (``BaseRestHandler``).
Here every API names the parameters it *implements* (or that change nothing on a one-node cluster
without timeouts, such as ``timeout`` or ``preference``); a parameter Elasticsearch knows but this
server does not implement is refused with a message saying so, never accepted and ignored.
"""

from __future__ import annotations

from flask_difylogstore.testing.es.errors import EsError

# Parameters every endpoint takes (rest-api-spec ``_common.json``); ``source`` carries a body in the URL.
COMMON = {"pretty", "human", "error_trace", "filter_path", "source", "source_content_type"}
_INDICES_OPTS = {"allow_no_indices", "expand_wildcards", "ignore_unavailable"}
_MASTER = {"master_timeout", "timeout"}
_WRITE = {"refresh", "timeout", "wait_for_active_shards", "routing"}
_SOURCE = {"_source", "_source_includes", "_source_excludes"}
_QS = {"q", "default_operator", "df", "lenient"}
# _delete_by_query and _update_by_query share their parameters (update adds a pipeline and version_type)
_BY_QUERY = (
    _INDICES_OPTS
    | _QS
    | {
        "conflicts",
        "max_docs",
        "refresh",
        "preference",
        "routing",
        "timeout",
        "wait_for_active_shards",
        "request_cache",
        "search_type",
        "stats",
    }
)
_BY_QUERY_UNIMPLEMENTED = {
    "analyzer",
    "analyze_wildcard",
    "from",
    "requests_per_second",
    "scroll",
    "scroll_size",
    "search_timeout",
    "slices",
    "sort",
    "terminate_after",
    "version",
    "wait_for_completion",
}

# api name -> (implemented or no-op on one node, known to Elasticsearch but not implemented here)
APIS: dict[str, tuple[set[str], set[str]]] = {
    "info": (set(), set()),
    "search": (
        _INDICES_OPTS
        | _QS
        | _SOURCE
        | {
            "from",
            "size",
            "sort",
            "scroll",
            "track_total_hits",
            "rest_total_hits_as_int",
            "version",
            "seq_no_primary_term",
            "docvalue_fields",
            "stored_fields",
            "track_scores",
            "timeout",
            "preference",
            "routing",
            "request_cache",
            "batched_reduce_size",
            "max_concurrent_shard_requests",
            "pre_filter_shard_size",
            "ccs_minimize_roundtrips",
            "allow_partial_search_results",
            "ignore_throttled",
            "search_type",
            "stats",
            "explain",
            "min_compatible_shard_node",
            "typed_keys",
        },
        {
            "analyzer",
            "analyze_wildcard",
            "terminate_after",
            "suggest_field",
            "suggest_mode",
            "suggest_size",
            "suggest_text",
            "force_synthetic_source",
            "include_named_queries_score",
        },
    ),
    "count": (
        _INDICES_OPTS | _QS | {"preference", "routing", "ignore_throttled"},
        {"analyzer", "analyze_wildcard", "min_score", "terminate_after"},
    ),
    "msearch": (
        _INDICES_OPTS
        | {
            "rest_total_hits_as_int",
            "max_concurrent_searches",
            "max_concurrent_shard_requests",
            "pre_filter_shard_size",
            "ccs_minimize_roundtrips",
            "ignore_throttled",
            "routing",
            "search_type",
            "typed_keys",
        },
        {"include_named_queries_score"},
    ),
    "scroll": ({"scroll", "scroll_id", "rest_total_hits_as_int"}, set()),
    "clear_scroll": ({"scroll_id"}, set()),
    "open_point_in_time": (
        _INDICES_OPTS
        | {"keep_alive", "preference", "routing", "allow_partial_search_results", "max_concurrent_shard_requests"},
        set(),
    ),
    "close_point_in_time": (set(), set()),
    "index": (
        _WRITE
        | {
            "op_type",
            "version",
            "version_type",
            "if_seq_no",
            "if_primary_term",
            "require_alias",
            "include_source_on_error",
        },
        {"pipeline", "require_data_stream"},
    ),
    "create": (
        _WRITE | {"version", "version_type", "require_alias", "include_source_on_error"},
        {"pipeline", "require_data_stream"},
    ),
    "get": (
        _SOURCE | {"preference", "realtime", "refresh", "routing", "version", "version_type"},
        {"force_synthetic_source", "stored_fields"},
    ),
    "get_source": (_SOURCE | {"preference", "realtime", "refresh", "routing", "version", "version_type"}, set()),
    "delete": (_WRITE | {"version", "version_type", "if_seq_no", "if_primary_term"}, set()),
    "update": (
        _WRITE
        | {"if_seq_no", "if_primary_term", "require_alias", "include_source_on_error", "lang", "retry_on_conflict"},
        _SOURCE,
    ),
    "bulk": (
        _WRITE | {"require_alias", "include_source_on_error"},
        {
            "pipeline",
            "require_data_stream",
            "list_executed_pipelines",
            "_source",
            "_source_includes",
            "_source_excludes",
        },
    ),
    "mget": (
        _SOURCE | {"preference", "realtime", "refresh", "routing"},
        {"force_synthetic_source", "stored_fields"},
    ),
    "delete_by_query": (_BY_QUERY, _BY_QUERY_UNIMPLEMENTED),
    "update_by_query": (_BY_QUERY, _BY_QUERY_UNIMPLEMENTED | {"version_type", "pipeline"}),
    "indices.refresh": (_INDICES_OPTS, set()),
    "indices.create": (_MASTER | {"wait_for_active_shards"}, set()),
    "indices.get": (
        _INDICES_OPTS | {"flat_settings", "local", "master_timeout"},
        {"features", "include_defaults"},
    ),
    "indices.delete": (_INDICES_OPTS | _MASTER, set()),
    "indices.open": (_INDICES_OPTS | _MASTER | {"wait_for_active_shards"}, set()),
    "indices.close": (_INDICES_OPTS | _MASTER | {"wait_for_active_shards"}, set()),
    "indices.get_mapping": (_INDICES_OPTS | {"local", "master_timeout"}, set()),
    "indices.put_mapping": (_INDICES_OPTS | _MASTER, {"write_index_only"}),
    "indices.get_settings": (
        _INDICES_OPTS | {"flat_settings", "local", "master_timeout"},
        {"include_defaults"},
    ),
    "indices.put_settings": (_INDICES_OPTS | _MASTER | {"flat_settings"}, {"preserve_existing", "reopen"}),
    "indices.update_aliases": (_MASTER, set()),
    "indices.put_alias": (_MASTER, set()),
    "indices.delete_alias": (_MASTER, set()),
    "indices.get_alias": (_INDICES_OPTS | {"local", "master_timeout"}, set()),
    "indices.stats": (
        {"expand_wildcards", "level", "forbid_closed_indices"},
        {
            "completion_fields",
            "fielddata_fields",
            "fields",
            "groups",
            "include_segment_file_sizes",
            "include_unloaded_segments",
        },
    ),
    "indices.put_index_template": ({"create", "cause", "master_timeout"}, set()),
    "indices.get_index_template": ({"flat_settings", "local", "master_timeout"}, {"include_defaults"}),
    "indices.delete_index_template": (_MASTER, set()),
    "cluster.put_component_template": ({"create", "cause", "master_timeout"}, set()),
    "cluster.get_component_template": ({"flat_settings", "local", "master_timeout"}, {"include_defaults"}),
    "cluster.delete_component_template": (_MASTER, set()),
    "ilm.put_lifecycle": (_MASTER, set()),
    "ilm.get_lifecycle": (_MASTER, set()),
    "ilm.delete_lifecycle": (_MASTER, set()),
    "ilm.get_status": (set(), set()),
    "cluster.health": (
        {"wait_for_status", "timeout", "master_timeout", "local", "level", "expand_wildcards"},
        {
            "wait_for_active_shards",
            "wait_for_events",
            "wait_for_no_initializing_shards",
            "wait_for_no_relocating_shards",
            "wait_for_nodes",
        },
    ),
    "cat.indices": (
        {"format", "h", "bytes", "local", "master_timeout", "expand_wildcards", "s", "v"},
        {"health", "help", "include_unloaded_segments", "pri", "time"},
    ),
}

# (HTTP method, route pattern) -> api name; HEAD uses the GET entry (``exists`` takes the same parameters).
_ROUTES: dict[tuple[str, str], str] = {
    ("GET", ""): "info",
    ("GET", "_search"): "search", ("POST", "_search"): "search",
    ("GET", "{index}/_search"): "search", ("POST", "{index}/_search"): "search",
    ("GET", "_count"): "count", ("POST", "_count"): "count",
    ("GET", "{index}/_count"): "count", ("POST", "{index}/_count"): "count",
    ("GET", "_msearch"): "msearch", ("POST", "_msearch"): "msearch",
    ("GET", "{index}/_msearch"): "msearch", ("POST", "{index}/_msearch"): "msearch",
    ("GET", "_search/scroll"): "scroll", ("POST", "_search/scroll"): "scroll",
    ("GET", "_search/scroll/{id}"): "scroll", ("POST", "_search/scroll/{id}"): "scroll",
    ("DELETE", "_search/scroll"): "clear_scroll", ("DELETE", "_search/scroll/{id}"): "clear_scroll",
    ("POST", "{index}/_pit"): "open_point_in_time", ("DELETE", "_pit"): "close_point_in_time",
    ("PUT", "{index}/_doc/{id}"): "index", ("POST", "{index}/_doc/{id}"): "index",
    ("POST", "{index}/_doc"): "index", ("PUT", "{index}/_doc"): "index",
    ("PUT", "{index}/_create/{id}"): "create", ("POST", "{index}/_create/{id}"): "create",
    ("GET", "{index}/_doc/{id}"): "get", ("GET", "{index}/_source/{id}"): "get_source",
    ("DELETE", "{index}/_doc/{id}"): "delete", ("POST", "{index}/_update/{id}"): "update",
    ("PUT", "_bulk"): "bulk", ("POST", "_bulk"): "bulk", ("PUT", "{index}/_bulk"): "bulk",
    ("POST", "{index}/_bulk"): "bulk",
    ("GET", "_mget"): "mget", ("POST", "_mget"): "mget", ("GET", "{index}/_mget"): "mget",
    ("POST", "{index}/_mget"): "mget",
    ("POST", "{index}/_delete_by_query"): "delete_by_query",
    ("POST", "{index}/_update_by_query"): "update_by_query",
    ("GET", "_refresh"): "indices.refresh", ("POST", "_refresh"): "indices.refresh",
    ("GET", "{index}/_refresh"): "indices.refresh", ("POST", "{index}/_refresh"): "indices.refresh",
    ("PUT", "{index}"): "indices.create", ("GET", "{index}"): "indices.get", ("DELETE", "{index}"): "indices.delete",
    ("POST", "{index}/_open"): "indices.open", ("POST", "{index}/_close"): "indices.close",
    ("GET", "_mapping"): "indices.get_mapping", ("GET", "{index}/_mapping"): "indices.get_mapping",
    ("PUT", "{index}/_mapping"): "indices.put_mapping", ("POST", "{index}/_mapping"): "indices.put_mapping",
    ("GET", "_settings"): "indices.get_settings", ("GET", "{index}/_settings"): "indices.get_settings",
    ("PUT", "_settings"): "indices.put_settings", ("PUT", "{index}/_settings"): "indices.put_settings",
    ("POST", "_aliases"): "indices.update_aliases",
    ("PUT", "{index}/_alias/{name}"): "indices.put_alias", ("POST", "{index}/_alias/{name}"): "indices.put_alias",
    ("PUT", "{index}/_aliases/{name}"): "indices.put_alias",
    ("POST", "{index}/_aliases/{name}"): "indices.put_alias",
    ("DELETE", "{index}/_alias/{name}"): "indices.delete_alias",
    ("DELETE", "{index}/_aliases/{name}"): "indices.delete_alias",
    ("GET", "_alias"): "indices.get_alias", ("GET", "_alias/{name}"): "indices.get_alias",
    ("GET", "{index}/_alias"): "indices.get_alias", ("GET", "{index}/_alias/{name}"): "indices.get_alias",
    ("GET", "_stats"): "indices.stats", ("GET", "{index}/_stats"): "indices.stats",
    ("PUT", "_index_template/{name}"): "indices.put_index_template",
    ("POST", "_index_template/{name}"): "indices.put_index_template",
    ("GET", "_index_template"): "indices.get_index_template",
    ("GET", "_index_template/{name}"): "indices.get_index_template",
    ("DELETE", "_index_template/{name}"): "indices.delete_index_template",
    ("PUT", "_component_template/{name}"): "cluster.put_component_template",
    ("POST", "_component_template/{name}"): "cluster.put_component_template",
    ("GET", "_component_template"): "cluster.get_component_template",
    ("GET", "_component_template/{name}"): "cluster.get_component_template",
    ("DELETE", "_component_template/{name}"): "cluster.delete_component_template",
    ("PUT", "_ilm/policy/{name}"): "ilm.put_lifecycle",
    ("GET", "_ilm/policy"): "ilm.get_lifecycle", ("GET", "_ilm/policy/{name}"): "ilm.get_lifecycle",
    ("DELETE", "_ilm/policy/{name}"): "ilm.delete_lifecycle", ("GET", "_ilm/status"): "ilm.get_status",
    ("GET", "_cluster/health"): "cluster.health", ("GET", "_cluster/health/{index}"): "cluster.health",
    ("GET", "_cat/indices"): "cat.indices", ("GET", "_cat/indices/{index}"): "cat.indices",
}  # fmt: skip

# Parameters that are accepted only with the values this server implements.
_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("search", "explain"): ("false",),
    ("cluster.health", "level"): ("cluster",),
    ("indices.stats", "level"): ("indices",),
}


def api_name(method: str, route: str) -> str | None:
    return _ROUTES.get(("GET" if method == "HEAD" else method, route))


def _similarity(a: str, b: str) -> float:
    """Lucene's ``LevenshteinDistance``: 1 - edits / longer length."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1.0 - prev[-1] / max(len(a), len(b), 1)


def unrecognized(path: str, invalid: list[str], candidates: set[str]) -> EsError:
    """ES's message, suggestions included (candidates scoring above 0.5, best first)."""
    parts = []
    for name in sorted(invalid):
        scored = sorted(
            ((_similarity(name, c), c) for c in candidates if _similarity(name, c) > 0.5),
            key=lambda s: (-s[0], s[1]),
        )
        text = f"[{name}]"
        if scored:
            keys = [c for _, c in scored]
            text += " -> did you mean " + (f"[{keys[0]}]" if len(keys) == 1 else f"any of [{', '.join(keys)}]") + "?"
        parts.append(text)
    plural = "s" if len(invalid) > 1 else ""
    return EsError(
        400,
        "illegal_argument_exception",
        f"request [{path}] contains unrecognized parameter{plural}: {', '.join(parts)}",
    )


def check(method: str, route: str, path: str, params: dict[str, str]) -> None:
    """Refuse unknown and unimplemented parameters before the request does anything."""
    api = api_name(method, route)
    if api is None:
        return
    accepted, unsupported = APIS[api]
    unknown = [p for p in params if p not in accepted and p not in unsupported and p not in COMMON]
    if unknown:
        raise unrecognized(path, unknown, accepted | unsupported)
    for name in params:
        if name in unsupported:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"request [{path}] uses parameter [{name}], which this local Elasticsearch-compatible server "
                "does not implement",
            )
        allowed = _VALUES.get((api, name))
        if allowed is not None and name in accepted and params[name].lower() not in allowed:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"request [{path}] uses [{name}={params[name]}], which this local Elasticsearch-compatible "
                "server does not implement",
            )
