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
    r'\s*(?:(\()|(\))|(AND\b|&&)|(OR\b|\|\|)|(NOT\b|!)|([+-])?((?:[\w.*?@-]+:)?(?:"[^"]*"|\[[^\]]*\]|\{[^}]*\}'
    r'|(?:>=|<=|>|<)?[^\s()"]+)))'
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
            for kind, group in zip(("(", ")", "AND", "OR", "NOT", "SIGN"), m.groups()[:6], strict=True):
                if group:
                    self.tokens.append((kind, group))
            if m.group(7):
                self.tokens.append(("TERM", m.group(7)))
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
        must: list[Query] = []
        must_not: list[Query] = []
        should: list[Query] = []
        while self.peek() not in (None, ")", "OR"):
            if self.peek() == "AND":
                self.take()
                continue
            negate = required = False
            if self.peek() == "NOT":
                self.take()
                negate = True
            if self.peek() == "SIGN":
                sign = self.take()[1]
                negate, required = sign == "-", sign == "+"
            clause = self.parse_atom()
            if negate:
                must_not.append(clause)
            elif required or self.default_and:
                must.append(clause)
            else:
                should.append(clause)
        if not must_not and len(must) + len(should) == 1:
            return (must or should)[0]
        body: Query = {"must": must, "must_not": must_not, "should": should}
        if should and not must:
            body["minimum_should_match"] = 1
        return {"bool": body}

    def parse_atom(self) -> Query:
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
        clauses = [self.one(f, value) for f in targets]
        return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}

    def one(self, field: str, value: str) -> Query:
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
        return {"match": {field: value}}


def parse_query_string(
    body: dict[str, t.Any], expand: Callable[[list[str]], list[tuple[str, float]]]
) -> Query:
    """Translate a ``query_string`` body into an equivalent DSL query."""
    fields = body.get("fields") or [body.get("default_field", "*")]
    default_and = str(body.get("default_operator", "or")).lower() == "and"
    parser = _Parser(str(body.get("query", "")), list(fields), default_and, expand)
    if not parser.tokens:
        return {"match_none": {}}
    return parser.parse_or()
