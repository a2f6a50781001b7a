"""SLS search syntax through the real SDK.

Expectations follow Alibaba's "Search syntax" page (https://www.alibabacloud.com/help/doc-detail/29060.htm;
the 2021 text is intl.en-US/Index and query/Query/Search syntax.md in AlibabaCloudDocs/sls) and the
query limits (intl.en-US/Product Introduction/Limits/Query and analysis.md).
"""

from __future__ import annotations

import pytest
from aliyun.log import IndexConfig, IndexKeyConfig, IndexLineConfig, LogClient, LogException
from aliyun.log.index_config import IndexJsonKeyConfig

from tests.testing.conftest import TOKENS, make_logstore, put, query


@pytest.fixture
def agents(sls_client: LogClient, project: str) -> str:
    make_logstore(sls_client, project, "agents", {"http_user_agent": "text", "region": "text", "file info": "text"})
    put(
        sls_client,
        project,
        "agents",
        [
            {"http_user_agent": "Mozilla Linux Chrome", "region": "cn-shanghai", "file info": "apsara kernel"},
            {"http_user_agent": "Chrome on Linux", "region": "cn*", "file info": "other"},
            {"http_user_agent": "Linux Firefox", "region": "us-west", "file info": "apsara"},
        ],
    )
    return "agents"


def agents_of(client: LogClient, project: str, q: str) -> list[str]:
    return sorted(r["http_user_agent"] for r in query(client, project, "agents", q))


def test_value_of_several_words_matches_all_of_them_in_any_order(
    sls_client: LogClient, project: str, agents: str
) -> None:
    # 'http_user_agent:"Linux Chrome"' = 'http_user_agent:Linux and http_user_agent:Chrome'.
    both = ["Chrome on Linux", "Mozilla Linux Chrome"]
    assert agents_of(sls_client, project, 'http_user_agent:"Linux Chrome"') == both
    assert agents_of(sls_client, project, "http_user_agent:Linux and http_user_agent:Chrome") == both
    assert agents_of(sls_client, project, '"Linux Chrome"') == both  # full text as well


def test_phrase_search_keeps_order_and_adjacency(sls_client: LogClient, project: str, agents: str) -> None:
    assert agents_of(sls_client, project, 'http_user_agent:#"Linux Chrome"') == ["Mozilla Linux Chrome"]
    assert agents_of(sls_client, project, '#"Chrome on"') == ["Chrome on Linux"]
    assert agents_of(sls_client, project, '#"Chrome Linux"') == []


def test_wildcards(sls_client: LogClient, project: str, agents: str) -> None:
    assert agents_of(sls_client, project, "http_user_agent:Chr*") == ["Chrome on Linux", "Mozilla Linux Chrome"]
    assert agents_of(sls_client, project, "http_user_agent:Fire?ox") == ["Linux Firefox"]
    assert agents_of(sls_client, project, "region:cn*") == ["Chrome on Linux", "Mozilla Linux Chrome"]
    # 'region:"cn*"' finds the value cn* itself: quotes make * an ordinary character.
    assert agents_of(sls_client, project, 'region:"cn*"') == ["Chrome on Linux"]
    # "Log entries in which the value of the region field ends with hai: Not supported."
    for leading in ("region:*hai", "?hrome"):
        with pytest.raises(LogException) as exc:
            query(sls_client, project, agents, leading)
        assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("ParameterInvalid", 400)


def test_key_names(sls_client: LogClient, project: str, agents: str) -> None:
    # '"file info":apsara': a key with a space is quoted.
    assert agents_of(sls_client, project, '"file info":apsara') == ["Linux Firefox", "Mozilla Linux Chrome"]
    assert agents_of(sls_client, project, '"and"') == []  # a quoted operator is an ordinary word
    # Operators other than in are not case-sensitive; "Source or SOURCE" shows key names are not either.
    assert agents_of(sls_client, project, "REGION:us-west OR Region:cn*") == [
        "Chrome on Linux", "Linux Firefox", "Mozilla Linux Chrome",
    ]  # fmt: skip
    with pytest.raises(LogException) as exc:
        query(sls_client, project, agents, "missing_key: x")
    assert exc.value.get_error_code() == "ParameterInvalid"
    assert "key (missing_key) is not config as key value config" in exc.value.get_error_message()


def test_reserved_fields(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "meta", {"n": "long"})
    put(sls_client, project, "meta", [{"n": "1"}], topic="nginx_access_log", source="192.0.2.7")
    put(sls_client, project, "meta", [{"n": "2"}], topic="other", source="198.51.100.1")
    numbers = lambda q: [r["n"] for r in query(sls_client, project, "meta", q)]  # noqa: E731
    assert numbers("__topic__:nginx_access_log") == ["1"]
    assert numbers("__source__:192.0.2.*") == ["1"]
    assert numbers("source:198.51.100.1") == ["2"]  # "This field can be abbreviated to source."


def test_tag_search(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "tagged", {"n": "long"})
    put(sls_client, project, "tagged", [{"n": "1"}], logtags=[("__receive_time__", "1609837139")])
    put(sls_client, project, "tagged", [{"n": "2"}], logtags=[("__receive_time__", "1609837140")])
    assert [r["n"] for r in query(sls_client, project, "tagged", "__tag__:__receive_time__:1609837139")] == ["1"]


def test_range_on_a_text_key_is_a_full_text_search(sls_client: LogClient, project: str) -> None:
    # "if the executed search statement is owner_id>100 and the data type of the owner_id field is
    # not double or long, log entries that contain owner_id, > (non-delimiter), and 100 are returned."
    make_logstore(sls_client, project, "owners", {"owner_id": "text", "msg": "text"})
    put(sls_client, project, "owners", [{"owner_id": "7", "msg": "owner_id 100"}, {"owner_id": "500", "msg": "x"}])
    assert [r["owner_id"] for r in query(sls_client, project, "owners", "owner_id>100")] == ["7"]


def test_at_most_30_keywords(sls_client: LogClient, project: str, agents: str) -> None:
    thirty = " or ".join(["region:us-west"] * 30)
    assert len(query(sls_client, project, agents, thirty)) == 1
    with pytest.raises(LogException) as exc:
        query(sls_client, project, agents, thirty + " or region:x")
    assert exc.value.get_error_code() == "ParameterInvalid"


def test_json_sub_keys(sls_client: LogClient, project: str) -> None:
    # "Query and analyze JSON logs": members of a json key are searched as key.member, and the
    # members declared in json_keys with analytics on are SQL columns named "key.member".
    json_conf = IndexJsonKeyConfig(index_all=True)
    json_conf.add_key("user.name", "text", doc_value=True)
    json_conf.add_key("tokens", "long", doc_value=True)
    keys = {"payload": IndexKeyConfig(token_list=TOKENS, index_type="json", doc_value=True, json_key_config=json_conf)}
    sls_client.create_logstore(project, "jsons", ttl=3650)
    sls_client.create_index(project, "jsons", IndexConfig(line_config=IndexLineConfig(token_list=TOKENS),
                                                          key_config_list=keys))  # fmt: skip
    put(
        sls_client,
        project,
        "jsons",
        [
            {"payload": '{"user": {"name": "ann"}, "tokens": 7, "mood": "calm"}'},
            {"payload": '{"user": {"name": "bob"}, "tokens": 30, "mood": "busy"}'},
            {"payload": "not json"},
        ],
    )
    names = lambda q: sorted(r["payload"][:26] for r in query(sls_client, project, "jsons", q))  # noqa: E731
    assert names("payload.user.name: ann") == ['{"user": {"name": "ann"}, ']
    assert names("payload.tokens > 10") == ['{"user": {"name": "bob"}, ']
    assert names("payload.mood: busy") == ['{"user": {"name": "bob"}, ']  # index_all: any string member
    rows = query(
        sls_client, project, "jsons",
        '* | select "payload.user.name" as name, "payload.tokens" + 1 as t from log order by t',
    )  # fmt: skip
    assert rows == [{"name": "ann", "t": "8"}, {"name": "bob", "t": "31"}, {"name": "null", "t": "null"}]
    with pytest.raises(LogException) as exc:
        query(sls_client, project, "jsons", '* | select "payload.mood"')
    assert "Column 'payload.mood' cannot be resolved" in exc.value.get_error_message()


def test_numeric_keys_take_no_wildcards(sls_client: LogClient, project: str) -> None:
    # "The long and double data types do not support asterisks (*) or question marks (?) in fuzzy
    # searches. You can use a numeric range for a fuzzy search, for example, status in [200 299]."
    make_logstore(sls_client, project, "statuses", {"status": "long"})
    put(sls_client, project, "statuses", [{"status": "200"}, {"status": "404"}])
    assert [r["status"] for r in query(sls_client, project, "statuses", "status in [200 299]")] == ["200"]
    with pytest.raises(LogException) as exc:
        query(sls_client, project, "statuses", "status: 2*")
    assert exc.value.get_error_code() == "ParameterInvalid"
