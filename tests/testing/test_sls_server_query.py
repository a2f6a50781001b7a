"""GetLogs: search syntax, the SQL dialect and SLS's result semantics, through the real SDK."""

from __future__ import annotations

import time

import pytest
from aliyun.log import GetHistogramsRequest, GetLogsRequest, LogClient, LogException

from tests.testing.conftest import make_index, make_logstore, put, query

KEYS = {"id": "text", "status": "text", "log_version": "long", "elapsed": "double", "payload": "json"}


@pytest.fixture
def runs(sls_client: LogClient, project: str) -> str:
    """Three runs with several versions each, like the workflow logs the project writes."""
    make_logstore(sls_client, project, "runs", KEYS)
    rows = []
    for run in range(3):
        for version in range(3):
            rows.append(
                {
                    "id": f"run-{run}",
                    "status": "succeeded" if version == 2 else "running",
                    "log_version": str(version + 8),  # 8, 9, 10: numeric order differs from text order
                    "elapsed": str(run + version / 10),
                    "payload": f'{{"tokens": {run * 10 + version}, "user": {{"name": "u{run}"}}}}',
                    "unindexed": "secret",
                }
            )
    put(sls_client, project, "runs", rows)
    return "runs"


def test_search_key_value_and_boolean_operators(sls_client: LogClient, project: str, runs: str) -> None:
    assert len(query(sls_client, project, runs, "status: running")) == 6
    assert len(query(sls_client, project, runs, "status: RUNNING and id: run-1")) == 2
    assert len(query(sls_client, project, runs, "id: run-1 or id: run-2")) == 6
    assert len(query(sls_client, project, runs, "not status: running")) == 3
    assert len(query(sls_client, project, runs, "(id: run-0 or id: run-1) and not status: succeeded")) == 4
    assert len(query(sls_client, project, runs, "id: run-0 status: running")) == 2  # implicit and
    assert len(query(sls_client, project, runs, "id: run-0 not status: running")) == 1  # binary not
    # Search syntax, operator precedence: and binds tighter than not, so this is
    # "not (status: running and id: run-1)": every log but the two running versions of run-1.
    assert len(query(sls_client, project, runs, "not status: running and id: run-1")) == 7
    assert len(query(sls_client, project, runs, "id: run-1 and not status: running or id: run-2")) == 4
    assert len(query(sls_client, project, runs, "*")) == 9
    assert len(query(sls_client, project, runs, "id: run*")) == 9


def test_search_ranges_on_numeric_keys(sls_client: LogClient, project: str, runs: str) -> None:
    assert len(query(sls_client, project, runs, "log_version > 9")) == 3
    assert len(query(sls_client, project, runs, "log_version >= 9")) == 6
    assert len(query(sls_client, project, runs, "log_version in [8 9]")) == 6
    assert len(query(sls_client, project, runs, "log_version in (8 10]")) == 6
    assert len(query(sls_client, project, runs, "elapsed < 1.05")) == 4
    assert len(query(sls_client, project, runs, "log_version: 10")) == 3


def test_search_fulltext_and_unindexed_keys(sls_client: LogClient, project: str, runs: str) -> None:
    assert len(query(sls_client, project, runs, "succeeded")) == 3
    assert len(query(sls_client, project, runs, "u2")) == 3  # a token inside the JSON payload
    # A key without a field index is refused (Alibaba's FAQ "How do I resolve common errors
    # returned in log data queries?": "key (category) is not config as key value config ...").
    for unindexed in ("unindexed: secret", "nosuchkey: x"):
        with pytest.raises(LogException) as exc:
            query(sls_client, project, runs, unindexed)
        assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("ParameterInvalid", 400)
        assert "is not config as key value config" in exc.value.get_error_message()
    raw = query(sls_client, project, runs, "id: run-0 and log_version: 8")
    assert raw[0]["unindexed"] == "secret"  # raw results carry every key


def test_search_quoted_values_with_escapes(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "quotes", {"msg": "text"})
    put(sls_client, project, "quotes", [{"msg": 'say "hi" to C:\\temp'}, {"msg": "plain words here"}])
    assert len(query(sls_client, project, "quotes", r'msg: "say \"hi\""')) == 1
    assert len(query(sls_client, project, "quotes", r'msg: "C:\\temp"')) == 1
    assert len(query(sls_client, project, "quotes", 'msg: "words here"')) == 1
    # Search syntax: 'http_user_agent:"Linux Chrome"' finds values holding both words, in any order.
    assert len(query(sls_client, project, "quotes", 'msg: "here words"')) == 1
    assert len(query(sls_client, project, "quotes", 'msg: "and"')) == 0


def test_raw_search_paging_order_topic_and_window(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "events", {"n": "long"})
    base = int(time.time()) - 100
    for i in range(5):
        put(sls_client, project, "events", [{"n": str(i)}], at=base + i, topic="t1" if i % 2 else "t2")
    newest = query(sls_client, project, "events", "*", reverse=True, line=2)
    assert [r["n"] for r in newest] == ["4", "3"]
    oldest = query(sls_client, project, "events", "*", line=2, offset=1)
    assert [r["n"] for r in oldest] == ["1", "2"]
    assert [r["n"] for r in query(sls_client, project, "events", "*", topic="t1")] == ["1", "3"]
    assert [r["n"] for r in query(sls_client, project, "events", "__topic__: t2 and n > 1")] == ["2", "4"]
    window = query(sls_client, project, "events", "*", start=base + 1, end=base + 3)
    assert [r["n"] for r in window] == ["1", "2"]  # [from, to)
    assert query(sls_client, project, "events", "*", start=base + 1, end=base + 3)[0]["__topic__"] == "t1"


def test_sql_latest_version_with_row_number_and_max_by(sls_client: LogClient, project: str, runs: str) -> None:
    latest = query(
        sls_client, project, runs,
        "* | SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY id ORDER BY log_version DESC) AS rn "
        'FROM "runs") t WHERE rn = 1 ORDER BY id',
    )  # fmt: skip
    assert [(r["id"], r["log_version"], r["status"]) for r in latest] == [
        ("run-0", "10", "succeeded"), ("run-1", "10", "succeeded"), ("run-2", "10", "succeeded"),
    ]  # fmt: skip
    assert "unindexed" not in latest[0]
    by_max = query(
        sls_client, project, runs,
        "* | select id, max_by(status, log_version) as status, max(log_version) as v"
        " from log group by id order by id",
    )  # fmt: skip
    assert by_max == [{"id": f"run-{i}", "status": "succeeded", "v": "10"} for i in range(3)]


def test_sql_dialect_functions(sls_client: LogClient, project: str, runs: str) -> None:
    row = query(
        sls_client, project, runs,
        "id: run-1 and log_version: 9 | select count(distinct id) as ids, cast(elapsed * 10 as bigint) as e,"
        " try_cast('x' as bigint) as bad, json_extract_scalar(payload, '$.user.name') as name,"
        " json_extract(payload, '$.tokens') as tokens, coalesce(nullif(status, 'running'), 'n/a') as st,"
        " round(avg(elapsed), 2) as avg_e, sum(log_version) as total, 7 / 2 as intdiv"
        " group by elapsed, payload, status",
    )  # fmt: skip
    assert row == [
        {"ids": "1", "e": "11", "bad": "null", "name": "u1", "tokens": "11", "st": "n/a", "avg_e": "1.1",
         "total": "9", "intdiv": "3"},
    ]  # fmt: skip


def test_sql_time_functions_and_buckets(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "daily", {"id": "text", "created_at": "text"})
    day = 1_767_225_600  # 2026-01-01T00:00:00Z
    put(
        sls_client,
        project,
        "daily",
        [{"id": "a", "created_at": "2026-01-01T20:00:00+00:00"}],
        at=day + 20 * 3600,
    )
    put(sls_client, project, "daily", [{"id": "b", "created_at": "2026-01-01T01:00:00+00:00"}], at=day + 3600)
    put(
        sls_client,
        project,
        "daily",
        [{"id": "c", "created_at": "2026-01-02T01:00:00+00:00"}],
        at=day + 25 * 3600,
    )
    # SLS SQL shows times in Asia/Shanghai (https://www.alibabacloud.com/help/doc-detail/63451.htm):
    # 20:00Z on Jan 1 is already Jan 2 there.
    local = query(
        sls_client, project, "daily",
        "* | select date_format(from_unixtime(__time__), '%Y-%m-%d') as d, count(distinct id) as runs"
        " group by d order by d",
    )  # fmt: skip
    assert local == [{"d": "2026-01-01", "runs": "1"}, {"d": "2026-01-02", "runs": "2"}]
    shanghai = query(
        sls_client, project, "daily",
        "* | select date_format(from_unixtime(__time__, 'Asia/Shanghai'), '%Y-%m-%d %H:%i') as d"
        " order by d",
    )  # fmt: skip
    assert [r["d"] for r in shanghai] == ["2026-01-01 09:00", "2026-01-02 04:00", "2026-01-02 09:00"]
    epochs = query(
        sls_client, project, "daily",
        "* | select id, to_unixtime(from_iso8601_timestamp(created_at)) as ts,"
        " date_trunc('day', from_unixtime(__time__)) as day from log where id = 'c'",
    )  # fmt: skip
    assert epochs == [{"id": "c", "ts": str(float(day + 25 * 3600)), "day": "2026-01-02 00:00:00.000"}]


def test_sql_limits_default_offset_and_all(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "many", {"n": "long"})
    put(sls_client, project, "many", [{"n": str(i)} for i in range(250)])
    assert len(query(sls_client, project, "many", "* | select n")) == 100
    assert len(query(sls_client, project, "many", "* | select n limit all")) == 250
    page = query(sls_client, project, "many", "* | select n from log order by n limit 10, 5")
    assert [r["n"] for r in page] == ["10", "11", "12", "13", "14"]
    page = query(sls_client, project, "many", "* | select n from log order by n limit 3 offset 247")
    assert [r["n"] for r in page] == ["247", "248", "249"]
    inner = query(
        sls_client,
        project,
        "many",
        "* | select count(1) as c from (select n from log where n in (1, 2, 300))",
    )
    assert inner == [{"c": "2"}]


def test_sql_truncates_text_at_max_text_len(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "bigdefault", {"body": "text"})
    make_logstore(sls_client, project, "bigcustom", {"body": "text"}, max_text_len=100)
    long_value = "x" * 5000
    for name in ("bigdefault", "bigcustom"):
        put(sls_client, project, name, [{"body": long_value}])
    assert len(query(sls_client, project, "bigdefault", "* | select body")[0]["body"]) == 2048
    assert len(query(sls_client, project, "bigcustom", "* | select body")[0]["body"]) == 100
    assert query(sls_client, project, "bigcustom", "*")[0]["body"] == long_value


def test_sql_types_nulls_and_strings(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "typed", {"n": "long", "x": "double", "s": "text", "missing": "text"})
    put(sls_client, project, "typed", [{"n": "9", "x": "0.5", "s": "b"}, {"n": "10", "x": "1.5", "s": "a"}])
    rows = query(sls_client, project, "typed", "* | select n, x, s, missing, n > 9 as big from log order by n")
    assert rows == [
        {"n": "9", "x": "0.5", "s": "b", "missing": "null", "big": "false"},
        {"n": "10", "x": "1.5", "s": "a", "missing": "null", "big": "true"},
    ]


def test_sql_on_unindexed_key_fails_like_sls(sls_client: LogClient, project: str, runs: str) -> None:
    with pytest.raises(LogException) as exc:
        query(sls_client, project, runs, "* | select unindexed from log")
    assert exc.value.get_error_code() == "ParameterInvalid"
    assert exc.value.get_resp_status() == 400
    assert "unindexed" in exc.value.get_error_message()
    for bad in (
        "* | select from where",
        "* | select 1; select 2",
        "* | select * from read_csv('/etc/hosts')",
    ):
        with pytest.raises(LogException) as exc:
            query(sls_client, project, runs, bad)
        assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("ParameterInvalid", 400)


def test_logs_before_the_index_are_not_searchable(sls_client: LogClient, project: str) -> None:
    sls_client.create_logstore(project, "late")
    put(sls_client, project, "late", [{"id": "old"}])
    with pytest.raises(LogException) as exc:
        query(sls_client, project, "late", "*")
    assert exc.value.get_error_code() == "IndexConfigNotExist"
    sls_client.create_index(project, "late", make_index({"id": "text"}))
    put(sls_client, project, "late", [{"id": "new"}])
    assert [r["id"] for r in query(sls_client, project, "late", "*")] == ["new"]
    assert query(sls_client, project, "late", "* | select count(*) as c") == [{"c": "1"}]


def test_missing_logstore_and_project(sls_client: LogClient, project: str) -> None:
    with pytest.raises(LogException) as exc:
        query(sls_client, project, "nowhere", "*")
    assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("LogStoreNotExist", 404)
    with pytest.raises(LogException) as exc:
        query(sls_client, "no-such-project", "nowhere", "*")
    assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("ProjectNotExist", 404)


def test_response_meta(sls_client: LogClient, project: str, runs: str) -> None:
    now = int(time.time())
    resp = sls_client.get_logs(
        GetLogsRequest(project, runs, 0, now + 60, query="status: running | select id, count(*) as c group by id")
    )
    meta = resp.get_meta()
    assert meta.get_progress() == "Complete"
    assert resp.get_count() == 3
    assert meta.get_has_sql() is True
    assert meta.get_processed_rows() == 6
    assert meta.get_keys() == ["id", "c"]
    assert meta.get_where_query() == "status: running"
    plain = sls_client.get_logs(GetLogsRequest(project, runs, 0, now + 60, query="status: running"))
    assert plain.get_meta().get_has_sql() is False
    assert plain.get_count() == 6


def test_get_logs_v1_form(sls_client: LogClient, project: str, runs: str) -> None:
    sls_client._get_logs_v2_enabled = False
    rows = query(sls_client, project, runs, "status: succeeded | select id order by id")
    assert [r["id"] for r in rows] == ["run-0", "run-1", "run-2"]
    assert len(query(sls_client, project, runs, "status: running")) == 6


def test_histograms(sls_client: LogClient, project: str, runs: str) -> None:
    now = int(time.time())
    resp = sls_client.get_histograms(GetHistogramsRequest(project, runs, now - 600, now + 60, query="status: running"))
    assert resp.is_completed()
    assert resp.get_total_count() == 6
    assert sum(h.get_count() for h in resp.get_histograms()) == 6


def test_index_update_covers_only_later_logs(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "evolving", {"id": "text"})
    put(sls_client, project, "evolving", [{"id": "a", "extra": "early"}])
    sls_client.update_index(project, "evolving", make_index({"id": "text", "extra": "text"}))
    put(sls_client, project, "evolving", [{"id": "b", "extra": "late"}])
    rows = query(sls_client, project, "evolving", "* | select id, extra from log order by id")
    assert rows == [{"id": "a", "extra": "null"}, {"id": "b", "extra": "late"}]
    assert [r["id"] for r in query(sls_client, project, "evolving", "extra: early or extra: late")] == ["b"]


def test_ttl_hides_expired_logs(sls_client: LogClient, project: str) -> None:
    sls_client.create_logstore(project, "shortlived", ttl=1)
    sls_client.create_index(project, "shortlived", make_index({"id": "text"}))
    now = int(time.time())
    put(sls_client, project, "shortlived", [{"id": "old"}], at=now - 2 * 86400)
    put(sls_client, project, "shortlived", [{"id": "new"}], at=now)
    assert [r["id"] for r in query(sls_client, project, "shortlived", "*")] == ["new"]
