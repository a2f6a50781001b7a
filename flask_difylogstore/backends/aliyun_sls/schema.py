"""Index configuration of each logstore, derived from the record schemas, and its diff.

SLS only indexes data written after a key exists, and SQL only sees keys with ``doc_value``, so
every field the queries use is declared explicitly. Existing index configs are merged, never
rebuilt: custom keys, tuned tokens and a tuned ``max_text_len`` survive (the upstream plugin
rebuilt the config and lost them).
"""

from __future__ import annotations

import copy
import typing as t
from dataclasses import dataclass, field

from flask_difylogstore.records import FieldType
from flask_difylogstore.schemas import RecordSchema

#: Delimiters of free text (the upstream plugin's list, with the curly quotes it meant).
TEXT_TOKENS: tuple[str, ...] = (
    ",", " ", "'", '"', "\u201c", "\u201d", ";", "=", "(", ")", "[", "]", "{", "}",
    "?", "@", "&", "<", ">", "/", ":", "\n", "\t", "\r",
)  # fmt: skip
#: Delimiters of identifiers: no ``-``, ``_`` or ``.``, so a UUID or a status stays one token.
KEYWORD_TOKENS: tuple[str, ...] = (",", " ", "'", '"', ";", "\n", "\t", "\r")

_SLS_TYPE: dict[FieldType, str] = {
    FieldType.KEYWORD: "text",
    FieldType.DATETIME: "text",
    FieldType.TEXT: "text",
    FieldType.JSON: "text",
    FieldType.LONG: "long",
    FieldType.BOOL: "long",
    FieldType.DOUBLE: "double",
}
#: Index properties the service returns but does not accept back.
_READ_ONLY = ("lastModifyTime", "ttl", "storage")


def key_config(type_: FieldType) -> dict[str, t.Any]:
    """The index JSON of one field (the shape ``IndexKeyConfig.to_json`` produces)."""
    sls_type = _SLS_TYPE[type_]
    if sls_type != "text":
        return {"type": sls_type, "doc_value": True}
    if type_ in (FieldType.KEYWORD, FieldType.DATETIME):
        return {"type": "text", "token": list(KEYWORD_TOKENS), "caseSensitive": True, "doc_value": True}
    # Free text and JSON payloads: tokenised for search, in SQL (keyword filters) up to max_text_len.
    return {"type": "text", "token": list(TEXT_TOKENS), "caseSensitive": False, "doc_value": True}


def desired_index(schema: RecordSchema, max_text_len: int) -> dict[str, t.Any]:
    """The complete index JSON a new logstore of ``schema`` gets."""
    return {
        "keys": {name: key_config(type_) for name, type_ in schema.fields.items()},
        "max_text_len": max_text_len,
    }


@dataclass
class IndexDiff:
    """What merging the desired keys into an existing index changes (``merged`` is what to send)."""

    merged: dict[str, t.Any]
    added: list[str] = field(default_factory=list)
    retyped: list[str] = field(default_factory=list)
    analytics_enabled: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_text_len_set: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.retyped or self.analytics_enabled or self.max_text_len_set)

    def describe(self) -> list[str]:
        out = [f"add key {k}" for k in self.added]
        out += [f"change type of key {k}" for k in self.retyped]
        out += [f"enable analytics (doc_value) on key {k}" for k in self.analytics_enabled]
        if self.max_text_len_set:
            out.append(f"set max_text_len {self.merged['max_text_len']}")
        return out + self.notes


def _compatible(existing: str, wanted: str) -> bool:
    return existing == wanted or {existing, wanted} <= {"text", "json"}


def diff_index(existing: t.Mapping[str, t.Any], schema: RecordSchema, max_text_len: int) -> IndexDiff:
    """Merge the keys ``schema`` needs into ``existing``; nothing that exists is removed."""
    merged = {k: copy.deepcopy(v) for k, v in existing.items() if k not in _READ_ONLY}
    keys: dict[str, t.Any] = merged.setdefault("keys", {}) or {}
    merged["keys"] = keys
    result = IndexDiff(merged)
    for name, type_ in schema.fields.items():
        wanted = key_config(type_)
        current = keys.get(name)
        if current is None:
            keys[name] = wanted
            result.added.append(name)
            continue
        current_type = str(current.get("type", "text"))
        if not _compatible(current_type, wanted["type"]):
            # Numeric ordering / comparison in SQL depends on the type; tuned text settings don't.
            keys[name] = wanted
            result.retyped.append(name)
            continue
        if not current.get("doc_value"):
            current["doc_value"] = True
            result.analytics_enabled.append(name)
            continue
        result.kept.append(name)
    current_len = int(merged.get("max_text_len") or 0)
    if current_len <= 0:
        merged["max_text_len"] = max_text_len
        result.max_text_len_set = True
    elif current_len != max_text_len:
        result.notes.append(f"keep tuned max_text_len {current_len} (setting: {max_text_len})")
    return result
