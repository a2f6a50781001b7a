"""Mapping parameter audits: each field type takes the parameters Elasticsearch's mappers take.

An unknown parameter is Elasticsearch's ``unknown parameter [x] on mapper [f] of type [keyword]``
and an unknown root parameter its ``Root mapping definition has unsupported parameters``; a parameter
that would change what is indexed or matched and that this server does not implement (``copy_to``,
analyzers, ``null_value``, ``index: false`` ...) is refused instead of being accepted and ignored.
"""

from __future__ import annotations

import typing as t

from flask_difylogstore.testing.es.errors import EsError

_LEAF_COMMON = {"type", "meta", "store", "doc_values", "index", "fields", "copy_to", "script", "on_script_error",
                "boost"}  # fmt: skip
_NUMERIC = _LEAF_COMMON | {"coerce", "ignore_malformed", "null_value", "time_series_dimension", "time_series_metric"}
_KEYWORD = _LEAF_COMMON | {
    "ignore_above", "norms", "eager_global_ordinals", "index_options", "similarity", "split_queries_on_whitespace",
    "null_value", "normalizer", "time_series_dimension",
}  # fmt: skip
_TEXT = {"type", "meta", "store", "index", "fields", "copy_to", "norms", "index_options", "similarity", "term_vector",
         "position_increment_gap", "analyzer", "search_analyzer", "search_quote_analyzer", "fielddata",
         "fielddata_frequency_filter", "eager_global_ordinals", "index_prefixes", "index_phrases", "boost"}  # fmt: skip
_DATE = _LEAF_COMMON | {"format", "locale", "ignore_malformed", "null_value"}
PARAMS: dict[str, set[str]] = {
    **dict.fromkeys(("long", "integer", "short", "byte", "double", "float", "half_float", "unsigned_long"), _NUMERIC),
    "scaled_float": _NUMERIC | {"scaling_factor"},
    "keyword": _KEYWORD,
    "constant_keyword": {"type", "meta", "value"},
    "wildcard": {"type", "meta", "ignore_above", "null_value", "copy_to", "fields"},
    "text": _TEXT,
    "match_only_text": {"type", "meta", "fields", "copy_to"},
    "date": _DATE,
    "date_nanos": _DATE,
    "boolean": _LEAF_COMMON | {"null_value", "ignore_malformed"},
    "flattened": {
        "type",
        "meta",
        "depth_limit",
        "doc_values",
        "eager_global_ordinals",
        "ignore_above",
        "index",
        "index_options",
        "null_value",
        "similarity",
        "split_queries_on_whitespace",
    },  # fmt: skip
    "object": {"type", "properties", "dynamic", "enabled", "subobjects"},
    "nested": {"type", "properties", "dynamic", "enabled", "include_in_parent", "include_in_root"},
}
# parameter -> the values that change nothing here (anything else is refused)
_NEUTRAL: dict[str, tuple[t.Any, ...]] = {
    "copy_to": (),
    "analyzer": ("standard",),
    "search_analyzer": ("standard",),
    "search_quote_analyzer": ("standard",),
    "normalizer": (),
    "null_value": (),
    "ignore_malformed": (False, "false"),
    "index": (True, "true"),
    "doc_values": (True, "true"),
    "fielddata": (False, "false"),
    "script": (),
    "on_script_error": (),
    "index_prefixes": (),
    "index_phrases": (False, "false"),
    "subobjects": (True, "true"),
    "include_in_parent": (False, "false"),
    "include_in_root": (False, "false"),
    "time_series_dimension": (False, "false"),
    "time_series_metric": (),
    "dynamic": (True, False, "true", "false", "strict"),
    "split_queries_on_whitespace": (False, "false"),
    "fielddata_frequency_filter": (),
}
ROOT_PARAMS = {"properties", "dynamic", "_meta", "dynamic_templates", "date_detection", "numeric_detection",
               "dynamic_date_formats", "_source", "_routing", "runtime", "enabled", "subobjects"}  # fmt: skip
_ROOT_NEUTRAL: dict[str, tuple[t.Any, ...]] = {
    "numeric_detection": (False, "false"),
    "dynamic_date_formats": (),
    "_source": ({"enabled": True},),
    "_routing": ({"required": False},),
    "runtime": ({},),
    "enabled": (True, "true"),
    "subobjects": (True, "true"),
    "dynamic": (True, False, "true", "false", "strict"),
}


def _refused(where: str) -> EsError:
    return EsError(
        400, "illegal_argument_exception", f"{where} is not implemented by this local Elasticsearch-compatible server"
    )


def check_field(path: str, ftype: str, fdef: dict[str, t.Any]) -> None:
    allowed = PARAMS.get(ftype)
    if allowed is None:
        return
    for key, value in fdef.items():
        if key not in allowed:
            reason = f"unknown parameter [{key}] on mapper [{path}] of type [{ftype}]"
            raise EsError(
                400,
                "mapper_parsing_exception",
                f"Failed to parse mapping: {reason}",
                caused_by={"type": "mapper_parsing_exception", "reason": reason},
            )
        neutral = _NEUTRAL.get(key)
        if neutral is not None and value not in neutral:
            raise _refused(f"The mapping parameter [{key}: {value}] (field [{path}])")


def check_root(body: dict[str, t.Any]) -> None:
    unknown = [f"{k} : {v}" for k, v in body.items() if k not in ROOT_PARAMS]
    if unknown:
        reason = f"Root mapping definition has unsupported parameters:  [{', '.join(unknown)}]"
        raise EsError(400, "mapper_parsing_exception", f"Failed to parse mapping: {reason}",
                      caused_by={"type": "mapper_parsing_exception", "reason": reason})  # fmt: skip
    for key, neutral in _ROOT_NEUTRAL.items():
        if key in body and body[key] not in neutral:
            raise _refused(f"The mapping parameter [{key}: {body[key]}]")
    for entry in body.get("dynamic_templates") or []:
        for name, spec in entry.items() if isinstance(entry, dict) else []:
            check_dynamic_template(name, spec)


_DYNAMIC_TEMPLATE_KEYS = {"match", "unmatch", "path_match", "path_unmatch", "match_mapping_type",
                          "unmatch_mapping_type", "match_pattern", "mapping", "runtime"}  # fmt: skip


def check_dynamic_template(name: str, spec: t.Any) -> None:
    """A dynamic template's own keys, and its mapping's parameters when its type is fixed."""
    if not isinstance(spec, dict):
        raise EsError(
            400, "mapper_parsing_exception", f"Failed to parse mapping: dynamic template [{name}] is not an object"
        )
    for key in spec:
        if key == "runtime":
            raise _refused(f"The dynamic template [{name}] with [runtime]")
        if key not in _DYNAMIC_TEMPLATE_KEYS:
            reason = f"Illegal dynamic template parameter: [{key}]"
            raise EsError(400, "mapper_parsing_exception", f"Failed to parse mapping: {reason}",
                          caused_by={"type": "illegal_argument_exception", "reason": reason})  # fmt: skip
    mapping = spec.get("mapping") or {}
    ftype = mapping.get("type") if isinstance(mapping, dict) else None
    if isinstance(ftype, str) and "{" not in ftype:
        check_field(f"<dynamic template {name}>", ftype, mapping)
