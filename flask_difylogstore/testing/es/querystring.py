"""A basic Lucene ``query_string`` parser that translates into the query DSL.

Supports ``field:value``, ``"phrases"``, wildcards, ``AND``/``OR``/``NOT``/``+``/``-``, parentheses,
``[a TO b]``/``{a TO b}`` ranges, ``>``/``>=``/``<``/``<=`` and ``_exists_:field``.
"""

from __future__ import annotations

import re
import typing as t
from collections.abc import Callable

from flask_difylogstore.testing.es.errors import EsError

Query = dict[str, t.Any]
_TOKENS = re.compile(
    r"\s*(?:(\()|(\))|(AND\b|&&)|(OR\b|\|\|)|(NOT\b|!)|([\w.*?@-]+):\(|([+-])?((?:[\w.*?@-]+:)?"
    r'(?:"[^"]*"|\[[^\]]*\]|\{[^}]*\}|(?:>=|<=|>|<)?[^\s()"]+)))'
)


class _Parser:
    def __init__(
        self,
        text: str,
        fields: list[str],
        default_and: bool,
        expand: Callable[[list[str]], list[tuple[str, float]]],
    ) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKENS.match(text, pos)
            if not m or m.end() == pos:
                raise EsError(400, "query_shard_exception", f"Failed to parse query [{text}]")
            pos = m.end()
            kinds = ("(", ")", "AND", "OR", "NOT", "GROUP", "SIGN", "TERM")
            for kind, group in zip(kinds, m.groups(), strict=True):
                if group:
                    self.tokens.append((kind, group))
        self.pos = 0
        self.fields = fields
        self.default_and = default_and
        self.expand = expand

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse_or(self) -> Query:
        clauses = [self.parse_and()]
        while self.peek() == "OR":
            self.take()
            clauses.append(self.parse_and())
        return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}

    def parse_and(self) -> Query:
        clauses: list[tuple[Query, str]] = []
        joined = False
        while self.peek() not in (None, ")", "OR"):
            if self.peek() == "AND":
                self.take()
                joined = True
                continue
            negate = required = False
            if self.peek() == "NOT":
                self.take()
                negate = True
            if self.peek() == "SIGN":
                sign = self.take()[1]
                negate, required = sign == "-", sign == "+"
            clause = self.parse_atom()
            mode = "must_not" if negate else "must" if (required or self.default_and or joined) else "should"
            if joined and clauses and clauses[-1][1] == "should":
                clauses[-1] = (clauses[-1][0], "must")
            clauses.append((clause, mode))
            joined = False
        body: Query = {"must": [], "must_not": [], "should": []}
        for clause, mode in clauses:
            body[mode].append(clause)
        if not body["must_not"] and len(clauses) == 1:
            return clauses[0][0]
        if body["should"] and not body["must"]:
            body["minimum_should_match"] = 1
        return {"bool": body}

    def parse_atom(self) -> Query:
        if self.peek() == "GROUP":
            saved = self.fields
            self.fields = [self.take()[1]]
            inner = self.parse_or()
            if self.peek() == ")":
                self.take()
            self.fields = saved
            return inner
        if self.peek() == "(":
            self.take()
            inner = self.parse_or()
            if self.peek() == ")":
                self.take()
            return inner
        kind, text = self.take()
        if kind != "TERM":
            raise EsError(400, "query_shard_exception", f"Failed to parse query near [{text}]")
        field, sep, value = text.partition(":")
        if not sep or (field.startswith('"') or field.startswith("[")):
            field, value = "", text
        if field == "_exists_":
            return {"exists": {"field": value}}
        return self.leaf([field] if field else self.fields, value)

    def leaf(self, fields: list[str], value: str) -> Query:
        targets = [f for f, _ in self.expand(fields)] or fields
        clauses = [self.one(f, value, lenient=len(targets) > 1) for f in targets]
        return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}

    def one(self, field: str, value: str, lenient: bool = False) -> Query:
        if value.startswith('"') and value.endswith('"'):
            return {"match_phrase": {field: value[1:-1]}}
        if value[:1] in "[{" and " TO " in value:
            low, high = value[1:-1].split(" TO ", 1)
            body: dict[str, t.Any] = {}
            if low.strip() != "*":
                body["gte" if value[0] == "[" else "gt"] = low.strip()
            if high.strip() != "*":
                body["lte" if value[-1] == "]" else "lt"] = high.strip()
            return {"range": {field: body}}
        for op, key in ((">=", "gte"), ("<=", "lte"), (">", "gt"), ("<", "lt")):
            if value.startswith(op):
                return {"range": {field: {key: value[len(op) :]}}}
        if "*" in value or "?" in value:
            return {"wildcard": {field: {"value": value}}}
        return {"match": {field: {"query": value, "lenient": lenient}}}


def parse_query_string(body: dict[str, t.Any], expand: Callable[[list[str]], list[tuple[str, float]]]) -> Query:
    """Translate a ``query_string`` body into an equivalent DSL query."""
    fields = body.get("fields") or [body.get("default_field", "*")]
    default_and = str(body.get("default_operator", "or")).lower() == "and"
    parser = _Parser(str(body.get("query", "")), list(fields), default_and, expand)
    if not parser.tokens:
        return {"match_none": {}}
    return parser.parse_or()
