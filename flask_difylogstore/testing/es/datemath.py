"""Date parsing, formatting and date math (``now-7d/d``, ``2024-01-01||+1M``) in epoch milliseconds."""

from __future__ import annotations

import calendar
import datetime as dt
import re
import time
import zoneinfo

from flask_difylogstore.testing.es import javatime
from flask_difylogstore.testing.es.errors import EsError

DEFAULT_DATE_FORMAT = "strict_date_optional_time||epoch_millis"
NANOS_FORMAT = "strict_date_optional_time_nanos||epoch_millis"
UTC = dt.UTC

_ISO = re.compile(
    r"^([+-]?\d{4,})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?$"
)
_NAMED = {
    "strict_date": "yyyy-MM-dd",
    "date": "yyyy-MM-dd",
    "year_month_day": "yyyy-MM-dd",
    "strict_year_month_day": "yyyy-MM-dd",
    "year_month": "yyyy-MM",
    "strict_year_month": "yyyy-MM",
    "year": "yyyy",
    "strict_year": "yyyy",
    "strict_date_hour_minute_second": "yyyy-MM-dd'T'HH:mm:ss",
    "date_hour_minute_second": "yyyy-MM-dd'T'HH:mm:ss",
    "strict_date_hour_minute_second_millis": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "date_hour_minute_second_millis": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "strict_date_hour_minute_second_fraction": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "date_hour_minute_second_fraction": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "strict_date_hour_minute": "yyyy-MM-dd'T'HH:mm",
    "date_hour_minute": "yyyy-MM-dd'T'HH:mm",
    "strict_date_hour": "yyyy-MM-dd'T'HH",
    "date_hour": "yyyy-MM-dd'T'HH",
    "strict_date_time_no_millis": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "date_time_no_millis": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "strict_hour_minute_second": "HH:mm:ss",
    "hour_minute_second": "HH:mm:ss",
    "strict_hour_minute": "HH:mm",
    "hour_minute": "HH:mm",
    "basic_date": "yyyyMMdd",
    "basic_date_time": "yyyyMMdd'T'HHmmss.SSSX",
    "basic_date_time_no_millis": "yyyyMMdd'T'HHmmssX",
}
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _bad_date(value: object, fmt: str) -> EsError:
    return EsError(
        400,
        "parse_exception",
        f"failed to parse date field [{value}] with format [{fmt}]",
        caused_by={"type": "date_time_parse_exception", "reason": f"Text '{value}' could not be parsed"},
    )


def _tz_offset(tz: str | None) -> dt.tzinfo:
    if not tz or tz == "Z":
        return UTC
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def _to_ns(parts: dict[str, str | None], zone: dt.tzinfo, round_up: bool = False) -> int:
    """Missing parts default to the start, or (``round_up``, for ``gt``/``lte``) to 23:59:59.999999999."""
    frac = parts.get("frac") or ("999999999" if round_up else "0")
    moment = dt.datetime(
        int(parts.get("year") or 1970),
        int(parts.get("month") or 1),
        int(parts.get("day") or 1),
        int(parts.get("hour") or (23 if round_up else 0)),
        int(parts.get("minute") or (59 if round_up else 0)),
        int(parts.get("second") or (59 if round_up else 0)),
        tzinfo=_tz_offset(parts["tz"]) if parts.get("tz") else zone,
    )
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + int(frac[:9].ljust(9, "0"))


def _exact_ms(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


_ISO_NAMES = {
    "strict_date_optional_time",
    "date_optional_time",
    "strict_date_time",
    "date_time",
    "iso8601",
    "strict_date_optional_time_nanos",
    "date_optional_time_nanos",
}


def _parse_one(value: str, fmt: str, zone: dt.tzinfo, round_up: bool = False) -> int | None:
    """One format; returns epoch nanoseconds or None when the text does not match."""
    fmt = fmt.strip()
    if fmt in ("epoch_millis", "epoch_second"):
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number * (1_000_000 if fmt == "epoch_millis" else 1_000_000_000))
    if fmt in _ISO_NAMES:
        m = _ISO.match(value)
        if not m:
            return None
        keys = ("year", "month", "day", "hour", "minute", "second", "frac", "tz")
        try:
            return _to_ns(dict(zip(keys, m.groups(), strict=True)), zone, round_up)
        except ValueError:
            return None
    try:
        parts = javatime.parse_parts(_NAMED.get(fmt, fmt), value)
    except javatime.PatternError:
        raise EsError(400, "illegal_argument_exception", f"Invalid format: [{fmt}]") from None
    if parts is None:
        return None
    try:
        return _to_ns(parts, zone, round_up)
    except ValueError:
        return None


def parse_date_ns(value: object, fmt: str = DEFAULT_DATE_FORMAT, zone: dt.tzinfo = UTC, round_up: bool = False) -> int:
    """Parse a date value into epoch nanoseconds, trying each ``||``-separated format."""
    if isinstance(value, bool):
        raise _bad_date(value, fmt)
    if isinstance(value, int | float):
        seconds = any(f.strip() == "epoch_second" for f in fmt.split("||")) and not any(
            f.strip() == "epoch_millis" for f in fmt.split("||")
        )
        return int(value) * 1_000_000_000 if seconds else round(value * 1_000_000)
    text = str(value)
    for one in fmt.split("||"):
        parsed = _parse_one(text, one, zone, round_up)
        if parsed is not None:
            return parsed
    raise _bad_date(value, fmt)


def parse_date(value: object, fmt: str = DEFAULT_DATE_FORMAT, zone: dt.tzinfo = UTC, round_up: bool = False) -> int:
    """Parse a date value into epoch milliseconds, trying each ``||``-separated format."""
    if isinstance(value, int) and not isinstance(value, bool) and "epoch_second" not in fmt:
        return value
    return parse_date_ns(value, fmt, zone, round_up) // 1_000_000


def get_zone(name: str | None) -> dt.tzinfo:
    """An IANA zone name or a fixed ``+08:00`` offset."""
    if not name or name in ("UTC", "Z"):
        return UTC
    if name[0] in "+-":
        return _tz_offset(name)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise EsError(400, "illegal_argument_exception", f"Unknown time-zone ID: {name}") from None


def from_ms(ms: int, zone: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(zone)


def format_date(ms: int, fmt: str | None = None, zone: dt.tzinfo = UTC) -> str:
    """Format epoch milliseconds the way ES renders ``key_as_string`` / ``value_as_string``."""
    first = (fmt or DEFAULT_DATE_FORMAT).split("||")[0].strip()
    if first == "epoch_millis":
        return str(ms)
    if first == "epoch_second":
        return str(ms // 1000)
    moment = from_ms(ms, zone)
    if first in _ISO_NAMES:
        off = moment.strftime("%z")
        suffix = "Z" if off in ("+0000", "") else f"{off[:3]}:{off[3:]}"
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}" + suffix
    try:
        return javatime.format_moment(_NAMED.get(first, first), moment)
    except javatime.PatternError as exc:
        raise EsError(400, "illegal_argument_exception", f"Invalid format: [{first}]: {exc}") from None


def validate_format(fmt: str) -> None:
    """A mapping's or request's ``format``: built-in names and Java patterns, ``||``-separated."""
    for one in fmt.split("||"):
        one = one.strip()
        if one in _ISO_NAMES or one in _NAMED or one in ("epoch_millis", "epoch_second"):
            continue
        try:
            javatime.validate(one)
        except javatime.PatternError as exc:
            raise EsError(400, "illegal_argument_exception", f"Invalid format: [{fmt}]: {exc}") from None


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def round_down(moment: dt.datetime, unit: str) -> dt.datetime:
    """Truncate to the start of the calendar unit (``y M w d h H m s``)."""
    if unit == "y":
        return moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "q":
        month = (moment.month - 1) // 3 * 3 + 1
        return moment.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return start - dt.timedelta(days=start.weekday())
    if unit == "d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in ("h", "H"):
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)


def add_unit(moment: dt.datetime, amount: int, unit: str) -> dt.datetime:
    if unit == "y":
        return _add_months(moment, 12 * amount)
    if unit == "q":
        return _add_months(moment, 3 * amount)
    if unit == "M":
        return _add_months(moment, amount)
    seconds = {"w": 604_800, "d": 86_400, "h": 3600, "H": 3600, "m": 60, "s": 1}[unit]
    return moment + dt.timedelta(seconds=seconds * amount)


_MATH = re.compile(r"([+-])(\d*)([yqMwdhHms])|/([yqMwdhHms])")


def resolve(
    expr: object,
    fmt: str | None = None,
    zone: dt.tzinfo = UTC,
    round_up: bool = False,
    now_ms: int | None = None,
    nanos: bool = False,
) -> int:
    """Resolve a date or date-math expression to epoch ms (or ns); ``round_up`` makes ``/d`` the day's end."""
    fmt = fmt or DEFAULT_DATE_FORMAT
    if not isinstance(expr, str) or not (expr.startswith("now") or "||" in expr.replace("||epoch", "")):
        if nanos:
            return parse_date_ns(expr, fmt, zone, round_up)
        return parse_date(expr, fmt, zone, round_up)
    if expr.startswith("now"):
        base_ms, math = (now_ms if now_ms is not None else int(time.time() * 1000)), expr[3:]
    elif "||" in expr and not any(expr.endswith(f) for f in ("epoch_millis", "epoch_second")):
        anchor, _, math = expr.partition("||")
        if math and math[0] not in "+-/":
            return parse_date(expr, fmt, zone)
        base_ms = parse_date(anchor, fmt, zone)
    else:
        return parse_date(expr, fmt, zone, round_up)
    moment = from_ms(base_ms, zone)
    pos = 0
    while pos < len(math):
        m = _MATH.match(math, pos)
        if not m:
            raise EsError(400, "parse_exception", f"failed to parse date math [{expr}]")
        if m.group(4):
            moment = round_down(moment, m.group(4))
            if round_up:
                moment = add_unit(moment, 1, m.group(4)) - dt.timedelta(milliseconds=1)
        else:
            amount = int(m.group(2) or 1) * (-1 if m.group(1) == "-" else 1)
            moment = add_unit(moment, amount, m.group(3))
        pos = m.end()
    ms = _exact_ms(moment.astimezone(UTC))
    return ms * 1_000_000 + (999_999 if round_up else 0) if nanos else ms


def parse_duration_ms(text: str) -> int:
    """``30s``, ``5m``, ``12h``, ``30d`` (ILM ``min_age``, ``fixed_interval``) → milliseconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text.strip())
    if not m:
        raise EsError(400, "illegal_argument_exception", f"failed to parse setting [{text}]")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]
