"""Query DSL parameter audits: what each query accepts, as Elasticsearch's query parsers define it.

An unknown parameter is Elasticsearch's ``[match] query does not support [x]`` (``parsing_exception``);
one Elasticsearch takes but this server does not implement (``fuzziness``, ``analyzer``, ``slop`` other
than 0, named queries ...) is refused with a message saying so, instead of being ignored.
"""

from __future__ import annotations

import typing as t

from flask_difylogstore.testing.es.body_check import not_implemented
from flask_difylogstore.testing.es.errors import parsing_error

_COMMON = {"boost"}
_REFUSED_COMMON = {"_name"}
# query -> (accepted keys, refused keys) of the query object itself
TOP_LEVEL: dict[str, tuple[set[str], set[str]]] = {
    "bool": ({"must", "filter", "should", "must_not", "minimum_should_match", "adjust_pure_negative"}, set()),
    "match_all": (set(), set()),
    "match_none": (set(), set()),
    "constant_score": ({"filter"}, set()),
    "exists": ({"field"}, set()),
    "ids": ({"values"}, set()),
    "dis_max": ({"queries", "tie_breaker"}, set()),
    "multi_match": (
        {"query", "fields", "type", "operator", "minimum_should_match", "lenient", "tie_breaker",
         "auto_generate_synonyms_phrase_query", "zero_terms_query"},
        {"analyzer", "fuzziness", "slop", "prefix_length", "max_expansions", "cutoff_frequency",
         "fuzzy_transpositions", "fuzzy_rewrite"},
    ),
    "query_string": (
        {"query", "fields", "default_field", "default_operator", "lenient", "analyze_wildcard",
         "allow_leading_wildcard", "auto_generate_synonyms_phrase_query"},
        {"analyzer", "quote_analyzer", "fuzziness", "fuzzy_max_expansions", "fuzzy_prefix_length",
         "fuzzy_transpositions", "phrase_slop", "quote_field_suffix", "rewrite", "time_zone", "type", "tie_breaker",
         "max_determinized_states", "minimum_should_match", "enable_position_increments", "escape"},
    ),
    "simple_query_string": (
        {"query", "fields", "default_operator", "lenient", "analyze_wildcard", "auto_generate_synonyms_phrase_query"},
        {"analyzer", "flags", "fuzzy_max_expansions", "fuzzy_prefix_length", "fuzzy_transpositions",
         "minimum_should_match", "quote_field_suffix"},
    ),
}  # fmt: skip
# query -> (accepted keys, refused keys) of the per-field parameters object
PER_FIELD: dict[str, tuple[set[str], set[str]]] = {
    "term": ({"value", "case_insensitive"}, set()),
    "range": ({"gt", "gte", "lt", "lte", "from", "to", "include_lower", "include_upper", "format", "time_zone"},
              {"relation"}),
    "match": (
        {"query", "operator", "minimum_should_match", "lenient", "auto_generate_synonyms_phrase_query",
         "zero_terms_query"},
        {"analyzer", "fuzziness", "prefix_length", "max_expansions", "fuzzy_transpositions", "fuzzy_rewrite",
         "cutoff_frequency"},
    ),
    "match_phrase": ({"query", "slop", "zero_terms_query"}, {"analyzer"}),
    "match_phrase_prefix": ({"query", "slop", "max_expansions", "zero_terms_query"}, {"analyzer"}),
    "prefix": ({"value", "case_insensitive", "rewrite"}, set()),
    "wildcard": ({"value", "wildcard", "case_insensitive", "rewrite"}, set()),
    "regexp": ({"value", "flags", "flags_value", "case_insensitive", "max_determinized_states", "rewrite"}, set()),
}  # fmt: skip
_OFF_VALUES = {
    "slop": (0, "0"),
    "zero_terms_query": ("none", "NONE"),
    "relation": ("intersects", "INTERSECTS"),
}
_NEUTRAL_BY_QUERY = {("query_string", "type"): ("best_fields",)}
KNOWN_ELSEWHERE = {
    "nested", "has_child", "has_parent", "parent_id", "geo_bounding_box", "geo_distance", "geo_grid", "geo_polygon",
    "geo_shape", "shape", "script", "script_score", "function_score", "fuzzy", "more_like_this", "percolate",
    "rank_feature", "distance_feature", "wrapper", "pinned", "span_term", "span_first", "span_near", "span_or",
    "span_not", "span_containing", "span_within", "span_multi", "field_masking_span", "intervals", "boosting",
    "combined_fields", "match_bool_prefix", "terms_set", "knn", "sparse_vector", "text_expansion", "semantic",
    "rule", "weighted_tokens",
}  # fmt: skip


def _check(
    kind: str, params: dict[str, t.Any], accepted: set[str], refused: set[str], field: str | None = None
) -> None:
    for key, value in params.items():
        if key in _OFF_VALUES and value in _OFF_VALUES[key]:
            continue
        if value in _NEUTRAL_BY_QUERY.get((kind, key), ()):
            continue
        if key in refused or key in _REFUSED_COMMON or key in _OFF_VALUES:
            raise not_implemented(f"[{kind}] query parameter [{key}]")
        if key not in accepted and key not in _COMMON:
            error = parsing_error(f"[{kind}] query does not support [{key}]")
            error.relative_path = (key,) if field is None else (field, key)
            raise error


def check_query(kind: str, body: t.Any) -> None:
    """Called for every query clause before it is compiled."""
    if kind in KNOWN_ELSEWHERE:
        raise not_implemented(f"The [{kind}] query")
    if kind in TOP_LEVEL:
        if body is None and kind in ("match_all", "match_none"):
            return
        if not isinstance(body, dict):
            raise parsing_error(f"[{kind}] query malformed, no start_object after query name")
        _check(kind, body, *TOP_LEVEL[kind])
        return
    if kind in ("terms",) and isinstance(body, dict):
        for key, value in body.items():
            if key in _REFUSED_COMMON:
                raise not_implemented(f"[{kind}] query parameter [{key}]")
            if isinstance(value, dict):
                raise not_implemented("The terms lookup")
        return
    if kind in PER_FIELD and isinstance(body, dict):
        for key, value in body.items():
            if key in _REFUSED_COMMON:
                raise not_implemented(f"[{kind}] query parameter [{key}]")
            if isinstance(value, dict):
                _check(kind, value, *PER_FIELD[kind], field=key)
