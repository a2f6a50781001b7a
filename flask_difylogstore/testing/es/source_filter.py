"""``_source`` filtering and the rendering of a hit, shared by ``_search``, ``top_hits`` and ``GET _doc``."""

from __future__ import annotations

import fnmatch
import typing as t

from flask_difylogstore.testing.es.sorting import Hit


def _source_filter(spec: t.Any) -> tuple[bool, list[str], list[str]]:
    if spec is None or spec is True:
        return True, [], []
    if spec is False:
        return False, [], []
    if isinstance(spec, str):
        return True, spec.split(","), []
    if isinstance(spec, list):
        return True, [str(s) for s in spec], []
    inc = spec.get("includes", spec.get("include", []))
    exc = spec.get("excludes", spec.get("exclude", []))
    return True, [inc] if isinstance(inc, str) else list(inc), [exc] if isinstance(exc, str) else list(exc)


def filter_source(
    source: dict[str, t.Any], includes: list[str], excludes: list[str], prefix: str = ""
) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {}
    for key, value in source.items():
        path = prefix + key
        if any(fnmatch.fnmatchcase(path, p) for p in excludes):
            continue
        whole = not includes or any(fnmatch.fnmatchcase(path, p) for p in includes)
        if isinstance(value, dict):
            if whole:
                out[key] = filter_source(value, [], excludes, path + ".") if excludes else value
            elif any(p.startswith(path + ".") or "*" in p for p in includes):
                sub = filter_source(value, includes, excludes, path + ".")
                if sub:
                    out[key] = sub
        elif whole:
            out[key] = value
    return out


def _render(hit: Hit, keep: bool, inc: list[str], exc: list[str], score: bool) -> dict[str, t.Any]:
    ctx, doc, s = hit
    body: dict[str, t.Any] = {"_index": ctx.index, "_id": doc.id, "_score": s if score else None}
    if keep:
        body["_source"] = filter_source(doc.source, inc, exc) if (inc or exc) else doc.source
    return body
