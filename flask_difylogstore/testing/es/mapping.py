"""Field types, dynamic mapping and value coercion: turns a ``_source`` into flat indexed values.

A document becomes ``{"path.to.field": value | [values]}`` with values normalised per type
(keywords as ``str``, numbers, booleans, dates as epoch milliseconds, text as the raw string).
"""

from __future__ import annotations

import copy
import re
import typing as t
from functools import lru_cache

from flask_difylogstore.testing.es.datemath import (
    DEFAULT_DATE_FORMAT,
    NANOS_FORMAT,
    parse_date,
    parse_date_ns,
    validate_format,
)
from flask_difylogstore.testing.es.dynamic import infer, template_mapping
from flask_difylogstore.testing.es.errors import EsError
from flask_difylogstore.testing.es.mapping_check import check_field, check_root

Flat = dict[str, t.Any]
INT_RANGES = {
    "long": (-(2**63), 2**63 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
    "unsigned_long": (0, 2**64 - 1),
}
FLOAT_TYPES = {"double", "float", "half_float", "scaled_float"}
KEYWORD_TYPES = {"keyword", "constant_keyword", "wildcard", "ip", "version"}
TEXT_TYPES = {"text", "match_only_text"}
LEAF_TYPES = (
    set(INT_RANGES) | FLOAT_TYPES | KEYWORD_TYPES | TEXT_TYPES | {"boolean", "date", "date_nanos", "flattened"}
) | {"geo_point", "binary", "dense_vector", "alias", "search_as_you_type"}
OBJECT_TYPES = {"object", "nested"}
_TOKEN = re.compile(r"\w+", re.UNICODE)
_STRING_FAST = {"keyword", "text", "match_only_text", "wildcard"}


@lru_cache(maxsize=200_000)
def analyze(text: str) -> tuple[str, ...]:
    """A small standard analyzer: lowercase and split on non-alphanumerics."""
    return tuple(_TOKEN.findall(text.lower()))


class _NeedsDynamic(Exception):
    """Raised by the read-only pass when a document adds fields, to rerun on a mapping copy."""


def _walk_types(props: dict[str, t.Any], prefix: str, out: dict[str, str]) -> None:
    for name, fdef in props.items():
        path = prefix + name
        ftype = fdef.get("type", "object")
        out[path] = ftype
        if "properties" in fdef:
            _walk_types(fdef["properties"], path + ".", out)
        for sub, sdef in (fdef.get("fields") or {}).items():
            out[f"{path}.{sub}"] = sdef.get("type", "keyword")


def count_fields(props: dict[str, t.Any]) -> int:
    total = 0
    for fdef in props.values():
        total += 1 + len(fdef.get("fields") or {})
        if "properties" in fdef:
            total += count_fields(fdef["properties"])
    return total


def validate_properties(props: dict[str, t.Any], prefix: str = "") -> None:
    """Reject unknown field types the way ES does when a mapping is created or updated."""
    for name, fdef in props.items():
        if not isinstance(fdef, dict):
            raise EsError(400, "mapper_parsing_exception", f"Expected map for property [{prefix}{name}]")
        ftype = fdef.get("type", "object")
        if ftype not in LEAF_TYPES and ftype not in OBJECT_TYPES:
            raise EsError(400, "mapper_parsing_exception", f"No handler for type [{ftype}] declared on field [{name}]")
        check_field(f"{prefix}{name}", ftype, fdef)
        for sub, sdef in (fdef.get("fields") or {}).items():
            if isinstance(sdef, dict):
                check_field(f"{prefix}{name}.{sub}", sdef.get("type", "object"), sdef)
        if ftype in ("date", "date_nanos") and fdef.get("format"):
            try:
                validate_format(str(fdef["format"]))
            except EsError as exc:
                raise EsError(
                    400,
                    "mapper_parsing_exception",
                    f"Failed to parse mapping: {exc.reason}",
                    caused_by={"type": exc.type, "reason": exc.reason},
                ) from None
        if "properties" in fdef:
            validate_properties(fdef["properties"], f"{prefix}{name}.")


def merge_properties(base: dict[str, t.Any], extra: dict[str, t.Any], prefix: str = "") -> None:
    """Merge ``extra`` into ``base`` in place; changing an existing field's type is an error."""
    for name, fdef in extra.items():
        old = base.get(name)
        if old is None:
            base[name] = copy.deepcopy(fdef)
            continue
        old_type, new_type = old.get("type", "object"), fdef.get("type", "object")
        if old_type != new_type:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"mapper [{prefix}{name}] cannot be changed from type [{old_type}] to [{new_type}]",
            )
        if "properties" in fdef:
            merge_properties(old.setdefault("properties", {}), fdef["properties"], f"{prefix}{name}.")
        for key, value in fdef.items():
            if key != "properties":
                old[key] = copy.deepcopy(value)


class Mapping:
    """One index's mapping plus the logic that indexes documents against it."""

    def __init__(self, body: dict[str, t.Any] | None = None, *, error_type: str = "document_parsing_exception"):
        body = copy.deepcopy(body or {})
        body.setdefault("properties", {})
        check_root(body)
        validate_properties(body["properties"])
        self.body: dict[str, t.Any] = body
        self.error_type = error_type
        self.field_limit = 1000
        self._reindex()

    def _reindex(self) -> None:
        types: dict[str, str] = {}
        _walk_types(self.body["properties"], "", types)
        self.types = types
        self.flattened = {p for p, ty in types.items() if ty == "flattened"}

    def to_json(self) -> dict[str, t.Any]:
        return copy.deepcopy(self.body) if self.body.get("properties") or len(self.body) > 1 else {}

    def field_type(self, path: str) -> str | None:
        """The mapped type; sub-keys of a ``flattened`` field report ``flattened``."""
        found = self.types.get(path)
        if found is not None or not self.flattened:
            return found
        for root in self.flattened:
            if path.startswith(root + "."):
                return "flattened"
        return None

    def update(self, extra: dict[str, t.Any]) -> None:
        """Apply a put-mapping body."""
        props = extra.get("properties") or {}
        check_root(extra)
        validate_properties(props)
        candidate = copy.deepcopy(self.body)
        merge_properties(candidate["properties"], props)
        for key, value in extra.items():
            if key != "properties":
                candidate[key] = value
        self._check_limit(candidate, count_fields(props))
        self.body = candidate
        self._reindex()

    def _check_limit(self, body: dict[str, t.Any], added: int) -> None:
        if count_fields(body["properties"]) > self.field_limit:
            raise EsError(
                400,
                "illegal_argument_exception",
                f"Limit of total fields [{self.field_limit}] has been exceeded while adding new fields [{added}]",
            )

    def index_document(self, source: dict[str, t.Any], doc_id: str) -> Flat:
        """Flatten and coerce ``source``; may extend the mapping dynamically (atomically)."""
        flat: Flat = {}
        try:
            self._object(source, "", self.body["properties"], self._dyn(self.body, "true"), flat, doc_id, False)
            return flat
        except _NeedsDynamic:
            pass
        candidate = copy.deepcopy(self.body)
        before = count_fields(candidate["properties"])
        flat = {}
        self._object(source, "", candidate["properties"], self._dyn(candidate, "true"), flat, doc_id, True)
        self._check_limit(candidate, count_fields(candidate["properties"]) - before)
        self.body = candidate
        self._reindex()
        return flat

    def _from_templates(self, path: str, name: str, value: t.Any) -> dict[str, t.Any] | None:
        templates = self.body.get("dynamic_templates")
        if not templates:
            return None
        return template_mapping(templates, path, name, value, bool(self.body.get("date_detection", True)))

    @staticmethod
    def _dyn(node: dict[str, t.Any], inherited: str) -> str:
        value = node.get("dynamic")
        return inherited if value is None else str(value).lower()

    def _object(
        self,
        obj: dict[str, t.Any],
        prefix: str,
        props: dict[str, t.Any],
        dyn: str,
        flat: Flat,
        doc_id: str,
        mutate: bool,
    ) -> None:
        for key, value in obj.items():
            if "." in key and key not in props:
                head, _, rest = key.partition(".")
                self._object({head: {rest: value}}, prefix, props, dyn, flat, doc_id, mutate)
                continue
            fdef = props.get(key)
            if fdef is None:
                if value is None or value == []:
                    continue
                if dyn == "strict":
                    within = prefix[:-1] if prefix else "_doc"
                    raise EsError(
                        400,
                        "strict_dynamic_mapping_exception",
                        f"[1:2] mapping set to strict, dynamic introduction of [{key}] within [{within}] "
                        "is not allowed",
                    )
                if dyn in ("false", "runtime"):
                    continue
                if not mutate:
                    raise _NeedsDynamic
                fdef = self._from_templates(prefix + key, key, value)
                if fdef is None:
                    fdef = infer(value, bool(self.body.get("date_detection", True)))
                if fdef is None:
                    continue
                props[key] = fdef
            self._field(value, prefix + key, fdef, dyn, flat, doc_id, mutate)

    def _field(
        self, value: t.Any, path: str, fdef: dict[str, t.Any], dyn: str, flat: Flat, doc_id: str, mutate: bool
    ) -> None:
        ftype = fdef.get("type", "object")
        if ftype in OBJECT_TYPES:
            if fdef.get("enabled", True) is False or value is None:
                return
            children = fdef.setdefault("properties", {}) if mutate else fdef.get("properties", {})
            for item in value if isinstance(value, list) else [value]:
                if item is None:
                    continue
                if not isinstance(item, dict):
                    raise EsError(
                        400,
                        self.error_type,
                        f"[1:2] object mapping for [{path}] tried to parse field [{path}] as object, "
                        "but found a concrete value",
                    )
                self._object(item, path + ".", children, self._dyn(fdef, dyn), flat, doc_id, mutate)
            return
        if ftype == "flattened":
            _flatten_leaves(value, path, path, flat)
            return
        if type(value) is str and ftype in _STRING_FAST:
            # Fast path for the most common leaf: one string into keyword/text (+ keyword sub-fields).
            limit = fdef.get("ignore_above")
            if (limit is None or len(value) <= limit) and path not in flat:
                flat[path] = value
            subs = fdef.get("fields")
            if not subs:
                return
            for sub, sdef in subs.items():
                if sdef.get("type") in _STRING_FAST:
                    sub_path = f"{path}.{sub}"
                    limit = sdef.get("ignore_above")
                    if (limit is None or len(value) <= limit) and sub_path not in flat:
                        flat[sub_path] = value
                    continue
                sub_value = self._coerce(value, sdef.get("type", "keyword"), sdef, f"{path}.{sub}", doc_id)
                if sub_value is not None:
                    _add(flat, f"{path}.{sub}", sub_value)
            return
        items = value if isinstance(value, list) else (value,)
        for item in items:
            if item is None:
                continue
            coerced = self._coerce(item, ftype, fdef, path, doc_id)
            if coerced is not None:
                _add(flat, path, coerced)
            for sub, sdef in (fdef.get("fields") or {}).items():
                sub_value = self._coerce(item, sdef.get("type", "keyword"), sdef, f"{path}.{sub}", doc_id)
                if sub_value is not None:
                    _add(flat, f"{path}.{sub}", sub_value)

    def _coerce(self, value: t.Any, ftype: str, fdef: dict[str, t.Any], path: str, doc_id: str) -> t.Any:
        try:
            return coerce(value, ftype, fdef)
        except (ValueError, TypeError, OverflowError, EsError) as exc:
            preview = str(value)[:20]
            raise EsError(
                400,
                self.error_type,
                f"[1:2] failed to parse field [{path}] of type [{ftype}] in document with id '{doc_id}'. "
                f"Preview of field's value: '{preview}'",
                caused_by={"type": "illegal_argument_exception", "reason": str(exc) or "bad value"},
            ) from None


def coerce(value: t.Any, ftype: str, fdef: dict[str, t.Any]) -> t.Any:
    """Normalise one value for ``ftype`` (ES ``coerce: true`` semantics); None means not indexed."""
    if ftype == "long" and type(value) is int:
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"Value [{value}] is out of range for a long")
        return value
    if ftype in KEYWORD_TYPES:
        if isinstance(value, dict | list):
            raise TypeError("keyword fields take scalar values")
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        limit = fdef.get("ignore_above")
        return None if limit is not None and len(text) > int(limit) else text
    if ftype in TEXT_TYPES or ftype == "search_as_you_type":
        if isinstance(value, dict | list):
            raise TypeError("text fields take scalar values")
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    if ftype in INT_RANGES:
        if isinstance(value, bool | dict | list):
            raise TypeError("not a number")
        number = int(value) if isinstance(value, int) else int(float(value))
        if isinstance(value, str) and fdef.get("coerce") is False:
            raise ValueError("coercion disabled")
        low, high = INT_RANGES[ftype]
        if not low <= number <= high:
            raise ValueError(f"Value [{value}] is out of range for {ftype}")
        return number
    if ftype in FLOAT_TYPES:
        if isinstance(value, bool | dict | list):
            raise TypeError("not a number")
        return float(value)
    if ftype == "boolean":
        if isinstance(value, bool):
            return value
        if value in ("true", "false", ""):
            return value == "true"
        raise ValueError(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")
    if ftype == "date":
        return parse_date(value, fdef.get("format") or DEFAULT_DATE_FORMAT)
    if ftype == "date_nanos":
        return parse_date_ns(value, fdef.get("format") or NANOS_FORMAT)
    return value if not isinstance(value, dict | list) else None


def _add(flat: Flat, path: str, value: t.Any) -> None:
    old = flat.get(path)
    if old is None:
        flat[path] = value
    elif isinstance(old, list):
        old.append(value)
    else:
        flat[path] = [old, value]


def _flatten_leaves(value: t.Any, root: str, path: str, flat: Flat) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten_leaves(item, root, f"{path}.{key}", flat)
    elif isinstance(value, list):
        for item in value:
            _flatten_leaves(item, root, path, flat)
    elif value is not None:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        _add(flat, root, text)
        if path != root:
            _add(flat, path, text)


def values_of(flat_value: t.Any) -> list[t.Any]:
    """A flat slot value as a list (``None`` → ``[]``)."""
    if flat_value is None:
        return []
    return flat_value if isinstance(flat_value, list) else [flat_value]
