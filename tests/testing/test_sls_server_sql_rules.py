"""SLS's rules around analytic statements and GetLogs, through the real SDK.

Sources: GetLogs API reference (error codes; intl.en-US/Developer Guide/API Reference/Logstore
related APIs/GetLogs.md in AlibabaCloudDocs/sls), "LIMIT clause"
(https://www.alibabacloud.com/help/en/log-service/latest/limit-clause), "Configure indexes"
(Enable Analytics), the common-errors FAQ ("Column 'x' cannot be resolved"), and the
``aliyun-log-python-sdk`` response classes (``GetLogsResponse._from_v1_resp``, ``ListTopicsResponse``).
"""

from __future__ import annotations

import time

import pytest
from aliyun.log import (
    GetHistogramsRequest,
    GetLogsRequest,
    IndexConfig,
    IndexKeyConfig,
    IndexLineConfig,
    ListTopicsRequest,
    LogClient,
    LogException,
)

from tests.testing.conftest import TOKENS, make_logstore, put, query


def _refused(client: LogClient, project: str, logstore: str, q: str, **kw: object) -> LogException:
    with pytest.raises(LogException) as exc:
        query(client, project, logstore, q, **kw)  # type: ignore[arg-type]
    assert exc.value.get_resp_status() == 400
    return exc.value


@pytest.fixture
def numbers(sls_client: LogClient, project: str) -> str:
    make_logstore(sls_client, project, "numbers", {"n": "long", "tag": "text"})
    put(sls_client, project, "numbers", [{"n": str(i), "tag": "even" if i % 2 == 0 else "odd"} for i in range(30)])
    return "numbers"


def test_unnamed_columns_are_col_and_position(sls_client: LogClient, project: str, numbers: str) -> None:
    resp = sls_client.get_logs(
        GetLogsRequest(project, numbers, 0, int(time.time()) + 60,
                       query="* | select tag, count(1), max(n) + 1 as top, min(n) group by tag order by tag")
    )  # fmt: skip
    assert resp.get_meta().get_keys() == ["tag", "_col1", "top", "_col3"]
    assert [dict(r.get_contents()) for r in resp.get_logs()] == [
        {"tag": "even", "_col1": "15", "top": "29", "_col3": "0"},
        {"tag": "odd", "_col1": "15", "top": "30", "_col3": "1"},
    ]


def test_key_without_analytics_is_not_a_column(sls_client: LogClient, project: str) -> None:
    # Configure indexes: "After you turn on the Enable Analytics switch, you can use the analysis feature."
    keys = {
        "seen": IndexKeyConfig(token_list=TOKENS, index_type="text", doc_value=True),
        "hidden": IndexKeyConfig(token_list=TOKENS, index_type="text", doc_value=False),
    }
    sls_client.create_logstore(project, "partial", ttl=3650)
    sls_client.create_index(project, "partial", IndexConfig(line_config=IndexLineConfig(token_list=TOKENS),
                                                            key_config_list=keys))  # fmt: skip
    put(sls_client, project, "partial", [{"seen": "a", "hidden": "b"}])
    assert query(sls_client, project, "partial", "hidden: b | select seen") == [{"seen": "a"}]  # still searchable
    error = _refused(sls_client, project, "partial", "* | select hidden")
    assert error.get_error_code() == "ParameterInvalid"
    assert "Column 'hidden' cannot be resolved" in error.get_error_message()


def test_limit_caps(sls_client: LogClient, project: str, numbers: str) -> None:
    assert len(query(sls_client, project, numbers, "* | select n limit 0, 10000")) == 30
    assert len(query(sls_client, project, numbers, "* | select n limit 990000, 10000")) == 0
    assert len(query(sls_client, project, numbers, "* | select n limit 1000000")) == 30
    for q in (
        "* | select n limit 0, 10001",  # N <= 10,000
        "* | select n limit 990001, 10000",  # S + N <= 1,000,000
        "* | select n limit 1000001",
        "* | select count(1) from (select distinct n from log limit 0, 10)",  # not in a subquery
    ):
        assert _refused(sls_client, project, numbers, q).get_error_code() == "ParameterInvalid"


def test_only_the_logstore_can_be_queried(sls_client: LogClient, project: str, numbers: str) -> None:
    assert query(sls_client, project, numbers, "* | select count(1) as c from numbers") == [{"c": "30"}]
    assert query(sls_client, project, numbers, "* | select count(1) as c from log") == [{"c": "30"}]
    for q in ("* | select * from duckdb_tables()", "* | select * from other_store", "* | select * from main.log"):
        assert _refused(sls_client, project, numbers, q).get_error_code() == "ParameterInvalid"


def test_get_logs_parameter_errors(sls_client: LogClient, project: str, numbers: str) -> None:
    now = int(time.time())
    assert _refused(sls_client, project, numbers, "*", start=now, end=now).get_error_code() == "InvalidTimeRange"
    error = _refused(sls_client, project, numbers, "* | select n", offset=10)
    assert "please use limit x,y syntax for pagination" in error.get_error_message()
    assert len(query(sls_client, project, numbers, "*", line=500)) == 30  # more than 100 lines: 100 at most


def test_index_missing_is_400_for_get_logs(sls_client: LogClient, project: str) -> None:
    sls_client.create_logstore(project, "bare", ttl=3650)
    error = _refused(sls_client, project, "bare", "*")
    assert error.get_error_code() == "IndexConfigNotExist"


def test_max_text_len_counts_bytes(sls_client: LogClient, project: str) -> None:
    # SLS cuts analysed text at max_text_len bytes (UTF-8): 1,000 Chinese characters are 3,000 bytes.
    make_logstore(sls_client, project, "chinese", {"payload": "text"})
    make_logstore(sls_client, project, "chinese_small", {"payload": "text"}, max_text_len=100)
    payload = '{"answer": "' + "你好" * 500 + '"}'
    for name in ("chinese", "chinese_small"):
        put(sls_client, project, name, [{"payload": payload}])
    cut = query(sls_client, project, "chinese", "* | select payload")[0]["payload"]
    assert len(cut.encode()) <= 2048 and len(cut.encode()) > 2045 and payload.startswith(cut)
    small = query(sls_client, project, "chinese_small", "* | select payload")[0]["payload"]
    assert len(small.encode()) <= 100 and payload.startswith(small)
    assert query(sls_client, project, "chinese", "*")[0]["payload"] == payload  # raw logs are whole


def test_v1_get_logs_headers(sls_client: LogClient, project: str, numbers: str) -> None:
    sls_client._get_logs_v2_enabled = False
    end = int(time.time()) + 60
    plain = sls_client.get_logs(GetLogsRequest(project, numbers, 0, end, query="tag: odd", line=5))
    assert plain.get_meta().get_has_sql() is False
    assert plain.get_count() == 5 and plain.get_meta().get_processed_rows() == 15
    sql = sls_client.get_logs(GetLogsRequest(project, numbers, 0, end, query="tag: odd | select count(1) as c"))
    assert sql.get_meta().get_has_sql() is True
    assert sql.get_meta().get_agg_query() == "select count(1) as c"
    assert [dict(r.get_contents()) for r in sql.get_logs()] == [{"c": "15"}]


def test_list_topics(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "topics", {"n": "long"})
    for topic in ("b", "a", "c", "a"):
        put(sls_client, project, "topics", [{"n": "1"}], topic=topic)
    first = sls_client.list_topics(ListTopicsRequest(project, "topics", line=2))
    assert first.get_topics() == ["a", "b"]
    assert int(first.get_count()) == 2 and first.nextToken == "c"
    rest = sls_client.list_topics(ListTopicsRequest(project, "topics", token=first.nextToken, line=2))
    assert rest.get_topics() == ["c"] and rest.nextToken == ""


def test_common_errors_are_worded_as_sls(sls_client: LogClient, project: str, numbers: str) -> None:
    # Alibaba's FAQ "How do I resolve common errors returned in log data queries?".
    error = _refused(sls_client, project, numbers, "* | select tag, n group by tag")
    assert "Column 'n' not in GROUP BY clause;please add the column in the index attribute" in error.get_error_message()
    error = _refused(sls_client, project, numbers, "select tag, count(*) group by tag")
    assert error.get_error_message() == "sql query must follow search query,please read syntex doc"


def test_indexed_tag_is_a_column(sls_client: LogClient, project: str) -> None:
    # An index key "__tag__:name" reads the log tag of that name (Reserved fields: __tag__).
    make_logstore(sls_client, project, "tags", {"n": "long", "__tag__:__receive_time__": "long"})
    put(sls_client, project, "tags", [{"n": "1"}], logtags=[("__receive_time__", "1609837139")])
    rows = query(sls_client, project, "tags", '* | select n, "__tag__:__receive_time__" + 1 as r')
    assert rows == [{"n": "1", "r": "1609837140"}]


def test_histograms_refuse_an_empty_time_range(sls_client: LogClient, project: str, numbers: str) -> None:
    now = int(time.time())
    with pytest.raises(LogException) as exc:
        sls_client.get_histograms(GetHistogramsRequest(project, numbers, now, now, query="*"))
    assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("InvalidTimeRange", 400)
