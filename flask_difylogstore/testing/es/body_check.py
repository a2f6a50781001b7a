"""Request-body audits for ``_search`` and ``_count``: ES parse errors, and refusals of what is not implemented.

Follows ``SearchSourceBuilder.parseXContent``: each top-level key is accepted only with the JSON token
kinds Elasticsearch accepts for it ("Unknown key for a START_OBJECT in [term]." otherwise, as a
``parsing_exception``), and ``_count`` takes nothing but ``query`` ("request does not support [x]").
Keys Elasticsearch knows but this server does not implement (``highlight``, ``suggest``, ``rescore``,
...) are refused with a message saying so rather than accepted and ignored.
"""

from __future__ import annotations

import typing as t

from flask_difylogstore.testing.es import jsonpos
from flask_difylogstore.testing.es.errors import EsError, bad_request, parsing_error

VALUE = {"VALUE_STRING", "VALUE_NUMBER", "VALUE_BOOLEAN"}
OBJECT, ARRAY = {"START_OBJECT"}, {"START_ARRAY"}

# key -> the token kinds SearchSourceBuilder accepts for it
SEARCH_KEYS: dict[str, set[str]] = {
    "from": VALUE, "size": VALUE, "timeout": VALUE, "terminate_after": VALUE, "min_score": VALUE,
    "version": VALUE, "seq_no_primary_term": VALUE, "explain": VALUE, "track_scores": VALUE,
    "track_total_hits": VALUE, "_source": VALUE | OBJECT | ARRAY, "stored_fields": VALUE | ARRAY,
    "sort": VALUE | OBJECT | ARRAY, "profile": VALUE, "query": OBJECT, "post_filter": OBJECT,
    "knn": OBJECT | ARRAY, "rank": OBJECT, "script_fields": OBJECT, "aggregations": OBJECT, "aggs": OBJECT,
    "highlight": OBJECT, "suggest": OBJECT, "rescore": OBJECT | ARRAY, "ext": OBJECT, "slice": OBJECT,
    "collapse": OBJECT, "pit": OBJECT, "runtime_mappings": OBJECT, "retriever": OBJECT,
    "docvalue_fields": ARRAY, "fields": ARRAY, "indices_boost": ARRAY, "stats": ARRAY, "search_after": ARRAY,
    "sub_searches": ARRAY,
}  # fmt: skip
# Known to Elasticsearch, not implemented here: refused unless given their "off" value.
UNSUPPORTED = {
    "terminate_after", "min_score", "knn", "rank", "script_fields", "highlight", "suggest", "rescore", "ext",
    "slice", "runtime_mappings", "retriever", "fields", "indices_boost", "sub_searches",
}  # fmt: skip
_OFF = {"explain": False, "profile": False}


def token(value: t.Any) -> str:
    """The Jackson token a JSON value starts with."""
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, int | float):
        return "VALUE_NUMBER"
    if value is None:
        return "VALUE_NULL"
    return "VALUE_STRING"


def not_implemented(what: str) -> EsError:
    return bad_request(f"{what} is not implemented by this local Elasticsearch-compatible server")


def as_int(value: t.Any, field: str) -> int:
    """A number where Elasticsearch reads an int (strings holding numbers included, like Jackson)."""
    if isinstance(value, bool):
        raise EsError(400, "x_content_parse_exception", f"[{field}] failed to parse field: boolean value")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EsError(
            400, "x_content_parse_exception", f'[{field}] failed to parse field: For input string: "{value}"'
        ) from None
    return int(number)


def _located(reason: str, position: tuple[int, int] | None) -> EsError:
    """A ``parsing_exception`` with Jackson's ``line`` / ``col`` when the raw body is known."""
    extra = {"line": position[0], "col": position[1]} if position else None
    return EsError(400, "parsing_exception", reason, extra=extra)


def check_search_body(body: t.Any, raw: bytes | None = None) -> None:
    if not isinstance(body, dict):
        raise parsing_error(f"Expected [START_OBJECT] but found [{token(body)}]")
    for key, value in body.items():
        kind = token(value)
        allowed = SEARCH_KEYS.get(key)
        if allowed is None or kind not in allowed:
            where = jsonpos.top_level(raw).get(key) if raw else None
            raise _located(f"Unknown key for a {kind} in [{key}].", where[1] if where else None)
        if key in _OFF:
            if value not in (_OFF[key], "false"):
                raise not_implemented(f"[{key}]")
        elif key in UNSUPPORTED:
            raise not_implemented(f"[{key}]")
    if "from" in body:
        check_from(as_int(body["from"], "from"))
    if "size" in body:
        check_size(as_int(body["size"], "size"))


def check_from(value: int) -> None:
    if value < 0:
        raise bad_request(f"[from] parameter cannot be negative but was [{value}]")


def check_size(value: int) -> None:
    if value < 0:
        raise bad_request(f"[size] parameter cannot be negative, found [{value}]")


def check_count_body(body: t.Any, raw: bytes | None = None) -> None:
    """``RestActions.getQueryContent``: only ``query`` (and nothing at all) is a valid ``_count`` body."""
    if not isinstance(body, dict):
        raise parsing_error(f"Expected [START_OBJECT] but found [{token(body)}]")
    for key in body:
        if key != "query":
            where = jsonpos.top_level(raw).get(key) if raw else None
            raise _located(f"request does not support [{key}]", where[0] if where else None)
