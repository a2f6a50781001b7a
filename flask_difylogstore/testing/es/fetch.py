"""The fetch phase's per-hit options: ``version``, ``seq_no_primary_term``, ``docvalue_fields``, ``stored_fields``.

Doc values come back as Elasticsearch returns them: keyword values sorted and deduplicated, numbers
sorted, dates formatted with the field's (or the request's) date format, booleans as booleans. Text
fields have no doc values (the fielddata error); unmapped fields are left out.
"""

from __future__ import annotations

import fnmatch
import typing as t

from flask_difylogstore.testing.es import datemath
from flask_difylogstore.testing.es.body_check import not_implemented
from flask_difylogstore.testing.es.documents import IndexStore, StoredDoc
from flask_difylogstore.testing.es.errors import EsError, bad_request, shard_error
from flask_difylogstore.testing.es.mapping import FLOAT_TYPES, KEYWORD_TYPES, TEXT_TYPES

DocValueSpec = tuple[str, str | None]


class FetchOptions:
    """What a search asked the fetch phase to add to (or drop from) each hit."""

    def __init__(self, body: dict[str, t.Any], params: dict[str, str], stores: list[IndexStore]) -> None:
        self.version = _flag(params.get("version"), body.get("version"))
        self.seq_no = _flag(params.get("seq_no_primary_term"), body.get("seq_no_primary_term"))
        raw_dv: list[t.Any] = list(body.get("docvalue_fields") or [])
        if params.get("docvalue_fields"):
            raw_dv += [f for f in params["docvalue_fields"].split(",") if f]
        self.docvalues = [_docvalue_spec(item) for item in raw_dv]
        limit = min((int(s.settings.get("index.max_docvalue_fields_search", "100")) for s in stores), default=100)
        if len(self.docvalues) > limit:
            raise shard_error(
                f"Trying to retrieve too many docvalue_fields. Must be less than or equal to: [{limit}] but was "
                f"[{len(self.docvalues)}]. This limit can be set by changing the [index.max_docvalue_fields_search] "
                "index level setting."
            )
        stored: t.Any = body.get("stored_fields")
        if params.get("stored_fields") is not None:
            stored = params["stored_fields"].split(",") if params["stored_fields"] else []
        self.stored: list[str] | None = None if stored is None else ([stored] if isinstance(stored, str) else stored)
        if self.stored is not None and "_none_" in self.stored and len(self.stored) > 1:
            raise bad_request("cannot combine _none_ with other fields")
        self.no_id = self.stored == ["_none_"]

    def source_default(self, explicit: bool) -> bool:
        """``stored_fields`` turns ``_source`` off unless the request asks for it explicitly."""
        return explicit or self.stored is None

    def apply(self, body: dict[str, t.Any], store: IndexStore, doc: StoredDoc) -> None:
        if self.no_id:
            body.pop("_id", None)
        if self.version:
            body["_version"] = doc.version
        if self.seq_no:
            body["_seq_no"] = doc.seq_no
            body["_primary_term"] = doc.primary_term
        fields: dict[str, list[t.Any]] = {}
        if self.stored and not self.no_id:
            for name in _expand(store, self.stored):
                mdef = _field_def(store, name)
                if mdef is not None and mdef.get("store") and name not in TEXT_TYPES:
                    values = _docvalues(store, doc, name, None, sort=False)
                    if values:
                        fields[name] = values
        for name, fmt in self.docvalues:
            for concrete in _expand(store, [name]):
                values = _docvalues(store, doc, concrete, fmt, sort=True)
                if values:
                    fields[concrete] = values
        if fields:
            body["fields"] = {**body.get("fields", {}), **fields}


def _flag(param: str | None, value: t.Any) -> bool:
    if param is not None:
        return param.lower() in ("", "true")
    return value is True or value == "true"


def _docvalue_spec(item: t.Any) -> DocValueSpec:
    if isinstance(item, str):
        return item, None
    if isinstance(item, dict) and isinstance(item.get("field"), str):
        unknown = set(item) - {"field", "format", "include_unmapped"}
        if unknown:
            raise EsError(400, "x_content_parse_exception", f"[field_and_format] unknown field [{sorted(unknown)[0]}]")
        return item["field"], item.get("format")
    raise EsError(400, "x_content_parse_exception", "[field_and_format] expected a string or an object with [field]")


def _expand(store: IndexStore, names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        if "*" in name or "?" in name:
            out += [
                f
                for f, ty in store.mapping.types.items()
                if fnmatch.fnmatchcase(f, name) and ty not in ("object", "nested")
            ]
        elif name != "_none_":
            out.append(name)
    return out


def _field_def(store: IndexStore, path: str) -> dict[str, t.Any] | None:
    node: t.Any = store.mapping.body
    parts = path.split(".")
    for i, part in enumerate(parts):
        props = (node.get("properties") or {}) if isinstance(node, dict) else {}
        if part in props:
            node = props[part]
            continue
        fields = (node.get("fields") or {}) if isinstance(node, dict) else {}
        if i == len(parts) - 1 and part in fields:
            return dict(fields[part])
        return None
    return node if isinstance(node, dict) else None


def _docvalues(store: IndexStore, doc: StoredDoc, field: str, fmt: str | None, *, sort: bool) -> list[t.Any]:
    ftype = store.mapping.field_type(field)
    if ftype is None or ftype in ("object", "nested"):
        return []
    if ftype in TEXT_TYPES:
        raise shard_error(
            f"Fielddata is disabled on [{field}] in [{store.name}]. Text fields are not optimised for operations "
            "that require per-document field data like aggregations and sorting, so these operations are disabled "
            "by default. Please use a keyword field instead."
        )
    raw = doc.flat.get(field)
    values = [] if raw is None else (list(raw) if isinstance(raw, list) else [raw])
    if not values:
        return []
    if ftype in KEYWORD_TYPES or ftype == "flattened":
        values = sorted({str(v) for v in values}) if sort else [str(v) for v in values]
    elif sort:
        values.sort()
    if ftype in ("date", "date_nanos"):
        dfmt = fmt or (_field_def(store, field) or {}).get("format")
        if ftype == "date_nanos":
            return [datemath.format_date(int(v) // 1_000_000, dfmt) for v in values]
        return [datemath.format_date(int(v), dfmt) for v in values]
    if fmt is not None and fmt != "use_field_mapping":
        raise not_implemented(f"[format] [{fmt}] on the non-date field [{field}]")
    if ftype in FLOAT_TYPES:
        return [float(v) for v in values]
    return values
