"""Lucene ``RegExp`` syntax (regexp queries, terms ``include``/``exclude``) translated to Python ``re``.

Lucene's grammar is not Java's or Python's: ``^``/``$`` are ordinary characters, ``(?i)`` is a
literal ``?`` and ``i``, a leading ``*`` is a literal star, ``"..."`` quotes a string, ``@`` is any
string, ``#`` the empty language and ``<1-12>`` a numeric interval. The parser follows Lucene's
``RegExp`` recursive descent and fails with its messages ("expected ']' at position 4",
"unexpected end-of-string", ...). Complement (``~``) and intersection (``&``) are not translated
and are refused.
"""

from __future__ import annotations

import re
from functools import lru_cache


class RegexError(ValueError):
    """Lucene's ``IllegalArgumentException`` text for an invalid expression."""


class NotTranslatable(ValueError):
    """Valid Lucene syntax this module does not translate (``~``, ``&``, huge intervals)."""


_PREDEFINED = {"d": r"\d", "D": r"\D", "s": r"\s", "S": r"\S", "w": r"\w", "W": r"\W"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.pos = 0

    def more(self) -> bool:
        return self.pos < len(self.s)

    def peek(self, chars: str) -> bool:
        return self.more() and self.s[self.pos] in chars

    def match(self, ch: str) -> bool:
        if self.more() and self.s[self.pos] == ch:
            self.pos += 1
            return True
        return False

    def next(self) -> str:
        if not self.more():
            raise RegexError("unexpected end-of-string")
        ch = self.s[self.pos]
        self.pos += 1
        return ch

    def parse(self) -> str:
        out = self.union()
        if self.pos < len(self.s):
            raise RegexError(f"end-of-string expected at position {self.pos}")
        return out

    def union(self) -> str:
        left = self.inter()
        if self.match("|"):
            return f"(?:{left}|{self.union()})"
        return left

    def inter(self) -> str:
        left = self.concat()
        if self.peek("&"):
            raise NotTranslatable("the intersection operator [&]")
        return left

    def concat(self) -> str:
        parts = [self.repeat()]
        while self.more() and not self.peek(")|&"):
            parts.append(self.repeat())
        return "".join(parts)

    def repeat(self) -> str:
        expr = self.compl()
        while self.peek("?*+{"):
            op = self.next()
            if op != "{":
                expr = f"(?:{expr}){op}"
                continue
            start = self.pos
            while self.peek("0123456789"):
                self.pos += 1
            if start == self.pos:
                raise RegexError(f"integer expected at position {self.pos}")
            low = self.s[start : self.pos]
            high = low
            if self.match(","):
                start = self.pos
                while self.peek("0123456789"):
                    self.pos += 1
                high = self.s[start : self.pos]
            if not self.match("}"):
                raise RegexError(f"expected '}}' at position {self.pos}")
            expr = f"(?:{expr}){{{low},{high}}}" if high != low else f"(?:{expr}){{{low}}}"
        return expr

    def compl(self) -> str:
        if self.peek("~"):
            raise NotTranslatable("the complement operator [~]")
        return self.char_class()

    def char_class(self) -> str:
        if not self.match("["):
            return self.simple()
        negate = self.match("^")
        items = [self.class_item()]
        while self.more() and not self.peek("]"):
            items.append(self.class_item())
        if not self.match("]"):
            raise RegexError(f"expected ']' at position {self.pos}")
        return ("[^" if negate else "[") + "".join(items) + "]"

    def class_item(self) -> str:
        predefined = self.predefined()
        if predefined is not None:
            return predefined
        low = self.char()
        if self.match("-"):
            high = self.char()
            if ord(low) > ord(high):
                raise RegexError(f"invalid range: from ({ord(low)}) cannot be > to ({ord(high)})")
            return re.escape(low) + "-" + re.escape(high)
        return re.escape(low)

    def predefined(self) -> str | None:
        if self.pos + 1 < len(self.s) and self.s[self.pos] == "\\" and self.s[self.pos + 1] in _PREDEFINED:
            self.pos += 2
            return _PREDEFINED[self.s[self.pos - 1]]
        return None

    def char(self) -> str:
        self.match("\\")
        return self.next()

    def simple(self) -> str:
        if self.match("."):
            return "."
        if self.match("#"):
            return "(?!)"
        if self.match("@"):
            return ".*"
        if self.match('"'):
            start = self.pos
            while self.more() and not self.peek('"'):
                self.pos += 1
            if not self.match('"'):
                raise RegexError(f"expected '\"' at position {self.pos}")
            return re.escape(self.s[start : self.pos - 1])
        if self.match("("):
            if self.match(")"):
                return ""
            inner = self.union()
            if not self.match(")"):
                raise RegexError(f"expected ')' at position {self.pos}")
            return f"(?:{inner})"
        if self.match("<"):
            return self.interval()
        predefined = self.predefined()
        if predefined is not None:
            return predefined
        return re.escape(self.char())

    def interval(self) -> str:
        start = self.pos
        end = self.s.find(">", start)
        if end < 0:
            raise RegexError(f"expected '>' at position {self.pos}")
        body = self.s[start:end]
        self.pos = end + 1
        low, sep, high = body.partition("-")
        if not sep or not low.isdigit() or not high.isdigit():
            raise NotTranslatable(f"the automaton reference <{body}>")
        a, b = sorted((int(low), int(high)))
        if b - a > 10_000:
            raise NotTranslatable(f"the interval <{body}> (more than 10,000 values)")
        width = len(low) if len(low) == len(high) else 0
        numbers = "|".join(str(n).zfill(width) if width else str(n) for n in range(a, b + 1))
        return f"(?:0*(?:{numbers}))" if not width else f"(?:{numbers})"


@lru_cache(maxsize=512)
def translate(pattern: str) -> str:
    """The Python regex for a Lucene regexp (to be used with ``fullmatch`` and ``re.S``)."""
    return _Parser(pattern).parse()


def compile_lucene(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(translate(pattern), re.S | flags)
