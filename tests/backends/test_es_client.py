"""The client built from settings: credentials, version matching, retries, and the app end to end."""

from __future__ import annotations

import base64
import json
import threading
import typing as t
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask

from flask_difylogstore import DifyLogStore
from flask_difylogstore.backends.base import RecordQuery, Scope
from flask_difylogstore.backends.elasticsearch import ElasticsearchBackend
from flask_difylogstore.backends.elasticsearch.client import CLIENT_MAJOR, ServerInfo, compatibility_problem
from flask_difylogstore.errors import BackendUnavailableError, ProvisioningError
from flask_difylogstore.extension import get_state
from flask_difylogstore.records import RecordKind
from flask_difylogstore.settings import LogStoreSettings
from flask_difylogstore.testing.es import LocalElasticsearchServer
from tests.backends import es_fixtures
from tests.backends.records import RecordFactory

es_backend = es_fixtures.es_backend
es_prefix = es_fixtures.es_prefix
es_server = es_fixtures.es_server
es_settings = es_fixtures.es_settings
records = es_fixtures.records


class _Recorder(BaseHTTPRequestHandler):
    seen: t.ClassVar[list[dict[str, str]]] = []

    def log_message(self, format: str, *args: t.Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        _Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = json.dumps({"version": {"number": f"{CLIENT_MAJOR}.1.0"}}).encode()
        self.send_response(200)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def recorder() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _authorization(monkeypatch: pytest.MonkeyPatch, url: str, **env: str) -> str | None:
    monkeypatch.setenv("LOGSTORE_BACKEND", "elasticsearch")
    monkeypatch.setenv("ELASTICSEARCH_HOSTS", f'["{url}"]')
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = LogStoreSettings.load(env_file=None)
    backend = ElasticsearchBackend.from_settings(settings)
    assert backend.ping().ok
    backend.close()
    return _Recorder.seen[-1].get("authorization")


def test_credentials_come_only_from_logstore_es_variables(monkeypatch: pytest.MonkeyPatch, recorder: str) -> None:
    vector_store = {"ELASTICSEARCH_USERNAME": "elastic", "ELASTICSEARCH_PASSWORD": "vector-secret"}
    assert _authorization(monkeypatch, recorder, **vector_store) is None
    basic = _authorization(monkeypatch, recorder, LOGSTORE_ES_USERNAME="ops", LOGSTORE_ES_PASSWORD="s3cret")
    assert basic == "Basic " + base64.b64encode(b"ops:s3cret").decode()
    monkeypatch.delenv("LOGSTORE_ES_USERNAME")
    monkeypatch.delenv("LOGSTORE_ES_PASSWORD")
    api_key = _authorization(monkeypatch, recorder, LOGSTORE_ES_API_KEY="key-id:key-secret")
    assert api_key == "ApiKey " + base64.b64encode(b"key-id:key-secret").decode()


def test_the_version_probe_asks_without_a_compatibility_header(monkeypatch: pytest.MonkeyPatch, recorder: str) -> None:
    _authorization(monkeypatch, recorder)
    assert "compatible-with" not in _Recorder.seen[-1].get("accept", "")


def test_an_older_cluster_is_explained(make_settings: t.Callable[..., LogStoreSettings]) -> None:
    older = "8.15.0" if CLIENT_MAJOR >= 9 else "7.17.0"
    with LocalElasticsearchServer(version=older) as server:
        settings = make_settings(backend="elasticsearch", elasticsearch={"hosts": [server.url]})
        backend = ElasticsearchBackend.from_settings(settings)
        with pytest.raises(ProvisioningError) as caught:
            backend.provision()
        ping = backend.ping()
        backend.close()
    expected = "elasticsearch>=8.13,<9" if CLIENT_MAJOR >= 9 else "upgrade the cluster"
    assert expected in str(caught.value)
    assert not ping.ok and expected in (ping.error or "")


def test_a_newer_cluster_works_with_a_warning(make_settings: t.Callable[..., LogStoreSettings]) -> None:
    with LocalElasticsearchServer(version=f"{CLIENT_MAJOR + 1}.0.0") as server:
        settings = make_settings(
            backend="elasticsearch", elasticsearch={"hosts": [server.url], "number_of_replicas": 0}
        )
        backend = ElasticsearchBackend.from_settings(settings)
        report = backend.provision()
        backend.close()
    assert report.changes[0].target == "cluster"
    assert "REST API compatibility" in report.changes[0].detail


@pytest.mark.parametrize(
    ("info", "fatal"),
    [
        (ServerInfo("2.17.0", distribution="opensearch"), True),
        (ServerInfo("7.17.9"), True),
        (ServerInfo(f"{CLIENT_MAJOR}.3.0"), False),
        (ServerInfo("8.0.0", build_flavor="serverless"), False),
    ],
)
def test_compatibility_rules(info: ServerInfo, fatal: bool) -> None:
    assert compatibility_problem(info)[0] is fatal


def test_transient_statuses_are_retried_by_the_client(
    es_backend: ElasticsearchBackend, es_server: LocalElasticsearchServer
) -> None:
    query = RecordQuery(RecordKind.RUN, Scope("t1"))
    es_server.faults.fail_next(1, status=503)  # max_retries=1 in the fixture settings
    assert es_backend.search(query).records == []
    es_server.faults.fail_next(2, status=429)
    with pytest.raises(BackendUnavailableError):
        es_backend.search(query)


def test_building_never_touches_the_network(make_settings: t.Callable[..., LogStoreSettings]) -> None:
    settings = make_settings(
        backend="elasticsearch", elasticsearch={"hosts": ["http://127.0.0.1:9"], "request_timeout": 1}
    )
    backend = ElasticsearchBackend.from_settings(settings)  # a cluster down at boot is not a None client
    ping = backend.ping()
    assert not ping.ok and "unreachable" in (ping.error or "")
    with pytest.raises(ProvisioningError):
        backend.provision()
    backend.close()


def test_the_app_stores_records_end_to_end(
    monkeypatch: pytest.MonkeyPatch,
    es_server: LocalElasticsearchServer,
    es_prefix: str,
    records: RecordFactory,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("LOGSTORE_BACKEND", "elasticsearch")
    monkeypatch.setenv("ELASTICSEARCH_HOSTS", f"[{json.dumps(es_server.url)}]")
    monkeypatch.setenv("ELASTICSEARCH_INDEX_PREFIX", es_prefix)
    monkeypatch.setenv("LOGSTORE_ES_NUMBER_OF_REPLICAS", "0")
    monkeypatch.setenv("LOGSTORE_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("LOGSTORE_STARTUP_STRICT", "true")
    app = Flask(__name__)
    DifyLogStore(app)
    try:
        with app.app_context():
            state = get_state()
            assert state.gate is not None and state.gate.ready
            run = records.run(id="e2e", status="succeeded")
            state.require_sink().submit([run])
            assert state.require_sink().flush(30)
            backend = state.require_backend()
            assert isinstance(backend, ElasticsearchBackend)
            backend.refresh()
            assert backend.get_latest(RecordKind.RUN, ["e2e"], Scope("t1"))["e2e"].data == run.data
    finally:
        DifyLogStore.close(app, timeout=10)
