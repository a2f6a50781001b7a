"""Projects, logstores and index configs through the real SDK."""

from __future__ import annotations

import pytest
from aliyun.log import IndexConfig, ListLogstoresRequest, LogClient, LogException

from flask_difylogstore.testing.sls import LocalSLSServer
from tests.testing.conftest import make_index


def _error(exc: pytest.ExceptionInfo[LogException]) -> tuple[str, int]:
    return exc.value.get_error_code(), exc.value.get_resp_status()


def test_project_lifecycle(sls_client: LogClient) -> None:
    sls_client.create_project("demo-project", "for tests")
    info = sls_client.get_project("demo-project")
    assert info.get_projectname() == "demo-project"
    assert info.get_description() == "for tests"
    sls_client.update_project("demo-project", "renamed")
    assert sls_client.get_project("demo-project").get_description() == "renamed"
    names = [p["projectName"] for p in sls_client.list_project().get_projects()]
    assert "demo-project" in names
    with pytest.raises(LogException) as exc:
        sls_client.create_project("demo-project", "again")
    assert _error(exc) == ("ProjectAlreadyExist", 400)
    sls_client.delete_project("demo-project")
    with pytest.raises(LogException) as exc:
        sls_client.get_project("demo-project")
    assert _error(exc) == ("ProjectNotExist", 404)


def test_logstore_lifecycle(sls_client: LogClient, project: str) -> None:
    sls_client.create_logstore(project, "runs", ttl=365, shard_count=4)
    got = sls_client.get_logstore(project, "runs")
    assert (got.get_ttl(), got.get_shard_count()) == (365, 4)
    sls_client.update_logstore(project, "runs", ttl=90)
    assert sls_client.get_logstore(project, "runs").get_ttl() == 90
    sls_client.create_logstore(project, "nodes")
    assert sls_client.list_logstore(project).get_logstores() == ["nodes", "runs"]
    assert sls_client.list_logstore(project, logstore_name_pattern="nod").get_logstores() == ["nodes"]
    assert sls_client.list_logstores(ListLogstoresRequest(project)).get_logstores() == ["nodes", "runs"]
    assert len(sls_client.list_shards(project, "runs").get_shards_info()) == 4
    sls_client.delete_logstore(project, "runs")
    with pytest.raises(LogException) as exc:
        sls_client.get_logstore(project, "runs")
    assert _error(exc) == ("LogStoreNotExist", 404)


def test_logstore_errors(sls_client: LogClient, project: str) -> None:
    with pytest.raises(LogException) as exc:
        sls_client.get_logstore("no-such-project", "runs")
    assert _error(exc) == ("ProjectNotExist", 404)
    sls_client.create_logstore(project, "runs")
    with pytest.raises(LogException) as exc:
        sls_client.create_logstore(project, "runs")
    assert _error(exc) == ("LogStoreAlreadyExist", 400)
    with pytest.raises(LogException) as exc:
        sls_client.create_logstore(project, "Bad Name")
    assert _error(exc)[1] == 400


def test_index_config_round_trip(sls_client: LogClient, project: str) -> None:
    sls_client.create_logstore(project, "runs")
    with pytest.raises(LogException) as exc:
        sls_client.get_index_config(project, "runs")
    assert _error(exc) == ("IndexConfigNotExist", 404)
    sent = make_index({"id": "text", "log_version": "long", "elapsed": "double", "inputs": "json"}, max_text_len=4096)
    sls_client.create_index(project, "runs", sent)
    got: IndexConfig = sls_client.get_index_config(project, "runs").get_index_config()
    assert got.docvalue_max_text_len == 4096
    assert got.scan_index is True
    assert {k: v.index_type for k, v in got.key_config_list.items()} == {
        "id": "text", "log_version": "long", "elapsed": "double", "inputs": "json",
    }  # fmt: skip
    assert got.key_config_list["id"].token_list == sent.key_config_list["id"].token_list
    assert got.key_config_list["id"].doc_value is True
    assert got.line_config is not None and got.line_config.token_list == sent.line_config.token_list
    with pytest.raises(LogException) as exc:
        sls_client.create_index(project, "runs", sent)
    assert _error(exc)[1] == 400

    sent.key_config_list.pop("elapsed")
    sls_client.update_index(project, "runs", sent)
    got = sls_client.get_index_config(project, "runs").get_index_config()
    assert "elapsed" not in got.key_config_list
    sls_client.delete_index(project, "runs")
    with pytest.raises(LogException) as exc:
        sls_client.delete_index(project, "runs")
    assert _error(exc) == ("IndexConfigNotExist", 404)


def test_unknown_route_is_a_client_error(sls_server: LocalSLSServer) -> None:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"http://{sls_server.endpoint}/nothing/here")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 401  # unsigned requests are rejected before routing
