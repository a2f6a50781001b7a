"""Explicit index mappings derived from the record schemas, and how queries address each field.

Mappings are ``dynamic: strict``: a document can only carry the fields the schema declares, so
nothing a workflow produces can add fields to an index. Payload columns (inputs, outputs,
process_data, graph, execution_metadata) are stored as their JSON *text*, never as objects, which
keeps arbitrary user keys out of the mapping altogether. They are mapped as:

* ``text`` (no norms): the JSON text stays in ``_source`` byte for byte and is matchable with
  ``match`` / ``match_phrase`` (Kibana, ad-hoc queries);
* plus, for the fields Dify's keyword search looks into (inputs, outputs, process_data), a
  ``wildcard`` sub-field ``<field>.wildcard`` so that a case-insensitive *substring* search,
  like Dify's ``ILIKE '%keyword%'``, is answered from the index instead of a scan.

Datetimes are ``date_nanos`` because Dify's timestamps carry microseconds, and ordering and
keyset cursors must not collapse rows that share a millisecond.
"""

from __future__ import annotations

import typing as t

from flask_difylogstore.records import FieldType
from flask_difylogstore.schemas import RecordSchema

#: Payload fields searched by :attr:`RecordQuery.keyword` (the memory backend's list).
SUBSTRING_FIELDS = frozenset({"inputs", "outputs", "process_data"})
WILDCARD_SUFFIX = "wildcard"
KEYWORD_SUFFIX = "keyword"
#: Longest keyword value indexed (32766 bytes is Lucene's term limit; 4 bytes per char at worst).
IGNORE_ABOVE = 8191
MANAGED_BY = "flask-difylogstore"


def field_mapping(name: str, type_: FieldType) -> dict[str, t.Any]:
    """The mapping of one record field."""
    if type_ is FieldType.KEYWORD:
        return {"type": "keyword", "ignore_above": IGNORE_ABOVE}
    if type_ is FieldType.TEXT:
        return {"type": "text", "fields": {KEYWORD_SUFFIX: {"type": "keyword", "ignore_above": IGNORE_ABOVE}}}
    if type_ is FieldType.JSON:
        mapping: dict[str, t.Any] = {"type": "text", "norms": False}
        if name in SUBSTRING_FIELDS:
            mapping["fields"] = {WILDCARD_SUFFIX: {"type": "wildcard"}}
        return mapping
    if type_ is FieldType.LONG:
        return {"type": "long"}
    if type_ is FieldType.DOUBLE:
        return {"type": "double"}
    if type_ is FieldType.BOOL:
        return {"type": "boolean"}
    # The default format of date_nanos (strict_date_optional_time_nanos||epoch_millis) keeps microseconds.
    return {"type": "date_nanos"}


def desired_mappings(schema: RecordSchema) -> dict[str, t.Any]:
    """The complete mapping of an index of ``schema``'s kind."""
    return {
        "dynamic": "strict",
        "_meta": {"managed_by": MANAGED_BY, "kind": schema.kind.value},
        "properties": {name: field_mapping(name, type_) for name, type_ in schema.fields.items()},
    }


def index_settings(*, shards: int, replicas: int, policy: str | None) -> dict[str, t.Any]:
    """Settings every index of the package gets (from the template and at explicit creation)."""
    settings: dict[str, t.Any] = {"number_of_shards": shards, "number_of_replicas": replicas}
    if policy:
        settings["lifecycle"] = {"name": policy}
    return {"index": settings}


def missing_properties(existing: t.Mapping[str, t.Any], schema: RecordSchema) -> dict[str, t.Any]:
    """Schema fields absent from an existing ``properties`` mapping (what provisioning adds)."""
    return {name: field_mapping(name, type_) for name, type_ in schema.fields.items() if name not in existing}


def conflicting_properties(existing: t.Mapping[str, t.Any], schema: RecordSchema) -> list[str]:
    """Fields mapped with another type than the schema wants (kept as they are, reported)."""
    out = []
    for name, type_ in schema.fields.items():
        current = existing.get(name)
        if isinstance(current, dict):
            wanted = field_mapping(name, type_)["type"]
            found = current.get("type", "object")
            if found != wanted and not (wanted == "date_nanos" and found == "date"):
                out.append(f"{name} is {found}, schema wants {wanted}")
    return out


# ---- how queries address fields ---------------------------------------------------------------
class Unqueryable(ValueError):
    """A query asks something of a field that its mapping cannot answer."""


def exact_field(schema: RecordSchema, name: str) -> str:
    """The indexed field holding ``name``'s exact value (for term, range, sort and aggregations)."""
    type_ = schema.fields.get(name, FieldType.KEYWORD)
    if type_ is FieldType.TEXT:
        return f"{name}.{KEYWORD_SUFFIX}"
    if type_ is FieldType.JSON:
        if name in SUBSTRING_FIELDS:
            return f"{name}.{WILDCARD_SUFFIX}"
        raise Unqueryable(f"payload field {name!r} can only be tested for null / not null")
    return name


def unmapped_type(schema: RecordSchema, name: str) -> str:
    """The type ES assumes for a sort field an index lacks (indices created before a field existed)."""
    type_ = schema.fields.get(name, FieldType.KEYWORD)
    if type_ is FieldType.TEXT or type_ is FieldType.JSON:
        return "keyword"
    return str(field_mapping(name, type_)["type"])
