"""PutLogs encodings and limits, and request signing, through the real SDK (and raw HTTP)."""

from __future__ import annotations

import http.client
import time
import zlib

import pytest
from aliyun.log import LogClient, LogException, LogItem, PutLogsRequest
from aliyun.log.auth import AUTH_VERSION_4
from aliyun.log.log_logs_raw_pb2 import LogGroupRaw

from flask_difylogstore.testing.sls import LocalSLSServer, local_log_client
from flask_difylogstore.testing.sls import ingest as sls_ingest
from tests.testing.conftest import make_logstore, put, query


@pytest.mark.parametrize("use_arrow", [True, False], ids=["arrow-if-installed", "duckdb-lists"])
def test_lz4_and_uncompressed_bodies(
    sls_client: LogClient, project: str, use_arrow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sls_ingest, "USE_ARROW", use_arrow)  # both bulk-append paths
    make_logstore(sls_client, project, "bodies", {"k": "text", "n": "long"})
    put(sls_client, project, "bodies", [{"k": "lz4", "n": "1"}])
    put(sls_client, project, "bodies", [{"k": "plain"}, {"other": "x"}], compress=False)
    rows = query(sls_client, project, "bodies", "* | select k, n from log order by k")
    assert rows == [
        {"k": "lz4", "n": "1"},
        {"k": "plain", "n": "null"},
        {"k": "null", "n": "null"},
    ]  # NULLS LAST


def test_topic_source_tags_and_unicode_survive(sls_client: LogClient, project: str) -> None:
    make_logstore(sls_client, project, "meta", {"q": "text"})
    sls_client.put_logs(
        PutLogsRequest(
            project, "meta", topic="t1", source="10.0.0.9", logtags=[("env", "test")],
            logitems=[LogItem(int(time.time()), [("q", "你好 world")])],
        )
    )  # fmt: skip
    logs = sls_client.get_log(project, "meta", 0, int(time.time()) + 60, query="q: 你好 and q: world").get_logs()
    assert len(logs) == 1
    assert logs[0].get_source() == "10.0.0.9"
    contents = logs[0].get_contents()
    assert contents["q"] == "你好 world"
    assert contents["__topic__"] == "t1"
    assert contents["__tag__:env"] == "test"


def _raw_put(server: LocalSLSServer, project: str, logstore: str, body: bytes, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(
            "POST",
            f"/logstores/{logstore}/shards/lb",
            body=body,
            headers={"Host": f"{project}.127.0.0.1", "Content-Type": "application/x-protobuf", **headers},
        )
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def test_deflate_body_over_raw_http() -> None:
    """The SDK never sends deflate; SLS accepts it, so check it with a hand-made request."""
    with LocalSLSServer(require_auth=False) as server:
        client = server.client()
        client.create_project("rawproj", "")
        make_logstore(client, "rawproj", "raw", {"k": "text"})
        group = LogGroupRaw()
        log = group.Logs.add()
        log.Time = int(time.time())
        content = log.Contents.add()
        content.Key, content.Value = "k", b"deflated"
        content = log.Contents.add()
        content.Key, content.Value = "bad", b"caf\xe9"  # not UTF-8: replaced, not rejected
        data = group.SerializeToString()
        status = _raw_put(
            server, "rawproj", "raw", zlib.compress(data),
            {"x-log-compresstype": "deflate", "x-log-bodyrawsize": str(len(data))},
        )  # fmt: skip
        assert status == 200
        row = query(client, "rawproj", "raw", "k: deflated")[0]
        assert (row["k"], row["bad"]) == ("deflated", "caf\ufffd")
        assert _raw_put(server, "rawproj", "raw", b"garbage", {"x-log-compresstype": "zstd"}) == 400


def test_put_limits(sls_client: LogClient, project: str) -> None:
    sls_client.create_logstore(project, "limits")
    now = int(time.time())
    with pytest.raises(LogException) as exc:
        sls_client.put_logs(PutLogsRequest(project, "limits", logitems=[LogItem(now, [("k", "v")])] * 4097))
    assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("InvalidLogSize", 400)
    big = "y" * (3 * 1024 * 1024)
    with pytest.raises(LogException) as exc:
        sls_client.put_logs(PutLogsRequest(project, "limits", logitems=[LogItem(now, [("k", big)])] * 4))
    assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("PostBodyTooLarge", 400)
    sls_client.put_logs(PutLogsRequest(project, "limits", logitems=[LogItem(now, [("k", "v")])] * 4096))
    with pytest.raises(LogException) as exc:
        sls_client.put_logs(PutLogsRequest(project, "missing", logitems=[LogItem(now, [("k", "v")])]))
    assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("LogStoreNotExist", 404)


def test_v4_signature_with_region(sls_server: LocalSLSServer, project: str) -> None:
    client = sls_server.client(auth_version=AUTH_VERSION_4, region="cn-hangzhou")
    make_logstore(client, project, "signed", {"k": "text"})
    put(client, project, "signed", [{"k": "v4"}])
    assert query(client, project, "signed", "k: v4 | select k") == [{"k": "v4"}]
    assert client.list_logstore(project, offset=0, size=10).get_logstores() == ["signed"]


@pytest.mark.parametrize("auth_version", [None, AUTH_VERSION_4])
def test_wrong_secret_is_rejected(sls_server: LocalSLSServer, project: str, auth_version: str | None) -> None:
    bad = local_log_client(
        sls_server.endpoint,
        sls_server.access_key_id,
        "not-the-secret",
        auth_version=auth_version,
        region="cn-hangzhou",
    )
    with pytest.raises(LogException) as exc:
        bad.get_project(project)
    assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("SignatureNotMatch", 401)
    other = local_log_client(sls_server.endpoint, "someone-else", sls_server.access_key_secret)
    with pytest.raises(LogException) as exc:
        other.get_project(project)
    assert exc.value.get_resp_status() == 401


def test_unsigned_requests(sls_server: LocalSLSServer, project: str) -> None:
    unsigned = local_log_client(sls_server.endpoint, "", "")  # the SDK sends no Authorization header
    with pytest.raises(LogException) as exc:
        unsigned.get_project(project)
    assert (exc.value.get_error_code(), exc.value.get_resp_status()) == ("Unauthorized", 401)
    with LocalSLSServer(require_auth=False) as open_server:
        client = local_log_client(open_server.endpoint, "", "")
        client.create_project("open-project", "")
        assert client.get_project("open-project").get_projectname() == "open-project"


def test_endpoint_forms(sls_server: LocalSLSServer, project: str) -> None:
    for endpoint in (sls_server.endpoint, f"http://{sls_server.endpoint}", f"localhost:{sls_server.port}"):
        client = local_log_client(endpoint, sls_server.access_key_id, sls_server.access_key_secret)
        assert client.get_project(project).get_projectname() == project
