"""Aggregation request audits: the parameters each aggregation takes, as Elasticsearch's parsers define them.

An unknown parameter is Elasticsearch's ``[terms] unknown field [x]`` (``x_content_parse_exception``);
a parameter Elasticsearch takes but this server does not implement (``script``, ``keyed``, ...) is
refused with a message saying so; an aggregation type Elasticsearch has but this server does not
(``percentiles``, ``nested``, pipelines ...) is refused likewise, and a name Elasticsearch does not
know is its ``Unknown aggregation type [x]`` with the same suggestions logic as for URL parameters.
"""

from __future__ import annotations

import typing as t

from flask_difylogstore.testing.es.body_check import not_implemented
from flask_difylogstore.testing.es.errors import EsError, bad_request, parsing_error
from flask_difylogstore.testing.es.params import _similarity

MAX_BUCKETS = 65_536
_VS = {"field", "missing", "script", "format", "value_type"}
_HISTO = {"interval", "offset", "order", "keyed", "min_doc_count", "extended_bounds", "hard_bounds"}

# aggregation type -> (accepted keys, keys known to Elasticsearch that are refused here)
PARAMS: dict[str, tuple[set[str], set[str]]] = {
    "terms": (
        {"field", "missing", "format", "size", "shard_size", "min_doc_count", "shard_min_doc_count", "order",
         "include", "exclude", "execution_hint", "collect_mode", "show_term_doc_count_error"},
        {"script", "value_type"},
    ),
    "date_histogram": (
        {"field", "missing", "format", "time_zone", "calendar_interval", "fixed_interval", "offset", "order",
         "min_doc_count", "extended_bounds", "hard_bounds"},
        {"script", "value_type", "keyed"},
    ),
    "histogram": (_VS - {"script", "value_type"} | _HISTO - {"keyed"}, {"script", "value_type", "keyed"}),
    "composite": ({"sources", "size", "after"}, set()),
    "range": ({"field", "missing", "ranges"}, {"script", "value_type", "keyed", "format"}),
    "filter": (set(), set()),  # the body is a query
    "filters": ({"filters", "other_bucket", "other_bucket_key"}, {"keyed"}),
    "top_hits": (
        {"from", "size", "sort", "_source", "version", "seq_no_primary_term", "track_scores"},
        {"explain", "highlight", "stored_fields", "docvalue_fields", "fields", "script_fields"},
    ),
    "cardinality": ({"field", "missing", "precision_threshold", "execution_hint"}, {"script", "value_type", "format"}),
    "value_count": ({"field", "missing"}, {"script", "value_type", "format"}),
    **{k: ({"field", "missing", "format"}, {"script", "value_type"}) for k in ("sum", "avg", "min", "max", "stats")},
}  # fmt: skip
COMPOSITE_SOURCES: dict[str, set[str]] = {
    "terms": {"field", "missing_bucket", "missing_order", "order"},
    "date_histogram": {"field", "missing_bucket", "missing_order", "order", "format", "calendar_interval",
                       "fixed_interval", "time_zone", "offset"},
}  # fmt: skip
# Aggregation types of Elasticsearch's default distribution this server does not implement.
KNOWN_ELSEWHERE = {
    "nested", "reverse_nested", "children", "parent", "global", "missing", "sampler", "diversified_sampler",
    "random_sampler", "significant_terms", "significant_text", "rare_terms", "multi_terms", "auto_date_histogram",
    "variable_width_histogram", "date_range", "ip_range", "ip_prefix", "geo_distance", "geohash_grid",
    "geotile_grid", "geohex_grid", "adjacency_matrix", "frequent_item_sets", "categorize_text", "time_series",
    "percentiles", "percentile_ranks", "median_absolute_deviation", "extended_stats", "string_stats",
    "weighted_avg", "scripted_metric", "geo_bounds", "geo_centroid", "geo_line", "boxplot", "t_test", "rate",
    "top_metrics", "matrix_stats", "avg_bucket", "max_bucket", "min_bucket", "sum_bucket", "stats_bucket",
    "extended_stats_bucket", "percentiles_bucket", "bucket_script", "bucket_selector", "bucket_sort",
    "cumulative_sum", "cumulative_cardinality", "derivative", "moving_fn", "moving_percentiles", "normalize",
    "serial_diff", "inference", "change_point", "bucket_count_ks_test", "bucket_correlation",
}  # fmt: skip


def unknown_field(kind: str, key: str) -> EsError:
    error = EsError(400, "x_content_parse_exception", f"[{kind}] unknown field [{key}]")
    error.field_key = key
    return error


def check_type(name: str, kind: str) -> None:
    if kind in PARAMS:
        return
    if kind in KNOWN_ELSEWHERE:
        raise not_implemented(f"The [{kind}] aggregation (in [{name}])")
    candidates = sorted(PARAMS.keys() | KNOWN_ELSEWHERE)
    scored = sorted(
        ((_similarity(kind, c), c) for c in candidates if _similarity(kind, c) > 0.5), key=lambda s: (-s[0], s[1])
    )
    hint = ""
    if scored:
        keys = [c for _, c in scored]
        hint = f" did you mean [{keys[0]}]?" if len(keys) == 1 else f" did you mean any of [{', '.join(keys)}]?"
    raise parsing_error(f"Unknown aggregation type [{kind}]{hint}")


def check_params(name: str, kind: str, params: t.Any) -> None:
    """The parameters of one aggregation; ``filter`` takes a query and is checked when compiled."""
    if kind == "filter":
        return
    if not isinstance(params, dict):
        raise parsing_error(f"Expected [START_OBJECT] under [{kind}], but got a [{type(params).__name__}] in [{name}]")
    accepted, refused = PARAMS[kind]
    for key in params:
        if key in refused:
            raise not_implemented(f"[{key}] on the [{kind}] aggregation")
        if key not in accepted:
            raise unknown_field(kind, key)
    if kind not in ("composite", "filters", "top_hits") and "field" not in params:
        raise bad_request("Required one of fields [field, script], but none were specified. ")


def check_source(kind: str, params: t.Any) -> None:
    if kind == "histogram":
        raise not_implemented("The composite [histogram] source")
    allowed = COMPOSITE_SOURCES.get(kind)
    if allowed is None:
        raise parsing_error(f"Unknown source type [{kind}] in composite aggregation")
    for key in params:
        if key in ("script", "value_type"):
            raise not_implemented(f"[{key}] on a composite [{kind}] source")
        if key not in allowed:
            raise unknown_field(kind, key)
    if "field" not in params:
        raise bad_request("Required one of fields [field, script], but none were specified. ")


def too_many_buckets(count: int, limit: int = MAX_BUCKETS) -> EsError:
    """``MultiBucketConsumerService.TooManyBucketsException``: a 400 raised on the shard."""
    reason = (
        f"Trying to create too many buckets. Must be less than or equal to: [{limit}] but was [{count}]. "
        "This limit can be set by changing the [search.max_buckets] cluster level setting."
    )
    return EsError(400, "too_many_buckets_exception", reason, extra={"max_buckets": limit}, shard=True)
