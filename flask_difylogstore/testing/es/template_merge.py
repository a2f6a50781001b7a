"""Mapping composition of index templates: later definitions replace earlier ones, objects merge."""

from __future__ import annotations

import copy
import typing as t


def override_mapping(base: dict[str, t.Any], extra: dict[str, t.Any]) -> None:
    """Template composition (``MergeReason.INDEX_TEMPLATE``): later definitions replace earlier ones.

    Objects merge recursively; a leaf field defined again (another type included) is replaced whole.
    """
    _override_properties(base.setdefault("properties", {}), extra.get("properties") or {})
    for key, value in extra.items():
        if key != "properties":
            base[key] = copy.deepcopy(value)


def _override_properties(base: dict[str, t.Any], extra: dict[str, t.Any]) -> None:
    for name, fdef in extra.items():
        old = base.get(name)
        is_object = "properties" in fdef and fdef.get("type", "object") in ("object", "nested")
        was_object = (
            isinstance(old, dict) and "properties" in old and old.get("type", "object") == fdef.get("type", "object")
        )
        if is_object and was_object:
            assert old is not None
            _override_properties(old["properties"], fdef["properties"])
            for key, value in fdef.items():
                if key != "properties":
                    old[key] = copy.deepcopy(value)
        else:
            base[name] = copy.deepcopy(fdef)
