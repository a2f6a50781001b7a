"""Dynamic mapping: the type Elasticsearch infers for a new field, and ``dynamic_templates``."""

from __future__ import annotations

import copy
import fnmatch
import re
import typing as t

from flask_difylogstore.testing.es.datemath import UTC, _parse_one


def dynamic_type(value: t.Any, date_detection: bool = True) -> str | None:
    """The ``match_mapping_type`` name ES gives a JSON value."""
    if isinstance(value, list):
        return next((dynamic_type(v, date_detection) for v in value if v is not None), None)
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "date" if date_detection and _looks_like_date(value) else "string"
    return None


def _looks_like_date(value: str) -> bool:
    if value[:1].isdigit() and len(value) >= 10 and _parse_one(value, "strict_date_optional_time", UTC) is not None:
        return True
    return _parse_one(value, "yyyy/MM/dd HH:mm:ss", UTC) is not None


def _substitute(node: t.Any, name: str, dtype: str) -> t.Any:
    if isinstance(node, dict):
        return {k: _substitute(v, name, dtype) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, name, dtype) for v in node]
    if isinstance(node, str):
        return node.replace("{name}", name).replace("{dynamic_type}", dtype)
    return node


def _matches(spec: dict[str, t.Any], key: str, subject: str) -> bool | None:
    """None when the template does not constrain ``key``; else whether ``subject`` matches it."""
    patterns = spec.get(key)
    if patterns is None:
        return None
    regex = spec.get("match_pattern") == "regex"
    for pattern in patterns if isinstance(patterns, list) else [patterns]:
        if re.fullmatch(pattern, subject) if regex else fnmatch.fnmatchcase(subject, pattern):
            return True
    return False


def template_mapping(
    templates: list[dict[str, t.Any]], path: str, name: str, value: t.Any, date_detection: bool
) -> dict[str, t.Any] | None:
    dtype = dynamic_type(value, date_detection)
    if dtype is None:
        return None
    for entry in templates:
        for spec in entry.values():
            wanted = spec.get("match_mapping_type")
            if wanted not in (None, "*") and dtype not in (wanted if isinstance(wanted, list) else [wanted]):
                continue
            if _matches(spec, "match", name) is False or _matches(spec, "unmatch", name) is True:
                continue
            if _matches(spec, "path_match", path) is False or _matches(spec, "path_unmatch", path) is True:
                continue
            mapping: dict[str, t.Any] = _substitute(copy.deepcopy(spec.get("mapping") or {}), name, dtype)
            if dtype == "object" and "type" not in mapping:
                mapping.setdefault("properties", {})
            elif "type" not in mapping:
                mapping["type"] = {"string": "text", "double": "float"}.get(dtype, dtype)
            return mapping
    return None


def infer(value: t.Any, date_detection: bool = True) -> dict[str, t.Any] | None:
    """ES dynamic mapping rules: long, float, boolean, date detection, text + keyword sub-field."""
    if isinstance(value, list):
        for item in value:
            if item is not None:
                return infer(item, date_detection)
        return None
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, dict):
        return {"properties": {}}
    if isinstance(value, str):
        if date_detection and _looks_like_date(value):
            return {"type": "date"}
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    return None
