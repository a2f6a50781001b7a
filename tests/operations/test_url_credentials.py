"""A password inside ``ELASTICSEARCH_HOSTS`` (``http://user:pw@host``) is never printed or logged.

Follows docs/configuration.md (secrets are masked in every output) and RFC 3986 §3.2.1, which
deprecates ``user:password`` in the userinfo of a URI because it is shown wherever the URI is.
"""

from __future__ import annotations

import logging
import typing as t

import pytest
from flask import Flask

from flask_difylogstore import LogStoreSettings
from flask_difylogstore.errors import LogStoreConfigError
from flask_difylogstore.settings import mask_url_credentials
from flask_difylogstore.testing.host_app import create_app

if t.TYPE_CHECKING:
    from flask_difylogstore.testing.es import LocalElasticsearchServer

PASSWORD = "s3cr3t-Pa55"


def test_mask_url_credentials_covers_urls_and_bare_userinfo() -> None:
    assert mask_url_credentials("http://elastic:pw@127.0.0.1:9200") == "http://elastic:**********@127.0.0.1:9200"
    assert mask_url_credentials("['https://u:p@a', 'http://b']") == "['https://u:**********@a', 'http://b']"
    assert mask_url_credentials("host 'elastic:pw@h' is bad") == "host 'elastic:**********@h' is bad"
    assert (
        mask_url_credentials("mail ops@example.com, see http://host/a@b") == "mail ops@example.com, see http://host/a@b"
    )


def _app(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any, url: str) -> Flask:
    monkeypatch.setenv("LOGSTORE_BACKEND", "elasticsearch")
    monkeypatch.setenv("ELASTICSEARCH_HOSTS", url)
    monkeypatch.setenv("LOGSTORE_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("LOGSTORE_STARTUP_TIMEOUT", "1")
    return create_app()


@pytest.mark.parametrize("reachable", [True, False], ids=["cluster-up", "cluster-down"])
def test_status_health_and_logs_never_show_the_password(
    reachable: bool,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: t.Any,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    if reachable:
        server: LocalElasticsearchServer = request.getfixturevalue("local_es_server")
        host = server.url.split("://", 1)[1]
    else:
        host = "127.0.0.1:1"  # nothing listens on port 1: connection refused
    caplog.set_level(logging.DEBUG)
    app = _app(monkeypatch, tmp_path, f"http://elastic:{PASSWORD}@{host}")
    runner = app.test_cli_runner()
    outputs = [
        runner.invoke(args=["logstore", "status"]).output,
        runner.invoke(args=["logstore", "status", "--json"]).output,
        runner.invoke(args=["logstore", "health"]).output,
        runner.invoke(args=["logstore", "health", "--json"]).output,
    ]
    assert "elastic:**********@" in outputs[0] and "elastic:**********@" in outputs[1]
    for output in outputs:
        assert PASSWORD not in output
    assert PASSWORD not in caplog.text
    from flask_difylogstore import DifyLogStore

    DifyLogStore.close(app, 0.2)


def test_configuration_error_masks_the_password(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    monkeypatch.setenv("ELASTICSEARCH_HOSTS", f"http://elastic:{PASSWORD}@127.0.0.1:1, elastic:{PASSWORD}@other")
    monkeypatch.setenv("LOGSTORE_BACKEND", "elasticsearch")
    with pytest.raises(LogStoreConfigError) as caught:
        LogStoreSettings.load(env_file=None)
    assert "ELASTICSEARCH_HOSTS" in str(caught.value)
    assert PASSWORD not in str(caught.value)
