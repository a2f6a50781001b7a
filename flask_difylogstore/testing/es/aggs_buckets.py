"""Bucketing by value: ``date_histogram``, ``histogram``, ``range`` and ``composite`` (terms / date_histogram sources).

They are added to the aggregation table explicitly, by ``aggs.register_handlers(BUCKET_HANDLERS)``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import typing as t

from flask_difylogstore.testing.es import aggs_spec, datemath
from flask_difylogstore.testing.es.aggs import Handler, Pair, _check_field, _Env, _run, _vals
from flask_difylogstore.testing.es.body_check import not_implemented
from flask_difylogstore.testing.es.errors import bad_request, parsing_error, shard_error

_CAL = {
    "minute": "m", "1m": "m", "hour": "h", "1h": "h", "day": "d", "1d": "d", "week": "w", "1w": "w",
    "month": "M", "1M": "M", "quarter": "q", "1q": "q", "year": "y", "1y": "y",
}  # fmt: skip


class DateBuckets:
    """Maps epoch milliseconds to bucket keys for one ``date_histogram`` definition."""

    def __init__(self, params: dict[str, t.Any], env: _Env) -> None:
        self.field = params["field"]
        ftype = _check_field(env, self.field)
        if ftype not in (None, "date", "date_nanos"):
            raise shard_error(
                f"Field [{self.field}] of type [{ftype}] is not supported for aggregation [date_histogram]"
            )
        self.nanos = ftype == "date_nanos"
        self.zone = datemath.get_zone(params.get("time_zone"))
        self.fmt = params.get("format") or env.field_format(self.field)
        if params.get("format"):
            datemath.validate_format(str(params["format"]))
        self.offset = datemath.parse_duration_ms(params["offset"]) if params.get("offset") else 0
        interval = params.get("interval")
        self.cal = params.get("calendar_interval") or (interval if interval in _CAL else None)
        fixed = params.get("fixed_interval") or (interval if not self.cal else None)
        if self.cal:
            if self.cal not in _CAL:
                raise bad_request(f"The supplied interval [{self.cal}] could not be parsed as a calendar interval.")
            self.unit = _CAL[self.cal]
        elif fixed:
            self.step = datemath.parse_duration_ms(fixed)
        else:
            raise bad_request(
                "Required one of fields [interval, calendar_interval, fixed_interval], but none were specified."
            )
        self.memo: dict[int, int] = {}

    def values(self, pair: Pair) -> set[int]:
        raw = _vals(pair[1], self.field)
        return {self.key(int(v) // 1_000_000 if self.nanos else int(v)) for v in raw}

    def key(self, ms: int) -> int:
        if self.cal:
            minute = (ms - self.offset) // 60_000
            found = self.memo.get(minute)
            if found is None:
                local = datemath.round_down(datemath.from_ms(ms - self.offset, self.zone), self.unit)
                found = self.memo[minute] = int(local.timestamp() * 1000) + self.offset
            return found
        tz_off = _offset_ms(self.zone, ms)
        return (ms + tz_off - self.offset) // self.step * self.step - tz_off + self.offset

    def next(self, key: int) -> int:
        if self.cal:
            moment = datemath.from_ms(key - self.offset, self.zone)
            return int(datemath.add_unit(moment, 1, self.unit).timestamp() * 1000) + self.offset
        return self.key(key + self.step)

    def text(self, key: int) -> str:
        return datemath.format_date(key, self.fmt, self.zone)

    def parse(self, value: t.Any, now_ms: int) -> int:
        return self.key(datemath.resolve(value, self.fmt, self.zone, now_ms=now_ms))


def _offset_ms(zone: dt.tzinfo, ms: int) -> int:
    delta = datemath.from_ms(ms, zone).utcoffset()
    return int(delta.total_seconds() * 1000) if delta else 0


def _date_histogram(params: dict[str, t.Any], docs: list[Pair], env: _Env, sub: dict[str, t.Any]) -> dict[str, t.Any]:
    buckets_of = DateBuckets(params, env)
    members: dict[int, list[Pair]] = {}
    for pair in docs:
        for key in buckets_of.values(pair):
            members.setdefault(key, []).append(pair)
    min_count = int(params.get("min_doc_count", 0))
    keys = sorted(members)
    bounds = params.get("extended_bounds")
    if min_count == 0 and (keys or bounds):
        lo, hi = (keys[0], keys[-1]) if keys else (None, None)
        if bounds and bounds.get("min") is not None:
            b = buckets_of.parse(bounds["min"], env.now_ms)
            lo = b if lo is None else min(lo, b)
        if bounds and bounds.get("max") is not None:
            b = buckets_of.parse(bounds["max"], env.now_ms)
            hi = b if hi is None else max(hi, b)
        keys = []
        cursor = lo
        while cursor is not None and hi is not None and cursor <= hi and len(keys) < 100_000:
            keys.append(cursor)
            cursor = buckets_of.next(cursor)
    hard = params.get("hard_bounds") or {}
    low = buckets_of.parse(hard["min"], env.now_ms) if hard.get("min") is not None else None
    high = buckets_of.parse(hard["max"], env.now_ms) if hard.get("max") is not None else None
    buckets = []
    for key in keys:
        chosen = members.get(key, [])
        if len(chosen) < min_count or (low is not None and key < low) or (high is not None and key > high):
            continue
        bucket = {"key_as_string": buckets_of.text(key), "key": key, "doc_count": len(chosen)}
        bucket.update(_run(sub, chosen, env))
        buckets.append(bucket)
    _order_buckets(buckets, params.get("order"), "date_histogram")
    return {"buckets": buckets}


def _order_buckets(buckets: list[dict[str, t.Any]], order: t.Any, kind: str) -> None:
    """``order`` by ``_key`` or ``_count`` (ties by ascending key, as Elasticsearch breaks them)."""
    if order is None:
        return
    for spec in reversed(order if isinstance(order, list) else [order]):
        if not isinstance(spec, dict) or len(spec) != 1:
            raise parsing_error(f"[{kind}] failed to parse field [order]")
        ((what, direction),) = spec.items()
        desc = str(direction).lower() == "desc"
        if what == "_count":
            buckets.sort(key=lambda b: (-b["doc_count"] if desc else b["doc_count"], b["key"]))
        elif what == "_key":
            buckets.sort(key=lambda b: b["key"], reverse=desc)
        else:
            raise not_implemented(f"{kind} order by [{what}]")


class _Source:
    """One composite source: extracts its keys from a document and orders them."""

    def __init__(self, name: str, kind: str, params: dict[str, t.Any], env: _Env) -> None:
        aggs_spec.check_source(kind, params)
        self.name = name
        self.field = params["field"]
        self.desc = str(params.get("order", "asc")).lower() == "desc"
        self.missing_bucket = bool(params.get("missing_bucket", False))
        self.missing_first = str(params.get("missing_order", "default")).lower() != "last"
        self.dates = DateBuckets(params, env) if kind == "date_histogram" else None
        self.formatted = self.dates is not None and bool(params.get("format"))
        if kind == "terms":
            self.ftype = _check_field(env, self.field)
        elif kind != "date_histogram":
            raise parsing_error(f"Unknown source type [{kind}] in composite aggregation")

    def keys(self, pair: Pair) -> list[t.Any]:
        found: list[t.Any] = (
            sorted(self.dates.values(pair)) if self.dates else list(dict.fromkeys(_vals(pair[1], self.field)))
        )
        if not found and self.missing_bucket:
            return [None]
        return found

    def sort_key(self, value: t.Any) -> tuple[int, t.Any]:
        if value is None:
            return (0 if self.missing_first != self.desc else 2, 0)
        return (1, _Neg(value) if self.desc else value)

    def render(self, value: t.Any) -> t.Any:
        if value is None or self.dates is None or not self.formatted:
            return value
        return self.dates.text(value)

    def parse_after(self, value: t.Any, now_ms: int) -> t.Any:
        if value is None or self.dates is None:
            return value
        return self.dates.parse(value, now_ms)


class _Neg:
    __slots__ = ("v",)

    def __init__(self, v: t.Any) -> None:
        self.v = v

    def __lt__(self, other: _Neg) -> bool:
        return bool(other.v < self.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Neg) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


def _composite(params: dict[str, t.Any], docs: list[Pair], env: _Env, sub: dict[str, t.Any]) -> dict[str, t.Any]:
    sources = []
    for spec in params.get("sources") or []:
        ((name, body),) = spec.items()
        ((kind, source_params),) = body.items()
        sources.append(_Source(name, kind, source_params, env))
    if not sources:
        raise parsing_error("Composite [sources] cannot be null or empty")
    size = int(params.get("size", 10))
    members: dict[tuple[t.Any, ...], list[Pair]] = {}
    for pair in docs:
        per_source = [s.keys(pair) for s in sources]
        if any(not keys for keys in per_source):
            continue
        for combo in itertools.product(*per_source):
            members.setdefault(combo, []).append(pair)

    def order(combo: tuple[t.Any, ...]) -> tuple[t.Any, ...]:
        return tuple(s.sort_key(v) for s, v in zip(sources, combo, strict=True))

    keys = sorted(members, key=order)
    after = params.get("after")
    if after:
        bound = order(tuple(s.parse_after(after.get(s.name), env.now_ms) for s in sources))
        keys = [k for k in keys if order(k) > bound]
    page = keys[:size]
    buckets = []
    for combo in page:
        rendered = {s.name: s.render(v) for s, v in zip(sources, combo, strict=True)}
        bucket: dict[str, t.Any] = {"key": rendered, "doc_count": len(members[combo])}
        bucket.update(_run(sub, members[combo], env))
        buckets.append(bucket)
    result: dict[str, t.Any] = {"buckets": buckets}
    if buckets:
        result = {"after_key": buckets[-1]["key"], **result}
    return result


def _histogram(params: dict[str, t.Any], docs: list[Pair], env: _Env, sub: dict[str, t.Any]) -> dict[str, t.Any]:
    """Numeric ``histogram``: keys ``floor((value - offset) / interval) * interval + offset``, as doubles."""
    field = params["field"]
    ftype = _check_field(env, field)
    if ftype in ("keyword", "flattened", "wildcard", "ip", "version", "constant_keyword"):
        raise shard_error(f"Field [{field}] of type [{ftype}] is not supported for aggregation [histogram]")
    try:
        interval = float(params.get("interval", 0))
        offset = float(params.get("offset", 0))
    except (TypeError, ValueError):
        raise parsing_error("[histogram] failed to parse field [interval]") from None
    if interval <= 0:
        raise bad_request("[interval] must be >0 for histogram aggregation")
    missing = params.get("missing")
    members: dict[float, list[Pair]] = {}
    for pair in docs:
        values = _vals(pair[1], field) or ([missing] if missing is not None else [])
        doc_keys = {float((float(v) - offset) // interval * interval + offset) for v in values}
        for key in doc_keys:
            members.setdefault(key, []).append(pair)
    min_count = int(params.get("min_doc_count", 0))
    keys = sorted(members)
    bounds = params.get("extended_bounds") or {}
    if min_count == 0 and (keys or bounds):
        lo = min([*keys, *([float(bounds["min"])] if bounds.get("min") is not None else [])])
        hi = max([*keys, *([float(bounds["max"])] if bounds.get("max") is not None else [])])
        start = (lo - offset) // interval * interval + offset
        steps = int((hi - start) // interval) + 1
        if steps > aggs_spec.MAX_BUCKETS:
            raise aggs_spec.too_many_buckets(steps)
        keys = [start + i * interval for i in range(steps)]
    hard = params.get("hard_bounds") or {}
    low, high = hard.get("min"), hard.get("max")
    if params.get("format"):
        raise not_implemented("[format] on the [histogram] aggregation")
    buckets = []
    for key in keys:
        chosen = members.get(key, [])
        if (
            len(chosen) < min_count
            or (low is not None and key < float(low))
            or (high is not None and key > float(high))
        ):
            continue
        bucket: dict[str, t.Any] = {"key": key, "doc_count": len(chosen)}
        bucket.update(_run(sub, chosen, env))
        buckets.append(bucket)
    _order_buckets(buckets, params.get("order"), "histogram")
    return {"buckets": buckets}


def _range(params: dict[str, t.Any], docs: list[Pair], env: _Env, sub: dict[str, t.Any]) -> dict[str, t.Any]:
    """``range``: numbers, or dates (bounds parsed with the field's format, date math included)."""
    field = params["field"]
    ftype = _check_field(env, field)
    date = ftype in ("date", "date_nanos")
    fmt = env.field_format(field)
    missing = params.get("missing")

    def bound(value: t.Any) -> float | None:
        if value is None:
            return None
        if date:
            return float(datemath.resolve(value, fmt, now_ms=env.now_ms, nanos=ftype == "date_nanos"))
        return float(value)

    def text(value: float) -> str:
        ms = int(value) // 1_000_000 if ftype == "date_nanos" else int(value)
        return datemath.format_date(ms, fmt)

    buckets = []
    for spec in params.get("ranges") or []:
        unknown = set(spec) - {"from", "to", "key"}
        if unknown:
            raise aggs_spec.unknown_field("range", sorted(unknown)[0])
        lo, hi = bound(spec.get("from")), bound(spec.get("to"))
        chosen = []
        for pair in docs:
            values = _vals(pair[1], field) or ([missing] if missing is not None else [])
            if any((lo is None or float(v) >= lo) and (hi is None or float(v) < hi) for v in values):
                chosen.append(pair)
        shown_lo = "*" if lo is None else (text(lo) if date else str(lo))
        shown_hi = "*" if hi is None else (text(hi) if date else str(hi))
        bucket: dict[str, t.Any] = {"key": spec.get("key") or f"{shown_lo}-{shown_hi}"}
        if lo is not None:
            bucket["from"] = lo
            if date:
                bucket["from_as_string"] = shown_lo
        if hi is not None:
            bucket["to"] = hi
            if date:
                bucket["to_as_string"] = shown_hi
        bucket["doc_count"] = len(chosen)
        bucket.update(_run(sub, chosen, env))
        buckets.append(bucket)
    return {"buckets": buckets}


BUCKET_HANDLERS: dict[str, Handler] = {
    "date_histogram": _date_histogram,
    "histogram": _histogram,
    "range": _range,
    "composite": _composite,
}
