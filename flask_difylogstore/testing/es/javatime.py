"""Java ``DateTimeFormatter`` patterns (``yyyy-MM-dd HH:mm:ss.SSSSSS``, ``dd/MMM/yyyy``, ...) for parsing and printing.

Elasticsearch date formats that are not built-in names are Java patterns. A pattern is split into
letter runs and quoted literals; each run becomes a regex group for parsing and a printer for
output. A letter Java does not know is refused with Java's own message ("Unknown pattern letter: q").
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
# Letters java.time accepts in a pattern; the ones this module can handle are in _SUPPORTED.
_JAVA_LETTERS = set("GuyDMLdQqYwWEecFaBhKkHmsSAnNVvzOXxZp")
_SUPPORTED = set("uyMLdEaHhkKmsSXxZ")


class PatternError(ValueError):
    """An invalid pattern (Java's ``IllegalArgumentException`` text)."""


@dataclass(frozen=True)
class _Token:
    letter: str  # "" for a literal
    count: int
    text: str = ""


def _tokens(pattern: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise PatternError(f"Pattern ends with an incomplete string literal: {pattern}")
            out.append(_Token("", 0, pattern[i + 1 : end] or "'"))
            i = end + 1
            continue
        if ch.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == ch:
                j += 1
            if ch not in _JAVA_LETTERS:
                raise PatternError(f"Unknown pattern letter: {ch}")
            if ch not in _SUPPORTED:
                raise PatternError(f"pattern letter [{ch}] is not implemented by this local server")
            out.append(_Token(ch, j - i))
            i = j
            continue
        if ch in "[]{}#":
            raise PatternError(f"pattern character [{ch}] is not implemented by this local server")
        out.append(_Token("", 0, ch))
        i += 1
    return out


def _regex(tok: _Token, seen: set[str]) -> str:
    name = {"u": "year", "y": "year", "M": "month", "L": "month", "d": "day", "H": "hour", "k": "hour",
            "h": "hour12", "K": "hour12", "m": "minute", "s": "second", "S": "frac", "a": "ampm",
            "E": "dow", "X": "tz", "x": "tz", "Z": "tz"}[tok.letter]  # fmt: skip
    group = f"(?P<{name}>" if name not in seen else "(?:"
    seen.add(name)
    n = tok.count
    if tok.letter in "uy":
        body = r"\d{2}" if n == 2 else r"[+-]?\d{4,9}" if n >= 4 else r"[+-]?\d{1,9}"
    elif tok.letter in "ML" and n >= 3:
        body = "|".join(m if n >= 4 else m[:3] for m in _MONTHS)
    elif tok.letter == "E":
        body = "|".join(d if n >= 4 else d[:3] for d in _DAYS)
    elif tok.letter == "a":
        body = "AM|PM|am|pm"
    elif tok.letter == "S":
        body = rf"\d{{{n}}}"
    elif tok.letter in "XxZ":
        body = r"Z|[+-]\d{2}(?::?\d{2})?"
    else:
        body = rf"\d{{{n},2}}" if n < 2 else rf"\d{{{n}}}"
    return group + body + ")"


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The parsing regex of a Java pattern (named groups ``year``, ``month``, ... ``frac``, ``tz``)."""
    seen: set[str] = set()
    out = "".join(re.escape(t.text) if not t.letter else _regex(t, seen) for t in _tokens(pattern))
    return re.compile("^" + out + "$", re.IGNORECASE)


def parse_parts(pattern: str, text: str) -> dict[str, str | None] | None:
    """Match ``text`` against ``pattern``; the parts in the form ``datemath._to_ns`` takes, or None."""
    m = compile_pattern(pattern).match(text)
    if not m:
        return None
    parts: dict[str, str | None] = dict(m.groupdict())
    month = parts.get("month")
    if month and not month.isdigit():
        parts["month"] = str([x[:3].lower() for x in _MONTHS].index(month[:3].lower()) + 1)
    year = parts.get("year")
    if year and len(year) == 2 and year.isdigit():
        parts["year"] = str(2000 + int(year))
    if parts.get("hour12") is not None:
        hour = int(parts.pop("hour12") or 0) % 12
        if str(parts.get("ampm") or "").lower() == "pm":
            hour += 12
        parts["hour"] = str(hour)
    parts.pop("ampm", None)
    parts.pop("dow", None)
    if parts.get("frac"):
        parts["frac"] = str(parts["frac"]).ljust(9, "0")
    return parts


def _offset(moment: dt.datetime, letter: str, n: int) -> str:
    delta = moment.utcoffset() or dt.timedelta(0)
    minutes = int(delta.total_seconds() // 60)
    if minutes == 0 and letter == "X":
        return "Z"
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    if letter == "Z" and n < 4:
        return f"{sign}{hh:02d}{mm:02d}"
    if n == 1:
        return f"{sign}{hh:02d}" + (f"{mm:02d}" if mm else "")
    return f"{sign}{hh:02d}:{mm:02d}" if n in (3, 5) or letter == "Z" else f"{sign}{hh:02d}{mm:02d}"


def format_moment(pattern: str, moment: dt.datetime, nanos: int | None = None) -> str:
    """Print ``moment`` with a Java pattern; ``nanos`` (of the second) overrides the microseconds."""
    frac = f"{moment.microsecond * 1000 if nanos is None else nanos:09d}"
    out = []
    for tok in _tokens(pattern):
        ch, n = tok.letter, tok.count
        if not ch:
            out.append(tok.text)
        elif ch in "uy":
            out.append(f"{moment.year % 100:02d}" if n == 2 else f"{moment.year:0{max(n, 1)}d}")
        elif ch in "ML":
            out.append(_MONTHS[moment.month - 1][: None if n >= 4 else 3] if n >= 3 else f"{moment.month:0{n}d}")
        elif ch == "d":
            out.append(f"{moment.day:0{n}d}")
        elif ch == "E":
            out.append(_DAYS[moment.weekday()][: None if n >= 4 else 3])
        elif ch in "Hk":
            out.append(f"{moment.hour:0{n}d}")
        elif ch in "hK":
            out.append(f"{(moment.hour % 12) or (12 if ch == 'h' else 0):0{n}d}")
        elif ch == "a":
            out.append("AM" if moment.hour < 12 else "PM")
        elif ch == "m":
            out.append(f"{moment.minute:0{n}d}")
        elif ch == "s":
            out.append(f"{moment.second:0{n}d}")
        elif ch == "S":
            out.append(frac[:n].ljust(n, "0"))
        else:
            out.append(_offset(moment, ch, n))
    return "".join(out)


def validate(pattern: str) -> None:
    """Raise :class:`PatternError` when ``pattern`` is not a usable Java pattern."""
    _tokens(pattern)
