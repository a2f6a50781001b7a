"""A tiny Painless subset for updates: ``ctx._source.f = params.x``, ``+=``, ``ctx._source.remove('f')``."""

from __future__ import annotations

import re
import typing as t

import orjson

from flask_difylogstore.testing.es.errors import EsError

_ASSIGN = re.compile(r"^ctx\._source((?:\.\w+|\['[^']+'\])+)\s*(=|\+=|-=)\s*(.+)$", re.S)
_REMOVE = re.compile(r"^ctx\._source((?:\.\w+)*)\.remove\(\s*['\"]([^'\"]+)['\"]\s*\)$")


def _path(text: str) -> list[str]:
    return [p for p in re.findall(r"\.(\w+)|\['([^']+)'\]", text) for p in p if p]


def _value(expr: str, params: dict[str, t.Any], source: dict[str, t.Any]) -> t.Any:
    expr = expr.strip()
    if expr.startswith("params."):
        value: t.Any = params
        for part in expr[len("params.") :].split("."):
            if not isinstance(value, dict) or part not in value:
                raise EsError(400, "script_exception", f"runtime error: missing parameter [{expr}]")
            value = value[part]
        return value
    if expr.startswith("ctx._source"):
        value = source
        for part in _path(expr[len("ctx._source") :]):
            value = value.get(part) if isinstance(value, dict) else None
        return value
    if expr[:1] == "'" and expr[-1:] == "'":
        return expr[1:-1]
    try:
        return orjson.loads(expr)
    except orjson.JSONDecodeError:
        raise EsError(400, "script_exception", f"compile error: unsupported expression [{expr}]") from None


def run_script(script: t.Any, source: dict[str, t.Any]) -> dict[str, t.Any]:
    """Apply the script to ``source`` in place and return it; anything else is a ``script_exception``."""
    if isinstance(script, str):
        script = {"source": script}
    code = str(script.get("source", script.get("inline", "")))
    params = script.get("params") or {}
    for statement in (s.strip() for s in code.split(";")):
        if not statement:
            continue
        m = _ASSIGN.match(statement)
        if m:
            parts = _path(m.group(1))
            target = source
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            value = _value(m.group(3), params, source)
            if m.group(2) == "+=":
                value = target.get(parts[-1], 0 if not isinstance(value, str) else "") + value
            elif m.group(2) == "-=":
                value = target.get(parts[-1], 0) - value
            target[parts[-1]] = value
            continue
        m = _REMOVE.match(statement)
        if m:
            target = source
            for part in _path(m.group(1)):
                target = target.get(part) or {}
            target.pop(m.group(2), None)
            continue
        raise EsError(
            400,
            "script_exception",
            f"compile error: unsupported script statement [{statement}]",
            extra={"script": code, "lang": "painless"},
        )
    return source
