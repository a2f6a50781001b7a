"""SLS SQL date and time functions through the real SDK.

Every expectation follows Alibaba's "Date and time functions" page
(https://www.alibabacloud.com/help/doc-detail/63451.htm; the 2021 text is
intl.en-US/Index and query/Analysis grammar/Date and time functions.md in AlibabaCloudDocs/sls):
``__time__`` 1592374067 "indicates 2020-06-17 14:07:47" (Asia/Shanghai), ``date_trunc`` accepts
``__time__``, ``to_unixtime('2017-05-17 09:45:00.848 Asia/Shanghai')`` is 1494985500.848.
"""

from __future__ import annotations

import pytest
from aliyun.log import LogClient, LogException

from tests.testing.conftest import make_logstore, put, query

DOC_TIME = 1_592_374_067  # the page's example: 2020-06-17 14:07:47 in SLS


@pytest.fixture
def events(sls_client: LogClient, project: str) -> str:
    make_logstore(sls_client, project, "events", {"title": "text", "outputs": "text", "n": "long"})
    put(sls_client, project, "events", [{"title": "foo bar", "outputs": '{"intent": "greet"}', "n": "1"}], at=DOC_TIME)
    put(sls_client, project, "events", [{"title": "foo", "outputs": '{"intent": "greet"}', "n": "2"}], at=DOC_TIME + 5)
    put(sls_client, project, "events", [{"title": "foo", "outputs": '{"intent": "bye"}', "n": "3"}], at=DOC_TIME + 60)
    put(sls_client, project, "events", [{"title": "other", "outputs": '{"intent": "bye"}', "n": "4"}], at=DOC_TIME + 61)
    return "events"


def test_intent_per_minute_analytics_query(sls_client: LogClient, project: str, events: str) -> None:
    rows = query(
        sls_client, project, events,
        "* and title: foo | select json_extract(outputs, '$.intent') as \"intent\","
        " date_trunc('minute', __time__) t, count(1) as pv"
        " group by json_extract(outputs, '$.intent'), t order by t limit all",
    )  # fmt: skip
    assert rows == [
        {"intent": '"greet"', "t": "2020-06-17 14:07:00.000", "pv": "2"},
        {"intent": '"bye"', "t": "2020-06-17 14:08:00.000", "pv": "1"},
    ]


def test_date_format_and_trunc_accept_unix_seconds(sls_client: LogClient, project: str, events: str) -> None:
    rows = query(
        sls_client, project, events,
        "n: 1 | select date_format(__time__, '%Y-%m-%d %H:%i:%S') as a,"
        " date_format(date_trunc('hour', __time__), '%m-%d %H:%i') as b,"
        " from_unixtime(__time__) as c, hour(__time__) as h, date_trunc('day', 1610350836) as d",
    )  # fmt: skip
    assert rows == [
        {"a": "2020-06-17 14:07:47", "b": "06-17 14:00", "c": "2020-06-17 14:07:47.000", "h": "14",
         "d": "2021-01-11 00:00:00.000"},
    ]  # fmt: skip


def test_documented_examples(sls_client: LogClient, project: str, events: str) -> None:
    rows = query(
        sls_client, project, events,
        "n: 1 | select to_unixtime('2017-05-17 09:45:00.848 Asia/Shanghai') as u,"
        " date_trunc('week', '2021-01-12 03:04:05.000') as w,"
        " date_trunc('quarter', '2021-01-11 03:04:05.000') as q,"
        " date_add('day', -7, '2018-08-09 00:00:00') as added,"
        " date_diff('day', '2018-08-02 00:00:00', '2018-08-09 00:00:00') as diff,"
        " date_format(date_parse('2017-05-17 09:45:00', '%Y-%m-%d %H:%i:%S'), '%Y-%m-%d') as parsed,"
        " current_timezone() as tz",
    )  # fmt: skip
    assert rows == [
        {"u": "1494985500.848", "w": "2021-01-11 00:00:00.000", "q": "2021-01-01 00:00:00.000",
         "added": "2018-08-02 00:00:00.000", "diff": "7", "parsed": "2017-05-17", "tz": "Asia/Shanghai"},
    ]  # fmt: skip


def test_from_unixtime_with_a_zone_uses_that_zone(sls_client: LogClient, project: str, events: str) -> None:
    rows = query(
        sls_client, project, events,
        "n: 1 | select date_format(from_unixtime(__time__, 'UTC'), '%Y-%m-%d %H:%i') as utc,"
        " date_format(from_unixtime(__time__, 'Asia/Shanghai'), '%Y-%m-%d %H:%i') as cst",
    )  # fmt: skip
    assert rows == [{"utc": "2020-06-17 06:07", "cst": "2020-06-17 14:07"}]


def test_timestamps_have_millisecond_precision(sls_client: LogClient, project: str, events: str) -> None:
    # SLS timestamps render as "YYYY-MM-DD HH:MM:SS.Ms": sub-millisecond digits do not exist.
    rows = query(
        sls_client, project, events,
        "n: 1 | select from_iso8601_timestamp('2026-01-01T00:00:00.123456Z')"
        " = from_iso8601_timestamp('2026-01-01T00:00:00.123999Z') as same_ms,"
        " to_unixtime(from_iso8601_timestamp('2026-01-01T00:00:00.123456Z')) as u,"
        " from_iso8601_timestamp('2026-01-01T00:00:00.123456Z') as shown",
    )  # fmt: skip
    assert rows == [{"same_ms": "true", "u": "1767225600.123", "shown": "2026-01-01 08:00:00.123 Asia/Shanghai"}]


def test_text_keys_compare_as_text(sls_client: LogClient, project: str) -> None:
    # A text key is a varchar column (Data types of indexes): keyset paging on an ISO-8601 text
    # key compares the full strings, microseconds included.
    make_logstore(sls_client, project, "stamps", {"created_at": "text"})
    stamps = ["2026-01-01T00:00:00.000001", "2026-01-01T00:00:00.000002", "2026-01-01T00:00:00.000010"]
    put(sls_client, project, "stamps", [{"created_at": v} for v in stamps])
    rows = query(
        sls_client, project, "stamps",
        "* | select created_at from log where created_at > '2026-01-01T00:00:00.000001' order by created_at",
    )  # fmt: skip
    assert [r["created_at"] for r in rows] == stamps[1:]


def test_time_series_pads_missing_buckets(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "series", {"n": "long"})
    start = 1_767_225_600  # a multiple of 2 hours
    put(sls_client, project, "series", [{"n": "1"}, {"n": "2"}], at=start + 60)
    put(sls_client, project, "series", [{"n": "5"}], at=start + 4 * 3600 + 60)
    statement = "* | select time_series(__time__, '2h', '%Y-%m-%d %H:%i:%s', '{pad}') as time, count(*) as num" \
        " from log group by time order by time"  # fmt: skip
    zero = query(sls_client, project, "series", statement.format(pad="0"), start=start, end=start + 5 * 3600)
    assert zero == [
        {"time": "2026-01-01 08:00:00", "num": "2"},
        {"time": "2026-01-01 10:00:00", "num": "0"},
        {"time": "2026-01-01 12:00:00", "num": "1"},
    ]
    last = query(sls_client, project, "series", statement.format(pad="last"), start=start, end=start + 5 * 3600)
    assert [r["num"] for r in last] == ["2", "2", "1"]
    null = query(sls_client, project, "series", statement.format(pad="null"), start=start, end=start + 5 * 3600)
    assert [r["num"] for r in null] == ["2", "null", "1"]
    following = query(sls_client, project, "series", statement.format(pad="next"), start=start, end=start + 5 * 3600)
    assert [r["num"] for r in following] == ["2", "1", "1"]
    mean = query(sls_client, project, "series", statement.format(pad="avg"), start=start, end=start + 5 * 3600)
    assert [r["num"] for r in mean] == ["2", "1.5", "1"]
    with pytest.raises(LogException) as exc:  # "The ORDER BY clause does not support the desc sorting method."
        query(sls_client, project, "series", statement.format(pad="0") + " desc")
    assert exc.value.get_error_code() == "ParameterInvalid"


def test_from_unixtime_with_an_offset(sls_client: LogClient, project: str, events: str) -> None:
    # from_unixtime(x, hours, minutes): "hours and minutes are the time zone offset".
    rows = query(
        sls_client, project, events, "n: 1 | select from_unixtime(__time__, -2, 0) as t, from_unixtime(0, 5, 30) as u"
    )
    assert rows == [{"t": "2020-06-17 04:07:47.000", "u": "1970-01-01 05:30:00.000"}]
