"""Sorting of search hits: sort specs, per-field sort keys (``order``, ``missing``, ``mode``, ``format``).

A hit's sort key is built from :class:`SortField` components; ``search_after`` values are converted
to the same internal form (a formatted date string is parsed with the sort's or the field's format).
"""

from __future__ import annotations

import math
import typing as t

from flask_difylogstore.testing.es import datemath
from flask_difylogstore.testing.es.body_check import not_implemented
from flask_difylogstore.testing.es.documents import IndexStore, StoredDoc
from flask_difylogstore.testing.es.errors import EsError, bad_request, shard_error
from flask_difylogstore.testing.es.mapping import FLOAT_TYPES, INT_RANGES, TEXT_TYPES
from flask_difylogstore.testing.es.query import Context

Hit = tuple[Context, StoredDoc, float]
LONG_MAX, LONG_MIN = 2**63 - 1, -(2**63)


class _Rev:
    """Inverts ordering for descending sort components."""

    __slots__ = ("v",)

    def __init__(self, v: t.Any) -> None:
        self.v = v

    def __lt__(self, other: _Rev) -> bool:
        return bool(other.v < self.v)

    def __gt__(self, other: _Rev) -> bool:
        return bool(other.v > self.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


def _normalize_sort(spec: t.Any) -> list[tuple[str, dict[str, t.Any]]]:
    if spec is None:
        return []
    items = spec if isinstance(spec, list) else [spec]
    out: list[tuple[str, dict[str, t.Any]]] = []
    for item in items:
        if isinstance(item, str):
            field, _, order = item.partition(":")
            out.append((field, {"order": order} if order else {}))
        else:
            for field, params in item.items():
                out.append((field, params if isinstance(params, dict) else {"order": params}))
    return out


_SORT_KEYS = {"order", "missing", "unmapped_type", "mode", "format", "numeric_type", "nested"}
_MODES = {"min", "max", "sum", "avg", "median"}


class _SortField:
    def __init__(self, field: str, params: dict[str, t.Any], stores: list[IndexStore]) -> None:
        self.field = field
        unknown = set(params) - _SORT_KEYS
        if unknown:
            raise EsError(400, "x_content_parse_exception", f"[field_sort] unknown field [{sorted(unknown)[0]}]")
        for key in ("numeric_type", "nested"):
            if key in params:
                raise not_implemented(f"sort [{key}]")
        default_order = "desc" if field == "_score" else "asc"
        order = str(params.get("order", default_order)).lower()
        if order not in ("asc", "desc"):
            raise EsError(400, "x_content_parse_exception", "[field_sort] failed to parse field [order]")
        self.desc = order == "desc"
        self.missing = params.get("missing", "_last")
        self.mode = str(params.get("mode", "max" if self.desc else "min")).lower()
        if self.mode not in _MODES:
            raise bad_request(f"Unknown SortMode [{self.mode}]")
        self.fmt: str | None = params.get("format")
        self.numeric = field in ("_score", "_doc", "_shard_doc")
        self.kind = "score" if field == "_score" else "doc" if field in ("_doc", "_shard_doc") else "field"
        self.ftype: str | None = None
        self.is_float = False
        if self.kind == "field":
            types = {s.mapping.field_type(field) for s in stores} - {None}
            if not types and "unmapped_type" not in params:
                raise EsError(
                    400,
                    "query_shard_exception",
                    f"No mapping found for [{field}] in order to sort on",
                    index=stores[0].name if stores else None,
                )
            if types & TEXT_TYPES:
                raise shard_error(
                    "Text fields are not optimised for operations that require per-document field data "
                    "like aggregations and sorting, so these operations are disabled by default. Please use "
                    f"a keyword field instead. Alternatively, set fielddata=true on [{field}] in order to "
                    "load field data by uninverting the inverted index. Note that this can use significant "
                    "memory."
                )
            self.ftype = next(iter(types)) if types else params.get("unmapped_type")
            self.numeric = bool(types & (set(INT_RANGES) | FLOAT_TYPES | {"date", "date_nanos", "boolean"}))
            self.is_float = bool(types & FLOAT_TYPES)
            if self.mode in ("sum", "avg", "median") and not self.numeric:
                raise bad_request(f"only [min] and [max] sort modes are supported on non-numeric field [{field}]")
            if self.fmt is not None and self.ftype not in ("date", "date_nanos"):
                raise not_implemented(f"sort [format] on the non-date field [{field}]")
            self.store_format = next((f for s in stores if (f := _mapped_format(s, field)) is not None), None)

    def after_value(self, value: t.Any, now_ms: int) -> t.Any:
        """A ``search_after`` value in the sort's internal form (a formatted date is parsed, as ES does)."""
        if value is None or self.kind != "field":
            return value
        if self.ftype in ("date", "date_nanos"):
            if isinstance(value, int | float) and not isinstance(value, bool):
                return int(value)
            fmt = self.fmt or self.store_format
            try:
                return datemath.resolve(str(value), fmt, nanos=self.ftype == "date_nanos", now_ms=now_ms)
            except EsError:
                raise shard_error(f"Failed to parse search_after value for field [{self.field}].") from None
        if self.numeric:
            if isinstance(value, bool):
                return int(value)
            if isinstance(value, int | float):
                return value
            try:
                return float(value) if self.is_float else int(str(value))
            except ValueError:
                raise shard_error(f"Failed to parse search_after value for field [{self.field}].") from None
        return str(value)

    def export(self, value: t.Any) -> t.Any:
        """A hit's ``sort`` value: floats for floating-point fields, the ``format`` for dates."""
        if self.kind != "field" or value is None:
            return value
        if self.fmt is not None and self.ftype in ("date", "date_nanos") and isinstance(value, int):
            ms = value // 1_000_000 if self.ftype == "date_nanos" else value
            return datemath.format_date(ms, self.fmt)
        if self.is_float and isinstance(value, int | float):
            return float(value)
        return value

    def raw(self, hit: Hit, store_pos: dict[str, int]) -> t.Any:
        ctx, doc, score = hit
        if self.kind == "score":
            return score
        if self.kind == "doc":
            return (store_pos[ctx.index] << 40) + doc.ord
        value = doc.flat.get(self.field)
        if isinstance(value, list):
            value = _pick(value, self.mode)
            if self.mode in ("avg", "median") and not self.is_float and isinstance(value, float):
                value = math.floor(value + 0.5)  # MultiValueMode on longs: Math.round
        if isinstance(value, bool):
            value = int(value)
        if value is None:
            if self.missing not in ("_last", "_first"):
                return self.missing
            if self.numeric:
                last = LONG_MIN if self.desc else LONG_MAX
                first = LONG_MAX if self.desc else LONG_MIN
                return last if self.missing == "_last" else first
        return value

    def component(self, value: t.Any) -> tuple[int, t.Any]:
        if value is None:
            return (0 if self.missing == "_first" else 2, 0)
        return (1, _Rev(value) if self.desc else value)


def _pick(values: list[t.Any], mode: str) -> t.Any:
    if mode == "min":
        return min(values)
    if mode == "max":
        return max(values)
    if mode == "sum":
        return sum(values)
    if mode == "avg":
        return sum(values) / len(values)
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _mapped_format(store: IndexStore, field: str) -> str | None:
    node: t.Any = store.mapping.body
    for part in field.split("."):
        node = (node.get("properties") or {}).get(part) if isinstance(node, dict) else None
    return node.get("format") if isinstance(node, dict) else None


class _InnerSort(_SortField):
    """A sort field for inner hits (no index-wide type validation)."""

    def __init__(self, field: str, params: dict[str, t.Any]) -> None:
        self.field = field
        self.desc = str(params.get("order", "asc")).lower() == "desc"
        self.missing = params.get("missing", "_last")
        self.kind = "field"
        self.numeric = False
        self.is_float = False
        self.mode = "max" if self.desc else "min"
        self.fmt = None
        self.ftype = None
